"""The vectorized detector core (numpy/scipy): pure, no I/O, arrays in and arrays out."""

from detectors.checkpoint import state_from_bytes, state_to_bytes
from detectors.evidence import Evidence, evidence_of, is_activity, is_stillness, live_evidence
from detectors.inactivity import NEVER, NO_ROOM, NO_TIME, ROOMS, STATE_FORMAT, InactivityDetector, room_of
from detectors.severity import NO_SEVERITY, SEVERITIES, Severity

__all__ = [
    "NEVER",
    "NO_ROOM",
    "NO_SEVERITY",
    "NO_TIME",
    "ROOMS",
    "SEVERITIES",
    "STATE_FORMAT",
    "Evidence",
    "InactivityDetector",
    "Severity",
    "evidence_of",
    "is_activity",
    "is_stillness",
    "live_evidence",
    "room_of",
    "state_from_bytes",
    "state_to_bytes",
]
