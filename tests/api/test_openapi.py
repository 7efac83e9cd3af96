"""The read endpoints of a real hub's API, exercised by schemathesis from the hub's own /openapi.json:
whatever valid input it generates, no 5xx, and every response (status code, content type, body)
matches the schema. Path parameters also take real ids, so the 200 bodies are checked, not just 404s."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from hub.api.tokens import Role
from tests.api.support import REGISTRY, client, make_token, press_sos, wait_for_alerts, write_registry
from tests.conftest import StartHub
from tests.real_servers import Mosquitto

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_read_endpoints_conform_to_the_openapi_schema(
    start_hub: StartHub, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    hub = start_hub(write_registry(tmp_path / "registry.yaml"))
    token = make_token(hub, "schema-check", Role.OPERATOR, communities=("*",))
    for band in ("band-wang", "band-moon"):
        press_sos(mosquitto, band)
    with client(hub, token) as api:
        alerts = wait_for_alerts(api, lambda found: len(found) == 2, "two SOS alerts")
        api.post(f"/api/v1/alerts/{alerts[0]['id']}/acknowledge").raise_for_status()  # history to show

    schema = schemathesis.openapi.from_url(f"{hub.http_url}/openapi.json")
    reads = schema.include(method="GET", path_regex=r"^/(api/v1/|health$|ready$)").exclude(
        path="/api/v1/alerts/stream")  # an endless response: tested as a stream elsewhere
    operations = []
    for result in reads.get_all_operations():
        assert isinstance(result, Ok), result
        operations.append(result.ok())
    paths = {operation.path for operation in operations}
    assert {"/api/v1/me", "/api/v1/alerts", "/api/v1/alerts/{alert_id}", "/api/v1/residents",
            "/api/v1/residents/{resident_id}/activity", "/api/v1/registry/devices/{entry_id}",
            "/health", "/ready"} <= paths
    real_ids: dict[str, list[Any]] = {"alert_id": [a["id"] for a in alerts],
                                      "resident_id": ["r-wang", "r-moon"]}
    auth = {"Authorization": f"Bearer {token}"}
    answered: dict[str, set[int]] = {path: set() for path in paths}

    for operation in operations:
        strategies = [operation.as_strategy()]
        for name, values in real_ids.items():
            if f"{{{name}}}" in operation.path:
                strategies += [operation.as_strategy(path_parameters={name: v}) for v in values]
        if operation.path == "/api/v1/supervision":  # real units, so that their figures are checked too
            strategies += [operation.as_strategy(query={"level": level, "id": unit})
                           for level, unit in (("community", "sunshine"), ("grid", "g9"))]
        if "{entry_id}" in operation.path:
            table = operation.path.split("/")[4]
            strategies += [operation.as_strategy(path_parameters={"entry_id": e.id})
                           for e in getattr(REGISTRY, table)[:2]]

        @settings(max_examples=15, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=st.one_of(strategies))
        def conforms(case: schemathesis.Case[Any]) -> None:
            response = case.call_and_validate(base_url=hub.http_url, headers=auth, checks=CHECKS)
            answered[case.operation.path].add(response.status_code)

        conforms()
    assert {path for path, statuses in answered.items() if 200 not in statuses} == set(), answered
    assert 404 in answered["/api/v1/alerts/{alert_id}"] and 422 in answered["/api/v1/alerts"], answered
