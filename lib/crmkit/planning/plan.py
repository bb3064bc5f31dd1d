"""The CRM implementation plan: phases, costs, readiness, risks and which components come first.

CRM is people + process + technology, and its implementation runs analysis → design →
implementation strategy → launch. This module turns the ``crm_project:`` section of
``client.yaml`` (:class:`CrmProject`) into a plan a client can read and a consultant can defend:

- **phases** with durations (months or weeks) and finish-to-start dependencies, scheduled from a
  project start date (default: the first day of the month after ``as_of``) — :func:`build`,
  :func:`phase_table`;
- **costs** by category — analysis, design, hardware, software, maintenance, project management,
  training — and the human ones the CRM texts insist on: process re-engineering, learning new
  skills, process administration, and the temporary drop in efficiency while people learn
  (:class:`EfficiencyDip`). Every cost has a one-off amount and/or a recurring (monthly or yearly)
  amount, and a phase or month it falls in; :func:`monthly_costs`, :func:`costs_by_year` and
  :func:`tco` (total cost of ownership per project year) add them up;
- **benefits** (:class:`Benefit`): yearly amounts per source, taken from the scenarios of
  workbook 04 (:func:`scenario_benefits`, :func:`benefits_from_scenarios`: the change in yearly
  profit after serving costs, corrected for retention) and from ``crm_project.benefits.items``,
  ramping up linearly after go-live (:func:`benefit_schedule`); the returns on them are computed
  by :mod:`crmkit.planning.finance`. :class:`crmkit.delivery.steps.Steps` gives what the plan
  takes from workbooks 01-04 (objective, relationship gap, scenarios);
- **readiness** of people, process and technology (:func:`readiness`), a **risk register**
  (:func:`risk_register`) and the **CRM component to build first** (:func:`components_first`);
- :func:`summary_dict`, the ``implementation`` section of ``results.json``.

Defaults when ``crm_project: {}`` is empty (every one is shown to the client as an assumption):

- phases: analysis 2 months, design 2, implementation strategy 3, launch 1, each after the one
  before; go-live is the start of the launch phase (rounded up to a whole month);
- costs scale with the client's **yearly revenue** R (the last ``window_months`` of transactions,
  annualised, or ``crm_project.reference_revenue``), because amounts must be in the client's own
  currency and a CRM budget grows with the business it serves. One-off: analysis 1.0 % of R,
  design 1.0 %, hardware 0.5 %, software 1.5 % (licences, set-up), project management 0.8 %
  (spread over the whole project), training 0.7 %, process re-engineering 0.8 %, learning new
  skills 0.5 %; recurring from go-live: software 1.0 % of R a year (subscription), maintenance
  0.5 %, process administration 0.5 %. Each default is rounded to two significant figures: it is
  an estimate, not a quote. With these shares a default plan costs about 6.8 % of a year's
  revenue up front and 2 % a year to run;
- efficiency dip: 15 % of the affected staff's cost in the first month after go-live, recovering
  linearly over 3 months; the affected staff cost defaults to 12 % of R a year;
- evaluation horizon: ``assumptions.horizon_months`` after go-live (the CLV horizon), discounted
  at ``assumptions.discount_rate``; benefits ramp up over 6 months;
- readiness: people ← ``context.internal.people``, process ← ``operational``, technology ←
  ``technological``.

The rules are hand-written, short and visible on purpose: the client must be able to follow every
figure back to a line of ``client.yaml`` or to one of the shares above; a fitted model or a vendor
calculator would not allow that.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from crmkit.planning.benefits import *  # noqa: F403
from crmkit.planning.benefits import BENEFIT_COLUMNS, Benefit, benefit_schedule  # noqa: F401
from crmkit.planning.components import *  # noqa: F403
from crmkit.planning.components import ComponentChoice
from crmkit.planning.costs import *  # noqa: F403
from crmkit.planning.costs import costs_by_year, tco
from crmkit.planning.readiness import *  # noqa: F403
from crmkit.planning.schedule import *  # noqa: F403
from crmkit.planning.schedule import Plan, _nice  # noqa: F401
from crmkit.settings.project import (  # noqa: F401  (the plan's public names)
    _KEY,
    CATEGORIES,
    CATEGORY_GROUP,
    COMPONENTS,
    COST_CATEGORIES,
    DEFAULT_COST_SHARES,
    DEFAULT_PHASE_MONTHS,
    DEFAULT_RISKS,
    DEFAULT_STAFF_COST_SHARE,
    HUMAN_CATEGORIES,
    MONTHS_PER_WEEK,
    PHASES,
    READINESS,
    READINESS_SOURCE,
    AutomationSettings,
    BenefitItem,
    BenefitSettings,
    CostCategory,
    CostItem,
    CrmProject,
    EfficiencyDip,
    ExtraCost,
    MessageText,
    OfferSettings,
    PhaseSettings,
    ReadinessScore,
    ReadinessSettings,
    RiskSettings,
    _schedule_order,
    project_settings,
)


def _num(value: Any, digits: int = 2) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else round(value, digits)


def summary_dict(plan: Plan, returns: Any = None,
                 readiness_frame: pd.DataFrame | None = None,
                 risks: pd.DataFrame | None = None, *,
                 components: ComponentChoice | None = None, top_risks: int = 5) -> dict:
    """The ``implementation`` section of ``results.json``: plain, JSON-able figures.

    Parameters
    ----------
    plan : Plan
    returns : finance.Returns, optional
        From :func:`crmkit.planning.finance.returns` / :func:`crmkit.planning.finance.evaluate`.
    readiness_frame : DataFrame, optional
        From :func:`readiness`.
    risks : DataFrame, optional
        From :func:`risk_register`; the ``top_risks`` highest scores are kept.
    components : ComponentChoice, optional

    Returns
    -------
    dict
        ``start_date``, ``go_live_date``, ``go_live_month``, ``end_date`` (ISO dates),
        ``project_months``, ``horizon_months``, ``discount_rate``, ``reference_revenue``,
        ``phases`` (list of {phase, label, start, finish, months, depends_on}), ``total_cost``,
        ``one_off_cost``, ``recurring_cost``, ``human_cost``, ``human_share`` (of the total;
        None without costs), ``efficiency_dip_cost``,
        ``costs_by_category`` ({category: total}), ``tco_per_year`` (list of {year, months,
        total}); with ``returns``: ``npv``, ``irr_monthly``, ``irr_yearly``, ``payback_month``,
        ``payback_date``, ``payback_months_after_launch``, ``break_even_month``,
        ``total_benefits``, ``net_cash_flow``; with ``readiness_frame``: ``readiness``
        ({dimension: score}) and ``readiness_index``; with ``risks``: ``top_risks`` (list of
        {risk_key, risk, likelihood, impact, score, level}); with ``components``:
        ``components``. Missing figures are None.
    """
    costs = plan.costs
    by_kind = costs.groupby("kind")["amount"].sum()
    out: dict[str, Any] = {
        "start_date": plan.start_date.isoformat(),
        "go_live_date": plan.go_live_date.isoformat(),
        "go_live_month": int(plan.go_live_month),
        "end_date": plan.end_date.isoformat(),
        "project_months": _num(plan.project_months),
        "horizon_months": int(plan.horizon_months),
        "discount_rate": _num(plan.discount_rate, 6),
        "reference_revenue": _num(plan.reference_revenue),
        "phases": [{"phase": r.phase, "label": r.label, "start": r.start.isoformat(),
                    "finish": r.finish.isoformat(), "months": _num(r.months, 3),
                    "depends_on": list(r.depends_on)} for r in plan.phases.itertuples()],
        "total_cost": _num(costs["amount"].sum()),
        "one_off_cost": _num(by_kind.get("one_off", 0.0)),
        "recurring_cost": _num(by_kind.get("recurring", 0.0)),
        "efficiency_dip_cost": _num(by_kind.get("dip", 0.0)),
        "human_cost": _num(costs.loc[costs["group"] == "human", "amount"].sum()),
        "human_share": _num(costs.loc[costs["group"] == "human", "amount"].sum()
                            / costs["amount"].sum(), 4) if costs["amount"].sum() > 0 else None,
        "costs_by_category": {c: _num(v) for c, v in
                              costs_by_year(plan)["total"].items()},
        "tco_per_year": [{"year": int(r.year), "months": int(r.months), "total": _num(r.total)}
                         for r in tco(plan).itertuples()],
    }
    if returns is not None:
        out.update(returns.as_dict())
    if readiness_frame is not None:
        out["readiness"] = {r.dimension: int(r.score) for r in readiness_frame.itertuples()}
        out["readiness_index"] = _num(readiness_frame.attrs.get(
            "index", (readiness_frame["score"].mean() - 1) / 4), 4)
    if risks is not None:
        out["top_risks"] = [{"risk_key": r.risk_key, "risk": r.risk,
                             "likelihood": int(r.likelihood), "impact": int(r.impact),
                             "score": int(r.score), "level": r.level}
                            for r in risks.head(top_risks).itertuples()]
    if components is not None:
        out["components"] = components.as_dict()
    return out
