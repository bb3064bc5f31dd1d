"""The ``crm_project:`` section of ``client.yaml``: phases, costs, benefits, readiness, risks.

``crm_project: {}`` gives a complete default plan; the defaults (phase lengths, cost shares of
the client's revenue, the risk register) live here with the schema so that ``crmkit check``
validates a client's overrides against them. :mod:`crmkit.planning.plan` turns the settings
into a schedule and cash flows.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from crmkit.core.problems import problem_text

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

#: Months the returns are evaluated after go-live when client.yaml does not say: five years, the
#: life a CRM platform is usually depreciated over (the CLV horizon of ``assumptions`` is the
#: customers' horizon, not the project's).
DEFAULT_HORIZON_MONTHS = 60
#: The levers of the business case, in the order they are listed (see
#: :mod:`crmkit.planning.levers`).
LEVERS: tuple[str, ...] = ("retention", "share_of_customer", "reactivation", "automation",
                           "cost_to_serve", "acquisition")
#: Largest retention change a lever may assume, in points either way: beyond it a plan is not a
#: plan but a wish (yearly retention lives between 0 and 100 points).
MAX_RETENTION_POINTS = 50


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
            raise ValueError(problem_text("settings_months_or_weeks"))
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
            raise ValueError(problem_text("settings_phase_or_month"))
        if isinstance(self.recurring_from, int) and self.recurring_from < 0:
            raise ValueError(problem_text("settings_recurring_from"))
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
            raise ValueError(problem_text("settings_message_text"))
        return self

    def text(self, lang: str) -> str:
        return (self.es if lang == "es" else self.en) or self.en or self.es or ""


class OfferSettings(_Strict):
    """Level-2 offer for a segment (see :func:`crmkit.planning.automation.level2`).

    Attributes
    ----------
    coupon_value : float, optional
        Value of the coupon in the client's currency; default 10 % of the segment's average
        order, rounded to two significant figures.
    redemption_rate : float
        Share of the active customers who would *not* have ordered within the deadline anyway
        that the offer converts, before the segment's promotion history scales it (default
        10 %; :func:`crmkit.planning.automation.level2`).
    uplift : float
        No longer used (the offer's added response now comes from the customer-base model and
        the promotion history); kept so that older client.yaml files still load.
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


# --------------------------------------------------------------------------------------------
# The levers of the business case (crm_project.levers)
# --------------------------------------------------------------------------------------------

_Points = Annotated[float, Field(ge=-MAX_RETENTION_POINTS, le=MAX_RETENTION_POINTS)]


class RetentionLever(_Strict):
    """Retention: ``points`` more (or, negative, fewer) of yearly retention on the targeted
    segments.

    Attributes
    ----------
    points : float
        Change of the segments' yearly retention, in percentage points (2 = from 80 % to 82 %).
        Default 2: a modest, testable gain for a CRM that contacts customers before they lapse.
    segments : list of str, optional
        The segments the lever aims at; default every active segment (most customers bought
        within ``lapse_days``).
    by_segment : dict
        ``segment -> points`` for a segment of its own (targeted whatever ``segments`` says).
    """

    points: float = Field(2.0, ge=-MAX_RETENTION_POINTS, le=MAX_RETENTION_POINTS)
    segments: list[str] | None = None
    by_segment: dict[str, _Points] = {}


class ShareLever(_Strict):
    """Share of customer: ``uplift`` more spend (hence margin) from still-active customers.

    ``uplift`` is a share of their yearly margin (0.02 = 2 % more); default 2 %, what
    personalised level-1 messages are commonly credited with. ``segments`` default: all.
    """

    uplift: float = Field(0.02, ge=-0.5, le=1.0)
    segments: list[str] | None = None


class ReactivationLever(_Strict):
    """Reactivation of lapsing segments: a share of the customers reached won back.

    Attributes
    ----------
    win_back_rate : float
        Share of the reached customers won back a year (default 5 %).
    segments : list of str, optional
        Default: the lapsing segments (most customers without a purchase for ``lapse_days``).
    rejoin : dict
        ``lapsing segment -> the segment a won-back customer rejoins`` (whose value it is
        counted at); default the active segment with the lowest value per customer (prudent).
    contact_cost : float
        Cost of one win-back contact in the client's currency (default 0.5).
    contacts_per_year : int
        Win-back contacts each reached customer gets a year (default 2).
    """

    win_back_rate: float = Field(0.05, ge=0, le=1)
    segments: list[str] | None = None
    rejoin: dict[str, str] = {}
    contact_cost: float = Field(0.5, ge=0)
    contacts_per_year: int = Field(2, ge=0, le=52)


class AutomationLever(_Strict):
    """Level-2 offers as a lever: the offers of ``crm_project.automation``, sent as campaigns.

    Attributes
    ----------
    campaigns_per_year : int
        Offer campaigns a year (default 4, one a quarter).
    contact_cost : float
        Cost of sending one offer (default 0.05 in the client's currency: an e-mail).
    control_share : float
        Share of each segment held out as a control group, which gets no offer and measures
        the response the offer adds (default 10 %); the held-out customers bring no benefit.
    """

    campaigns_per_year: int = Field(4, ge=0, le=52)
    contact_cost: float = Field(0.05, ge=0)
    control_share: float = Field(0.10, ge=0, lt=1)


class CostToServeLever(_Strict):
    """Cost to serve: the avoidable cost the plan's scenarios move (``include: false`` leaves it
    out)."""

    include: bool = True


class AcquisitionLever(_Strict):
    """Acquisition, counted when the objective is ``attract``.

    Attributes
    ----------
    new_customers : int, optional
        Extra new customers a year; default ``growth`` × the customers acquired in the last year.
    growth : float
        Default 10 % more new customers than last year.
    clv : float, optional
        Value of a new customer over the horizon; default the mean CLV of the customers
        acquired in the last year.
    cost_per_acquisition : float, optional
        What winning one costs; default a new customer's yearly margin (the rule of thumb that
        acquisition should pay back within a year).
    """

    new_customers: int | None = Field(None, ge=0)
    growth: float = Field(0.10, ge=0, le=5)
    clv: float | None = Field(None, ge=0)
    cost_per_acquisition: float | None = Field(None, ge=0)


class LeverSettings(_Strict):
    """The assumptions of each lever of the business case; every default is shown as such.

    ``consent`` is the share of customers who may be contacted for marketing (default 50 %);
    ``consent_attribute`` a customers.csv column of yes/no (true/false, 1/0) that gives it per
    customer instead. ``include`` lists the levers counted (default all; acquisition only under
    the ``attract`` objective).
    """

    consent: float = Field(0.5, ge=0, le=1)
    consent_attribute: str | None = Field(None, min_length=1)
    include: list[Literal["retention", "share_of_customer", "reactivation", "automation",
                          "cost_to_serve", "acquisition"]] = list(LEVERS)
    retention: RetentionLever = RetentionLever()
    share_of_customer: ShareLever = ShareLever()
    reactivation: ReactivationLever = ReactivationLever()
    automation: AutomationLever = AutomationLever()
    cost_to_serve: CostToServeLever = CostToServeLever()
    acquisition: AcquisitionLever = AcquisitionLever()


class DecisionSettings(_Strict):
    """The go / go-with-conditions / no-go rule (:func:`crmkit.planning.decision.decide`).

    ``benefit_margin``: the case is a plain ``go`` only when the NPV stays positive with every
    benefit this much lower (default 20 %); ``cost_margin``: … and with every cost this much
    higher (default 20 %, the usual spread between an estimate and a quote).
    """

    benefit_margin: float = Field(0.20, ge=0, le=1)
    cost_margin: float = Field(0.20, ge=0, le=2)


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
        Months evaluated after go-live; default :data:`DEFAULT_HORIZON_MONTHS` (five years).
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
    levers : LeverSettings
        The assumptions of the business case's levers.
    decision : DecisionSettings
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
    levers: LeverSettings = LeverSettings()
    decision: DecisionSettings = DecisionSettings()

    @field_validator("phases", "risks")
    @classmethod
    def _keys(cls, value: dict) -> dict:
        wrong = [k for k in value if not _KEY.fullmatch(str(k))]
        if wrong:
            raise ValueError(problem_text("settings_key_form", found=", ".join(map(repr, wrong))))
        return value

    @model_validator(mode="after")
    def _consistent(self) -> CrmProject:
        phases = self.phase_settings()
        for key, phase in phases.items():
            if key not in PHASES and (phase.label is None or phase.duration_months() is None):
                raise ValueError(problem_text("settings_own_phase", name=key,
                                              phases=", ".join(PHASES)))
            for dep in phase.depends_on or []:
                if dep not in phases:
                    raise ValueError(problem_text("settings_phase_dependency", name=key, dep=dep,
                                                  phases=", ".join(phases)))
        _schedule_order(phases)  # raises on a cycle
        items = [*self.costs.items(), *((e.category, e) for e in self.extra_costs)]
        for category, item in items:
            if item.phase is not None and item.phase not in (*phases, "project"):
                raise ValueError(problem_text("settings_cost_phase", category=category,
                                              phase=item.phase, phases=", ".join(phases)))
        for key, risk in self.risks.items():
            if key not in DEFAULT_RISKS and risk.include:
                missing = [f for f in ("risk", "likelihood", "impact") if getattr(risk, f) is None]
                if missing:
                    raise ValueError(problem_text("settings_new_risk", name=key,
                                                      missing=", ".join(missing),
                                                      risks=", ".join(DEFAULT_RISKS)))
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
            raise ValueError(problem_text("settings_phase_cycle", cycle=" → ".join(cycle)))
        state[key] = 1
        for dep in phases[key].depends_on or []:
            if dep in phases:
                visit(dep, path + [key])
        state[key] = 2
        order.append(key)

    for key in phases:
        visit(key, [])
    return order


def project_settings(config: Any) -> CrmProject:
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
