"""Supervision's series on `/metrics`, read from the scripted month's store: one per grid and per
community's buildings, zeros included, counting what the store holds."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from hub.store import StoreAt
from hub.supervision.metrics import SupervisionCollector
from hub.supervision.sources import StoredVisits
from tests.supervision.support import SetClock, november, registry, script_history, script_visits


def test_series_per_grid_count_the_store(tmp_path: Path) -> None:
    store = tmp_path / "hub.sqlite3"
    place = registry()
    script_history(store, place)
    script_visits(store)
    served = CollectorRegistry()
    served.register(SupervisionCollector(lambda: place, StoreAt(store), SetClock(november(29, 12)),
                                         StoredVisits(StoreAt(store))))
    found = {(s.name, tuple(sorted(s.labels.items()))): s.value
             for f in text_string_to_metric_families(generate_latest(served).decode()) for s in f.samples}

    def value(name: str, grid: str, community: str = "sunshine", subdistrict: str = "hm",
              **more: str) -> float:
        labels = {"subdistrict": subdistrict, "community": community, "grid": grid, **more}
        return found[name, tuple(sorted(labels.items()))]

    # Every grid and every community's no-grid series is there, the quiet ones at zero.
    assert value("hub_supervision_alerts_total", "g9", "star", "zj") == 0
    assert value("hub_supervision_alerts_total", "", "star", "zj") == 0
    assert value("hub_supervision_alerts_total", "g1") == 4  # October's SOS too: counters count it all
    assert value("hub_supervision_alerts_total", "") == 1  # the falling object, on building b1
    assert value("hub_supervision_alerts_total", "g3", "moon") == 3
    assert value("hub_supervision_alerts_unresolved", "g2", state="acknowledged") == 1
    assert value("hub_supervision_alerts_unresolved", "g3", "moon", state="open") == 1  # December's fall
    assert value("hub_supervision_alerts_overdue", "g2") == 1
    assert value("hub_supervision_alerts_overdue", "g1") == 0  # told overdue, but resolved since
    assert value("hub_supervision_alerts_resolved_total", "g1", outcome="visited") == 2
    assert value("hub_supervision_alerts_resolved_total", "g3", "moon", outcome="cleared") == 1
    assert value("hub_supervision_acknowledgement_seconds_count", "g1") == 4
    assert value("hub_supervision_acknowledgement_seconds_sum", "g1") == 10 + 60 + 180 + 300
    assert value("hub_supervision_acknowledgement_seconds_bucket", "g1", le="60.0") == 2
    assert value("hub_supervision_devices", "g1", state="reporting") == 2
    assert value("hub_supervision_devices", "", state="reporting") == 1  # the camera
    assert value("hub_supervision_devices", "g3", "moon", state="offline") == 0  # its alert was cleared
    assert value("hub_supervision_visits", "g1", status="done") == 1
    assert value("hub_supervision_visits", "g1", status="overdue") == 2
    assert value("hub_supervision_visits", "g3", "moon", status="scheduled") == 0
