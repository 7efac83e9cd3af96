"""The alert loop: requests from the detectors become alerts that caregivers acknowledge and resolve,
escalating tier by tier while nobody does, with every notification delivered through a persistent,
per-sink retrying queue. `service.AlertService` is the entry point; `cli.app` is `hub alerts`."""
