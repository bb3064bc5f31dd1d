"""The client's dashboard: explore the strategy, try what-ifs, see nothing else.

A consultant hands a client a link; behind it, Voila runs ``workbooks/dashboard.ipynb`` for that
client only. This module holds both halves of that:

- **the content**, as section builders the notebook calls (:func:`header`, :func:`decision`,
  :func:`overview`, :func:`segment_explorer`, :func:`what_if`, :func:`plan`, :func:`downloads`).
  Each takes the
  data it needs in a :class:`DashboardData` (loaded by :func:`load` from the latest run, or
  computed on the spot from the workspace, with the analysis' own segmentation, when there is
  none) and returns an ipywidgets widget. The what-if section is written against a small
  interface, :class:`WhatIfModel`, which :class:`ScenarioWhatIf` implements on workbook 04's
  :class:`crmkit.relationships.scenarios.ScenarioModel` (built once per page); the plan section
  shows workbook 05's business case (:func:`crmkit.planning.plan.business_case`: the report's
  NPV, break-even and decision) with every lever of ``crm_project.levers`` and the budget as
  sliders. The what-if and the plan share one :class:`PlanState`: the what-if is added to the
  plan's scenarios (:func:`crmkit.planning.what_if.segment_scenario`), so it moves the NPV and
  the decision too, re-evaluated by :class:`crmkit.planning.what_if.CaseWhatIf`. Nothing the
  client tries is written anywhere, and the page runs no code of its own (widgets only). The
  segment explorer says what to do with each segment (:func:`segment_actions`, the report's
  verdicts and sentences); the downloads are the CSVs (headers in the client's language, numbers
  rounded, :func:`crmkit.delivery.exports.neutralise`) and the run's ``report.pdf``,
  ``report.html`` and ``tables.xlsx`` (:func:`run_files`). Segments follow the segment map's
  order everywhere, as in the report (:func:`map_order`).
- **the serving**, :func:`serve`, behind ``crmkit dashboard``. Voila's defaults suit a developer
  serving their own notebooks on their own machine: a directory tree, any notebook rendered, the
  template chosen from the URL, images of the folder served, no token, another port taken
  silently when the one asked for is busy. A client's dashboard needs the opposite, so the
  configuration is written out here in full (:func:`voila_config`): one notebook, copied alone
  into a private folder that is Voila's root; no file served; a token; sources stripped; no
  tracebacks; the template and theme fixed on the server; Voila's file handler serving only
  copies of the run's three files, in a folder of a random name (the handler asks for no token,
  so the name is the key); Jupyter's config and runtime files in
  that private folder, so nothing is shared between two clients' dashboards. It stays bounded
  however often it is loaded: at most :data:`MAX_KERNELS` kernels (one per open page,
  :mod:`crmkit.delivery.dashboard_kernels`), a "busy, try again in a minute" page beyond that,
  a closed tab's kernel shut down, an unconnected one culled after :data:`IDLE_TIMEOUT` s. The
  link is printed only once the server answers.

The client is chosen by the serving process, never by the URL: :func:`serve` passes the workspace,
the run folder and the language to the kernel in environment variables (``CRMKIT_DASHBOARD_*``),
which :func:`load` reads. Voila itself only forwards widget messages from the browser to the
kernel (``comm_*``, ``kernel_info_request``, ``shutdown_request``); an ``execute_request`` sent
by a browser is dropped, so the page can run no code of its own in the kernel.

Notes on speed. A visit needs a kernel that imports pandas and plotly, reads the workspace and the
run's table, builds the scenario model and the plan and then the sections (2-3 s on two cores; about
2 s more without a run, as the customers are then segmented and valued on the spot), then the
browser loads Voila's scripts and the widgets (2-3 s). Voila's pre-heating (:data:`POOL_SIZE` spare
kernels that have run the notebook already) would take the first part out of the wait, at the
price of kernels held all the time; it is off (see :func:`voila_config`). Widget sections are drawn
once the browser holds every widget model (the page template; issue 13's "model not found").
Charts are set as Output widgets' state (see :func:`_show`), and the what-if's own figures are
HTML, so that a move of a control is a few small messages each way (``benchmarks/dashboard.py``
measures them). A move of a lever, of the budget or of the what-if re-evaluates the business case in
some 0.1 s and redraws one chart (another 0.1 s; 0.2-0.5 s a move on a shared 2-core machine,
``tests/delivery/test_dashboard_whatif.py``): what a move cannot change is kept once per page — the
lever model's per-segment aggregates of the customers, the plan's monthly costs, dates and
discount factors, the plan's own scenarios' savings, one lever model per segment what-if tried
(:class:`crmkit.planning.what_if.CaseWhatIf`) and the outcome with client.yaml's levers.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import html
import json
import math
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import yaml

from crmkit.core import paths
from crmkit.core.i18n import Formatter, t
from crmkit.delivery.exports import FORMULA_PREFIXES, neutralise  # noqa: F401  (the guard)
from crmkit.delivery.serving import (  # noqa: F401
    answering,
    port_free,
    stops_on_interrupt,
    wait_until_answering,
)
from crmkit.delivery.steps import Steps
from crmkit.delivery.vocabulary import vocabulary_of, word
from crmkit.inputs.workspace import Workspace, load_workspace

#: Environment variables through which the serving process tells the kernel what to show.
ENV_CLIENT = "CRMKIT_DASHBOARD_CLIENT"
ENV_RUN = "CRMKIT_DASHBOARD_RUN"
ENV_LANGUAGE = "CRMKIT_DASHBOARD_LANGUAGE"
#: The folder, under Voila's root, holding the copies of the run's files the client may download
#: (a random name: Voila's file handler asks for no token, so the path itself is the key).
ENV_FILES = "CRMKIT_DASHBOARD_FILES"
#: The run's files offered for download, and nothing else: name -> message key of its label.
RUN_FILES = {"report.pdf": "dash_download_report_pdf", "report.html": "dash_download_report_html",
             "tables.xlsx": "dash_download_tables_xlsx"}

NOTEBOOK = paths.WORKBOOKS / "dashboard.ipynb"
TEMPLATE_NAME = "crmkit"
TEMPLATE_DIR = paths.TEMPLATES / "voila" / TEMPLATE_NAME
DEFAULT_PORT = 8866
DEFAULT_HOST = "127.0.0.1"
#: Kernels kept running the notebook ahead of visits (about 200 MB each for a client of a few
#: thousand customers): two, so that a reload right after a first visit is served at once too.
POOL_SIZE = 2
#: Seconds Voila waits after serving a pre-heated kernel before heating the next one.
FILL_DELAY = 12.0
#: Kernels running at once (one per open page, ~200-400 MB each); ``crmkit dashboard
#: --max-kernels`` changes it. A page load beyond it gets the "busy" page (HTTP 503).
MAX_KERNELS = 4
#: Seconds a kernel no page is connected to may stay idle before it is shut down: long enough
#: for a slow browser to load the page's scripts and connect, short enough that abandoned loads
#: free their slot within a couple of minutes.
IDLE_TIMEOUT = 120
#: Seconds ``crmkit dashboard`` waits for the server to answer before giving up.
START_TIMEOUT = 120.0

#: The mimetype plotly figures are sent in; Voila draws it with the jupyterlab-plotly extension.
PLOTLY_MIME = "application/vnd.plotly.v1+json"


#: The four figures of a what-if, each reported before and after the change, for the segment
#: and in total (:class:`ScenarioWhatIf`; ``net_value`` is shown as the net present value).
WHAT_IF_FIGURES = ("cost", "value", "profit", "net_value")

#: The budget slider of the plan section: the share of the planned costs, lowest and highest.
BUDGET_RANGE = (0.5, 1.5)


# --------------------------------------------------------------------------------------------
# The data the dashboard shows
# --------------------------------------------------------------------------------------------

@dataclass
class DashboardData:
    """Everything the sections show, for one client in one language.

    Attributes
    ----------
    ws : Workspace
        The client's workspace.
    lang : str
        ``"en"`` or ``"es"``.
    fmt : Formatter
        Numbers, money and dates in ``lang`` and the client's currency.
    run_dir : Path or None
        The run folder the figures come from; None when computed on the spot.
    results : dict
        ``results.json`` of the run (empty without a run).
    customers : DataFrame
        The per-customer table (docs/data-contract.md): the run's ``tables/customers.parquet``,
        else :func:`crmkit.analysis.segmentation.segment_customers` on the spot (the same
        segmentation
        and values as workbook 02), with ``relationship_today`` added here (the type the
        customer spent most minutes in).
    segments : DataFrame
        One row per segment (:func:`segment_summary`), best value first.
    indicators : dict
        The context indicators (``crmkit.analysis.context.Indicators.as_dict()``).
    cost : crmkit.relationships.cost_to_serve.CostToServe
        The cost to serve of the customers (workbook 03's).
    model : crmkit.relationships.scenarios.ScenarioModel
        The scenario model of workbook 04, built once per page; the what-if and the plan's
        benefits are computed on it.
    stale : bool
        True when the workspace changed since the run (its checksums differ).
    relationship_names : dict
        Relationship-type key -> its name in ``lang``.
    steps : crmkit.delivery.steps.Steps
        The earlier steps the figures come from (the same chain as workbooks 03-05).
    """

    ws: Workspace
    lang: str
    fmt: Formatter
    run_dir: Path | None
    results: dict
    customers: pd.DataFrame
    segments: pd.DataFrame
    indicators: dict
    cost: Any
    model: Any
    stale: bool = False
    relationship_names: dict[str, str] = field(default_factory=dict)
    steps: Steps | None = None
    #: What the sections compute once and share (the business case, the verdicts).
    cache: dict = field(default_factory=dict, repr=False)

    @property
    def brand(self) -> dict[str, str]:
        """The client's colours, as keyword arguments of the chart functions."""
        branding = self.ws.config.branding
        return {"primary": branding.primary_color, "accent": branding.accent_color}

    @property
    def horizon_years(self) -> float:
        """The years customer value and net present value are counted over."""
        return float(self.model.horizon_years)

    def t(self, key: str, **values) -> str:
        """``key`` in the page's language and the client's words (a bank's "operations")."""
        return word(key, self.lang, self.vocabulary, **values)

    @functools.cached_property
    def vocabulary(self) -> str:
        """The client's industry vocabulary (:func:`crmkit.delivery.vocabulary.vocabulary_of`)."""
        return vocabulary_of(self.ws.config)


def latest_run(reports_dir: str | Path, slug: str) -> Path | None:
    """The newest complete run folder of a client, or None.

    Run folders are ``REPORTS_DIR/<slug>/<timestamp>[-n]/`` (:mod:`crmkit.delivery.runner`); staging
    folders (hidden) and failed runs (``-failed``) are skipped, and a run counts only when it
    holds ``results.json``. Timestamps sort as text.
    """
    folder = Path(reports_dir) / slug
    if not folder.is_dir():
        return None
    runs = [p for p in folder.iterdir()
            if p.is_dir() and not p.name.startswith(".") and not p.name.endswith("-failed")
            and (p / "results.json").is_file()]
    return max(runs, key=lambda p: p.name, default=None)


def load(client_dir: str | Path | None = None, run_dir: str | Path | None = None,
         language: str | None = None) -> DashboardData:
    """Load what the dashboard shows.

    Without arguments, the serving process decides (environment variables set by
    :func:`serve`); opened in JupyterLab without them, the bundled demo client is shown.

    Parameters
    ----------
    client_dir : path, optional
        The client workspace.
    run_dir : path, optional
        A run folder of this client; its ``results.json`` and ``tables/customers.parquet`` are
        used when present. Without the table, the customers are segmented and valued on the
        spot (:func:`crmkit.analysis.segmentation.segment_customers`: about 2 s more on a few
        thousand
        customers, most of it importing scikit-learn and the value models).
    language : {"en", "es"}, optional
        Default: the client's language.

    Raises
    ------
    ValueError
        Without a run's table, when the value models cannot be fitted to the data (e.g. no
        customer bought twice): the analysis (``crmkit run``) would fail the same way.
    """
    client_dir = client_dir or os.environ.get(ENV_CLIENT) or paths.DEMO_CLIENTS / "retail"
    run_dir = run_dir or os.environ.get(ENV_RUN) or None
    language = language or os.environ.get(ENV_LANGUAGE) or None
    ws = load_workspace(client_dir)
    lang = language or ws.config.language
    fmt = Formatter(lang, ws.config.currency)
    run = Path(run_dir) if run_dir else None

    results: dict = {}
    stale = False
    if run is not None:
        if (run / "results.json").is_file():
            results = json.loads((run / "results.json").read_text(encoding="utf-8"))
        if (run / "run.json").is_file():
            inputs = json.loads((run / "run.json").read_text(encoding="utf-8")).get("inputs")
            stale = bool(inputs) and inputs != ws.checksums
    steps = Steps(ws, lang, run)
    table = steps.customers
    table = table.assign(customer_id=table["customer_id"].astype(str),
                         segment=table["segment"].astype(str))
    cost, model = steps.cost, steps.model
    customers = _with_relationship(table, ws)
    indicators = (results.get("context") or {}).get("indicators") or _indicators(ws)
    names = relationship_names(lang)
    segments = segment_summary(customers, ws, names, model)
    return DashboardData(ws=ws, lang=lang, fmt=fmt, run_dir=run, results=results,
                         customers=customers, segments=segments, indicators=indicators,
                         cost=cost, model=model, stale=stale, relationship_names=names,
                         steps=steps)


def _indicators(ws: Workspace) -> dict:
    from crmkit.analysis.context import indicators

    a = ws.config.assumptions
    return indicators(ws.customers, ws.transactions, ws.as_of, window_months=a.window_months,
                      lapse_days=a.lapse_days, survey=ws.survey).as_dict()


def _with_relationship(table: pd.DataFrame, ws: Workspace) -> pd.DataFrame:
    """Add ``relationship_today`` per customer: the type of most of its logged minutes."""
    out = table.copy()
    main = pd.Series(dtype=object)
    if ws.interactions is not None and len(ws.interactions):
        minutes = (ws.interactions.groupby(["customer_id", "relationship_type"], observed=True)
                   ["minutes"].sum().reset_index())
        minutes = minutes.sort_values("minutes", ascending=False, kind="stable")
        main = minutes.drop_duplicates("customer_id").set_index("customer_id")[
            "relationship_type"]
        main.index = main.index.astype(str)
    out["relationship_today"] = out["customer_id"].map(main)
    return out


@functools.cache
def relationship_catalogue() -> dict[str, dict]:
    """The relationship-type catalogue (``data/relationship_types.yaml``), read as is."""
    path = paths.DATA / "relationship_types.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def relationship_names(lang: str) -> dict[str, str]:
    """Relationship-type key -> its name in ``lang``, in the catalogue's order."""
    return {key: entry["name"][lang] for key, entry in relationship_catalogue().items()}


def _section(config: Any, name: str) -> Any:
    """A key of ``client.yaml``'s ``relationships:`` section, whether a dict or a model."""
    section = getattr(config, "relationships", None) or {}
    if isinstance(section, Mapping):
        return section.get(name) or {}
    return getattr(section, name, None) or {}


def segment_summary(customers: pd.DataFrame, ws: Workspace, names: dict[str, str], model: Any
                    ) -> pd.DataFrame:
    """One row per segment: size, value, behaviour, retention, relationship and satisfaction.

    Retention and the relationship today are the scenario model's (``model``, a
    :class:`crmkit.relationships.scenarios.ScenarioModel` of the same customers), so that the
    segment
    explorer and the what-if show the same figures.

    Returns
    -------
    DataFrame
        Indexed by segment key, in the segment map's order (:func:`map_order`), with ``name,
        customers, customer_share, revenue_window, margin_window, margin_share,
        margin_per_customer, recency_days`` (median), ``frequency`` (mean), ``clv`` (mean; NaN
        without CLV), ``retention`` (yearly: client.yaml's, else the share of the segment's
        customers of a year's tenure or more who bought in the last year, as in workbook 04),
        ``satisfied`` (share answering 4-5; NaN without survey answers) and
        ``relationship_type`` (the type whose activity costs the segment most; the
        consultant's, else personal assistance, when the log shows none).
    """
    c = customers
    grouped = c.groupby("segment", sort=False, observed=True)
    out = pd.DataFrame({
        "name": grouped["segment_name"].first() if "segment_name" in c else grouped.size(),
        "customers": grouped.size(),
        "revenue_window": grouped["revenue_window"].sum(),
        "margin_window": grouped["margin_window"].sum(),
        "recency_days": grouped["recency_days"].median(),
        "frequency": grouped["frequency"].mean(),
        "clv": grouped["clv"].mean() if "clv" in c else np.nan,
    })
    if "segment_name" not in c:
        out["name"] = out.index
    out["customer_share"] = out["customers"] / max(len(c), 1)
    total_margin = out["margin_window"].sum()
    out["margin_share"] = out["margin_window"] / total_margin if total_margin else np.nan
    out["margin_per_customer"] = out["margin_window"] / out["customers"]
    retention = dict(zip(model.segments, model.retention, strict=True))
    out["retention"] = [float(retention[seg]) for seg in out.index]

    out["satisfied"] = np.nan
    if ws.survey is not None and len(ws.survey):
        answers = ws.survey[["customer_id", "satisfaction"]].astype({"customer_id": str}).merge(
            c[["customer_id", "segment"]], on="customer_id")
        top_two = (answers["satisfaction"] >= 4).groupby(answers["segment"]).mean()
        out["satisfied"] = top_two.reindex(out.index)

    current = _section(ws.config, "current")
    out["relationship_type"] = [
        model.main_type(seg) or (list(current.get(seg) or []) or ["personal_assistance"])[0]
        for seg in out.index]
    out["relationship_name"] = out["relationship_type"].map(names)
    order = map_order(ws)
    rank = {key: i for i, key in enumerate(order)}
    # The segment map's order, as the report's (its chapters and page one follow the map);
    # segments the map does not list (none, normally) come last, the most valuable first.
    out = out.sort_values("margin_window", ascending=False, kind="stable")
    out = out.iloc[sorted(range(len(out)), key=lambda i: rank.get(str(out.index[i]), len(rank)))]
    out.index.name = "segment"
    return out


def map_order(ws: Workspace) -> list[str]:
    """The segment keys in the order of the client's segment map
    (:func:`crmkit.settings.segment_maps.from_settings`), ``other`` last; [] when it cannot be
    read (the customers' own order is then kept)."""
    from crmkit.settings import segment_maps

    try:
        segment_map = segment_maps.from_settings(ws.config.segmentation, workspace=ws.path)
    except Exception:  # noqa: BLE001 - the order is a courtesy; the workspace was validated
        return []
    return [s.key for s in segment_map.segments] + [segment_maps.OTHER]


# --------------------------------------------------------------------------------------------
# What-if: the interface, and the scenario model behind it
# --------------------------------------------------------------------------------------------

class WhatIfModel(Protocol):
    """What the what-if section needs from a scenario model.

    ``model(segment, relationship_type, cost_rate_change, retention_change)`` returns a dict
    with, for each figure in :data:`WHAT_IF_FIGURES` (``cost``, ``value``, ``profit``,
    ``net_value``), ``<figure>_before`` and ``<figure>_after`` for the segment and
    ``total_<figure>_before`` and ``total_<figure>_after`` for all the customers, in the
    client's currency, plus ``retention_before`` and ``retention_after`` (the segment's yearly
    retention, 0-1). ``cost_rate_change`` is a relative change of the cost per minute of the
    chosen relationship type (``-0.2`` = 20 % cheaper), for every segment it serves;
    ``retention_change`` is a change of the segment's yearly retention in absolute points
    (``0.05`` = five points more). It is called on every move of a control, so it must answer
    in a few milliseconds.
    """

    def segments(self) -> dict[str, str]:
        """Segment key -> name, in the order to offer them."""

    def relationship_types(self) -> dict[str, str]:
        """Relationship-type key -> name."""

    def current_type(self, segment: str) -> str:
        """The relationship type a segment receives today."""

    def __call__(self, segment: str, relationship_type: str, cost_rate_change: float,
                 retention_change: float) -> dict[str, float]:
        """The figures before and after the change."""


class ScenarioWhatIf:
    """The what-if section's model: :meth:`crmkit.relationships.scenarios.ScenarioModel.what_if` as
    is.

    The figures are the scenario model's, per segment and in total (see
    :mod:`crmkit.relationships.scenarios`): ``cost`` is the yearly cost to serve; ``value`` the
    customers'
    lifetime value over the horizon; ``profit`` the yearly gross margin minus the cost to serve
    (it does not move with retention); ``net_value`` is the **net present value** of the
    customers: their lifetime value minus what serving them costs over the years they stay
    (the cost × the discounted retention-weighted number of years, ``lifetime_factor``), over
    ``assumptions.horizon_months`` at ``assumptions.discount_rate``.

    Parameters
    ----------
    model : crmkit.relationships.scenarios.ScenarioModel
    segments : mapping
        Segment key -> name, in the order to offer them.
    types : mapping
        Relationship-type key -> name.
    current : mapping
        Segment key -> the type it is served by today (shown, and the dropdown's start).
    """

    def __init__(self, model: Any, segments: Mapping[str, str], types: Mapping[str, str],
                 current: Mapping[str, str]):
        self.model = model
        self._segments = dict(segments)
        self._types = dict(types)
        self._current = dict(current)

    @classmethod
    def from_data(cls, data: DashboardData) -> ScenarioWhatIf:
        seg = data.segments
        return cls(data.model, {str(k): str(v) for k, v in seg["name"].items()},
                   data.relationship_names,
                   {str(k): str(v) for k, v in seg["relationship_type"].items()})

    def segments(self) -> dict[str, str]:
        return dict(self._segments)

    def relationship_types(self) -> dict[str, str]:
        return dict(self._types)

    def current_type(self, segment: str) -> str:
        return self._current[segment]

    def __call__(self, segment: str, relationship_type: str, cost_rate_change: float,
                 retention_change: float) -> dict[str, float]:
        result = self.model.what_if(segment, relationship_type,
                                    cost_rate_change=cost_rate_change,
                                    retention_change=retention_change)
        i = self.model.segment_index(segment)
        out: dict[str, float] = {}
        for name in WHAT_IF_FIGURES:
            out[f"{name}_before"] = float(result.base[name][i])
            out[f"{name}_after"] = float(result.scenario[name][i])
            out[f"total_{name}_before"] = result.total(name, "base")
            out[f"total_{name}_after"] = result.total(name)
        out["retention_before"] = float(result.base["retention"][i])
        out["retention_after"] = float(result.scenario["retention"][i])
        out["customers"] = float(result.base["customers"][i])
        return out


def what_if_model(data: DashboardData) -> WhatIfModel:
    """The scenario model behind the what-if section: :class:`ScenarioWhatIf` on
    ``data.model`` (built once per page by :func:`load`)."""
    return ScenarioWhatIf.from_data(data)


# --------------------------------------------------------------------------------------------
# Page pieces: cards, charts, style
# --------------------------------------------------------------------------------------------

def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def card(label: str, value: str, note: str = "", tone: str = "") -> str:
    """One headline figure as an HTML card (client text escaped).

    ``tone`` is ``"up"`` or ``"down"`` (colours the note) or empty.
    """
    note_html = f'<div class="crm-card-note {tone}">{_esc(note)}</div>' if note else ""
    return (f'<div class="crm-card"><div class="crm-card-value">{_esc(value)}</div>'
            f'<div class="crm-card-label">{_esc(label)}</div>{note_html}</div>')


def cards(items: list[str], css: str = "") -> str:
    return f'<div class="crm-cards {css}">{"".join(items)}</div>'


def ink_on(colour: str) -> str:
    """Dark or white text, whichever reads better on ``colour`` (``#rrggbb``).

    Uses the WCAG relative luminance: a client's accent may be a light yellow or a deep red.
    """
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    # Contrast against white (1.05 / (L + 0.05)) beats contrast against #1d2433 (L ≈ 0.017).
    return "#ffffff" if 1.05 / (luminance + 0.05) >= (luminance + 0.05) / 0.067 else "#1d2433"


def page_css(primary: str, accent: str) -> str:
    """The dashboard's stylesheet in the client's colours (colours validated as ``#rrggbb``)."""
    return f"""<style>
:root {{ --crm-primary: {primary}; --crm-accent: {accent}; --crm-ink: #1d2433;
        --crm-on-accent: {ink_on(accent)}; --crm-on-primary: {ink_on(primary)};
        --crm-muted: #5c677d; --crm-line: #e3e6eb; }}
.crm-section {{ background: #fff; border: 1px solid var(--crm-line); border-radius: 10px;
               padding: 20px 24px; margin: 0 0 22px 0; box-shadow: 0 1px 3px rgba(29,36,51,.06); }}
.crm-section h2 {{ margin: 0 0 4px 0; font-size: 20px; color: var(--crm-ink); }}
.crm-section .crm-lead {{ margin: 0 0 14px 0; color: var(--crm-muted); font-size: 14px; }}
.crm-header {{ background: var(--crm-primary); color: var(--crm-on-primary); border-radius: 10px;
              padding: 22px 26px; margin: 0 0 22px 0; border-bottom: 5px solid var(--crm-accent); }}
.crm-header h1 {{ margin: 0; font-size: 26px; color: var(--crm-on-primary); }}
.crm-header p {{ margin: 6px 0 0 0; opacity: .9; font-size: 14px; color: var(--crm-on-primary); }}
.crm-badge {{ display: inline-block; background: var(--crm-accent); color: var(--crm-on-accent);
             border-radius: 999px; padding: 2px 10px; font-size: 12px; margin-top: 8px; }}
.crm-cards {{ display: flex; flex-wrap: wrap; gap: 12px; margin: 4px 0 12px 0; }}
.crm-card {{ flex: 1 1 160px; border: 1px solid var(--crm-line); border-radius: 8px;
            border-top: 4px solid var(--crm-primary); padding: 12px 14px; background: #fbfcfd; }}
.crm-card-value {{ font-size: 22px; font-weight: 650; color: var(--crm-ink); }}
.crm-card-label {{ font-size: 13px; color: var(--crm-muted); margin-top: 2px; }}
.crm-card-note {{ font-size: 12px; color: var(--crm-muted); margin-top: 6px; }}
.crm-card-note.up {{ color: #2a7f4f; }} .crm-card-note.down {{ color: #b23a3a; }}
.crm-note {{ font-size: 13px; color: var(--crm-muted); }}
.crm-controls {{ gap: 8px 24px; flex-wrap: wrap; margin-bottom: 8px; }}
.crm-controls .widget-label {{ min-width: 11em; }}
.crm-download {{ display: inline-block; margin: 4px 12px 4px 0; padding: 8px 14px;
                border-radius: 6px; background: var(--crm-primary);
                color: var(--crm-on-primary) !important; text-decoration: none; font-size: 14px; }}
.crm-bars {{ margin-top: 8px; }}
.crm-bars-title {{ font-size: 15px; color: var(--crm-ink); margin: 6px 0 8px 0; }}
.crm-bar-group {{ margin: 0 0 10px 0; }}
.crm-bar-title {{ font-size: 13px; color: var(--crm-muted); margin-bottom: 3px; }}
.crm-bar-row {{ display: flex; align-items: center; gap: 10px; font-size: 13px; }}
.crm-bar-label {{ width: 7em; color: var(--crm-muted); }}
.crm-bar-track {{ flex: 1; background: #eef0f3; border-radius: 4px; height: 14px; }}
.crm-bar {{ display: block; height: 14px; border-radius: 4px; transition: width .15s; }}
.crm-bar-before {{ background: #98a2b3; }} .crm-bar-after {{ background: var(--crm-primary); }}
.crm-bar-negative {{ background: #b23a3a; }}
.crm-bar-value {{ width: 8em; text-align: right; color: var(--crm-ink); }}
.crm-downloads {{ align-items: center; gap: 8px; flex-wrap: wrap; }}
.crm-prepare-customers {{ background: var(--crm-accent); color: var(--crm-on-accent);
                         border-radius: 6px;
                         height: 36px; font-size: 14px; }}
.crm-whatif-figures h3 {{ font-size: 15px; color: var(--crm-ink); margin: 12px 0 4px 0; }}
.crm-whatif-total .crm-card {{ border-top-color: var(--crm-accent); }}
.crm-plan-budget {{ margin: 8px 0 4px 0; }}
.crm-levers {{ margin: 10px 0; }} .crm-levers-title {{ font-size: 15px; margin: 8px 0 2px 0; }}
.crm-lever-label {{ display: inline-block; width: 26em; font-size: 13px; color: var(--crm-ink); }}
.crm-lever-value {{ display: inline-block; min-width: 7em; font-size: 13px;
                    color: var(--crm-ink); }}
.crm-plan-reasons {{ font-size: 13px; color: var(--crm-ink); margin: 4px 0 8px 0; }}
.crm-whatif-plan-figures h3 {{ font-size: 15px; margin: 14px 0 4px 0; }}
.crm-segment-actions {{ border-left: 4px solid var(--crm-accent); padding: 4px 14px;
                       margin: 8px 0 12px 0; font-size: 14px; }}
.crm-segment-actions h3 {{ font-size: 15px; margin: 4px 0; }}
.crm-run-files {{ margin-top: 10px; }}
.decision-page h2 {{ margin: 0 0 6px 0; font-size: 20px; }}
.decision-page h3 {{ font-size: 15px; margin: 12px 0 4px 0; }}
.dp-lead {{ color: var(--crm-muted); }}
.dp-decision {{ display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 16px;
               margin: 10px 0 14px; padding: 10px 16px; border-left: 6px solid #5c677d;
               border-radius: 6px; background: #f4f5f7; }}
.dp-decision.good {{ background: #e3f4ea; border-color: #1f7a4d; }}
.dp-decision.warn {{ background: #fdf1d8; border-color: #b07800; }}
.dp-decision.bad {{ background: #fbe4e4; border-color: #9b2226; }}
.dp-decision-label {{ text-transform: uppercase; letter-spacing: .12em; font-size: 12px;
                     color: var(--crm-muted); width: 100%; }}
.dp-decision-value {{ font-size: 26px; font-weight: 700; }}
.dp-decision-meaning {{ font-size: 15px; flex: 1 1 320px; }}
.decision-page .crm-kpis {{ display: flex; flex-wrap: wrap; gap: 12px; }}
.decision-page .crm-kpi {{ flex: 1 1 160px; border: 1px solid var(--crm-line); border-radius: 8px;
                          padding: 10px 14px; }}
.decision-page .crm-kpi-value {{ font-size: 20px; font-weight: 650; }}
.decision-page .crm-kpi-label {{ font-size: 13px; color: var(--crm-muted); }}
.dp-flag {{ background: #fdf1d8; border-left: 4px solid #b07800; padding: 6px 12px;
           border-radius: 4px; }}
.dp-segments {{ border-collapse: collapse; width: 100%; font-size: 13px; }}
.dp-segments th, .dp-segments td {{ border-bottom: 1px solid var(--crm-line); padding: 4px 8px;
                                   text-align: left; }}
.dp-segments .num {{ text-align: right; }}
.verdict {{ border-radius: 999px; padding: 1px 8px; background: #eef0f3; }}
.verdict.good {{ background: #e3f4ea; }} .verdict.warn {{ background: #fdf1d8; }}
.verdict.bad {{ background: #fbe4e4; }}
</style>"""


def _show(output, fig) -> None:
    """(Re)draw a plotly figure in an ``ipywidgets.Output``.

    plotly 7's ``FigureWidget`` needs ``anywidget``, which is not installed; the plotly
    mimetype inside an Output widget is drawn by Voila's plotly renderer (the jupyterlab-plotly
    extension) instead. The figure is set as the widget's ``outputs`` state rather than
    displayed inside ``with output:``, for two reasons: outputs captured while Voila executes
    the notebook go through nbclient's Output-widget mimic, which sends comm messages on the
    async shell channel without awaiting them and can stall the page's rendering for good
    (voila-dashboards/voila#1428); and ``fig.show()`` imports nbformat, whose schema
    validators take seconds to import.
    """
    from crmkit.delivery.charts import Chart, finish, plotly_config

    if isinstance(fig, Chart):
        # The theme's last pass and the shared config (plotly's Spanish locale: months and
        # toolbar tooltips; no cloud button, no logo), as in a kernel and the report.
        bundle = fig._repr_mimebundle_(validate=False)[PLOTLY_MIME]
    else:
        lang = "es" if fig.layout.separators == ",." else "en"
        bundle = finish(json.loads(fig.to_json(validate=False)), lang)
        bundle["config"] = plotly_config(lang)
    output.outputs = ({"output_type": "display_data", "metadata": {},
                       "data": {PLOTLY_MIME: bundle, "text/plain": "<plotly figure>"}},)


def _section_box(children: list, css: str):
    import ipywidgets as w

    box = w.VBox(children)
    box.add_class("crm-section")
    box.add_class(css)
    return box


def _title(text: str, lead: str = "") -> str:
    lead_html = f'<p class="crm-lead">{_esc(lead)}</p>' if lead else ""
    return f"<h2>{_esc(text)}</h2>{lead_html}"


# --------------------------------------------------------------------------------------------
# Sections (each returns one widget; the notebook displays them in order)
# --------------------------------------------------------------------------------------------

def header(data: DashboardData):
    """The page's stylesheet, then the client's name, the data's date and the figures' source.

    One widget for both: every widget is three models the browser must load before it draws
    anything, so static pieces are joined wherever they can be.
    """
    import ipywidgets as w

    cfg = data.ws.config
    bits = [data.t("dash_data_up_to", date=data.fmt.date(data.ws.as_of))]
    if data.run_dir is not None:
        bits.append(data.t("dash_from_run", run=_run_date(data.run_dir.name, data.fmt)))
    else:
        bits.append(data.t("dash_no_run"))
    badges = []
    if data.stale:
        badges.append(data.t("dash_stale_badge"))
    badge_html = "".join(f'<span class="crm-badge">{_esc(b)}</span> ' for b in badges)
    industry = f" · {_esc(cfg.industry)}" if cfg.industry else ""
    return w.HTML(
        page_css(**data.brand)
        + f'<div class="crm-header"><h1>{_esc(data.t("dash_title", client=cfg.name))}</h1>'
        f"<p>{_esc(' · '.join(bits))}{industry}</p>{badge_html}</div>")


def _run_date(name: str, fmt: Formatter) -> str:
    """A run folder's timestamp (``2026-03-05T101500``) as a date in the language."""
    try:
        return fmt.date(dt.date.fromisoformat(name[:10]))
    except ValueError:
        return name


def decision_results(data: DashboardData) -> dict:
    """What the one-page decision reads: the run's ``results.json``, or, without a run, the
    same sections computed here (workbook 05's case, workbook 04's verdicts)."""
    if (data.results.get("implementation") or {}).get("decision"):
        return data.results
    state = plan_state(data)
    if state is None:
        return {}
    from crmkit.relationships import cost_benefit

    config = data.ws.config
    case = state.view.case
    implementation = {**case.as_dict(), "horizon_months": int(case.plan.horizon_months)}
    verdict_figures = cost_benefit.figures(data.steps.economics, data.fmt,
                                           config.relationships.thresholds,
                                           lapse_days=config.assumptions.lapse_days)
    profiles = [{"segment": key} for key in data.segments.index]
    return {"implementation": implementation, "cost_benefit": verdict_figures,
            "segments": {"profiles": profiles}, "context": {}}


def decision(data: DashboardData):
    """The one-page decision, as at the front of the report
    (:func:`crmkit.delivery.decision_page.decision_page` on the same figures)."""
    import ipywidgets as w

    from crmkit.delivery.decision_page import decision_page

    config = data.ws.config
    page = decision_page(decision_results(data), data.lang, currency=config.currency,
                         margins=config.crm_project.decision)
    box = w.HTML(page or f'<p class="crm-note">{_esc(data.t("dash_plan_unavailable"))}</p>')
    return _section_box([box], "crm-decision")


def key_figure_cards(data: DashboardData) -> str:
    """The headline figures of the customer base, as HTML cards."""
    ind, fmt = data.indicators, data.fmt

    def get(key):
        value = ind.get(key)
        return None if value is None or (isinstance(value, float) and math.isnan(value)) \
            else value

    growth = get("revenue_growth")
    items = [
        card(data.t("ind_customers"), fmt.number(get("customers"))),
        card(data.t("ind_active_customers"), fmt.number(get("active_customers"))),
        card(data.t("ind_revenue_window"), fmt.money(get("revenue_window")),
             data.t("dash_growth", growth=fmt.pct(growth, 1)) if growth is not None else "",
             "up" if (growth or 0) > 0 else "down" if (growth or 0) < 0 else ""),
        card(data.t("ind_repeat_rate"), fmt.pct(get("repeat_rate"), 1)),
        card(data.t("ind_lapse_rate"), fmt.pct(get("lapse_rate"), 1)),
        card(data.t("ind_top20_revenue_share"), fmt.pct(get("top20_revenue_share"), 1)),
    ]
    if get("satisfaction_top_two_box") is not None:
        items.append(card(data.t("ind_satisfaction_top_two_box"),
                          fmt.pct(get("satisfaction_top_two_box"), 1)))
    if "clv" in data.customers and data.customers["clv"].notna().any():
        items.append(card(data.t("dash_total_clv"), fmt.money(data.customers["clv"].sum())))
    return cards(items, "crm-kpis")


def overview(data: DashboardData):
    """Key figures at a glance, and revenue and active customers month by month."""
    import ipywidgets as w

    from crmkit.analysis.context import monthly_activity

    from .charts.context import monthly_revenue

    chart = w.Output()
    chart.add_class("crm-chart")
    monthly = monthly_activity(data.ws.transactions, data.ws.as_of)
    _show(chart, monthly_revenue(monthly, data.fmt, **data.brand))
    head = w.HTML(_title(data.t("dash_overview"), data.t("dash_overview_lead"))
                  + key_figure_cards(data))
    return _section_box([head, chart], "crm-overview")


def segment_profile(data: DashboardData, segment: str) -> str:
    """One segment's profile and value, as HTML cards."""
    row, fmt = data.segments.loc[segment], data.fmt
    items = [
        card(data.t("customers"), fmt.number(row["customers"]),
             data.t("dash_of_base", share=fmt.pct(row["customer_share"], 1))),
        card(data.t("dash_margin_year"), fmt.money(row["margin_window"]),
             data.t("dash_of_margin", share=fmt.pct(row["margin_share"], 1))),
        card(data.t("dash_margin_per_customer"), fmt.money(row["margin_per_customer"])),
        card(data.t("dash_recency"), data.t("dash_days", days=fmt.number(row["recency_days"]))),
        card(data.t("dash_frequency"), fmt.number(row["frequency"], 1)),
        card(data.t("dash_retention"), fmt.pct(row["retention"], 1)),
        card(data.t("dash_relationship_today"), str(row["relationship_name"])),
    ]
    if pd.notna(row["clv"]):
        items.append(card(data.t("dash_clv_per_customer"), fmt.money(row["clv"])))
    if pd.notna(row["satisfied"]):
        items.append(card(data.t("ind_satisfaction_top_two_box"), fmt.pct(row["satisfied"], 1)))
    return cards(items, "crm-segment-profile")


def segment_chart(data: DashboardData, selected: str | None = None):
    """Share of customers against share of margin per segment, the selected one highlighted."""
    from crmkit.delivery.charts import figure, label_axes, palette, safe

    seg, fmt = data.segments, data.fmt
    colours = palette(**data.brand)
    fig = figure(fmt, data.t("dash_segment_chart_title"), height=380, **data.brand)
    names = [safe(n) for n in seg["name"]]
    opacity = [1.0 if selected is None or k == selected else 0.35 for k in seg.index]
    fig.add_bar(x=names, y=seg["customer_share"], name=data.t("dash_share_customers"),
                marker={"color": colours[0], "opacity": opacity},
                hovertemplate="%{x}<br>%{y:.1%}<extra></extra>")
    fig.add_bar(x=names, y=seg["margin_share"], name=data.t("dash_share_margin"),
                marker={"color": colours[1], "opacity": opacity},
                hovertemplate="%{x}<br>%{y:.1%}<extra></extra>")
    fig.update_yaxes(tickformat=".0%")
    fig.update_layout(barmode="group")
    return label_axes(fig, "", data.t("share"))


def verdicts(data: DashboardData) -> dict[str, dict]:
    """Segment -> its verdict record, as ``results.json``'s ``cost_benefit.segments[]``
    (:func:`crmkit.relationships.cost_benefit.figures` on workbook 04's economics, in the
    dashboard's language: the report's rule, figures and sentences)."""
    if "verdicts" not in data.cache:
        from crmkit.relationships import cost_benefit

        config = data.ws.config
        figures = cost_benefit.figures(data.steps.economics, data.fmt,
                                       config.relationships.thresholds,
                                       lapse_days=config.assumptions.lapse_days)
        data.cache["verdicts"] = {str(r["segment"]): r for r in figures.get("segments", [])}
    return data.cache["verdicts"]


def segment_actions(data: DashboardData, segment: str) -> str:
    """What to do with a segment, as HTML: its verdict, the relationship it gets, the reason
    with its figures, and the plan's levers that reach it with their benefit a year."""
    record = verdicts(data).get(segment)
    if record is None:
        return ""
    verdict = record["verdict"]
    main, cheaper = record.get("main_type_name"), record.get("cheaper_type_name")
    if verdict == "move_cheaper" and cheaper:
        gets = data.t("dash_action_gets_cheaper", cheaper=cheaper, main=main or "–")
    elif verdict == "stop":
        gets = data.t("dash_action_gets_none")
    else:
        gets = data.t("dash_action_gets_same", type=main or data.t("dash_action_no_type"))
    lines = []
    state = plan_state(data)
    if state is not None:
        frame = state.planned().levers
        rows = frame[(frame["segment"] == segment) & (frame["yearly_benefit"].abs() >= 0.5)]
        lines = [data.t("dash_action_lever", lever=data.t(f"lever_{r.lever}"),
                        benefit=data.fmt.money(r.yearly_benefit))
                 for r in rows.itertuples(index=False)]
    levers = ("<ul>" + "".join(f"<li>{_esc(x)}</li>" for x in lines) + "</ul>" if lines
              else f'<p class="crm-note">{_esc(data.t("dash_action_no_levers"))}</p>')
    return (f'<div class="crm-segment-actions crm-verdict-{_esc(verdict)}">'
            f'<h3>{_esc(data.t("dash_action_heading"))}: '
            f'<span class="crm-verdict">{_esc(record["verdict_name"])}</span></h3>'
            f"<p>{_esc(gets)}</p><p>{_esc(record['reason'])}</p>"
            f'<p class="crm-action-levers-title">{_esc(data.t("dash_action_levers"))}</p>'
            f"{levers}</div>")


def segment_explorer(data: DashboardData):
    """A dropdown of segments; the chosen one's profile and value, against the others."""
    import ipywidgets as w

    options = [(str(name), str(key)) for key, name in data.segments["name"].items()]
    choose = w.Dropdown(options=options, value=options[0][1],
                        description=data.t("dash_segment"), style={"description_width": "auto"})
    choose.add_class("crm-segment-choice")
    profile = w.HTML(segment_profile(data, choose.value))
    actions = w.HTML(segment_actions(data, choose.value))
    chart = w.Output()
    chart.add_class("crm-chart")
    _show(chart, segment_chart(data, choose.value))

    def changed(change):
        profile.value = segment_profile(data, change["new"])
        actions.value = segment_actions(data, change["new"])
        _show(chart, segment_chart(data, change["new"]))

    choose.observe(changed, names="value")
    lead = data.t("dash_segments_lead")
    return _section_box([w.HTML(_title(data.t("dash_segments"), lead)), choose, profile, actions,
                         chart], "crm-explorer")


def _years(data: DashboardData) -> str:
    years = data.horizon_years
    return data.fmt.number(years, 0 if float(years).is_integer() else 1)


def what_if_cards(data: DashboardData, figures: Mapping[str, float], prefix: str = "") -> str:
    """The what-if's four figures after the change, each with its change against today.

    ``prefix`` ``""`` gives the segment's figures, ``"total_"`` those of all the customers.
    """
    fmt = data.fmt
    items = []
    for name in WHAT_IF_FIGURES:
        before, after = figures[f"{prefix}{name}_before"], figures[f"{prefix}{name}_after"]
        change = after - before
        # Less cost is good news; more of anything else is.
        good = change < 0 if name == "cost" else change > 0
        tone = "" if abs(change) < 0.5 else ("up" if good else "down")
        sign = "+" if change > 0.5 else ""
        items.append(card(data.t(f"dash_whatif_{name}", years=_years(data)), fmt.money(after),
                          data.t("dash_change", change=sign + fmt.money(change),
                                 before=fmt.money(before)), tone))
    css = "crm-whatif-total" if prefix else "crm-whatif-segment-figures"
    return cards(items, css)


def what_if_figures(data: DashboardData, figures: Mapping[str, float], segment_name: str
                    ) -> str:
    """The segment's figures, then all the customers' (a cost rate is every segment's), the
    retention, and what the net present value is, in words."""
    fmt = data.fmt
    retention = data.t("dash_whatif_retention", before=fmt.pct(figures["retention_before"], 1),
                       after=fmt.pct(figures["retention_after"], 1))
    return ('<div class="crm-whatif-figures">'
            f'<h3>{_esc(data.t("dash_whatif_segment_heading", segment=segment_name))}</h3>'
            + what_if_cards(data, figures)
            + f'<p class="crm-note">{_esc(retention)}</p>'
            f'<h3>{_esc(data.t("dash_whatif_total_heading"))}</h3>'
            + what_if_cards(data, figures, "total_")
            + f'<p class="crm-note">{_esc(data.t("dash_whatif_npv_note", years=_years(data)))}'
            "</p></div>")


def what_if_bars(data: DashboardData, figures: Mapping[str, float]) -> str:
    """The segment today against the what-if, each figure on its own scale, as HTML bars.

    Drawn in HTML rather than plotly on purpose: a move of a control then costs one small
    message and no chart layout in the browser, which keeps each update well within 300 ms.
    """
    rows = []
    for name in WHAT_IF_FIGURES:
        top = max(abs(figures[f"{name}_before"]), abs(figures[f"{name}_after"])) or 1.0
        bars = []
        for when, label in (("before", data.t("dash_today")),
                            ("after", data.t("dash_after_change"))):
            value = figures[f"{name}_{when}"]
            width = 100 * abs(value) / top
            css = f"crm-bar crm-bar-{when}" + (" crm-bar-negative" if value < 0 else "")
            bars.append(f'<div class="crm-bar-row"><span class="crm-bar-label">{_esc(label)}'
                        f'</span><span class="crm-bar-track"><span class="{css}" '
                        f'style="width:{width:.1f}%"></span></span><span class="crm-bar-value">'
                        f"{_esc(data.fmt.money(value))}</span></div>")
        title = data.t(f"dash_whatif_{name}", years=_years(data))
        rows.append(f'<div class="crm-bar-group"><div class="crm-bar-title">{_esc(title)}'
                    f'</div>{"".join(bars)}</div>')
    return (f'<div class="crm-bars"><div class="crm-bars-title">'
            f'{_esc(data.t("dash_whatif_chart_title"))}</div>{"".join(rows)}</div>')


def what_if(data: DashboardData, model: WhatIfModel | None = None):
    """Move a segment to another relationship type, change cost rates and retention.

    Parameters
    ----------
    data : DashboardData
    model : WhatIfModel, optional
        Default :func:`what_if_model`. Every control calls it and redraws the figures.
    """
    import ipywidgets as w

    model = model or what_if_model(data)
    segments = model.segments()
    types = model.relationship_types()
    first = next(iter(segments))
    style = {"description_width": "auto"}
    segment = w.Dropdown(options=[(n, k) for k, n in segments.items()], value=first,
                         description=data.t("dash_segment"), style=style,
                         layout={"width": "360px"})
    target = w.Dropdown(options=[(n, k) for k, n in types.items()],
                        value=model.current_type(first), description=data.t("dash_move_to"),
                        style=style, layout={"width": "360px"})
    wide = {"width": "380px"}
    cost_rate = w.FloatSlider(value=0.0, min=-0.5, max=0.5, step=0.05, readout_format="+.0%",
                              description=data.t("dash_cost_rate"), style=style, layout=wide)
    retention = w.IntSlider(value=0, min=-20, max=20, step=1, readout_format="+d",
                            description=data.t("dash_retention_points"), style=style,
                            layout=wide)
    for widget, css in ((segment, "crm-whatif-segment"), (target, "crm-whatif-type"),
                        (cost_rate, "crm-whatif-cost"), (retention, "crm-whatif-retention")):
        widget.add_class(css)
    figures_html = w.HTML()
    plan_html = w.HTML()
    plan_html.add_class("crm-whatif-plan")
    today = {"note": ""}
    state = plan_state(data) if isinstance(model, ScenarioWhatIf) else None

    def evaluate() -> dict[str, float]:
        return model(segment.value, target.value, cost_rate.value, retention.value / 100)

    def redraw(_=None):
        figures = evaluate()
        figures_html.value = (today["note"]
                              + what_if_figures(data, figures, segments[segment.value])
                              + what_if_bars(data, figures))
        if state is not None:
            scenario, share, text = what_if_scenario(data, state, segment.value, target.value,
                                                     cost_rate.value, retention.value / 100)
            # the plan section redraws too, and so does this section's plan line
            state.update(scenario=scenario, scenario_text=text, whatif_share=share)

    def plan_line():
        plan_html.value = what_if_plan(data, state)

    if state is not None:
        state.listen(plan_line)

    def segment_changed(change):
        current = model.current_type(change["new"])
        today["note"] = (f'<p class="crm-note">'
                         f'{_esc(data.t("dash_today_type", type=types.get(current, current)))}'
                         "</p>")
        if target.value != current:
            target.value = current  # its observer redraws
        else:
            redraw()

    segment_changed({"new": segment.value})
    segment.observe(segment_changed, names="value")
    for widget in (target, cost_rate, retention):
        widget.observe(redraw, names="value")
    controls = w.HBox([w.VBox([segment, target]), w.VBox([cost_rate, retention])])
    controls.add_class("crm-controls")
    if state is not None:
        plan_line()
    return _section_box([w.HTML(_title(data.t("dash_whatif"), data.t("dash_whatif_lead"))),
                         controls, figures_html, plan_html], "crm-whatif")


def what_if_scenario(data: DashboardData, state: PlanState, segment: str, target: str,
                     cost_rate_change: float, retention_change: float
                     ) -> tuple[Any, float, str]:
    """The segment what-if as a scenario added to the plan's, the share of the segment's
    activity it moves, and a sentence saying what is added (empty when nothing is)."""
    from crmkit.planning.what_if import segment_scenario

    steps = data.steps
    scenario, share = segment_scenario(steps.model, steps.scenarios, segment, target,
                                       cost_rate_change=cost_rate_change,
                                       retention_change=retention_change)
    if not scenario.changes:
        return None, share, ""
    name = str(data.segments.at[segment, "name"]) if segment in data.segments.index else segment
    text = data.t("dash_plan_with_whatif", segment=name)
    current = steps.model.main_type(segment)
    if target != current and share < 1.0:
        text += " " + data.t("dash_whatif_plan_moves_already",
                             share=data.fmt.pct(1.0 - share, 0),
                             type=data.relationship_names.get(current, current))
    return scenario, share, text


def what_if_plan(data: DashboardData, state: PlanState) -> str:
    """What the what-if (and the levers tried below) do to the plan: its NPV and decision
    against the report's, in one sentence each."""
    fmt = data.fmt
    planned, now = state.planned(), state.outcome()
    change = now.returns.npv - planned.returns.npv
    sign = "+" if change > 0.5 else ""
    npv = data.t("dash_whatif_plan_npv", npv=fmt.money(now.returns.npv),
                 change=sign + fmt.money(change), planned=fmt.money(planned.returns.npv))
    decision = data.t("dash_whatif_plan_decision",
                      decision=data.t(f"decision_{now.decision.decision}"),
                      planned=data.t(f"decision_{planned.decision.decision}"))
    return (f'<div class="crm-whatif-plan-figures"><h3>{_esc(data.t("dash_whatif_plan_heading"))}'
            f'</h3><p>{_esc(npv)}</p><p>{_esc(decision)}</p>'
            f'<p class="crm-note">{_esc(data.t("dash_whatif_plan_note"))}</p></div>')


# --------------------------------------------------------------------------------------------
# The implementation plan and its returns, the budget adjustable
# --------------------------------------------------------------------------------------------

@dataclass
class PlanView:
    """What the plan section shows: the plan, the benefits it is evaluated with, their source.

    Attributes
    ----------
    project : crmkit.planning.plan.Plan
        :func:`crmkit.planning.plan.build` on client.yaml's ``crm_project`` (defaults scaled to the
        client's revenue).
    benefits : list of crmkit.planning.plan.Benefit
        The levers of workbook 05's business case (:func:`crmkit.planning.plan.business_case`:
        retention, share of customer, reactivation, automation, avoidable cost to serve), with
        client.yaml's own benefit items: the returns are those of workbook 05.
    case : crmkit.planning.plan.BusinessCase
        Workbook 05's business case itself (its NPV, break-even and decision are the report's).
    what_if : crmkit.planning.what_if.CaseWhatIf
        The same case re-evaluated under the dashboard's sliders.
    """

    project: Any
    benefits: list
    case: Any = None
    what_if: Any = None

    def flows(self, budget: float = 1.0) -> pd.DataFrame:
        """Monthly cash flows with every cost but the efficiency dip × ``budget``."""
        from crmkit.planning.finance import cash_flows

        return cash_flows(self.project, self.benefits, cost_factor=budget)


def plan_view(data: DashboardData) -> PlanView:
    """Build the plan and its benefits for the dashboard, once per page (ValueError: no plan
    can be built)."""
    if "plan_view" in data.cache:
        view = data.cache["plan_view"]
        if isinstance(view, ValueError):
            raise view
        return view
    from crmkit.planning import plan as plan_lib
    from crmkit.planning.what_if import CaseWhatIf

    ws = data.ws
    try:
        project = plan_lib.build(ws.config, plan_lib.Scale.from_workspace(ws), as_of=ws.as_of)
    except ValueError as error:
        data.cache["plan_view"] = error
        raise
    steps = data.steps or Steps(ws, data.lang, data.run_dir)
    # Workbook 05's business case, the same call on the same inputs: its levers are the benefits.
    case = plan_lib.business_case(project, steps.customers, steps.cost, ws.config, data.fmt,
                                  scenario_model=steps.model, scenarios=steps.scenarios,
                                  objective=steps.objective.chosen, transactions=ws.transactions,
                                  attributes=ws.customers, as_of=ws.as_of,
                                  suggested=steps.suggested)
    what = CaseWhatIf(case, data.fmt, scenario_model=steps.model, scenarios=steps.scenarios,
                      customers=steps.customers, cost=steps.cost, config=ws.config,
                      objective=steps.objective.chosen, attributes=ws.customers)
    view = PlanView(project, case.benefits, case, what)
    data.cache["plan_view"] = view
    return view


class PlanState:
    """The assumptions the client is trying, shared by the what-if and the plan sections.

    ``settings`` (lever assumptions, ``crm_project.levers``), ``scenario`` (the segment what-if,
    added to the plan's scenarios), ``budget`` (the share of the planned costs). Nothing is
    written anywhere: the state lives in this page's kernel and is gone with it. Every change
    re-evaluates the case once (:meth:`outcome` keeps the last one) and tells the sections.
    """

    def __init__(self, view: PlanView):
        self.view = view
        self.settings = view.case.model.settings
        self.scenario = None
        self.scenario_text = ""
        self.budget = 1.0
        self._listeners: list = []
        self._last: tuple | None = None
        self._planned = None

    def listen(self, callback) -> None:
        self._listeners.append(callback)

    def update(self, **changes) -> None:
        for name, value in changes.items():
            setattr(self, name, value)
        for callback in self._listeners:
            callback()

    def outcome(self):
        """:meth:`crmkit.planning.what_if.CaseWhatIf.evaluate` under the current state."""
        changes = repr(self.scenario.changes) if self.scenario is not None else ""
        key = (self.settings.model_dump_json(), changes, self.budget)
        if self._last is None or self._last[0] != key:
            result = self.view.what_if.evaluate(settings=self.settings, scenario=self.scenario,
                                                budget=self.budget)
            self._last = (key, result)
        return self._last[1]

    def planned(self):
        """The outcome with client.yaml's levers, no what-if and the planned budget."""
        if self._planned is None:
            self._planned = self.view.what_if.evaluate()
        return self._planned


def plan_state(data: DashboardData) -> PlanState | None:
    """The page's :class:`PlanState` (None when no plan can be built)."""
    if "plan_state" not in data.cache:
        try:
            data.cache["plan_state"] = PlanState(plan_view(data))
        except ValueError:
            data.cache["plan_state"] = None
    return data.cache["plan_state"]


@dataclass(frozen=True)
class LeverControl:
    """A slider on one lever assumption of ``crm_project.levers``.

    ``path`` is its place in :class:`crmkit.settings.project.LeverSettings` (``("retention",
    "points")``); ``kind`` ``points``, ``pct``, ``count`` or ``money``; ``lever`` the lever it
    belongs to (its name is shown, and the slider only when the lever counts).
    """

    path: tuple[str, ...]
    lever: str
    kind: str
    low: float
    high: float
    step: float

    @property
    def css(self) -> str:
        return "crm-lever-" + "-".join(self.path).replace("_", "-")


#: The lever sliders always offered (when their lever counts) …
LEVER_CONTROLS = (
    LeverControl(("retention", "points"), "retention", "points", -10.0, 10.0, 0.5),
    LeverControl(("share_of_customer", "uplift"), "share_of_customer", "pct", 0.0, 0.10, 0.005),
    LeverControl(("reactivation", "win_back_rate"), "reactivation", "pct", 0.0, 0.30, 0.01),
    LeverControl(("consent",), "automation", "pct", 0.0, 1.0, 0.05),
    LeverControl(("automation", "campaigns_per_year"), "automation", "count", 0, 12, 1),
    LeverControl(("acquisition", "growth"), "acquisition", "pct", 0.0, 1.0, 0.05),
)
#: … and those offered when client.yaml sets them.
LEVER_CONTROLS_IF_SET = (
    LeverControl(("reactivation", "contact_cost"), "reactivation", "money", 0.0, 5.0, 0.05),
    LeverControl(("reactivation", "contacts_per_year"), "reactivation", "count", 0, 12, 1),
    LeverControl(("automation", "contact_cost"), "automation", "money", 0.0, 1.0, 0.01),
    LeverControl(("automation", "control_share"), "automation", "pct", 0.0, 0.5, 0.05),
)


def _is_set(settings: Any, path: tuple[str, ...]) -> bool:
    node = settings
    for name in path[:-1]:
        if name not in node.model_fields_set:
            return False
        node = getattr(node, name)
    return path[-1] in node.model_fields_set


def _get(settings: Any, path: tuple[str, ...]) -> Any:
    node = settings
    for name in path:
        node = getattr(node, name)
    return node


def lever_controls(model: Any) -> list[LeverControl]:
    """The sliders a case offers: :data:`LEVER_CONTROLS` of the levers that count, those of
    :data:`LEVER_CONTROLS_IF_SET` that client.yaml sets, and one per segment of
    ``retention.by_segment``; each range widened to hold client.yaml's value."""
    settings = model.settings
    chosen = [c for c in LEVER_CONTROLS if model.included(c.lever)]
    if settings.consent_attribute is not None:  # consent is read per customer: not a slider
        chosen = [c for c in chosen if c.path != ("consent",)]
    if settings.acquisition.new_customers is not None:  # a count given: growth is not read
        chosen = [c for c in chosen if c.path != ("acquisition", "growth")]
    chosen += [c for c in LEVER_CONTROLS_IF_SET
               if model.included(c.lever) and _is_set(settings, c.path)]
    if model.included("retention"):
        chosen += [LeverControl(("retention", "by_segment", seg), "retention", "points",
                                -10.0, 10.0, 0.5) for seg in settings.retention.by_segment]
    out = []
    for control in chosen:
        value = float(_value(settings, control.path))
        out.append(LeverControl(control.path, control.lever, control.kind,
                                min(control.low, value), max(control.high, value), control.step))
    return out


def _value(settings: Any, path: tuple[str, ...]) -> Any:
    if len(path) == 3 and path[1] == "by_segment":
        return settings.retention.by_segment[path[2]]
    return _get(settings, path)


def with_lever_values(settings: Any, values: Mapping[tuple[str, ...], float]) -> Any:
    """``settings`` (a :class:`crmkit.settings.project.LeverSettings`) with the sliders'
    values, validated by the client.yaml schema itself (a value out of its range is refused)."""
    tree = settings.model_dump()
    for path, value in values.items():
        node = tree
        for name in path[:-1]:
            node = node[name]
        node[path[-1]] = value
    return type(settings).model_validate(tree)


def _lever_label(data: DashboardData, control: LeverControl) -> str:
    if control.path[:2] == ("retention", "by_segment"):
        names = dict(zip(data.segments.index, data.segments["name"], strict=True))
        return data.t("dash_lever_segment_points", segment=names.get(control.path[2],
                                                                     control.path[2]))
    name = control.path[-1]
    return f'{data.t(f"lever_{control.lever}")}: {data.t(f"lever_assumption_{name}")}'


def _lever_slider(data: DashboardData, control: LeverControl, value: float):
    import ipywidgets as w

    # No widget readout: it would print "3.0%" on a Spanish page; the value is written beside
    # the slider by the Formatter instead (:func:`lever_value_text`).
    style, layout = {"description_width": "0px"}, {"width": "300px"}
    if control.kind == "count":
        slider = w.IntSlider(value=int(value), min=int(control.low), max=int(control.high),
                             step=int(control.step), readout=False, style=style, layout=layout)
    else:
        slider = w.FloatSlider(value=float(value), min=control.low, max=control.high,
                               step=control.step, readout=False, style=style, layout=layout)
    slider.add_class(control.css)
    return slider


def _lever_readout(data: DashboardData, control: LeverControl, value: float) -> str:
    return (f'<span class="crm-lever-value">{_esc(lever_value_text(data, control, value))}'
            "</span>")


def lever_value_text(data: DashboardData, control: LeverControl, value: float) -> str:
    """A slider's value as the report writes it, in the client's language."""
    fmt = data.fmt
    if control.kind == "points":
        sign = "+" if value > 0 else ""
        return data.t("lever_change_points", points=sign + fmt.number(value, 1))
    if control.kind == "pct":
        return fmt.pct(value, 1)
    if control.kind == "money":
        return fmt.money(value, 2)
    return fmt.number(value, 0)


def plan_cards(data: DashboardData, view: PlanView, r: Any, budget: float,
               outcome: Any = None) -> str:
    """The returns (``crmkit.planning.finance.Returns``) at a budget, as HTML cards; with
    ``outcome`` (:class:`crmkit.planning.what_if.Outcome`), the decision and the break-even
    first, and the benefits of the levers tried."""
    fmt = data.fmt
    items = []
    if outcome is not None:
        items += [card(data.t("decision_label"),
                       data.t(f"decision_{outcome.decision.decision}")),
                  card(data.t("decision_break_even_label"), _believe(data, outcome.break_even))]
    items += [card(data.t("fin_npv"), fmt.money(r.npv)),
              card(data.t("fin_payback"), r.payback_text(fmt)),
              card(data.t("fin_total_costs"), fmt.money(r.total_costs),
                   data.t("dash_plan_budget_note", share=fmt.pct(budget, 0))),
              card(data.t("fin_total_benefits"), fmt.money(r.total_benefits))]
    benefits = outcome.benefits if outcome is not None else view.benefits
    sources = "; ".join(f"{b.name}: {fmt.money(b.yearly_amount)}" for b in benefits)
    note = (data.t("dash_plan_benefits", sources=sources) if sources
            else data.t("dash_plan_no_benefits"))
    reasons = ""
    if outcome is not None:
        reasons = "".join(f"<li>{_esc(text)}</li>" for _, text in outcome.decision.reasons)
        reasons = f'<ul class="crm-plan-reasons">{reasons}</ul>'
    return (f'<div class="crm-plan-figures">{cards(items, "crm-plan-returns")}{reasons}'
            f'<p class="crm-note">{_esc(note)}</p></div>')


def _believe(data: DashboardData, even: Any) -> str:
    """The break-even as page one says it (:meth:`BusinessCase.key_figures`)."""
    fmt = data.fmt
    if even.value is None:
        return "–"
    if even.lever == "retention":
        key = "decision_believe_points" if even.value >= 0 else "decision_believe_points_fall"
        return data.t(key, points=fmt.number(abs(even.value), 1))
    return data.t("decision_believe_scale", scale=fmt.number(even.value, 2))


def plan(data: DashboardData):
    """The implementation timeline and its returns, the levers and the budget adjustable.

    The plan, its levers and its decision are workbook 05's (:func:`plan_view`). Each lever
    assumption of ``crm_project.levers`` is a slider starting at client.yaml's value; the
    budget slider multiplies every planned cost but the temporary drop in efficiency (50 %-150
    %) and moves costs only. Each move re-evaluates the business case
    (:class:`crmkit.planning.what_if.CaseWhatIf`, some 30-80 ms in the kernel) with the segment
    what-if above added to the plan's scenarios, and redraws the decision, the break-even, the
    NPV, the payback and the cumulative cash flow.
    """
    import ipywidgets as w

    from .charts.plan import cumulative_cash_flow, timeline

    head = w.HTML(_title(data.t("dash_plan"), data.t("dash_plan_lead")))
    state = plan_state(data)
    if state is None:
        note = w.HTML(f'<p class="crm-note">{_esc(data.t("dash_plan_unavailable"))}</p>')
        return _section_box([head, note], "crm-plan")
    view = state.view
    brand = data.brand
    schedule = w.Output()
    schedule.add_class("crm-chart")
    _show(schedule, timeline(view.project, data.fmt, **brand))
    budget = w.FloatSlider(value=1.0, min=BUDGET_RANGE[0], max=BUDGET_RANGE[1], step=0.05,
                           readout_format=".0%", description=data.t("dash_plan_budget"),
                           style={"description_width": "auto"}, layout={"width": "420px"})
    budget.add_class("crm-plan-budget")
    budget_note = w.HTML(f'<p class="crm-note">{_esc(data.t("dash_plan_budget_costs_only"))}'
                         "</p>")
    controls = lever_controls(view.case.model)
    sliders = {c.path: _lever_slider(data, c, _value(state.settings, c.path)) for c in controls}
    readouts = {c.path: w.HTML(_lever_readout(data, c, sliders[c.path].value))
                for c in controls}
    rows = [w.HBox([w.HTML(f'<span class="crm-lever-label">{_esc(_lever_label(data, c))}'
                           "</span>"), sliders[c.path], readouts[c.path]]) for c in controls]
    levers_box = w.VBox([w.HTML(f'<h3 class="crm-levers-title">'
                                f'{_esc(data.t("dash_levers"))}</h3><p class="crm-note">'
                                f'{_esc(data.t("dash_levers_lead"))}</p>'), *rows])
    levers_box.add_class("crm-levers")
    figures = w.HTML()
    cash = w.Output()
    cash.add_class("crm-chart")

    def redraw():
        outcome = state.outcome()
        extra = ""
        if state.scenario_text:
            extra = f'<p class="crm-note crm-plan-whatif-note">{_esc(state.scenario_text)}</p>'
        figures.value = extra + plan_cards(data, view, outcome.returns, state.budget, outcome)
        _show(cash, cumulative_cash_flow(outcome.flows, outcome.returns, data.fmt, **brand))

    def levers_changed(_=None):
        for c in controls:
            readouts[c.path].value = _lever_readout(data, c, sliders[c.path].value)
        values = {path: slider.value for path, slider in sliders.items()}
        state.update(settings=with_lever_values(view.case.model.settings, values))

    redraw()
    state.listen(redraw)
    budget.observe(lambda change: state.update(budget=float(change["new"])), names="value")
    for slider in sliders.values():
        slider.observe(levers_changed, names="value")
    return _section_box([head, schedule, levers_box, budget, budget_note, figures, cash],
                        "crm-plan")


# --------------------------------------------------------------------------------------------
# Downloads: CSV as data: URIs, neutralised against formula injection
# --------------------------------------------------------------------------------------------

def neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with every text cell and header passed through :func:`neutralise`.

    Numbers stay numbers (a negative amount is not a formula); only text can carry one.
    """
    out = frame.copy()
    out.columns = [neutralise(str(c)) for c in out.columns]
    for column in out.columns:
        if not pd.api.types.is_numeric_dtype(out[column]):
            out[column] = out[column].map(neutralise)
    return out


def csv_bytes(frame: pd.DataFrame, lang: str) -> bytes:
    """The table as CSV for a spreadsheet in the language's locale.

    Spanish spreadsheets expect ``;`` between fields and a decimal comma; the BOM tells Excel
    the file is UTF-8, so accents survive.
    """
    sep, decimal = (";", ",") if lang == "es" else (",", ".")
    text = neutralise_frame(frame).to_csv(index=False, sep=sep, decimal=decimal)
    return "\ufeff".encode() + text.encode("utf-8")


def data_uri(content: bytes, mime: str = "text/csv") -> str:
    """A ``data:`` URI: the file travels inside the page; no workspace file is ever served."""
    return f"data:{mime};charset=utf-8;base64,{base64.b64encode(content).decode('ascii')}"


#: Decimals a downloaded CSV keeps per kind of column (money to cents; a share, being a
#: fraction, keeps three: 0.108 is the 10.8 % shown on screen).
CSV_DECIMALS = {"money": 2, "share": 3, "number": 1, "count": 0, "probability": 3}


def _rounded(frame: pd.DataFrame, kinds: Mapping[str, str]) -> pd.DataFrame:
    out = frame.copy()
    for column, kind in kinds.items():
        if column in out and pd.api.types.is_numeric_dtype(out[column]):
            out[column] = out[column].round(CSV_DECIMALS[kind])
    return out


def _verdict_names(data: DashboardData) -> dict[str, str]:
    try:
        return {k: str(v["verdict_name"]) for k, v in verdicts(data).items()}
    except (KeyError, ValueError, AttributeError):
        return {}


def segments_export(data: DashboardData) -> pd.DataFrame:
    """The per-segment table as the client downloads it: headers in the client's language,
    numbers rounded to what the screen shows, the verdict as a word, no internal key."""
    seg = data.segments.reset_index()
    seg["verdict"] = seg["segment"].map(_verdict_names(data))
    kinds = {"customers": "count", "customer_share": "share", "revenue_window": "money",
             "margin_window": "money", "margin_share": "share", "clv": "money",
             "retention": "share", "satisfied": "share"}
    columns = {"name": "dash_col_segment",
               "customers": "customers", "customer_share": "dash_share_customers",
               "revenue_window": "dash_col_revenue_year", "margin_window": "dash_margin_year",
               "margin_share": "dash_share_margin", "clv": "dash_clv_per_customer",
               "retention": "dash_retention", "satisfied": "ind_satisfaction_top_two_box",
               "relationship_name": "dash_relationship_today", "verdict": "dash_col_verdict"}
    out = _rounded(seg[list(columns)], kinds)
    return out.rename(columns={k: data.t(v) for k, v in columns.items()})


def customers_export(data: DashboardData) -> pd.DataFrame:
    """The per-customer table as the client downloads it (segment and relationship by name)."""
    c = data.customers
    columns = {"customer_id": "dash_col_customer", "segment_name": "dash_col_segment",
               "recency_days": "dash_recency", "frequency": "dash_frequency",
               "monetary": "dash_col_monetary", "revenue_window": "dash_col_revenue_year",
               "margin_window": "dash_margin_year", "clv": "dash_clv_per_customer",
               "probability_alive": "dash_col_probability_alive",
               "relationship_today": "dash_relationship_today"}
    kinds = {"recency_days": "count", "frequency": "count", "monetary": "money",
             "revenue_window": "money", "margin_window": "money", "clv": "money",
             "probability_alive": "probability"}
    present = [k for k in columns if k in c]
    out = c[present].copy()
    if "relationship_today" in out:
        out["relationship_today"] = out["relationship_today"].map(data.relationship_names)
    out = _rounded(out, kinds)
    return out.rename(columns={k: data.t(columns[k]) for k in present})


def run_files(data: DashboardData) -> list[tuple[str, str]]:
    """The run's files the client may download, as ``(name, link)``.

    Only :data:`RUN_FILES`, only of the run this page shows, and only when :func:`prepare`
    copied them under Voila's root (in the random folder named by :data:`ENV_FILES`), where
    Voila's file handler serves them and nothing else (:func:`voila_config`); opened in
    JupyterLab, there are none.
    """
    folder = os.environ.get(ENV_FILES) or ""
    if not folder or data.run_dir is None or not folder.replace("-", "").replace("_",
                                                                                "").isalnum():
        return []
    return [(name, f"voila/files/{folder}/{name}") for name in RUN_FILES
            if (data.run_dir / name).is_file() and not (data.run_dir / name).is_symlink()]


def download_link(content: bytes, filename: str, label: str) -> str:
    """An HTML link that saves ``content`` as ``filename`` (no request reaches the server)."""
    return (f'<a class="crm-download" download="{_esc(filename)}" '
            f'href="{data_uri(content)}">{_esc(label)}</a>')


def downloads(data: DashboardData):
    """Download the client's tables as CSV files.

    The segments' file is small and ready at once; the customers' file is built when asked
    for, so that its few hundred kilobytes are not part of every page's first load.
    """
    import ipywidgets as w

    slug = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in data.ws.slug)
    segments_link = w.HTML(download_link(
        csv_bytes(segments_export(data), data.lang), f"{slug}-segments.csv",
        data.t("dash_download_segments")))
    customers_link = w.HTML()
    customers_link.add_class("crm-customers-link")
    prepare = w.Button(description=data.t("dash_prepare_customers"), icon="",
                       layout=w.Layout(width="auto"))
    prepare.add_class("crm-prepare-customers")

    def build(_):
        customers_link.value = download_link(
            csv_bytes(customers_export(data), data.lang), f"{slug}-customers.csv",
            data.t("dash_download_customers"))
        prepare.layout.display = "none"

    prepare.on_click(build)
    row = w.HBox([segments_link, prepare, customers_link])
    row.add_class("crm-downloads")
    parts = [w.HTML(_title(data.t("dash_downloads"), data.t("dash_downloads_lead"))), row]
    files = run_files(data)
    if files:
        links = "".join(f'<a class="crm-download crm-download-{_esc(name.replace(".", "-"))}" '
                        f'download="{_esc(slug + "-" + name)}" href="{_esc(href)}" '
                        f'target="_blank" rel="noopener">{_esc(data.t(RUN_FILES[name]))}</a>'
                        for name, href in files)
        parts.append(w.HTML(f'<div class="crm-run-files">{links}</div>'))
    return _section_box(parts, "crm-downloads-section")


# --------------------------------------------------------------------------------------------
# Serving: crmkit dashboard CLIENT_DIR
# --------------------------------------------------------------------------------------------

@dataclass
class ServeSetup:
    """Everything :func:`serve` runs: the command, its environment and its private folder.

    Attributes
    ----------
    argv : list of str
        The Voila command (no secret in it: the token is in the config file).
    env : dict
        The command's environment (Jupyter's folders and the ``CRMKIT_DASHBOARD_*`` choice).
    cwd : Path
        Where the command runs: the folder that holds only the dashboard notebook.
    url : str
        The one link to give the client, token included.
    token : str
    workdir : Path
        The private folder (mode 0700) to delete when the server stops.
    config : dict
        The Voila configuration written to ``workdir/config/voila.json``.
    """

    argv: list[str]
    env: dict[str, str]
    cwd: Path
    url: str
    token: str
    workdir: Path
    config: dict


def page_texts(lang: str) -> dict[str, str]:
    """The texts the page template shows while the dashboard loads, in ``lang``.

    They replace Voila's English ones ("Running dashboard...", "Executing 6 of 6", "Loading
    widget..."); ``executing`` keeps its ``{index}`` and ``{count}`` for the page to fill.
    ``cell_error`` replaces the traceback line of a section that failed (Voila writes "There was
    an error when executing cell [N]." in English before the configured instruction).
    """
    return {"running": t("dash_voila_running", lang),
            "executing": t("dash_voila_executing", lang),
            "loading_widget": t("dash_voila_loading_widget", lang),
            "cell_error": t("dash_cell_failed", lang)}


def voila_config(*, port: int, host: str, token: str, root_dir: Path, title: str = "crmkit",
                 lang: str = "en", brand: Mapping[str, str] | None = None,
                 max_kernels: int = MAX_KERNELS, idle_timeout: int = IDLE_TIMEOUT,
                 files: list[str] | tuple[str, ...] = ()) -> dict:
    """The Voila configuration of a client's dashboard (written as ``voila.json``).

    Every setting is a decision, so none is left to Voila's defaults or to a config file the
    machine might have. ``title``, ``lang`` and ``brand`` (``primary``, ``accent``) dress the
    page template (``templates/voila/crmkit``); ``max_kernels`` bounds the kernels running at
    once (one per open page), ``idle_timeout`` is how long (seconds) a kernel no page is
    connected to may sit idle before it is shut down. ``files`` are the paths under
    ``root_dir`` that Voila's file handler may serve (the run's downloads that :func:`prepare`
    copied); every other path is refused, the notebook and hidden files always.
    """
    import re

    from crmkit.delivery.charts import plotly_locale_js

    if max_kernels < 1:
        raise ValueError(f"max_kernels {max_kernels}; expected at least 1")
    return {
        "Voila": {
            "ip": host,
            "port": port,
            # Fail rather than move to another port: the link printed must be the right one.
            "port_retries": 0,
            "open_browser": False,
            "root_dir": str(root_dir),
            "token": token,
            "log_level": "WARN",
        },
        "VoilaConfiguration": {
            "template": TEMPLATE_NAME,
            "theme": "light",
            # ?template=… and ?theme=… in the URL are ignored (Voila's default is to obey them).
            "allow_template_override": "NO",
            "allow_theme_override": "NO",
            "strip_sources": True,
            "show_tracebacks": False,
            # /voila/files/ serves only the run's downloads, by their exact paths (Voila's
            # default serves images of root_dir); without them, nothing at all.
            "file_allowlist": [re.escape(path) for path in files],
            "file_denylist": [r".*\.ipynb", r"(.*/)?\..*"] if files else [".*"],
            # No spare kernels running the notebook ahead of visits. "Model not found" is fixed
            # in the page template (templates/voila/crmkit/index.html.j2), so they would work
            # now, but each holds a kernel (~200 MB) all the time and a slot of max_kernels.
            "preheat_kernel": False,
            "default_pool_size": POOL_SIZE,
            # At most max_kernels kernels; beyond, the page says "busy, try again in a minute".
            "multi_kernel_manager_class":
                "crmkit.delivery.dashboard_kernels.BoundedKernelManager",
            # plotly's locale (months, separators, toolbar) in the page's head, before plotly.js.
            "resources": {"crmkit": {**dict(brand or {}),
                                     "plotly_locale": plotly_locale_js(lang)},
                          "crmkit_texts": page_texts(lang),
                          "metadata": {"name": title}},
        },
        "BoundedKernelManager": {
            "max_kernels": max_kernels,
            "busy_title": t("dash_busy_title", lang),
            "busy_text": t("dash_busy_text", lang),
            "busy_retry": t("dash_busy_retry", lang),
            "busy_language": lang,
        },
        # A cell that fails shows this instead of Voila's advice to rerun it with --debug.
        "VoilaExecutor": {"cell_error_instruction": t("dash_cell_failed", lang)},
        # <html lang="…">, so that the browser hyphenates and reads the page in its language.
        "HTMLExporter": {"language_code": lang},
        # A kernel no page is connected to (the tab closed without saying so, a load that was
        # abandoned before its page connected) is shut down once idle for idle_timeout seconds;
        # a connected page keeps its kernel, and closing the tab shuts it down at once (Voila's
        # page sends /voila/api/shutdown/<kernel> on unload).
        "MappingKernelManager": {"cull_idle_timeout": idle_timeout,
                                 "cull_interval": max(5, min(60, idle_timeout // 4)),
                                 "cull_connected": False, "cull_busy": False},
        # Heat the next kernel only once the page just served has loaded its widgets: on a
        # small machine, heating at once (Voila waits 1 s) competes with that page for the CPU.
        "VoilaKernelManager": {"fill_delay": FILL_DELAY},
    }


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0", "::"):
        return socket.gethostname()
    return f"[{host}]" if ":" in host else host


def prepare(ws: Workspace, *, port: int = DEFAULT_PORT, host: str = DEFAULT_HOST,
            language: str | None = None, run_dir: Path | None = None,
            token: str | None = None, workdir: Path | None = None,
            max_kernels: int = MAX_KERNELS, idle_timeout: int = IDLE_TIMEOUT) -> ServeSetup:
    """Lay out the private folder and build the Voila command for one client.

    The folder holds ``app/dashboard.ipynb`` (a copy: Voila's root, so no other file is within
    its reach), ``config/voila.json`` (mode 0600, holds the token), Jupyter's data, runtime and
    IPython folders, and ``share/voila/templates/crmkit`` (the page template).
    """
    token = token or secrets.token_urlsafe(32)
    workdir = Path(workdir or tempfile.mkdtemp(prefix=f"crmkit-dashboard-{ws.slug}-"))
    workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    workdir.chmod(0o700)
    app = workdir / "app"
    config_dir = workdir / "config"
    share = workdir / "share"
    for folder in (app, config_dir, workdir / "data", workdir / "runtime", workdir / "ipython"):
        folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(NOTEBOOK, app / NOTEBOOK.name)
    # The run's downloads, copied (never linked) into a folder of a random name: Voila's file
    # handler asks for no token, so the folder's name is the key, known only to the kernel
    # (through the environment) and to the page it serves.
    served: list[str] = []
    folder = secrets.token_urlsafe(24)
    if run_dir is not None:
        for name in RUN_FILES:
            source = Path(run_dir) / name
            if source.is_file() and not source.is_symlink():
                (app / folder).mkdir(mode=0o700, exist_ok=True)
                shutil.copyfile(source, app / folder / name)
                served.append(f"{folder}/{name}")
    shutil.copytree(TEMPLATE_DIR, share / "voila" / "templates" / TEMPLATE_NAME,
                    dirs_exist_ok=True)

    lang = language or ws.config.language
    branding = ws.config.branding
    config = voila_config(port=port, host=host, token=token, root_dir=app,
                          title=f"{ws.config.name} · CRM", lang=lang,
                          brand={"primary": branding.primary_color,
                                 "accent": branding.accent_color},
                          max_kernels=max_kernels, idle_timeout=idle_timeout, files=served)
    config_file = config_dir / "voila.json"
    config_file.touch(mode=0o600)
    config_file.write_text(json.dumps(config, indent=2), encoding="utf-8")

    env = {k: v for k, v in os.environ.items()
           if k not in ("JUPYTER_CONFIG_PATH", "JUPYTER_TOKEN", "JUPYTER_TOKEN_FILE",
                        "PLOTLY_RENDERER")}
    env.update({
        "JUPYTER_CONFIG_DIR": str(config_dir),
        "JUPYTER_DATA_DIR": str(workdir / "data"),
        "JUPYTER_RUNTIME_DIR": str(workdir / "runtime"),
        "JUPYTER_PATH": str(share),
        "IPYTHONDIR": str(workdir / "ipython"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "TMPDIR": str(workdir / "runtime"),
        ENV_CLIENT: str(Path(ws.path).resolve()),
        ENV_RUN: str(Path(run_dir).resolve()) if run_dir else "",
        ENV_LANGUAGE: language or "",
        ENV_FILES: folder if served else "",
    })
    argv = [sys.executable, "-m", "voila", str(app / NOTEBOOK.name),
            f"--Voila.config_file_paths={config_dir}", "--no-browser"]
    url = f"http://{_url_host(host)}:{port}/?token={token}"
    return ServeSetup(argv=argv, env=env, cwd=app, url=url, token=token, workdir=workdir,
                      config=config)


def serve(client_dir: str | Path, *, port: int = DEFAULT_PORT, language: str | None = None,
          host: str = DEFAULT_HOST, reports_dir: str | Path | None = None,
          max_kernels: int = MAX_KERNELS) -> int:
    """Serve one client's dashboard until interrupted; return the exit code.

    The link is printed once the server answers (:func:`wait_until_answering`).

    Parameters
    ----------
    client_dir : path
        The client workspace; validated first.
    port : int
        The port; the command fails (exit 2) when it is taken, rather than pick another.
    language : {"en", "es"}, optional
        Default: the client's.
    host : str
        The address to listen on; default 127.0.0.1 (this machine only).
    reports_dir : path, optional
        Where ``crmkit run`` wrote this client's runs (default ``./reports``); the latest
        complete run is shown, or figures computed from the workspace when there is none.
    max_kernels : int
        The most pages served at once (one kernel each, default :data:`MAX_KERNELS`); a load
        beyond it gets a "busy, try again in a minute" page.

    Raises
    ------
    crmkit.core.problems.WorkspaceError
        The workspace is invalid (the CLI prints the problems and exits 2).
    """
    ws = load_workspace(client_dir)
    if max_kernels < 1:
        print(f"crmkit dashboard: --max-kernels {max_kernels}; expected 1 or more.",
              file=sys.stderr)
        return 2
    if not port_free(host, port):
        print(f"crmkit dashboard: port {port} on {host} is in use; expected a free port "
              "(choose one with --port).", file=sys.stderr)
        return 2
    run_dir = latest_run(Path(reports_dir or "reports"), ws.slug)
    setup = prepare(ws, port=port, host=host, language=language, run_dir=run_dir,
                    max_kernels=max_kernels)
    lang = language or ws.config.language
    source = f"run {run_dir.name}" if run_dir else "the workspace (no run yet)"
    print(f"Dashboard of {ws.config.name} ({ws.slug}), in {lang}, figures from {source}; "
          f"at most {max_kernels} visitors at once. Starting…", flush=True)

    process = None
    with stops_on_interrupt():
        try:
            process = subprocess.Popen(setup.argv, env=setup.env, cwd=setup.cwd)
            if not wait_until_answering(process, host, port):
                print(f"crmkit dashboard: the server did not answer on {host}:{port} within "
                      f"{START_TIMEOUT:.0f} s" + (f" (it exited with code {process.returncode})"
                                                  if process.poll() is not None else "") + ".",
                      file=sys.stderr, flush=True)
                return 1
            if host not in ("127.0.0.1", "localhost", "::1"):
                print(f"Listening on {host}: anyone who can reach this machine and has the link "
                      "sees this client's data.")
            print("Open this link (it holds the access key; give it only to the client):")
            print(setup.url)
            print("Press Ctrl+C to stop.", flush=True)
            code = process.wait()
            return 0 if code in (0, -signal.SIGTERM, -signal.SIGINT) else 1
        except KeyboardInterrupt:
            return 0
        finally:
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            shutil.rmtree(setup.workdir, ignore_errors=True)
            print("Dashboard stopped.", flush=True)

