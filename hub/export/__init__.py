"""Exporters: one module per sink, each reading the store's observations as an outbox.

An exporter keeps its own cursor (the last observation id it delivered) in the store and advances it
only after the sink accepted a batch, so an outage of the sink never stalls intake or loses points:
the backlog is simply the observations after the cursor, and it drains when the sink returns.
"""
