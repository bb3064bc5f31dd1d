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
