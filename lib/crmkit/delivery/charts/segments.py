"""Charts of segmentation and customer profiles (workbook 02).

Every chart is built on the shared theme (:func:`crmkit.delivery.charts.figure`), translated through
``t()`` with keys in ``messages/segments.yaml``, and takes the :class:`~crmkit.core.i18n.Formatter`
and the client's brand colours. Segment names come in through ``names`` (segment key ->
name already in the report's language, e.g. :func:`crmkit.analysis.segment_maps.names` or
:meth:`crmkit.analysis.clustering.Clustering.names`); they and attribute values are client text, so
they
pass through :func:`crmkit.delivery.charts.safe` before reaching a label.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from crmkit.analysis.rfm import score_grid
from crmkit.core.i18n import Formatter, t, value_label

from . import figure, label_axes, log_axis, palette, safe, share_bars

PRIMARY = "#1b4965"
ACCENT = "#e07a5f"
#: Colours of the five satisfaction answers, from completely dissatisfied to completely
#: satisfied; the two ends keep their meaning (red, blue) whatever the client's brand.
SATISFACTION_COLOURS = ["#b23a48", "#e8998d", "#d3d7de", "#8fb8de", "#1f5f8b"]


def _name(names: Mapping[str, str] | None, key) -> str:
    return safe(names.get(key, key) if names else key)


def _shade(primary: str) -> list[list]:
    """A white-to-brand colour scale for heatmaps."""
    return [[0, "#ffffff"], [1, primary]]


def segment_bars(profiles: pd.DataFrame, fmt: Formatter, *,
                 names: Mapping[str, str] | None = None, primary: str = PRIMARY,
                 accent: str = ACCENT, margin: bool = False) -> go.Figure:
    """Each segment's share of customers beside its share of revenue (and margin).

    A segment with a revenue bar much longer than its customer bar is worth more than its size;
    the reverse is a segment that costs attention for little return.

    Parameters
    ----------
    profiles : DataFrame
        :func:`crmkit.analysis.profiles.segment_profiles`.
    margin : bool
        Add the share of margin as a third bar.
    """
    lang = fmt.lang
    colours = palette(primary, accent)
    rows = profiles.drop(index="all", errors="ignore")
    labels = [_name(names, k) for k in rows.index]
    fig = figure(fmt, t("seg_chart_bars_title", lang), primary=primary, accent=accent,
                 height=max(320, 60 + 48 * len(rows)))
    series = [("customer_share", "seg_col_customer_share", colours[2]),
              ("revenue_share", "seg_col_revenue_share", colours[0])]
    if margin:
        series.append(("margin_share", "seg_col_margin_share", colours[1]))
    share_bars(fig, labels, [(rows[column], t(key, lang), colour)
                             for column, key, colour in series], fmt)
    return label_axes(fig, t("seg_axis_share", lang), "")


def rfm_heatmap(scores: pd.DataFrame, segment_map, fmt: Formatter, *,
                primary: str = PRIMARY, accent: str = ACCENT) -> go.Figure:
    """The R x F grid: customers per cell, each cell labelled with its segment.

    Parameters
    ----------
    scores : DataFrame
        :func:`crmkit.analysis.rfm.rfm_scores`.
    segment_map : SegmentMap or None
        A ``scores`` map on R and F; its segment names label the cells (None: counts only).
    """
    lang = fmt.lang
    scale = getattr(segment_map, "scale", None) or 5
    grid = score_grid(scores, bins=scale)
    counts = grid.to_numpy()
    total = counts.sum()
    label_cells = (segment_map is not None and getattr(segment_map, "kind", None) == "scores"
                   and [d.name for d in segment_map.dimensions] == ["r", "f"])
    text = []
    for i, r in enumerate(grid.index):
        row = []
        for j, f in enumerate(grid.columns):
            count = fmt.number(counts[i, j])
            if label_cells:
                segment = segment_map.segments[segment_map.lookup[r - 1, f - 1]]
                row.append(f"{safe(segment.name[lang])}<br>{count}")
            else:
                row.append(count)
        text.append(row)
    share = [[fmt.pct(c / total if total else 0, 1) for c in row] for row in counts]
    fig = figure(fmt, t("seg_chart_heatmap_title", lang), primary=primary, accent=accent,
                 height=520)
    fig.add_heatmap(z=counts, x=[str(c) for c in grid.columns], y=[str(r) for r in grid.index],
                    text=text, texttemplate="%{text}", textfont={"size": 11},
                    customdata=share, colorscale=_shade(primary), showscale=False, xgap=2,
                    ygap=2, hovertemplate=("R %{y} · F %{x}<br>%{text}<br>%{customdata}"
                                           "<extra></extra>"))
    fig.update_xaxes(showline=False, ticks="", type="category")
    # Rows come highest score first; reversed, R 5 (the most recent) is at the top.
    fig.update_yaxes(showline=False, ticks="", type="category", autorange="reversed")
    return label_axes(fig, t("seg_axis_f_score", lang), t("seg_axis_r_score", lang))


def distribution_vs_average(gap, fmt: Formatter, measure: str = "spend", *,
                            primary: str = PRIMARY, accent: str = ACCENT,
                            bins: int = 40) -> go.Figure:
    """Histogram of one per-customer measure with the average, the median and the ±band marked.

    Spend and purchases are drawn on a log axis (they span orders of magnitude, and on a linear
    one the bulk of customers is a single bar by the axis); recency on a linear one.

    Parameters
    ----------
    gap : AverageGap
        :func:`crmkit.analysis.profiles.average_customer_gap`.
    measure : {"spend", "frequency", "recency"}
    """
    if measure not in ("spend", "frequency", "recency"):
        raise ValueError(f"measure {measure!r}; expected spend, frequency or recency")
    lang = fmt.lang
    colours = palette(primary, accent)
    values = gap.customers[measure].to_numpy(dtype=np.float64)
    stats = gap.summary.loc[measure]
    log = measure in ("spend", "frequency")
    dropped = 0
    if log:
        dropped = int((values <= 0).sum())
        values = values[values > 0]
    if measure == "frequency" and len(values):
        # Whole numbers of purchases: log-spaced bins with edges between integers, so that no
        # bin falls between 1 and 2 purchases and shows a false gap.
        edges = np.unique(np.round(np.geomspace(1, values.max() + 1, bins + 1))) - 0.5
        edges[0] = 1  # start the log axis at one purchase, not at 0.5
    elif log and len(values):
        low, high = values.min(), values.max()
        edges = np.geomspace(low, high * 1.0001 if high > low else low * 2, bins + 1)
    else:
        edges = np.linspace(0, max(values.max(), 1) if len(values) else 1, bins + 1)
    counts, edges = np.histogram(values, bins=edges)
    fig = figure(fmt, t(f"seg_chart_dist_{measure}", lang), primary=primary, accent=accent)
    fig.add_scatter(x=edges, y=np.r_[counts, counts[-1:]], mode="lines", line_shape="hv",
                    fill="tozeroy", line={"color": colours[0], "width": 1.5},
                    name=t("seg_axis_customers", lang), hoverinfo="skip", showlegend=False)

    def position(x: float) -> float:  # annotations on a log axis take log10(x); shapes do not
        return float(np.log10(x)) if log else float(x)

    show = fmt.money if measure == "spend" else (lambda v: fmt.number(v, 1))
    mean, median = float(stats["mean"]), float(stats["median"])
    if not log or mean > 0:
        low, high = mean * (1 - gap.band), mean * (1 + gap.band)
        if not log or low > 0:
            fig.add_shape(type="rect", xref="x", yref="paper", x0=low, x1=high, y0=0, y1=1,
                          fillcolor=accent, opacity=0.15,
                          line_width=0, layer="below")
        for value, key, colour, dash, y in ((mean, "seg_mean", accent, "solid", 1.0),
                                            (median, "seg_median", "#5c677d", "dot", 0.9)):
            if log and value <= 0:
                continue
            fig.add_shape(type="line", xref="x", yref="paper", x0=value, x1=value, y0=0, y1=1,
                          line={"color": colour, "width": 2, "dash": dash})
            fig.add_annotation(x=position(value), y=y, xref="x", yref="paper",
                               text=f"{t(key, lang)}: {show(value)}", showarrow=False,
                               xanchor="left", yanchor="top", font={"color": colour})
    note = t("seg_band_note", lang, share=fmt.pct(float(stats["within_band"])),
             band=fmt.pct(gap.band))
    if dropped:
        note += " · " + t("seg_nonpositive_note", lang, count=fmt.number(dropped))
    fig.update_layout(title_subtitle_text=note, margin={"t": 84})
    if measure == "spend":
        fig.update_xaxes(type="log", **fmt.money_axis())
        if len(values):
            log_axis(fig, edges[0], edges[-1], fmt.money)
        x_title = t("seg_axis_spend_log", lang, symbol=fmt.currency_symbol())
    elif measure == "frequency":
        if len(values):
            log_axis(fig, 1, edges[-1], lambda v: fmt.number(v))
        else:
            fig.update_xaxes(type="log")
        x_title = t("seg_axis_purchases", lang)
    else:
        fig.update_xaxes(rangemode="tozero")
        x_title = t("seg_axis_days", lang)
    fig.update_yaxes(rangemode="tozero")
    return label_axes(fig, x_title, t("seg_axis_customers", lang))


def silhouette_chart(silhouette: pd.DataFrame, fmt: Formatter, *, primary: str = PRIMARY,
                     accent: str = ACCENT) -> go.Figure:
    """Silhouette score for each number of clusters tried, the chosen one highlighted.

    Parameters
    ----------
    silhouette : DataFrame
        :attr:`crmkit.analysis.clustering.Clustering.silhouette` (index ``k``; ``silhouette``,
        ``chosen``). When its ``attrs`` say it was scored on a sample smaller than the base
        (``sample_size`` < ``customers``), the chart says so under its title, in the language.
    """
    lang = fmt.lang
    colours = palette(primary, accent)
    chosen = silhouette["chosen"].to_numpy(dtype=bool)
    scores = silhouette["silhouette"].to_numpy(dtype=np.float64)
    fig = figure(fmt, t("seg_chart_silhouette_title", lang), primary=primary, accent=accent,
                 height=380)
    text = [fmt.number(s, 2) + (f" ({t('seg_chosen', lang)})" if c else "")
            for s, c in zip(scores, chosen, strict=True)]
    fig.add_bar(x=[str(k) for k in silhouette.index], y=scores, text=text,
                textposition="outside", marker_color=[colours[1] if c else "#98a2b3"
                                                      for c in chosen],
                hovertemplate="k = %{x}: %{y:.3f}<extra></extra>")
    fig.update_xaxes(type="category")
    fig.update_yaxes(rangemode="tozero")
    sample, total = silhouette.attrs.get("sample_size"), silhouette.attrs.get("customers")
    if sample is not None and total is not None and sample < total:
        # A big base is scored on a fixed-seed sample (crmkit.analysis.clustering): say so.
        fig.update_layout(title_subtitle_text=t("scale_sample_note", lang,
                                                sample=fmt.number(sample, 0),
                                                total=fmt.number(total, 0)),
                          margin_t=84)
    return label_axes(fig, t("seg_axis_k", lang), t("seg_axis_silhouette", lang))


def cluster_profiles(profiles: pd.DataFrame, fmt: Formatter, *, primary: str = PRIMARY,
                     accent: str = ACCENT) -> go.Figure:
    """Heatmap of each cluster's centroid, in standard deviations from the average customer.

    Parameters
    ----------
    profiles : DataFrame
        :attr:`crmkit.analysis.clustering.Clustering.profiles`.
    """
    from crmkit.analysis.clustering import (
        FEATURES,  # here: other charts need no scikit-learn import
    )

    lang = fmt.lang
    z = profiles[[f"z_{f}" for f in FEATURES]].to_numpy(dtype=np.float64)
    labels = [f"{safe(name)} ({fmt.pct(share)})" for name, share in
              zip(profiles[f"name_{lang}"], profiles["share"], strict=True)]
    fig = figure(fmt, t("seg_chart_clusters_title", lang), primary=primary, accent=accent,
                 height=max(320, 90 + 50 * len(profiles)))
    limit = max(1.0, float(np.nanmax(np.abs(z)))) if z.size else 1.0
    fig.add_heatmap(z=z, x=[t(f"seg_feature_{f}", lang) for f in FEATURES], y=labels,
                    text=[[fmt.number(v, 1) for v in row] for row in z],
                    texttemplate="%{text}", zmin=-limit, zmax=limit,
                    colorscale=[[0, accent], [0.5, "#ffffff"], [1, primary]],
                    colorbar={"title": {"text": "σ"}}, xgap=2, ygap=2,
                    hovertemplate="%{y}<br>%{x}: %{text}<extra></extra>")
    fig.update_yaxes(autorange="reversed", showline=False, ticks="")
    fig.update_xaxes(showline=False, ticks="")
    return label_axes(fig, t("seg_axis_z", lang), "")


def satisfaction_by_segment(sat: pd.DataFrame, fmt: Formatter, *,
                            names: Mapping[str, str] | None = None, primary: str = PRIMARY,
                            accent: str = ACCENT) -> go.Figure:
    """Stacked bars of the five satisfaction answers per segment (each bar sums to 100 %).

    Parameters
    ----------
    sat : DataFrame
        :func:`crmkit.analysis.profiles.satisfaction`.
    """
    lang = fmt.lang
    rows = sat[sat["respondents"] > 0]
    labels = [f"{_name(names, k)} ({t('seg_respondents_n', lang, n=fmt.number(n))})"
              for k, n in zip(rows.index, rows["respondents"], strict=True)]
    colours = list(SATISFACTION_COLOURS)
    colours[4] = primary
    fig = figure(fmt, t("seg_chart_satisfaction_title", lang), primary=primary, accent=accent,
                 height=max(320, 90 + 44 * len(rows)))
    for level in range(1, 6):
        values = rows[f"share_{level}"].to_numpy(dtype=np.float64)
        fig.add_bar(y=labels, x=values, orientation="h", name=t(f"seg_sat_{level}", lang),
                    marker_color=colours[level - 1],
                    text=[fmt.pct(v) if v >= 0.06 else "" for v in values],
                    textposition="inside", insidetextanchor="middle",
                    customdata=[fmt.pct(v, 1) for v in values],
                    hovertemplate="%{y}<br>" + t(f"seg_sat_{level}", lang)
                    + ": %{customdata}<extra></extra>")
    fig.update_layout(barmode="stack", legend={"traceorder": "normal"})
    fig.update_xaxes(tickformat=".0%", range=[0, 1])
    fig.update_yaxes(autorange="reversed")
    return label_axes(fig, t("seg_axis_respondents_share", lang), "")


def _mix_heatmap(mix: pd.DataFrame, fmt: Formatter, title: str, x_title: str,
                 names: Mapping[str, str] | None, primary: str, accent: str) -> go.Figure:
    shares = mix.drop(columns=["customers"], errors="ignore")
    z = shares.to_numpy(dtype=np.float64)
    fig = figure(fmt, title, primary=primary, accent=accent,
                 height=max(320, 100 + 40 * len(shares)))
    # Column values come from the client's data (categories, attribute values such as "female"
    # or "store"): known codes are translated, the client's own words shown as written.
    fig.add_heatmap(z=z, x=[safe(value_label(c, fmt.lang)) for c in shares.columns],
                    y=[_name(names, k) for k in shares.index],
                    text=[[fmt.pct(v) if v == v else "–" for v in row] for row in z],
                    texttemplate="%{text}", colorscale=_shade(primary), zmin=0,
                    showscale=False, xgap=2, ygap=2,
                    hovertemplate="%{y}<br>%{x}: %{text}<extra></extra>")
    fig.update_yaxes(autorange="reversed", showline=False, ticks="")
    fig.update_xaxes(showline=False, ticks="", side="bottom")
    return label_axes(fig, x_title, "")


def category_mix_heatmap(mix: pd.DataFrame, fmt: Formatter, *,
                         names: Mapping[str, str] | None = None, primary: str = PRIMARY,
                         accent: str = ACCENT) -> go.Figure:
    """Share of each segment's spend by category (rows sum to 100 %).

    Parameters
    ----------
    mix : DataFrame
        :func:`crmkit.analysis.profiles.consumption_mix`.
    """
    lang = fmt.lang
    return _mix_heatmap(mix, fmt, t("seg_chart_category_title", lang),
                        t("seg_axis_category", lang), names, primary, accent)


def typology_heatmap(mix: pd.DataFrame, fmt: Formatter, attribute_label: str, *,
                     names: Mapping[str, str] | None = None, primary: str = PRIMARY,
                     accent: str = ACCENT) -> go.Figure:
    """Mix of one customer attribute in each segment (rows sum to 100 %).

    Parameters
    ----------
    mix : DataFrame
        :func:`crmkit.analysis.profiles.typological_mix`.
    attribute_label : str
        The attribute's name as the client calls it (client text, escaped here).
    """
    lang = fmt.lang
    label = safe(attribute_label)
    return _mix_heatmap(mix, fmt, t("seg_chart_typology_title", lang, attribute=label), label,
                        names, primary, accent)


def flags_by_segment(by_segment: pd.DataFrame, fmt: Formatter, *,
                     names: Mapping[str, str] | None = None, primary: str = PRIMARY,
                     accent: str = ACCENT) -> go.Figure:
    """Share of each segment's customers flagged most valuable, unprofitable and declining.

    Parameters
    ----------
    by_segment : DataFrame
        :attr:`crmkit.analysis.profiles.Differentiation.by_segment`.
    """
    lang = fmt.lang
    colours = palette(primary, accent)
    labels = [_name(names, k) for k in by_segment.index]
    fig = figure(fmt, t("seg_chart_flags_title", lang), primary=primary, accent=accent,
                 height=max(320, 60 + 56 * len(by_segment)))
    for flag, colour in (("most_valuable", colours[0]), ("unprofitable", colours[1]),
                         ("declining", colours[2])):
        values = by_segment[f"{flag}_share"].to_numpy(dtype=np.float64)
        fig.add_bar(y=labels, x=values, orientation="h", name=t(f"seg_flag_{flag}", lang),
                    marker_color=colour, text=[fmt.pct(v) for v in values],
                    textposition="outside", hovertemplate="%{y}: %{text}<extra></extra>")
    fig.update_layout(barmode="group")
    fig.update_xaxes(tickformat=".0%", rangemode="tozero")
    fig.update_yaxes(autorange="reversed")
    return label_axes(fig, t("seg_axis_share_of_segment", lang), "")
