"""The hub on PostgreSQL end to end, against a real Mosquitto and a real PostgreSQL: `hub intake` (the
intake-only process) takes a stream exactly once through redeliveries and a kill -9; `hub run` takes a
stream once, raises an SOS and serves it through its API, with nothing in a SQLite file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from contextlib import closing
from pathlib import Path

from hub.api.tokens import Role
from hub.mqtt import wait_for_message
from hub.store import Store
from hub.topics import hub_status_topic
from tests.api.support import client, make_token
from tests.conftest import StartHub
from tests.intake.support import sos_press
from tests.real_servers import Mosquitto, wait_until
from tests.traffic import BackgroundPublisher, keys, readings

CLIENT_ID = "hub-pg-test"


def intake_process(tmp_path: Path, mosquitto: Mosquitto, pg_url: str,
                   registry: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HUB_MQTT_URL": mosquitto.url, "HUB_MQTT_CLIENT_ID": CLIENT_ID,
           "HUB_STORE_URL": pg_url, "HUB_STORE_PATH": str(tmp_path / "unused.sqlite3"),
           "HUB_REGISTRY_PATH": str(registry), "HUB_INTAKE_WORKERS": "1", "HUB_LOG_LEVEL": "INFO"}
    log = (tmp_path / "intake.log").open("ab")
    process = subprocess.Popen([sys.executable, "-m", "hub", "intake", "--index", "1"], env=env,
                               stdout=log, stderr=log)
    online = wait_for_message(mosquitto.address, hub_status_topic(f"{CLIENT_ID}-intake-1"),
                              lambda payload: payload == b"online", 30)
    if online is None:
        process.kill()
        process.wait()
        raise TimeoutError(f"hub intake did not come online:\n{(tmp_path / 'intake.log').read_text()}")
    return process


def test_intake_into_postgresql_stores_a_stream_exactly_once(tmp_path: Path, mosquitto: Mosquitto,
                                                              pg_url: str) -> None:
    registry = tmp_path / "registry.yaml"
    messages = readings(3_000, registry)
    expected = keys(messages)
    reader = Store(tmp_path / "unused.sqlite3", url=pg_url, read_only=True)
    process = intake_process(tmp_path, mosquitto, pg_url, registry)
    try:
        first = BackgroundPublisher(mosquitto.address, messages[:2_000], per_second=1_000)
        first.start()
        wait_until(lambda: reader.count_observations() >= 500, 30, what="the stream to start")
        process.send_signal(signal.SIGKILL)  # mid-stream: what was not committed was not acknowledged
        process.wait()
        first.finish()
        process = intake_process(tmp_path, mosquitto, pg_url, registry)
        # Everything again (a publisher's retry after a lost acknowledgement), and the rest.
        again = BackgroundPublisher(mosquitto.address, messages)
        again.start()
        again.finish()
        wait_until(lambda: reader.count_observations() >= len(expected), 60, what="every reading stored")
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert set(reader.observation_keys()) == expected
    assert reader.count_observations() == len(expected), "each once"
    assert reader.counts_by_kind() == dict(Counter(m.kind for m in messages))
    assert reader.dead_letter_counts() == {}
    assert {device for device, _, _ in reader.liveness()} == {device for device, _ in expected}
    reader.close()


def test_hub_run_on_postgresql_takes_a_stream_once_raises_the_sos_and_serves_it(
        tmp_path: Path, mosquitto: Mosquitto, pg_url: str, start_hub: StartHub) -> None:
    registry = tmp_path / "registry.yaml"
    messages = readings(2_000, registry)
    expected = keys(messages)
    hub = start_hub(registry, {"HUB_STORE_URL": pg_url})
    twice = BackgroundPublisher(mosquitto.address, [*messages, *messages[:500]])  # with redeliveries
    twice.start()
    twice.finish()
    now = int(time.time() * 1000)
    press = BackgroundPublisher(mosquitto.address, [sos_press(registry, now)])
    press.start()
    press.finish()
    hub.wait_for(lambda store: store.count_observations() >= len(expected) + 1, 60, "every reading stored")
    with closing(hub.store()) as store:
        assert set(store.observation_keys()) >= expected and store.count_observations() == len(expected) + 1
    operator = make_token(hub, "ops", Role.OPERATOR, communities=("*",))
    with client(hub, operator) as api:
        sos = wait_until(lambda: api.get("/api/v1/alerts", params={"kind": "sos"}).json(), 30,
                         what="the SOS alert through the API")
        # PostgreSQL cannot compare text holding a NUL: refused as bad input, not a failed query.
        assert api.get("/api/v1/alerts", params={"community": "a\x00b"}).status_code == 422
    assert len(sos) == 1 and sos[0]["state"] == "open"
    assert not (tmp_path / "hub0" / "hub.sqlite3").exists(), "nothing went to a SQLite file beside it"
    assert "store postgresql://hub@127.0.0.1" in hub.log()
