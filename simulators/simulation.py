"""A scenario, simulated: the registry, the ground truth, and the time-ordered stream of messages.

Generation is pure and deterministic: no clock, no I/O, every random number from a stream seeded by
the scenario seed. `Simulation.messages()` builds the world afresh on each call and yields the same
messages every time, clock ticks included; publishing them is someone else's job (`publishing`).

How the stream is made, one local day at a time:
1. each household plans its residents' day and schedules what its devices will do (an *intent*: a
   device method and a time); periodic reports, bursts and incident events are scheduled alongside;
2. intents run in time order up to the end of the day, so each device's state (door open, battery,
   Zigbee2MQTT cache) is always that of its own past; running one emits messages, through the fault
   injector, into an outbox;
3. the outbox is drained in time order up to the end of the day, with a clock tick before each
   simulated minute. Intents and messages after the day's end (a door closing after midnight, a
   cached state repeated later) wait for the next day.
"""

from __future__ import annotations

import heapq
import itertools
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace
from functools import partial

import numpy as np

from devices.registry import RegistryFile, place_devices
from simulators.calendar import Calendar, LocalDay
from simulators.community import BuiltCommunity, build_community
from simulators.device import DeviceContext, DevicePlan, SimulatedDevice, simulator_for
from simulators.door_sensor import DoorSensor
from simulators.faults import FaultInjector, plan_clock_faults
from simulators.high_altitude_camera import HighAltitudeCamera
from simulators.households import Action, HouseholdSim, Occupant
from simulators.incidents import (
    EQUIPMENT_FAULTS,
    Incident,
    IncidentKind,
    device_plans,
    plan_incidents,
    resident_conditions,
    with_geofences,
)
from simulators.message import MINUTE_MS, ClockTicker, SimMessage, clock_tick
from simulators.motion_sensor import MotionSensor
from simulators.residents import ResidentConditions, ResidentTimeline, draw_profile
from simulators.scenario import Scenario
from simulators.seeding import random_stream
from simulators.smart_peephole import SmartPeephole
from simulators.wristband import Wristband


class Simulation:
    """Everything known before the first message: the community, the calendar and the incidents."""

    def __init__(self, scenario: Scenario) -> None:
        # Pin the start: a scenario without one starts relative to today, and a simulation must not
        # change if it is generated twice around midnight.
        self.scenario = scenario.model_copy(update={"start": scenario.start_time()})
        assert self.scenario.start is not None
        self.calendar = Calendar(self.scenario.start, scenario.days, scenario.zone)
        self.community: BuiltCommunity = build_community(scenario.community, self.random("community"))
        self.incidents: list[Incident] = plan_incidents(scenario.incidents, self.community.registry,
                                                        self.calendar, self.random("incidents"))
        self._registry = with_geofences(self.community.registry, self.incidents, self.community.locations)

    @property
    def registry(self) -> RegistryFile:
        return self._registry

    @property
    def start_ms(self) -> int:
        return self.calendar.start_ms

    @property
    def end_ms(self) -> int:
        return self.calendar.end_ms

    def messages(self) -> Iterator[SimMessage]:
        """The whole run's messages in publishing order; a fresh, identical stream on every call."""
        return _World(self).run()

    def random(self, *labels: str) -> np.random.Generator:
        return random_stream(self.scenario.seed, *labels)


class _World:
    """One pass over a simulation: the devices and households with their state, and two queues."""

    def __init__(self, simulation: Simulation) -> None:
        self.simulation = simulation
        scenario = simulation.scenario
        registry = simulation.registry
        self._intents: list[tuple[int, int, Action]] = []
        self._outbox: list[tuple[int, int, SimMessage]] = []
        self._order = itertools.count()  # ties in time keep the order things were scheduled in
        injector = FaultInjector(scenario.faults, simulation.random("faults"), self._post)
        timelines = {r.id: ResidentTimeline(draw_profile(simulation.random("resident", r.id)))
                     for r in registry.residents}
        placed = place_devices(registry)
        compounds = {device_id: device.compound for device_id, device in placed.items()}
        contexts = {
            c.id: DeviceContext(
                seed=scenario.seed, community=c.id, calendar=simulation.calendar, sink=injector,
                home=simulation.community.locations[c.id], wearers=timelines,
                zigbee2mqtt_base=scenario.zigbee2mqtt.base_topic, compounds=compounds,
                zigbee2mqtt_iso=scenario.zigbee2mqtt.last_seen == "ISO_8601",
                native_iso_share=scenario.native_iso_share)
            for c in registry.communities
        }
        plans = self._device_plans()
        self.devices: dict[str, SimulatedDevice] = {
            d.id: simulator_for(d.kind)(d, contexts[placed[d.id].community], plans.get(d.id))
            for d in registry.devices
        }
        self.households = self._households(timelines)
        self._reports_rng = simulation.random("reports")
        self._bursts_rng = simulation.random("bursts")
        start = simulation.start_ms
        self._next_report = {
            device_id: start + int(self._reports_rng.uniform(0, device.report_interval_ms))
            for device_id, device in self.devices.items()
        }
        for device in self.devices.values():
            self.at(start, partial(device.publish_availability, online=True))
        self._schedule_incidents()

    def run(self) -> Iterator[SimMessage]:
        ticker = ClockTicker(self.simulation.start_ms)
        for day in self.simulation.calendar.days:
            for household in self.households:
                household.plan_day(day, self)
            self._schedule_reports(day)
            self._schedule_bursts(day)
            self._run_intents(until=day.end_ms)
            yield from self._drain(ticker, until=day.end_ms)
        yield clock_tick(self.simulation.end_ms)

    def at(self, sim_ms: int, action: Action) -> None:
        heapq.heappush(self._intents, (sim_ms, next(self._order), action))

    def _post(self, message: SimMessage) -> None:
        heapq.heappush(self._outbox, (message.sim_ms, next(self._order), message))

    def _run_intents(self, until: int) -> None:
        while self._intents and self._intents[0][0] < until:
            sim_ms, _, action = heapq.heappop(self._intents)
            action(sim_ms)

    def _drain(self, ticker: ClockTicker, until: int) -> Iterator[SimMessage]:
        start = self.simulation.start_ms
        while self._outbox and self._outbox[0][0] < until:
            sim_ms, _, message = heapq.heappop(self._outbox)
            if sim_ms < start:
                continue  # the scenario starts mid-day: the morning only set the scene
            yield from ticker.through(sim_ms)
            yield message
        yield from ticker.through(until - 1)

    def _device_plans(self) -> dict[str, DevicePlan]:
        """Incident outages and batteries, plus clock faults on devices no incident depends on."""
        simulation = self.simulation
        incidents = simulation.incidents
        busy_households = {i.household for i in incidents if i.household}
        busy_devices = {i.device for i in incidents if i.device}
        bystanders = [d for d in simulation.registry.devices
                      if d.id not in busy_devices and d.household not in busy_households]
        plans = device_plans(incidents, simulation.start_ms)
        clock_faults = plan_clock_faults(simulation.scenario.faults, bystanders, simulation.calendar,
                                         simulation.random("clock faults"))
        for device_id, offsets in clock_faults.items():
            plans[device_id] = replace(plans.get(device_id, DevicePlan()), clock_offsets=offsets)
        return plans

    def _households(self, timelines: dict[str, ResidentTimeline]) -> list[HouseholdSim]:
        simulation = self.simulation
        conditions = resident_conditions(simulation.incidents)
        residents = defaultdict(list)
        for resident in simulation.registry.residents:
            timeline = timelines[resident.id]
            residents[resident.household].append(Occupant(
                resident.id, timeline.profile, conditions.get(resident.id, ResidentConditions()), timeline,
                simulation.random("resident days", resident.id)))
        devices: defaultdict[str, list[SimulatedDevice]] = defaultdict(list)
        for entry in simulation.registry.devices:
            if entry.household is not None:
                devices[entry.household].append(self.devices[entry.id])
        households = []
        for household in simulation.registry.households:
            fitted = devices[household.id]
            households.append(HouseholdSim(
                household.id, residents[household.id],
                door=next((d for d in fitted if isinstance(d, DoorSensor)), None),
                peephole=next((d for d in fitted if isinstance(d, SmartPeephole)), None),
                sensors={simulation.community.rooms[d.id]: d for d in fitted if isinstance(d, MotionSensor)},
                rng=simulation.random("callers", household.id)))
        return households

    def _schedule_reports(self, day: LocalDay) -> None:
        for device_id, device in self.devices.items():
            moment = self._next_report[device_id]
            while moment < day.end_ms:
                self.at(moment, device.report)
                moment += int(device.report_interval_ms * self._reports_rng.uniform(0.97, 1.03))
            self._next_report[device_id] = moment

    def _schedule_bursts(self, day: LocalDay) -> None:
        rate, rng = self.simulation.scenario.faults.burst_rate, self._bursts_rng
        if not rate:
            return
        for device in self.devices.values():
            if isinstance(device, MotionSensor | SmartPeephole) and rng.random() < rate:
                moment = day.at(float(rng.uniform(8 * 60, 21 * 60)))
                self.at(moment, partial(device.burst, count=int(rng.integers(5, 40))))

    def _schedule_incidents(self) -> None:
        for incident in self.simulation.incidents:
            device = self.devices.get(incident.device) if incident.device else None
            start, details = incident.start_ms, incident.details
            match incident.incident:
                case IncidentKind.SOS:
                    assert isinstance(device, Wristband)
                    self.at(start, device.press_sos)
                case IncidentKind.FALL:
                    assert isinstance(device, Wristband)
                    self.at(start, device.report_fall)
                case IncidentKind.FALLING_OBJECT:
                    assert isinstance(device, HighAltitudeCamera)
                    self.at(start, partial(device.falling_object, floor_min=int(details["floor_min"]),
                                           floor_max=int(details["floor_max"]),
                                           confidence=float(details["confidence"])))
                case IncidentKind.DEVICE_OFFLINE:
                    assert device is not None
                    assert incident.end_ms is not None
                    self.at(start, partial(device.publish_availability, online=False))
                    self.at(incident.end_ms, partial(device.publish_availability, online=True))
                case IncidentKind.NIGHT_LINGERING:
                    assert isinstance(device, SmartPeephole)
                    self.at(start, partial(device.event, event="lingering",
                                           lingering_s=int(details["lingering_s"]), snapshot=True))
                case IncidentKind.HEART_RATE:
                    assert isinstance(device, Wristband)
                    assert incident.end_ms is not None
                    # The band measures every couple of minutes while the pulse is unusual.
                    for moment in range(start, incident.end_ms, 2 * MINUTE_MS):
                        self.at(moment, device.report_vitals)
                case IncidentKind.LEFT_GEOFENCE:
                    assert isinstance(device, Wristband)
                    assert incident.end_ms is not None
                    # Out of doors the band reports a fix every few minutes.
                    for moment in range(start, incident.end_ms, 5 * MINUTE_MS):
                        self.at(moment, device.report_position)
                case kind if kind in EQUIPMENT_FAULTS:
                    assert device is not None
                    assert incident.end_ms is not None
                    # The device reports the fault at once, and again once it is over.
                    self.at(start, device.report)
                    self.at(incident.end_ms, device.report)
                case _:
                    pass  # the others happen to residents (see `resident_conditions`) or batteries
