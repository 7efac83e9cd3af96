"""`make demo`'s command on the embedded defaults: embedded amqtt broker (MQTT 3.1.1), SQLite store,
simulated community on a followed clock."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from devices import KINDS
from hub.store import Store


@pytest.mark.integration
def test_demo_runs_on_embedded_defaults_and_stores_every_kind(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    result = subprocess.run(
        [sys.executable, "-m", "hub", "demo", "--duration", "12", "--no-view", "--households", "10"],
        cwd=tmp_path, env={**env, "COLUMNS": "150"}, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "demo summary" in result.stdout
    assert "caregiver page: http://127.0.0.1:" in result.stderr, "the newcomer is told where to look"
    store = Store(tmp_path / "var/demo/hub.sqlite3", read_only=True)
    counts = store.counts_by_kind()
    assert set(counts) == set(KINDS), counts
    assert all(n > 0 for n in counts.values())
    assert (tmp_path / "var/demo/registry.yaml").exists()
