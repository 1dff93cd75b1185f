"""deploy/k8s, checked offline: parsed, schema-checked, and held to the services' facts.

No cluster is needed: every manifest is parsed with PyYAML and compared with what the
code says (settings fields and defaults, subcommands, ports) and with each other
(selectors, ConfigMap, KEDA trigger, Prometheus jobs).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from phonebank.cli import build_parser
from phonebank.infra.kafka import replication_for
from phonebank.settings import Settings, SettingsError, env_name, load_settings

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
DOCKERFILE = REPO / "deploy" / "docker" / "Dockerfile"
PROMETHEUS_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"

#: Manifests that are deliberately not applied by `kubectl apply -k`.
NOT_APPLIED = {
    "secret.template.yaml",
    "ops/rebuild-job.yaml",
    "ops/redis.yaml",
    "prometheus-scrape.yaml",
    "kustomization.yaml",
}
#: Which setting holds each component's HTTP port.
PORT_SETTING = {
    "ingest": "ingest_metrics_port",
    "assigner": "assigner_metrics_port",
    "reporter": "reporter_port",
    "gateway": "gateway_port",
}
Doc = dict[str, Any]


# --- loading ----------------------------------------------------------------------------


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*.yaml") if p.is_file())


def load_docs(path: Path) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def resources() -> list[Doc]:
    """Every Kubernetes object in deploy/k8s, applied or not."""
    found = []
    for path in manifest_files():
        rel = path.relative_to(K8S).as_posix()
        if rel in {"kustomization.yaml", "prometheus-scrape.yaml"}:
            continue
        for doc in load_docs(path):
            doc["_file"] = rel
            found.append(doc)
    return found


def of_kind(kind: str) -> list[Doc]:
    return [doc for doc in resources() if doc["kind"] == kind]


def named(kind: str, name: str) -> Doc:
    matches = [doc for doc in of_kind(kind) if doc["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def workloads() -> list[Doc]:
    return of_kind("Deployment") + of_kind("Job")


def pod_spec(workload: Doc) -> Doc:
    spec: Doc = workload["spec"]["template"]["spec"]
    return spec


def containers(workload: Doc) -> list[Doc]:
    found: list[Doc] = pod_spec(workload)["containers"]
    return found


def component(workload: Doc) -> str:
    label: str = workload["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]
    return label


def config_map() -> dict[str, str]:
    data: dict[str, str] = named("ConfigMap", "phonebank-config")["data"]
    return data


def subcommands() -> set[str]:
    parser = build_parser()
    for action in parser._actions:
        if action.dest == "command" and action.choices is not None:
            return set(action.choices)
    raise AssertionError("the phonebank parser has no subcommands")


def setting_default(field: str) -> Any:
    return Settings.model_fields[field].default


def container_env(container: Doc) -> dict[str, str | None]:
    """Env of a container: ConfigMap values (envFrom) overlaid by its own env entries."""
    env: dict[str, str | None] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            assert source["configMapRef"]["name"] == "phonebank-config"
            env.update(config_map())
    for entry in container.get("env", []):
        env[entry["name"]] = entry.get("value")
    return env


def expected_port(workload: Doc, container: Doc) -> int:
    """The port the service listens on: the env the manifest sets, else the default."""
    field = PORT_SETTING[component(workload)]
    value = container_env(container).get(env_name(field))
    return int(value) if value is not None else int(setting_default(field))


def resolve_port(container: Doc, port: int | str) -> int:
    if isinstance(port, int):
        return port
    by_name = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    assert port in by_name, f"named port {port!r} is not declared"
    return int(by_name[port])


def probes(container: Doc) -> Iterator[tuple[str, Doc]]:
    for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
        if kind in container:
            yield kind, container[kind]


def probe_port(container: Doc, probe: Doc) -> int:
    handler = probe.get("httpGet") or probe.get("tcpSocket")
    assert handler is not None, f"probe without httpGet/tcpSocket: {probe}"
    return resolve_port(container, handler["port"])


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def dockerfile_uid() -> int:
    users = re.findall(r"^USER\s+(\S+)", DOCKERFILE.read_text(), flags=re.MULTILINE)
    return int(users[-1].split(":")[0])


# --- parsing and schema -------------------------------------------------------------------


def test_every_manifest_parses_and_names_its_kind() -> None:
    # Given every YAML file under deploy/k8s
    files = manifest_files()
    assert files, "no manifests found"
    # When each is parsed
    for path in files:
        docs = load_docs(path)
        # Then each holds at least one document, and every Kubernetes object says what it is
        assert docs, f"{path} is empty"
        if path.name in {"kustomization.yaml", "prometheus-scrape.yaml"}:
            continue
        for doc in docs:
            assert {"apiVersion", "kind", "metadata"} <= set(doc), path
            assert doc["metadata"].get("name"), path


def test_kustomization_applies_every_manifest_but_the_deliberate_exceptions() -> None:
    # Given the kustomization
    kustomization = load_docs(K8S / "kustomization.yaml")[0]
    listed = set(kustomization["resources"])
    # When it is compared with the files on disk
    on_disk = {p.relative_to(K8S).as_posix() for p in manifest_files()}
    # Then every listed file exists, and nothing is left out by accident
    assert listed <= on_disk
    assert on_disk - listed == NOT_APPLIED
    assert kustomization["namespace"] == named("Namespace", "phonebank")["metadata"]["name"]


def test_objects_match_the_kubernetes_schema_strictly() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    # Given every built-in object (the KEDA ScaledObject is a CRD: checked by hand below)
    builtin = [doc for doc in resources() if not doc["apiVersion"].startswith("keda.sh/")]
    assert builtin
    for doc in builtin:
        body = {key: value for key, value in doc.items() if key != "_file"}
        # When it is validated against the OpenAPI schema, unknown fields rejected
        # Then it passes (a typo such as `readinesProbe` would fail here)
        kubernetes_validate.validate(body, "1.31.0", strict=True)


# --- settings, secrets, commands ----------------------------------------------------------


def phonebank_env_names() -> set[str]:
    """Every PHONEBANK_* name the manifests set or read."""
    names = set(config_map())
    names |= set(named("Secret", "phonebank-secrets")["stringData"])
    for workload in workloads():
        for container in containers(workload):
            for entry in container.get("env", []):
                names.add(entry["name"])
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    names.add(ref["key"])
    return {name for name in names if name.startswith("PHONEBANK_")}


def test_every_phonebank_variable_is_a_real_setting() -> None:
    # Given the settings fields of the code
    known = {env_name(field) for field in Settings.model_fields}
    # When the manifests' PHONEBANK_* names are collected
    used = phonebank_env_names()
    # Then each is a field (a misspelt variable would be ignored silently at run time)
    assert used, "no PHONEBANK_ variables found"
    assert used - known == set()


def test_config_map_values_are_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a pod's environment: exactly the ConfigMap's non-secret settings
    for name in os.environ:
        if name.startswith("PHONEBANK_"):
            monkeypatch.delenv(name)
    for name, value in config_map().items():
        monkeypatch.setenv(name, value)
    # When the services load their settings from it
    settings = load_settings()
    # Then they validate, and services in pods listen beyond loopback
    assert settings.bind_address == "0.0.0.0"


def cluster_seed_example() -> str:
    """The Redis Cluster DSN the Secret template documents, password placeholder filled."""
    text = (K8S / "secret.template.yaml").read_text()
    match = re.search(r'PHONEBANK_REDIS_URL="(redis://[^"]*,[^"]*)"', text)
    assert match, "secret.template.yaml documents no Redis Cluster seed list"
    return match[1].replace("$REDIS_PASSWORD", "hunter2")


def test_a_redis_cluster_is_one_config_map_switch_and_a_seed_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a pod's environment with the cluster switch on and the documented seed list
    for name in os.environ:
        if name.startswith("PHONEBANK_"):
            monkeypatch.delenv(name)
    for name, value in config_map().items():
        monkeypatch.setenv(name, value)
    assert config_map()["PHONEBANK_REDIS_CLUSTER"] == "false"
    monkeypatch.setenv("PHONEBANK_REDIS_CLUSTER", "true")
    monkeypatch.setenv("PHONEBANK_REDIS_URL", cluster_seed_example())
    # When the services load their settings
    settings = load_settings()
    # Then they validate as a cluster of three seeds, passwords masked when shown
    assert settings.redis_cluster
    assert len(settings.redis_url.split(",")) == 3
    assert "hunter2" not in str(settings.masked())
    # And the seed list without the switch is refused, naming the variable
    monkeypatch.setenv("PHONEBANK_REDIS_CLUSTER", "false")
    with pytest.raises(SettingsError, match="PHONEBANK_REDIS_CLUSTER=true"):
        load_settings()


def test_config_map_holds_no_secret() -> None:
    secret_keys = set(named("Secret", "phonebank-secrets")["stringData"])
    assert secret_keys & set(config_map()) == set()
    assert "PHONEBANK_VOLUNTEER_SECRET" in secret_keys
    assert "PHONEBANK_REDIS_URL" in secret_keys


#: the services with their own Redis user (deploy/redis/users.acl; ops jobs: the operator)
REDIS_USERS = ("assigner", "gateway", "reporter", "ingest")


def test_secret_template_holds_placeholders_only() -> None:
    # Given the Secret template
    secret = named("Secret", "phonebank-secrets")
    assert secret["_file"] == "secret.template.yaml"
    # When its values are read
    values = secret.get("stringData", {})
    assert "data" not in secret, "base64 data would hide a real value"
    # Then every secret part is an obvious <placeholder>, never a usable value
    assert re.fullmatch(r"<[a-z-]+>", values["PHONEBANK_VOLUNTEER_SECRET"])
    for key in ["PHONEBANK_REDIS_URL", *(f"redis-url-{user}" for user in REDIS_USERS)]:
        redis_url = values[key]
        dsn = r"rediss?://[a-z]+:<[a-z-]+>@[a-z0-9.-]+:\d+/\d+"
        assert re.fullmatch(dsn, redis_url), redis_url
        Settings(redis_url=redis_url)  # the shape is a valid DSN once the password is filled


def test_secrets_reach_containers_only_by_reference() -> None:
    secret_names = {"PHONEBANK_VOLUNTEER_SECRET", "PHONEBANK_REDIS_URL"}
    for workload in workloads():
        for container in containers(workload):
            for entry in container.get("env", []):
                if entry["name"] in secret_names:
                    assert "value" not in entry, f"{entry['name']} inlined in {workload['_file']}"
                    assert entry["valueFrom"]["secretKeyRef"]["name"] == "phonebank-secrets"


def test_each_workload_logs_in_to_redis_as_its_own_user() -> None:
    # Given every workload, When its Redis DSN's Secret key is read
    for workload in workloads():
        for container in containers(workload):
            keys = [
                entry["valueFrom"]["secretKeyRef"]["key"]
                for entry in container.get("env", [])
                if entry["name"] == "PHONEBANK_REDIS_URL"
            ]
            # Then it is the key of its own service's user (the operator's for ops jobs)
            name = component(workload)
            own = f"redis-url-{name}" if name in REDIS_USERS else "PHONEBANK_REDIS_URL"
            assert keys == [own], keys


@pytest.mark.parametrize("workload", workloads(), ids=lambda w: w["metadata"]["name"])
def test_container_commands_are_real_subcommands(workload: Doc) -> None:
    # Given a container's arguments (the image's ENTRYPOINT is `phonebank`)
    for container in containers(workload):
        assert "command" not in container, "the entrypoint is the image's `phonebank`"
        args = container["args"]
        assert args[0] in subcommands()
        # When the phonebank parser reads them
        parsed = build_parser().parse_args(args)
        # Then they parse, and name the service the workload is labelled as
        assert parsed.command == args[0]
        assert component(workload) == args[0]


# --- ports and probes --------------------------------------------------------------------


@pytest.mark.parametrize(
    "workload",
    [w for w in workloads() if component(w) in PORT_SETTING],
    ids=lambda w: w["metadata"]["name"],
)
def test_ports_probes_and_scrape_annotation_agree_with_the_settings(workload: Doc) -> None:
    for container in containers(workload):
        # Given the port the service listens on (its env, else the settings default)
        port = expected_port(workload, container)
        # Then the container declares it, every probe targets it, and Prometheus scrapes it
        assert [p["containerPort"] for p in container["ports"]] == [port]
        for kind, probe in probes(container):
            assert probe_port(container, probe) == port, kind
        annotations = workload["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert int(annotations["prometheus.io/port"]) == port
        assert annotations["prometheus.io/path"] == "/metrics"


def test_services_select_pods_and_target_their_ports() -> None:
    # Given each Service of a phonebank process (ops/redis.yaml's is Redis's own)
    pods = {d["metadata"]["name"]: d for d in of_kind("Deployment")}
    for service in of_kind("Service"):
        if service["_file"] == "ops/redis.yaml":
            continue
        # When the Deployments it selects are found
        chosen = [
            d
            for d in pods.values()
            if selects(service["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])
        ]
        # Then it selects exactly one, and its targetPort is that pod's listening port
        assert len(chosen) == 1, service["metadata"]["name"]
        container = containers(chosen[0])[0]
        for port in service["spec"]["ports"]:
            assert resolve_port(container, port["targetPort"]) == expected_port(
                chosen[0], container
            )


@pytest.mark.parametrize(
    ("name", "paths"),
    [
        ("phonebank-reporter", {"readinessProbe": "/readyz", "livenessProbe": "/healthz"}),
        ("phonebank-gateway", {"readinessProbe": "/readyz", "livenessProbe": "/healthz"}),
    ],
)
def test_http_services_probe_their_health_endpoints(name: str, paths: dict[str, str]) -> None:
    container = containers(named("Deployment", name))[0]
    for kind, path in paths.items():
        assert container[kind]["httpGet"]["path"] == path, kind


def test_assigner_liveness_survives_a_redis_outage() -> None:
    # Given the assigner, which serves /metrics only, and /metrics reads Redis
    container = containers(named("Deployment", "phonebank-assigner"))[0]
    # Then liveness is a TCP connect (a Redis outage must not restart every worker) while
    # readiness does fetch /metrics
    assert "tcpSocket" in container["livenessProbe"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/metrics"


@pytest.mark.parametrize("deployment", of_kind("Deployment"), ids=lambda d: d["metadata"]["name"])
def test_every_deployment_has_liveness_and_readiness(deployment: Doc) -> None:
    for container in containers(deployment):
        assert "livenessProbe" in container
        assert "readinessProbe" in container


# --- resources and security ---------------------------------------------------------------


@pytest.mark.parametrize("workload", workloads(), ids=lambda w: w["metadata"]["name"])
def test_every_container_has_requests_and_limits(workload: Doc) -> None:
    for container in containers(workload):
        resources_ = container["resources"]
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources_[bound]), bound


@pytest.mark.parametrize("workload", workloads(), ids=lambda w: w["metadata"]["name"])
def test_every_pod_runs_unprivileged_as_the_image_user(workload: Doc) -> None:
    # Given a workload's pod and container security contexts
    pod = pod_spec(workload)["securityContext"]
    # Then the pod runs as the Dockerfile's non-root uid, under the default seccomp profile
    assert pod["runAsNonRoot"] is True
    assert pod["runAsUser"] == dockerfile_uid() != 0
    assert pod["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod_spec(workload)["automountServiceAccountToken"] is False
    for container in containers(workload):
        context = container["securityContext"]
        # And no container can escalate, write its root filesystem or keep a capability
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["capabilities"]["drop"] == ["ALL"]
        assert context.get("privileged", False) is False


# --- the services' own rules -------------------------------------------------------------


def test_reporter_runs_exactly_one_replica_replaced_by_recreate() -> None:
    # Given the reporter, which checkpoints its whole state in one Redis value
    reporter = named("Deployment", "phonebank-reporter")
    # Then one replica, never two overlapping during a rollout
    assert reporter["spec"]["replicas"] == 1
    assert reporter["spec"]["strategy"] == {"type": "Recreate"}
    # And nothing scales it
    scaled = {
        d["spec"]["scaleTargetRef"]["name"]
        for d in of_kind("HorizontalPodAutoscaler") + of_kind("ScaledObject")
    }
    assert "phonebank-reporter" not in scaled


def test_assigner_is_autoscaled_on_lag_within_the_partition_count() -> None:
    # Given the assigner's ScaledObject and the configured numbers topic
    scaled = named("ScaledObject", "phonebank-assigner")["spec"]
    config = config_map()
    partitions = int(
        config.get("PHONEBANK_NUMBERS_PARTITIONS", setting_default("numbers_partitions"))
    )
    # Then it scales the assigner Deployment, never above the partitions (idle consumers)
    assert scaled["scaleTargetRef"]["name"] == "phonebank-assigner"
    assert 1 <= scaled["minReplicaCount"] <= scaled["maxReplicaCount"] <= partitions
    # And the lag it reads is the assigner group's on the numbers topic, on our brokers
    (trigger,) = scaled["triggers"]
    assert trigger["type"] == "kafka"
    meta = trigger["metadata"]
    assert meta["consumerGroup"] == config["PHONEBANK_ASSIGNER_GROUP"]
    assert meta["topic"] == config["PHONEBANK_NUMBERS_TOPIC"]
    assert meta["bootstrapServers"] == config["PHONEBANK_KAFKA_BOOTSTRAP_SERVERS"]
    # And paused (full-region) partitions, whose lag never moves, do not add replicas
    assert meta["excludePersistentLag"] == "true"
    assert meta["allowIdleConsumers"] == "false"
    assert int(meta["lagThreshold"]) > 0


def test_assigner_never_scales_to_zero() -> None:
    # The assigner pods also run the outcomes relay and the lease reaper.
    assert named("ScaledObject", "phonebank-assigner")["spec"]["minReplicaCount"] >= 1
    assert named("Deployment", "phonebank-assigner")["spec"]["replicas"] >= 1


def test_assigner_has_time_to_finish_its_chunk_on_sigterm() -> None:
    # Given the assigner's grace period and the consumer session timeout
    grace = pod_spec(named("Deployment", "phonebank-assigner"))["terminationGracePeriodSeconds"]
    session_s = int(setting_default("kafka_session_timeout_ms")) / 1000
    # Then SIGKILL comes later than Kubernetes' default 30 s and than a session timeout
    assert grace > 30
    assert grace >= 2 * session_s


def test_gateway_is_redundant_and_autoscaled_on_cpu() -> None:
    gateway = named("Deployment", "phonebank-gateway")
    hpa = named("HorizontalPodAutoscaler", "phonebank-gateway")["spec"]
    assert gateway["spec"]["replicas"] >= 2
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "phonebank-gateway",
    }
    assert 2 <= hpa["minReplicas"] < hpa["maxReplicas"]
    (metric,) = hpa["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert "requests" in containers(gateway)[0]["resources"]  # utilisation needs requests


@pytest.mark.parametrize(
    ("name", "replicas_floor"), [("phonebank-assigner", 1), ("phonebank-gateway", 2)]
)
def test_disruption_budgets_select_their_deployment_and_allow_progress(
    name: str, replicas_floor: int
) -> None:
    # Given a PodDisruptionBudget and the Deployment it protects
    budget = named("PodDisruptionBudget", name)["spec"]
    labels = named("Deployment", name)["spec"]["template"]["metadata"]["labels"]
    # Then it selects that Deployment's pods
    assert selects(budget["selector"]["matchLabels"], labels)
    # And a drain can always evict one pod, yet the gateway keeps one serving
    if "maxUnavailable" in budget:
        assert budget["maxUnavailable"] == 1
    else:
        assert 1 <= budget["minAvailable"] < replicas_floor


def test_every_deployment_selector_matches_its_pod_labels() -> None:
    for deployment in of_kind("Deployment"):
        assert selects(
            deployment["spec"]["selector"]["matchLabels"],
            deployment["spec"]["template"]["metadata"]["labels"],
        )


def test_ingest_job_resumes_from_checkpoints_on_its_volume() -> None:
    # Given the ingest Job
    job = named("Job", "phonebank-ingest")
    spec = pod_spec(job)
    (container,) = spec["containers"]
    # When its command line is parsed
    args = build_parser().parse_args(container["args"])
    # Then it retries in place, one pod at a time
    assert spec["restartPolicy"] == "OnFailure"
    assert job["spec"]["backoffLimit"] >= 1
    assert job["spec"]["parallelism"] == 1
    # And its checkpoints and metrics file are on the persistent volume, not in the pod
    claims = {
        v["name"]: v["persistentVolumeClaim"]["claimName"]
        for v in spec["volumes"]
        if "persistentVolumeClaim" in v
    }
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    persistent = [Path(path) for path, volume in mounts.items() if volume in claims]
    for written in (args.checkpoint_dir, args.metrics_out):
        assert any(Path(written).is_relative_to(root) for root in persistent), written
    for claim in claims.values():
        named("PersistentVolumeClaim", claim)


def test_rebuild_job_never_retries_by_itself() -> None:
    job = named("Job", "phonebank-rebuild")
    assert job["_file"].startswith("ops/")
    assert job["spec"]["backoffLimit"] == 0
    assert pod_spec(job)["restartPolicy"] == "Never"


# --- Prometheus ----------------------------------------------------------------------------


def scrape_jobs() -> dict[str, Doc]:
    config = load_docs(K8S / "prometheus-scrape.yaml")[0]
    return {job["job_name"]: job for job in config["scrape_configs"]}


def test_scrape_jobs_are_the_ones_the_rules_and_dashboard_expect() -> None:
    # Given the repository's Prometheus config and the in-cluster scrape jobs
    local = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    local_jobs = {job["job_name"] for job in local["scrape_configs"]}
    # Then they name the same jobs (rules match job="phonebank-reporter" etc.)
    assert set(scrape_jobs()) == local_jobs


def test_each_scrape_job_keeps_the_pods_of_one_component() -> None:
    annotated = {
        component(w)
        for w in workloads()
        if w["spec"]["template"]["metadata"].get("annotations", {}).get("prometheus.io/scrape")
        == "true"
    }
    for name, job in scrape_jobs().items():
        keep = job["relabel_configs"][0]
        assert keep["action"] == "keep"
        assert keep["source_labels"] == ["__meta_kubernetes_pod_label_app_kubernetes_io_component"]
        # The job phonebank-X keeps the pods labelled component X, and such pods exist
        assert f"phonebank-{keep['regex']}" == name
        assert keep["regex"] in annotated


def test_scrape_address_uses_the_annotated_port() -> None:
    # Given the relabel rule that rewrites the target address
    job = scrape_jobs()["phonebank-assigner"]
    rule = next(r for r in job["relabel_configs"] if r.get("target_label") == "__address__")
    # When it is applied to a pod address and its prometheus.io/port annotation
    # (Prometheus anchors the regex and joins source labels with ';')
    joined = ";".join(["10.1.2.3:9101", "9101"])
    match = re.fullmatch(rule["regex"], joined)
    assert match is not None
    address = match.expand(rule["replacement"].replace("$", "\\"))
    # Then the target is the pod IP on the annotated port
    assert address == "10.1.2.3:9101"
    assert re.fullmatch(rule["regex"], "10.1.2.3;9102") is not None


# --- the clustered overlay (deploy/k8s-clustered) ------------------------------------------

CLUSTERED = REPO / "deploy" / "k8s-clustered"
#: Files of the overlay that are examples or templates, never applied by it.
CLUSTERED_NOT_APPLIED = {"secret.template.yaml", "strimzi-kafka.yaml"}


def clustered_kustomization() -> Doc:
    return load_docs(CLUSTERED / "kustomization.yaml")[0]


def base_applied() -> list[Doc]:
    """The base's objects that `kubectl apply -k deploy/k8s` applies."""
    listed = set(load_docs(K8S / "kustomization.yaml")[0]["resources"])
    return [doc for doc in resources() if doc["_file"] in listed]


def json_pointer(path: str) -> list[str]:
    return [part.replace("~1", "/").replace("~0", "~") for part in path.split("/")[1:]]


def apply_json_patch(doc: Doc, ops: list[Doc]) -> None:
    """RFC 6902 test/replace/add on maps and list indices: what the overlay uses."""
    for op in ops:
        *parents, last = json_pointer(op["path"])
        node: Any = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        key: int | str = int(last) if isinstance(node, list) else last
        if op["op"] == "test":
            assert node[key] == op["value"], op
        else:
            assert op["op"] in {"replace", "add"}, op
            assert op["op"] == "add" or key in node or isinstance(node, list), op
            node[key] = op["value"]


def merge_patch(doc: Doc, patch: Doc) -> None:
    """Strategic merge of maps (the overlay's ConfigMap patch has no lists)."""
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            merge_patch(doc[key], value)
        else:
            doc[key] = value


def patch_target(docs: list[Doc], entry: Doc, patch: Any) -> Doc:
    selector = entry.get("target") or {"kind": patch["kind"], "name": patch["metadata"]["name"]}
    (target,) = [
        doc
        for doc in docs
        if doc["kind"] == selector["kind"] and doc["metadata"]["name"] == selector["name"]
    ]
    return target


def clustered() -> list[Doc]:
    """The overlay rendered as kustomize would: the base's objects with its patches."""
    assert clustered_kustomization()["resources"] == ["../k8s"]
    docs = base_applied()
    for entry in clustered_kustomization()["patches"]:
        patch = yaml.safe_load((CLUSTERED / entry["path"]).read_text())
        target = patch_target(docs, entry, patch)
        if isinstance(patch, list):
            apply_json_patch(target, patch)
        else:
            merge_patch(target, {k: v for k, v in patch.items() if k != "metadata"})
    return docs


def clustered_one(kind: str, name: str) -> Doc:
    (doc,) = [d for d in clustered() if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def clustered_config() -> dict[str, str]:
    data: dict[str, str] = clustered_one("ConfigMap", "phonebank-config")["data"]
    return data


def clustered_secret() -> dict[str, str]:
    (secret,) = load_docs(CLUSTERED / "secret.template.yaml")
    values: dict[str, str] = secret["stringData"]
    return values


def strimzi() -> dict[str, Doc]:
    return {doc["kind"]: doc for doc in load_docs(CLUSTERED / "strimzi-kafka.yaml")}


def clustered_env(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> Settings:
    """Settings in a pod of the overlay: its ConfigMap plus one Redis DSN, filled in."""
    for name in os.environ:
        if name.startswith("PHONEBANK_"):
            monkeypatch.delenv(name)
    for name, value in clustered_config().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PHONEBANK_REDIS_URL", re.sub(r"<[a-z-]+>", "hunter2", redis_url))
    return load_settings()


def test_the_clustered_overlay_patches_the_base_and_applies_nothing_else() -> None:
    # Given the overlay's kustomization and its files
    kustomization = clustered_kustomization()
    patches = {entry["path"] for entry in kustomization["patches"]}
    on_disk = {p.name for p in CLUSTERED.glob("*.yaml")}
    # Then it builds on the base alone, every patch exists, and the rest is deliberate
    assert kustomization["resources"] == ["../k8s"]
    assert on_disk - patches - {"kustomization.yaml"} == CLUSTERED_NOT_APPLIED
    # And once rendered it holds exactly the base's objects (patches add none)
    rendered = clustered()
    names = [(d["kind"], d["metadata"]["name"]) for d in rendered]
    assert names == [(d["kind"], d["metadata"]["name"]) for d in base_applied()]
    # And the patched ConfigMap is still a valid one (unknown fields rejected)
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    (config,) = [d for d in rendered if d["kind"] == "ConfigMap"]
    body = {key: value for key, value in config.items() if key != "_file"}
    kubernetes_validate.validate(body, "1.31.0", strict=True)


def test_the_clustered_overlay_sets_only_real_settings() -> None:
    # Given the settings fields, When the overlay's ConfigMap and Secret keys are read
    known = {env_name(field) for field in Settings.model_fields}
    used = set(clustered_config()) | set(clustered_secret())
    # Then every PHONEBANK_* name among them is a field, and nothing secret is in the map
    assert {name for name in used if name.startswith("PHONEBANK_")} - known == set()
    assert set(clustered_secret()) == set(named("Secret", "phonebank-secrets")["stringData"])
    assert set(clustered_secret()) & set(clustered_config()) == set()


@pytest.mark.parametrize("key", ["PHONEBANK_REDIS_URL", *(f"redis-url-{u}" for u in REDIS_USERS)])
def test_each_service_logs_in_to_every_cluster_seed_as_its_own_user(
    key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given one of the overlay's Redis DSNs, a seed list of placeholders only
    dsn = clustered_secret()[key]
    assert "hunter2" not in dsn and re.search(r"<[a-z]+-password>", dsn)
    # When a pod of the overlay loads it with the ConfigMap
    settings = clustered_env(monkeypatch, dsn)
    # Then it is a Redis Cluster of three seeds, each with that service's user, db 0
    assert settings.redis_cluster
    seeds = [urlsplit(seed) for seed in settings.redis_url.split(",")]
    user = key.removeprefix("redis-url-") if key.startswith("redis-url-") else "operator"
    assert len(seeds) == 3 and {seed.username for seed in seeds} == {user}
    assert len({seed.hostname for seed in seeds}) == 3
    assert "hunter2" not in str(settings.masked())


def test_the_keda_trigger_reads_the_lag_from_the_config_map_brokers() -> None:
    # Given the overlay's ConfigMap and the assigner's ScaledObject, both rendered
    config = clustered_config()
    (trigger,) = clustered_one("ScaledObject", "phonebank-assigner")["spec"]["triggers"]
    meta = trigger["metadata"]
    # Then the trigger asks the same three brokers for the same group's lag on the topic
    brokers = config["PHONEBANK_KAFKA_BOOTSTRAP_SERVERS"].split(",")
    assert len(brokers) == 3
    assert meta["bootstrapServers"].split(",") == brokers
    assert meta["consumerGroup"] == config["PHONEBANK_ASSIGNER_GROUP"]
    assert meta["topic"] == config["PHONEBANK_NUMBERS_TOPIC"]
    # And the parked backlog still adds no replica
    assert meta["excludePersistentLag"] == "true"
    # And the base keeps its single bootstrap address
    base = named("ScaledObject", "phonebank-assigner")["spec"]["triggers"][0]["metadata"]
    assert base["bootstrapServers"] == config_map()["PHONEBANK_KAFKA_BOOTSTRAP_SERVERS"]


def test_replication_fits_the_three_brokers(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the overlay's settings and the Strimzi example they point at
    settings = clustered_env(monkeypatch, clustered_secret()["redis-url-assigner"])
    pool, kafka = strimzi()["KafkaNodePool"], strimzi()["Kafka"]
    brokers = settings.bootstrap_servers
    # When the replication of the topics phonebank creates is computed on that cluster
    replicas, min_isr = replication_for(settings, len(brokers))
    # Then it is three replicas, two in sync: one broker may go, writes go on
    assert (replicas, min_isr) == (3, 2)
    assert (settings.kafka_replication_factor, settings.kafka_min_insync_replicas) == (3, 2)
    # And the brokers listed are the node pool's pods, on its plain listener
    assert "broker" in pool["spec"]["roles"] and pool["spec"]["replicas"] == len(brokers)
    cluster, namespace = kafka["metadata"]["name"], kafka["metadata"]["namespace"]
    (listener,) = kafka["spec"]["kafka"]["listeners"]
    pods = [f"{cluster}-{pool['metadata']['name']}-{i}" for i in range(len(brokers))]
    service = f"{cluster}-kafka-brokers.{namespace}.svc:{listener['port']}"
    assert brokers == [f"{pod}.{service}" for pod in pods]
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == cluster
    # And Kafka's own defaults agree, its offsets topic included
    broker_config = kafka["spec"]["kafka"]["config"]
    assert broker_config["default.replication.factor"] == replicas
    assert broker_config["offsets.topic.replication.factor"] == replicas
    assert broker_config["min.insync.replicas"] == min_isr
    assert broker_config["unclean.leader.election.enable"] is False
    assert kafka["metadata"]["annotations"]["strimzi.io/kraft"] == "enabled"


def test_kustomize_renders_the_overlay_as_the_tests_do() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with kustomize) is not installed")
    # Given the overlay rendered by kustomize itself
    result = subprocess.run(
        [kubectl, "kustomize", str(CLUSTERED)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    rendered = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(result.stdout)}
    # Then it has the objects, the ConfigMap and the trigger of the tests' rendering
    ours = {(d["kind"], d["metadata"]["name"]): d for d in clustered()}
    assert set(rendered) == set(ours)
    key = ("ConfigMap", "phonebank-config")
    assert rendered[key]["data"] == ours[key]["data"]
    key = ("ScaledObject", "phonebank-assigner")
    assert rendered[key]["spec"]["triggers"] == ours[key]["spec"]["triggers"]
    assert {d["metadata"]["namespace"] for k, d in rendered.items() if k[0] != "Namespace"} == {
        "phonebank"
    }
