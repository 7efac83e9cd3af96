"""Render every dashboard to the JSON Grafana loads, and write or check `dashboards/generated/`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards import community, ops, supervision

GENERATED = Path(__file__).parent / "generated"
BUILDERS: dict[str, Callable[[], dashboard.Dashboard]] = {
    ops.UID: ops.build, community.UID: community.build, supervision.UID: supervision.build}


def render(builder: dashboard.Dashboard) -> str:
    model = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    # Grafana keeps panels apart by id; number them in layout order so the output is stable.
    for number, panel in enumerate(model.get("panels", []), start=1):
        panel["id"] = number
    return json.dumps(model, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def rendered() -> dict[Path, str]:
    """Every dashboard's file and its JSON as the builders make it now."""
    return {GENERATED / f"{uid}.json": render(build()) for uid, build in BUILDERS.items()}


def stale() -> list[Path]:
    """Generated files that differ from what the builders make now (or are missing, or left over)."""
    wanted = rendered()
    differing = [path for path, text in wanted.items()
                 if not path.exists() or path.read_text(encoding="utf-8") != text]
    leftover = [path for path in GENERATED.glob("*.json") if path not in wanted]
    return sorted(differing + leftover)


def write() -> list[Path]:
    """Write every dashboard's JSON and remove files no builder makes; returns the files changed."""
    GENERATED.mkdir(exist_ok=True)
    changed = stale()
    wanted = rendered()
    for path in changed:
        if path in wanted:
            path.write_text(wanted[path], encoding="utf-8")
        else:
            path.unlink()
    return changed
