"""What the earlier workbooks produced, computed once, for the later workbooks and the dashboard.

The chain customers → cost to serve → per-segment economics → scenario model → plan inputs is
written here and nowhere else. Workbooks 03-05 and the dashboard take it from :class:`Steps`
(``wb.steps`` in a workbook), so a figure of chapter 4 and the same figure in the dashboard come
from the same call on the same inputs.

Each step is computed the first time it is asked for and kept on the object (one object per
workbook kernel, per dashboard page); two workbooks of one run that ``crmkit run`` runs one
after the other in one kernel (03 then 04) share the object (:meth:`Steps.of`), so 04 does not
compute again the cost to serve 03 computed. Across kernels, the per-customer table of
workbook 02 is shared through the run folder (``tables/customers.parquet``) and the validated
inputs through ``inputs/`` (:mod:`crmkit.inputs.cache`), so no kernel re-segments or re-parses
the CSV files. Workbook 01's indicators, which the objective of every later chapter rests on,
are kept in ``tables/indicators.json`` by the first workbook of the run that computes them: the
other kernels read them instead of counting ten million lines again, and workbooks 03 and 04
never load the transactions.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from crmkit.analysis import context
from crmkit.core.i18n import Formatter
from crmkit.inputs import cache as inputs_cache
from crmkit.inputs.workspace import Workspace
from crmkit.relationships import cost_benefit, cost_to_serve, inventory, questions, scenarios
from crmkit.settings.client import ClientConfig

__all__ = ["INDICATORS", "Steps", "forget"]

#: Where a run keeps workbook 01's indicators for the later workbooks (:attr:`Steps.indicators`).
INDICATORS = "tables/indicators.json"


@dataclass
class Steps:
    """The earlier steps of one client's strategy, each computed once on first use.

    Parameters
    ----------
    ws : Workspace
    lang : {"en", "es"}
    run_dir : Path, optional
        The run folder; its ``tables/customers.parquet`` is used when workbook 02 wrote it.

    Attributes
    ----------
    customers : DataFrame
        The per-customer table of workbook 02 (segment, RFM scores, value).
    cost : crmkit.relationships.cost_to_serve.CostToServe
        Workbook 03's cost to serve.
    expectations : crmkit.relationships.inventory.Expectations
    gap : crmkit.relationships.questions.Gap
    economics : DataFrame
        Workbook 04's economics and verdict per segment.
    model : crmkit.relationships.scenarios.ScenarioModel
    scenarios, suggested : list, bool
        The scenarios workbook 04 compares (client.yaml's, else suggested ones) and whether they
        were suggested.
    indicators, objective
        Workbook 01's indicators and recommended objective.
    """

    ws: Workspace
    lang: str
    run_dir: Path | None = None

    @classmethod
    def of(cls, wb: Any) -> Steps:
        """The steps of a :class:`crmkit.delivery.workbook.Workbook`.

        In a run, the steps of the workbook this kernel ran before, when it was the same run on
        the very same input frames (:func:`crmkit.inputs.cache.load` kept them), in the same
        language and with the same settings: what it computed holds for this one too.
        """
        global _kept
        last = _kept
        if (wb.run_dir is not None and last is not None and last.run_dir == wb.run_dir
                and last.lang == wb.lang and inputs_cache.same_tables(last.ws, wb.ws)
                and last.config == wb.config):
            return last
        steps = cls(wb.ws, wb.lang, wb.run_dir)
        _kept = steps if wb.run_dir is not None else None
        return steps

    @property
    def config(self) -> ClientConfig:
        return self.ws.config

    @property
    def fmt(self) -> Formatter:
        return Formatter(self.lang, self.config.currency)

    @cached_property
    def customers(self) -> pd.DataFrame:
        path = None if self.run_dir is None else Path(self.run_dir) / "tables" / "customers.parquet"
        if path is not None and path.is_file():
            table = pd.read_parquet(path)
            if "segment" in table:
                return table
        # imported only here: segmenting pulls in scikit-learn and the value models (about a
        # second of imports) that a run with the table already written does not need
        from crmkit.analysis.segmentation import ordered_segments, segment_customers

        # the map's order, as the table workbook 02 writes (segmentation.save_table)
        seg = segment_customers(self.ws, self.lang, self.config)
        return ordered_segments(seg.table, seg.names)

    @cached_property
    def cost(self) -> Any:
        return cost_to_serve.compute(self.customers, self.ws.interactions, self.config)

    @cached_property
    def expectations(self) -> Any:
        return inventory.expectations(self.customers, self.ws.survey, self.config)

    @cached_property
    def gap(self) -> Any:
        return questions.gap(self.cost, self.expectations)

    @cached_property
    def economics(self) -> pd.DataFrame:
        # The verdicts serve the objective of workbook 01 (client.yaml's, else the recommended).
        return cost_benefit.per_segment(self.customers, self.cost, self.config,
                                        objective=self.objective.chosen)

    @cached_property
    def model(self) -> Any:
        return scenarios.ScenarioModel.from_cost(self.customers, self.cost, self.config)

    @cached_property
    def _proposed(self) -> tuple[list, bool]:
        return scenarios.proposed(self.config, self.model, self.economics, self.lang)

    @property
    def scenarios(self) -> list:
        return self._proposed[0]

    @property
    def suggested(self) -> bool:
        return self._proposed[1]

    @cached_property
    def indicators(self) -> Any:
        a = self.config.assumptions
        over = {"as_of": self.ws.as_of.isoformat(), "window_months": a.window_months,
                "lapse_days": a.lapse_days}
        kept = None if self.run_dir is None else Path(self.run_dir) / INDICATORS
        if kept is not None and kept.is_file():
            saved = json.loads(kept.read_text(encoding="utf-8"))
            if saved["over"] == over:  # the same window of the same inputs
                return context.Indicators.from_dict(saved["indicators"])
        found = context.indicators(self.ws.customers, self.ws.occasion_lines, self.ws.as_of,
                                   window_months=a.window_months, lapse_days=a.lapse_days,
                                   survey=self.ws.survey)
        if kept is not None and not (Path(self.run_dir) / "run.json").exists():
            # a run being made (a finished one, with its run.json, is never written to)
            kept.parent.mkdir(parents=True, exist_ok=True)
            staged = kept.with_name(f".{kept.name}.{os.getpid()}")
            staged.write_text(json.dumps({"over": over, "indicators": found.as_dict()},
                                         allow_nan=True), encoding="utf-8")  # NaN stays NaN
            os.replace(staged, kept)  # whole or not at all, whichever kernel writes it first
        return found

    @cached_property
    def objective(self) -> Any:
        return context.recommend_objective(self.config, self.indicators, self.lang, self.fmt)


#: The steps of the run's last workbook in this kernel (:meth:`Steps.of`).
_kept: Steps | None = None


def forget() -> None:
    """Drop what this kernel keeps for the next workbook of the run: its steps and inputs."""
    global _kept
    _kept = None
    inputs_cache.forget()
