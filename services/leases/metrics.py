"""Metrics of the lease client, for whatever process serves volunteers (gateway, demo).

``phonebank_lease_operation_seconds{operation,result}``: latency of acquire, renew,
complete and release, with ``result`` ``ok``, ``empty`` (acquire found nothing), the
refusal (``not_holder``, ``expired``, ``already_completed``, ``limit``, ``closed``) or
``error`` (Redis failed);
``phonebank_leases_granted_total{region}``. A :class:`LeaseClient` given a
:class:`LeaseMetrics` records them through :func:`timed`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram

from phonebank.domain.lease_types import (
    AlreadyCompletedError,
    LeaseError,
    LeaseExpiredError,
    NotLeaseHolderError,
    OutsideCallingHoursError,
    VolunteerLimitReachedError,
)
from phonebank.infra import metrics as names

#: seconds: bucket bounds of the lease operation latency histogram (sub-ms to 1 s)
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

#: The ``result`` label of each refusal.
REFUSAL_RESULTS: dict[type[LeaseError], str] = {
    NotLeaseHolderError: "not_holder",
    LeaseExpiredError: "expired",
    AlreadyCompletedError: "already_completed",
    VolunteerLimitReachedError: "limit",
    OutsideCallingHoursError: "closed",
}


class LeaseMetrics:
    """The lease client's series on one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.latency = Histogram(
            names.LEASE_OPERATION_SECONDS,
            "Latency of lease operations by result.",
            ["operation", "result"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.granted = Counter(
            names.LEASES_GRANTED, "Leases granted.", ["region"], registry=registry
        )

    def observe(self, operation: str, result: str, started: float) -> None:
        """One operation that began at ``started`` (``time.perf_counter()``)."""
        self.latency.labels(operation, result).observe(time.perf_counter() - started)


class HasLeaseMetrics(Protocol):
    """What :func:`timed` needs of the object whose methods it times."""

    metrics: LeaseMetrics | None


Params = ParamSpec("Params")
Result = TypeVar("Result")
Owner = TypeVar("Owner", bound=HasLeaseMetrics)


def timed(
    operation: str,
) -> Callable[
    [Callable[Concatenate[Owner, Params], Result]],
    Callable[Concatenate[Owner, Params], Result],
]:
    """Record the latency and result of a lease-client method as ``operation``."""

    def decorate(
        method: Callable[Concatenate[Owner, Params], Result],
    ) -> Callable[Concatenate[Owner, Params], Result]:
        def run(owner: Owner, /, *args: Params.args, **kwargs: Params.kwargs) -> Result:
            metrics = owner.metrics
            if metrics is None:
                return method(owner, *args, **kwargs)
            started = time.perf_counter()
            try:
                value = method(owner, *args, **kwargs)
            except LeaseError as refusal:
                metrics.observe(operation, REFUSAL_RESULTS.get(type(refusal), "refused"), started)
                raise
            except Exception:
                metrics.observe(operation, "error", started)
                raise
            metrics.observe(operation, "empty" if value is None else "ok", started)
            return value

        functools.update_wrapper(run, method)
        return run

    return decorate
