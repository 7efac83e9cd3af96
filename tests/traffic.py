"""Valid device traffic for the ingestion tests, taken from a simulated community (so every payload is
built from the `devices/` models) with all faults and incidents switched off."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

from hub.mqtt import BrokerAddress, Publisher
from hub.registry import Registry
from simulators.community import CommunityParameters
from simulators.message import SimMessage
from simulators.scenario import FaultSettings, IncidentCounts, Scenario
from simulators.simulation import Simulation

NO_FAULTS = FaultSettings(
    duplicate_rate=0,
    cached_state_rate=0,
    malformed_rate=0,
    skewed_device_share=0,
    future_clock_devices=0,
    burst_rate=0,
)
NO_INCIDENTS = IncidentCounts(**dict.fromkeys(IncidentCounts.model_fields, 0))


def readings(count: int, registry_path: Path, *, households: int = 20, seed: int = 7) -> list[SimMessage]:
    """The first `count` reading messages of a quiet simulated community; writes its registry."""
    days = 1
    while True:
        scenario = Scenario(
            seed=seed,
            days=days,
            community=CommunityParameters(households=households),
            faults=NO_FAULTS,
            incidents=NO_INCIDENTS,
        )
        simulation = Simulation(scenario)
        messages = [m for m in simulation.messages() if m.reading_ts is not None][:count]
        if len(messages) == count:
            Registry(simulation.registry).dump(registry_path)
            return messages
        days *= 2


def keys(messages: Iterable[SimMessage]) -> set[tuple[str, int]]:
    return {(m.device_id, m.reading_ts) for m in messages if m.device_id and m.reading_ts is not None}


class BackgroundPublisher(threading.Thread):
    """Publishes messages from another thread, optionally paced, and waits for every acknowledgement."""

    def __init__(self, address: BrokerAddress, messages: list[SimMessage], *, per_second: float = 0) -> None:
        super().__init__(name="test-publisher", daemon=True)
        self._address = address
        self._messages = messages
        self._per_second = per_second
        self.published = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        publisher = Publisher(self._address)
        try:
            publisher.start()
            pace = threading.Event()
            last = None
            for i, message in enumerate(self._messages):
                last = publisher.publish(
                    message.topic, message.payload, qos=message.qos, retain=message.retain
                )
                self.published = i + 1
                if self._per_second:
                    pace.wait(1 / self._per_second)
            if last is not None and not last.wait(120):
                raise TimeoutError("the broker did not acknowledge the last message")
        except BaseException as exc:
            self.error = exc
        finally:
            publisher.stop()

    def finish(self, timeout: float = 180) -> None:
        self.join(timeout)
        assert not self.is_alive(), "publisher did not finish"
        if self.error is not None:
            raise self.error
