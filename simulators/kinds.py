"""Which simulator class simulates each device kind; mirrors `devices.KINDS`.

Adding a kind to `devices/` means adding `simulators/<kind>.py` and registering its class here;
`tests/simulators/test_simulators.py` fails until both exist.
"""

from __future__ import annotations

from simulators.device import SimulatedDevice
from simulators.door_sensor import DoorSensor
from simulators.high_altitude_camera import HighAltitudeCamera
from simulators.motion_sensor import MotionSensor
from simulators.smart_peephole import SmartPeephole
from simulators.wristband import Wristband

SIMULATORS: dict[str, type[SimulatedDevice]] = {
    simulator.kind.name: simulator
    for simulator in (DoorSensor, SmartPeephole, Wristband, HighAltitudeCamera, MotionSensor)
}
