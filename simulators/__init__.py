"""Simulators: a smart community's devices and residents, for tests, demos and benchmarks.

One module per device kind, `simulators/<kind>.py` exporting `SIMULATOR` (found by the kind's name, so
`devices.KINDS` stays the one table), builds that kind's payloads from the `devices` models, natively and
in Zigbee2MQTT form. Around them: the community builder (`community`), the resident day model
(`residents`, `households`), incidents with ground truth (`incidents`), faults (`faults`), the
deterministic message stream (`simulation`), publishing with the simulated clock through a connection
it is given (`publishing`), the run summary (`summary`) and load mode (`load`).

The simulators depend on `devices/` (and `detectors/`) only, never on the hub: the hub's CLI
(`hub simulate`, `hub.simulate_cli`) wires them to a broker and to the registry file.
"""
