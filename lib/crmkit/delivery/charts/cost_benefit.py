"""Charts and tables of the cost-benefit per segment, the scenarios and the sensitivity
(workbook 04).

Built on the shared theme (:func:`crmkit.delivery.charts.figure`), titled and labelled through
``t()``
with keys in ``messages/relationships.yaml``; money axes in the client's currency through
:meth:`crmkit.core.i18n.Formatter.money_axis`. Segment and scenario names are client text and pass
through :func:`crmkit.delivery.charts.safe`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from crmkit.core.i18n import Formatter, t
from crmkit.delivery.tables import Table
from crmkit.relationships.cost_benefit import _ratio, reason
from crmkit.relationships.cost_to_serve import Whale
from crmkit.relationships.inventory import VerdictThresholds, type_name
from crmkit.relationships.scenarios import METRICS

from . import figure, label_axes, palette, safe
from .relationships import legend_room

PRIMARY = "#1b4965"
ACCENT = "#e07a5f"
#: Verdict colours keep their meaning whatever the brand: green invest, grey maintain,
#: amber move to a cheaper type, blue win back, red stop serving.
VERDICT_COLOURS = {"invest": "#2a9d8f", "maintain": "#8d99ae", "move_cheaper": "#e9c46a",
                   "win_back": "#457b9d", "stop": "#b23a48"}


def _segment_labels(frame: pd.DataFrame, names: Mapping[str, str] | None) -> list[str]:
    found = {}
    if "segment_name" in frame:
        found = dict(zip(frame["segment"].astype(str), frame["segment_name"].astype(str),
                         strict=True))
    merged = {**found, **(names or {})}
    return [safe(merged.get(s, s)) for s in frame["segment"].astype(str)]


def whale_curve(whale: Whale, fmt: Formatter, *, max_points: int = 1500,
                primary: str = PRIMARY, accent: str = ACCENT) -> go.Figure:
    """The whale curve: cumulative profit (% of the total) against the share of customers,
    most profitable first, with its peak marked.

    When the total profit is not positive, percentages of it read backwards: the curve is drawn
    in money instead. Large bases are thinned to about ``max_points`` points (the peak and the
    ends always kept), which a line of this shape does not show.

    Parameters
    ----------
    whale : Whale
        From :func:`crmkit.relationships.cost_to_serve.whale_curve`.
    """
    lang = fmt.lang
    fig = figure(fmt, t("rel_chart_whale_title", lang), primary=primary, accent=accent)
    curve = whale.curve
    n = len(curve)
    as_pct = whale.total_profit > 0
    if n == 0:
        return label_axes(fig, t("rel_chart_whale_x", lang), t("rel_chart_whale_y", lang))
    peak = int(np.argmax(curve["cumulative_profit"].to_numpy()))
    keep = np.unique(np.concatenate([np.linspace(0, n - 1, min(n, max_points)).astype(int),
                                     [0, peak, n - 1]]))
    x = np.concatenate([[0.0], curve["share_of_customers"].to_numpy()[keep] * 100])
    y = (curve["cumulative_pct"].to_numpy()[keep] * 100 if as_pct
         else curve["cumulative_profit"].to_numpy()[keep])
    y = np.concatenate([[0.0], y])
    suffix = "\u00a0%" if lang == "es" else "%"
    fig.add_scatter(x=x, y=y, mode="lines", line={"color": primary, "width": 3},
                    showlegend=False,
                    hovertemplate="%{x:.1f}" + suffix + "<br>%{y:,.0f}"
                    + (suffix if as_pct else "") + "<extra></extra>")
    peak_y = whale.peak_pct * 100 if as_pct else whale.peak_profit
    fig.add_scatter(x=[whale.peak_share_of_customers * 100], y=[peak_y], mode="markers+text",
                    marker={"color": accent, "size": 11}, showlegend=False,
                    text=[t("rel_chart_whale_peak", lang,
                            pct=fmt.pct(whale.peak_pct) if as_pct else fmt.money(
                                whale.peak_profit),
                            share=fmt.pct(whale.peak_share_of_customers))],
                    textposition="top center", hoverinfo="skip")
    if as_pct:
        fig.add_hline(y=100, line={"color": "#9aa3b2", "dash": "dot", "width": 1})
        fig.update_yaxes(ticksuffix=suffix)
        y_title = t("rel_chart_whale_y", lang)
    else:
        fig.update_yaxes(**fmt.money_axis())
        y_title = t("rel_chart_whale_y_money", lang, symbol=fmt.currency_symbol())
    fig.update_xaxes(range=[0, 100], ticksuffix=suffix)
    return label_axes(fig, t("rel_chart_whale_x", lang), y_title)


def segment_bars(frame: pd.DataFrame, fmt: Formatter, *, per_customer: bool = True,
                 names: Mapping[str, str] | None = None, primary: str = PRIMARY,
                 accent: str = ACCENT) -> go.Figure:
    """Grouped bars of revenue, gross margin, cost to serve and profit per segment, a year.

    Parameters
    ----------
    frame : DataFrame
        :func:`crmkit.relationships.cost_benefit.per_segment`.
    per_customer : bool
        Per customer (default) or segment totals.
    """
    lang = fmt.lang
    fig = figure(fmt, t("rel_chart_cb_title", lang), primary=primary, accent=accent)
    x = _segment_labels(frame, names)
    colours = palette(primary, accent)
    series = (("revenue", "rel_revenue", colours[2]), ("margin", "rel_margin", colours[0]),
              ("cost_to_serve", "rel_cost_to_serve", colours[1]),
              ("profit", "rel_profit", colours[4]))
    for column, key, colour in series:
        name = column if not per_customer else (
            "cost_per_customer" if column == "cost_to_serve" else f"{column}_per_customer")
        values = frame[name].to_numpy(float)
        if np.isnan(values).all():
            continue
        fig.add_bar(x=x, y=values, name=t(key, lang), marker_color=colour,
                    customdata=[fmt.money(v) for v in values],
                    hovertemplate="%{x}<br>" + t(key, lang) + ": %{customdata}<extra></extra>")
    fig.update_layout(barmode="group")
    fig.update_yaxes(**fmt.money_axis(), zeroline=True, zerolinecolor="#9aa3b2")
    axis = "rel_chart_cb_axis_customer" if per_customer else "rel_chart_cb_axis_total"
    return label_axes(fig, t("rel_segment", lang), t(axis, lang, symbol=fmt.currency_symbol()))


def verdict_table(frame: pd.DataFrame, fmt: Formatter,
                  thresholds: VerdictThresholds | None = None, *,
                  lapse_days: int = 180) -> Table:
    """The verdict per segment with the figures, the sentences that decided it and its impact.

    Parameters
    ----------
    frame : DataFrame
        :func:`crmkit.relationships.cost_benefit.per_segment`.
    thresholds : VerdictThresholds, optional
        The thresholds used (``config.relationships.thresholds``); default ones otherwise.
    lapse_days : int
        The assumption that made customers lapsed (for the win-back sentence).
    """
    lang = fmt.lang
    shown = frame.copy()
    shown["verdict_label"] = [t(f"rel_verdict_{v}", lang) for v in shown["verdict"]]
    shown["reason"] = [reason(row, fmt, thresholds, lapse_days=lapse_days)
                       for _, row in shown.iterrows()]
    shown["return_label"] = [_ratio(v, fmt) for v in shown["return_on_relationship"]]
    return Table(shown, fmt, {
        "segment_name": ("rel_segment", "text"),
        "contribution_per_customer": ("rel_col_contribution_per_customer", "money:2"),
        "clv_per_customer": ("rel_col_clv_per_customer", "money"),
        "cost_share_of_margin": ("rel_col_cost_share", "pct:0"),
        "imputed_share": ("rel_col_imputed_share", "pct:0"),
        "return_label": ("rel_col_return", "figure"),
        "verdict_label": ("rel_col_verdict", "text"),
        "impact": ("rel_col_impact", "money"),
        "reason": ("rel_col_reason", "text")}, caption=t("rel_caption_verdicts", lang))


def scenario_bars(comparison: pd.DataFrame, fmt: Formatter, *,
                  metrics: Sequence[str] = METRICS, metric: str = "net_value",
                  names: Mapping[str, str] | None = None, primary: str = PRIMARY,
                  accent: str = ACCENT) -> go.Figure:
    """Grouped bars of what each scenario changes against today.

    Parameters
    ----------
    comparison : DataFrame
        :func:`crmkit.relationships.scenarios.compare`. By total: one group per scenario, one bar
        per metric
        of ``metrics``. By segment (the frame has ``segment``): one group per segment, one bar
        per scenario, for ``metric``.
    """
    lang = fmt.lang
    fig = figure(fmt, t("rel_chart_scenarios_title", lang), primary=primary, accent=accent)
    colours = palette(primary, accent)
    if "segment" in comparison:
        segments = comparison.drop_duplicates("segment")
        x = _segment_labels(segments, names)
        for i, (scenario, rows) in enumerate(comparison.groupby("scenario", sort=False)):
            values = rows.set_index("segment")[f"{metric}_change"].reindex(
                segments["segment"]).to_numpy(float)
            fig.add_bar(x=x, y=values, name=safe(scenario), marker_color=colours[i % 10],
                        customdata=[fmt.money(v) for v in values],
                        hovertemplate="%{x}<br>%{customdata}<extra></extra>")
        x_title = t("rel_segment", lang)
        fig.update_layout(title_text=t("rel_chart_scenarios_title", lang) + " · "
                          + t(f"rel_metric_{metric}", lang))
    else:
        x = [safe(s) for s in comparison["scenario"]]
        for i, name in enumerate(metrics):
            values = comparison[f"{name}_change"].to_numpy(float)
            fig.add_bar(x=x, y=values, name=t(f"rel_metric_{name}", lang),
                        marker_color=colours[i], customdata=[fmt.money(v) for v in values],
                        hovertemplate="%{x}<br>" + t(f"rel_metric_{name}", lang)
                        + ": %{customdata}<extra></extra>")
        x_title = t("rel_scenario", lang)
    fig.update_layout(barmode="group")
    fig.update_yaxes(**fmt.money_axis(), zeroline=True, zerolinecolor="#9aa3b2")
    return legend_room(label_axes(fig, x_title, t("rel_chart_scenarios_axis", lang,
                                                  symbol=fmt.currency_symbol())))


def assumption_label(row: Mapping | pd.Series, lang: str) -> str:
    """The name of one sensitivity assumption in ``lang`` (e.g. "Cost per minute, Self-service")."""
    kind = row["assumption"]
    if row.get("relationship_type"):
        return t(f"rel_assumption_{kind}", lang, type=type_name(row["relationship_type"], lang))
    return t(f"rel_assumption_{kind}", lang)


def assumption_value(value, unit: str, fmt: Formatter) -> str:
    """An assumption's value in its unit: money per minute, money or a percentage."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    if unit == "money_per_minute":
        return t("rel_per_minute", fmt.lang, money=fmt.money(value, 2))
    if unit == "money":
        return fmt.money(value)
    return fmt.pct(value, 1)


def tornado(sensitivity: pd.DataFrame, fmt: Formatter, *, metric: str = "net_value",
            swing: float = 0.2, primary: str = PRIMARY, accent: str = ACCENT) -> go.Figure:
    """Tornado chart: the total at each assumption's low and high value, largest swing on top.

    Bars start at the base total; the hover shows each end's assumption value and the
    break-even value.

    Parameters
    ----------
    sensitivity : DataFrame
        :func:`crmkit.relationships.scenarios.sensitivity`.
    metric, swing : optional
        As passed to it (for the titles).
    """
    lang = fmt.lang
    rows = sensitivity.reset_index(drop=True)
    fig = figure(fmt, t("rel_chart_tornado_title", lang, swing=fmt.pct(swing)),
                 primary=primary, accent=accent, height=max(320, 120 + 36 * len(rows)))
    labels = [assumption_label(row, lang) for _, row in rows.iterrows()]
    base = rows["metric_base"].to_numpy(float)
    for end, key, colour in (("low", "rel_chart_tornado_low", accent),
                             ("high", "rel_chart_tornado_high", primary)):
        hover = [t("rel_chart_tornado_hover", lang, label=label,
                   value=assumption_value(row[end], row["unit"], fmt),
                   break_even=assumption_value(row["break_even"], row["unit"], fmt))
                 + "<br>" + fmt.money(row[f"metric_{end}"])
                 for label, (_, row) in zip(labels, rows.iterrows(), strict=True)]
        fig.add_bar(y=labels, x=rows[f"metric_{end}"].to_numpy(float) - base, base=base,
                    orientation="h", name=t(key, lang, swing=fmt.pct(swing)),
                    marker_color=colour, customdata=hover,
                    hovertemplate="%{customdata}<extra></extra>")
    if len(rows):
        fig.add_vline(x=float(base[0]), line={"color": "#33415c", "width": 1})
    fig.update_layout(barmode="overlay")
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(**fmt.money_axis())
    return label_axes(fig, t("rel_chart_tornado_axis", lang, metric=t(f"rel_metric_{metric}",
                                                                        lang),
                             symbol=fmt.currency_symbol()), "")


def economics_table(frame: pd.DataFrame, fmt: Formatter) -> Table:
    """What a customer of each segment brings and costs a year, and what it is worth.

    Parameters
    ----------
    frame : DataFrame
        :func:`crmkit.relationships.cost_benefit.per_segment`.
    """
    shown = frame.copy()
    shown["return_label"] = [_ratio(v, fmt) for v in shown["return_on_relationship"]]
    return Table(shown, fmt, {
        "segment_name": ("rel_segment", "text"),
        "customers": ("rel_col_customers", "integer"),
        "revenue_per_customer": ("rel_col_revenue_per_customer", "money"),
        "margin_per_customer": ("rel_col_margin_per_customer", "money:2"),
        "variable_cost_per_customer": ("rel_col_variable_cost", "money:2"),
        "cost_per_customer": ("rel_col_cost_per_customer", "money:2"),
        "profit_per_customer": ("rel_col_profit_per_customer", "money:2"),
        "clv_per_customer": ("rel_col_clv_per_customer", "money"),
        "retention": ("rel_col_retention", "pct:0"),
        "return_label": ("rel_col_return", "figure")}, caption=t("rel_caption_economics", fmt.lang))


def scenario_table(comparison: pd.DataFrame, fmt: Formatter) -> Table:
    """The scenarios side by side, by total: what each changes against today.

    Parameters
    ----------
    comparison : DataFrame
        :func:`crmkit.relationships.scenarios.compare` by total (scenario names and notes are
        client text,
        escaped by the table).
    """
    return Table(comparison, fmt, {
        "scenario": ("rel_scenario", "text"),
        "note": ("rel_col_note", "text"),
        "cost_change": ("rel_col_cost_change", "money"),
        "profit_change": ("rel_col_profit_change", "money"),
        "value_change": ("rel_col_value_change", "money"),
        "net_value_change": ("rel_col_net_value_change", "money")},
        caption=t("rel_caption_scenarios", fmt.lang))


def sensitivity_table(sensitivity: pd.DataFrame, fmt: Formatter, *, metric: str = "net_value",
                      swing: float = 0.2) -> Table:
    """The sensitivity as a table: each assumption today, the result at its low and high value,
    and its break-even value (the value at which the total would fall to zero).

    Parameters
    ----------
    sensitivity : DataFrame
        :func:`crmkit.relationships.scenarios.sensitivity`.
    metric, swing : optional
        As passed to it (for the caption).
    """
    lang = fmt.lang
    shown = sensitivity.copy()
    shown["label"] = [assumption_label(row, lang) for _, row in shown.iterrows()]
    shown["base_label"] = [assumption_value(v, u, fmt)
                           for v, u in zip(shown["base"], shown["unit"], strict=True)]
    shown["break_even_label"] = [
        assumption_value(v, u, fmt) if v is not None else t("rel_no_break_even", lang)
        for v, u in zip(shown["break_even"], shown["unit"], strict=True)]
    caption = t("rel_sensitivity_caption", lang, swing=fmt.pct(swing),
                metric=t(f"rel_metric_{metric}", lang).lower())
    return Table(shown, fmt, {
        "label": ("rel_col_assumption", "text"),
        "base_label": ("rel_col_base_value", "figure"),
        "metric_low": ("rel_col_result_low", "money"),
        "metric_high": ("rel_col_result_high", "money"),
        "break_even_label": ("rel_col_break_even", "figure")}, caption=caption)
