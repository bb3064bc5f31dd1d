"""Charts of the CRM implementation plan (workbook 05).

Every chart is built on the shared theme (:func:`crmkit.delivery.charts.figure`), titled and
labelled
through ``t()`` with keys in ``messages/plan.yaml``, with money axes in the client's currency
(:meth:`~crmkit.core.i18n.Formatter.money_axis`). Client text (risk texts typed in client.yaml,
segment names, benefit names) passes through :func:`crmkit.delivery.charts.safe` before reaching a
label.

"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from crmkit.core.i18n import Formatter, t, tn
from crmkit.planning.costs import category_name
from crmkit.planning.costs import costs_by_year as _costs_by_year
from crmkit.planning.costs import tco as _tco
from crmkit.planning.schedule import Plan, phase_name
from crmkit.settings.project import CATEGORIES

from . import BOTTOM_LEGEND, PLOTLY_MIME, Chart, figure, label_axes, palette, safe

__all__ = ["PLOTLY_MIME", "costs", "cumulative_cash_flow", "npv_tornado",
           "offer_roi", "readiness", "risk_matrix", "timeline"]


PRIMARY = "#1b4965"
ACCENT = "#e07a5f"
#: Risk levels keep their meaning whatever the client's brand.
LEVEL_COLOURS = {"low": "#81b29a", "medium": "#f2cc8f", "high": "#b23a48"}
# Legends go under the plot (the theme's BOTTOM_LEGEND), so that the marks annotated above it
# (go-live, payback, base NPV) stay legible.


def _months(months: float, fmt: Formatter) -> str:
    """"1 month", "2.5 months", "1 mes": the count with its word in the right number."""
    text = fmt.number(months, 1 if months % 1 else 0)
    return tn("unit_months", months, fmt.lang, n=text)


def _iso(day: dt.date) -> str:
    return day.isoformat()


def timeline(plan: Plan, fmt: Formatter, *, primary: str = PRIMARY,
             accent: str = ACCENT) -> Chart:
    """The phases as a Gantt chart on a date axis, with go-live marked.

    Parameters
    ----------
    plan : Plan
        From :func:`crmkit.planning.plan.build`.
    fmt : Formatter
    primary, accent : str
        The client's brand colours.
    """
    lang = fmt.lang
    colours = palette(primary, accent)
    phases = plan.phases
    fig = figure(fmt, t("plan_chart_timeline_title", lang), primary=primary, accent=accent,
                 height=max(280, 120 + 52 * len(phases)))
    names = [safe(phase_name(r.phase, lang, r.label)) for r in phases.itertuples()]
    ends = [plan.month_date(m) for m in phases["end_month"]]
    durations = [(pd.Timestamp(e) - pd.Timestamp(s)).total_seconds() * 1000
                 for s, e in zip(phases["start"], ends, strict=True)]
    hover = [f"{n}<br>{fmt.date(s, 'medium')} – {fmt.date(f, 'medium')}"
             f"<br>{_months(m, fmt)}"
             for n, s, f, m in zip(names, phases["start"], phases["finish"], phases["months"],
                                   strict=True)]
    fig.add_bar(y=names, x=durations, base=[_iso(s) for s in phases["start"]], orientation="h",
                marker_color=[colours[1] if p == "launch" else colours[0]
                              for p in phases["phase"]],
                text=[_months(m, fmt) for m in phases["months"]],
                textposition="inside", insidetextanchor="middle", hovertext=hover,
                hoverinfo="text", showlegend=False)
    go_live = _iso(plan.go_live_date)
    fig.add_shape(type="line", x0=go_live, x1=go_live, y0=0, y1=1, yref="paper",
                  line={"color": colours[3], "width": 2, "dash": "dash"})
    fig.add_annotation(x=go_live, y=1, yref="paper", yanchor="bottom", showarrow=False,
                       text=t("plan_chart_go_live", lang, date=fmt.date(plan.go_live_date,
                                                                         "medium")),
                       font={"color": colours[3]})
    fig.update_xaxes(type="date")
    fig.update_yaxes(autorange="reversed")
    return label_axes(fig, t("plan_chart_date_axis", lang), "")


def costs(plan: Plan, fmt: Formatter, *, primary: str = PRIMARY,
                        accent: str = ACCENT) -> Chart:
    """Costs per project year, stacked by category (human costs included)."""
    lang = fmt.lang
    table = _costs_by_year(plan)
    years = [c for c in table.columns if isinstance(c, int)]
    months = {int(r.year): int(r.months) for r in _tco(plan).itertuples()}
    labels = [t("plan_year_label", lang, year=y) if months[y] == 12
              else t("plan_year_label_partial", lang, year=y, months=months[y]) for y in years]
    colours = palette(primary, accent, n=len(CATEGORIES))
    fig = figure(fmt, t("plan_chart_costs_title", lang), primary=primary, accent=accent,
                 height=540)
    for colour, category in zip(colours, CATEGORIES, strict=True):
        values = table.loc[category, years].astype(float)
        if not values.abs().sum():
            continue
        name = category_name(category, lang)
        fig.add_bar(x=labels, y=values.to_numpy(), name=name, marker_color=colour,
                    hovertemplate=f"{name}<br>%{{x}}: %{{y:,.0f}}<extra></extra>")
    # The theme's legend under the plot: beside it, a dozen categories would squeeze the bars and
    # run into the title on a narrow page.
    fig.update_layout(barmode="stack")
    fig.update_yaxes(**fmt.money_axis())
    return label_axes(fig, t("plan_chart_project_year", lang),
                      t("plan_chart_cost_axis", lang, symbol=fmt.currency_symbol()))


def cumulative_cash_flow(flows: pd.DataFrame, returns, fmt: Formatter, *,
                         primary: str = PRIMARY, accent: str = ACCENT) -> Chart:
    """Monthly net cash flow (bars) and its cumulative sum (line), payback marked.

    Parameters
    ----------
    flows : DataFrame
        :func:`crmkit.planning.finance.cash_flows`.
    returns : finance.Returns
        :func:`crmkit.planning.finance.returns`; its payback month is marked, or "no payback within
        the
        horizon" is written on the chart.
    """
    lang = fmt.lang
    colours = palette(primary, accent)
    fig = figure(fmt, t("plan_chart_cash_title", lang), primary=primary, accent=accent)
    dates = [_iso(d) for d in flows["date"]]
    months = [fmt.month(d) for d in flows["date"]]
    fig.add_bar(x=dates, y=flows["net"], name=t("plan_chart_net_monthly", lang),
                marker_color=[colours[4] if v >= 0 else colours[3] for v in flows["net"]],
                customdata=months, hovertemplate="%{customdata}<br>%{y:,.0f}<extra></extra>")
    fig.add_scatter(x=dates, y=flows["cumulative"], mode="lines",
                    name=t("plan_chart_cumulative", lang), line={"color": colours[0], "width": 3},
                    customdata=months, hovertemplate="%{customdata}<br>%{y:,.0f}<extra></extra>")
    if "cumulative_discounted" in flows:
        fig.add_scatter(x=dates, y=flows["cumulative_discounted"], mode="lines",
                        name=t("plan_chart_cumulative_discounted", lang),
                        line={"color": colours[2], "width": 2, "dash": "dot"},
                        customdata=months,
                        hovertemplate="%{customdata}<br>%{y:,.0f}<extra></extra>")
    fig.add_hline(y=0, line={"color": "#9aa3b2", "width": 1})
    if returns is not None and returns.payback_month is not None:
        when = _iso(returns.payback_date)
        fig.add_shape(type="line", x0=when, x1=when, y0=0, y1=1, yref="paper",
                      line={"color": colours[1], "width": 2, "dash": "dash"})
        fig.add_annotation(x=when, y=1, yref="paper", yanchor="bottom", showarrow=False,
                           text=t("plan_chart_payback", lang, date=fmt.month(
                               returns.payback_date)), font={"color": colours[1]})
    elif returns is not None:
        fig.add_annotation(x=0.5, y=0.95, xref="paper", yref="paper", showarrow=False,
                           text=returns.payback_text(fmt), font={"color": colours[3]})
    fig.update_xaxes(type="date")
    fig.update_yaxes(**fmt.money_axis())
    fig.update_layout(legend=BOTTOM_LEGEND)
    return label_axes(fig, t("month", lang),
                      t("plan_chart_cash_axis", lang, symbol=fmt.currency_symbol()))


def npv_tornado(sensitivity: pd.DataFrame, fmt: Formatter, *, primary: str = PRIMARY,
                accent: str = ACCENT) -> Chart:
    """The NPV tornado: how far the NPV moves with each assumption low and high.

    Parameters
    ----------
    sensitivity : DataFrame
        :func:`crmkit.planning.finance.sensitivity` (with or without ``lang``).
    """
    lang = fmt.lang
    colours = palette(primary, accent)
    rows = sensitivity.sort_values("swing", ascending=True)
    names = [t(f"fin_driver_{d}", lang) for d in rows["driver"]]
    base = float(rows["base_npv"].iloc[0]) if len(rows) else 0.0
    fig = figure(fmt, t("plan_chart_tornado_title", lang), primary=primary, accent=accent,
                 height=max(300, 110 + 50 * len(rows)))
    for column, key, colour in (("npv_low", "plan_chart_driver_low", colours[1]),
                                ("npv_high", "plan_chart_driver_high", colours[0])):
        fig.add_bar(y=names, x=(rows[column] - base).to_numpy(), base=base, orientation="h",
                    name=t(key, lang), marker_color=colour,
                    customdata=rows[column].to_numpy(),
                    hovertemplate="%{y}: %{customdata:,.0f}<extra></extra>")
    fig.add_shape(type="line", x0=base, x1=base, y0=0, y1=1, yref="paper",
                  line={"color": "#33415c", "width": 2})
    fig.add_annotation(x=base, y=1, yref="paper", yanchor="bottom", showarrow=False,
                       text=t("plan_chart_base_npv", lang, value=fmt.money(base)))
    fig.update_layout(barmode="overlay", legend=BOTTOM_LEGEND)
    fig.update_xaxes(**fmt.money_axis())
    return label_axes(fig, t("plan_chart_npv_axis", lang, symbol=fmt.currency_symbol()), "")


def readiness(frame: pd.DataFrame, fmt: Formatter, *, primary: str = PRIMARY,
              accent: str = ACCENT) -> Chart:
    """People, process and technology readiness on the 1-5 scale.

    Parameters
    ----------
    frame : DataFrame
        :func:`crmkit.planning.plan.readiness`.
    """
    lang = fmt.lang
    colours = palette(primary, accent)
    fig = figure(fmt, t("plan_chart_readiness_title", lang), primary=primary, accent=accent,
                 height=280)
    colour = [colours[3] if s <= 2 else colours[0] if s >= 4 else colours[2]
              for s in frame["score"]]
    fig.add_bar(y=frame["name"], x=frame["score"], orientation="h", marker_color=colour,
                text=frame["reading_name"], textposition="inside",
                hovertemplate="%{y}: %{x}/5<extra></extra>")
    fig.update_xaxes(range=[0, 5], dtick=1)
    fig.update_yaxes(autorange="reversed")
    return label_axes(fig, t("plan_chart_score_axis", lang), "")


def risk_matrix(register: pd.DataFrame, fmt: Formatter, *, primary: str = PRIMARY,
                accent: str = ACCENT) -> Chart:
    """Likelihood × impact bubbles of the risk register, on green-amber-red zones.

    Each bubble shows the risk's ``number`` in the register (so the table beside the chart
    explains it); risks sharing a cell are spread around its centre so that each can be read.

    Parameters
    ----------
    register : DataFrame
        :func:`crmkit.planning.plan.risk_register`.
    """
    lang = fmt.lang
    fig = figure(fmt, t("plan_chart_risks_title", lang), primary=primary, accent=accent,
                 height=520)
    for likelihood in range(1, 6):
        for impact in range(1, 6):
            score = likelihood * impact
            level = "high" if score >= 15 else "medium" if score >= 8 else "low"
            fig.add_shape(type="rect", x0=likelihood - 0.5, x1=likelihood + 0.5,
                          y0=impact - 0.5, y1=impact + 0.5, line={"width": 1, "color": "white"},
                          fillcolor=LEVEL_COLOURS[level], opacity=0.35, layer="below")
    x, y = [], []
    cells: dict[tuple[int, int], int] = {}
    counts = register.groupby(["likelihood", "impact"]).size().to_dict()
    for row in register.itertuples():
        cell = (int(row.likelihood), int(row.impact))
        k, n = cells.get(cell, 0), counts[cell]
        cells[cell] = k + 1
        angle = 2 * np.pi * k / n
        radius = 0.22 if n > 1 else 0.0
        x.append(cell[0] + radius * np.cos(angle))
        y.append(cell[1] + radius * np.sin(angle))
    texts = [safe(r) for r in register["risk"]]
    numbers = list(register["number"]) if "number" in register else list(
        range(1, len(register) + 1))
    fig.add_scatter(
        x=x, y=y, mode="markers+text", text=[str(n) for n in numbers],
        textfont={"color": "#1d2433", "size": 12},
        marker={"size": [14 + 1.6 * s for s in register["score"]],
                "color": [LEVEL_COLOURS[lv] for lv in register["level"]],
                "line": {"color": "#33415c", "width": 1}, "opacity": 0.95},
        hovertext=[f"{n}. {txt}<br>{t('plan_col_likelihood', lang)}: {lk} · "
                   f"{t('plan_col_impact', lang)}: {im}"
                   for n, txt, lk, im in zip(numbers, texts, register["likelihood"],
                                             register["impact"], strict=True)],
        hoverinfo="text", showlegend=False)
    fig.update_xaxes(range=[0.5, 5.5], dtick=1, showgrid=False)
    fig.update_yaxes(range=[0.5, 5.5], dtick=1, showgrid=False)
    return label_axes(fig, t("plan_chart_likelihood_axis", lang),
                      t("plan_chart_impact_axis", lang))


def offer_roi(segments: pd.DataFrame, fmt: Formatter, *, primary: str = PRIMARY,
              accent: str = ACCENT) -> Chart:
    """Return on the level-2 offer per segment: ROI bars, with cost and margin on hover.

    Parameters
    ----------
    segments : DataFrame
        ``automation.level2(...).segments``.
    """
    lang = fmt.lang
    colours = palette(primary, accent)
    # The segments keep the order they come in (the segment map's, as in every other chart of
    # the report), top to bottom: a ranking by ROI would reorder them chart by chart.
    rows = segments.dropna(subset=["roi"])
    names = [safe(n) for n in rows["segment_name"]]
    fig = figure(fmt, t("plan_chart_offer_title", lang), primary=primary, accent=accent,
                 height=max(300, 110 + 40 * len(rows)))
    hover = [f"{n}<br>{t('auto_col_expected_cost', lang)}: {fmt.money(c)}"
             f"<br>{t('auto_col_incremental_margin', lang)}: {fmt.money(m)}"
             f"<br>ROI: {fmt.pct(r, 0)}"
             for n, c, m, r in zip(names, rows["expected_cost"], rows["incremental_margin"],
                                   rows["roi"], strict=True)]
    fig.add_bar(y=names, x=rows["roi"], orientation="h",
                marker_color=[colours[0] if r >= 0 else colours[3] for r in rows["roi"]],
                text=[fmt.pct(r, 0) for r in rows["roi"]], textposition="auto",
                hovertext=hover, hoverinfo="text", showlegend=False)
    fig.update_xaxes(tickformat=".0%", zeroline=True, zerolinecolor="#9aa3b2")
    fig.update_yaxes(autorange="reversed")  # the first segment on top
    return label_axes(fig, t("plan_chart_roi_axis", lang), "")
