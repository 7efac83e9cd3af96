"""Independent, reproducible random streams derived from one scenario seed.

Every part of a simulation (the community layout, each household, each device, the faults) draws from
its own stream, keyed by a label. Changing how much one part draws (say, a higher malformed rate) then
leaves every other part's numbers untouched, so two scenarios that differ in one knob differ only there.
"""

from __future__ import annotations

import zlib

import numpy as np


def random_stream(seed: int, *labels: str | int) -> np.random.Generator:
    """A generator determined by `seed` and `labels` alone.

    Labels are hashed with CRC-32 rather than `hash()`, which Python salts per process: the same
    scenario must produce the same bytes in every process and on every machine.
    """
    keys = [label if isinstance(label, int) else zlib.crc32(label.encode()) for label in labels]
    return np.random.default_rng([seed, *keys])
