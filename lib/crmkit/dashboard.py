"""The client's dashboard: explore the strategy, try what-ifs, see nothing else.

A consultant hands a client a link; behind it, Voila runs ``workbooks/dashboard.ipynb`` for that
client only. This module holds both halves of that:

- **the content**, as section builders the notebook calls (:func:`header`, :func:`overview`,
  :func:`segment_explorer`, :func:`what_if`, :func:`plan`, :func:`downloads`). Each takes the
  data it needs in a :class:`DashboardData` (loaded by :func:`load` from the latest run, or
  computed on the spot from the workspace when there is none) and returns an ipywidgets widget.
  The what-if section is written against a small interface, :class:`WhatIfModel`; today an
  adapter (:class:`TableWhatIf`) computes it from the per-customer table, and
  :func:`what_if_model` is the single place where the real scenario module is wired in.
- **the serving**, :func:`serve`, behind ``crmkit dashboard``. Voila's defaults suit a developer
  serving their own notebooks on their own machine: a directory tree, any notebook rendered, the
  template chosen from the URL, images of the folder served, no token, another port taken
  silently when the one asked for is busy. A client's dashboard needs the opposite, so the
  configuration is written out here in full (:func:`voila_config`): one notebook, copied alone
  into a private folder that is Voila's root; no file served; a token; sources stripped; no
  tracebacks; the template and theme fixed on the server; Jupyter's config and runtime files in
  that private folder, so nothing is shared between two clients' dashboards.

The client is chosen by the serving process, never by the URL: :func:`serve` passes the workspace,
the run folder and the language to the kernel in environment variables (``CRMKIT_DASHBOARD_*``),
which :func:`load` reads. Voila itself only forwards widget messages from the browser to the
kernel (``comm_*``, ``kernel_info_request``, ``shutdown_request``); an ``execute_request`` sent
by a browser is dropped, so the page can run no code of its own in the kernel.

Notes on speed. A visit needs a kernel that imports pandas and plotly, reads the workspace and
builds the sections (2-3 s on two cores), then the browser loads Voila's scripts and the widgets
(2-3 s). Voila's pre-heating (:data:`POOL_SIZE` spare kernels that have run the notebook
already) takes the first part out of the wait; the next spare kernel is heated
:data:`FILL_DELAY` seconds later, once the page just served has its widgets, so that both do
not fight for the processor. Charts are set as Output widgets' state (see :func:`_show`), and
the what-if redraws HTML only, so that a move of a control is one small message each way
(``benchmarks/dashboard.py`` measures both).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import functools
import html
import importlib.util
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

from . import paths
from .i18n import Formatter, t
from .workspace import Workspace, load_workspace

#: Environment variables through which the serving process tells the kernel what to show.
ENV_CLIENT = "CRMKIT_DASHBOARD_CLIENT"
ENV_RUN = "CRMKIT_DASHBOARD_RUN"
ENV_LANGUAGE = "CRMKIT_DASHBOARD_LANGUAGE"

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

#: The mimetype plotly figures are sent in; Voila draws it with the jupyterlab-plotly extension.
PLOTLY_MIME = "application/vnd.plotly.v1+json"

#: Characters that make a spreadsheet read a cell as a formula (CSV/formula injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

#: The four figures of a what-if, each reported before and after the change.
WHAT_IF_FIGURES = ("cost", "value", "profit", "npv")

#: The fallback segments, best first (see :func:`fallback_segments`).
FALLBACK_SEGMENTS = ("loyal", "new", "occasional", "lapsed", "never_bought")
#: Purchase days from which an active customer counts as a loyal regular (fallback segments).
LOYAL_MIN_PURCHASES = 4


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
        The per-customer table (docs/data-contract.md), from the run when it has one, else from
        :func:`fallback_customer_table`, with three columns added here: ``relationship_type``
        (the type the customer spent most minutes in), ``active_window`` and
        ``active_previous`` (bought in the indicator window / the one before).
    segments : DataFrame
        One row per segment (:func:`segment_summary`), best value first.
    indicators : dict
        The context indicators (``crmkit.context.Indicators.as_dict()``).
    fallback : bool
        True when the segments are the simple on-the-spot grouping, not workbook 02's.
    stale : bool
        True when the workspace changed since the run (its checksums differ).
    relationship_names : dict
        Relationship-type key -> its name in ``lang``.
    """

    ws: Workspace
    lang: str
    fmt: Formatter
    run_dir: Path | None
    results: dict
    customers: pd.DataFrame
    segments: pd.DataFrame
    indicators: dict
    fallback: bool
    stale: bool = False
    relationship_names: dict[str, str] = field(default_factory=dict)

    @property
    def brand(self) -> dict[str, str]:
        """The client's colours, as keyword arguments of the chart functions."""
        branding = self.ws.config.branding
        return {"primary": branding.primary_color, "accent": branding.accent_color}

    def t(self, key: str, **values) -> str:
        return t(key, self.lang, **values)


def latest_run(reports_dir: str | Path, slug: str) -> Path | None:
    """The newest complete run folder of a client, or None.

    Run folders are ``REPORTS_DIR/<slug>/<timestamp>[-n]/`` (:mod:`crmkit.runner`); staging
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
        used when present.
    language : {"en", "es"}, optional
        Default: the client's language.
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
    table = None
    if run is not None:
        if (run / "results.json").is_file():
            results = json.loads((run / "results.json").read_text(encoding="utf-8"))
        if (run / "run.json").is_file():
            inputs = json.loads((run / "run.json").read_text(encoding="utf-8")).get("inputs")
            stale = bool(inputs) and inputs != ws.checksums
        parquet = run / "tables" / "customers.parquet"
        if parquet.is_file():
            table = pd.read_parquet(parquet)
    fallback = table is None or "segment" not in table
    if fallback:
        table = fallback_customer_table(ws, lang)
    customers = _with_activity(table, ws)
    indicators = (results.get("context") or {}).get("indicators") or _indicators(ws)
    names = relationship_names(lang)
    segments = segment_summary(customers, ws, names)
    return DashboardData(ws=ws, lang=lang, fmt=fmt, run_dir=run, results=results,
                         customers=customers, segments=segments, indicators=indicators,
                         fallback=fallback, stale=stale, relationship_names=names)


def _indicators(ws: Workspace) -> dict:
    from .context import indicators

    a = ws.config.assumptions
    return indicators(ws.customers, ws.transactions, ws.as_of, window_months=a.window_months,
                      lapse_days=a.lapse_days, survey=ws.survey).as_dict()


def _margin(tx: pd.DataFrame, gross_margin: float) -> pd.Series:
    """Gross margin amount per line: the margin column, else the assumed rate × amount."""
    assumed = tx["amount"] * gross_margin
    if "margin" in tx:
        return tx["margin"].astype(float).fillna(assumed)
    return assumed


def fallback_customer_table(ws: Workspace, lang: str) -> pd.DataFrame:
    """FALLBACK until workbook 02 has written ``tables/customers.parquet``: a simple table.

    The columns are those of the contract's per-customer table that need no model
    (``customer_id, segment, segment_name, recency_days, frequency, monetary, revenue_window,
    margin, margin_window, tenure_days``); segments come from :func:`fallback_segments`.
    Delete this function's use in :func:`load` once every run writes the table.
    """
    a = ws.config.assumptions
    end = pd.Timestamp(ws.as_of)
    tx = ws.transactions[ws.transactions["date"] <= end]
    tx = tx.assign(margin_amount=_margin(tx, a.gross_margin))
    start = end - pd.DateOffset(months=a.window_months)
    per = tx.groupby("customer_id", observed=True).agg(
        first=("date", "min"), last=("date", "max"), frequency=("date", "nunique"),
        monetary=("amount", "sum"), margin=("margin_amount", "sum"))
    recent = tx[tx["date"] > start].groupby("customer_id", observed=True).agg(
        revenue_window=("amount", "sum"), margin_window=("margin_amount", "sum"))
    table = pd.DataFrame({"customer_id": ws.customers["customer_id"].astype(str)})
    table = table.join(per.join(recent), on="customer_id")
    table["recency_days"] = (end - table["last"]).dt.days.astype(float)
    table["tenure_days"] = (end - table["first"]).dt.days.astype(float)
    table = table.drop(columns=["first", "last"])
    for column in ("frequency", "monetary", "margin", "revenue_window", "margin_window"):
        table[column] = table[column].fillna(0)
    table["frequency"] = table["frequency"].astype(int)
    table["segment"] = fallback_segments(table, lapse_days=a.lapse_days)
    table["segment_name"] = table["segment"].map(
        {key: t(f"dash_fallback_{key}", lang) for key in FALLBACK_SEGMENTS})
    return table.reset_index(drop=True)


def fallback_segments(table: pd.DataFrame, *, lapse_days: int) -> pd.Series:
    """FALLBACK segmentation by recency and frequency, in the spirit of the managerial map.

    Rules, in order: never bought; lapsed (no purchase for ``lapse_days``); loyal (active with
    at least :data:`LOYAL_MIN_PURCHASES` purchase days); new (first purchase within
    ``lapse_days``); occasional (every other active customer). Simple on purpose: it is shown
    only until the run's own segmentation exists, and says so on the page.
    """
    frequency = table["frequency"].fillna(0)
    recency = table["recency_days"]
    conditions = [
        frequency <= 0,
        recency > lapse_days,
        frequency >= LOYAL_MIN_PURCHASES,
        table["tenure_days"] <= lapse_days,
    ]
    choices = ["never_bought", "lapsed", "loyal", "new"]
    return pd.Series(np.select(conditions, choices, default="occasional"), index=table.index,
                     dtype=object)


def _with_activity(table: pd.DataFrame, ws: Workspace) -> pd.DataFrame:
    """Add ``relationship_type``, ``active_window`` and ``active_previous`` per customer."""
    a = ws.config.assumptions
    end = pd.Timestamp(ws.as_of)
    start = end - pd.DateOffset(months=a.window_months)
    previous = end - pd.DateOffset(months=2 * a.window_months)
    dates = ws.transactions.loc[ws.transactions["date"] <= end, ["customer_id", "date"]]
    window_ids = set(dates.loc[dates["date"] > start, "customer_id"])
    previous_ids = set(dates.loc[(dates["date"] > previous) & (dates["date"] <= start),
                                 "customer_id"])
    out = table.copy()
    out["customer_id"] = out["customer_id"].astype(str)
    out["active_window"] = out["customer_id"].isin(window_ids)
    out["active_previous"] = out["customer_id"].isin(previous_ids)
    main = pd.Series(dtype=object)
    if ws.interactions is not None and len(ws.interactions):
        minutes = (ws.interactions.groupby(["customer_id", "relationship_type"], observed=True)
                   ["minutes"].sum().reset_index())
        minutes = minutes.sort_values("minutes", ascending=False, kind="stable")
        main = minutes.drop_duplicates("customer_id").set_index("customer_id")[
            "relationship_type"]
    out["relationship_type"] = out["customer_id"].map(main)
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


def segment_summary(customers: pd.DataFrame, ws: Workspace, names: dict[str, str]
                    ) -> pd.DataFrame:
    """One row per segment: size, value, behaviour, retention, relationship and satisfaction.

    Returns
    -------
    DataFrame
        Indexed by segment key, ordered by yearly margin (best first), with ``name,
        customers, customer_share, revenue_window, margin_window, margin_share,
        margin_per_customer, recency_days`` (median), ``frequency`` (mean), ``clv`` (mean; NaN
        without the run's CLV), ``retention`` (share of the customers active in the previous
        window who bought again in this one; the base's when the segment had none),
        ``satisfied`` (share answering 4-5; NaN without survey answers) and
        ``relationship_type`` (the type with most minutes; the consultant's, else personal
        assistance, when the log shows none).
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

    # Retention measured inside segments defined by recent activity would be biased (a segment
    # of recent buyers "keeps" all of them), so the base's year-on-year retention stands in
    # unless the consultant declared the segment's or the run estimated P(alive).
    base_previous = c["active_previous"].sum()
    base_retention = ((c["active_previous"] & c["active_window"]).sum() / base_previous
                      if base_previous else 0.5)
    alive = (grouped["probability_alive"].mean() if "probability_alive" in c
             else pd.Series(np.nan, index=out.index))
    declared = {k: float(v) for k, v in _section(ws.config, "retention").items()}
    out["retention"] = [declared.get(seg, alive.get(seg) if pd.notna(alive.get(seg))
                                     else base_retention) for seg in out.index]

    out["satisfied"] = np.nan
    if ws.survey is not None and len(ws.survey):
        answers = ws.survey[["customer_id", "satisfaction"]].merge(
            c[["customer_id", "segment"]], on="customer_id")
        top_two = (answers["satisfaction"] >= 4).groupby(answers["segment"]).mean()
        out["satisfied"] = top_two.reindex(out.index)

    current = _section(ws.config, "current")
    logged = pd.Series(dtype=object)
    if ws.interactions is not None and len(ws.interactions):
        minutes = ws.interactions.merge(c[["customer_id", "segment"]], on="customer_id")
        logged = (minutes.groupby(["segment", "relationship_type"], observed=True)["minutes"]
                  .sum().reset_index().sort_values("minutes", ascending=False, kind="stable")
                  .drop_duplicates("segment").set_index("segment")["relationship_type"])
    out["relationship_type"] = [
        logged.get(seg) or (list(current.get(seg) or []) or ["personal_assistance"])[0]
        for seg in out.index]
    out["relationship_name"] = out["relationship_type"].map(names)
    out = out.sort_values("margin_window", ascending=False, kind="stable")
    out.index.name = "segment"
    return out


# --------------------------------------------------------------------------------------------
# What-if: the interface, and today's adapter
# --------------------------------------------------------------------------------------------

class WhatIfModel(Protocol):
    """What the what-if section needs from a scenario model.

    ``model(segment, relationship_type, cost_rate_change, retention_change)`` returns a dict
    with, for each figure in :data:`WHAT_IF_FIGURES` (``cost``, ``value``, ``profit``,
    ``npv``), ``<figure>_before`` and ``<figure>_after`` in the client's currency, plus
    ``retention_before`` and ``retention_after`` (yearly, 0-1). ``cost_rate_change`` is a
    relative change of the cost rates of the chosen relationship type (``-0.2`` = 20 %
    cheaper per minute); ``retention_change`` is a change of the segment's yearly retention
    in absolute points (``0.05`` = five points more). It is called on every move of a control,
    so it must answer in a few milliseconds.
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


class TableWhatIf:
    """ADAPTER — what-ifs computed from the per-customer table, until ``crmkit.scenarios``.

    For a segment of ``n`` customers with yearly gross margin ``m`` per customer, yearly cost to
    serve ``c`` per customer and yearly retention ``r``, over the next year the customers who
    stay bring ``value = r·n·m`` and cost ``cost = r·n·c``; ``profit = value − cost``; ``npv``
    sums ``rᵗ·n·(m − c) / (1 + d)ᵗ`` over the horizon's years (``discount_rate`` and
    ``horizon_months`` of client.yaml). Today's ``c`` is what the interaction log shows over the
    last year (minutes × the type's cost per minute); a segment moved to another type is costed
    at that type's catalogue volume (``minutes_per_interaction × interactions_per_year``) and
    rate. Fixed yearly costs of a type are left out: they do not move with one segment.

    Parameters
    ----------
    segments : DataFrame
        :func:`segment_summary`.
    annual_cost : dict
        Segment -> today's yearly cost to serve the whole segment.
    drivers : dict
        Relationship type -> ``{"minutes_per_customer": …, "cost_per_minute": …}``.
    names : dict
        Relationship type -> name.
    discount_rate : float
    horizon_years : int
    months : int
        Length of the window ``margin_window`` covers (scaled to a year).
    """

    def __init__(self, segments: pd.DataFrame, annual_cost: dict[str, float],
                 drivers: dict[str, dict[str, float]], names: dict[str, str], *,
                 discount_rate: float, horizon_years: int, months: int = 12):
        self._segments = segments
        self._cost = annual_cost
        self._drivers = drivers
        self._names = names
        self.discount_rate = discount_rate
        self.horizon_years = horizon_years
        self._per_year = 12 / months

    @classmethod
    def from_data(cls, data: DashboardData) -> TableWhatIf:
        """Build the adapter from a dashboard's data (drivers: catalogue + client.yaml)."""
        ws = data.ws
        a = ws.config.assumptions
        overrides = _section(ws.config, "cost_drivers")
        drivers: dict[str, dict[str, float]] = {}
        for key, entry in relationship_catalogue().items():
            values = dict(entry.get("drivers") or {})
            own = overrides.get(key) or {}
            own = own if isinstance(own, Mapping) else own.model_dump(exclude_none=True)
            values.update({k: v for k, v in own.items() if v is not None})
            drivers[key] = {
                "minutes_per_customer": float(values["minutes_per_interaction"])
                * float(values["interactions_per_year"]),
                "cost_per_minute": float(values["cost_per_minute"]),
            }
        cost = annual_cost_by_segment(data.customers, ws, data.segments, drivers)
        return cls(data.segments, cost, drivers, data.relationship_names,
                   discount_rate=a.discount_rate,
                   horizon_years=max(1, round(a.horizon_months / 12)), months=a.window_months)

    def segments(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in self._segments["name"].items()}

    def relationship_types(self) -> dict[str, str]:
        return dict(self._names)

    def current_type(self, segment: str) -> str:
        return str(self._segments.at[segment, "relationship_type"])

    def _npv(self, retention: float, per_year: float) -> float:
        d = self.discount_rate
        return sum(retention ** year * per_year / (1 + d) ** year
                   for year in range(1, self.horizon_years + 1))

    def _figures(self, n: float, margin: float, cost: float, retention: float) -> dict:
        value, spend = retention * margin, retention * cost
        return {"cost": spend, "value": value, "profit": value - spend,
                "npv": self._npv(retention, margin - cost), "retention": retention,
                "customers": n}

    def __call__(self, segment: str, relationship_type: str, cost_rate_change: float,
                 retention_change: float) -> dict[str, float]:
        row = self._segments.loc[segment]
        n = float(row["customers"])
        margin = float(row["margin_window"]) * self._per_year
        cost = float(self._cost.get(segment, 0.0))
        retention = float(row["retention"])
        if relationship_type == row["relationship_type"]:
            new_cost = cost * (1 + cost_rate_change)
        else:
            drivers = self._drivers[relationship_type]
            new_cost = (n * drivers["minutes_per_customer"] * drivers["cost_per_minute"]
                        * (1 + cost_rate_change))
        new_retention = min(max(retention + retention_change, 0.0), 1.0)
        before = self._figures(n, margin, cost, retention)
        after = self._figures(n, margin, new_cost, new_retention)
        out = {f"{k}_before": v for k, v in before.items()}
        out.update({f"{k}_after": v for k, v in after.items()})
        return out


def annual_cost_by_segment(customers: pd.DataFrame, ws: Workspace, segments: pd.DataFrame,
                           drivers: dict[str, dict[str, float]]) -> dict[str, float]:
    """Today's yearly cost to serve each segment (part of the :class:`TableWhatIf` adapter).

    Minutes logged in the last twelve months before ``as_of`` (scaled up when the log covers
    less) × the cost per minute of their type; a segment the log does not show is costed at
    its type's catalogue volume.
    """
    end = pd.Timestamp(ws.as_of)
    start = end - pd.DateOffset(months=12)
    cost: dict[str, float] = {}
    if ws.interactions is not None and len(ws.interactions):
        log = ws.interactions[(ws.interactions["date"] > start)
                              & (ws.interactions["date"] <= end)]
        covered = (end - max(start, ws.interactions["date"].min())).days
        scale = 365.0 / covered if 0 < covered < 365 else 1.0
        rate = log["relationship_type"].map(
            {k: v["cost_per_minute"] for k, v in drivers.items()}).astype(float)
        spent = (log["minutes"] * rate).groupby(log["customer_id"]).sum()
        by_segment = customers.set_index("customer_id")["segment"]
        per_segment = spent.groupby(by_segment.reindex(spent.index)).sum() * scale
        cost.update({str(k): float(v) for k, v in per_segment.items()})
    for segment, row in segments.iterrows():
        if segment not in cost:
            d = drivers.get(row["relationship_type"], {"minutes_per_customer": 0,
                                                       "cost_per_minute": 0})
            cost[segment] = float(row["customers"] * d["minutes_per_customer"]
                                  * d["cost_per_minute"])
    return cost


def what_if_model(data: DashboardData) -> WhatIfModel:
    """The scenario model behind the what-if section.

    WIRING POINT. Today: the :class:`TableWhatIf` adapter. When ``crmkit.scenarios`` is ready,
    return here an object with the :class:`WhatIfModel` interface around its
    ``ScenarioModel`` (built once per page, e.g. ``ScenarioModel.from_tables(data.customers,
    data.ws.interactions, data.ws.config)``): ``segments()`` from its ``segments``/``names``,
    ``current_type(s)`` from ``main_type(s)``, and ``__call__`` from
    ``what_if(segment, relationship_type, cost_rate_change=…, retention_change=…)``, reading
    ``<figure>_before`` / ``<figure>_after`` from the result's ``base`` / ``scenario`` for the
    segment (``npv`` being its ``net_value``). Then delete :class:`TableWhatIf` and
    :func:`annual_cost_by_segment`; nothing else in the dashboard changes.
    """
    return TableWhatIf.from_data(data)


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
.crm-phases {{ display: flex; gap: 10px; flex-wrap: wrap; }}
.crm-phase {{ flex: 1 1 150px; border-left: 4px solid var(--crm-accent); padding: 6px 12px;
             background: #fbfcfd; font-size: 14px; }}
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
    bundle = json.loads(fig.to_json(validate=False))
    bundle["config"] = {"displaylogo": False, "responsive": True}
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
    if data.fallback:
        badges.append(data.t("dash_fallback_badge"))
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

    from .charts.context import monthly_revenue
    from .context import monthly_activity

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
    from .charts import figure, label_axes, palette, safe

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


def segment_explorer(data: DashboardData):
    """A dropdown of segments; the chosen one's profile and value, against the others."""
    import ipywidgets as w

    options = [(str(name), str(key)) for key, name in data.segments["name"].items()]
    choose = w.Dropdown(options=options, value=options[0][1],
                        description=data.t("dash_segment"), style={"description_width": "auto"})
    choose.add_class("crm-segment-choice")
    profile = w.HTML(segment_profile(data, choose.value))
    chart = w.Output()
    chart.add_class("crm-chart")
    _show(chart, segment_chart(data, choose.value))

    def changed(change):
        profile.value = segment_profile(data, change["new"])
        _show(chart, segment_chart(data, change["new"]))

    choose.observe(changed, names="value")
    lead = data.t("dash_segments_lead")
    if data.fallback:
        lead += " " + data.t("dash_fallback_note", days=data.ws.config.assumptions.lapse_days,
                             purchases=LOYAL_MIN_PURCHASES)
    return _section_box([w.HTML(_title(data.t("dash_segments"), lead)), choose, profile, chart],
                        "crm-explorer")


def what_if_cards(data: DashboardData, figures: Mapping[str, float]) -> str:
    """The what-if's four figures after the change, each with its change against today."""
    fmt = data.fmt
    items = []
    for name in WHAT_IF_FIGURES:
        before, after = figures[f"{name}_before"], figures[f"{name}_after"]
        change = after - before
        # Less cost is good news; more of anything else is.
        good = change < 0 if name == "cost" else change > 0
        tone = "" if abs(change) < 0.5 else ("up" if good else "down")
        sign = "+" if change > 0.5 else ""
        items.append(card(data.t(f"dash_whatif_{name}"), fmt.money(after),
                          data.t("dash_change", change=sign + fmt.money(change),
                                 before=fmt.money(before)), tone))
    note = data.t("dash_whatif_retention", before=fmt.pct(figures["retention_before"], 1),
                  after=fmt.pct(figures["retention_after"], 1))
    return cards(items, "crm-whatif-figures") + f'<p class="crm-note">{_esc(note)}</p>'


def what_if_bars(data: DashboardData, figures: Mapping[str, float]) -> str:
    """Today against the what-if, cost, value and profit over the next year, as HTML bars.

    Drawn in HTML rather than plotly on purpose: a move of a control then costs one small
    message and no chart layout in the browser, which keeps each update well within 300 ms.
    """
    names = ("cost", "value", "profit")
    values = [abs(figures[f"{n}_{w}"]) for n in names for w in ("before", "after")]
    top = max(values) or 1.0
    rows = []
    for name in names:
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
        rows.append(f'<div class="crm-bar-group"><div class="crm-bar-title">'
                    f'{_esc(data.t(f"dash_whatif_{name}"))}</div>{"".join(bars)}</div>')
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
    today = {"note": ""}

    def evaluate() -> dict[str, float]:
        return model(segment.value, target.value, cost_rate.value, retention.value / 100)

    def redraw(_=None):
        figures = evaluate()
        figures_html.value = (today["note"] + what_if_cards(data, figures)
                              + what_if_bars(data, figures))

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
    return _section_box([w.HTML(_title(data.t("dash_whatif"), data.t("dash_whatif_lead"))),
                         controls, figures_html], "crm-whatif")


def plan(data: DashboardData):
    """The implementation timeline and returns, the budget adjustable — OPTIONAL section.

    When a ``crmkit.plan`` module exists and offers ``dashboard_section(data)`` (returning a
    widget), it is shown here; until then, the four phases of a CRM implementation are listed
    with a note that the plan comes with the plan step.
    """
    import ipywidgets as w

    if importlib.util.find_spec("crmkit.plan") is not None:
        module = importlib.import_module("crmkit.plan")
        builder = getattr(module, "dashboard_section", None)
        if callable(builder):
            return builder(data)
    phases = "".join(
        f'<div class="crm-phase"><strong>{i}. {_esc(data.t(f"dash_phase_{p}"))}</strong></div>'
        for i, p in enumerate(("analysis", "design", "strategy", "launch"), start=1))
    body = w.HTML(_title(data.t("dash_plan"), data.t("dash_plan_lead"))
                  + f'<div class="crm-phases">{phases}</div>'
                  f'<p class="crm-note">{_esc(data.t("dash_plan_pending"))}</p>')
    return _section_box([body], "crm-plan")


# --------------------------------------------------------------------------------------------
# Downloads: CSV as data: URIs, neutralised against formula injection
# --------------------------------------------------------------------------------------------

def neutralise(value: Any) -> Any:
    """Prefix a text that a spreadsheet would read as a formula with a single quote."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


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


def segments_export(data: DashboardData) -> pd.DataFrame:
    """The per-segment table as the client downloads it (headers in the client's language)."""
    seg = data.segments.reset_index()
    columns = {"segment": "dash_col_segment_key", "name": "dash_col_segment",
               "customers": "customers", "customer_share": "dash_share_customers",
               "revenue_window": "dash_col_revenue_year", "margin_window": "dash_margin_year",
               "margin_share": "dash_share_margin", "clv": "dash_clv_per_customer",
               "retention": "dash_retention", "satisfied": "ind_satisfaction_top_two_box",
               "relationship_name": "dash_relationship_today"}
    out = seg[list(columns)].rename(columns={k: data.t(v) for k, v in columns.items()})
    return out.round(4)


def customers_export(data: DashboardData) -> pd.DataFrame:
    """The per-customer table as the client downloads it."""
    c = data.customers
    columns = {"customer_id": "dash_col_customer", "segment_name": "dash_col_segment",
               "recency_days": "dash_recency", "frequency": "dash_frequency",
               "monetary": "dash_col_monetary", "revenue_window": "dash_col_revenue_year",
               "margin_window": "dash_margin_year", "clv": "dash_clv_per_customer",
               "probability_alive": "dash_col_probability_alive",
               "relationship_type": "dash_relationship_today"}
    present = [k for k in columns if k in c]
    out = c[present].copy()
    if "relationship_type" in out:
        out["relationship_type"] = out["relationship_type"].map(data.relationship_names)
    return out.rename(columns={k: data.t(columns[k]) for k in present}).round(4)


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
    return _section_box([w.HTML(_title(data.t("dash_downloads"), data.t("dash_downloads_lead"))),
                         row], "crm-downloads-section")


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


def voila_config(*, port: int, host: str, token: str, root_dir: Path, title: str = "crmkit",
                 lang: str = "en", brand: Mapping[str, str] | None = None) -> dict:
    """The Voila configuration of a client's dashboard (written as ``voila.json``).

    Every setting is a decision, so none is left to Voila's defaults or to a config file the
    machine might have. ``title``, ``lang`` and ``brand`` (``primary``, ``accent``) dress the
    page template (``templates/voila/crmkit``).
    """
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
            # /voila/files/ serves nothing at all (Voila's default serves images of root_dir).
            "file_allowlist": [],
            "file_denylist": [".*"],
            # Spare kernels run the notebook ahead of the next visits, so a page is served
            # already computed (see the module's notes on speed); refilled after each visit.
            "preheat_kernel": True,
            "default_pool_size": POOL_SIZE,
            "resources": {"crmkit": dict(brand or {}), "metadata": {"name": title}},
        },
        # <html lang="…">, so that the browser hyphenates and reads the page in its language.
        "HTMLExporter": {"language_code": lang},
        # A kernel whose page was closed without saying so (a crashed browser, a fetch that
        # never connected) is shut down after half an hour; pre-heated ones are never culled.
        "MappingKernelManager": {"cull_idle_timeout": 1800, "cull_interval": 300,
                                 "cull_connected": False},
        # Heat the next kernel only once the page just served has loaded its widgets: on a
        # small machine, heating at once (Voila waits 1 s) competes with that page for the CPU
        # and can make the browser give up waiting for the widgets' state.
        "VoilaKernelManager": {"fill_delay": FILL_DELAY},
    }


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0", "::"):
        return socket.gethostname()
    return f"[{host}]" if ":" in host else host


def prepare(ws: Workspace, *, port: int = DEFAULT_PORT, host: str = DEFAULT_HOST,
            language: str | None = None, run_dir: Path | None = None,
            token: str | None = None, workdir: Path | None = None) -> ServeSetup:
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
    shutil.copytree(TEMPLATE_DIR, share / "voila" / "templates" / TEMPLATE_NAME,
                    dirs_exist_ok=True)

    lang = language or ws.config.language
    branding = ws.config.branding
    config = voila_config(port=port, host=host, token=token, root_dir=app,
                          title=f"{ws.config.name} · CRM", lang=lang,
                          brand={"primary": branding.primary_color,
                                 "accent": branding.accent_color})
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
    })
    argv = [sys.executable, "-m", "voila", str(app / NOTEBOOK.name),
            f"--Voila.config_file_paths={config_dir}", "--no-browser"]
    url = f"http://{_url_host(host)}:{port}/?token={token}"
    return ServeSetup(argv=argv, env=env, cwd=app, url=url, token=token, workdir=workdir,
                      config=config)


def port_free(host: str, port: int) -> bool:
    """Whether ``host:port`` can be listened on now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def serve(client_dir: str | Path, *, port: int = DEFAULT_PORT, language: str | None = None,
          host: str = DEFAULT_HOST, reports_dir: str | Path | None = None) -> int:
    """Serve one client's dashboard until interrupted; return the exit code.

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

    Raises
    ------
    crmkit.problems.WorkspaceError
        The workspace is invalid (the CLI prints the problems and exits 2).
    """
    ws = load_workspace(client_dir)
    if not port_free(host, port):
        print(f"crmkit dashboard: port {port} on {host} is in use; expected a free port "
              "(choose one with --port).", file=sys.stderr)
        return 2
    run_dir = latest_run(Path(reports_dir or "reports"), ws.slug)
    setup = prepare(ws, port=port, host=host, language=language, run_dir=run_dir)
    lang = language or ws.config.language
    source = f"run {run_dir.name}" if run_dir else "the workspace (no run yet)"
    print(f"Dashboard of {ws.config.name} ({ws.slug}), in {lang}, figures from {source}.")
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"Listening on {host}: anyone who can reach this machine and has the link sees "
              "this client's data.")
    print("Open this link (it holds the access key; give it only to the client):")
    print(setup.url)
    print("Press Ctrl+C to stop.", flush=True)

    process = None
    previous = None
    with contextlib.suppress(ValueError):  # signals can only be set in the main thread
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        process = subprocess.Popen(setup.argv, env=setup.env, cwd=setup.cwd)
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
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(setup.workdir, ignore_errors=True)
        print("Dashboard stopped.", flush=True)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt

