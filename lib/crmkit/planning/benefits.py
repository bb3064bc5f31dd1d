"""The plan's benefits: typed in client.yaml or from the scenarios of workbook 04, ramped up
after go-live (:func:`benefit_schedule`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from crmkit.core.i18n import t

if TYPE_CHECKING:  # annotations only: config imports this module for CrmProject
    pass
from crmkit.planning.schedule import Benefit, Plan, _month_of

# --------------------------------------------------------------------------------------------
# Benefits
# --------------------------------------------------------------------------------------------

def ramp(months: int, ramp_months: int) -> np.ndarray:
    """The linear ramp-up: share of the full benefit in each of ``months`` months."""
    k = np.arange(months, dtype=float)
    if ramp_months <= 0:
        return np.ones(months)
    return np.minimum((k + 1) / ramp_months, 1.0)


def benefit_schedule(plan: Plan, benefits: Sequence[Benefit] | None = None, *,
                     ramp_factor: float = 1.0) -> pd.DataFrame:
    """Benefits per month (rows ``0 … horizon−1``) and source (columns, the benefits' names).

    Parameters
    ----------
    plan : Plan
    benefits : list of Benefit, optional
        Default: the ``crm_project.benefits.items`` of client.yaml (none: an empty frame with
        zero rows' worth of columns).
    ramp_factor : float
        Multiplies every ramp length (rounded to whole months); used by the sensitivity analysis.
    """
    benefits = plan.default_benefits if benefits is None else list(benefits)
    out = pd.DataFrame(index=pd.RangeIndex(plan.horizon_months, name="month"))
    for benefit in benefits:
        ramp_months = plan.benefit_ramp_months if benefit.ramp_months is None \
            else benefit.ramp_months
        ramp_months = int(round(ramp_months * ramp_factor))
        first = _month_of(plan, benefit.start)
        values = np.zeros(plan.horizon_months)
        if first < plan.horizon_months:
            values[first:] = benefit.yearly_amount / 12.0 * ramp(plan.horizon_months - first,
                                                                 ramp_months)
        name, n = benefit.name, 2
        while name in out:
            name, n = f"{benefit.name} ({n})", n + 1
        out[name] = values
    return out


# --------------------------------------------------------------------------------------------
# Benefits from the scenarios of workbook 04
# --------------------------------------------------------------------------------------------

#: Columns of :func:`scenario_benefits` for a Table.
BENEFIT_COLUMNS = {"name": ("plan_col_benefit_source", "text"),
                   "origin_name": ("plan_col_benefit_origin", "text"),
                   "cost_change": ("plan_col_cost_to_serve_change", "money"),
                   "profit_change": ("plan_col_profit_change", "money"),
                   "retention_effect": ("plan_col_retention_effect", "money"),
                   "yearly_benefit": ("plan_col_yearly_benefit", "money"),
                   "counted_name": ("plan_col_counted", "text")}


def _change_key(change: Any) -> str:
    dump = change.model_dump(mode="json") if hasattr(change, "model_dump") else change
    return repr(sorted(dump.items())) if isinstance(dump, Mapping) else repr(dump)


def _covered(scenarios: Sequence[Any]) -> list[bool]:
    """For each scenario, whether all its changes are in scenarios with fewer changes.

    Such a scenario — workbook 04's "all the suggestions together" — repeats the others, and
    counting it too would count its benefits twice.
    """
    keys = [[_change_key(c) for c in s.changes] for s in scenarios]
    out = []
    for i, own in enumerate(keys):
        smaller: set[str] = set()
        for j, other in enumerate(keys):
            if j != i and len(other) < len(own):
                smaller.update(other)
        out.append(bool(own) and all(k in smaller for k in own))
    return out


def scenario_benefits(model: Any, scenarios: Sequence[Any], *, plan: Plan | None = None,
                      lang: str | None = None) -> pd.DataFrame:
    """The yearly benefit of each scenario of workbook 04, ready to become a :class:`Benefit`.

    A scenario (:class:`crmkit.relationships.scenarios.Scenario`) is evaluated on the
    :class:`crmkit.relationships.scenarios.ScenarioModel` of the same customers. Its **yearly
    benefit** is the
    change in the yearly profit after serving costs, corrected for how long the customers stay:

    ``Σ_s profit′_s × L′_s / L_s − profit_s``

    per segment ``s``, where ``profit`` is the yearly gross margin minus the cost to serve (today
    and in the scenario, ′), and ``L = Σ_{t<H} (r / (1 + d))^t`` is the discounted number of
    years a customer stays over the horizon at the segment's yearly retention ``r`` (today) or
    ``r′`` (scenario), with the model's discount rate ``d`` and horizon ``H``
    (:func:`crmkit.relationships.cost_benefit.lifetime_factor`). So:

    - ``profit_change`` (``Σ profit′ − profit``) is what the scenario saves or earns a year at
      today's customer numbers: a cheaper relationship, a margin change;
    - ``retention_effect`` (``Σ profit′ × (L′/L − 1)``) is the yearly equivalent of customers
      staying longer (or leaving sooner): a segment's profit a year over the horizon is
      proportional to ``L``. A retention change on a segment that loses money per customer
      lowers the benefit, as it does the net value of workbook 04;
    - a discount-rate change of the scenario is a way of valuing, not a cash flow: ``L′`` is
      taken at the model's own rate.

    Scenarios are taken as all implemented together, each a benefit of its own; a scenario all
    of whose changes belong to scenarios with fewer changes (workbook 04's "all the suggestions
    together") is listed but not counted (``counted`` False), so nothing counts twice.

    Parameters
    ----------
    model : crmkit.relationships.scenarios.ScenarioModel
    scenarios : list of Scenario or mappings
        The ones workbook 04 compares (:func:`crmkit.relationships.scenarios.proposed`).
    plan : Plan, optional
        When given, the benefits typed in ``crm_project.benefits.items`` are added as rows of
        their own (``origin`` ``client.yaml``; they are counted on top of the scenarios).
    lang : {"en", "es"}, optional
        Adds ``origin_name`` and ``counted_name`` as text.

    Returns
    -------
    DataFrame
        One row per benefit: ``name``, ``note``, ``origin`` (``scenario`` or ``client.yaml``),
        ``cost_change`` (yearly cost to serve), ``profit_change``, ``retention_effect``,
        ``yearly_benefit``, ``counted``, ``ramp_months`` (None: the plan's default) and
        ``start``. Scenario figures are NaN on client.yaml rows except ``yearly_benefit``.
    """
    from crmkit.relationships.cost_benefit import lifetime_factor
    from crmkit.relationships.scenarios import _scenario

    specs = [_scenario(s) for s in scenarios]
    counted = [not c for c in _covered(specs)]
    rows = []
    for spec, keep in zip(specs, counted, strict=True):
        result = model.evaluate(spec)
        base, new = result.base, result.scenario
        before = lifetime_factor(base["retention"], model.discount_rate, model.horizon_years)
        after = lifetime_factor(new["retention"], model.discount_rate, model.horizon_years)
        profit_change = float((new["profit"] - base["profit"]).sum())
        retention_effect = float((new["profit"] * (after / before - 1.0)).sum())
        rows.append({"name": spec.name, "note": spec.note, "origin": "scenario",
                     "cost_change": float((new["cost"] - base["cost"]).sum()),
                     "profit_change": profit_change, "retention_effect": retention_effect,
                     "yearly_benefit": profit_change + retention_effect, "counted": keep,
                     "ramp_months": None, "start": "launch"})
    for item in (plan.default_benefits if plan is not None else []):
        rows.append({"name": item.name, "note": "", "origin": "client.yaml",
                     "cost_change": np.nan, "profit_change": np.nan,
                     "retention_effect": np.nan, "yearly_benefit": float(item.yearly_amount),
                     "counted": True, "ramp_months": item.ramp_months, "start": item.start})
    frame = pd.DataFrame(rows, columns=["name", "note", "origin", "cost_change",
                                        "profit_change", "retention_effect", "yearly_benefit",
                                        "counted", "ramp_months", "start"])
    frame["counted"] = frame["counted"].astype(bool)
    frame["ramp_months"] = frame["ramp_months"].astype(object)
    if lang is not None:
        frame["origin_name"] = [t(f"plan_benefit_origin_{o.replace('.yaml', '')}", lang)
                                for o in frame["origin"]]
        frame["counted_name"] = [t("plan_counted_yes" if c else "plan_counted_no", lang)
                                 for c in frame["counted"]]
    return frame


def benefits_from_scenarios(model: Any, scenarios: Sequence[Any], *,
                            plan: Plan | None = None) -> list[Benefit]:
    """The :class:`Benefit` of each counted scenario (and client.yaml item): the cash-flow input.

    ``benefits_from_scenarios(model, proposed, plan=plan)`` is what
    :func:`crmkit.planning.finance.cash_flows` takes; the figures and the rule that skips a repeated
    scenario are those of :func:`scenario_benefits`. Each benefit ramps up from go-live over the
    plan's ``benefits.ramp_months`` (client.yaml items keep their own ramp and start).
    """
    frame = scenario_benefits(model, scenarios, plan=plan)
    out = []
    for row in frame[frame["counted"]].itertuples(index=False):
        ramp_months = None if row.ramp_months is None or pd.isna(row.ramp_months) \
            else int(row.ramp_months)
        out.append(Benefit(str(row.name), float(row.yearly_benefit), ramp_months, row.start))
    return out


def benefit_figures(frame: pd.DataFrame, plan: Plan | None = None, *,
                    suggested: bool = False) -> dict:
    """Key figures of :func:`scenario_benefits` for ``results.json`` and the prose.

    ``yearly_total`` (the counted benefits a year, fully ramped up), ``scenarios`` (scenario
    rows), ``counted`` and ``not_counted`` (rows), ``client_items`` (client.yaml rows),
    ``negative`` (names of counted benefits below zero), ``largest`` (the counted benefit with the
    largest yearly amount: ``name``, ``yearly_benefit``; None without one), ``ramp_months`` (the
    plan's default ramp-up) and ``suggested`` (as given: the scenarios were suggested by
    workbook 04's verdicts).
    """
    counted = frame[frame["counted"]]
    largest = None if counted.empty else counted.loc[counted["yearly_benefit"].idxmax()]
    return {"yearly_total": float(counted["yearly_benefit"].sum()),
            "scenarios": int((frame["origin"] == "scenario").sum()),
            "counted": int(len(counted)), "not_counted": int((~frame["counted"]).sum()),
            "client_items": int((frame["origin"] == "client.yaml").sum()),
            "negative": [str(n) for n in counted.loc[counted["yearly_benefit"] < 0, "name"]],
            "largest": None if largest is None else {
                "name": str(largest["name"]), "yearly_benefit": float(largest["yearly_benefit"])},
            "ramp_months": int(plan.benefit_ramp_months) if plan is not None else None,
            "suggested": bool(suggested)}
