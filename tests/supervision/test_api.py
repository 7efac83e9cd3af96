"""`/api/v1/supervision` on a running hub whose store holds the scripted month: the figures, the token's
scope, and the refusals of bad input."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from hub.api.tokens import Role
from tests.api.support import client, make_token
from tests.conftest import StartHub
from tests.supervision.support import registry, script_history, script_visits

NOVEMBER = {"from": "2025-11-01T00:00:00+08:00", "to": "2025-12-01T00:00:00+08:00"}


def test_figures_of_a_unit_its_units_and_workers_within_the_tokens_scope(tmp_path: Path,
                                                                           start_hub: StartHub) -> None:
    place = registry()
    place.dump(tmp_path / "registry.yaml")
    hub = start_hub(tmp_path / "registry.yaml")
    script_history(hub.store_path, place)
    script_visits(hub.store_path)
    everywhere = client(hub, make_token(hub, "ops", Role.OPERATOR, communities=("*",)))
    moon_only = client(hub, make_token(hub, "moon-ops", Role.OPERATOR, communities=("moon",)))
    family = client(hub, make_token(hub, "li", Role.CAREGIVER, caregiver="cg-li"))

    answer = everywhere.get("/api/v1/supervision", params={"level": "subdistrict", "id": "hm", **NOVEMBER})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["from"], body["to"]) == ("2025-11-01T00:00:00+08:00", "2025-12-01T00:00:00+08:00")
    assert body["unit"]["name"] == "花木街道"
    assert body["unit"]["figures"]["alerts"] == 8
    assert body["unit"]["figures"]["acknowledgement"] == {"count": 8, "median_s": 210.0, "p90_s": 1560.0}
    assert [(c["level"], c["id"], c["figures"]["alerts"]) for c in body["children"]] == [
        ("community", "moon", 2), ("community", "sunshine", 6)]
    assert [w["caregiver"] for w in body["workers"]] == ["cg-qian", "cg-wang", "cg-zhao", "duty"]

    grid = moon_only.get("/api/v1/supervision", params={"level": "community", "id": "moon", **NOVEMBER})
    assert grid.status_code == 200, grid.text
    assert [c["id"] for c in grid.json()["children"]] == ["g3"]
    assert grid.json()["unit"]["figures"]["visits_done"] == 1
    # Another community's units are answered as if there were none; a subdistrict or city with another
    # community in it is refused, saying why.
    for level, unit, status in (("community", "sunshine", 404), ("grid", "g1", 404),
                                ("subdistrict", "zj", 404), ("subdistrict", "hm", 403), ("city", "sh", 403)):
        refused = moon_only.get("/api/v1/supervision", params={"level": level, "id": unit, **NOVEMBER})
        assert refused.status_code == status, (level, refused.text)
    assert refused.json()["detail"] == "city sh has communities outside token 'moon-ops''s communities"
    assert family.get("/api/v1/supervision", params={"level": "grid", "id": "g1"}).status_code == 403

    # Without a period: the 30 days up to now.
    recent = everywhere.get("/api/v1/supervision", params={"level": "grid", "id": "g1"}).json()
    span = datetime.fromisoformat(recent["to"]) - datetime.fromisoformat(recent["from"])
    assert span == timedelta(days=30) and recent["children"] == []

    def refusal(params: dict[str, str]) -> tuple[int, list[str]]:
        answer = everywhere.get("/api/v1/supervision", params=params)
        return answer.status_code, [str(e.get("loc")) for e in answer.json()["detail"]] \
            if answer.status_code == 422 else [answer.json()["detail"]]

    assert refusal({"level": "building", "id": "b1"})[0] == 422
    assert refusal({"level": "grid", "id": "g1", "from": "2025-11-01T00:00:00"})[0] == 422  # no zone
    assert refusal({"level": "grid", "id": "g1", "from": NOVEMBER["to"], "to": NOVEMBER["from"]}) == (
        422, ["['query', 'to']"])
    assert refusal({"level": "grid", "id": "g1", "from": "2024-01-01T00:00:00Z", "to": NOVEMBER["to"]}) == (
        422, ["['query', 'from']"])
    assert refusal({"level": "grid", "id": "nowhere"}) == (404, ["there is no grid nowhere"])
