"""The two datasources the dashboards use, as provisioned (`provisioning/datasources/`), and the InfluxQL
query type the SDK lacks."""

from __future__ import annotations

from typing import Literal, Self

from grafana_foundation_sdk.builders import prometheus
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard

# Fixed uids: the provisioned datasources carry them, so the dashboards find their data in any Grafana.
PROMETHEUS = dashboard.DataSourceRef(type_val="prometheus", uid="smart-community-prometheus")
INFLUXDB = dashboard.DataSourceRef(type_val="influxdb", uid="smart-community-influxdb")


def promql(expr: str, legend: str, ref_id: str) -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref_id).datasource(PROMETHEUS)


class InfluxQLQuery(cogvariants.Dataquery):
    """A raw InfluxQL target of Grafana's InfluxDB datasource (InfluxQL mode)."""

    def __init__(self, query: str, ref_id: str, alias: str, result_format: Literal["time_series", "table"]):
        self.query = query
        self.ref_id = ref_id
        self.alias = alias
        self.result_format = result_format

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "datasource": INFLUXDB.to_json(),
            "query": self.query,
            "rawQuery": True,
            "refId": self.ref_id,
            "resultFormat": self.result_format,
        }
        if self.alias:
            payload["alias"] = self.alias
        return payload


class InfluxQL(cogbuilder.Builder[InfluxQLQuery]):
    def __init__(self, query: str, ref_id: str) -> None:
        self._internal = InfluxQLQuery(query, ref_id, "", "time_series")

    def build(self) -> InfluxQLQuery:
        return self._internal

    def alias(self, alias: str) -> Self:
        """Series name; `$tag_<key>` and `$col` are replaced by Grafana."""
        self._internal.alias = alias
        return self

    def table(self) -> Self:
        self._internal.result_format = "table"
        return self
