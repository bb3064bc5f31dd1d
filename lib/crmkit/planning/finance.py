"""The returns of the CRM project: monthly cash flows, NPV, IRR, payback, break-even, sensitivity.

Conventions (stated in the report, tested against numpy-financial):

- **Monthly flows.** Month 0 is the first month of the project
  (:attr:`crmkit.planning.plan.Plan.start_date`); a month's costs and benefits are one flow
  ``benefits − costs``.
- **NPV puts the first flow at time 0**: ``NPV = Σ_{t=0}^{n−1} c_t / (1 + r)^t``, so month 0 is
  not discounted. This is ``numpy_financial.npv``'s convention, *not* a spreadsheet's ``NPV()``,
  which discounts the first flow by one period (a spreadsheet user writes ``=C0 + NPV(r; C1:Cn)``
  for the same figure).
- **Discount rate.** The yearly rate ``y`` of ``client.yaml`` becomes the monthly rate
  ``(1 + y)^(1/12) − 1`` (compound, so twelve months discount exactly as one year; ``y / 12``
  would overstate it).
- **IRR** is the monthly rate at which the NPV is 0, and ``(1 + m)^12 − 1`` a year. When the flows
  never change sign, or no rate between −50 % and +200 % a month zeroes the NPV, it is undefined:
  None. With several roots (flows changing sign more than once) the one closest to 0 is given,
  as numpy-financial does.
- **Payback month**: the first month from which the cumulative cash flow stays at or above zero
  to the end of the horizon; None ("no payback within the horizon") when it never does — zero
  benefits are a legitimate input, not an error. **Break-even month**: the first month from which
  each month's flow stays at or above zero (benefits cover the running costs).

Everything is computed here with numpy and a bracketing root finder (scipy's ``brentq``) rather
than with numpy-financial: that package is a test oracle (a dev dependency), not a runtime one,
and its IRR takes the roots of a polynomial whose degree is the number of months, which a
bracketed search over a realistic range of rates avoids.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from crmkit.core.i18n import Formatter, t
from crmkit.planning.benefits import benefit_schedule
from crmkit.planning.costs import monthly_costs
from crmkit.planning.schedule import Benefit, Plan

#: Imported inside a function (start-up speed); a workbook kernel started ahead loads it
#: (:data:`crmkit.delivery.warm_kernels.LAZY`).
LAZY_IMPORTS = ("scipy.optimize",)

__all__ = [
    "CASH_FLOW_COLUMNS",
    "IRR_RANGE",
    "SENSITIVITY_COLUMNS",
    "YEARLY_COLUMNS",
    "Benefit",
    "Returns",
    "break_even_month",
    "by_year",
    "cash_flows",
    "evaluate",
    "irr",
    "monthly_rate",
    "npv",
    "payback_month",
    "returns",
    "sensitivity",
    "sensitivity_figures",
    "yearly_rate",
]

#: Monthly rates searched for the IRR (−50 % to +200 % a month).
IRR_RANGE = (-0.5, 2.0)
#: Columns of :func:`cash_flows` for a :class:`~crmkit.delivery.tables.Table`.
CASH_FLOW_COLUMNS = {"date": ("month", "date"), "benefits": ("fin_col_benefits", "money"),
                     "costs": ("fin_col_costs", "money"), "net": ("fin_col_net", "money"),
                     "cumulative": ("fin_col_cumulative", "money"),
                     "discounted": ("fin_col_discounted", "money"),
                     "cumulative_discounted": ("fin_col_cumulative_discounted", "money")}
#: Columns of :func:`by_year` for a Table.
YEARLY_COLUMNS = {"year": ("plan_col_year", "integer"), "months": ("plan_col_months", "integer"),
                  "benefits": ("fin_col_benefits", "money"), "costs": ("fin_col_costs", "money"),
                  "net": ("fin_col_net", "money"), "cumulative": ("fin_col_cumulative", "money"),
                  "cumulative_discounted": ("fin_col_cumulative_discounted", "money")}
#: Columns of :func:`sensitivity` (called with ``lang``) for a Table.
SENSITIVITY_COLUMNS = {"name": ("fin_col_driver", "text"),
                       "low_setting": ("fin_col_low_setting", "text"),
                       "high_setting": ("fin_col_high_setting", "text"),
                       "npv_low": ("fin_col_npv_low", "money"),
                       "npv_high": ("fin_col_npv_high", "money"),
                       "swing": ("fin_col_swing", "money")}


def monthly_rate(yearly: float) -> float:
    """The monthly rate equivalent to a yearly one: ``(1 + yearly)^(1/12) − 1``."""
    return (1.0 + yearly) ** (1.0 / 12.0) - 1.0


def yearly_rate(monthly: float) -> float:
    """The yearly rate equivalent to a monthly one: ``(1 + monthly)^12 − 1``."""
    return (1.0 + monthly) ** 12 - 1.0


def npv(rate: float, flows: Sequence[float] | np.ndarray | pd.Series) -> float:
    """Net present value with the **first flow at time 0** (not discounted).

    ``npv(r, [c0, c1, …, cn]) = c0 + c1 / (1 + r) + … + cn / (1 + r)^n`` — the same as
    ``numpy_financial.npv``; a spreadsheet's ``NPV(r, c0…cn)`` would divide every term by a
    further ``1 + r``.

    Parameters
    ----------
    rate : float
        Rate per period of the flows (monthly for monthly flows: :func:`monthly_rate`).
    flows : sequence of float
    """
    values = np.asarray(flows, dtype=float)
    return float(np.sum(values / (1.0 + rate) ** np.arange(values.size)))


def irr(flows: Sequence[float] | np.ndarray | pd.Series) -> float | None:
    """Internal rate of return per period of the flows, or None when undefined.

    Undefined: the flows are all of one sign (or zero), or no rate in :data:`IRR_RANGE` zeroes
    the NPV. With several roots, the one closest to zero is returned.
    """
    from scipy.optimize import brentq  # here: importing scipy.optimize takes half a second

    values = np.asarray(flows, dtype=float)
    nonzero = values[np.abs(values) > 1e-12]
    if nonzero.size < 2 or np.all(nonzero > 0) or np.all(nonzero < 0):
        return None
    # NPV is evaluated on a grid of rates to bracket every sign change; each bracket is then
    # solved to machine precision. A grid denser near zero keeps close roots apart.
    grid = np.unique(np.concatenate([
        np.linspace(IRR_RANGE[0], -0.05, 200), np.linspace(-0.05, 0.05, 801),
        np.linspace(0.05, IRR_RANGE[1], 400)]))
    periods = np.arange(values.size)
    with np.errstate(over="ignore", invalid="ignore"):
        curve = np.array([np.sum(values / (1.0 + r) ** periods) for r in grid])
    roots = [float(r) for r, v in zip(grid, curve, strict=True) if v == 0.0]
    sign = np.sign(curve)
    for i in np.flatnonzero(sign[:-1] * sign[1:] < 0):
        if np.isfinite(curve[i]) and np.isfinite(curve[i + 1]):
            roots.append(brentq(lambda r: npv(r, values), grid[i], grid[i + 1], xtol=1e-14,
                                rtol=1e-12, maxiter=200))
    if not roots:
        return None
    return min(roots, key=abs)


def payback_month(flows: Sequence[float] | np.ndarray | pd.Series) -> int | None:
    """First month (index) from which the cumulative flow stays ≥ 0; None if it never does."""
    cumulative = np.cumsum(np.asarray(flows, dtype=float))
    return _first_from_which_non_negative(cumulative)


def break_even_month(flows: Sequence[float] | np.ndarray | pd.Series) -> int | None:
    """First month (index) from which every monthly flow is ≥ 0; None if it never is."""
    return _first_from_which_non_negative(np.asarray(flows, dtype=float))


def _first_from_which_non_negative(values: np.ndarray) -> int | None:
    # A small tolerance: sums of floats that are zero on paper must not count as losses.
    tolerance = 1e-9 * max(1.0, float(np.max(np.abs(values), initial=0.0)))
    negative = np.flatnonzero(values < -tolerance)
    if values.size == 0:
        return None
    if negative.size == 0:
        return 0
    last = int(negative[-1])
    return last + 1 if last + 1 < values.size else None


def cash_flows(plan: Plan, benefits: Sequence[Benefit] | None = None, *,
               benefit_factor: float = 1.0, cost_factor: float = 1.0, dip_factor: float = 1.0,
               ramp_factor: float = 1.0, discount_rate: float | None = None) -> pd.DataFrame:
    """The project's monthly cash flows over the horizon.

    Parameters
    ----------
    plan : Plan
        From :func:`crmkit.planning.plan.build`.
    benefits : list of Benefit, optional
        The yearly benefits of the scenarios chosen in workbook 04; default
        ``crm_project.benefits.items``. None and ``[]`` both mean "no benefits" when the
        section has none: the flows are then all costs, and there is no payback.
    benefit_factor, cost_factor, dip_factor, ramp_factor : float
        Multipliers of the benefits, of every cost but the efficiency dip, of the dip, and of the
        ramp-up lengths (used by :func:`sensitivity`).
    discount_rate : float, optional
        Yearly rate; default the plan's.

    Returns
    -------
    DataFrame
        Indexed by ``month`` (0 … horizon−1): ``date`` (first day of the month), ``year``
        (project year), ``phase`` (the phase under way, or ``live``), ``benefits``, ``costs``
        (positive amounts), ``efficiency_dip`` (part of ``costs``), ``net`` (benefits − costs),
        ``cumulative``, ``discount_factor`` (``1 / (1 + m)^month``), ``discounted``,
        ``cumulative_discounted``. ``frame.attrs`` holds ``monthly_rate`` and ``yearly_rate``.
    """
    rate_y = plan.discount_rate if discount_rate is None else discount_rate
    rate_m = monthly_rate(rate_y)
    costs = monthly_costs(plan)
    dip = costs["efficiency_dip"] * dip_factor
    other = costs.drop(columns="efficiency_dip").sum(axis=1) * cost_factor
    gains = benefit_schedule(plan, benefits, ramp_factor=ramp_factor).sum(axis=1) \
        * benefit_factor
    months = pd.RangeIndex(plan.horizon_months, name="month")
    frame = pd.DataFrame(index=months)
    frame["date"] = [plan.month_date(m) for m in months]
    frame["year"] = months // 12 + 1
    frame["phase"] = _phase_per_month(plan)
    frame["benefits"] = gains.reindex(months, fill_value=0.0).to_numpy(dtype=float)
    frame["costs"] = (other + dip).to_numpy(dtype=float)
    frame["efficiency_dip"] = dip.to_numpy(dtype=float)
    frame["net"] = frame["benefits"] - frame["costs"]
    frame["cumulative"] = frame["net"].cumsum()
    frame["discount_factor"] = 1.0 / (1.0 + rate_m) ** np.arange(len(months))
    frame["discounted"] = frame["net"] * frame["discount_factor"]
    frame["cumulative_discounted"] = frame["discounted"].cumsum()
    frame.attrs.update({"monthly_rate": rate_m, "yearly_rate": rate_y,
                        "go_live_month": plan.go_live_month})
    return frame


def by_year(flows: pd.DataFrame) -> pd.DataFrame:
    """The monthly cash flows of :func:`cash_flows` added up per project year.

    Returns
    -------
    DataFrame
        One row per project year: ``year``, ``months`` (months of the horizon in it),
        ``benefits``, ``costs``, ``efficiency_dip``, ``net``, ``discounted`` (sums of the months),
        ``cumulative`` and ``cumulative_discounted`` (to the end of the year).
    """
    out = flows.groupby("year", sort=True).agg(
        months=("net", "size"), benefits=("benefits", "sum"), costs=("costs", "sum"),
        efficiency_dip=("efficiency_dip", "sum"), net=("net", "sum"),
        discounted=("discounted", "sum")).reset_index()
    out["cumulative"] = out["net"].cumsum()
    out["cumulative_discounted"] = out["discounted"].cumsum()
    return out


def _phase_per_month(plan: Plan) -> list[str]:
    """The phase under way at the middle of each month (the last listed, if several); else
    ``live``."""
    middle = np.arange(plan.horizon_months)[:, None] + 0.5
    starts = plan.phases["start_month"].to_numpy(dtype=float)[None, :]
    ends = plan.phases["end_month"].to_numpy(dtype=float)[None, :]
    under_way = (starts <= middle) & (ends > middle)
    last = under_way.shape[1] - 1 - np.argmax(under_way[:, ::-1], axis=1)
    names = plan.phases["phase"].astype(str).to_numpy()
    return [str(names[i]) if any_ else "live"
            for i, any_ in zip(last, under_way.any(axis=1), strict=True)]


@dataclass
class Returns:
    """The returns of the project over its horizon.

    Attributes
    ----------
    npv : float
        Net present value, first month at time 0 (module docstring).
    irr_monthly, irr_yearly : float or None
        Internal rate of return, None when undefined.
    payback_month : int or None
        Month index (0 = first project month) from which the cumulative cash flow stays ≥ 0;
        None: no payback within the horizon.
    payback_date : date or None
        First day of that month.
    payback_months_after_launch : int or None
        ``payback_month − go_live_month``.
    discounted_payback_month : int or None
        The same on discounted flows.
    break_even_month : int or None
        Month index from which every month's flow is ≥ 0.
    break_even_date : date or None
    total_benefits, total_costs, net_cash_flow : float
        Undiscounted sums over the horizon.
    roi : float or None
        ``net_cash_flow / total_costs`` (None without costs).
    horizon_months, go_live_month : int
    yearly_rate, monthly_rate : float
        The discount rates used.
    """

    npv: float
    irr_monthly: float | None
    irr_yearly: float | None
    payback_month: int | None
    payback_date: Any
    payback_months_after_launch: int | None
    discounted_payback_month: int | None
    break_even_month: int | None
    break_even_date: Any
    total_benefits: float
    total_costs: float
    net_cash_flow: float
    roi: float | None
    horizon_months: int
    go_live_month: int
    yearly_rate: float
    monthly_rate: float

    @property
    def pays_back(self) -> bool:
        return self.payback_month is not None

    def payback_text(self, fmt: Formatter) -> str:
        """"month 14 (January 2028)" or "no payback within the 44-month horizon"."""
        if self.payback_month is None:
            return t("fin_no_payback", fmt.lang, months=self.horizon_months)
        return t("fin_payback_at", fmt.lang, month=self.payback_month + 1,
                 date=fmt.month(self.payback_date))

    def as_dict(self) -> dict:
        """JSON-able figures (dates ISO, None kept)."""
        def num(value, digits=2):
            if value is None or (isinstance(value, float) and not math.isfinite(value)):
                return None
            return round(float(value), digits)

        return {
            "npv": num(self.npv), "irr_monthly": num(self.irr_monthly, 6),
            "irr_yearly": num(self.irr_yearly, 6), "payback_month": self.payback_month,
            "payback_date": self.payback_date.isoformat() if self.payback_date else None,
            "payback_months_after_launch": self.payback_months_after_launch,
            "discounted_payback_month": self.discounted_payback_month,
            "break_even_month": self.break_even_month,
            "break_even_date": self.break_even_date.isoformat() if self.break_even_date
            else None,
            "total_benefits": num(self.total_benefits), "total_costs": num(self.total_costs),
            "net_cash_flow": num(self.net_cash_flow), "roi": num(self.roi, 4),
            "yearly_discount_rate": num(self.yearly_rate, 6),
            "monthly_discount_rate": num(self.monthly_rate, 8),
        }

    def key_figures(self, fmt: Formatter) -> list[tuple[str, str]]:
        """``[(label, value)]`` for :func:`crmkit.delivery.tables.key_figures`: NPV, IRR,
        payback."""
        lang = fmt.lang
        irr_text = fmt.pct(self.irr_yearly, 1) if self.irr_yearly is not None \
            else t("fin_irr_undefined", lang)
        return [(t("fin_npv", lang), fmt.money(self.npv)),
                (t("fin_irr_yearly", lang), irr_text),
                (t("fin_payback", lang), self.payback_text(fmt)),
                (t("fin_total_costs", lang), fmt.money(self.total_costs))]


def returns(flows: pd.DataFrame) -> Returns:
    """NPV, IRR, payback and break-even of :func:`cash_flows`' frame."""
    net = flows["net"].to_numpy(dtype=float)
    rate_m = float(flows.attrs.get("monthly_rate", 0.0))
    rate_y = float(flows.attrs.get("yearly_rate", yearly_rate(rate_m)))
    go_live = int(flows.attrs.get("go_live_month", 0))
    monthly_irr = irr(net)
    payback = payback_month(net)
    even = break_even_month(net)
    costs = float(flows["costs"].sum())
    benefits = float(flows["benefits"].sum())
    return Returns(
        npv=npv(rate_m, net), irr_monthly=monthly_irr,
        irr_yearly=yearly_rate(monthly_irr) if monthly_irr is not None else None,
        payback_month=payback,
        payback_date=flows["date"].iloc[payback] if payback is not None else None,
        payback_months_after_launch=payback - go_live if payback is not None else None,
        discounted_payback_month=payback_month(flows["discounted"].to_numpy(dtype=float)),
        break_even_month=even,
        break_even_date=flows["date"].iloc[even] if even is not None else None,
        total_benefits=benefits, total_costs=costs, net_cash_flow=benefits - costs,
        roi=(benefits - costs) / costs if costs > 0 else None,
        horizon_months=len(net), go_live_month=go_live, yearly_rate=rate_y,
        monthly_rate=rate_m)


def evaluate(plan: Plan, benefits: Sequence[Benefit] | None = None) -> Returns:
    """``returns(cash_flows(plan, benefits))``: the returns in one call."""
    return returns(cash_flows(plan, benefits))


#: The drivers of :func:`sensitivity`, in the order they are listed before sorting.
DRIVERS = ("benefits", "costs", "ramp_up", "discount_rate", "efficiency_dip")


def sensitivity(plan: Plan, benefits: Sequence[Benefit] | None = None, *,
                benefit_change: float = 0.20, cost_change: float = 0.20,
                ramp_change: float = 0.50, discount_points: float = 0.05,
                dip_change: float = 0.50, lang: str | None = None) -> pd.DataFrame:
    """How much the NPV moves when each main assumption moves, one at a time (a tornado).

    Drivers and their low / high settings:

    - ``benefits``: every benefit × (1 ∓ 20 %);
    - ``costs``: every cost but the efficiency dip × (1 ∓ 20 %);
    - ``ramp_up``: every ramp-up length × (1 ∓ 50 %), rounded to whole months;
    - ``discount_rate``: yearly rate ∓ 5 percentage points (not below 0);
    - ``efficiency_dip``: the dip's depth × (1 ∓ 50 %).

    Parameters
    ----------
    plan : Plan
    benefits : list of Benefit, optional
    benefit_change, cost_change, ramp_change, discount_points, dip_change : float
        The size of each move.
    lang : {"en", "es"}, optional
        Adds ``name``, ``low_setting`` and ``high_setting`` as text.

    Returns
    -------
    DataFrame
        One row per driver, largest ``swing`` first: ``driver``, ``low`` and ``high`` (the
        driver's setting as a multiplier, or the discount rate), ``npv_low``, ``npv_high`` (NPV
        with the driver low / high), ``base_npv``, ``swing`` (``|npv_high − npv_low|``); with
        ``lang`` also ``name``, ``low_setting``, ``high_setting``.
    """
    base_rate = plan.discount_rate

    def value(**kwargs) -> float:
        flows = cash_flows(plan, benefits, **kwargs)
        return npv(flows.attrs["monthly_rate"], flows["net"].to_numpy(dtype=float))

    base = value()
    low_rate = max(base_rate - discount_points, 0.0)
    high_rate = base_rate + discount_points
    settings = {
        "benefits": ({"benefit_factor": 1 - benefit_change},
                     {"benefit_factor": 1 + benefit_change}, 1 - benefit_change,
                     1 + benefit_change),
        "costs": ({"cost_factor": 1 - cost_change}, {"cost_factor": 1 + cost_change},
                  1 - cost_change, 1 + cost_change),
        "ramp_up": ({"ramp_factor": 1 - ramp_change}, {"ramp_factor": 1 + ramp_change},
                    1 - ramp_change, 1 + ramp_change),
        "discount_rate": ({"discount_rate": low_rate}, {"discount_rate": high_rate},
                          low_rate, high_rate),
        "efficiency_dip": ({"dip_factor": 1 - dip_change}, {"dip_factor": 1 + dip_change},
                           1 - dip_change, 1 + dip_change),
    }
    rows = []
    for driver in DRIVERS:
        low_kwargs, high_kwargs, low, high = settings[driver]
        npv_low, npv_high = value(**low_kwargs), value(**high_kwargs)
        row = {"driver": driver, "low": low, "high": high, "npv_low": npv_low,
               "npv_high": npv_high, "base_npv": base, "swing": abs(npv_high - npv_low)}
        if lang is not None:
            row["name"] = t(f"fin_driver_{driver}", lang)
            if driver == "discount_rate":
                fmt = Formatter(lang)
                row["low_setting"] = fmt.pct(low, 1)
                row["high_setting"] = fmt.pct(high, 1)
            else:
                row["low_setting"] = _change_text(low - 1, lang)
                row["high_setting"] = _change_text(high - 1, lang)
        rows.append(row)
    frame = pd.DataFrame(rows).sort_values("swing", ascending=False, kind="stable")
    return frame.reset_index(drop=True)


def sensitivity_figures(frame: pd.DataFrame) -> dict:
    """Key figures of :func:`sensitivity` for ``results.json`` and the prose.

    ``base_npv``; ``top`` (the driver with the largest swing: ``driver``, ``npv_low``,
    ``npv_high``, ``swing``; None without drivers); ``turns_sign`` (the drivers whose low or
    high setting gives the NPV the other sign than the base NPV, largest swing first).
    """
    if frame.empty:
        return {"base_npv": None, "top": None, "turns_sign": []}
    base = float(frame["base_npv"].iloc[0])
    top = frame.iloc[0]
    turns = [str(r.driver) for r in frame.itertuples()
             if (r.npv_low < 0) != (base < 0) or (r.npv_high < 0) != (base < 0)]
    return {"base_npv": base,
            "top": {"driver": str(top["driver"]), "npv_low": float(top["npv_low"]),
                    "npv_high": float(top["npv_high"]), "swing": float(top["swing"])},
            "turns_sign": turns}


def _change_text(change: float, lang: str) -> str:
    text = Formatter(lang).pct(abs(change), 0)
    return ("+" if change >= 0 else "\u2212") + text
