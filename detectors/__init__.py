"""The vectorized detector core (numpy/scipy): pure, no I/O, arrays in and arrays out."""

from detectors.evidence import Evidence, evidence_of, is_activity, is_stillness, live_evidence
from detectors.inactivity import NEVER, NO_TIME, InactivityDetector, Severity

__all__ = [
    "NEVER",
    "NO_TIME",
    "Evidence",
    "InactivityDetector",
    "Severity",
    "evidence_of",
    "is_activity",
    "is_stillness",
    "live_evidence",
]
