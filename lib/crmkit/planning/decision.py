"""The decision on page one: go, go with conditions or no go, and what one must believe for it.

**Break-even ("what you must believe").** The retention lever is the one a CRM is bought for and
the one a management team can test, so the break-even is stated on it first: the retention
uplift ``x``, in points on the lever's targeted segments (every other lever as planned), at
which the project's NPV is zero — ``brentq`` on ``x ↦ NPV(x)`` over
``[−MAX_RETENTION_POINTS, +MAX_RETENTION_POINTS]``. When no uplift in that range zeroes the NPV
(or the lever has no target), it is stated as the **scale of the levers** instead: the factor
``k`` on every benefit at which the NPV is zero (``k = 1.3``: the benefits must be 30 % larger
than planned; ``k = 0.6``: they may fall by 40 %).

**The rule** (:func:`decide`), with ``DecisionSettings`` margins ``b`` (benefits, 20 %) and ``c``
(costs, 20 %):

- ``no_go`` when the NPV over the horizon is not positive;
- ``go`` when it is, and stays positive with every benefit ``b`` lower and, separately, with
  every cost ``c`` higher;
- ``go_with_conditions`` otherwise, each condition named: *pilot the levers with a control
  group before committing* (the benefits' margin is thinner than ``b``), *replace the default
  cost lines with quotes* (or *agree fixed-price quotes* when they are quotes already: the costs'
  margin is thinner than ``c``).

The reasons always say the NPV, the break-even and how many cost lines are default estimates to
replace with suppliers' quotes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pandas as pd

from crmkit.core.i18n import Formatter, t
from crmkit.planning.finance import Returns, cash_flows, npv
from crmkit.planning.levers import LeverModel, lever_benefits
from crmkit.planning.schedule import Benefit, Plan
from crmkit.settings.project import MAX_RETENTION_POINTS

#: Imported inside a function (start-up speed); a workbook kernel started ahead loads it
#: (:data:`crmkit.delivery.warm_kernels.LAZY`).
LAZY_IMPORTS = ("scipy.optimize",)

__all__ = ["DECISIONS", "BreakEven", "Decision", "break_even", "decide", "rule"]

#: The decisions, from the most to the least committed.
DECISIONS = ("go", "go_with_conditions", "no_go")
#: The largest scale of the levers searched for the break-even.
MAX_SCALE = 1e6


@dataclass(frozen=True)
class BreakEven:
    """What one must believe for the NPV to be zero.

    Attributes
    ----------
    lever : ``"retention"`` or ``"scale"``
    value : float or None
        Points of retention uplift on the targeted segments, or the factor on every benefit;
        None when neither zeroes the NPV (no benefit at all).
    unit : ``"points"`` or ``"times"``
    planned : float
        The planned figure in the same unit (client.yaml's points, or 1).
    segments : list of str
        The targeted segments (retention).
    """

    lever: str
    value: float | None
    unit: str
    planned: float
    segments: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"lever": self.lever,
                "value": None if self.value is None else round(float(self.value), 4),
                "unit": self.unit, "planned": round(float(self.planned), 4),
                "segments": list(self.segments)}

    def text(self, fmt: Formatter) -> str:
        """The break-even as a sentence in the language."""
        lang = fmt.lang
        if self.value is None:
            return t("decision_break_even_none", lang)
        if self.lever == "retention":
            key = "decision_break_even_points" if self.value >= 0 else \
                "decision_break_even_points_fall"
            return t(key, lang, points=fmt.number(abs(self.value), 1),
                     planned=fmt.number(self.planned, 1))
        return t("decision_break_even_scale", lang, scale=fmt.number(self.value, 2))


def _npv_of(plan: Plan, benefits: Sequence[Benefit], **factors) -> float:
    flows = cash_flows(plan, benefits, **factors)
    return npv(flows.attrs["monthly_rate"], flows["net"].to_numpy(dtype=float))


def _root(f: Callable[[float], float], low: float, high: float) -> float | None:
    from scipy.optimize import brentq  # here: importing scipy.optimize takes half a second

    f_low, f_high = f(low), f(high)
    if f_low == 0:
        return low
    if f_high == 0:
        return high
    if (f_low < 0) == (f_high < 0):
        return None
    return float(brentq(f, low, high, xtol=1e-9, rtol=1e-12, maxiter=200))


def break_even(plan: Plan, model: LeverModel, extra: Sequence[Benefit] = ()) -> BreakEven:
    """The retention uplift (points) — or the scale of the levers — that makes the NPV zero.

    Parameters
    ----------
    plan : Plan
    model : LeverModel
    extra : list of Benefit
        Benefits typed in ``crm_project.benefits.items``, counted as planned.
    """
    targets = model.retention_targets()
    if model.included("retention") and targets:
        def at(points: float) -> float:
            frame = model.evaluate(retention_points=points)
            return _npv_of(plan, [*lever_benefits(frame, plan), *extra])

        value = _root(at, -float(MAX_RETENTION_POINTS), float(MAX_RETENTION_POINTS))
        if value is not None:
            return BreakEven("retention", value, "points", model.settings.retention.points,
                             targets)
    benefits = [*lever_benefits(model.evaluate(), plan), *extra]
    value = _root(lambda k: _npv_of(plan, benefits, benefit_factor=k), 0.0, MAX_SCALE)
    return BreakEven("scale", value, "times", 1.0)


@dataclass
class Decision:
    """The decision and its reasons.

    Attributes
    ----------
    decision : one of :data:`DECISIONS`
    reasons : list of (key, text)
        Why, in the language: the NPV, the margins, the break-even, the default cost lines.
    conditions : list of str
        The condition keys (``pilot_levers``, ``replace_default_costs``, ``fixed_quotes``).
    npv, npv_low_benefits, npv_high_costs : float
        The NPV as planned, with the benefits ``benefit_margin`` lower, with the costs
        ``cost_margin`` higher.
    default_cost_lines, cost_lines : int
    """

    decision: str
    reasons: list[tuple[str, str]]
    conditions: list[str]
    npv: float
    npv_low_benefits: float
    npv_high_costs: float
    default_cost_lines: int
    cost_lines: int

    def as_dict(self) -> dict:
        return {"decision": self.decision,
                "decision_reasons": [{"reason": k, "text": v} for k, v in self.reasons],
                "decision_conditions": list(self.conditions),
                "npv_low_benefits": round(self.npv_low_benefits, 2),
                "npv_high_costs": round(self.npv_high_costs, 2)}


def decide(plan: Plan, benefits: Sequence[Benefit], returns: Returns, even: BreakEven,
           cost_lines: pd.DataFrame, fmt: Formatter) -> Decision:
    """Go, go with conditions or no go (module docstring), with its reasons in ``fmt.lang``.

    Parameters
    ----------
    plan : Plan
    benefits : list of Benefit
        Those the returns were computed with.
    returns : Returns
    even : BreakEven
    cost_lines : DataFrame
        :func:`crmkit.planning.costs.cost_lines` (the efficiency dip is not a quote and is not
        counted).
    fmt : Formatter
    """
    margins = plan.settings.decision
    low = _npv_of(plan, benefits, benefit_factor=1.0 - margins.benefit_margin)
    high = _npv_of(plan, benefits, cost_factor=1.0 + margins.cost_margin)
    return rule(plan, returns.npv, low, high, even, cost_lines, fmt)


def rule(plan: Plan, value: float, low: float, high: float, even: BreakEven,
         cost_lines: pd.DataFrame, fmt: Formatter) -> Decision:
    """:func:`decide` on NPVs already computed: ``value`` as planned, ``low`` with the benefits
    ``benefit_margin`` lower, ``high`` with the costs ``cost_margin`` higher (the dashboard
    computes them on cash flows it keeps, for a slider that answers at once)."""
    lang = fmt.lang
    margins = plan.settings.decision
    quoted = cost_lines[cost_lines["category"] != "efficiency_dip"]
    defaults = int((quoted["source"] == "default").sum())
    reasons: list[tuple[str, str]] = []
    conditions: list[str] = []
    if value <= 0:
        decision = "no_go"
        reasons.append(("npv_negative", t("decision_reason_npv_negative", lang,
                                          npv=fmt.money(value), months=plan.horizon_months)))
    else:
        reasons.append(("npv_positive", t("decision_reason_npv_positive", lang,
                                          npv=fmt.money(value), months=plan.horizon_months)))
        if low < 0:
            conditions.append("pilot_levers")
            reasons.append(("benefits_thin", t(
                "decision_reason_benefits_thin", lang,
                share=fmt.pct(margins.benefit_margin, 0), npv=fmt.money(low))))
        if high < 0:
            conditions.append("replace_default_costs" if defaults else "fixed_quotes")
            reasons.append(("costs_thin", t(
                "decision_reason_costs_thin", lang, share=fmt.pct(margins.cost_margin, 0),
                npv=fmt.money(high))))
        decision = "go_with_conditions" if conditions else "go"
    reasons.append(("break_even", even.text(fmt)))
    if defaults:
        reasons.append(("default_costs", t("decision_reason_default_costs", lang,
                                           default=defaults, total=len(quoted))))
    for key in conditions:
        reasons.append((f"condition_{key}", t(f"decision_condition_{key}", lang,
                                              default=defaults)))
    return Decision(decision=decision, reasons=reasons, conditions=conditions, npv=value,
                    npv_low_benefits=low, npv_high_costs=high, default_cost_lines=defaults,
                    cost_lines=len(quoted))
