"""Returns of the CRM project: NPV convention, IRR, payback, break-even, cash flows, sensitivity.

numpy-financial is the oracle: our NPV must equal ``npf.npv`` (first flow at time 0) and differ
from a spreadsheet's NPV (which discounts the first flow) by exactly one period.
"""

import datetime as dt

import numpy as np
import numpy_financial as npf
import pytest
from conftest import MINIMAL_CONFIG

from crmkit.core.i18n import Formatter
from crmkit.planning import finance, plan
from crmkit.settings.client import ClientConfig

AS_OF = dt.date(2026, 10, 31)
SCALE = plan.Scale(yearly_revenue=1_000_000.0, yearly_gross_margin=400_000.0, customers=5000)


def _config(crm_project=None):
    return ClientConfig.model_validate({**MINIMAL_CONFIG, "as_of": AS_OF,
                                        "crm_project": crm_project or {}})


def _plan(crm_project=None):
    return plan.build(_config(crm_project), SCALE)


# --- the hand-computed case: −1000 then +300 for 4 months at 1 % a month --------------------

HAND = [-1000.0, 300.0, 300.0, 300.0, 300.0]


def test_npv_by_hand():
    # −1000 + 300 × (1 − 1.01⁻⁴) / 0.01 = −1000 + 300 × 3.9019656 = 170.5897
    assert finance.npv(0.01, HAND) == pytest.approx(170.58966551551, abs=1e-9)


def test_irr_by_hand():
    rate = finance.irr(HAND)
    # At the IRR the NPV is zero; 7.7138 % a month is the root of −1000 + 300 Σ (1+r)^-t.
    assert rate == pytest.approx(0.0771384729520, abs=1e-10)
    assert finance.npv(rate, HAND) == pytest.approx(0.0, abs=1e-8)
    assert finance.yearly_rate(rate) == pytest.approx(1.0771384729520 ** 12 - 1)


def test_payback_by_hand():
    # Cumulative: −1000, −700, −400, −100, +200: paid back in month index 4.
    assert finance.payback_month(HAND) == 4
    assert finance.break_even_month(HAND) == 1


# --- the convention ---------------------------------------------------------------------------

def test_npv_convention_first_flow_at_time_zero():
    rng = np.random.default_rng(7)
    flows = rng.normal(0, 1000, 25)
    rate = 0.008
    ours = finance.npv(rate, flows)
    # c0 is not discounted: our NPV = c0 + (NPV of the rest with a zero in its place).
    assert ours == pytest.approx(flows[0] + npf.npv(rate, [0.0, *flows[1:]]), rel=1e-12)
    # …which is numpy-financial's convention…
    assert ours == pytest.approx(npf.npv(rate, flows), rel=1e-12)
    # …and not a spreadsheet's NPV(), which discounts every flow one more period.
    spreadsheet = sum(c / (1 + rate) ** (t + 1) for t, c in enumerate(flows))
    assert ours == pytest.approx(spreadsheet * (1 + rate), rel=1e-12)
    assert ours != pytest.approx(spreadsheet, rel=1e-6)
    # A single flow is its own present value, whatever the rate.
    assert finance.npv(0.5, [123.0]) == 123.0


def test_yearly_rate_becomes_monthly_by_compounding():
    monthly = finance.monthly_rate(0.10)
    assert monthly == pytest.approx(1.10 ** (1 / 12) - 1)
    assert (1 + monthly) ** 12 == pytest.approx(1.10)
    assert monthly < 0.10 / 12  # the simple division would overstate it
    assert finance.yearly_rate(monthly) == pytest.approx(0.10)


@pytest.mark.parametrize("seed", range(12))
def test_npv_and_irr_agree_with_numpy_financial(seed):
    rng = np.random.default_rng(seed)
    months = int(rng.integers(6, 60))
    invest = -rng.uniform(1_000, 50_000, int(rng.integers(1, 6)))
    returns = rng.uniform(-200, 3_000, months - invest.size)
    flows = np.concatenate([invest, returns])
    rate = rng.uniform(0.0, 0.02)
    assert finance.npv(rate, flows) == pytest.approx(npf.npv(rate, flows), rel=1e-10, abs=1e-6)
    expected = npf.irr(flows)
    ours = finance.irr(flows)
    if np.isnan(expected):
        assert ours is None or abs(finance.npv(ours, flows)) < 1e-6
    else:
        assert ours == pytest.approx(expected, abs=1e-7)
        assert finance.npv(ours, flows) == pytest.approx(0.0, abs=1e-5)


def test_irr_is_none_when_undefined():
    assert finance.irr([-100.0, -50.0, -10.0]) is None  # never positive
    assert finance.irr([100.0, 50.0]) is None  # never negative
    assert finance.irr([0.0, 0.0]) is None
    assert finance.irr([-100.0, 1.0]) is None  # would need a rate below −50 % a month


def test_payback_needs_the_cumulative_to_stay_positive():
    # Cumulative: −100, +50, −150, +50: it turns positive in month 1 but not for good.
    flows = [-100.0, 150.0, -200.0, 200.0]
    assert finance.payback_month(flows) == 3
    assert finance.payback_month([-100.0, 50.0]) is None
    assert finance.payback_month([10.0, 5.0]) == 0
    assert finance.break_even_month([-1.0, -1.0]) is None


# --- cash flows of a plan -----------------------------------------------------------------------

def test_zero_benefits_give_no_payback_not_an_error():
    p = _plan()
    for benefits in ([], [plan.Benefit("nothing", 0.0, 6)], None):
        result = finance.evaluate(p, benefits)
        assert result.payback_month is None and result.payback_date is None
        assert result.irr_monthly is None and result.irr_yearly is None
        assert result.break_even_month is None
        assert result.npv < 0 and result.total_benefits == 0
        assert result.payback_text(Formatter("en")) == (
            f"no payback within the {p.horizon_months}-month horizon")
        assert "no se recupera" in result.payback_text(Formatter("es"))
        assert result.as_dict()["payback_month"] is None


def test_cash_flows_add_up_and_discount_at_the_monthly_rate():
    p = _plan()
    benefits = [plan.Benefit("retention", 60_000, 6), plan.Benefit("cross-sell", 24_000, 3)]
    flows = finance.cash_flows(p, benefits)
    assert len(flows) == p.horizon_months
    assert flows["costs"].sum() == pytest.approx(p.costs["amount"].sum())
    assert flows["net"].to_numpy() == pytest.approx((flows["benefits"] - flows["costs"]).to_numpy())
    assert flows["cumulative"].iloc[-1] == pytest.approx(flows["net"].sum())
    rate = finance.monthly_rate(p.discount_rate)
    assert flows["discount_factor"].iloc[0] == 1.0
    assert flows["discount_factor"].iloc[12] == pytest.approx(1 / (1 + p.discount_rate))
    result = finance.returns(flows)
    assert result.npv == pytest.approx(npf.npv(rate, flows["net"].to_numpy()), rel=1e-12)
    assert result.npv == pytest.approx(flows["cumulative_discounted"].iloc[-1])
    assert result.irr_monthly == pytest.approx(npf.irr(flows["net"].to_numpy()), abs=1e-8)
    assert result.payback_month is not None and result.payback_month > p.go_live_month
    assert flows["cumulative"].iloc[result.payback_month] >= 0
    assert flows["cumulative"].iloc[result.payback_month - 1] < 0
    assert result.payback_date == flows["date"].iloc[result.payback_month]
    assert result.payback_months_after_launch == result.payback_month - p.go_live_month
    assert (flows.loc[: p.go_live_month - 1, "benefits"] == 0).all()
    # Before go-live the phases are under way; afterwards the system is live.
    assert flows["phase"].iloc[0] == "analysis" and flows["phase"].iloc[-1] == "live"
    summary = result.as_dict()
    assert summary["payback_date"] == result.payback_date.isoformat()
    assert set(summary) >= {"npv", "irr_yearly", "payback_month", "break_even_month"}


def test_key_figures_are_formatted_in_the_language():
    p = _plan()
    result = finance.evaluate(p, [plan.Benefit("retention", 90_000, 6)])
    figures = dict(result.key_figures(Formatter("es", "EUR")))
    assert figures["Valor actual neto"].endswith("\xa0€")
    assert figures["Recuperación de la inversión"].startswith("mes ")


# --- sensitivity ---------------------------------------------------------------------------------

def test_sensitivity_is_a_tornado_table():
    p = _plan()
    benefits = [plan.Benefit("retention", 80_000, 6)]
    table = finance.sensitivity(p, benefits, lang="es")
    base = finance.evaluate(p, benefits).npv
    assert list(table["swing"]) == sorted(table["swing"], reverse=True)
    assert set(table["driver"]) == set(finance.DRIVERS)
    assert table["base_npv"].to_numpy() == pytest.approx(base)
    rows = table.set_index("driver")
    assert rows.loc["benefits", "npv_low"] < base < rows.loc["benefits", "npv_high"]
    assert rows.loc["costs", "npv_low"] > base > rows.loc["costs", "npv_high"]
    assert rows.loc["ramp_up", "npv_low"] > base > rows.loc["ramp_up", "npv_high"]
    assert rows.loc["discount_rate", "npv_low"] > base > rows.loc["discount_rate", "npv_high"]
    assert rows.loc["efficiency_dip", "npv_low"] > base > rows.loc["efficiency_dip", "npv_high"]
    assert rows.loc["discount_rate", "low"] == pytest.approx(p.discount_rate - 0.05)
    # Benefits ±20 % moves the NPV by 20 % of the benefits' present value, both ways.
    flows = finance.cash_flows(p, benefits)
    pv_benefits = float((flows["benefits"] * flows["discount_factor"]).sum())
    assert rows.loc["benefits", "npv_high"] - base == pytest.approx(0.2 * pv_benefits)
    assert rows.loc["benefits", "name"] == "Beneficios ±20 %"
    assert rows.loc["costs", "low_setting"] == "\u221220\xa0%"


def test_benefit_rejects_nonsense():
    with pytest.raises(ValueError, match="ramp_months"):
        plan.Benefit("x", 100.0, -1)
    with pytest.raises(ValueError, match="start"):
        plan.Benefit("x", 100.0, 3, start="tomorrow")


def test_yearly_flows_add_up_the_months():
    p = _plan()
    flows = finance.cash_flows(p, [plan.Benefit("retention", 80_000, 6)])
    years = finance.by_year(flows)
    assert list(years["year"]) == sorted(flows["year"].unique())
    assert years["months"].sum() == len(flows) == p.horizon_months
    for column in ("benefits", "costs", "net", "discounted"):
        assert years[column].sum() == pytest.approx(flows[column].sum())
    assert years["cumulative"].iloc[-1] == pytest.approx(flows["cumulative"].iloc[-1])
    assert years["cumulative_discounted"].iloc[-1] == pytest.approx(
        finance.returns(flows).npv)


def test_sensitivity_figures_name_the_top_driver_and_sign_changes():
    p = _plan()
    table = finance.sensitivity(p, [plan.Benefit("retention", 80_000, 6)])
    figures = finance.sensitivity_figures(table)
    assert figures["top"]["driver"] == table["driver"].iloc[0]
    assert figures["base_npv"] == pytest.approx(table["base_npv"].iloc[0])
    for row in table.itertuples():
        flips = (row.npv_low < 0) != (row.base_npv < 0) or (row.npv_high < 0) != (row.base_npv < 0)
        assert (row.driver in figures["turns_sign"]) == flips
    # Benefits that just pay for the project: ±20 % of them turns the NPV either way.
    costs = finance.cash_flows(p, [])
    pv_costs = float((costs["costs"] * costs["discount_factor"]).sum())
    unit = finance.cash_flows(p, [plan.Benefit("b", 1.0, 6)])
    pv_unit = float((unit["benefits"] * unit["discount_factor"]).sum())
    even = [plan.Benefit("b", pv_costs / pv_unit * 1.01, 6)]
    figures = finance.sensitivity_figures(finance.sensitivity(p, even))
    assert "benefits" in figures["turns_sign"]
    assert finance.sensitivity_figures(table.iloc[:0]) == {"base_npv": None, "top": None,
                                                           "turns_sign": []}
