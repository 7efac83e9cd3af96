"""Secrets stay out of logs, CLI output, stored errors and the API's answers to roles that do not act
(issue 12, item 4): the broker password in HUB_MQTT_URL, the keys in caregivers' apprise URLs (which
apprise itself logs), and caregivers' phones and notify URLs for read_only and device_admin tokens."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.alerts.store import AlertFilter, AlertStore
from hub.api.tokens import Role
from hub.broker.passwd import hash_password, render_passwd
from hub.embedded_broker import free_loopback_port
from hub.mqtt import BrokerAddress
from hub.redact import quiet_third_party_loggers, redact_url, redact_urls_in
from hub.registry import Registry
from tests.api.support import client, make_token, press_sos, write_registry
from tests.real_servers import HubProcess, Mosquitto, wait_until

BROKER_PASSWORD = "Pw-9f3kQz71"
KEYS = ("KEYSECRET1", "KEYSECRET2", "KEYSECRET3", "KEYSECRET4")


def test_a_url_keeps_its_host_and_user_and_loses_its_password() -> None:
    assert redact_url("mqtt://hub:s3cr%40t@broker:1883") == "mqtt://hub:***@broker:1883"
    assert redact_url("mqtts://hub:x@[::1]:8883/") == "mqtts://hub:***@[::1]:8883/"
    assert redact_url("mqtt://broker:1883") == "mqtt://broker:1883", "nothing to hide"
    assert redact_url("mqtt://hub:pw@broker:port") == "mqtt://hub:***@broker:port", "not a port: still cut"
    text = ("failed: json://u:KEYSECRET1@10.0.0.1/hook/KEYSECRET2 and https://oapi.example.com/send?token="
            "KEYSECRET3, wecombot://KEYSECRET4.")
    cut = redact_urls_in(text)
    assert not any(key in cut for key in KEYS), cut
    assert cut == "failed: json://… and https://oapi.example.com… wecombot://…", cut
    with pytest.raises(ValueError, match="must look like") as refused:
        BrokerAddress.from_url(f"http://hub:{BROKER_PASSWORD}@broker")
    assert BROKER_PASSWORD not in str(refused.value) and "hub:***@broker" in str(refused.value)


def test_apprise_and_urllib3_keep_keys_out_of_the_log(caplog: pytest.LogCaptureFixture) -> None:
    quiet_third_party_loggers()
    caplog.set_level(logging.DEBUG)
    logging.getLogger("apprise").debug("Loaded WeCom Bot URL: wecombot://KEYSECRET4/")
    logging.getLogger("urllib3.connectionpool").debug('"GET /send?key=KEYSECRET4 HTTP/1.1" 200 2')
    logging.getLogger("apprise").error("Unparseable URL %s", "bogus://KEYSECRET1")
    logging.getLogger("hub.test").debug("the hub's own debug lines still show")
    assert "KEYSECRET" not in caplog.text, caplog.text
    assert "Unparseable URL bogus://…" in caplog.text, "errors still say what failed"
    assert "the hub's own debug lines still show" in caplog.text


@pytest.fixture
def password_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """Mosquitto that checks the hub's password (anonymous devices still allowed, as in the other tests)."""
    passwd = tmp_path / "passwd"
    passwd.write_text(render_passwd({"hub": hash_password(BROKER_PASSWORD)}))
    broker = Mosquitto(tmp_path / "mosquitto", extra_conf=f"password_file {passwd}\n").start()
    yield broker
    broker.stop()


def test_a_hub_at_debug_logs_neither_the_broker_password_nor_notify_keys_and_read_only_sees_no_contacts(
    tmp_path: Path, password_broker: Mosquitto
) -> None:
    registry_path = write_registry(tmp_path / "registry.yaml")
    data = Registry.load(registry_path).file
    closed = free_loopback_port()  # nothing listens: apprise fails and says so, at WARNING
    notify = [f"json://hubuser:KEYSECRET1@127.0.0.1:{closed}/hook/KEYSECRET2?token=KEYSECRET3",
              "bogus://KEYSECRET4"]
    caregivers = [c.model_copy(update={"notify": notify, "phone": "13800000000"}) if c.id == "cg-li" else c
                  for c in data.caregivers]
    Registry(data.model_copy(update={"caregivers": caregivers})).dump(registry_path)
    url = f"mqtt://hub:{BROKER_PASSWORD}@127.0.0.1:{password_broker.port}"
    hub = HubProcess(tmp_path / "hub", registry_path, password_broker, {
        "HUB_MQTT_URL": url, "HUB_LOG_LEVEL": "DEBUG", "HUB_ALERTS_MQTT_ENABLED": "false",
        "HUB_ALERTS_DELIVERY_BACKOFF_INITIAL_S": "0.2", "HUB_ALERTS_DELIVERY_BACKOFF_MAX_S": "0.5"}).start()
    try:
        press_sos(password_broker, "band-wang")

        def failed_deliveries() -> list[str]:
            store = AlertStore(hub.store_path, read_only=True)
            try:
                errors = [d.last_error or "" for a in store.alerts(AlertFilter())
                          for d in store.deliveries(a.id) if d.sink == "apprise" and d.attempts >= 2]
            finally:
                store.close()
            return errors

        errors = wait_until(failed_deliveries, 30, what=f"apprise failing twice; log:\n{hub.log()[-3000:]}")
        assert all("apprise" in e for e in errors), errors
        assert not any(key in e for key in KEYS for e in errors), errors

        operator = make_token(hub, "ops", Role.OPERATOR, communities=("sunshine",))
        viewer = make_token(hub, "viewer", Role.READ_ONLY, communities=("sunshine",))
        admin = make_token(hub, "installer", Role.DEVICE_ADMIN, communities=("sunshine",))
        with client(hub, operator) as ops:
            (alert,) = ops.get("/api/v1/alerts", params={"kind": "sos"}).json()
            answer = ops.get(f"/api/v1/alerts/{alert['id']}").text
            assert "apprise" in answer and not any(key in answer for key in KEYS), answer
            shown = ops.get("/api/v1/registry/caregivers/cg-li").json()
            assert (shown["phone"], shown["notify"]) == ("13800000000", ["json://", "bogus://"])
        for token in (viewer, admin):
            with client(hub, token) as api:
                listed = api.get("/api/v1/registry/caregivers")
                assert listed.status_code == 200
                one = api.get("/api/v1/registry/caregivers/cg-li").json()
                for shown in (*listed.json(), one):
                    assert (shown["phone"], shown["notify"]) == ("", []), shown
                assert "13800000000" not in listed.text and "json://" not in listed.text
                assert one["name"] == "李女士", "who cares for whom is still shown"
    finally:
        hub.stop()
    log = hub.log()
    assert f"broker mqtt://hub:***@127.0.0.1:{password_broker.port}" in log, log[-3000:]
    assert BROKER_PASSWORD not in log
    assert " DEBUG " in log, "the hub did log at DEBUG"
    assert not any(key in log for key in KEYS), [line for line in log.splitlines() if "KEYSECRET" in line]


@pytest.mark.integration
def test_the_command_line_never_prints_the_broker_password(tmp_path: Path) -> None:
    url = f"mqtt://sim:{BROKER_PASSWORD}@127.0.0.1:{free_loopback_port()}"  # nothing listens
    result = subprocess.run([sys.executable, "-m", "hub", "simulate", "run", "--broker", url, "--days", "1",
                             "--households", "1"], capture_output=True, text=True, timeout=120, check=False,
                            cwd=Path(__file__).parents[2])
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "cannot publish to mqtt://sim:***@127.0.0.1" in " ".join(output.split()), output[-2000:]
    assert BROKER_PASSWORD not in output
    started = time.time()
    bad = subprocess.run([sys.executable, "-m", "hub", "run", "--no-view", "--duration", "1"],
                         env={**os.environ, "HUB_MQTT_URL": f"http://hub:{BROKER_PASSWORD}@broker",
                              "HUB_STORE_PATH": str(tmp_path / "hub.sqlite3"), "HUB_HTTP_PORT": "0",
                              "HUB_REGISTRY_PATH": str(write_registry(tmp_path / "registry.yaml"))},
                         capture_output=True, text=True, timeout=120, check=False)
    assert bad.returncode != 0 and time.time() - started < 120
    assert "hub:***@broker" in bad.stdout + bad.stderr, bad.stderr[-2000:]
    assert BROKER_PASSWORD not in bad.stdout + bad.stderr
