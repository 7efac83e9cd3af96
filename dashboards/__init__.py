"""Grafana dashboards as code, built with grafana-foundation-sdk.

`python -m dashboards` (or `make dashboards`) writes `dashboards/generated/<uid>.json`, which is committed
and which Grafana loads through the file provisioning in `dashboards/provisioning/`. Edit the builders
here, never the JSON: a test fails while the committed JSON differs from what the builders produce.

- `ops`: the hub's own health, from its Prometheus metrics (`hub/metrics.py`).
- `supervision`: supervision (督查) per subdistrict, community and grid, from the hub's
  `hub_supervision_*` metrics (`hub/supervision/metrics.py`).
- `community`: what happens in the communities, from InfluxDB in InfluxQL (readings and the hub's state
  snapshots, `hub/export/state.py`), using only what InfluxDB 1.x supports, so the same panels work on
  InfluxDB 1.x, on 2.x through its v1 API and on 3.x.
"""
