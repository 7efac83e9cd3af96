"""How urgent an alert is: the one `Severity` of detectors, rules, alerts, the API and the simulators.

Its values are the external form everywhere (JSON, the database, MQTT, the API, metric labels), and a
`StrEnum` member is that very string, so nothing outside sees a difference. The inactivity detector
decides in numpy arrays, so each severity also has a small integer `rank`, rising with urgency; rank 0
(`NO_SEVERITY`) is the detector's "nothing to raise".
"""

from __future__ import annotations

from enum import StrEnum


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    @classmethod
    def of_rank(cls, rank: int) -> Severity:
        return _BY_RANK[rank]


SEVERITIES: tuple[Severity, ...] = tuple(Severity)  # in rising order: info < warning < critical
_RANKS = {severity: rank for rank, severity in enumerate(SEVERITIES, start=1)}
_BY_RANK = {rank: severity for severity, rank in _RANKS.items()}
NO_SEVERITY = 0
