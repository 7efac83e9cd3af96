"""The community registry as the hub holds it: loaded from and written to its file, and indexed.

The file's model is pure data in `devices.registry` (the simulators build registries too) and is
re-exported here for the hub. The hub resolves each device once, at load, to the community/building/
household it reports for, so the hot path is one dict lookup.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import yaml
from pydantic import ValidationError

from devices.registry import (
    LEVELS,
    Building,
    Caregiver,
    CaregiverLink,
    CaregiverRole,
    City,
    Community,
    Compound,
    Device,
    District,
    Entry,
    Grid,
    Hierarchy,
    Household,
    Id,
    Level,
    Levels,
    PlacedDevice,
    Record,
    RegistryFile,
    Resident,
    Subdistrict,
    device_compounds,
    place_devices,
)

# The file's model, for the hub's modules that import it from here.
__all__ = [
    "LEVELS",
    "Building",
    "Caregiver",
    "CaregiverLink",
    "CaregiverRole",
    "City",
    "Community",
    "Compound",
    "Device",
    "District",
    "Entry",
    "Grid",
    "Hierarchy",
    "Household",
    "Id",
    "Level",
    "Levels",
    "PlacedDevice",
    "Record",
    "Registry",
    "RegistryError",
    "RegistryFile",
    "Resident",
    "Subdistrict",
]

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class RegistryError(ValueError):
    pass


class Registry:
    """An immutable, indexed view of a `RegistryFile`. Reloading builds a new one and swaps it in."""

    def __init__(self, data: RegistryFile) -> None:
        self.file = data  # as written, deactivated entries included: what is edited and persisted
        self.data = data = data.in_service()  # what the hub routes, evaluates and notifies
        # Where everything sits, deactivated entries too: alerts and edits name them.
        self.hierarchy = Hierarchy(self.file)
        self.devices: dict[str, PlacedDevice] = place_devices(data, self.hierarchy)
        # Zigbee2MQTT devices by (compound, friendly name): a reading counts only under the base topic of
        # the gateway of the device's own compound.
        self.by_zigbee2mqtt_name = {(self.devices[d.id].compound, d.zigbee2mqtt): self.devices[d.id]
                                    for d in data.devices if d.zigbee2mqtt}
        self.zigbee2mqtt_name_compounds: dict[str, set[str]] = {}
        for compound, name in self.by_zigbee2mqtt_name:
            self.zigbee2mqtt_name_compounds.setdefault(name, set()).add(compound)
        # Every compound's community, deactivated ones included: which node takes a gateway's messages.
        self.compound_communities = {c.id: c.community for c in self.file.compounds}
        # Kept so their messages become dead letters that say why, not "not registered".
        self.deactivated_devices = {d.id for d in self.file.devices if not d.active}
        file_compounds = device_compounds(self.file, self.hierarchy)
        self.deactivated_zigbee2mqtt_names = {
            (file_compounds[d.id], d.zigbee2mqtt) for d in self.file.devices if not d.active and d.zigbee2mqtt
        }

    @classmethod
    def empty(cls) -> Registry:
        return cls(RegistryFile())

    @classmethod
    def load(cls, path: Path) -> Registry:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise RegistryError(f"cannot read registry {path}: {exc.strerror}") from exc
        try:
            # libyaml's loader when PyYAML has it: a 5,000-device registry loads in a fraction of the time.
            raw = json.loads(text) if path.suffix == ".json" else yaml.load(text, Loader=_YAML_LOADER)
            return cls(RegistryFile.model_validate(raw or {}))
        except (yaml.YAMLError, json.JSONDecodeError) as exc:
            raise RegistryError(f"registry {path} is not valid YAML/JSON: {exc}") from exc
        except ValidationError as exc:
            raise RegistryError(f"registry {path} is invalid:\n{exc}") from exc

    def dump(self, path: Path) -> None:
        """Write the registry as YAML, or JSON for a `.json` path (what `load` reads back), atomically and
        durably: a half-written registry must never be loaded, and an edit acknowledged by the API must
        survive a power cut."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        body = self.file.model_dump(mode="json", exclude_defaults=True)
        if path.suffix == ".json":
            text = json.dumps(body, ensure_ascii=False, indent=2)
        else:
            text = yaml.safe_dump(body, allow_unicode=True, sort_keys=False)
        # Owner only (0600): the registry holds residents' names and health flags.
        with open(os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600), "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself
        finally:
            os.close(directory)


class RegistryHolder:
    """The registry in service in one process, read by everything that looks up devices, residents or
    caregivers (intake, evaluation, alerts, exporters, the API) and replaced whole by an edit or a reload.

    A `Registry` is immutable, so replacing it is one reference assignment: a reader that takes `current()`
    once per message, tick or request works on one consistent registry, the old or the new, never half of
    each. Readers are handed `current` (a `Callable[[], Registry]`), not the holder, so that only what
    edits the registry can replace it. What is derived from the registry once rather than per read (a
    node's subscriptions) listens for replacements."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._listeners: list[Callable[[Registry], None]] = []

    def current(self) -> Registry:
        return self._registry

    def replace(self, registry: Registry) -> None:
        self._registry = registry
        for listener in self._listeners:
            listener(registry)

    def add_listener(self, listener: Callable[[Registry], None]) -> None:
        """`listener(registry)` after each replacement, on the thread that replaced it."""
        self._listeners.append(listener)
