"""Supervision (督查): figures per grid, per worker and per level above over a period, from the alert
history, the registry's levels, the devices' offline alerts and the patrol visits
(docs/operators/supervision.md)."""
