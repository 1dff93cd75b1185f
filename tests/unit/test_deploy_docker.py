"""deploy/docker, checked offline: the Dockerfile's instructions and compose.yaml.

There is no Docker engine here, so nothing is built or started: the Dockerfile is read
instruction by instruction and compose.yaml is parsed and held to the services' facts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from phonebank.cli import build_parser
from phonebank.domain import guidelines
from phonebank.settings import Settings, env_name

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "deploy" / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
COMPOSE = DOCKER / "compose.yaml"
IGNORE = DOCKER / "Dockerfile.dockerignore"
#: compose services that run the phonebank image, and the setting of the port each serves
PHONEBANK_PORTS = {
    "assigner": "assigner_metrics_port",
    "reporter": "reporter_port",
    "gateway": "gateway_port",
}
#: secrets: compose must take them from the caller's environment, never hold a value
SECRETS = {"PHONEBANK_VOLUNTEER_SECRET", "PHONEBANK_REDIS_URL"}
Doc = dict[str, Any]


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuations joined, comments dropped."""
    joined, pending = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        joined.append(pending + stripped)
        pending = ""
    result = []
    for text in joined:
        keyword, _, rest = text.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    return result


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def compose() -> Doc:
    doc: Doc = yaml.safe_load(COMPOSE.read_text())
    return doc


def service(name: str) -> Doc:
    found: Doc = compose()["services"][name]
    return found


def subcommands() -> set[str]:
    for action in build_parser()._actions:
        if action.dest == "command" and action.choices is not None:
            return set(action.choices)
    raise AssertionError("the phonebank parser has no subcommands")


# --- Dockerfile ---------------------------------------------------------------------------


def test_entrypoint_is_the_phonebank_console_script() -> None:
    # Given the final stage of the Dockerfile
    entrypoints = [rest for keyword, rest in final_stage() if keyword == "ENTRYPOINT"]
    # Then its one ENTRYPOINT is the exec form of `phonebank` alone (subcommand = argument)
    assert len(entrypoints) == 1
    assert json.loads(entrypoints[0]) == ["phonebank"]


def test_image_runs_as_a_numeric_non_root_user() -> None:
    # Given the final stage's USER instructions
    users = [rest for keyword, rest in final_stage() if keyword == "USER"]
    # Then the last one is a numeric uid:gid other than root, so runAsNonRoot can verify it
    assert users, "the image would run as root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0
    assert gid.isdigit() and int(gid) != 0
    # And no instruction after it switches back
    index = final_stage().index(("USER", users[-1]))
    assert all(keyword != "USER" for keyword, _ in final_stage()[index + 1 :])


def test_base_is_python_311_slim_and_the_project_is_pip_installed() -> None:
    steps = instructions()
    args = dict(rest.split("=", 1) for keyword, rest in steps if keyword == "ARG" and "=" in rest)
    bases = [rest.split()[0] for keyword, rest in steps if keyword == "FROM"]
    resolved = [args.get(base.strip("${}"), base) for base in bases]
    assert resolved and all(base == "python:3.11-slim" for base in resolved)
    runs = " ".join(rest for keyword, rest in steps if keyword == "RUN")
    assert re.search(r"pip install (--no-cache-dir )?\.(\s|$)", runs)


def test_image_has_no_healthcheck_and_no_baked_secret() -> None:
    steps = instructions()
    keywords = {keyword for keyword, _ in steps}
    assert "HEALTHCHECK" not in keywords
    for keyword, rest in steps:
        if keyword in {"ENV", "ARG", "LABEL"}:
            assert not re.search(r"SECRET|PASSWORD|TOKEN|REDIS_URL", rest, re.IGNORECASE), rest


def test_services_listen_beyond_loopback_in_the_container() -> None:
    envs = " ".join(rest for keyword, rest in final_stage() if keyword == "ENV")
    assert f"{env_name('bind_address')}=0.0.0.0" in envs


def test_the_build_checks_the_guidelines_ship_as_package_data() -> None:
    # Given the guidelines are package data of phonebank
    assert any(entry.name.endswith(".md") for entry in guidelines.DEFAULT_FOLDER.iterdir())
    # When the Dockerfile builds, Then it copies nothing beside the package and fails
    # unless the installed package loads them
    steps = instructions()
    copies = [rest for keyword, rest in steps if keyword == "COPY"]
    assert not any("guidelines" in rest for rest in copies)
    runs = " ".join(rest for keyword, rest in steps if keyword == "RUN")
    assert "load_guidelines()" in runs


def test_copied_sources_exist_and_pass_the_ignore_list() -> None:
    # Given what the Dockerfile copies from the build context
    sources = []
    for keyword, rest in instructions():
        if keyword == "COPY" and not rest.startswith("--from"):
            sources += rest.split()[:-1]
    # Then each exists in the repository
    assert sources
    for source in sources:
        assert (REPO / source).exists(), source
    # And the ignore list (ignore everything, then re-include) lets each through
    patterns = [
        line.strip()
        for line in IGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "**"
    included = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    for source in sources:
        assert source.rstrip("/") in included, source


# --- compose ------------------------------------------------------------------------------


def test_compose_runs_kafka_4_kraft_and_redis_with_the_shipped_config() -> None:
    # Given the compose file
    kafka, redis = service("kafka"), service("redis")
    # Then Kafka is the apache/kafka 4.x image as a single KRaft broker+controller
    assert re.fullmatch(r"apache/kafka:4\.\d+\.\d+", kafka["image"])
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert kafka["environment"]["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith("1@kafka:")
    # And Redis mounts deploy/local/redis.conf and starts from it
    mounts = {m.split(":")[1]: (DOCKER / m.split(":")[0]).resolve() for m in redis["volumes"]}
    conf = mounts["/usr/local/etc/redis/redis.conf"]
    assert conf == (REPO / "deploy" / "local" / "redis.conf").resolve()
    command = " ".join(redis["command"])
    assert "redis-server /usr/local/etc/redis/redis.conf" in command
    # And the command line does not override what the config guarantees
    assert "maxmemory-policy" not in command and "appendonly" not in command
    assert "maxmemory-policy noeviction" in conf.read_text()


@pytest.mark.parametrize("name", ["kafka", "redis", *PHONEBANK_PORTS])
def test_every_long_running_service_has_a_healthcheck(name: str) -> None:
    check = service(name)["healthcheck"]
    assert check["test"][0] == "CMD"
    assert check["retries"] >= 1


@pytest.mark.parametrize("name", PHONEBANK_PORTS)
def test_phonebank_services_wait_for_healthy_kafka_and_redis(name: str) -> None:
    depends = service(name)["depends_on"]
    assert depends == {
        "kafka": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }


def compose_env_names() -> set[str]:
    names: set[str] = set()
    for definition in compose()["services"].values():
        names |= set(definition.get("environment", {}))
    return {name for name in names if name.startswith("PHONEBANK_")}


def test_every_phonebank_variable_in_compose_is_a_real_setting() -> None:
    known = {env_name(field) for field in Settings.model_fields}
    used = compose_env_names()
    assert used
    assert used - known == set()


def test_compose_takes_secrets_from_the_callers_environment() -> None:
    # Given the environment of every phonebank service
    for name in PHONEBANK_PORTS:
        env = service(name)["environment"]
        for secret in SECRETS:
            # Then each secret is a required ${VAR:?…} interpolation, never a literal value
            value = env[secret]
            assert re.search(r"\$\{[A-Z_]+:\?[^}]*\}", value), f"{name}: {secret}"
            without = re.sub(r"\$\{[^}]*\}", "", value)
            assert not re.search(r"://:[^@]+@", without), f"{name}: password in {secret}"


@pytest.mark.parametrize(("name", "field"), PHONEBANK_PORTS.items())
def test_compose_ports_and_healthchecks_match_the_settings(name: str, field: str) -> None:
    # Given the port the service listens on: the env compose sets, else the default
    definition = service(name)
    env = definition["environment"]
    port = int(env.get(env_name(field), Settings.model_fields[field].default))
    # Then its healthcheck probes that port, and a published port maps to it
    assert f"127.0.0.1:{port}/" in " ".join(definition["healthcheck"]["test"])
    published = definition.get("ports", []) + definition.get("expose", [])
    assert published
    assert all(str(p).split(":")[-1] == str(port) for p in published)
    # And it listens on every interface of the container
    assert env[env_name("bind_address")] == "0.0.0.0"


@pytest.mark.parametrize("name", [*PHONEBANK_PORTS, "ingest"])
def test_compose_commands_are_real_subcommands(name: str) -> None:
    # Given the argv a phonebank service runs (entrypoint `phonebank` + command)
    definition = service(name)
    entrypoint = definition.get("entrypoint", ["phonebank"])
    assert entrypoint[0] == "phonebank"
    argv = [*entrypoint[1:], *definition.get("command", [])]
    if name == "ingest":
        argv.append("/in/numbers.txt")  # the file `docker compose run` appends
    # When the phonebank parser reads it
    assert argv[0] in subcommands()
    parsed = build_parser().parse_args(argv)
    # Then it parses and names the service
    assert parsed.command == name


def test_compose_ingest_is_an_on_demand_job_with_persistent_checkpoints() -> None:
    ingest = service("ingest")
    assert ingest["profiles"] == ["jobs"]
    assert ingest["restart"] == "no"
    args = build_parser().parse_args([*ingest["entrypoint"][1:], "x.txt"])
    volumes = {v.split(":")[1] for v in ingest["volumes"]}
    assert str(args.checkpoint_dir) in volumes


def test_compose_hardens_the_phonebank_containers() -> None:
    for name in [*PHONEBANK_PORTS, "ingest"]:
        definition = service(name)
        assert definition["read_only"] is True
        assert definition["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in definition["security_opt"]
        assert "user" not in definition  # the image's non-root USER applies


def test_assigner_gets_time_to_finish_its_chunk() -> None:
    grace = service("assigner")["stop_grace_period"]
    assert re.fullmatch(r"\d+s", grace)
    assert int(grace[:-1]) > 10  # docker's default


def test_reporter_is_not_replicated() -> None:
    reporter = service("reporter")
    assert reporter.get("deploy", {}).get("replicas", 1) == 1
    assert "scale" not in reporter


@pytest.mark.parametrize("name", [*PHONEBANK_PORTS, "ingest"])
def test_each_service_logs_in_to_redis_as_its_own_user(name: str) -> None:
    # Given a phonebank service of compose, When its Redis DSN is read
    url = service(name)["environment"]["PHONEBANK_REDIS_URL"]
    # Then it names the service's own user (deploy/redis/users.acl) and its password variable
    user = name.upper()
    assert url.startswith(f"redis://{name}:${{PHONEBANK_REDIS_PASSWORD_{user}:?"), url


def test_redis_loads_the_users_from_a_secret_and_has_no_default_password() -> None:
    # Given compose's Redis, When its command and secrets are read
    redis = service("redis")
    command = redis["command"]
    # Then it loads the ACL file from the compose secret, and no shared password remains
    assert command[command.index("--aclfile") + 1] == "/run/secrets/redis_users"
    assert redis["secrets"] == ["redis_users"]
    assert "redis_users" in compose()["secrets"]
    assert "--requirepass" not in command
