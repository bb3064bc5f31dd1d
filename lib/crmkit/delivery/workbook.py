"""What a workbook opens with: the client's workspace, its language, and a place for results.

Each workbook starts with ``wb = open_workbook(client_dir, run_dir, language, section=…)`` and
ends with ``wb.save()``. Key figures recorded with :meth:`Workbook.record` go to
``RUN_DIR/results/<section>.json``; the runner merges them into ``results.json`` and the report
fills the prose of the workbook's markdown cells from them. A workbook opened without a run
folder (in JupyterLab, on the demo client) records in memory only.

Key tables go to the run's ``tables.xlsx`` through :meth:`Workbook.export`, which returns the
table it is given, so a cell can end with ``wb.export("xlsx_sheet_costs", Table(...))`` and still
show it.

**In the consultant's JupyterLab** (``crmkit lab``) the workbooks are working copies bound to a
client through the environment (:data:`ENV_CLIENT`, :data:`ENV_LANGUAGE`), which
:func:`open_workbook` reads in place of the parameters cell's demo default; papermill's injected
parameters still win (a run always passes its ``run_dir``). The copies call
:meth:`Workbook.in_lab` once, then :meth:`Workbook.story` after each prose cell: the prose is
rendered in the chosen language with this client's figures, and rendered again each time
:meth:`Workbook.record` adds or changes a figure it uses (so a paragraph whose figures come
further down fills in when they are computed, and one whose judgement was saved from an intake
form shows the new figure).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import math
import os
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
#: The parameters cell's ``client_dir``: the bundled demo client, seen from ``workbooks/``.
DEFAULT_CLIENT_DIR = "../data/demo/retail"
#: Set by ``crmkit lab``: the client and the language its working copies are bound to.
ENV_CLIENT = "CRMKIT_CLIENT_DIR"
ENV_LANGUAGE = "CRMKIT_LANGUAGE"
#: Step results that depend on the consultant's judgements (recomputed after a save); the
#: customers' segments and the indicators depend on the data only and are kept.
#: The sessions of this kernel's lab working copies, by section: re-running a copy's first cell
#: (an intake form does, after a save) keeps its rendered prose and its binding.
_LAB_SESSIONS: dict[str, Workbook] = {}
JUDGED_STEPS = ("cost", "expectations", "gap", "economics", "model", "_proposed", "objective")


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
        self.notebook: Path | None = None
        self._stories: dict[str, Any] = {}

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
        self._refresh_stories()

    # --- the consultant's JupyterLab -------------------------------------------------------------

    def in_lab(self, notebook: str | Path) -> None:
        """Mark this session as a ``crmkit lab`` working copy (``notebook``, in the kernel's
        folder): :meth:`story` reads the prose cells from it, as last saved."""
        self.notebook = Path(notebook)
        self._stories = {}
        _LAB_SESSIONS[self.section] = self

    def prose_source(self, cell_id: str) -> str:
        """The text of markdown cell ``cell_id`` of the working copy, as last saved."""
        import nbformat

        if self.notebook is None:
            raise RuntimeError("story() needs in_lab(notebook) first")
        cells = nbformat.read(self.notebook, as_version=4).cells
        source = next((c.source for c in cells if c.get("id") == cell_id), None)
        if source is None:
            raise KeyError(f"no cell {cell_id!r} in {self.notebook}")
        return source

    def story_text(self, source: str) -> str:
        """The prose template ``source`` filled with this workbook's figures so far, as Markdown;
        a note saying what is still to come when some figure is not computed yet."""
        import jinja2

        from crmkit.delivery.report import prose_environment

        context = {self.section: self.results,
                   "client": {"name": self.config.name, "industry": self.config.industry,
                              "currency": self.config.currency}}
        try:
            return prose_environment(self.fmt).from_string(source).render(**context)
        except (jinja2.UndefinedError, TypeError, KeyError, IndexError) as exc:
            missing = str(exc).replace("'dict object' has no attribute ", "").strip()
            return "*" + self.t("story_waiting", missing=missing) + "*"

    def story(self, cell_id: str) -> None:
        """Show the prose of ``cell_id`` rendered (see :meth:`story_text`); it is redrawn in place
        whenever :meth:`record` changes the figures. The template is read when this runs: run the
        cell again after editing (and saving) the prose above it."""
        from IPython.display import Markdown, display

        source = self.prose_source(cell_id)
        text = self.story_text(source)
        self._stories[cell_id] = (source, text,
                                  display(Markdown(text), display_id=True))

    def _refresh_stories(self) -> None:
        if not self._stories:
            return
        from IPython.display import Markdown

        for cell_id, (source, shown, handle) in list(self._stories.items()):
            text = self.story_text(source)
            if text != shown and handle is not None:
                handle.update(Markdown(text))
                self._stories[cell_id] = (source, text, handle)

    def reload_config(self) -> None:
        """Read client.yaml again (after an intake form saved it) and drop the steps computed
        from the former judgements, so that what is asked next is computed from the new ones."""
        from crmkit.settings.client import CONFIG_FILE, load_config

        config = load_config(self.ws.path)
        self.ws.checksums[CONFIG_FILE] = hashlib.sha256(
            (Path(self.ws.path) / CONFIG_FILE).read_bytes()).hexdigest()
        self.ws.config = config
        self.config = config
        self.fmt = Formatter(self.lang, config.currency)
        steps = self.__dict__.get("steps")
        if steps is not None:
            for name in JUDGED_STEPS:
                steps.__dict__.pop(name, None)

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
        The client workspace (relative paths are taken from the notebook's folder). The demo
        default of the parameters cell (:data:`DEFAULT_CLIENT_DIR`) gives way to
        :data:`ENV_CLIENT` when ``crmkit lab`` set it and there is no run folder.
    run_dir : path, optional
        The run folder being written by ``crmkit run``; None when exploring.
    language : {"en", "es"}, optional
        Defaults to the client's language.
    section : str
        This workbook's key in ``results.json``.
    """
    if run_dir is None:  # exploring: crmkit lab's binding replaces the demo default
        if str(client_dir) == DEFAULT_CLIENT_DIR and os.environ.get(ENV_CLIENT):
            client_dir = os.environ[ENV_CLIENT]
        if language is None and os.environ.get(ENV_LANGUAGE):
            language = os.environ[ENV_LANGUAGE]
        session = _LAB_SESSIONS.get(section)
        if (session is not None and Path(client_dir).resolve() == Path(session.ws.path).resolve()
                and (language or session.ws.config.language) == session.lang):
            session.reload_config()
            return session
    # inside `crmkit run` the validated inputs are in the run folder: no CSV is parsed again
    ws = inputs_cache.load(client_dir, run_dir) or load_workspace(client_dir)
    lang = language or ws.config.language
    return Workbook(ws, lang, section, Path(run_dir) if run_dir else None)
