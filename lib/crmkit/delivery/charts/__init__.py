"""Charts: one shared plotly theme, in the client's colours, language and currency.

Every chart of every workbook is built through :func:`figure` and :func:`finish`, so they share
fonts, colours, margins, number separators and hover formats. Chart functions for each step live
in a submodule named after the step (``charts.context``, ``charts.segments`` …).

Charts are :class:`Chart` objects: plotly figures that show themselves as plotly's JSON mimetype
(``application/vnd.plotly.v1+json``) directly. JupyterLab draws it and
:mod:`crmkit.delivery.report` turns
it into an embedded, offline chart in ``report.html``. Plotly's own display goes through its
renderer registry, whose import pulls in nbformat and jsonschema: over a second of every
workbook's time before its first chart appears, for the same output.
"""

from __future__ import annotations

import html
import json

import plotly.graph_objects as go

from crmkit.core.i18n import Formatter

#: Neutral colours that sit well beside any client's primary and accent colours.
NEUTRALS = ["#5c677d", "#98c1d9", "#3d5a80", "#ee6c4d", "#81b29a", "#f2cc8f", "#9c89b8",
            "#6d597a", "#b56576", "#33415c"]
FONT = "Inter, 'Segoe UI', 'Helvetica Neue', Arial, sans-serif"
PLOTLY_MIME = "application/vnd.plotly.v1+json"


class Chart(go.Figure):
    """A plotly figure shown as plotly's JSON mimetype, without plotly's renderer registry.

    The bundle is the one plotly's default ``plotly_mimetype`` renderer gives in a kernel;
    everything else is a plain :class:`plotly.graph_objects.Figure`.
    """

    def _repr_mimebundle_(self, include=None, exclude=None, validate=True, **kwargs):
        import plotly.io as pio

        return {PLOTLY_MIME: json.loads(pio.to_json(self, validate=validate,
                                                    remove_uids=False))}

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
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1},
    )
    axis = {"showline": True, "linecolor": "#c9ced6", "gridcolor": "#eef0f3", "zeroline": False,
            "ticks": "outside", "tickcolor": "#c9ced6", "automargin": True}
    fig.update_xaxes(**axis)
    fig.update_yaxes(**axis)
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
