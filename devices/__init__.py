"""Device kinds: one module per kind, registered here in `KINDS` (the Zigbee2MQTT converter idea).

To add a kind: write `devices/<kind>.py` with its payload models, a pure `decode()` and a `KIND`, add it
to the tuple below, put golden cases in `devices/testdata/<kind>/`, and a simulator in `simulators/`.
`tests/test_devices.py` fails if a module here is not registered.
"""

from __future__ import annotations

from devices import door_sensor, high_altitude_camera, motion_sensor, smart_peephole, wristband
from devices.kind import DecodeError, DeviceKind, Reading, Reason

KINDS: dict[str, DeviceKind] = {
    kind.name: kind
    for kind in (
        door_sensor.KIND,
        smart_peephole.KIND,
        wristband.KIND,
        high_altitude_camera.KIND,
        motion_sensor.KIND,
    )
}

# Modules of this package that are shared machinery rather than device kinds.
SUPPORT_MODULES = frozenset({"kind", "availability", "registry", "topics"})

__all__ = ["KINDS", "SUPPORT_MODULES", "DecodeError", "DeviceKind", "Reading", "Reason"]
