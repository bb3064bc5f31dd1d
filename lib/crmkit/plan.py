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
  by :mod:`crmkit.finance`. :func:`earlier_steps` recomputes what the plan takes from workbooks
  01-04 (objective, relationship gap, scenarios);
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

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .i18n import catalogue, t

if TYPE_CHECKING:  # annotations only: config imports this module for CrmProject
    from .config import ClientConfig
    from .finance import Returns
    from .workspace import Workspace

__all__ = [
    "BENEFIT_COLUMNS",
    "CATEGORIES",
    "COMPONENTS",
    "COMPONENT_COLUMNS",
    "COST_CATEGORIES",
    "COST_COLUMNS",
    "DEFAULT_COST_SHARES",
    "DEFAULT_PHASE_MONTHS",
    "DEFAULT_RISKS",
    "HUMAN_CATEGORIES",
    "PHASES",
    "PHASE_COLUMNS",
    "READINESS",
    "READINESS_COLUMNS",
    "RISK_COLUMNS",
    "RULE_COLUMNS",
    "TCO_COLUMNS",
    "AutomationSettings",
    "Benefit",
    "BenefitItem",
    "BenefitSettings",
    "ComponentChoice",
    "CostItem",
    "CrmProject",
    "EarlierSteps",
    "EfficiencyDip",
    "ExtraCost",
    "MessageText",
    "OfferSettings",
    "PhaseSettings",
    "Plan",
    "ReadinessScore",
    "ReadinessSettings",
    "RiskSettings",
    "Scale",
    "benefit_figures",
    "benefit_schedule",
    "benefits_from_scenarios",
    "build",
    "category_name",
    "components_first",
    "cost_lines",
    "costs_by_year",
    "earlier_steps",
    "monthly_costs",
    "phase_name",
    "phase_table",
    "project_settings",
    "ramp",
    "readiness",
    "risk_register",
    "scenario_benefits",
    "summary_dict",
    "tco",
]

#: The standard phases, in order (the CRM texts' analysis → design → implementation strategy →
#: launch).
PHASES: tuple[str, ...] = ("analysis", "design", "implementation_strategy", "launch")
#: Default duration of each standard phase, in months.
DEFAULT_PHASE_MONTHS: dict[str, float] = {"analysis": 2, "design": 2,
                                          "implementation_strategy": 3, "launch": 1}
#: Cost categories of the project and the technology.
COST_CATEGORIES: tuple[str, ...] = ("analysis", "design", "hardware", "software", "maintenance",
                                    "project_management", "training")
#: The human costs; ``efficiency_dip`` is computed from :class:`EfficiencyDip`.
HUMAN_CATEGORIES: tuple[str, ...] = ("process_reengineering", "learning_new_skills",
                                     "process_administration", "efficiency_dip")
CATEGORIES: tuple[str, ...] = COST_CATEGORIES + HUMAN_CATEGORIES
#: Which group each category is totalled in.
CATEGORY_GROUP: dict[str, str] = {
    "analysis": "project", "design": "project", "project_management": "project",
    "training": "project", "hardware": "technology", "software": "technology",
    "maintenance": "technology", "process_reengineering": "human",
    "learning_new_skills": "human", "process_administration": "human", "efficiency_dip": "human",
}
READINESS: tuple[str, ...] = ("people", "process", "technology")
#: Where each readiness dimension takes its default score in ``context.internal``.
READINESS_SOURCE: dict[str, str] = {"people": "people", "process": "operational",
                                    "technology": "technological"}
COMPONENTS: tuple[str, ...] = ("analytical", "operational", "collaborative")

#: Default cost lines as shares of the yearly revenue R: category -> (one-off share, yearly
#: recurring share, where the one-off falls). See the module docstring for the reasoning.
DEFAULT_COST_SHARES: dict[str, tuple[float, float, str]] = {
    "analysis": (0.010, 0.0, "analysis"),
    "design": (0.010, 0.0, "design"),
    "hardware": (0.005, 0.0, "implementation_strategy"),
    "software": (0.015, 0.010, "implementation_strategy"),
    "maintenance": (0.0, 0.005, "implementation_strategy"),
    "project_management": (0.008, 0.0, "project"),
    "training": (0.007, 0.0, "implementation_strategy"),
    "process_reengineering": (0.008, 0.0, "design"),
    "learning_new_skills": (0.005, 0.0, "launch"),
    "process_administration": (0.0, 0.005, "launch"),
}
#: Yearly cost of the staff whose work the new system changes, as a share of R.
DEFAULT_STAFF_COST_SHARE = 0.12
#: Weeks to months: a year has 52 weeks and 12 months.
MONTHS_PER_WEEK = 12 / 52

#: The default risks: key -> (readiness dimension or ``financial``/None, base likelihood 1-5,
#: impact 1-5, owner message key). Texts are ``plan_risk_<key>`` and ``plan_mitigation_<key>``.
#: The first two are the ones the CRM texts name for smaller firms.
DEFAULT_RISKS: dict[str, tuple[str | None, int, int, str]] = {
    "procedures_not_formalised": ("process", 3, 4, "plan_owner_operations"),
    "staff_buy_in": ("people", 3, 5, "plan_owner_sponsor"),
    "data_quality": ("technology", 3, 4, "plan_owner_data"),
    "scope_creep": (None, 3, 3, "plan_owner_project_manager"),
    "vendor_lock_in": ("technology", 2, 3, "plan_owner_it"),
    "budget_overrun": ("financial", 3, 4, "plan_owner_finance"),
    "gdpr_consent": (None, 2, 5, "plan_owner_dpo"),
}

_KEY = re.compile(r"[a-z][a-z0-9_]*")

# Columns of the frames below as a client reads them: ``Table(frame, fmt, PHASE_COLUMNS)``.
#: For :func:`phase_table`.
PHASE_COLUMNS = {"name": ("plan_col_phase", "text"), "start": ("plan_col_start", "date"),
                 "finish": ("plan_col_finish", "date"), "months": ("plan_col_months", "number:1"),
                 "depends_on": ("plan_col_depends_on", "text")}
#: For :func:`cost_lines`.
COST_COLUMNS = {"name": ("plan_col_category", "text"), "group_name": ("plan_col_group", "text"),
                "one_off": ("plan_col_one_off", "money"), "yearly": ("plan_col_yearly", "money"),
                "when": ("plan_col_when", "text"), "total": ("plan_col_total", "money"),
                "note": ("plan_col_note", "text")}
#: For :func:`tco`.
TCO_COLUMNS = {"year": ("plan_col_year", "integer"), "months": ("plan_col_months", "integer"),
               "project": ("plan_col_project", "money"),
               "technology": ("plan_col_technology", "money"),
               "human": ("plan_col_human", "money"), "total": ("plan_col_tco", "money"),
               "cumulative": ("plan_col_cumulative_cost", "money")}
#: For :func:`readiness`.
READINESS_COLUMNS = {"name": ("plan_col_dimension", "text"), "score": ("plan_col_score", "score"),
                     "reading_name": ("plan_col_reading", "text"),
                     "advice": ("plan_col_advice", "text")}
#: For :func:`risk_register`.
RISK_COLUMNS = {"number": ("plan_col_number", "integer"), "risk": ("plan_col_risk", "text"),
                "likelihood": ("plan_col_likelihood", "score"),
                "impact": ("plan_col_impact", "score"), "score": ("plan_col_risk_score", "score"),
                "level_name": ("plan_col_level", "text"),
                "mitigation": ("plan_col_mitigation", "text"), "owner": ("plan_col_owner", "text")}
#: For ``components_first(...).ranking``.
COMPONENT_COLUMNS = {"rank": ("plan_col_rank", "integer"), "name": ("plan_col_component", "text"),
                     "description": ("plan_col_description", "text"),
                     "points": ("plan_col_points", "integer")}
#: For ``components_first(...).rules``.
RULE_COLUMNS = {"reason": ("plan_col_rule", "text"),
                "analytical": ("plan_col_analytical", "integer"),
                "operational": ("plan_col_operational", "integer"),
                "collaborative": ("plan_col_collaborative", "integer")}


# --------------------------------------------------------------------------------------------
# The crm_project section of client.yaml
# --------------------------------------------------------------------------------------------

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PhaseSettings(_Strict):
    """One phase: its duration (``months`` or ``weeks``) and the phases it waits for.

    Unset fields of a standard phase keep its default (see :data:`DEFAULT_PHASE_MONTHS`; each
    standard phase depends on the one before). A phase of the consultant's own (any other key,
    e.g. ``data_migration``) needs a ``label`` and a duration.
    """

    months: float | None = Field(None, gt=0, le=60)
    weeks: float | None = Field(None, gt=0, le=260)
    depends_on: list[str] | None = Field(None, description="finish-to-start dependencies")
    label: str | None = Field(None, min_length=1, description="name of a phase of your own")

    @model_validator(mode="after")
    def _one_duration(self) -> PhaseSettings:
        if self.months is not None and self.weeks is not None:
            raise ValueError("either months or weeks, not both")
        return self

    def duration_months(self) -> float | None:
        if self.weeks is not None:
            return self.weeks * MONTHS_PER_WEEK
        return self.months


class CostItem(_Strict):
    """One cost line: a one-off amount and/or a recurring one, and when it falls.

    Attributes
    ----------
    one_off : float
        Paid once, spread evenly over the months of ``phase`` (or all in ``month``).
    monthly, yearly : float
        Recurring amounts (``yearly`` is paid as ``yearly / 12`` a month), from
        ``recurring_from`` to the end of the horizon.
    phase : str, optional
        A phase key, or ``project`` for the whole project; default: the category's own phase
        (:data:`DEFAULT_COST_SHARES`).
    month : int, optional
        Month index from the project start (0 = the first month) instead of a phase.
    recurring_from : ``"launch"``, ``"start"`` or int
        ``launch``: from the go-live month (default); ``start``: from month 0; or a month index.
    note : str
        The consultant's note (e.g. "quote from vendor X, 2026-09").
    """

    one_off: float = Field(0.0, ge=0)
    monthly: float = Field(0.0, ge=0)
    yearly: float = Field(0.0, ge=0)
    phase: str | None = None
    month: int | None = Field(None, ge=0)
    recurring_from: Literal["launch", "start"] | int = "launch"
    note: str = ""

    @model_validator(mode="after")
    def _one_timing(self) -> CostItem:
        if self.phase is not None and self.month is not None:
            raise ValueError("either phase or month for the one-off amount, not both")
        if isinstance(self.recurring_from, int) and self.recurring_from < 0:
            raise ValueError("recurring_from: a month index of 0 or more, 'launch' or 'start'")
        return self


class EfficiencyDip(_Strict):
    """The temporary drop in efficiency while people learn the new way of working.

    In month ``k`` after go-live (``k = 0 … months−1``) the firm loses ``depth × shape(k)`` of the
    monthly ``basis``; ``shape`` is ``(months − k) / months`` (``linear``: full depth in the
    go-live month, recovering evenly) or 1 (``flat``). A linear dip therefore costs
    ``depth × monthly basis × (months + 1) / 2`` in all.

    Attributes
    ----------
    depth : float
        Share of the basis lost at the worst (0-1).
    months : int
        Length of the dip after go-live (0 = no dip).
    basis : ``"staff_cost"`` or ``"gross_margin"``
        What is lost: the time of the staff who learn (their cost), or gross margin (sales lost
        while they learn).
    staff_cost_yearly : float, optional
        Yearly cost of the affected staff; default 12 % of the yearly revenue.
    shape : ``"linear"`` or ``"flat"``
    """

    depth: float = Field(0.15, ge=0, le=1)
    months: int = Field(3, ge=0, le=36)
    basis: Literal["staff_cost", "gross_margin"] = "staff_cost"
    staff_cost_yearly: float | None = Field(None, ge=0)
    shape: Literal["linear", "flat"] = "linear"


class BenefitItem(_Strict):
    """A benefit typed in client.yaml, counted on top of the scenarios' (:func:`scenario_benefits`).

    For a benefit the scenarios of workbook 04 do not model (e.g. the extra sales a marketing
    campaign is expected to bring); without scenarios, the only benefits.
    """

    name: str = Field(min_length=1)
    yearly_amount: float
    ramp_months: int | None = Field(None, ge=0, le=120)
    start: Literal["launch", "start"] | int = "launch"


class BenefitSettings(_Strict):
    """How benefits ramp up: ``ramp_months`` is the default linear ramp of every benefit."""

    ramp_months: int = Field(6, ge=0, le=120)
    items: list[BenefitItem] = []


class ReadinessScore(_Strict):
    """A readiness dimension scored 1 (not ready: a hard limit) to 5 (ready: a strength)."""

    score: int = Field(ge=1, le=5)
    note: str = ""


class ReadinessSettings(_Strict):
    """People, process and technology; unset ones come from ``context.internal``."""

    people: ReadinessScore | None = None
    process: ReadinessScore | None = None
    technology: ReadinessScore | None = None


class RiskSettings(_Strict):
    """A risk of the register: overrides a default risk (any field) or adds a new one.

    A new risk (a key not in :data:`DEFAULT_RISKS`) needs ``risk``, ``likelihood`` and
    ``impact``. ``include: false`` drops a default risk. Texts typed here are shown as typed,
    in every language.
    """

    risk: str | None = Field(None, min_length=1)
    likelihood: int | None = Field(None, ge=1, le=5)
    impact: int | None = Field(None, ge=1, le=5)
    mitigation: str | None = None
    owner: str | None = None
    include: bool = True


class MessageText(_Strict):
    """A level-1 message in both languages; one alone is used for both."""

    en: str | None = Field(None, min_length=1)
    es: str | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _some_text(self) -> MessageText:
        if self.en is None and self.es is None:
            raise ValueError("the message in en, es or both")
        return self

    def text(self, lang: str) -> str:
        return (self.es if lang == "es" else self.en) or self.en or self.es or ""


class OfferSettings(_Strict):
    """Level-2 offer for a segment (see :func:`crmkit.automation.level2`).

    Attributes
    ----------
    coupon_value : float, optional
        Value of the coupon in the client's currency; default 5 % of the segment's yearly revenue
        per customer (of its lifetime spend per year when it bought nothing in the window),
        rounded to two significant figures.
    redemption_rate : float
        Share of the targeted customers still active (``probability_alive``) who redeem it.
    uplift : float
        Extra yearly gross margin a redeeming customer brings, as a share of its own yearly
        margin (net of what it would have bought anyway).
    deadline_days : int
        Days the coupon is valid from the send date.
    min_probability_alive : float
        Customers less likely than this to be still active are not sent the offer.
    include : bool
        ``false`` leaves the segment out of level 2.
    """

    coupon_value: float | None = Field(None, ge=0)
    redemption_rate: float = Field(0.10, ge=0, le=1)
    uplift: float = Field(0.15, ge=0, le=5)
    deadline_days: int = Field(30, ge=1, le=365)
    min_probability_alive: float = Field(0.0, ge=0, le=1)
    include: bool = True


class AutomationSettings(_Strict):
    """Marketing automation, levels 1 (messages by interest) and 2 (offers).

    Attributes
    ----------
    interest_attribute : str, optional
        The customers.csv column with the customer's declared interest; default: the category
        (else product) the customer spent most on.
    messages : dict
        ``interest -> {en: …, es: …}``: the message for customers of that interest; interests
        without one get a generic message naming the interest.
    offer_defaults : OfferSettings
        Offer settings of every segment …
    offers : dict
        … and per segment (``segment -> OfferSettings``), unset fields falling back to
        ``offer_defaults``.
    """

    interest_attribute: str | None = Field(None, min_length=1)
    messages: dict[str, MessageText] = {}
    offer_defaults: OfferSettings = OfferSettings()
    offers: dict[str, OfferSettings] = {}

    def offer(self, segment: str) -> OfferSettings:
        """The settings in force for ``segment``: its own over ``offer_defaults``."""
        own = self.offers.get(segment)
        if own is None:
            return self.offer_defaults
        merged = self.offer_defaults.model_dump()
        merged.update({k: getattr(own, k) for k in own.model_fields_set})
        return OfferSettings.model_validate(merged)


CostCategory = Literal["analysis", "design", "hardware", "software", "maintenance",
                       "project_management", "training", "process_reengineering",
                       "learning_new_skills", "process_administration"]


class ExtraCost(CostItem):
    """A further cost line in a category (e.g. a second subscription beside a licence)."""

    category: CostCategory


class CrmProject(_Strict):
    """The ``crm_project:`` section of ``client.yaml``; ``{}`` gives a complete default plan.

    Attributes
    ----------
    start_date : date, optional
        Project start; default the first day of the month after ``as_of``.
    horizon_months : int, optional
        Months evaluated after go-live; default ``assumptions.horizon_months``.
    discount_rate : float, optional
        Yearly discount rate of the returns; default ``assumptions.discount_rate``.
    reference_revenue : float, optional
        Yearly revenue the default costs scale with; default the revenue of the last
        ``window_months`` of transactions.csv, annualised (set it when the data is a sample).
    phases : dict
        ``phase -> PhaseSettings`` (analysis, design, implementation_strategy, launch, or your own).
    costs : dict
        ``category -> CostItem``. A category listed here replaces its default amounts entirely
        (unset amounts are 0, so ``software: {yearly: 6000}`` means a subscription and no
        one-off licence); its timing defaults to the category's own.
    extra_costs : list of ExtraCost
        Further cost lines, each naming its ``category`` (added to that category's line, default
        or not).
    efficiency_dip : EfficiencyDip
    benefits : BenefitSettings
    readiness : ReadinessSettings
    risks : dict
        ``risk -> RiskSettings``: override or extend the default register.
    automation : AutomationSettings
    """

    start_date: dt.date | None = None
    horizon_months: int | None = Field(None, ge=6, le=240)
    discount_rate: float | None = Field(None, ge=0, le=1)
    reference_revenue: float | None = Field(None, gt=0)
    phases: dict[str, PhaseSettings] = {}
    costs: dict[CostCategory, CostItem] = {}
    extra_costs: list[ExtraCost] = []
    efficiency_dip: EfficiencyDip = EfficiencyDip()
    benefits: BenefitSettings = BenefitSettings()
    readiness: ReadinessSettings = ReadinessSettings()
    risks: dict[str, RiskSettings] = {}
    automation: AutomationSettings = AutomationSettings()

    @field_validator("phases", "risks")
    @classmethod
    def _keys(cls, value: dict) -> dict:
        wrong = [k for k in value if not _KEY.fullmatch(str(k))]
        if wrong:
            raise ValueError("keys in lower case letters, digits and _ (e.g. data_migration); "
                             f"found {', '.join(map(repr, wrong))}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> CrmProject:
        phases = self.phase_settings()
        for key, phase in phases.items():
            if key not in PHASES and (phase.label is None or phase.duration_months() is None):
                raise ValueError(f"phase '{key}' is not a standard phase ({', '.join(PHASES)}); "
                                 "a phase of your own needs a label and months or weeks")
            for dep in phase.depends_on or []:
                if dep not in phases:
                    raise ValueError(f"phase '{key}' depends on '{dep}', which is not a phase; "
                                     f"the phases are {', '.join(phases)}")
        _schedule_order(phases)  # raises on a cycle
        items = [*self.costs.items(), *((e.category, e) for e in self.extra_costs)]
        for category, item in items:
            if item.phase is not None and item.phase not in (*phases, "project"):
                raise ValueError(f"cost '{category}' falls in phase '{item.phase}', which is "
                                 f"not a phase; expected project or one of {', '.join(phases)}")
        for key, risk in self.risks.items():
            if key not in DEFAULT_RISKS and risk.include:
                missing = [f for f in ("risk", "likelihood", "impact") if getattr(risk, f) is None]
                if missing:
                    raise ValueError(f"new risk '{key}' needs {', '.join(missing)} (the default "
                                     f"risks are {', '.join(DEFAULT_RISKS)})")
        return self

    def phase_settings(self) -> dict[str, PhaseSettings]:
        """Every phase with its defaults filled in, standard phases first."""
        out: dict[str, PhaseSettings] = {}
        for i, key in enumerate(PHASES):
            own = self.phases.get(key, PhaseSettings())
            months = own.duration_months() or DEFAULT_PHASE_MONTHS[key]
            deps = own.depends_on if own.depends_on is not None else (
                [PHASES[i - 1]] if i else [])
            out[key] = PhaseSettings(months=months, depends_on=deps, label=own.label)
        for key, own in self.phases.items():
            if key not in PHASES:
                out[key] = PhaseSettings(months=own.duration_months(),
                                         depends_on=own.depends_on or [], label=own.label)
        return out


def _schedule_order(phases: Mapping[str, PhaseSettings]) -> list[str]:
    """Phases in an order where each comes after those it depends on; ValueError on a cycle."""
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(key: str, path: list[str]) -> None:
        if state.get(key) == 2:
            return
        if state.get(key) == 1:
            cycle = path[path.index(key):] + [key]
            raise ValueError("the phases depend on each other in a circle: "
                             + " → ".join(cycle) + "; expected each to wait only for earlier ones")
        state[key] = 1
        for dep in phases[key].depends_on or []:
            if dep in phases:
                visit(dep, path + [key])
        state[key] = 2
        order.append(key)

    for key in phases:
        visit(key, [])
    return order


def project_settings(config: ClientConfig | CrmProject | Mapping | None) -> CrmProject:
    """The ``crm_project`` settings out of a ``ClientConfig``, the section, a mapping or None."""
    if config is None:
        return CrmProject()
    if isinstance(config, CrmProject):
        return config
    if isinstance(config, Mapping):
        return CrmProject.model_validate(config)
    section = getattr(config, "crm_project", None)
    if isinstance(section, CrmProject):
        return section
    if isinstance(section, Mapping):
        return CrmProject.model_validate(section)
    raise TypeError(f"expected a ClientConfig or CrmProject, found {type(config)!r}")


# --------------------------------------------------------------------------------------------
# Scale of the client and the plan
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scale:
    """How big the client is: what the default costs and the efficiency dip scale with.

    Attributes
    ----------
    yearly_revenue : float
        Net revenue of the last ``window_months``, annualised (× 12 / window).
    yearly_gross_margin : float
        Gross margin of the same window, annualised.
    customers : int
        Customers in customers.csv.
    """

    yearly_revenue: float
    yearly_gross_margin: float
    customers: int = 0

    @classmethod
    def from_transactions(cls, customers: pd.DataFrame, transactions: pd.DataFrame,
                          as_of: dt.date, *, window_months: int = 12,
                          gross_margin: float = 0.30) -> Scale:
        """The scale from canonical frames (``docs/data-contract.md``).

        ``gross_margin`` is the margin rate used when transactions have no ``margin`` column.
        """
        end = pd.Timestamp(as_of)
        start = end - pd.DateOffset(months=window_months)
        window = transactions[(transactions["date"] > start) & (transactions["date"] <= end)]
        revenue = float(window["amount"].sum())
        if "margin" in window:
            margin = float(window["margin"].fillna(window["amount"] * gross_margin).sum())
        else:
            margin = revenue * gross_margin
        factor = 12.0 / window_months
        return cls(revenue * factor, margin * factor, int(customers["customer_id"].nunique()))

    @classmethod
    def from_workspace(cls, workspace: Workspace) -> Scale:
        """The scale of a loaded workspace, over its ``assumptions.window_months``."""
        a = workspace.config.assumptions
        return cls.from_transactions(workspace.customers, workspace.transactions,
                                     workspace.as_of, window_months=a.window_months,
                                     gross_margin=a.gross_margin)


@dataclass
class Plan:
    """A scheduled, costed CRM implementation plan (built by :func:`build`).

    Attributes
    ----------
    settings : CrmProject
        The section it was built from.
    scale : Scale
    start_date : date
        Month 0 starts on this day.
    phases : DataFrame
        One row per phase in schedule order: ``phase`` (key), ``label`` (a phase of the
        consultant's own; missing (None/NaN) for standard ones), ``depends_on`` (list of keys),
        ``months`` (duration), ``start_month``, ``end_month`` (offsets from the start in months, end
        exclusive), ``start`` and ``finish`` (dates; ``finish`` is the last day of the phase).
    go_live_month : int
        Month index of go-live: the start of the launch phase, rounded up to a whole month.
        Benefits, recurring costs and the efficiency dip start here by default.
    horizon_months : int
        Months of cash flow from the project start: go-live + the evaluation horizon.
    discount_rate : float
        Yearly discount rate of the returns.
    reference_revenue : float
        Yearly revenue R the default costs were scaled from.
    lines : DataFrame
        The cost lines in force: ``category``, ``group``, ``one_off``, ``monthly`` (recurring,
        monthly equivalent), ``phase``, ``month``, ``recurring_from``, ``source`` (``default`` or
        ``client.yaml``), ``note``. The efficiency dip is a line of its own with its total.
    costs : DataFrame
        The cost schedule, long: ``month``, ``date``, ``year`` (project year, 1 = months 0-11),
        ``category``, ``group``, ``kind`` (``one_off``, ``recurring``, ``dip``), ``amount``
        (positive = money out).
    """

    settings: CrmProject
    scale: Scale
    start_date: dt.date
    phases: pd.DataFrame
    go_live_month: int
    horizon_months: int
    discount_rate: float
    reference_revenue: float
    lines: pd.DataFrame
    costs: pd.DataFrame
    benefit_ramp_months: int = 6
    default_benefits: list[Benefit] = field(default_factory=list)

    def month_date(self, month: float) -> dt.date:
        """The date ``month`` months after the start (fractions of a month by days)."""
        return _date_at(self.start_date, month)

    @property
    def go_live_date(self) -> dt.date:
        return self.month_date(self.go_live_month)

    @property
    def end_date(self) -> dt.date:
        """The last day of the evaluation horizon."""
        return self.month_date(self.horizon_months) - dt.timedelta(days=1)

    @property
    def project_months(self) -> float:
        """Length of the project, from the start to the end of its last phase, in months."""
        return float(self.phases["end_month"].max())


def _date_at(start: dt.date, month: float) -> dt.date:
    whole = math.floor(month + 1e-9)
    base = pd.Timestamp(start) + pd.DateOffset(months=whole)
    following = pd.Timestamp(start) + pd.DateOffset(months=whole + 1)
    frac = max(month - whole, 0.0)
    return (base + pd.Timedelta(days=round(frac * (following - base).days))).date()


def _default_start(as_of: dt.date) -> dt.date:
    return (pd.Timestamp(as_of).replace(day=1) + pd.DateOffset(months=1)).date()


def _nice(value: float) -> float:
    """Round an estimate to two significant figures (5931 -> 5900): not a quote."""
    if value <= 0:
        return 0.0
    digits = 1 - int(math.floor(math.log10(value)))
    return float(round(value, digits))


def build(config: ClientConfig | CrmProject | Mapping | None, scale: Scale, *,
          as_of: dt.date | None = None, discount_rate: float | None = None,
          horizon_months: int | None = None) -> Plan:
    """Schedule and cost the CRM project of ``client.yaml``.

    Parameters
    ----------
    config : ClientConfig, CrmProject or mapping
        A ClientConfig supplies ``crm_project``, ``as_of`` and the ``assumptions`` defaults
        (discount rate, horizon); a bare section uses 10 % and 36 months.
    scale : Scale
        The client's size (:meth:`Scale.from_workspace`).
    as_of : date, optional
        Analysis date; the default start is the first day of the following month. Required
        when neither ``crm_project.start_date`` nor ``config.as_of`` is set.
    discount_rate, horizon_months : optional
        Override the section and the assumptions (used by the sensitivity analysis).

    Returns
    -------
    Plan

    Raises
    ------
    ValueError
        When no start date can be found, when default costs are needed but the yearly revenue is
        not positive, or when a cost falls after the horizon.
    """
    settings = project_settings(config)
    assumptions = getattr(config, "assumptions", None)
    as_of = as_of or getattr(config, "as_of", None)
    if settings.start_date is not None:
        start = settings.start_date
    elif as_of is not None:
        start = _default_start(as_of)
    else:
        raise ValueError("crm_project needs a start_date, or pass as_of (the analysis date) so "
                         "that the project starts the month after it")
    phases = _schedule(settings)
    launch_start = float(phases.loc[phases["phase"] == "launch", "start_month"].iloc[0])
    go_live = int(math.ceil(launch_start - 1e-9))
    evaluation = (horizon_months or settings.horizon_months
                  or getattr(assumptions, "horizon_months", 36))
    horizon = max(go_live + evaluation, int(math.ceil(phases["end_month"].max() - 1e-9)))
    rate = discount_rate if discount_rate is not None else (
        settings.discount_rate if settings.discount_rate is not None
        else getattr(assumptions, "discount_rate", 0.10))
    revenue = settings.reference_revenue or scale.yearly_revenue
    phases["start"] = [_date_at(start, m) for m in phases["start_month"]]
    phases["finish"] = [_date_at(start, m) - dt.timedelta(days=1) for m in phases["end_month"]]
    lines = _cost_lines(settings, revenue, scale)
    plan = Plan(settings=settings, scale=scale, start_date=start, phases=phases,
                go_live_month=go_live, horizon_months=horizon, discount_rate=float(rate),
                reference_revenue=float(revenue), lines=lines, costs=pd.DataFrame(),
                benefit_ramp_months=settings.benefits.ramp_months)
    plan.costs = _schedule_costs(plan, lines)
    plan.default_benefits = [Benefit(b.name, b.yearly_amount, b.ramp_months, b.start)
                             for b in settings.benefits.items]
    return plan


def _schedule(settings: CrmProject) -> pd.DataFrame:
    phases = settings.phase_settings()
    ends: dict[str, float] = {}
    rows = []
    for key in _schedule_order(phases):
        phase = phases[key]
        begin = max((ends[d] for d in phase.depends_on or []), default=0.0)
        length = float(phase.duration_months())
        ends[key] = begin + length
        rows.append({"phase": key, "label": phase.label if key not in PHASES else None,
                     "depends_on": list(phase.depends_on or []), "months": length,
                     "start_month": begin, "end_month": begin + length})
    frame = pd.DataFrame(rows)
    # Standard phases first in their own order, then the consultant's, each by start.
    rank = {k: i for i, k in enumerate(PHASES)}
    frame["_rank"] = [rank.get(k, len(PHASES)) for k in frame["phase"]]
    return (frame.sort_values(["start_month", "_rank"], kind="stable").drop(columns="_rank")
            .reset_index(drop=True))


def _cost_lines(settings: CrmProject, revenue: float, scale: Scale) -> pd.DataFrame:
    rows = []
    needs_default = [c for c in DEFAULT_COST_SHARES if c not in settings.costs]
    dip = settings.efficiency_dip
    if (needs_default or (dip.basis == "staff_cost" and dip.staff_cost_yearly is None
                          and dip.depth > 0 and dip.months > 0)) and not revenue > 0:
        raise ValueError("the default CRM costs scale with the yearly revenue, which is "
                         f"{revenue:,.0f} in the data; set crm_project.reference_revenue (the "
                         "client's yearly revenue) or give every cost in crm_project.costs")
    for category, (one_off, yearly, phase) in DEFAULT_COST_SHARES.items():
        own = settings.costs.get(category)
        if own is None:
            rows.append({"category": category, "one_off": _nice(one_off * revenue),
                         "monthly": _nice(yearly * revenue) / 12.0, "phase": phase,
                         "month": None, "recurring_from": "launch", "source": "default",
                         "note": ""})
            continue
        rows.append(_line(category, own, phase))
    for extra in settings.extra_costs:
        rows.append(_line(extra.category, extra, DEFAULT_COST_SHARES[extra.category][2]))
    basis = _dip_basis_yearly(dip, revenue, scale)
    total_dip = dip.depth * basis / 12.0 * sum(_dip_shape(dip))
    rows.append({"category": "efficiency_dip", "one_off": total_dip, "monthly": 0.0,
                 "phase": None, "month": None, "recurring_from": "launch",
                 "source": "client.yaml" if "efficiency_dip" in settings.model_fields_set
                 else "default", "note": ""})
    frame = pd.DataFrame(rows)
    frame.insert(1, "group", frame["category"].map(CATEGORY_GROUP))
    order = frame["category"].map({c: i for i, c in enumerate(CATEGORIES)})
    return frame.iloc[order.argsort(kind="stable")].reset_index(drop=True)


def _line(category: str, item: CostItem, phase: str) -> dict:
    return {"category": category, "one_off": item.one_off,
            "monthly": item.monthly + item.yearly / 12.0,
            "phase": None if item.month is not None else (item.phase or phase),
            "month": item.month, "recurring_from": item.recurring_from,
            "source": "client.yaml", "note": item.note}


def _dip_basis_yearly(dip: EfficiencyDip, revenue: float, scale: Scale) -> float:
    if dip.basis == "gross_margin":
        return float(scale.yearly_gross_margin)
    if dip.staff_cost_yearly is not None:
        return float(dip.staff_cost_yearly)
    return _nice(DEFAULT_STAFF_COST_SHARE * revenue)


def _dip_shape(dip: EfficiencyDip) -> list[float]:
    """Share of the depth lost in each month after go-live (1 = the full depth)."""
    n = dip.months
    if dip.shape == "flat":
        return [1.0] * n
    return [(n - k) / n for k in range(n)]


def _span(plan: Plan, phase: str) -> tuple[float, float]:
    if phase == "project":
        return 0.0, plan.project_months
    row = plan.phases.loc[plan.phases["phase"] == phase].iloc[0]
    return float(row["start_month"]), float(row["end_month"])


def _spread(amount: float, begin: float, end: float, horizon: int) -> dict[int, float]:
    """Spread ``amount`` evenly over the months ``[begin, end)`` covers, by overlap."""
    out: dict[int, float] = {}
    length = end - begin
    for m in range(int(math.floor(begin)), int(math.ceil(end - 1e-9))):
        overlap = min(end, m + 1) - max(begin, m)
        if overlap > 1e-12 and m < horizon:
            out[m] = out.get(m, 0.0) + amount * overlap / length
    return out


def _schedule_costs(plan: Plan, lines: pd.DataFrame) -> pd.DataFrame:
    rows = []
    horizon = plan.horizon_months
    dip = plan.settings.efficiency_dip
    basis = _dip_basis_yearly(dip, plan.reference_revenue, plan.scale)
    for line in lines.itertuples(index=False):
        if line.category == "efficiency_dip":
            for k, share in enumerate(_dip_shape(dip)):
                month = plan.go_live_month + k
                if month < horizon and dip.depth > 0:
                    rows.append((month, line.category, "dip", dip.depth * share * basis / 12.0))
            continue
        if line.one_off:
            if line.month is not None and not pd.isna(line.month):
                month = int(line.month)
                if month >= horizon:
                    raise ValueError(f"cost '{line.category}' falls in month {month}, after the "
                                     f"horizon of {horizon} months")
                rows.append((month, line.category, "one_off", float(line.one_off)))
            else:
                begin, end = _span(plan, line.phase)
                for month, amount in _spread(float(line.one_off), begin, end, horizon).items():
                    rows.append((month, line.category, "one_off", amount))
        if line.monthly:
            first = _month_of(plan, line.recurring_from)
            for month in range(first, horizon):
                rows.append((month, line.category, "recurring", float(line.monthly)))
    frame = pd.DataFrame(rows, columns=["month", "category", "kind", "amount"])
    frame = frame.groupby(["month", "category", "kind"], as_index=False, sort=True)["amount"].sum()
    frame.insert(1, "date", [plan.month_date(m) for m in frame["month"]])
    frame.insert(2, "year", frame["month"] // 12 + 1)
    frame.insert(4, "group", frame["category"].map(CATEGORY_GROUP))
    return frame


def _month_of(plan: Plan, when: str | int) -> int:
    if when == "launch":
        return plan.go_live_month
    if when == "start":
        return 0
    return int(when)


# --------------------------------------------------------------------------------------------
# Reading the plan: phases, costs, TCO
# --------------------------------------------------------------------------------------------

def phase_name(key: str, lang: str, label: str | None = None) -> str:
    """A phase's name in ``lang`` (a phase of the consultant's own keeps its label)."""
    if isinstance(label, str) and label:
        return label
    return t(f"plan_phase_{key}", lang) if f"plan_phase_{key}" in catalogue() else key


def category_name(key: str, lang: str) -> str:
    """A cost category's name in ``lang``."""
    return t(f"plan_cat_{key}", lang)


def phase_table(plan: Plan, lang: str) -> pd.DataFrame:
    """The phases as the client reads them.

    Returns
    -------
    DataFrame
        ``phase``, ``name``, ``start``, ``finish`` (dates), ``months`` (duration),
        ``weeks`` (the same in weeks), ``depends_on`` (names, joined by ", ").
    """
    names = {r.phase: phase_name(r.phase, lang, r.label) for r in plan.phases.itertuples()}
    out = plan.phases[["phase", "start", "finish", "months"]].copy()
    out.insert(1, "name", out["phase"].map(names))
    out["weeks"] = out["months"] / MONTHS_PER_WEEK
    out["depends_on"] = [", ".join(names[d] for d in deps) for deps in plan.phases["depends_on"]]
    return out


def cost_lines(plan: Plan, lang: str) -> pd.DataFrame:
    """The cost assumptions, one row per cost line, for the client to check.

    Returns
    -------
    DataFrame
        ``category``, ``name``, ``group``, ``group_name``, ``one_off``, ``yearly`` (recurring,
        a year), ``when`` (text: the phase or month of the one-off, and from when it recurs),
        ``total`` (over the horizon), ``source`` (``default`` or ``client.yaml``), ``note``.
    """
    totals = plan.costs.groupby("category")["amount"].sum()
    rows = []
    seen: dict[str, int] = {}
    for line in plan.lines.itertuples(index=False):
        parts = []
        if line.category == "efficiency_dip":
            dip = plan.settings.efficiency_dip
            parts.append(t("plan_when_dip", lang, depth=f"{dip.depth:.0%}", months=dip.months,
                           basis=t(f"plan_dip_basis_{dip.basis}", lang)))
        else:
            if line.one_off:
                if line.month is not None and not pd.isna(line.month):
                    parts.append(t("plan_when_month", lang, month=int(line.month) + 1))
                else:
                    parts.append(phase_name(line.phase, lang) if line.phase != "project"
                                 else t("plan_phase_project", lang))
            if line.monthly:
                first = _month_of(plan, line.recurring_from)
                parts.append(t("plan_when_recurring", lang, month=first + 1))
        seen[line.category] = seen.get(line.category, 0) + 1
        rows.append({"category": line.category, "name": category_name(line.category, lang),
                     "group": line.group, "group_name": t(f"plan_group_{line.group}", lang),
                     "one_off": float(line.one_off), "yearly": float(line.monthly) * 12.0,
                     "when": "; ".join(parts) or "–", "source": line.source, "note": line.note})
    out = pd.DataFrame(rows)
    # A category with several lines shows its horizon total on its first line only.
    out["total"] = [float(totals.get(c, 0.0)) if i == 0 else np.nan
                    for c, i in zip(out["category"], out.groupby("category").cumcount(),
                                    strict=True)]
    return out


def monthly_costs(plan: Plan) -> pd.DataFrame:
    """Costs per month (rows, ``0 … horizon−1``) and category (columns, :data:`CATEGORIES`)."""
    wide = plan.costs.pivot_table(index="month", columns="category", values="amount",
                                  aggfunc="sum", fill_value=0.0)
    return wide.reindex(index=range(plan.horizon_months), columns=list(CATEGORIES),
                        fill_value=0.0).fillna(0.0).rename_axis(index="month", columns="category")


def costs_by_year(plan: Plan, lang: str | None = None) -> pd.DataFrame:
    """Costs per category (rows) and project year (columns ``1 … n``), with ``total``.

    Year 1 is months 0-11 from the project start; the last year may be shorter (see
    :func:`tco`). With ``lang``, a ``name`` column gives the category's name.
    """
    wide = plan.costs.pivot_table(index="category", columns="year", values="amount",
                                  aggfunc="sum", fill_value=0.0)
    years = range(1, (plan.horizon_months - 1) // 12 + 2)
    wide = wide.reindex(index=list(CATEGORIES), columns=list(years), fill_value=0.0).fillna(0.0)
    wide.columns = [int(c) for c in wide.columns]
    wide["total"] = wide.sum(axis=1)
    wide.insert(0, "group", [CATEGORY_GROUP[c] for c in wide.index])
    if lang is not None:
        wide.insert(0, "name", [category_name(c, lang) for c in wide.index])
    return wide.rename_axis(index="category")


def tco(plan: Plan) -> pd.DataFrame:
    """Total cost of ownership per project year.

    Returns
    -------
    DataFrame
        One row per project year: ``year``, ``months`` (months of the horizon in that year),
        ``start`` (date), ``project``, ``technology``, ``human`` (the groups of
        :data:`CATEGORY_GROUP`), ``one_off``, ``recurring``, ``efficiency_dip``, ``total`` and
        ``cumulative``. The totals equal the sum of every category (tested).
    """
    costs = plan.costs
    years = list(range(1, (plan.horizon_months - 1) // 12 + 2))
    by_group = costs.pivot_table(index="year", columns="group", values="amount", aggfunc="sum",
                                 fill_value=0.0).reindex(index=years, fill_value=0.0)
    by_kind = costs.pivot_table(index="year", columns="kind", values="amount", aggfunc="sum",
                                fill_value=0.0).reindex(index=years, fill_value=0.0)
    out = pd.DataFrame({"year": years})
    out["months"] = [min(12, plan.horizon_months - 12 * (y - 1)) for y in years]
    out["start"] = [plan.month_date(12 * (y - 1)) for y in years]
    for group in ("project", "technology", "human"):
        out[group] = by_group.get(group, pd.Series(0.0, index=years)).to_numpy()
    out["one_off"] = by_kind.get("one_off", pd.Series(0.0, index=years)).to_numpy()
    out["recurring"] = by_kind.get("recurring", pd.Series(0.0, index=years)).to_numpy()
    out["efficiency_dip"] = by_kind.get("dip", pd.Series(0.0, index=years)).to_numpy()
    out["total"] = out[["project", "technology", "human"]].sum(axis=1)
    out["cumulative"] = out["total"].cumsum()
    return out


# --------------------------------------------------------------------------------------------
# Benefits
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Benefit:
    """A yearly benefit of the CRM (from a workbook-04 scenario), ramping up linearly.

    Parameters
    ----------
    name : str
        Its source, e.g. ``"retention gains"`` (client text; shown as given).
    yearly_amount : float
        The benefit a year once fully ramped up, in the client's currency (e.g. the extra gross
        margin a year of a scenario).
    ramp_months : int, optional
        Months to reach the full amount: in month ``k`` after ``start`` the benefit is
        ``yearly_amount / 12 × min((k + 1) / ramp_months, 1)`` (0 = full from the first month).
        Default: ``crm_project.benefits.ramp_months`` (6).
    start : ``"launch"``, ``"start"`` or int
        ``launch`` = the go-live month; ``start`` = month 0; or a month index.
    """

    name: str
    yearly_amount: float
    ramp_months: int | None = None
    start: str | int = "launch"

    def __post_init__(self):
        if self.ramp_months is not None and self.ramp_months < 0:
            raise ValueError(f"benefit {self.name!r}: ramp_months of 0 or more, "
                             f"found {self.ramp_months}")
        if not (self.start in ("launch", "start") or (isinstance(self.start, int)
                                                      and self.start >= 0)):
            raise ValueError(f"benefit {self.name!r}: start 'launch', 'start' or a month index, "
                             f"found {self.start!r}")


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

    A scenario (:class:`crmkit.scenarios.Scenario`) is evaluated on the
    :class:`crmkit.scenarios.ScenarioModel` of the same customers. Its **yearly benefit** is the
    change in the yearly profit after serving costs, corrected for how long the customers stay:

    ``Σ_s profit′_s × L′_s / L_s − profit_s``

    per segment ``s``, where ``profit`` is the yearly gross margin minus the cost to serve (today
    and in the scenario, ′), and ``L = Σ_{t<H} (r / (1 + d))^t`` is the discounted number of
    years a customer stays over the horizon at the segment's yearly retention ``r`` (today) or
    ``r′`` (scenario), with the model's discount rate ``d`` and horizon ``H``
    (:func:`crmkit.cost_benefit.lifetime_factor`). So:

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
    model : crmkit.scenarios.ScenarioModel
    scenarios : list of Scenario or mappings
        The ones workbook 04 compares (:func:`crmkit.scenarios.proposed`).
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
    from .cost_benefit import lifetime_factor
    from .scenarios import _scenario

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
    :func:`crmkit.finance.cash_flows` takes; the figures and the rule that skips a repeated
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


@dataclass
class EarlierSteps:
    """What workbook 05 takes from workbooks 01-04, recomputed from the workspace.

    Attributes
    ----------
    customers : DataFrame
        The per-customer table of workbook 02.
    cost : crmkit.cost_to_serve.CostToServe
        The cost to serve of workbook 03.
    model : crmkit.scenarios.ScenarioModel
        Workbook 04's scenario model.
    scenarios : list of crmkit.scenarios.Scenario
        The scenarios workbook 04 compares: client.yaml's, else the suggested ones.
    suggested : bool
        True when client.yaml has no scenarios and they were suggested.
    objective : crmkit.context.Recommendation
        Workbook 01's objective (``objective.chosen``).
    gap : crmkit.relationships.Gap
        Workbook 03's relationship gap.
    """

    customers: pd.DataFrame
    cost: Any
    model: Any
    scenarios: list
    suggested: bool
    objective: Any
    gap: Any


def earlier_steps(wb: Any) -> EarlierSteps:
    """Recompute what the plan needs from the earlier workbooks, with their own calls.

    The per-customer table is the run's ``tables/customers.parquet`` when workbook 02 wrote it
    (else computed on the spot); the cost to serve, scenario model and scenarios are those of
    workbooks 03 and 04, the objective that of workbook 01 — the same functions on the same
    workspace, so the figures are the same, and workbook 05 runs alone.

    Parameters
    ----------
    wb : crmkit.workbook.Workbook
    """
    from . import context, cost_benefit, cost_to_serve, relationships, scenarios

    ws, config = wb.ws, wb.config
    customers = relationships.customer_table(wb)
    cost = cost_to_serve.compute(customers, ws.interactions, config)
    economics = cost_benefit.per_segment(customers, cost, config)
    model = scenarios.ScenarioModel.from_cost(customers, cost, config)
    proposed, suggested = scenarios.proposed(config, model, economics, wb.lang)
    a = config.assumptions
    indicators = context.indicators(ws.customers, ws.transactions, ws.as_of,
                                    window_months=a.window_months, lapse_days=a.lapse_days,
                                    survey=ws.survey)
    objective = context.recommend_objective(config, indicators, wb.lang, wb.fmt)
    expected = relationships.expectations(customers, ws.survey, config)
    return EarlierSteps(customers=customers, cost=cost, model=model, scenarios=proposed,
                        suggested=suggested, objective=objective,
                        gap=relationships.gap(cost, expected))


# --------------------------------------------------------------------------------------------
# Readiness and risks
# --------------------------------------------------------------------------------------------

def _reading(score: float) -> str:
    if score <= 2:
        return "limit"
    return "strength" if score >= 4 else "adequate"


def _readiness_scores(config: Any) -> dict[str, tuple[int, str, str]]:
    """dimension -> (score, source, note)."""
    settings = project_settings(config)
    internal = getattr(getattr(config, "context", None), "internal", None)
    out = {}
    for dim in READINESS:
        own = getattr(settings.readiness, dim)
        if own is not None:
            out[dim] = (own.score, "crm_project", own.note)
        elif internal is not None:
            capability = getattr(internal, READINESS_SOURCE[dim])
            out[dim] = (capability.score, f"context.{READINESS_SOURCE[dim]}", capability.note)
        else:
            out[dim] = (3, "default", "")
    return out


def readiness(config: ClientConfig | CrmProject | Mapping | None, lang: str) -> pd.DataFrame:
    """People, process and technology readiness, scored 1-5, with what to do about each.

    Scores come from ``crm_project.readiness``; unset ones from ``context.internal`` (people ←
    people, process ← operational, technology ← technological), else 3.

    Returns
    -------
    DataFrame
        ``dimension``, ``name``, ``score`` (1-5), ``source`` (``crm_project``,
        ``context.<capability>`` or ``default``), ``reading`` (``limit`` ≤ 2, ``adequate`` 3,
        ``strength`` ≥ 4), ``reading_name``, ``advice`` (what the plan does about it) and
        ``note`` (the consultant's). ``frame.attrs["index"]`` is the overall readiness
        ``(mean score − 1) / 4`` (0 = nothing ready, 1 = fully ready).
    """
    rows = []
    for dim, (score, source, note) in _readiness_scores(config).items():
        reading = _reading(score)
        rows.append({"dimension": dim, "name": t(f"plan_readiness_{dim}", lang), "score": score,
                     "source": source, "reading": reading,
                     "reading_name": t(f"reading_{reading}", lang),
                     "advice": t(f"plan_advice_{dim}_{reading}", lang), "note": note})
    frame = pd.DataFrame(rows)
    frame.attrs["index"] = float((frame["score"].mean() - 1) / 4)
    return frame


def _risk_level(score: int) -> str:
    if score >= 15:
        return "high"
    return "medium" if score >= 8 else "low"


def risk_register(config: ClientConfig | CrmProject | Mapping | None, lang: str) -> pd.DataFrame:
    """The risk register: default risks adjusted to the client's readiness, plus its own.

    Each default risk is tied to a readiness dimension (or to ``context.internal.financial``):
    its likelihood is ``base + (3 − score)``, kept within 1-5, so a process scored 1 makes
    "procedures never formalised" two steps more likely and a process scored 5 two steps less.
    ``crm_project.risks`` overrides any field of a default risk, drops one (``include: false``)
    or adds new ones. Score = likelihood × impact (1-25); level: high ≥ 15, medium ≥ 8, else low.

    Returns
    -------
    DataFrame
        ``number`` (1 = highest score; the bubbles of the risk matrix carry it), ``risk_key``,
        ``risk`` (text), ``dimension``, ``likelihood``, ``impact``, ``score``, ``level``,
        ``level_name``, ``mitigation``, ``owner``, ``source`` (``default`` or ``client.yaml``);
        highest score first.
    """
    settings = project_settings(config)
    scores = {dim: s for dim, (s, _, _) in _readiness_scores(config).items()}
    internal = getattr(getattr(config, "context", None), "internal", None)
    if internal is not None:
        scores["financial"] = internal.financial.score
    rows = []
    for key, (dim, base, impact, owner) in DEFAULT_RISKS.items():
        likelihood = base if dim is None else int(np.clip(base + 3 - scores.get(dim, 3), 1, 5))
        rows.append({"risk_key": key, "risk": t(f"plan_risk_{key}", lang), "dimension": dim,
                     "likelihood": likelihood, "impact": impact,
                     "mitigation": t(f"plan_mitigation_{key}", lang), "owner": t(owner, lang),
                     "source": "default"})
    by_key = {r["risk_key"]: r for r in rows}
    for key, own in settings.risks.items():
        if not own.include:
            by_key.pop(key, None)
            continue
        row = by_key.setdefault(key, {"risk_key": key, "dimension": None, "mitigation": "",
                                      "owner": ""})
        for name in ("risk", "likelihood", "impact", "mitigation", "owner"):
            value = getattr(own, name)
            if value is not None:
                row[name] = value
        row["source"] = "client.yaml"
    frame = pd.DataFrame(list(by_key.values()),
                         columns=["risk_key", "risk", "dimension", "likelihood", "impact",
                                  "mitigation", "owner", "source"])
    frame["likelihood"] = frame["likelihood"].astype(int)
    frame["impact"] = frame["impact"].astype(int)
    frame["score"] = frame["likelihood"] * frame["impact"]
    frame["level"] = frame["score"].map(_risk_level)
    frame["level_name"] = [t(f"plan_level_{lv}", lang) for lv in frame["level"]]
    frame = frame[["risk_key", "risk", "dimension", "likelihood", "impact", "score", "level",
                   "level_name", "mitigation", "owner", "source"]]
    frame = frame.sort_values(["score", "impact"], ascending=False, kind="stable"
                              ).reset_index(drop=True)
    frame.insert(0, "number", range(1, len(frame) + 1))
    return frame


# --------------------------------------------------------------------------------------------
# Which CRM component first
# --------------------------------------------------------------------------------------------

#: The rule table: rule -> points to (analytical, operational, collaborative). Each rule's
#: reason is the message ``plan_rule_<rule>``.
COMPONENT_RULES: dict[str, tuple[int, int, int]] = {
    "objective_attract": (1, 2, 2),
    "objective_retain": (2, 1, 1),
    "objective_grow": (2, 2, 0),
    "gap_personal": (0, 2, 1),
    "gap_self_service": (1, 0, 2),
    "gap_community": (0, 0, 2),
    "gap_segments": (0, 1, 1),
    "technology_low": (-1, 1, 0),
    "technology_high": (1, 0, 0),
}
#: Which relationship types each gap rule covers.
GAP_TYPES: dict[str, tuple[str, ...]] = {
    "gap_personal": ("personal_assistance", "dedicated_personal_assistance"),
    "gap_self_service": ("self_service", "automated_services"),
    "gap_community": ("communities", "co_creation"),
}
#: A segment whose gap (or a type whose shortfall) reaches this share counts as a gap.
GAP_THRESHOLD = 0.10
#: Ties are broken in the usual build order: operational systems collect the data that the
#: analytical ones need, and the channels come last.
TIE_ORDER = ("operational", "analytical", "collaborative")


@dataclass
class ComponentChoice:
    """Which CRM component to build first, and why.

    Attributes
    ----------
    rules : DataFrame
        The rules that applied: ``rule``, ``analytical``, ``operational``, ``collaborative``
        (points), ``reason`` (the sentence in the language).
    ranking : DataFrame
        ``component``, ``name``, ``description``, ``points``, ``rank`` (1 = first), best first.
    first : str
        The component to build first.
    sentence : str
        The reasoning in one paragraph, in the language.
    types_to_strengthen : list of str
        The relationship types the gaps pointed at.
    """

    rules: pd.DataFrame
    ranking: pd.DataFrame
    first: str
    sentence: str
    types_to_strengthen: list[str]
    lang: str = "en"

    def as_dict(self) -> dict:
        """Key figures: ``first``, ``order``, ``points``, ``rules``, ``types_to_strengthen``
        and their names in the choice's language (``type_names``)."""
        from .relationships import type_name

        return {"first": self.first,
                "order": list(self.ranking["component"]),
                "points": {r.component: int(r.points) for r in self.ranking.itertuples()},
                "rules": list(self.rules["rule"]),
                "types_to_strengthen": list(self.types_to_strengthen),
                "type_names": [type_name(k, self.lang) for k in self.types_to_strengthen]}


def _read_gaps(gaps: Any) -> tuple[list[str], int]:
    """Relationship types to strengthen and the number of segments with a large gap.

    Accepts None; a list of relationship types; a mapping or Series ``type -> gap`` (gap =
    current − expected share, as in :class:`crmkit.relationships.Gap`: negative = the client
    asks for more of that type than it gets); a mapping or Series ``segment -> gap size`` (0-1);
    a DataFrame segments × types (``Gap.gap``) or with columns ``segment`` and ``gap``; or a
    :class:`crmkit.relationships.Gap`.
    """
    from .relationships import TYPES

    if gaps is None:
        return [], 0
    if hasattr(gaps, "gap") and isinstance(gaps.gap, pd.DataFrame):
        gaps = gaps.gap
    if isinstance(gaps, pd.DataFrame):
        type_columns = [c for c in gaps.columns if c in TYPES]
        if type_columns:
            shortfall = gaps[type_columns].min(axis=0)
            return [c for c in type_columns if shortfall[c] <= -GAP_THRESHOLD], 0
        if {"segment", "gap"} <= set(gaps.columns):
            gaps = gaps.set_index("segment")["gap"]
        else:
            raise ValueError("gaps: a DataFrame of segments × relationship types, or with "
                             f"columns segment and gap; found columns {list(gaps.columns)}")
    if isinstance(gaps, pd.Series):
        gaps = gaps.to_dict()
    if isinstance(gaps, Mapping):
        keys = [str(k) for k in gaps]
        if keys and all(k in TYPES for k in keys):
            return [k for k in keys if float(gaps[k]) <= -GAP_THRESHOLD], 0
        return [], sum(1 for v in gaps.values() if abs(float(v)) >= GAP_THRESHOLD)
    if isinstance(gaps, str):
        gaps = [gaps]
    if isinstance(gaps, Iterable):
        types = [str(g) for g in gaps]
        unknown = [g for g in types if g not in TYPES]
        if unknown:
            raise ValueError(f"gaps: relationship types, found {', '.join(unknown)}; expected "
                             + ", ".join(TYPES))
        return types, 0
    raise TypeError(f"gaps: a list, mapping, Series, DataFrame or Gap, found {type(gaps)!r}")


def components_first(objective: str, gaps: Any = None, lang: str = "en", *,
                     technology_score: int | None = None) -> ComponentChoice:
    """Which CRM component — analytical, operational, collaborative — to build first.

    A transparent rule table (:data:`COMPONENT_RULES`): the objective of workbook 01 gives
    points to the components that serve it; the relationship types the segments ask for more of
    (workbook 03) add points to the components that deliver them; weak technology favours an
    operational start that collects clean data; strong technology lets analytics start early.
    The component with most points goes first (ties: operational, analytical, collaborative).

    Parameters
    ----------
    objective : {"attract", "retain", "grow"}
    gaps : optional
        The relationship gaps: a list of relationship types to strengthen, a mapping
        ``type -> gap`` (current − expected; ≤ −0.10 counts), a mapping ``segment -> gap size``
        (≥ 0.10 counts), a DataFrame segments × types (``relationships.Gap.gap``) or a ``Gap``.
    lang : {"en", "es"}
    technology_score : int, optional
        Technology readiness 1-5 (``readiness(config, lang)``); ≤ 2 and ≥ 4 add a rule.

    Returns
    -------
    ComponentChoice
    """
    if objective not in ("attract", "retain", "grow"):
        raise ValueError(f"objective {objective!r}; expected attract, retain or grow")
    types, segments_with_gap = _read_gaps(gaps)
    applied = [f"objective_{objective}"]
    for rule, covered in GAP_TYPES.items():
        if any(tp in covered for tp in types):
            applied.append(rule)
    if segments_with_gap:
        applied.append("gap_segments")
    if technology_score is not None and technology_score <= 2:
        applied.append("technology_low")
    elif technology_score is not None and technology_score >= 4:
        applied.append("technology_high")
    rows = []
    for rule in applied:
        points = dict(zip(COMPONENTS, COMPONENT_RULES[rule], strict=True))
        rows.append({"rule": rule, **points,
                     "reason": t(f"plan_rule_{rule}", lang, segments=segments_with_gap)})
    rules = pd.DataFrame(rows, columns=["rule", *COMPONENTS, "reason"])
    totals = {c: int(rules[c].sum()) for c in COMPONENTS}
    order = sorted(COMPONENTS, key=lambda c: (-totals[c], TIE_ORDER.index(c)))
    ranking = pd.DataFrame({
        "component": order, "name": [t(f"plan_component_{c}", lang) for c in order],
        "description": [t(f"plan_component_{c}_description", lang) for c in order],
        "points": [totals[c] for c in order], "rank": range(1, 4)})
    first = order[0]
    reasons = " ".join(r for r, p in zip(rules["reason"], rules[first], strict=True) if p > 0)
    sentence = t("plan_components_sentence", lang,
                 first=t(f"plan_component_{first}", lang).lower(), points=totals[first],
                 second=t(f"plan_component_{order[1]}", lang).lower(),
                 third=t(f"plan_component_{order[2]}", lang).lower(), reasons=reasons)
    return ComponentChoice(rules=rules, ranking=ranking, first=first, sentence=sentence,
                           types_to_strengthen=types, lang=lang)


# --------------------------------------------------------------------------------------------
# results.json
# --------------------------------------------------------------------------------------------

def _num(value: Any, digits: int = 2) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else round(value, digits)


def summary_dict(plan: Plan, returns: Returns | None = None,
                 readiness_frame: pd.DataFrame | None = None,
                 risks: pd.DataFrame | None = None, *,
                 components: ComponentChoice | None = None, top_risks: int = 5) -> dict:
    """The ``implementation`` section of ``results.json``: plain, JSON-able figures.

    Parameters
    ----------
    plan : Plan
    returns : finance.Returns, optional
        From :func:`crmkit.finance.returns` / :func:`crmkit.finance.evaluate`.
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
