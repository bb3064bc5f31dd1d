"""Charts: one shared plotly theme, in the client's colours, language and currency.

Every chart of every workbook is built through :func:`figure`, so they share fonts, colours,
margins, number separators and hover formats; :func:`finish` runs on every chart when it is shown
(in a kernel, in the dashboard, in ``report.html``) and fixes what a chart function cannot know in
advance: labels of bars drawn outside them get room inside the axis (they never run over the tick
labels or the legend), a legend under the plot reserves its own space below the x-axis title, and
Spanish percent ticks read "50 %" like every other Spanish percentage. Log axes get their ticks
from :func:`log_axis` (every tick formatted alike: "€5, €10, €20", not "5, €10, 20").
Chart functions for each step live in a submodule named after the step (``charts.context``,
``charts.segments`` …).

Every chart is shown with :func:`plotly_config`: the toolbar keeps zoom, pan, reset and the PNG
download, and has no "share to Plotly Cloud" button and no Plotly logo (the client's data stays on
the machine); ``locale`` names plotly's Spanish locale (month names, tooltips), which the page
must have loaded (``report.html`` embeds it, see :func:`plotly_locale_js`).

Charts are :class:`Chart` objects: plotly figures that show themselves as plotly's JSON mimetype
(``application/vnd.plotly.v1+json``) directly. JupyterLab draws it and
:mod:`crmkit.delivery.report` turns
it into an embedded, offline chart in ``report.html``. Plotly's own display goes through its
renderer registry, whose import pulls in nbformat and jsonschema: over a second of every
workbook's time before its first chart appears, for the same output.
"""

from __future__ import annotations

import copy
import functools
import html
import json
import math
import re

import plotly.graph_objects as go

from crmkit.core import paths
from crmkit.core.i18n import Formatter

#: Neutral colours that sit well beside any client's primary and accent colours.
NEUTRALS = ["#5c677d", "#98c1d9", "#3d5a80", "#ee6c4d", "#81b29a", "#f2cc8f", "#9c89b8",
            "#6d597a", "#b56576", "#33415c"]
FONT = "Inter, 'Segoe UI', 'Helvetica Neue', Arial, sans-serif"
PLOTLY_MIME = "application/vnd.plotly.v1+json"
#: Toolbar buttons that send the chart elsewhere or are of no use on a report's charts; plotly.js
#: ignores names it does not know, so the names of older and newer versions can all be listed.
REMOVED_BUTTONS = ("sendChartToCloud", "sendDataToCloud", "editInChartStudio", "lasso2d",
                   "select2d")
#: Room left beyond the longest bar for a label drawn outside it, as a share of the bar.
OUTSIDE_LABEL_ROOM = 0.16
#: Where a legend under the plot goes: at the bottom of the figure (``yref="container"``), which
#: makes plotly reserve its height below the x axis and its title instead of drawing over them.
BOTTOM_LEGEND = {"orientation": "h", "xref": "paper", "x": 0, "xanchor": "left",
                 "yref": "container", "y": 0.01, "yanchor": "bottom"}
#: Plotly's Spanish locale, taken from plotly.js (``plotly.js-locales`` ``es.js``, MIT).
LOCALE_FILES = {"es": "plotly-locale-es.js"}
_PCT_FORMAT = re.compile(r"^,?\.0%$")
_AXIS_KEY = re.compile(r"^[xy]axis\d*$")


def plotly_config(lang: str = "en") -> dict:
    """The plotly ``config`` of every chart, in a kernel, the dashboard and the report.

    Zoom, pan, reset and "download as PNG" stay; the Plotly Cloud button, the Plotly logo and
    the selection tools go. ``locale`` is plotly's locale of the language: month names on date
    axes and toolbar tooltips in Spanish (the page must load it, :func:`plotly_locale_js`).
    """
    return {"displaylogo": False, "showSendToCloud": False, "showTips": False,
            "modeBarButtonsToRemove": list(REMOVED_BUTTONS),
            "toImageButtonOptions": {"format": "png", "scale": 2},
            "responsive": True, "locale": "es" if lang == "es" else "en"}


@functools.cache
def plotly_locale_js(lang: str) -> str:
    """The script that registers plotly's locale for ``lang`` ("" for English, plotly's own).

    It works before plotly.js is loaded (it queues the locale in ``window.PlotlyLocales``, which
    plotly.js reads when it starts) and after (it calls ``Plotly.register``), so the dashboard's
    page can load it in its head while JupyterLab's plotly renderer loads plotly.js later.
    """
    name = LOCALE_FILES.get(lang)
    if name is None:
        return ""
    return (paths.TEMPLATES / "report" / name).read_text(encoding="utf-8")


class Chart(go.Figure):
    """A plotly figure shown as plotly's JSON mimetype, without plotly's renderer registry.

    The bundle is the one plotly's default ``plotly_mimetype`` renderer gives in a kernel, with
    the figure passed through :func:`finish` and :func:`plotly_config` as its ``config`` (which
    JupyterLab's and Voila's plotly renderer hand to ``Plotly.react``); everything else is a plain
    :class:`plotly.graph_objects.Figure`.
    """

    #: The language the chart was built in (set by :func:`figure`): chooses the locale.
    _crm_lang = "en"

    def _repr_mimebundle_(self, include=None, exclude=None, validate=True, **kwargs):
        import plotly.io as pio

        spec = json.loads(pio.to_json(self, validate=validate, remove_uids=False))
        lang = self._crm_lang
        if "_crm_lang" not in self.__dict__ and self.layout.separators == ",.":
            lang = "es"  # a copy (Chart(fig)) keeps the theme's Spanish separators, not the tag
        spec = finish(spec, lang)
        spec["config"] = plotly_config(lang)
        return {PLOTLY_MIME: spec}

    def _ipython_display_(self):
        from IPython.display import display

        display(self._repr_mimebundle_(), raw=True)


def palette(primary: str = "#1b4965", accent: str = "#e07a5f", n: int = 10) -> list[str]:
    """The client's two brand colours followed by neutrals, ``n`` colours in all."""
    colours = [primary, accent] + [c for c in NEUTRALS if c not in (primary, accent)]
    return (colours * (n // len(colours) + 1))[:n]


def safe(text) -> str:
    """Escape client text for a chart label (plotly interprets a subset of HTML in labels)."""
    return html.escape(str(text), quote=False)


def figure(fmt: Formatter, title: str, *, primary: str = "#1b4965", accent: str = "#e07a5f",
           height: int = 420) -> Chart:
    """A new figure in the shared theme.

    Parameters
    ----------
    fmt : Formatter
        Gives the number separators of the language.
    title : str
        Already translated; client text in it must be passed through :func:`safe`.
    primary, accent : str
        The client's brand colours (``client.yaml`` ``branding``).
    """
    fig = Chart()
    fig._crm_lang = fmt.lang
    fig.update_layout(
        title={"text": title, "x": 0, "xanchor": "left", "font": {"size": 17, "color": "#1d2433"}},
        font={"family": FONT, "size": 13, "color": "#33415c"},
        colorway=palette(primary, accent),
        separators=fmt.plotly_separators(),
        paper_bgcolor="white",
        plot_bgcolor="white",
        height=height,
        margin={"l": 64, "r": 24, "t": 64, "b": 56},
        hoverlabel={"font": {"family": FONT}},
        legend=dict(BOTTOM_LEGEND),
        # Text inside bars too small to read is left out rather than drawn over its neighbours.
        uniformtext={"minsize": 9, "mode": "hide"},
    )
    axis = {"showline": True, "linecolor": "#c9ced6", "gridcolor": "#eef0f3", "zeroline": False,
            "ticks": "outside", "tickcolor": "#c9ced6", "automargin": True}
    fig.update_xaxes(**axis)
    fig.update_yaxes(**axis)
    return fig


def finish(spec: dict, lang: str = "en") -> dict:
    """The theme's last pass over a chart's JSON (``{"data": …, "layout": …}``), when it is shown.

    Returns a new dict; ``spec`` is not changed. What it does, and why here: a chart function
    sets its traces and axes, but only the whole figure tells whether a label has room.

    - Bars labelled outside their end (``textposition`` ``outside``/``auto``): the value axis is
      given room for the label past the longest bar (and past the most negative one), so that a
      label never runs over the tick labels, the axis title or the legend, and is never cut.
    - A legend placed under the plot in paper coordinates (``y < 0``, which lands on the x-axis
      title once that title is pushed down by long tick labels) moves to :data:`BOTTOM_LEGEND`.
    - In Spanish, an axis with ``tickformat=".0%"`` gets ``labelalias`` entries so its ticks read
      "50 %" like every other Spanish percentage (plotly's d3 locale has no percent sign option).
    """
    spec = copy.deepcopy(spec)
    layout = spec.setdefault("layout", {})
    data = spec.get("data", [])
    legend = layout.get("legend") or {}
    if isinstance(legend.get("y"), int | float) and legend["y"] < 0 \
            and legend.get("yref", "paper") == "paper":
        layout["legend"] = {**legend, **BOTTOM_LEGEND}
    _room_for_outside_labels(layout, data)
    if lang == "es":
        for key, axis in layout.items():
            if _AXIS_KEY.match(key) and isinstance(axis, dict) \
                    and _PCT_FORMAT.match(str(axis.get("tickformat", ""))):
                axis["labelalias"] = {**_spanish_percent_alias(), **axis.get("labelalias", {})}
    return spec


@functools.cache
def _spanish_percent_alias() -> dict[str, str]:
    # Ticks of a ".0%" axis are whole percents; plotly writes negatives with U+2212.
    alias = {}
    for n in [*range(0, 101), *range(105, 1001, 5)]:
        shown = f"{n:,}".replace(",", ".")
        alias[f"{shown}%"] = f"{shown}\u00a0%"
        if n:
            alias[f"\u2212{shown}%"] = f"\u2212{shown}\u00a0%"
            alias[f"-{shown}%"] = f"\u2212{shown}\u00a0%"
    return alias


def _axis_key(ref: str | None, letter: str) -> str:
    ref = ref or letter
    return f"{letter}axis{ref[1:]}"


def _room_for_outside_labels(layout: dict, data: list[dict]) -> None:
    """Widen the value axis of bars labelled outside so that their labels fit (see finish)."""
    spans: dict[str, list[float]] = {}
    for trace in data:
        if trace.get("type") != "bar" or not trace.get("text"):
            continue
        if trace.get("textposition") not in ("outside", "auto"):
            continue
        horizontal = trace.get("orientation") == "h"
        letter = "x" if horizontal else "y"
        values = trace.get(letter)
        if not isinstance(values, list):
            continue
        base = trace.get("base")
        bases = base if isinstance(base, list) else [base or 0] * len(values)
        ends = []
        for value, start in zip(values, bases, strict=False):
            if isinstance(value, int | float) and isinstance(start, int | float | None) \
                    and math.isfinite(value):
                ends.append(float(value) + float(start or 0))
        if ends:
            key = _axis_key(trace.get(f"{letter}axis"), letter)
            span = spans.setdefault(key, [0.0, 0.0])
            span[0], span[1] = min(span[0], *ends), max(span[1], *ends)
    if layout.get("barmode") == "stack":
        return  # a stack's end is the sum of its bars: plotly's own range already shows it
    for key, (low, high) in spans.items():
        axis = layout.setdefault(key, {})
        if axis.get("range") or axis.get("type") in ("log", "date", "category"):
            continue
        width = (high - low) or 1.0
        lower = low - OUTSIDE_LABEL_ROOM * width if low < 0 else 0.0
        upper = high + OUTSIDE_LABEL_ROOM * width if high > 0 else 0.0
        axis["range"] = [lower, upper]
        if axis.get("autorange") is True:
            axis.pop("autorange")
        if axis.get("autorange") == "reversed":
            axis["range"] = [upper, lower]
            axis.pop("autorange")


def log_axis(fig: go.Figure, low: float, high: float, label, *, axis: str = "x") -> go.Figure:
    """A log axis whose ticks (1, 2 and 5 times a power of ten) are all labelled alike.

    Plotly labels the powers of ten of a log axis in full and the ticks between them with their
    first digit only, so a money axis read "5, €10, 20, 50, €100"; here every tick is formatted
    by ``label`` (e.g. ``fmt.money``): "€5, €10, €20, €50, €100".

    Parameters
    ----------
    fig : Figure
    low, high : float
        The data's range (positive).
    label : callable
        Formats one tick value.
    axis : {"x", "y"}
    """
    low, high = max(float(low), 1e-12), max(float(high), float(low) * 1.0001, 1e-12)
    candidates = []
    for power in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1):
        for digit in (1, 2, 5):
            value = digit * 10.0 ** power
            if low / 1.0001 <= value <= high * 1.0001:
                candidates.append((digit, value))
    if len(candidates) > 9:  # a wide range: the powers of ten alone
        candidates = [c for c in candidates if c[0] == 1] or candidates
    if len(candidates) < 2:  # a narrow one: its two ends
        candidates = [(0, low), (0, high)]
    ticks = [value for _, value in candidates]
    # Plotly shows ``ticktext`` as given: an axis's tickprefix/ticksuffix (money_axis) are not
    # added to it, so they may stay set for whoever reads the layout.
    update = {"type": "log", "tickmode": "array", "tickvals": ticks,
              "ticktext": [label(round(v, 10) if v >= 1 else v) for v in ticks]}
    (fig.update_xaxes if axis == "x" else fig.update_yaxes)(**update)
    return fig


def label_axes(fig: go.Figure, x: str, y: str) -> go.Figure:
    """Set both axis titles (with units, e.g. ``"Revenue (€)"``)."""
    fig.update_xaxes(title_text=x)
    fig.update_yaxes(title_text=y)
    return fig


def share_bars(fig: go.Figure, labels, series, fmt: Formatter) -> go.Figure:
    """Horizontal grouped bars of shares, one row per label, each bar labelled in percent.

    Parameters
    ----------
    fig : Figure
        From :func:`figure`.
    labels : list of str
        Row labels, already escaped with :func:`safe`.
    series : iterable of (values, legend name, colour)
        Shares between 0 and 1, one value per label.
    fmt : Formatter
    """
    for values, name, colour in series:
        values = [float(v) for v in values]
        fig.add_bar(y=labels, x=values, orientation="h", name=name, marker_color=colour,
                    text=[fmt.pct(v) for v in values], textposition="outside",
                    hovertemplate="%{y}: %{text}<extra></extra>")
    fig.update_layout(barmode="group", bargap=0.25)
    fig.update_xaxes(tickformat=".0%", rangemode="tozero")
    fig.update_yaxes(autorange="reversed")
    return fig
