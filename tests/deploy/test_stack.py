"""The production stack as far as it can be checked without a Docker engine: docker-compose.yml parses and
mounts only what exists, every service is health-checked and started in order, .env.example covers every
variable, the pieces agree with each other (broker users, ports, paths, Grafana's provisioning), the image's
healthcheck tells a ready hub from one that is not, and placeholder secrets stop a production hub."""

from __future__ import annotations

import os
import re
import shlex
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from hub.broker.acl import HEALTHCHECK_TOPIC, HEALTHCHECK_USER, HUB_USER
from hub.broker.config import MosquittoLayout
from hub.broker.export import CONFIG_FILE
from hub.registry import Registry
from hub.settings import Settings
from tests.conftest import StartHub
from tests.real_servers import Mosquitto, wait_until

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
# The deployment's own files (registry, secrets, the broker's generated config and certificates) live
# here on the host, outside version control; everything else the stack mounts is in the repository.
DEPLOY_DIR = "./var/deploy"
STARTED_ONCE = "service_completed_successfully"  # a one-shot job that must have succeeded
HUB_NODES = ("hub", "hub-2")

_VARIABLE = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\})")


def env_example() -> dict[str, str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable substitution: ${X}, ${X:-default}, ${X-default}, ${X:?error}, $$ for $."""
    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        value = env.get(name)
        if op in (":?", "?") and not value:
            raise KeyError(f"{name} is required: {arg}")
        if op == ":-" and not value:
            return arg
        if op == "-" and value is None:
            return arg
        return value or ""

    return _VARIABLE.sub(substitute, text)


def compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    loaded = yaml.safe_load(interpolate(COMPOSE.read_text(), env_example() if env is None else env))
    assert isinstance(loaded, dict)
    return loaded


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def image_env() -> dict[str, str]:
    """The Dockerfile's ENV settings."""
    return dict(setting.split("=", 1) for keyword, line in dockerfile_instructions() if keyword == "ENV"
                for setting in shlex.split(line))


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    mounts = []
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            mounts.append((source, target))
    return mounts


def test_the_compose_file_parses_and_names_the_stack() -> None:
    services = compose()["services"]
    assert set(services) == {"broker-config", "mosquitto", "influxdb", "prometheus", "grafana", "postgres",
                             *HUB_NODES}
    assert services["mosquitto"]["image"].startswith("eclipse-mosquitto:2")
    assert services["influxdb"]["image"].startswith("influxdb:2")
    assert services["hub"]["build"] == "."
    assert services["hub"]["image"] == services["broker-config"]["image"]


def test_every_service_is_health_checked_and_waited_for() -> None:
    services = compose()["services"]
    image_healthcheck = any(keyword == "HEALTHCHECK" for keyword, _ in dockerfile_instructions())
    one_shots = {dependency for service in services.values()
                 for dependency, condition in service.get("depends_on", {}).items()
                 if condition["condition"] == STARTED_ONCE}
    assert one_shots == {"broker-config"}
    for name, service in services.items():
        if name in one_shots:
            assert service["restart"] == "no", name
            continue
        healthcheck = service.get("healthcheck")
        if healthcheck is None:
            assert service.get("build") == "." and image_healthcheck, f"{name} has no healthcheck"
        else:
            assert not healthcheck.get("disable") and healthcheck["test"][0] in ("CMD", "CMD-SHELL"), name
        for dependency, condition in service.get("depends_on", {}).items():
            assert isinstance(condition, dict), f"{name} must wait for {dependency}'s health, not its start"
            expected = STARTED_ONCE if dependency in one_shots else "service_healthy"
            assert condition["condition"] == expected, (name, dependency)
    for node in HUB_NODES:
        assert set(services[node]["depends_on"]) == {"mosquitto", "influxdb", "postgres"}
    assert set(services["grafana"]["depends_on"]) == {"influxdb", "prometheus"}


def test_every_store_is_a_named_volume() -> None:
    stack = compose()
    declared = set(stack["volumes"])
    used = {volume.split(":")[0] for service in stack["services"].values()
            for volume in service.get("volumes", []) if not volume.startswith(".")}
    assert used == declared
    targets = {name: {volume.split(":")[1] for volume in service.get("volumes", [])}
               for name, service in stack["services"].items()}
    assert MosquittoLayout().data_dir in targets["mosquitto"]
    assert {"/var/lib/influxdb2", "/etc/influxdb2"} <= targets["influxdb"]
    assert "/var/lib/grafana" in targets["grafana"]
    assert "/prometheus" in targets["prometheus"]
    hub_dir = Path(image_env()["HUB_STORE_PATH"]).parent
    assert Path(image_env()["HUB_REGISTRY_PATH"]).parent == hub_dir
    assert str(hub_dir) in targets["hub"]


def test_every_file_the_compose_file_mounts_is_in_the_repository() -> None:
    stack = compose()
    assert (ROOT / stack["services"]["hub"]["build"] / "Dockerfile").is_file()
    for name, service in stack["services"].items():
        for source, target in bind_mounts(service):
            if source.startswith(DEPLOY_DIR):
                continue  # the deployment's own: test_the_deployment_directory_is_what_the_stack_reads
            assert (ROOT / source).exists(), f"{name} mounts {source} at {target}, which does not exist"
    init_script = ROOT / "dashboards/influxdb/init-dbrp.sh"
    assert init_script.stat().st_mode & stat.S_IXUSR  # the image runs only executable init scripts


def test_the_deployment_directory_is_what_the_stack_reads() -> None:
    """broker-config writes the broker's files where Mosquitto reads them, with the users it checks."""
    services = compose()["services"]
    [(deploy_dir, mounted_at)] = bind_mounts(services["broker-config"])
    assert deploy_dir == DEPLOY_DIR
    command = " ".join(services["broker-config"]["command"])

    def on_host(option: str) -> str:
        found = re.search(rf"--{option} {re.escape(mounted_at)}/(\S+)", command)
        assert found is not None, f"broker-config's --{option} is not in {DEPLOY_DIR}"
        return f"{DEPLOY_DIR}/{found.group(1)}"

    broker_config_dir = dict(bind_mounts(services["mosquitto"]))[on_host("out")]
    assert broker_config_dir == MosquittoLayout().config_dir  # where the generated mosquitto.conf points
    assert services["mosquitto"].get("command") is None  # the image's: mosquitto -c /mosquitto/config/...
    assert CONFIG_FILE == "mosquitto.conf"
    assert not on_host("secrets").startswith(on_host("out")), "the secrets must stay out of the broker"
    assert "--registry /var/lib/hub/registry.yaml" in command  # the hub's own copy, in its volume ...
    # ... seeding the store the nodes share, whose registry the broker's users then follow
    assert services["broker-config"]["environment"]["HUB_STORE_URL"] == services["hub"]["environment"][
        "HUB_STORE_URL"]
    assert "postgres" in services["broker-config"]["depends_on"]

    healthcheck = services["mosquitto"]["healthcheck"]["test"][1]
    assert f"-u {HEALTHCHECK_USER} " in healthcheck
    assert f"-t '{HEALTHCHECK_TOPIC}'" in healthcheck
    assert f"-p {MosquittoLayout().plain_port} " in healthcheck
    assert services["mosquitto"]["ports"] == [f"{MosquittoLayout().tls_port}:{MosquittoLayout().tls_port}"]
    hub_url = services["hub"]["environment"]["HUB_MQTT_URL"]
    assert hub_url.startswith(f"mqtt://{HUB_USER}:")
    assert hub_url.endswith(f"@mosquitto:{MosquittoLayout().plain_port}")


def test_two_hub_nodes_share_one_postgresql_each_with_its_own_ids() -> None:
    stack = compose({**env_example(), "POSTGRES_PASSWORD": "p0stgres-real"})
    services = stack["services"]
    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:")  # the official image
    assert "postgres-data:/var/lib/postgresql/data" in postgres["volumes"]
    assert postgres["healthcheck"]["test"][1].startswith("pg_isready")
    assert postgres["environment"]["POSTGRES_PASSWORD"] == "p0stgres-real"  # from .env, never in the file
    assert "ports" not in postgres, "the database stays on the stack's network"
    nodes = {node: services[node]["environment"] for node in HUB_NODES}
    urls = {environment["HUB_STORE_URL"] for environment in nodes.values()}
    assert urls == {f"postgresql://{postgres['environment']['POSTGRES_USER']}:p0stgres-real@postgres:5432/"
                    f"{postgres['environment']['POSTGRES_DB']}"}
    assert len({environment["HUB_NODE_ID"] for environment in nodes.values()}) == len(HUB_NODES)
    assert len({environment["HUB_MQTT_CLIENT_ID"] for environment in nodes.values()}) == len(HUB_NODES)
    assert nodes["hub"]["HUB_MQTT_CLIENT_ID"] == "sc-hub", "the single hub's session carries on"
    for node in HUB_NODES:  # the same settings otherwise
        assert {k: v for k, v in nodes[node].items() if k not in ("HUB_NODE_ID", "HUB_MQTT_CLIENT_ID")} == {
            k: v for k, v in nodes["hub"].items() if k not in ("HUB_NODE_ID", "HUB_MQTT_CLIENT_ID")}
    assert len({port for node in HUB_NODES for port in services[node]["ports"]}) == len(HUB_NODES)
    with pytest.raises(KeyError, match="POSTGRES_PASSWORD is required"):
        compose({k: v for k, v in env_example().items() if k != "POSTGRES_PASSWORD"})


def test_grafana_and_prometheus_read_the_dashboards_provisioning() -> None:
    services = compose()["services"]
    grafana_mounts = dict(bind_mounts(services["grafana"]))
    provider = yaml.safe_load((ROOT / "dashboards/provisioning/dashboards/smart-community.yaml").read_text())
    dashboards_path = provider["providers"][0]["options"]["path"]
    assert grafana_mounts["./dashboards/generated"] == dashboards_path
    assert list((ROOT / "dashboards/generated").glob("*.json"))
    for kind in ("datasources", "dashboards"):
        assert grafana_mounts[f"./dashboards/provisioning/{kind}"] == f"/etc/grafana/provisioning/{kind}"
    datasources = (ROOT / "dashboards/provisioning/datasources/smart-community.yaml").read_text()
    yaml.safe_load(datasources)
    wanted = {match.group("name") for match in _VARIABLE.finditer(datasources) if match.group("name")}
    assert wanted and wanted <= set(services["grafana"]["environment"])
    prometheus = yaml.safe_load((ROOT / "dashboards/prometheus.yml").read_text())
    targets = [t for job in prometheus["scrape_configs"] for c in job["static_configs"] for t in c["targets"]]
    assert {f"{node}:8080" for node in HUB_NODES} <= set(targets)
    prometheus_mounts = dict(bind_mounts(services["prometheus"]))
    assert prometheus_mounts["./dashboards/prometheus.yml"] == "/etc/prometheus/prometheus.yml"


def test_influxdb_keeps_readings_as_long_as_the_hub_does() -> None:
    for env, days in ((env_example(), "180"), ({**env_example(), "READINGS_RETENTION_DAYS": "90"}, "90")):
        services = compose(env)["services"]
        assert services["influxdb"]["environment"]["DOCKER_INFLUXDB_INIT_RETENTION"] == f"{days}d"
        assert services["hub"]["environment"]["HUB_RETENTION_READINGS_DAYS"] == days
    assert Settings().retention_readings_days == 180, "the stack's default is the hub's own"


def test_env_example_documents_every_variable_the_compose_file_uses() -> None:
    used = {m.group("name") for m in _VARIABLE.finditer(COMPOSE.read_text()) if m.group("name")}
    documented = env_example()
    assert used <= set(documented), f"undocumented: {used - set(documented)}"
    assert set(documented) <= used, f"documented, never used: {set(documented) - used}"
    required = {m.group("name") for m in _VARIABLE.finditer(COMPOSE.read_text()) if m.group("op") == ":?"}
    assert {name for name in required if "change-me" not in documented[name]} == set()


def test_the_hub_refuses_the_example_secrets_and_takes_real_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    def hub_environment(env: dict[str, str]) -> dict[str, str]:
        # Compose substitutes after parsing: an empty ${X:-} is an empty string, not YAML's null.
        environment = compose(env)["services"]["hub"]["environment"]
        return {**image_env(), **{name: value or "" for name, value in environment.items()}}

    def settings_with(environment: dict[str, str]) -> Settings:
        for name in [name for name in os.environ if name.startswith("HUB_")]:
            monkeypatch.delenv(name)
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        return Settings()

    with pytest.raises(ValidationError) as refused:
        settings_with(hub_environment(env_example()))
    assert "the password in HUB_MQTT_URL looks like a placeholder" in str(refused.value)
    assert "HUB_INFLUX_TOKEN looks like a placeholder" in str(refused.value)
    assert "the password in HUB_STORE_URL looks like a placeholder" in str(refused.value)

    chosen = {**env_example(), "MQTT_HUB_PASSWORD": "k2J9x0QeLr7", "INFLUXDB_TOKEN": "Qm8v1t0-real",
              "POSTGRES_PASSWORD": "p0stgres-real"}
    settings = settings_with(hub_environment(chosen))
    assert settings.environment == "production"
    assert settings.mqtt_url == "mqtt://hub:k2J9x0QeLr7@mosquitto:1883"
    assert settings.http_host == "0.0.0.0"


def production(**env: str) -> dict[str, Any]:
    return {"HUB_ENVIRONMENT": "production", "HUB_MQTT_URL": "mqtt://hub:Xk29sQ@broker:1883", **env}


@pytest.mark.parametrize(("env", "refusal"), [
    ({"HUB_MQTT_URL": "mqtt://hub:change-me@broker:1883"}, "the password in HUB_MQTT_URL looks like a"),
    ({"HUB_MQTT_URL": "mqtt://hub@broker:1883"}, "the password in HUB_MQTT_URL is empty"),
    ({"HUB_MQTT_URL": ""}, "HUB_MQTT_URL is unset"),
    ({"HUB_INFLUX_URL": "http://influxdb:8086"}, "HUB_INFLUX_TOKEN is empty"),
    ({"HUB_INFLUX_URL": "http://influx:8086", "HUB_INFLUX_TOKEN": "CHANGEME"}, "HUB_INFLUX_TOKEN looks like"),
    ({"HUB_ALERTS_WEBHOOK_URL": "https://example.org/hook"}, "HUB_ALERTS_WEBHOOK_SECRET is empty"),
    ({"HUB_ALERTS_WEBHOOK_URL": "https://example.org/hook", "HUB_ALERTS_WEBHOOK_SECRET": "secret"},
     "HUB_ALERTS_WEBHOOK_SECRET looks like a placeholder"),
    ({"HUB_ALERTS_MQTT_URL": "mqtt://alerts:change-me-too@broker:1883"},
     "the password in HUB_ALERTS_MQTT_URL looks like a placeholder"),
])
def test_production_settings_refuse_placeholder_and_empty_secrets(
        monkeypatch: pytest.MonkeyPatch, env: dict[str, str], refusal: str) -> None:
    for name, value in production(**env).items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=re.escape(refusal)):
        Settings()
    monkeypatch.setenv("HUB_ENVIRONMENT", "development")  # the same values are fine for trying things out
    assert Settings().environment == "development"


def test_production_settings_take_real_secrets_and_ignore_unused_ones(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in production(HUB_INFLUX_URL="http://influxdb:8086", HUB_INFLUX_TOKEN="a8Fq-29xk",
                                  HUB_ALERTS_WEBHOOK_SECRET="change-me").items():  # no webhook URL: unused
        monkeypatch.setenv(name, value)
    assert Settings().influx_token.get_secret_value() == "a8Fq-29xk"
    monkeypatch.setenv("HUB_ENVIRONMENT", "staging")
    with pytest.raises(ValidationError, match="environment"):
        Settings()


@pytest.mark.integration
def test_a_production_hub_on_placeholder_secrets_stops_with_a_clear_message(
        tmp_path: Path, one_of_each_registry: Path) -> None:
    env = {**os.environ, "HUB_ENVIRONMENT": "production", "HUB_MQTT_URL": "mqtt://hub:change-me@127.0.0.1:1",
           "HUB_STORE_PATH": str(tmp_path / "hub.sqlite3"), "HUB_HTTP_PORT": "0"}
    result = subprocess.run([sys.executable, "-m", "hub", "run", "--registry", str(one_of_each_registry),
                             "--no-view"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0
    message = " ".join(result.stderr.split("ValidationError:")[-1].split())  # rich wraps long lines
    assert "HUB_ENVIRONMENT=production refuses these secrets: the password in HUB_MQTT_URL looks like a " \
           "placeholder" in message
    assert "change-me" not in result.stderr  # the secret itself is never echoed
    assert not (tmp_path / "hub.sqlite3").exists()


def test_the_image_is_the_hub_running_as_a_non_root_user() -> None:
    instructions = dockerfile_instructions()
    keywords = [keyword for keyword, _ in instructions]
    assert instructions[0] == ("FROM", "python:3.11-slim")
    users = [argument for keyword, argument in instructions if keyword == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN")  # installs as root
    assert image_env()["HUB_HTTP_HOST"] == "0.0.0.0"
    assert image_env()["HUB_ENVIRONMENT"] == "production"
    [command] = [argument for keyword, argument in instructions if keyword == "CMD"]
    assert command == '["hub", "run", "--no-view"]'
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {"var", ".env", ".venv", ".git"} <= ignored  # secrets and stores never reach the build
    for keyword, argument in instructions:
        if keyword == "COPY":
            *sources, _ = argument.split()
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
                assert source not in ignored, f"COPY {source}: excluded by .dockerignore"


def healthcheck_command() -> str:
    [argument] = [argument for keyword, argument in dockerfile_instructions() if keyword == "HEALTHCHECK"]
    assert "/ready" in argument
    return argument.split(" CMD ", 1)[1]


def run_healthcheck(port: str) -> int:
    env = {**os.environ, "HUB_HTTP_PORT": port, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.run(["sh", "-c", healthcheck_command()], env=env, capture_output=True, timeout=30,
                          check=False).returncode


def test_the_image_healthcheck_follows_the_hubs_readiness(start_hub: StartHub, mosquitto: Mosquitto,
                                                          one_of_each_registry: Path) -> None:
    hub = start_hub(one_of_each_registry)
    port = hub.http_url.rsplit(":", 1)[1]
    wait_until(lambda: run_healthcheck(port) == 0, 15, what="the healthcheck to pass on a ready hub")
    mosquitto.stop()  # no broker: the hub still lives but is not ready
    wait_until(lambda: run_healthcheck(port) != 0, 30, what="the healthcheck to fail without a broker")
    hub.stop()
    assert run_healthcheck(port) != 0


@pytest.mark.integration
def test_the_influxdb_init_script_maps_the_database_onto_the_bucket(tmp_path: Path) -> None:
    """InfluxDB 2 is not packaged for Debian, so the `influx` CLI is stood in for by a script that records
    its arguments; what runs for real is the init script's own logic under bash."""
    script = ROOT / "dashboards/influxdb/init-dbrp.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    recorded = tmp_path / "influx-args"
    (tmp_path / "influx").write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {recorded}\n')
    (tmp_path / "influx").chmod(0o755)
    base = {"PATH": f"{tmp_path}:/usr/bin:/bin", "DOCKER_INFLUXDB_INIT_ORG": "smart-community",
            "DOCKER_INFLUXDB_INIT_BUCKET": "sc-bucket", "DOCKER_INFLUXDB_INIT_BUCKET_ID": "0a1b2c3d4e5f6789"}
    subprocess.run([str(script)], env={**base, "INFLUXDB_DATABASE": "smart-community"}, check=True,
                   capture_output=True)
    args = recorded.read_text().splitlines()
    assert args[:3] == ["v1", "dbrp", "create"]
    flags = dict(zip(args[3::2], args[4::2], strict=False))
    assert flags["--bucket-id"] == "0a1b2c3d4e5f6789"
    assert flags["--db"] == "smart-community"
    assert flags["--rp"] == "autogen"
    assert flags["--org"] == "smart-community"
    assert "--default" in args
    subprocess.run([str(script)], env=base, check=True, capture_output=True)
    assert "sc-bucket" in recorded.read_text().splitlines()  # no database named: the bucket's name
    failed = subprocess.run([str(script)], env={"PATH": base["PATH"]}, capture_output=True, check=False)
    assert failed.returncode != 0  # run outside the image's initialisation it stops, it does not guess


@pytest.mark.integration
def test_broker_config_seeds_the_hubs_registry_once_and_exports_from_the_hubs_copy(
        tmp_path: Path, one_of_each_registry: Path) -> None:
    """broker-config's script, run here with the container's paths moved under tmp_path."""
    script = compose()["services"]["broker-config"]["command"][0]
    hub_dir, deploy = tmp_path / "hub-data", tmp_path / "deploy"
    hub_dir.mkdir()
    deploy.mkdir()
    script = (script.replace(" /var/lib/hub/", f" {hub_dir}/").replace(" /deploy/", f" {deploy}/")
              .replace("-o hub -g hub", f"-o {os.getuid()} -g {os.getgid()}"))
    assert " /var/lib/hub" not in script and " /deploy" not in script  # nothing outside tmp_path is touched
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "HUB_ENVIRONMENT": "production", "MQTT_HUB_PASSWORD": "k2J9x0QeLr7",
           "MQTT_HEALTHCHECK_PASSWORD": "h8Yw-3kq"}

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(["sh", "-ec", script], env=env, capture_output=True, text=True, timeout=60,
                              check=False)

    missing = run()
    assert missing.returncode == 1
    assert "put the community's registry at var/deploy/registry.yaml" in missing.stderr

    seed = Registry.load(one_of_each_registry)
    seed.dump(deploy / "registry.yaml")
    first = run()
    assert first.returncode == 0, first.stderr
    assert (hub_dir / "registry.yaml").read_text() == (deploy / "registry.yaml").read_text()
    assert {p.name for p in (deploy / "mosquitto").iterdir()} == {"mosquitto.conf", "passwd", "acl"}
    assert yaml.safe_load((deploy / "mqtt-secrets.yaml").read_text())[HUB_USER] == "k2J9x0QeLr7"
    assert "user door-2" not in (deploy / "mosquitto" / "acl").read_text()

    # The hub's copy has moved on (edited through its API): it is what counts now, not the seed.
    added = seed.data.devices[0].model_copy(update={"id": "door-2", "zigbee2mqtt": None})
    edited = Registry(seed.data.model_copy(update={"devices": [*seed.data.devices, added]}))
    edited.dump(hub_dir / "registry.yaml")
    second = run()
    assert second.returncode == 0, second.stderr
    assert "user door-2" in (deploy / "mosquitto" / "acl").read_text()
    assert "door-2" not in (deploy / "registry.yaml").read_text()
