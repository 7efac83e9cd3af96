from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from simulators.incidents import ExpectedAlert, Incident, IncidentKind, write_ground_truth
from simulators.scoring import RaisedAlert, score

H = 3_600_000
T0 = 1_794_960_000_000  # 2026-11-18T00:00:00Z


def incident(
    kind: IncidentKind, alert_kind: str, subject: str, start_ms: int, household: str | None = None
) -> Incident:
    return Incident(
        incident=kind,
        start_ms=start_ms,
        start="",
        household=household,
        expected_alert=ExpectedAlert(kind=alert_kind, severity="critical", subject=subject),
    )


TRUTH = [
    incident(IncidentKind.SOS, "sos", "r1", T0 + 10 * H),
    incident(IncidentKind.COLLAPSE, "inactivity", "r2", T0 + 20 * H),
    incident(IncidentKind.FALL, "fall", "r3", T0 + 30 * H),
    incident(IncidentKind.DOOR_LEFT_OPEN, "door_left_open", "r4", T0 + 40 * H, household="h4"),
]


def test_detections_delays_misses_and_false_alarms() -> None:
    alerts = [
        RaisedAlert("sos", "r1", T0 + 10 * H + 2_000),
        RaisedAlert("inactivity", "r2", T0 + 22 * H),
        RaisedAlert("inactivity", "r2", T0 + 23 * H),  # the same episode, updated: not a false alarm
        RaisedAlert("fall", "r3", T0 + 55 * H),  # past the 24 h window: a miss, and then a false alarm
        RaisedAlert("door_left_open", "r5", T0 + 40 * H + 900_000, household="h4"),  # another resident of h4
        RaisedAlert("inactivity", "r9", T0 + 5 * H),  # nothing happened to r9
    ]
    report = score(TRUTH, alerts)
    assert {k: (s.staged, s.detected) for k, s in report.incidents.items()} == {
        "sos": (1, 1),
        "collapse": (1, 1),
        "fall": (1, 0),
        "door_left_open": (1, 1),
    }
    assert report.incidents["sos"].delay_s(0.5) == 2.0
    assert report.incidents["collapse"].delay_s(0.5) == 7200.0
    assert [i.incident for i in report.missed] == [IncidentKind.FALL]
    assert report.false_alarms == {"inactivity": 1, "fall": 1}


@pytest.mark.integration
def test_score_cli_reads_truth_and_alert_lines(tmp_path: Path) -> None:
    truth, alerts, out = tmp_path / "truth.jsonl", tmp_path / "alerts.jsonl", tmp_path / "report.json"
    write_ground_truth(TRUTH, truth)
    alerts.write_text(
        "\n".join(
            json.dumps(a)
            for a in [
                {
                    "resident": "r1",
                    "kind": "sos",
                    "severity": "critical",
                    "raised_at": "2026-11-18T10:00:05Z",
                },
                {"resident": "r2", "kind": "inactivity", "severity": "warning", "raised_at_ms": T0 + 21 * H},
            ]
        )
        + "\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "hub",
            "simulate",
            "score",
            "--truth",
            str(truth),
            "--alerts",
            str(alerts),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["incidents"]["sos"] == {
        "staged": 1,
        "detected": 1,
        "missed": 0,
        "median_delay_s": 5.0,
        "p95_delay_s": 5.0,
    }
    assert report["incidents"]["fall"]["missed"] == 1
    assert report["false_alarms"] == {}
