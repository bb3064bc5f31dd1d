"""What a workbook opens with: the client's workspace, its language, and a place for results.

Each workbook starts with ``wb = open_workbook(client_dir, run_dir, language, section=…)`` and
ends with ``wb.save()``. Key figures recorded with :meth:`Workbook.record` go to
``RUN_DIR/results/<section>.json``; the runner merges them into ``results.json`` and the report
fills the prose of the workbook's markdown cells from them. A workbook opened without a run
folder (in JupyterLab, on the demo client) records in memory only.

Key tables go to the run's ``tables.xlsx`` through :meth:`Workbook.export`, which returns the
table it is given, so a cell can end with ``wb.export("xlsx_sheet_costs", Table(...))`` and still
show it.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from crmkit.core.i18n import Formatter, t
from crmkit.delivery import SECTIONS  # noqa: F401  (a workbook's section is one of these)
from crmkit.delivery.steps import Steps
from crmkit.inputs import cache as inputs_cache
from crmkit.inputs.workspace import Workspace, load_workspace

if TYPE_CHECKING:
    from crmkit.delivery.tables import Table

RESULTS_DIR = "results"


def to_jsonable(value: Any) -> Any:
    """Turn numpy, pandas and date values into plain JSON values (NaN becomes null)."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, pd.DataFrame):
        return to_jsonable(value.to_dict("records"))
    if isinstance(value, pd.Series):
        return to_jsonable(value.to_dict())
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        return None if math.isnan(float(value)) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, dt.date | pd.Timestamp):
        return value.isoformat()
    return value


class Workbook:
    """A workbook's session: workspace, language, formatter, branding and results.

    Attributes
    ----------
    ws : Workspace
    lang : str
    fmt : Formatter
    section : str
        Top-level key of this workbook in ``results.json``.
    results : dict
    """

    def __init__(self, ws: Workspace, lang: str, section: str, run_dir: Path | None):
        self.ws = ws
        self.config = ws.config
        self.lang = lang
        self.fmt = Formatter(lang, ws.config.currency)
        self.section = section
        self.run_dir = run_dir
        self.results: dict[str, Any] = {}
        self._exported = 0

    @property
    def brand(self) -> dict[str, str]:
        """Keyword arguments for chart functions: the client's colours."""
        return {"primary": self.config.branding.primary_color,
                "accent": self.config.branding.accent_color}

    def t(self, key: str, **values) -> str:
        return t(key, self.lang, **values)

    def notice(self, key: str, **values):
        """A translated note shown where the data has nothing to show (e.g. no survey)."""
        from crmkit.delivery.tables import Notice

        return Notice(self.t(key, **values))

    def record(self, **figures: Any) -> None:
        """Keep key figures for ``results.json`` and for the report's prose."""
        self.results.update(to_jsonable(figures))

    def save(self) -> None:
        """Write this workbook's results into the run folder (if there is one)."""
        if self.run_dir is None:
            return
        folder = self.run_dir / RESULTS_DIR
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.section}.json"
        path.write_text(json.dumps(self.results, indent=2, ensure_ascii=False), encoding="utf-8")

    def export(self, sheet_key: str, table: Table) -> Table:
        """Put ``table`` on a sheet of the run's ``tables.xlsx``; return it unchanged.

        With a run folder, the table's frame (only its shown columns) and its column spec are
        kept under ``RUN_DIR/exports/`` (:func:`crmkit.delivery.exports.stage_table`); the runner
        writes
        every workbook's tables into ``tables.xlsx`` after the last workbook, one sheet each, in
        the order they were exported. Without a run folder, nothing is written.

        Parameters
        ----------
        sheet_key : str
            The sheet's title as a message key (``xlsx_sheet_…`` in ``messages/plan.yaml``).
        table : crmkit.delivery.tables.Table
        """
        if self.run_dir is not None:
            from crmkit.delivery.exports import STAGED_DIR, stage_table

            self._exported += 1
            stage_table(table, self.run_dir / STAGED_DIR, sheet=sheet_key,
                        section=self.section, number=self._exported)
        return table

    def output_path(self, name: str) -> Path | None:
        """A file of this run (e.g. ``target_lists/level1.csv``), or None without a run."""
        return None if self.run_dir is None else self.run_dir / name

    @functools.cached_property
    def steps(self) -> Steps:
        """What the earlier workbooks produced (:class:`crmkit.delivery.steps.Steps`), each step
        computed once."""
        return Steps.of(self)

    def table_path(self, name: str) -> Path | None:
        """Where a per-customer table of this run goes (parquet), or None without a run."""
        return None if self.run_dir is None else self.run_dir / "tables" / f"{name}.parquet"


def open_workbook(client_dir: str | Path, run_dir: str | Path | None = None,
                  language: str | None = None, *, section: str) -> Workbook:
    """Load the client's workspace for one workbook.

    Parameters
    ----------
    client_dir : path
        The client workspace (relative paths are taken from the notebook's folder).
    run_dir : path, optional
        The run folder being written by ``crmkit run``; None when exploring.
    language : {"en", "es"}, optional
        Defaults to the client's language.
    section : str
        This workbook's key in ``results.json``.
    """
    # inside `crmkit run` the validated inputs are in the run folder: no CSV is parsed again
    ws = inputs_cache.load(client_dir, run_dir) or load_workspace(client_dir)
    lang = language or ws.config.language
    return Workbook(ws, lang, section, Path(run_dir) if run_dir else None)
