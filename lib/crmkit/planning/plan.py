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
- **benefits by lever** (:mod:`crmkit.planning.levers`): retention, share of customer,
  reactivation, automation offers, avoidable cost to serve and acquisition, each a change in the
  customers' expected margin over the customer-base model of workbook 02, with the assumptions
  of ``crm_project.levers``; plus the items of ``crm_project.benefits.items``; each ramps up
  linearly after go-live (:func:`benefit_schedule`); the returns on them are computed by
  :mod:`crmkit.planning.finance`. (:func:`scenario_benefits` keeps workbook 04's older reading of
  a scenario as a change in yearly profit, for the dashboard.)
  :class:`crmkit.delivery.steps.Steps` gives what the plan takes from workbooks 01-04;
- **the decision** (:mod:`crmkit.planning.decision`): go / go with conditions / no go, and the
  break-even stated as what one must believe; :func:`business_case` puts levers, cash flows,
  returns, break-even and decision together;
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
- evaluation horizon: ``crm_project.horizon_months`` after go-live, default 60 (five years, the
  life a CRM platform is depreciated over), discounted at ``assumptions.discount_rate``; benefits
  ramp up over 6 months;
- readiness: people ← ``context.internal.people``, process ← ``operational``, technology ←
  ``technological``.
- levers (``crm_project.levers``): retention +2 points on the active segments; 2 % more spend
  from still-active customers; 5 % of the reached lapsing customers won back a year, two
  contacts at 0.5 each; four offer campaigns a year at 0.05 a contact, 10 % of each segment held
  out as a control group, the offer converting 10 % of the customers who would not have ordered
  anyway (scaled by the segment's promotion history); 50 % of customers with marketing consent;
  under ``attract``, 10 % more new customers, each costing a year of its margin;
- decision: a plain go needs the NPV to stay positive with the benefits 20 % lower and with the
  costs 20 % higher (``crm_project.decision``).

The rules are hand-written, short and visible on purpose: the client must be able to follow every
figure back to a line of ``client.yaml`` or to one of the shares above; a fitted model or a vendor
calculator would not allow that.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from crmkit.core.i18n import Formatter, t
from crmkit.planning.benefits import *  # noqa: F403
from crmkit.planning.benefits import BENEFIT_COLUMNS, Benefit, benefit_schedule  # noqa: F401
from crmkit.planning.components import *  # noqa: F403
from crmkit.planning.components import ComponentChoice
from crmkit.planning.costs import *  # noqa: F403
from crmkit.planning.costs import cost_lines, costs_by_year, tco
from crmkit.planning.decision import BreakEven, Decision, break_even, decide
from crmkit.planning.finance import Returns, cash_flows
from crmkit.planning.finance import returns as returns_of
from crmkit.planning.levers import (  # noqa: F401  (the plan's public names)
    ASSUMPTION_COLUMNS,
    LEVER_COLUMNS,
    SUMMARY_COLUMNS,
    LeverModel,
    assumptions,
    by_lever,
    lever_benefits,
    lever_figures,
    lever_summary,
    lever_table,
)
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
    DEFAULT_HORIZON_MONTHS,
    DEFAULT_PHASE_MONTHS,
    DEFAULT_RISKS,
    DEFAULT_STAFF_COST_SHARE,
    HUMAN_CATEGORIES,
    LEVERS,
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
    DecisionSettings,
    EfficiencyDip,
    ExtraCost,
    LeverSettings,
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


# --------------------------------------------------------------------------------------------
# The business case: levers, cash flows, returns, break-even, decision
# --------------------------------------------------------------------------------------------

@dataclass
class BusinessCase:
    """Everything chapter 5 says about whether the CRM pays, computed once.

    Attributes
    ----------
    plan : Plan
    model : LeverModel
    levers : DataFrame
        :meth:`LeverModel.evaluate`: the yearly benefit per lever and segment.
    benefits : list of Benefit
        One per lever, then client.yaml's ``benefits.items``: the cash-flow input.
    flows : DataFrame
        :func:`crmkit.planning.finance.cash_flows`.
    returns : Returns
    break_even : BreakEven
    decision : Decision
    suggested : bool
        The scenarios behind the cost-to-serve lever were suggested by workbook 04.
    promotions : DataFrame or None
        Chapter 2's promotion history per segment (the offers' response), None without one.
    """

    plan: Plan
    model: LeverModel
    levers: pd.DataFrame
    benefits: list[Benefit]
    flows: pd.DataFrame
    returns: Returns
    break_even: BreakEven
    decision: Decision
    suggested: bool = False
    promotions: pd.DataFrame | None = None

    def as_dict(self) -> dict:
        """The ``implementation`` figures of the case: returns, ``benefits`` (with
        ``by_lever``), ``break_even``, ``decision``, ``decision_reasons``,
        ``decision_conditions``, ``cost_lines`` ({total, default})."""
        figures = lever_figures(self.levers, self.model, self.plan, suggested=self.suggested)
        figures["client_items"] = len(self.plan.default_benefits)
        return {**self.returns.as_dict(), "benefits": figures,
                "break_even": self.break_even.as_dict(), **self.decision.as_dict(),
                "cost_lines": {"total": self.decision.cost_lines,
                               "default": self.decision.default_cost_lines}}

    def key_figures(self, fmt: Formatter) -> list[tuple[str, str]]:
        """``[(label, value)]`` for page one: the decision, the NPV, the break-even, payback."""
        lang = fmt.lang
        even = self.break_even
        if even.value is None:
            believe = "–"
        elif even.lever == "retention":
            key = "decision_believe_points" if even.value >= 0 else "decision_believe_points_fall"
            believe = t(key, lang, points=fmt.number(abs(even.value), 1))
        else:
            believe = t("decision_believe_scale", lang, scale=fmt.number(even.value, 2))
        return [(t("decision_label", lang), t(f"decision_{self.decision.decision}", lang)),
                (t("fin_npv", lang), fmt.money(self.returns.npv)),
                (t("decision_break_even_label", lang), believe),
                (t("fin_payback", lang), self.returns.payback_text(fmt))]


def promotions(transactions: pd.DataFrame | None, customers: pd.DataFrame,
               as_of: dt.date | None = None) -> pd.DataFrame | None:
    """Chapter 2's promotion history per segment, or None when transactions have no
    ``promotion`` column (:func:`crmkit.analysis.profiles.promotion_history`)."""
    if transactions is None or "promotion" not in transactions.columns:
        return None
    from crmkit.analysis.profiles import promotion_history

    segments = customers.assign(customer_id=customers["customer_id"].astype(str)
                                ).set_index("customer_id")["segment"].astype(str)
    return promotion_history(transactions.assign(
        customer_id=transactions["customer_id"].astype(str)), segments, as_of=as_of)


def business_case(project: Plan, customers: pd.DataFrame, cost: Any, config: Any,
                  fmt: Formatter, *, scenario_model: Any = None, scenarios: Any = (),
                  objective: str | None = None, transactions: pd.DataFrame | None = None,
                  attributes: pd.DataFrame | None = None, as_of: dt.date | None = None,
                  suggested: bool = False) -> BusinessCase:
    """Levers → benefits → cash flows → returns → break-even → decision, in one call.

    Parameters
    ----------
    project : Plan
        From :func:`build`.
    customers : DataFrame
        The per-customer table of workbook 02.
    cost : CostToServe
        Chapter 3's.
    config : ClientConfig
    fmt : Formatter
        For the decision's reasons.
    scenario_model, scenarios : optional
        Workbook 04's model and the plan's scenarios (the cost-to-serve lever, and the
        retention and margin changes they bring).
    objective : str, optional
        Workbook 01's chosen objective (acquisition counts under ``attract``).
    transactions : DataFrame, optional
        For the promotion history of the offers' response.
    attributes : DataFrame, optional
        customers.csv, for ``levers.consent_attribute``.
    as_of : date, optional
    suggested : bool
        Whether the scenarios were suggested by workbook 04.
    """
    history = promotions(transactions, customers, as_of)
    model = LeverModel.from_tables(customers, cost, config, scenario_model=scenario_model,
                                   scenarios=scenarios, objective=objective,
                                   promotions=history, attributes=attributes)
    frame = model.evaluate()
    extra = list(project.default_benefits)
    benefits = [*lever_benefits(frame, project, lang=fmt.lang), *extra]
    flows = cash_flows(project, benefits)
    result = returns_of(flows)
    even = break_even(project, model, extra)
    verdict = decide(project, benefits, result, even, cost_lines(project, fmt.lang), fmt)
    return BusinessCase(plan=project, model=model, levers=frame, benefits=benefits, flows=flows,
                        returns=result, break_even=even, decision=verdict,
                        suggested=suggested, promotions=history)
