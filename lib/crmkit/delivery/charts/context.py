"""Charts of the context analysis (workbook 01)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from crmkit.core.i18n import Formatter, t

from . import figure, label_axes, palette


def monthly_revenue(monthly: pd.DataFrame, fmt: Formatter, **brand) -> go.Figure:
    """Revenue bars with active customers as a line on a second axis."""
    lang = fmt.lang
    colours = palette(**brand)
    fig = figure(fmt, t("chart_monthly_title", lang), **brand)
    months = [fmt.month(m) for m in monthly.index]
    fig.add_bar(x=monthly.index, y=monthly["revenue"], name=t("revenue", lang),
                marker_color=colours[0], customdata=months,
                hovertemplate="%{customdata}<br>%{y:,.0f}<extra></extra>")
    fig.add_scatter(x=monthly.index, y=monthly["active_customers"], yaxis="y2", mode="lines",
                    name=t("chart_active_customers", lang), line={"color": colours[1], "width": 3},
                    customdata=months, hovertemplate="%{customdata}<br>%{y:,}<extra></extra>")
    symbol = fmt.currency_symbol()
    label_axes(fig, t("month", lang), f"{t('revenue', lang)} ({symbol})")
    fig.update_yaxes(**fmt.money_axis())
    fig.update_layout(yaxis2={"title": t("chart_active_customers", lang), "overlaying": "y",
                              "side": "right", "showgrid": False, "rangemode": "tozero",
                              "tickmode": "auto", "tickformat": ",d"})
    return fig


def new_and_returning(monthly: pd.DataFrame, fmt: Formatter, **brand) -> go.Figure:
    """Stacked bars of new and returning customers per month."""
    lang = fmt.lang
    colours = palette(**brand)
    fig = figure(fmt, t("chart_customers_title", lang), **brand)
    fig.add_bar(x=monthly.index, y=monthly["returning_customers"], name=t("chart_returning", lang),
                marker_color=colours[0])
    fig.add_bar(x=monthly.index, y=monthly["new_customers"], name=t("chart_new", lang),
                marker_color=colours[1])
    fig.update_layout(barmode="stack")
    return label_axes(fig, t("month", lang), t("customers", lang))


def capabilities(scores: pd.DataFrame, fmt: Formatter, **brand) -> go.Figure:
    """Horizontal bars of the four internal capabilities on the 1-5 scale."""
    lang = fmt.lang
    colours = palette(**brand)
    fig = figure(fmt, t("chart_capabilities_title", lang), height=300, **brand)
    colour = [colours[3] if s <= 2 else colours[0] if s >= 4 else colours[2]
              for s in scores["score"]]
    fig.add_bar(y=scores["name"], x=scores["score"], orientation="h", marker_color=colour,
                text=scores["reading"], textposition="inside", hoverinfo="skip")
    fig.update_xaxes(range=[0, 5], dtick=1)
    fig.update_yaxes(autorange="reversed")
    return label_axes(fig, t("col_score", lang), "")


def external_weights(factors: pd.DataFrame, fmt: Formatter, **brand) -> go.Figure:
    """Diverging bars: opportunities to the right, threats to the left."""
    lang = fmt.lang
    colours = palette(**brand)
    fig = figure(fmt, t("chart_external_title", lang), height=300, **brand)
    text = factors["impact_label"] + ", " + factors["time_frame_label"]
    fig.add_bar(y=factors["name"], x=factors["weight"], orientation="h", text=text,
                marker_color=[colours[4] if w > 0 else colours[3] for w in factors["weight"]],
                hovertemplate="%{y}: %{x:.2f}<extra></extra>")
    fig.update_xaxes(range=[-3.2, 3.2], zeroline=True, zerolinecolor="#9aa3b2")
    fig.update_yaxes(autorange="reversed")
    return label_axes(fig, t("chart_external_axis", lang), "")


def objective_points(points: dict[str, int], chosen: str, fmt: Formatter, **brand) -> go.Figure:
    """Bars of the points for attract, retain and grow; the chosen objective highlighted."""
    lang = fmt.lang
    colours = palette(**brand)
    fig = figure(fmt, t("chart_objective_title", lang), height=300, **brand)
    names = [t(f"objective_{o}_short", lang) for o in points]
    fig.add_bar(x=names, y=list(points.values()), text=list(points.values()),
                marker_color=[colours[1] if o == chosen else colours[5] for o in points],
                hoverinfo="skip")
    return label_axes(fig, "", t("chart_points", lang))
