"""Learned state as bytes and back: the detector's arrays (and any arrays its owner keeps beside them, one
row per resident) in NumPy's `.npz` layout, compressed. Pure: bytes in, arrays out; where the bytes are
kept is the hub's business.

A checkpoint is only worth restoring into a detector that would have learned the same arrays: the same
parameters, the same arrays with the same meaning. `InactivityDetector.fingerprint()` says which; a
checkpoint of another fingerprint is replaced by relearning from the observations.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping

import numpy as np


def state_to_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """Named arrays as one compressed `.npz` blob (no pickles: plain dtypes and unicode only)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def state_from_bytes(blob: bytes) -> dict[str, np.ndarray]:
    """The arrays of `state_to_bytes`; ValueError when the blob is not one (truncated, overwritten)."""
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as saved:
            return {name: saved[name] for name in saved.files}
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise ValueError(f"not a detector state: {exc}") from exc
