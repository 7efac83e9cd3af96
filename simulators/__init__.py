"""Simulators: a smart community's devices and residents, for tests, demos and benchmarks.

One module per device kind (mirroring `devices/`) builds that kind's payloads from the `devices`
models, natively and in Zigbee2MQTT form. Around them: the community builder (`community`), the
resident day model (`residents`, `households`), incidents with ground truth (`incidents`), faults
(`faults`), the deterministic message stream (`simulation`), publishing through a real broker with the
simulated clock (`publishing`), the run summary (`summary`), load mode (`load`) and the CLI (`cli`).
"""
