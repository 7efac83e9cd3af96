"""The vectorized detector core (numpy/scipy): pure, no I/O, arrays in and arrays out."""

from detectors.checkpoint import state_from_bytes, state_to_bytes
from detectors.evidence import Evidence, evidence_of, is_activity, is_stillness, live_evidence
from detectors.inactivity import NEVER, NO_TIME, STATE_FORMAT, InactivityDetector
from detectors.severity import NO_SEVERITY, SEVERITIES, Severity

__all__ = [
    "NEVER",
    "NO_SEVERITY",
    "NO_TIME",
    "SEVERITIES",
    "STATE_FORMAT",
    "Evidence",
    "InactivityDetector",
    "Severity",
    "evidence_of",
    "is_activity",
    "is_stillness",
    "live_evidence",
    "state_from_bytes",
    "state_to_bytes",
]
