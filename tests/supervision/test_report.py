"""`hub supervision report` on the scripted month: the CSV and the printable HTML are exactly the golden
files in tests/supervision/golden/ (the HTML's generation time aside). After an intended change, write
them again with the command this test runs, and read the diff before committing them."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from hub.supervision_cli import app
from tests.supervision.support import registry, script_history, script_visits

GOLDEN = Path(__file__).parent / "golden"


def run(tmp_path: Path, *args: str) -> tuple[int, str]:
    place = registry()
    place.dump(tmp_path / "registry.yaml")
    store = tmp_path / "hub.sqlite3"
    if not store.exists():
        script_history(store, place)
        script_visits(store)
    result = CliRunner().invoke(app, ["report", *args], env={
        "HUB_STORE_PATH": str(store), "HUB_REGISTRY_PATH": str(tmp_path / "registry.yaml")})
    return result.exit_code, result.output


def test_monthly_report_of_a_subdistrict_is_the_golden_csv_and_html(tmp_path: Path) -> None:
    code, output = run(tmp_path, "--subdistrict", "hm", "--month", "2025-11",
                       "--csv", str(tmp_path / "hm.csv"), "--html", str(tmp_path / "hm.html"))
    assert code == 0, output
    written = (tmp_path / "hm.csv").read_bytes()
    assert written.startswith("\ufeff".encode()), "a byte-order mark, for spreadsheets to read UTF-8"
    assert written.decode("utf-8-sig") == (GOLDEN / "hm-2025-11.csv").read_text(encoding="utf-8")
    html = re.sub(r"(generated</span>) \d{4}-\d\d-\d\d \d\d:\d\d", r"\1 …",
                  (tmp_path / "hm.html").read_text(encoding="utf-8"))
    assert html == (GOLDEN / "hm-2025-11.html").read_text(encoding="utf-8")


def test_report_refuses_a_bad_month_an_unknown_subdistrict_and_no_output(tmp_path: Path) -> None:
    out = str(tmp_path / "x.csv")
    code, output = run(tmp_path, "--subdistrict", "hm", "--month", "2025-13", "--csv", out)
    assert code == 2 and "YYYY-MM" in output
    code, output = run(tmp_path, "--subdistrict", "nowhere", "--month", "2025-11", "--csv", out)
    assert code == 2 and "no subdistrict 'nowhere'" in output
    code, output = run(tmp_path, "--subdistrict", "hm", "--month", "2025-11")
    assert code == 2 and "--csv, --html or both" in output
    assert not Path(out).exists()
