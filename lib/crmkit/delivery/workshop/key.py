"""The answer key: the figures each exercise expects, computed by crmkit on the case.

Nothing here is typed in: every expected value is what crmkit's own steps give on the case
workspace (the same calls the consultant's workbooks make: :class:`crmkit.delivery.steps.Steps`,
:func:`crmkit.analysis.profiles.average_customer_gap`, :func:`crmkit.planning.plan.business_case`).
Next to each expected value the key keeps the figures of the usual mistakes (a repeat rate counted
on purchases, an average taken over orders), so that a check can name the mistake in words
without ever showing the right figure.

The key is computed in two places that never meet: inside a participant's kernel, on the
participant's copy of the case, for the self-checks (a participant who has crmkit and the case can
compute it anyway); and in the trainer's grading process, on the pack's own copy of the case,
for the grade (:mod:`crmkit.delivery.workshop.grading`). A participant who edits the case in
their folder changes only their own feedback, never their grade.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pandas as pd

from crmkit.analysis import profiles
from crmkit.delivery.steps import Steps
from crmkit.delivery.workbook import to_jsonable
from crmkit.inputs.workspace import Workspace, load_workspace
from crmkit.settings.project import CATEGORY_GROUP, PHASES

__all__ = ["Case", "case_key", "exercise_key"]


class Case:
    """One case workspace for the workshop: its data and crmkit's steps on it, computed once.

    Parameters
    ----------
    case_dir : path
        The case workspace (a client workspace).
    lang : {"en", "es"}
    """

    def __init__(self, case_dir: str | Path, lang: str = "en"):
        self.dir = Path(case_dir)
        self.lang = lang

    @functools.cached_property
    def ws(self) -> Workspace:
        return load_workspace(self.dir)

    @functools.cached_property
    def steps(self) -> Steps:
        return Steps(self.ws, self.lang)

    @property
    def customers(self) -> pd.DataFrame:
        """crmkit's per-customer table (segment, RFM scores, value), as workbook 02 makes it."""
        return self.steps.customers

    @functools.cached_property
    def business_case(self) -> Any:
        """Workbook 05's plan and business case on this case."""
        from crmkit.planning import plan

        s, ws = self.steps, self.ws
        project = plan.build(ws.config, plan.Scale.from_workspace(ws), as_of=ws.as_of)
        case = plan.business_case(project, s.customers, s.cost, ws.config, s.fmt,
                                  scenario_model=s.model, scenarios=s.scenarios,
                                  objective=s.objective.chosen, transactions=ws.transactions,
                                  attributes=ws.customers, as_of=ws.as_of,
                                  suggested=s.suggested)
        return project, case

    def focus_segment(self) -> str:
        """The segment exercise 03 looks at: the one with the most customers."""
        return str(self.customers["segment"].astype(str).value_counts().idxmax())


def _context(case: Case) -> dict:
    ind = case.steps.indicators
    tx = case.ws.transactions
    objective = case.steps.objective
    # the mistakes: purchases instead of customers; rows instead of purchase occasions (days)
    occasions = tx.groupby(["customer_id", tx["date"].dt.normalize()], observed=True).size()
    n_occasions = len(occasions)
    buyers = tx["customer_id"].nunique()
    rows_per_customer = tx.groupby("customer_id", observed=True).size()
    supports = {}
    for row in objective.evidence.to_dict("records"):
        for goal in ("attract", "retain", "grow"):
            if row.get(goal, 0) and row[goal] > 0:
                supports.setdefault(goal, []).append(str(row["key"]))
    return {
        "window_months": ind.window_months,
        "active_customers": ind.active_customers,
        "all_customers": int(buyers),
        "repeat_rate": ind.repeat_rate,
        "repeat_rate_purchases": 1 - buyers / n_occasions if n_occasions else None,
        "repeat_rate_rows": float((rows_per_customer >= 2).mean()) if buyers else None,
        "evidence_keys": [str(k) for k in objective.evidence["key"]],
        "supports": supports,
        "recommended": objective.recommended,
    }


def _segments(case: Case) -> dict:
    ws = case.ws
    gap = profiles.average_customer_gap(ws.transactions, ws.as_of).as_dict()
    spend = gap["measures"]["spend"]
    tx = ws.transactions
    amounts = tx["amount"].sort_values(ascending=False)
    top = max(1, int(round(0.2 * len(amounts))))
    customers = case.customers.assign(segment=lambda f: f["segment"].astype(str))
    by_revenue = customers.groupby("segment", observed=True)["revenue_window"].sum()
    return {
        "mean_spend": spend["mean"],
        "mean_order": float(tx["amount"].mean()),
        "share_near_average": spend["within_band"],
        "share_below_average": spend["below_mean"],
        "top20_revenue_share": gap["top20_revenue_share"],
        "top20_transactions_share": float(amounts.iloc[:top].sum() / amounts.sum()),
        "leading_segment": str(by_revenue.idxmax()),
        "largest_segment": str(customers["segment"].value_counts().idxmax()),
        "segments": sorted(customers["segment"].unique().tolist()),
    }


def _relationships(case: Case) -> dict:
    focus = case.focus_segment()
    segments = case.steps.cost.segments.assign(segment=lambda f: f["segment"].astype(str))
    row = segments.set_index("segment").loc[focus]
    current = case.ws.config.relationships.current.get(focus, []) if hasattr(
        case.ws.config.relationships, "current") else []
    return {
        "segment": focus,
        "cost_per_customer": float(row["cost_per_customer"]),
        "variable_cost_per_customer": float(row["variable_cost_per_customer"]),
        "expected_relationship": case.steps.expectations.expected_type(focus),
        "current_relationships": [str(c) for c in (current or [])],
    }


def _cost_benefit(case: Case) -> dict:
    e = case.steps.economics.assign(segment=lambda f: f["segment"].astype(str))
    margin = float(e["margin"].sum())
    return {
        "cost_share_of_margin": float(e["variable_cost"].sum()) / margin if margin > 0 else None,
        "cost_share_with_fixed": float(e["cost_to_serve"].sum()) / margin if margin > 0 else None,
        "cost_share_of_revenue": (float(e["variable_cost"].sum()) / float(e["revenue"].sum())
                                  if float(e["revenue"].sum()) > 0 else None),
        "unprofitable_segments": sorted(e.loc[e["profit"] < 0, "segment"].tolist()),
        "verdicts": dict(zip(e["segment"], e["verdict"].astype(str), strict=True)),
        "objective": case.steps.objective.chosen,
    }


def _implementation(case: Case) -> dict:
    _, business = case.business_case
    return {
        "phases": list(PHASES),
        "human_costs": sorted(c for c, g in CATEGORY_GROUP.items() if g == "human"),
        "project_costs": sorted(c for c, g in CATEGORY_GROUP.items() if g != "human"),
        "npv": float(business.returns.npv),
        "decision": business.decision.decision,
    }


#: Exercise number -> the function computing its part of the key.
PARTS = {"01": _context, "02": _segments, "03": _relationships, "04": _cost_benefit,
         "05": _implementation}


def exercise_key(case: Case, exercise: str) -> dict:
    """The expected values (and the usual mistakes' values) of one exercise on one case.

    Parameters
    ----------
    case : Case
    exercise : {"01", "02", "03", "04", "05"}

    Returns
    -------
    dict
        Plain JSON values.
    """
    return to_jsonable(PARTS[exercise](case))


def case_key(case_dir: str | Path, exercises: list[str] | None = None, lang: str = "en") -> dict:
    """The key of several exercises on one case: ``{exercise: {name: value}}``."""
    case = Case(case_dir, lang)
    return {n: exercise_key(case, n) for n in (exercises or list(PARTS))}
