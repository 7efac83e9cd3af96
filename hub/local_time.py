"""Times as people read them: in the community's time zone (registry `timezone`), always saying which.

The hub stores and exchanges epoch milliseconds (UTC); a person reading a time on the command line, in
the live view, on the caregiver page or in a notification reads it in the community's zone with the
offset beside it, so the same fall never reads 03:50 in one place and 11:50 in another.
"""

from __future__ import annotations

import functools
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from hub.registry import Community, Registry, RegistryError
from hub.settings import Settings

DEFAULT_TIMEZONE: str = Community.model_fields["timezone"].default


def zone_of(registry: Registry | None, community: str | None = None) -> ZoneInfo:
    """The zone of `community` (or of the registry's first community), or the registry's default."""
    communities = registry.data.communities if registry is not None else []
    chosen = next((c for c in communities if c.id == community), communities[0] if communities else None)
    return ZoneInfo(chosen.timezone if chosen is not None else DEFAULT_TIMEZONE)


def configured_registry() -> Registry | None:
    """The registry at HUB_REGISTRY_PATH for a command that only needs it for zones and names: None when it
    cannot be read (the default zone is right for a store read without its registry)."""
    path = Settings().registry_path
    try:
        return _registry_at(path, path.stat().st_mtime_ns)
    except (OSError, RegistryError):
        return None


@functools.cache
def _registry_at(path: Path, mtime_ns: int) -> Registry:  # loaded once per table, not once per row
    return Registry.load(path)


def zone_label(at: datetime) -> str:
    """`UTC+8`, `UTC+5:30`, `UTC`: the offset as the caregiver page writes it too."""
    offset = at.utcoffset()
    minutes = 0 if offset is None else int(offset.total_seconds()) // 60
    if minutes == 0:
        return "UTC"
    sign, minutes = ("+" if minutes > 0 else "-"), abs(minutes)
    return f"UTC{sign}{minutes // 60}" + (f":{minutes % 60:02d}" if minutes % 60 else "")


def local_time(ms: int | None, zone: ZoneInfo, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """`ms` in `zone` with its offset: `2026-11-23 11:50:00 UTC+8`; `-` for None."""
    if ms is None:
        return "-"
    at = datetime.fromtimestamp(ms / 1000, zone)
    return f"{at.strftime(fmt)} {zone_label(at)}"
