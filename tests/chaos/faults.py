"""The faults of the chaos suite, one function each, applied to a running campaign.

Each fault takes the :class:`~tests.chaos.campaign.Campaign` and the private stack and
returns once the fault is over (the process restarted, the engine back, the procedure
done). Outages last a fixed time on purpose: the length of the outage is the fault, not
a synchronisation; what follows waits on events.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

from phonebank.infra.redis_client import connect
from phonebank.leases.client import campaign_region_zones
from phonebank.leases.keys import RegionKeys
from phonebank.local import stack
from phonebank.local.stack_settings import StackSettings
from tests.chaos.campaign import ASSIGNERS, SESSION_TIMEOUT_MS, Campaign, wait_for
from tests.chaos.settle import in_flight

#: seconds an engine stays down in the outage scenarios (longer than the 30 s Kafka
#: request timeout that used to kill the relay silently)
OUTAGE_SECONDS = 35.0
#: seconds a stopped assigner stays stopped: twice its Kafka session, so it is evicted
STOPPED_SECONDS = 2 * SESSION_TIMEOUT_MS / 1000
#: completed calls between two assigner kills in the kill-three-times scenario
CALLS_BETWEEN_KILLS = 150
#: seconds the stack has to answer again after a restart
RESTART_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class Fault:
    """A named fault and when it strikes: before the volunteers start, or during calls."""

    name: str
    apply: Callable[[Campaign, StackSettings], None]
    during_first_fill: bool = False


def any_region_filling(campaign: Campaign) -> bool:
    """Whether some region's ready list has numbers (the first fill has begun)."""
    client = connect(campaign.settings)
    try:
        settings = campaign.settings
        return any(
            client.llen(RegionKeys(settings.key_prefix, settings.campaign, region).ready) > 0
            for region in campaign_region_zones(settings)
        )
    finally:
        client.close()


def kill_one_assigner(campaign: Campaign) -> None:
    """``kill -9`` of the oldest live assigner, and a fresh one in its place."""
    index = next(i for i, p in enumerate(campaign.assigners) if p.poll() is None)
    campaign.signal_assigner(index, signal.SIGKILL)
    campaign.start_assigner()


def kill_during_first_fill(campaign: Campaign, _: StackSettings) -> None:
    wait_for("the first fill", lambda: any_region_filling(campaign), RESTART_TIMEOUT_SECONDS)
    kill_one_assigner(campaign)


def kill_three_times(campaign: Campaign, _: StackSettings) -> None:
    for _round in range(3):
        calls_more(campaign, CALLS_BETWEEN_KILLS)
        kill_one_assigner(campaign)


def calls_more(campaign: Campaign, count: int) -> None:
    """Wait until the volunteers have completed ``count`` more calls."""
    target = campaign.tally.completed + count
    wait_for(f"{count} more calls", lambda: campaign.tally.completed >= target, 120)


def stop_past_session(campaign: Campaign, _: StackSettings) -> None:
    """``SIGSTOP`` an assigner past its session timeout (evicted), then ``SIGCONT``."""
    campaign.signal_assigner(0, signal.SIGSTOP)
    time.sleep(STOPPED_SECONDS)
    campaign.signal_assigner(0, signal.SIGCONT)


def kill_stack_process(stack_settings: StackSettings, name: str) -> None:
    """``kill -9`` of the private stack's ``name`` (kafka or redis)."""
    paths = stack.stack_paths(stack_settings)
    pid = stack.read_pid(paths, name)
    assert pid is not None, f"the chaos stack's {name} is not running"
    os.kill(pid, signal.SIGKILL)
    wait_for(f"{name} to die", lambda: stack.read_pid(paths, name) is None, 30)


def restart_kafka(_: Campaign, stack_settings: StackSettings) -> None:
    """The broker killed, down for :data:`OUTAGE_SECONDS`, started again on its data."""
    kill_stack_process(stack_settings, "kafka")
    time.sleep(OUTAGE_SECONDS)
    stack.up(stack_settings)


def restart_redis(_: Campaign, stack_settings: StackSettings) -> None:
    """Redis killed and restarted from its append-only file."""
    kill_stack_process(stack_settings, "redis")
    stack.up(stack_settings)


def wipe_redis_and_rebuild(campaign: Campaign, stack_settings: StackSettings) -> None:
    """Redis lost with its data, then the README's recovery procedure, step by step,
    while the volunteers keep calling through the gateway."""
    campaign.unrelayed_at_loss = in_flight(campaign.settings)["unrelayed"]
    campaign.refused_before_loss = campaign.tally.refused_completes
    kill_stack_process(stack_settings, "redis")
    shutil.rmtree(stack.stack_paths(stack_settings).redis_data)
    # the procedure: 1. stop the assigners, 2. an empty Redis, 3. rebuild, 4. assigners,
    # 5. restart the reporter (then the test settles and audits: step 6)
    campaign.stop_assigners()
    stack.up(stack_settings)
    campaign.run("rebuild")
    for _ in range(ASSIGNERS):
        campaign.start_assigner()
    campaign.restart_reporter()


def vanish(campaign: Campaign, _: StackSettings) -> None:
    """Every volunteer takes a number and disappears with it."""
    campaign.vanish_all()


def ingest_twice_more(campaign: Campaign, _: StackSettings) -> None:
    """The same file ingested twice more while volunteers call."""
    campaign.ingest()
    campaign.ingest()


FAULTS = [
    Fault("baseline", lambda campaign, stack_settings: None),
    Fault("assigner kill -9 during first fill", kill_during_first_fill, during_first_fill=True),
    Fault("assigner kill -9 ×3", kill_three_times),
    Fault("assigner SIGSTOP past session", stop_past_session),
    Fault("Kafka broker kill -9 + restart", restart_kafka),
    Fault("Redis kill -9 + AOF restart", restart_redis),
    Fault("Redis wiped + recovery procedure", wipe_redis_and_rebuild),
    Fault("every volunteer vanishes", vanish),
    Fault("same file ingested twice more", ingest_twice_more),
]
