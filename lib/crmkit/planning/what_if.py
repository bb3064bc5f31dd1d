"""The business case under other assumptions, fast enough for a slider.

The client's dashboard lets the client move the levers of workbook 05 (retention points, share of
customer, reactivation, consent, campaigns…), the budget, and a segment's relationship (workbook
04's what-if), and shows the NPV, the payback, the break-even and the decision at once.
:class:`CaseWhatIf` re-evaluates :func:`crmkit.planning.plan.business_case` for such a change with
the same functions on the same inputs, keeping what a change cannot move:

- the **customer aggregates** of the lever model (:class:`crmkit.planning.levers.LeverModel`,
  built once by the business case): a lever assumption is read by ``LeverModel.evaluate``
  itself, a uniform consent rescales three sums (:meth:`LeverModel.with_levers`), and a segment's
  what-if adds one scenario's saving and retention points to the plan's
  (:meth:`LeverModel.with_scenario`);
- the **cost side of the cash flows** (the planned costs per month, the efficiency dip, the
  dates, phases and discount factors): they do not depend on the benefits; the flows are then
  rebuilt with the arithmetic of :func:`crmkit.planning.finance.cash_flows`, in the same order, so
  the planned levers give the report's NPV to the last digit;
- the **break-even**: the NPV is linear in each benefit's yearly amount, so the NPV at a
  retention uplift ``x`` is the NPV as planned plus the retention benefit's change times the
  present value of one unit of a benefit starting at go-live; ``brentq`` then searches that
  straight formula instead of rebuilding cash flows at each step (the same root as
  :func:`crmkit.planning.decision.break_even`, to its tolerance).

The budget (``cost_factor``) multiplies every planned cost but the efficiency dip, as in
:func:`crmkit.planning.finance.cash_flows`: it moves costs only, never a benefit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from crmkit.core.i18n import Formatter
from crmkit.planning.benefits import _covered, benefit_schedule
from crmkit.planning.costs import cost_lines, monthly_costs
from crmkit.planning.decision import MAX_SCALE, BreakEven, Decision, _root, rule
from crmkit.planning.finance import Returns, npv
from crmkit.planning.finance import returns as returns_of
from crmkit.planning.levers import LeverModel, by_lever, lever_benefits
from crmkit.planning.schedule import Benefit
from crmkit.relationships.scenarios import CostRate, Move, RetentionChange, Scenario
from crmkit.settings.project import MAX_RETENTION_POINTS, LeverSettings

__all__ = ["CaseWhatIf", "Outcome", "segment_scenario"]

#: Scenarios' lever models kept (a dashboard page tries a handful of segment what-ifs).
CACHE_SIZE = 32


@dataclass
class Outcome:
    """The business case under one set of assumptions.

    Attributes
    ----------
    levers : DataFrame
        ``LeverModel.evaluate``: the yearly benefit per lever and segment.
    by_lever : dict
        Lever -> yearly benefit at full run-rate.
    benefits : list of Benefit
    flows : DataFrame
        As :func:`crmkit.planning.finance.cash_flows`.
    returns : Returns
    break_even : BreakEven
    decision : Decision
    """

    levers: pd.DataFrame
    by_lever: dict
    benefits: list[Benefit]
    flows: pd.DataFrame
    returns: Returns
    break_even: BreakEven
    decision: Decision


def segment_scenario(scenario_model: Any, scenarios: Sequence[Scenario], segment: str,
                     relationship_type: str | None, *, cost_rate_change: float = 0.0,
                     retention_change: float = 0.0) -> tuple[Scenario, float]:
    """The dashboard's one-segment what-if as a scenario to add to the plan's.

    The segment's activity of its type today (``ScenarioModel.main_type``) moves to
    ``relationship_type``; the destination's cost per minute changes by ``cost_rate_change``
    (relative); the segment's retention by ``retention_change`` (points as a share, 0.05 = five).
    When the plan's own scenarios already move part of that activity, only what they leave is
    moved, so that a contact is never counted as saved twice.

    Returns
    -------
    scenario : Scenario
        Named ``what-if``; no changes when nothing changes.
    share : float
        The share of the segment's activity of today's type that the what-if moves (1 when the
        plan moves none of it, 0 when it moves all of it or the type does not change).
    """
    current = scenario_model.main_type(segment)
    target = relationship_type or current
    changes: list = []
    share = 0.0
    if target is not None and current is not None and target != current:
        planned = sum(change.share for s in scenarios for change in s.changes
                      if isinstance(change, Move) and change.segment == segment
                      and change.from_type == current)
        share = max(0.0, 1.0 - planned)
        if share > 0:
            changes.append(Move(segment=segment, from_type=current, to_type=target, share=share))
    if target is not None and cost_rate_change:
        changes.append(CostRate(type=target, change=cost_rate_change))
    if retention_change:
        changes.append(RetentionChange(segment=segment, change=retention_change))
    return Scenario(name="what-if", changes=changes), share


class CaseWhatIf:
    """Re-evaluate a business case with other levers, one more scenario and another budget.

    Parameters
    ----------
    case : crmkit.planning.plan.BusinessCase
        Workbook 05's case (:func:`crmkit.planning.plan.business_case`).
    fmt : Formatter
        For the decision's reasons (the case's language).
    scenario_model : ScenarioModel, optional
        Workbook 04's model (a segment's what-if is evaluated on it).
    scenarios : list of Scenario
        The plan's scenarios, as given to the business case.
    customers, cost, config, objective, attributes : optional
        As given to the business case: used only when an added scenario changes which of the
        plan's scenarios are counted (then the lever model is built again from the customers).
    """

    def __init__(self, case: Any, fmt: Formatter, *, scenario_model: Any = None,
                 scenarios: Sequence[Scenario] = (), customers: pd.DataFrame | None = None,
                 cost: Any = None, config: Any = None, objective: str | None = None,
                 attributes: pd.DataFrame | None = None):
        self.case = case
        self.plan = plan = case.plan
        self.model: LeverModel = case.model
        self.fmt = fmt
        self.scenario_model = scenario_model
        self.scenarios = list(scenarios)
        self._rebuild_inputs = (customers, cost, config, objective, attributes)
        self._counted = _covered(self.scenarios)
        self._models: dict[str, LeverModel] = {}
        self.extra = list(plan.default_benefits)
        self.cost_lines = cost_lines(plan, fmt.lang)
        # The cost side of the cash flows, as finance.cash_flows computes it.
        costs = monthly_costs(plan)
        self._dip = costs["efficiency_dip"] * 1.0
        self._other = costs.drop(columns="efficiency_dip").sum(axis=1)
        self._frame = case.flows
        self._months = case.flows.index
        self._rate = float(case.flows.attrs["monthly_rate"])
        unit = Benefit("unit", 1.0, None, "launch")
        self._unit_launch = npv(self._rate, self._gains([unit]))

    # -- the cash flows ---------------------------------------------------------------------

    def _schedule(self, benefits: Sequence[Benefit]) -> pd.Series:
        return benefit_schedule(self.plan, benefits).sum(axis=1)

    def _gains(self, benefits: Sequence[Benefit], factor: float = 1.0,
               schedule: pd.Series | None = None) -> np.ndarray:
        gains = (self._schedule(benefits) if schedule is None else schedule) * factor
        return gains.reindex(self._months, fill_value=0.0).to_numpy(dtype=float)

    def _costs(self, cost_factor: float) -> np.ndarray:
        return (self._other * cost_factor + self._dip).to_numpy(dtype=float)

    def flows(self, benefits: Sequence[Benefit], *, cost_factor: float = 1.0,
              schedule: pd.Series | None = None) -> pd.DataFrame:
        """:func:`crmkit.planning.finance.cash_flows` for these benefits, on the kept costs."""
        frame = self._frame.copy()
        frame["benefits"] = self._gains(benefits, schedule=schedule)
        frame["costs"] = self._costs(cost_factor)
        frame["net"] = frame["benefits"] - frame["costs"]
        frame["cumulative"] = frame["net"].cumsum()
        frame["discounted"] = frame["net"] * frame["discount_factor"]
        frame["cumulative_discounted"] = frame["discounted"].cumsum()
        frame.attrs.update(self._frame.attrs)
        return frame

    def _npv(self, schedule: pd.Series, benefit_factor: float, cost_factor: float) -> float:
        net = self._gains((), benefit_factor, schedule) - self._costs(cost_factor)
        return npv(self._rate, net)

    # -- the lever model --------------------------------------------------------------------

    def lever_model(self, scenario: Scenario | None = None,
                    settings: LeverSettings | None = None) -> LeverModel:
        """The lever model with ``scenario`` added to the plan's and ``settings`` in force."""
        model = self.model
        if scenario is not None and scenario.changes:
            key = repr([c.model_dump(mode="json") for c in scenario.changes])
            if key not in self._models:
                if len(self._models) >= CACHE_SIZE:
                    self._models.pop(next(iter(self._models)))
                self._models[key] = self._with(scenario)
            model = self._models[key]
        if settings is not None and settings != model.settings:
            model = model.with_levers(settings)
        return model

    def _with(self, scenario: Scenario) -> LeverModel:
        counted = _covered([*self.scenarios, scenario])
        if counted[:-1] == self._counted:
            # the plan's scenarios count as before: the added one's changes are simply added
            return self.model if counted[-1] else self.model.with_scenario(
                self.scenario_model, scenario)
        customers, cost, config, objective, attributes = self._rebuild_inputs
        if customers is None:
            raise ValueError("this scenario changes which of the plan's scenarios count; "
                             "CaseWhatIf needs the customers to build the levers again")
        model = LeverModel.from_tables(customers, cost, config,
                                       scenario_model=self.scenario_model,
                                       scenarios=[*self.scenarios, scenario],
                                       objective=objective, promotions=self.case.promotions,
                                       attributes=attributes)
        return model

    # -- the case ---------------------------------------------------------------------------

    def break_even(self, model: LeverModel, npv_planned: float, by: dict) -> BreakEven | None:
        """The retention uplift of :func:`crmkit.planning.decision.break_even`, on the linear
        form of the NPV (module docstring); None when it has none (the scale of the levers is
        then the break-even, :meth:`evaluate`)."""
        targets = model.retention_targets()
        if model.included("retention") and targets and "retention" in by:
            planned = model.retention_benefit()

            def at(points: float) -> float:
                return npv_planned + (model.retention_benefit(points) - planned) \
                    * self._unit_launch

            value = _root(at, -float(MAX_RETENTION_POINTS), float(MAX_RETENTION_POINTS))
            if value is not None:
                return BreakEven("retention", value, "points", model.settings.retention.points,
                                 targets)
        return None

    def evaluate(self, *, settings: LeverSettings | None = None,
                 scenario: Scenario | None = None, budget: float = 1.0) -> Outcome:
        """The case with these levers, this scenario added and this budget.

        Parameters
        ----------
        settings : LeverSettings, optional
            ``crm_project.levers`` to use; default client.yaml's.
        scenario : Scenario, optional
            One more scenario for the plan (:func:`segment_scenario`).
        budget : float
            Multiplies every planned cost but the efficiency dip (1 = as planned).
        """
        model = self.lever_model(scenario, settings)
        frame = model.evaluate()
        benefits = [*lever_benefits(frame, self.plan, lang=self.fmt.lang), *self.extra]
        schedule = self._schedule(benefits)
        flows = self.flows(benefits, cost_factor=budget, schedule=schedule)
        result = returns_of(flows)
        margins = self.plan.settings.decision
        low = self._npv(schedule, 1.0 - margins.benefit_margin, budget)
        high = self._npv(schedule, 1.0, budget * (1.0 + margins.cost_margin))
        levers = by_lever(frame)
        even = self.break_even(model, result.npv, levers)
        if even is None:
            # the scale of the levers: the NPV is linear in a factor k on every benefit
            benefit_npv = result.npv - self._npv(schedule, 0.0, budget)
            value = _root(lambda k: result.npv + (k - 1.0) * benefit_npv, 0.0, MAX_SCALE)
            even = BreakEven("scale", value, "times", 1.0)
        verdict = rule(self.plan, result.npv, low, high, even, self.cost_lines, self.fmt)
        return Outcome(levers=frame, by_lever=levers, benefits=benefits, flows=flows,
                       returns=result, break_even=even, decision=verdict)
