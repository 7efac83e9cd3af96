"""`hub alerts …` against a store the service wrote, as an operator would use it next to a running hub."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from hub.alerts_cli import app
from hub.clock import SystemClock
from hub.registry_sources import import_registry
from tests.alerts.support import alert_service, community_registry, falling_object_request, resident_request


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """A store with two alerts, on each backend in turn, and the environment pointing `hub` at it."""
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    registry_path = tmp_path / "registry.yaml"
    community_registry().dump(registry_path)
    if url is not None:  # on PostgreSQL the registry lives in the store, as `hub registry import` puts it
        import_registry(url, community_registry(), actor="test", what="import", kept=20)
    store_path = tmp_path / "hub.sqlite3"
    service = alert_service(store_path, SystemClock(), store_url=url)
    try:
        service.raise_alert(resident_request("inactivity", "warning", evidence={"inactive_s": 14_400}))
        service.raise_alert(resident_request("sos", "critical"))
    finally:
        service.close()
    return {"HUB_STORE_PATH": str(store_path), "HUB_REGISTRY_PATH": str(registry_path), "COLUMNS": "200",
            **({"HUB_STORE_URL": url} if url else {})}


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.output


def test_list_and_filters(env: dict[str, str]) -> None:
    code, output = run(env, "list")
    assert code == 0, output
    assert "2 alert(s)" in output and "inactivity" in output and "sos" in output
    code, output = run(env, "list", "--severity", "critical")
    assert code == 0 and "1 alert(s)" in output and "inactivity" not in output
    code, output = run(env, "list", "--state", "closed")
    assert code != 0 and "closed" in output
    service = alert_service(Path(env["HUB_STORE_PATH"]), SystemClock(), store_url=env.get("HUB_STORE_URL"))
    try:
        service.raise_alert(falling_object_request("e1"))  # the building's: in no grid
    finally:
        service.close()
    # By any of the registry's levels: the grid holds the home's two, the compound the building's too.
    code, output = run(env, "list", "--grid", "g7")
    assert code == 0 and "2 alert(s)" in output and "falling_object" not in output, output
    code, output = run(env, "list", "--compound", "c1", "--community", "sunshine")
    assert code == 0 and "3 alert(s)" in output, output
    code, output = run(env, "list", "--grid", "nowhere")
    assert code == 1 and "there is no grid 'nowhere'" in output, output


def test_ack_assign_resolve_and_show(env: dict[str, str]) -> None:
    assert run(env, "ack", "1", "--by", "李女士") == (0, "alert 1: inactivity warning acknowledged\n")
    code, output = run(env, "assign", "1", "--to", "cg-grid", "--by", "李女士")
    assert (code, output) == (0, "alert 1: inactivity warning acknowledged (assigned to cg-grid)\n")
    code, output = run(env, "resolve", "1", "--outcome", "visited", "--by", "张网格员", "--note", "在家")
    assert code == 0 and "resolved" in output
    code, output = run(env, "show", "1")
    assert code == 0, output
    for expected in ("visited by 张网格员", "在家", "raised", "acknowledged", "assigned", "resolved",
                     "inactive_s"):
        assert expected in output
    code, output = run(env, "list", "--state", "resolved")
    assert code == 0 and "1 alert(s)" in output


def test_refused_actions_exit_non_zero_with_the_reason(env: dict[str, str]) -> None:
    assert run(env, "resolve", "2", "--outcome", "resident_ok", "--by", "李女士")[0] == 0
    code, output = run(env, "resolve", "2", "--outcome", "resident_ok", "--by", "李女士")
    assert code == 1 and "already resolved by 李女士" in output
    code, output = run(env, "ack", "2", "--by", "李女士")
    assert code == 1 and "cannot acknowledge alert 2" in output
    code, output = run(env, "resolve", "1", "--outcome", "fine", "--by", "李女士")
    assert code == 1 and "unknown outcome 'fine'" in output
    code, output = run(env, "assign", "1", "--to", "cg-nobody", "--by", "李女士")
    assert code == 1 and "no such caregiver" in output
    code, output = run(env, "show", "99")
    assert code == 1 and "there is no alert 99" in output


def test_missing_store_is_an_error(tmp_path: Path) -> None:
    code, output = run({"HUB_STORE_PATH": str(tmp_path / "absent.sqlite3")}, "list")
    assert code == 1 and "no hub store" in output
    assert not (tmp_path / "absent.sqlite3").exists()


@pytest.mark.integration
def test_runs_as_a_module(env: dict[str, str]) -> None:
    command = [sys.executable, "-m", "hub.alerts_cli", "ack", "2", "--by", "值班员"]
    result = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "alert 2: sos critical acknowledged\n"
    again = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, timeout=60,
                           check=False)
    assert again.returncode == 1 and "already acknowledged by 值班员" in again.stderr


def test_times_are_in_the_communitys_zone_and_say_so(env: dict[str, str], tmp_path: Path) -> None:
    """Not this machine's zone (UTC on a server) unlabelled: the community's, Asia/Shanghai by default, as
    the live view and the caregiver page show them."""
    code, output = run({**env, "TZ": "UTC"}, "show", "1")
    assert code == 0, output
    first_seen = next(line for line in output.splitlines() if "first seen" in line)
    assert first_seen.endswith(" UTC+8"), first_seen
    assert "UTC+8" in run(env, "list")[1]

    elsewhere = tmp_path / "kolkata.yaml"
    data = yaml.safe_load(Path(env["HUB_REGISTRY_PATH"]).read_text(encoding="utf-8"))
    data["communities"][0]["timezone"] = "Asia/Kolkata"
    elsewhere.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    output = run({**env, "HUB_REGISTRY_PATH": str(elsewhere)}, "show", "1")[1]
    assert next(line for line in output.splitlines() if "first seen" in line).endswith(" UTC+5:30")


def test_names_beside_the_ids_the_commands_take(env: dict[str, str]) -> None:
    assert run(env, "assign", "1", "--to", "cg-grid", "--by", "cg-li")[0] == 0
    code, output = run(env, "show", "1")
    assert code == 0, output
    for expected in ("王奶奶 (r-wang)", "阳光社区 (sunshine) / b7 / 7-2-1402 (h1402)", "张网格员 (cg-grid)"):
        assert expected in output, output
    code, output = run(env, "list")
    assert "王奶奶 (r-wang)" in output and "张网格员 (cg-grid)" in output, output
    # Without the registry the ids alone, and still the times' zone (the default).
    code, output = run({**env, "HUB_REGISTRY_PATH": "/nonexistent/registry.yaml"}, "list")
    assert code == 0 and "r-wang" in output and "王奶奶" not in output and "UTC+8" in output, output


def test_reopen_and_report_record_who_did_it_at_the_command_line(env: dict[str, str]) -> None:
    code, output = run(env, "reopen", "1", "--note", "再看看", "--by", "主管")
    assert code == 1 and "it is open, not resolved" in output
    assert run(env, "resolve", "1", "--outcome", "visited", "--by", "cg-grid")[0] == 0
    assert run(env, "reopen", "1", "--note", "再看看", "--by", "主管") == \
        (0, "alert 1: inactivity warning open\n")
    code, output = run(env, "show", "1")
    assert code == 0 and "reopened" in output and "再看看" in output and "cli" in output, output

    code, output = run(env, "report", "--category", "hazard", "--building", "b7", "--note", "楼梯灯坏了",
                       "--by", "cg-grid")
    assert (code, output) == (0, "alert 3: report_hazard warning open\n")
    code, output = run(env, "show", "3")
    assert code == 0 and "楼梯灯坏了" in output and "张网格员 (cg-grid)" in output, output
    assert run(env, "report", "--category", "hazard", "--note", "x", "--by", "a")[0] == 2  # no place
    code, output = run(env, "report", "--category", "hazard", "--building", "b-none", "--note", "x",
                       "--by", "a")
    assert code == 1 and "no building 'b-none'" in output
