"""The CRM project's schedule: its phases (analysis → design → implementation strategy →
launch), their dates, and every cost line placed in the months it falls in (:func:`build`).

The defaults and their reasoning are in :mod:`crmkit.planning.plan`'s docstring.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from crmkit.core.i18n import catalogue, t
from crmkit.core.problems import UserError

if TYPE_CHECKING:  # annotations only: config imports this module for CrmProject
    from crmkit.inputs.workspace import Workspace
    from crmkit.settings.client import ClientConfig
from crmkit.settings.project import (
    CATEGORIES,
    CATEGORY_GROUP,
    DEFAULT_COST_SHARES,
    DEFAULT_HORIZON_MONTHS,
    DEFAULT_STAFF_COST_SHARE,
    MONTHS_PER_WEEK,
    PHASES,
    CostItem,
    CrmProject,
    EfficiencyDip,
    _schedule_order,
    project_settings,
)

# Columns of the frames below as a client reads them: ``Table(frame, fmt, PHASE_COLUMNS)``.
#: For :func:`phase_table`.
PHASE_COLUMNS = {"name": ("plan_col_phase", "text"), "start": ("plan_col_start", "date"),
                 "finish": ("plan_col_finish", "date"), "months": ("plan_col_months", "number:1"),
                 "depends_on": ("plan_col_depends_on", "text")}


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
        A ClientConfig supplies ``crm_project``, ``as_of`` and the ``assumptions`` default
        discount rate (a bare section uses 10 %); the horizon is ``crm_project.horizon_months``
        after go-live, default 60 (five years).
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
    # five years after go-live unless client.yaml says otherwise: the project's life, not the
    # customers' CLV horizon of ``assumptions``
    evaluation = horizon_months or settings.horizon_months or DEFAULT_HORIZON_MONTHS
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
        raise UserError("the default CRM costs scale with the yearly revenue, which is "
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
                    raise UserError(f"cost '{line.category}' falls in month {month}, after the "
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
