"""The panel shapes both dashboards use, so every panel of a kind looks and reads the same."""

from __future__ import annotations

from collections.abc import Sequence

from grafana_foundation_sdk.builders import common, stat, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models.dashboard import DataSourceRef

Target = cogbuilder.Builder[cogvariants.Dataquery]


def _legend() -> common.VizLegendOptions:
    return (common.VizLegendOptions().display_mode(common_models.LegendDisplayMode.TABLE)
            .placement(common_models.LegendPlacement.BOTTOM).show_legend(True).calcs(["lastNotNull", "max"]))


def graph(source: DataSourceRef, title: str, description: str, targets: Sequence[Target], *,
          unit: str = "short", width: int = 12, height: int = 8) -> timeseries.Panel:
    """A time series of one or more queries."""
    panel = (timeseries.Panel().datasource(source).title(title).description(description).unit(unit)
             .span(width).height(height).legend(_legend()).fill_opacity(10).line_width(1))
    for target in targets:
        panel.with_target(target)
    return panel


def figure(source: DataSourceRef, title: str, description: str, target: Target, *, unit: str = "short",
           width: int = 6, height: int = 4) -> stat.Panel:
    """One number: the query's last value, with its recent course behind it."""
    return (stat.Panel().datasource(source).title(title).description(description).unit(unit).span(width)
            .height(height)
            .graph_mode(common_models.BigValueGraphMode.AREA).color_mode(common_models.BigValueColorMode.VALUE)
            .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
            .with_target(target))


def listing(source: DataSourceRef, title: str, description: str, target: Target, *, width: int = 12,
            height: int = 8) -> table.Panel:
    """The rows a query returns, as they are."""
    return (table.Panel().datasource(source).title(title).description(description).span(width).height(height)
            .with_target(target))
