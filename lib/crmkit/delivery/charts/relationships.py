"""Charts and tables of the relationship-type inventory and the cost to serve (workbook 03).

Built on the shared theme (:func:`crmkit.delivery.charts.figure`), titled and labelled through
``t()``
with keys in ``messages/relationships.yaml``. Relationship type names come from the catalogue in
the report's language; segment names (``segment_name`` of the frames, or ``names``) and channel
names are client text and pass through :func:`crmkit.delivery.charts.safe`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from crmkit.core.i18n import Formatter, t, value_label
from crmkit.delivery.tables import Table
from crmkit.relationships.cost_to_serve import CostToServe
from crmkit.relationships.inventory import (
    ASSUMED_CHANNEL,
    TYPES,
    Expectations,
    Inventory,
    type_name,
)
from crmkit.relationships.questions import Gap

from . import figure, label_axes, palette, safe

PRIMARY = "#1b4965"
ACCENT = "#e07a5f"


def _label(names: Mapping[str, str] | None, key) -> str:
    return safe(names.get(key, key) if names else key)


def _segment_labels(frame: pd.DataFrame, names: Mapping[str, str] | None) -> dict[str, str]:
    """``segment -> display name``: ``names`` first, then the frame's ``segment_name``."""
    found = {}
    if "segment_name" in frame:
        found = dict(zip(frame["segment"].astype(str), frame["segment_name"].astype(str),
                         strict=True))
    return {s: _label({**found, **(names or {})}, s) for s in frame["segment"].astype(str)}


def legend_room(fig: go.Figure, width: int = 900) -> go.Figure:
    """Make room above the plot for a horizontal legend that wraps onto several rows.

    The shared theme puts the legend in one row above the plot, beside the title; with many or
    long entries (relationship types, scenario names) it wraps and runs into the title. The top
    margin grows by a row's height for every row the entries need at about ``width`` pixels.
    """
    names = [trace.name for trace in fig.data if trace.name and trace.showlegend is not False]
    needed = sum(40 + 7 * len(str(name)) for name in names)
    rows = max(1, -(-needed // width))
    if rows > 1:
        top = (fig.layout.margin.t or 64) + 22 * (rows - 1) + 16
        fig.update_layout(margin={"t": top}, height=(fig.layout.height or 420) + top - 64)
    return fig


def gap_heatmap(gap: Gap, fmt: Formatter, *, names: Mapping[str, str] | None = None,
                primary: str = PRIMARY, accent: str = ACCENT) -> go.Figure:
    """Segments × types: the share a type has of the segment's minutes minus the share of its
    customers who expect it, in points.

    Brand colour where a segment gets more of a type than it expects, accent colour where it
    expects more than it gets; blank where nothing is known of its expectation.

    Parameters
    ----------
    gap : Gap
        From :func:`crmkit.relationships.inventory.gap`.
    names : mapping, optional
        ``segment -> name`` in the report's language (default: the keys).
    """
    lang = fmt.lang
    segments = [str(s) for s in gap.gap.index]
    fig = figure(fmt, t("rel_chart_gap_title", lang), primary=primary, accent=accent,
                 height=max(320, 90 + 46 * len(segments)))
    z = gap.gap.to_numpy(float) * 100
    hover = [[t("rel_chart_gap_hover", lang, current=fmt.pct(c),
                expected=fmt.pct(e) if not np.isnan(e) else t("rel_unknown", lang))
              for c, e in zip(cur, exp, strict=True)]
             for cur, exp in zip(gap.current.to_numpy(float), gap.expected.to_numpy(float),
                                 strict=True)]
    text = [["" if np.isnan(v) else fmt.number(v, 0) for v in row] for row in z]
    bound = max(float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 0.0, 1.0)
    fig.add_heatmap(
        x=[type_name(k, lang) for k in gap.gap.columns], y=[_label(names, s) for s in segments],
        z=z, zmin=-bound, zmax=bound, zmid=0, text=text, texttemplate="%{text}",
        customdata=hover, hovertemplate="%{y} · %{x}<br>%{customdata}<extra></extra>",
        colorscale=[[0, accent], [0.5, "#ffffff"], [1, primary]],
        colorbar={"title": {"text": t("rel_chart_gap_scale", lang)}})
    fig.update_yaxes(autorange="reversed", showgrid=False)
    fig.update_xaxes(showgrid=False)
    return label_axes(fig, t("rel_type", lang), t("rel_segment", lang))


def usage_bars(usage: pd.DataFrame, fmt: Formatter, *,
               by: Literal["relationship_type", "channel"] = "relationship_type",
               value: Literal["minutes_year", "interactions_year", "share"] = "minutes_year",
               names: Mapping[str, str] | None = None, primary: str = PRIMARY,
               accent: str = ACCENT) -> go.Figure:
    """Stacked bars per segment of how it is served: minutes, interactions or shares.

    Parameters
    ----------
    usage : DataFrame
        :func:`crmkit.relationships.inventory.usage` (or ``CostToServe.activity``, which adds the
        assumed
        activity): ``segment, relationship_type, channel, minutes_year, interactions_year``.
    by : {"relationship_type", "channel"}
        What the stacks are.
    value : {"minutes_year", "interactions_year", "share"}
        ``share`` is each stack's share of the segment's minutes.
    names : mapping, optional
        ``segment -> name`` (default: ``segment_name`` when the frame has it, else the keys).
    """
    lang = fmt.lang
    title = "rel_chart_usage_title" if by == "relationship_type" else "rel_chart_channels_title"
    fig = figure(fmt, t(title, lang), primary=primary, accent=accent)
    column = "minutes_year" if value == "share" else value
    frame = usage.assign(segment=usage["segment"].astype(str))
    labels = _segment_labels(frame, names)
    segments = list(dict.fromkeys(frame["segment"]))
    table = (frame.groupby(["segment", by], sort=False)[column].sum().unstack(by)
             .reindex(segments).fillna(0.0))
    if by == "relationship_type":
        table = table[[k for k in TYPES if k in table.columns]]
    if value == "share":
        totals = table.sum(axis=1)
        table = table.div(totals.where(totals != 0), axis=0).fillna(0.0) * 100
    colours = palette(primary, accent, n=max(len(table.columns), 1))
    for i, key in enumerate(table.columns):
        if by == "relationship_type":
            label = type_name(key, lang)
        elif key == ASSUMED_CHANNEL:
            label = t("rel_channel_assumed", lang)
        else:
            label = safe(value_label(key, lang))  # a channel from the data, in the language
        fig.add_bar(x=[labels[s] for s in table.index], y=table[key].to_numpy(), name=label,
                    marker_color=colours[i],
                    hovertemplate="%{x}<br>" + label + ": %{y:,.0f}<extra></extra>")
    fig.update_layout(barmode="stack")
    axis = {"minutes_year": "rel_chart_usage_minutes",
            "interactions_year": "rel_chart_usage_interactions",
            "share": "rel_chart_usage_share"}[value]
    if value == "share":
        fig.update_yaxes(range=[0, 100], ticksuffix="\u00a0%" if lang == "es" else "%")
    return legend_room(label_axes(fig, t("rel_segment", lang), t(axis, lang)))


def cost_per_customer(cost: CostToServe, fmt: Formatter, *,
                      names: Mapping[str, str] | None = None, primary: str = PRIMARY,
                      accent: str = ACCENT) -> go.Figure:
    """Stacked bars of the yearly cost to serve per customer of each segment: the variable cost
    of each relationship type, then the display share of the platforms' fixed cost (one grey
    block: it is not saved by moving the segment), with the total on top.

    Parameters
    ----------
    cost : CostToServe
        From :func:`crmkit.relationships.cost_to_serve.compute`.
    """
    lang = fmt.lang
    fig = figure(fmt, t("rel_chart_cts_title", lang), primary=primary, accent=accent)
    segs = cost.segments
    labels = _segment_labels(segs, names)
    counts = segs.set_index("segment")["customers"].astype(float)
    variable = cost.segment_types.groupby(["segment", "relationship_type"])["variable_cost"]
    table = (variable.sum()
             .unstack("relationship_type").reindex(index=list(segs["segment"]))
             .reindex(columns=[k for k in TYPES]).fillna(0.0))
    table = table.loc[:, table.abs().sum() > 0]
    per_customer = table.div(counts.where(counts > 0), axis=0).fillna(0.0)
    colours = palette(primary, accent, n=len(TYPES))
    x = [labels[s] for s in per_customer.index]
    for key in per_customer.columns:
        name = type_name(key, lang)
        fig.add_bar(x=x, y=per_customer[key].to_numpy(), name=name,
                    marker_color=colours[TYPES.index(key)],
                    customdata=[fmt.money(v, 2) for v in per_customer[key]],
                    hovertemplate="%{x}<br>" + name + ": %{customdata}<extra></extra>")
    fixed = (segs["fixed_cost"] / segs["customers"].where(segs["customers"] > 0)).fillna(0.0)
    if (fixed > 0).any():
        name = t("rel_fixed_cost_share", lang)
        fig.add_bar(x=x, y=fixed.to_numpy(float), name=name, marker_color="#c5cbd3",
                    customdata=[fmt.money(v, 2) for v in fixed],
                    hovertemplate="%{x}<br>" + name + ": %{customdata}<extra></extra>")
    totals = segs["cost_per_customer"].to_numpy(float)
    fig.add_scatter(x=x, y=totals, mode="text", text=[fmt.money(v, 2) for v in totals],
                    textposition="top center", showlegend=False, hoverinfo="skip")
    fig.update_layout(barmode="stack")
    fig.update_yaxes(**fmt.money_axis())
    top = float(np.nanmax(totals)) if len(totals) and np.isfinite(totals).any() else 0.0
    if top > 0:  # room above the tallest bar for its total
        fig.update_yaxes(range=[0, top * 1.15])
    return legend_room(label_axes(fig, t("rel_segment", lang),
                                  t("rel_chart_cts_axis", lang, symbol=fmt.currency_symbol())))


def assumptions_table(drivers: pd.DataFrame, fmt: Formatter) -> Table:
    """The cost drivers in force, one row per type, saying which are the client's figures.

    Parameters
    ----------
    drivers : DataFrame
        :func:`crmkit.relationships.inventory.drivers` (or ``CostToServe.drivers``).
    """
    lang = fmt.lang
    frame = drivers.reset_index()
    frame["name"] = [type_name(k, lang) for k in frame["relationship_type"]]
    frame["rate"] = [t("rel_per_minute", lang, money=fmt.money(v, 2))
                     for v in frame["cost_per_minute"]]
    frame["source"] = [t("rel_driver_client" if o else "rel_driver_catalogue", lang)
                       for o in frame["overridden"]]
    return Table(frame, fmt, {
        "name": ("rel_type", "text"),
        "minutes_per_interaction": ("rel_col_minutes_per_interaction", "number:1"),
        "interactions_per_year": ("rel_col_interactions_per_year", "number:1"),
        "rate": ("rel_col_cost_per_minute", "figure"),
        "fixed_yearly_cost": ("rel_col_fixed_yearly_cost", "money"),
        "source": ("rel_col_driver_source", "text")}, caption=t("rel_caption_drivers", lang))


def four_questions_table(frame: pd.DataFrame, fmt: Formatter) -> Table:
    """The four questions per segment as a client-facing table.

    What it expects (with the share of respondents and the source), what it has today (the main
    type and its share of minutes), whether the two match, what serving it costs per customer a
    year, that cost as a share of its margin, and the consultant's note on the fit.

    Parameters
    ----------
    frame : DataFrame
        :func:`crmkit.relationships.questions.four_questions`.
    """
    lang = fmt.lang
    shown = frame.copy()
    expects = []
    for key, share, source in zip(shown["expects"], shown["expects_share"],
                                  shown["expects_source"], strict=True):
        if not isinstance(key, str):
            expects.append(t("rel_unknown", lang))
        elif source == "survey":
            expects.append(t("rel_expects_label", lang, type=type_name(key, lang),
                             share=fmt.pct(share), source=t("rel_source_survey", lang)))
        else:
            expects.append(t("rel_expects_label_judged", lang, type=type_name(key, lang),
                             source=t(f"rel_source_{source}", lang)))
    shown["expects_label"] = expects
    shown["has_label"] = [t("rel_share_label", lang, type=type_name(k, lang), share=fmt.pct(v))
                          if isinstance(k, str) else t("rel_none", lang)
                          for k, v in zip(shown["has"], shown["has_share"], strict=True)]
    shown["match_label"] = ["–" if m is None or m != m else t("rel_yes" if m else "rel_no", lang)
                            for m in shown["match"]]
    return Table(shown, fmt, {
        "segment_name": ("rel_segment", "text"),
        "expects_label": ("rel_col_expects", "text"),
        "has_label": ("rel_col_has", "text"),
        "match_label": ("rel_col_match", "text"),
        "cost_per_customer": ("rel_col_cost_per_customer", "money:2"),
        "cost_share_of_margin": ("rel_col_cost_share", "pct:0"),
        "fit": ("rel_col_fit", "text")}, caption=t("rel_caption_questions", lang))


def _type_list(keys, lang: str) -> str:
    """Type names in ``lang`` joined by commas; "–" for none."""
    return ", ".join(type_name(k, lang) for k in keys) if len(keys) else "–"


def inventory_table(inventory: Inventory, fmt: Formatter) -> Table:
    """What each segment receives: declared by the client, seen in the log, and where they differ.

    Parameters
    ----------
    inventory : Inventory
        From :func:`crmkit.relationships.inventory`.
    """
    lang = fmt.lang
    shown = inventory.summary.copy()
    shown["contacted_share"] = (shown["contacted"]
                                / shown["customers"].where(shown["customers"] > 0))
    for column in ("declared", "not_declared", "not_observed"):
        shown[f"{column}_label"] = [_type_list(v, lang) for v in shown[column]]
    shown["main_label"] = [
        (t("rel_share_label", lang, type=type_name(k, lang),
           share=fmt.pct(inventory.shares.loc[s, k])) if inventory.shares.loc[s, k] > 0
         else type_name(k, lang)) if isinstance(k, str) else t("rel_none", lang)
        for s, k in zip(shown["segment"], shown["main_type"], strict=True)]
    return Table(shown, fmt, {
        "segment_name": ("rel_segment", "text"),
        "contacted_share": ("rel_col_contacted", "pct:0"),
        "declared_label": ("rel_col_declared", "text"),
        "not_declared_label": ("rel_col_not_declared", "text"),
        "not_observed_label": ("rel_col_not_observed", "text"),
        "main_label": ("rel_col_main_type", "text")}, caption=t("rel_caption_inventory", lang))


def expectations_table(expected: Expectations, fmt: Formatter) -> Table:
    """The relationship each segment expects, the share who prefer it and where that comes from.

    Parameters
    ----------
    expected : Expectations
        From :func:`crmkit.relationships.inventory.expectations`.
    """
    lang = fmt.lang
    shown = expected.summary.copy()
    shown["expected_label"] = [type_name(k, lang) if isinstance(k, str)
                               else t("rel_unknown", lang) for k in shown["expected"]]
    shown["source_label"] = [t(f"rel_source_{s}", lang) for s in shown["source"]]
    return Table(shown, fmt, {
        "segment_name": ("rel_segment", "text"),
        "expected_label": ("rel_col_expects", "text"),
        "expected_share": ("rel_col_expects_share", "pct:0"),
        "respondents": ("rel_col_respondents", "integer"),
        "source_label": ("rel_col_source", "text")})


def segment_cost_table(cost: CostToServe, fmt: Formatter) -> Table:
    """The yearly cost to serve per segment: customers served, minutes, the variable cost and
    its imputed share, the display share of the platforms, the total and per customer.

    Parameters
    ----------
    cost : CostToServe
        From :func:`crmkit.relationships.cost_to_serve.compute`.
    """
    return Table(cost.segments, fmt, {
        "segment_name": ("rel_segment", "text"),
        "customers": ("rel_col_customers", "integer"),
        "served_customers": ("rel_col_served_customers", "integer"),
        "minutes_year": ("rel_col_minutes_year", "integer"),
        "variable_cost": ("rel_col_variable_cost", "money"),
        "imputed_share": ("rel_col_imputed_share", "pct:0"),
        "fixed_cost": ("rel_col_fixed_cost", "money"),
        "cost_to_serve": ("rel_col_cost_to_serve", "money"),
        "cost_per_customer": ("rel_col_per_customer", "money:2")},
        caption=t("rel_caption_segment_cost", fmt.lang))
