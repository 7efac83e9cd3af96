"""Device kinds: one module per kind, registered here in `KINDS` (the Zigbee2MQTT converter idea).

To add a kind: write `devices/<kind>.py` with its payload models, a pure `decode()` and a `KIND` that also
declares what the kind means (the evidence of activity it gives, a front-door contact, the alerts its
readings raise at once, what the dashboards count: see `DeviceKind`), add it to the tuple below, put
golden cases in `devices/testdata/<kind>/`, and a simulator in `simulators/<kind>.py` exporting
`SIMULATOR`. Nothing else names a kind. `tests/devices/test_kinds.py` fails if a module here is not
registered.

Besides the kinds, this package holds what devices and everything around them share, pure and without
I/O: the registry file's model (`registry`: where each device is placed) and the device topics
(`topics`).
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
