"""Charts of customer value (workbook 02): what each segment is worth, and how sure we are."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from crmkit.core.i18n import Formatter, t

from . import figure, label_axes, palette, safe, share_bars


def segment_value(values: pd.DataFrame, fmt: Formatter, **brand) -> go.Figure:
    """Mean lifetime value per customer of each segment, with its bootstrap interval.

    Parameters
    ----------
    values : DataFrame
        :func:`crmkit.analysis.segmentation.value_by_segment` (``name``, ``mean_clv``,
        ``mean_clv_low``,
        ``mean_clv_high``, ``customers``).
    """
    lang = fmt.lang
    colours = palette(**brand)
    fig = figure(fmt, t("val_chart_title", lang), height=max(320, 60 + 40 * len(values)), **brand)
    low = values["mean_clv"] - values["mean_clv_low"]
    high = values["mean_clv_high"] - values["mean_clv"]
    fig.add_bar(
        y=[safe(n) for n in values["name"]], x=values["mean_clv"], orientation="h",
        marker_color=colours[0],
        error_x={"type": "data", "symmetric": False, "array": high, "arrayminus": low,
                 "color": colours[1], "thickness": 2},
        customdata=[[fmt.money(a), fmt.money(b), fmt.number(n)] for a, b, n in
                    zip(values["mean_clv_low"], values["mean_clv_high"], values["customers"],
                        strict=True)],
        hovertemplate="%{y}: %{x:,.0f}<br>%{customdata[0]} – %{customdata[1]}"
                      "<br>%{customdata[2]}<extra></extra>")
    fig.update_xaxes(**fmt.money_axis(), rangemode="tozero")
    fig.update_yaxes(autorange="reversed")
    return label_axes(fig, f"{t('val_axis_clv', lang)} ({fmt.currency_symbol()})", "")


def value_share(values: pd.DataFrame, fmt: Formatter, **brand) -> go.Figure:
    """Share of the customers against share of the total lifetime value, per segment."""
    lang = fmt.lang
    colours = palette(**brand)
    fig = figure(fmt, t("val_chart_share_title", lang), height=max(320, 60 + 44 * len(values)),
                 **brand)
    names = [safe(n) for n in values["name"]]
    customers = values["customers"] / values["customers"].sum()
    total = values["total_clv"] / values["total_clv"].sum()
    share_bars(fig, names, [(customers, t("seg_col_customer_share", lang), colours[2]),
                            (total, t("val_col_value_share", lang), colours[0])], fmt)
    return label_axes(fig, t("seg_axis_share", lang), "")


def model_tracking(tracking: pd.DataFrame, fmt: Formatter, **brand) -> go.Figure:
    """Cumulative purchases over the holdout, week by week: what happened and what the chosen
    model predicted from the calibration period alone.

    Parameters
    ----------
    tracking : DataFrame
        :attr:`crmkit.analysis.model_choice.Comparison.tracking` (``date``, ``actual``,
        ``predicted``).
    """
    lang = fmt.lang
    colours = palette(**brand)
    fig = figure(fmt, t("val_chart_tracking_title", lang), height=380, **brand)
    dates = pd.to_datetime(tracking["date"])
    labels = [fmt.date(d) for d in dates]
    fig.add_scatter(x=dates, y=tracking["actual"], mode="lines", name=t("val_actual", lang),
                    line={"color": colours[0], "width": 3}, customdata=labels,
                    hovertemplate="%{customdata}: %{y:,.0f}<extra></extra>")
    fig.add_scatter(x=dates, y=tracking["predicted"], mode="lines",
                    name=t("val_predicted", lang),
                    line={"color": colours[1], "width": 3, "dash": "dash"}, customdata=labels,
                    hovertemplate="%{customdata}: %{y:,.0f}<extra></extra>")
    fig.update_yaxes(rangemode="tozero", tickformat=",.0f")
    return label_axes(fig, "", t("val_axis_cumulative_purchases", lang))


def migration_heatmap(matrix: pd.DataFrame, names: dict[str, str], fmt: Formatter,
                      **brand) -> go.Figure:
    """Share of each segment of a year ago (rows) found in each segment today (columns).

    Parameters
    ----------
    matrix : DataFrame
        :func:`crmkit.analysis.segmentation.year_on_year_migration`.
    names : dict
        Segment key -> name, for the columns.
    """
    lang = fmt.lang
    columns = [c for c in matrix.columns if c not in ("name", "customers")]
    values = matrix[columns].to_numpy(dtype=float)
    rows = [f"{safe(n)} ({fmt.number(c)})" for n, c in zip(matrix["name"], matrix["customers"],
                                                          strict=True)]
    cols = [safe(names.get(c, c)) for c in columns]
    fig = figure(fmt, t("val_chart_migration_title", lang),
                 height=max(360, 120 + 34 * len(rows)), **brand)
    fig.add_heatmap(z=values, x=cols, y=rows, zmin=0, zmax=1,
                    colorscale=[[0, "#ffffff"], [1, palette(**brand)[0]]],
                    text=[[fmt.pct(v) for v in row] for row in values], texttemplate="%{text}",
                    hovertemplate="%{y} → %{x}: %{text}<extra></extra>", showscale=False)
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(tickangle=-30)
    return label_axes(fig, t("val_axis_segment_now", lang), t("val_axis_segment_year_ago", lang))
