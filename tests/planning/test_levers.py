"""The business case's levers, its break-even and its decision, each checked on figures worked
out by hand (crmkit.planning.levers, crmkit.planning.decision)."""

import datetime as dt
import math
import os
import shutil
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import numpy_financial as npf
import pandas as pd
import pytest
from conftest import MINIMAL_CONFIG
from pydantic import ValidationError

from crmkit.core import paths
from crmkit.core.i18n import Formatter
from crmkit.planning import decision, finance, levers, plan
from crmkit.settings.client import ClientConfig
from crmkit.settings.crosscheck import cross_check, segment_references
from crmkit.settings.segment_maps import load_map

AS_OF = dt.date(2026, 10, 31)
SCALE = plan.Scale(yearly_revenue=1_000_000.0, yearly_gross_margin=400_000.0, customers=5000)
FMT = Formatter("en", "EUR")


def _config(crm_project=None, **extra):
    return ClientConfig.model_validate({**MINIMAL_CONFIG, "as_of": AS_OF,
                                        "crm_project": crm_project or {}, **extra})


def _lifetime(r, d=0.10, years=3):
    """Discounted years served over the CLV horizon, written out: 1 + q + q², q = r / (1 + d)."""
    return sum((r / (1 + d)) ** k for k in range(years))


def _customers():
    """Two segments: gold (active: two customers, P(alive) 1 and 0.5), lapsed (four customers
    not seen for 400 days, P(alive) 0.1 each)."""
    return pd.DataFrame({
        "customer_id": ["g1", "g2", "l1", "l2", "l3", "l4"],
        "segment": ["gold", "gold", "lapsed", "lapsed", "lapsed", "lapsed"],
        "segment_name": ["Gold", "Gold", "Lapsed", "Lapsed", "Lapsed", "Lapsed"],
        "probability_alive": [1.0, 0.5, 0.1, 0.1, 0.1, 0.1],
        "retention": [0.8, 0.8, 0.5, 0.5, 0.5, 0.5],
        "margin_window": [120.0, 240.0, 0.0, 0.0, 0.0, 0.0],
        "revenue_window": [200.0, 400.0, 0.0, 0.0, 0.0, 0.0],
        "clv": [300.0, 200.0, 10.0, 10.0, 10.0, 10.0],
        "expected_purchases": [6.0, 3.0, 0.3, 0.3, 0.3, 0.3],
        "margin": [600.0, 400.0, 100.0, 100.0, 100.0, 100.0],
        "monetary": [1000.0, 1000.0, 200.0, 200.0, 200.0, 200.0],
        "frequency": [10, 10, 4, 4, 4, 4],
        "recency_days": [10.0, 30.0, 400.0, 400.0, 400.0, 400.0],
        "tenure_days": [1000.0, 200.0, 1500.0, 1500.0, 1500.0, 1500.0],
    })


def _cost(customers, variable=(20.0, 40.0, 0.0, 0.0, 0.0, 0.0)):
    # The levers read only each customer's yearly variable cost from the cost to serve.
    return SimpleNamespace(customers=pd.DataFrame({
        "customer_id": customers["customer_id"], "variable_cost": list(variable)}))


def _model(crm_project=None, **kwargs):
    customers = _customers()
    config = _config(crm_project)
    return levers.LeverModel.from_tables(customers, _cost(customers), config, **kwargs)


def _rows(frame, lever):
    return frame[frame["lever"] == lever].set_index("segment")


# --- each lever by hand ------------------------------------------------------------------------

def test_the_baseline_is_the_models_expected_margin_and_contribution():
    stats = _model().stats
    assert stats.at["gold", "margin"] == pytest.approx(1.0 * 120 + 0.5 * 240)
    assert stats.at["gold", "contribution"] == pytest.approx(1.0 * 100 + 0.5 * 200)
    assert stats.at["gold", "retention"] == pytest.approx(0.8)
    assert bool(stats.at["lapsed", "lapsing"]) and not bool(stats.at["gold", "lapsing"])
    assert stats.at["gold", "order_rate"] == pytest.approx(9.0 / 1.5 / 3.0)  # orders a year


def test_retention_is_the_contribution_kept_for_longer():
    frame = _model().evaluate()
    rows = _rows(frame, "retention")
    # The default 2 points go to the active segment only; the lapsed one is reactivated instead.
    assert list(rows.index) == ["gold"]
    expected = 200.0 * (_lifetime(0.82) / _lifetime(0.80) - 1)
    assert rows.at["gold", "yearly_benefit"] == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(3.9853, abs=1e-4)  # 200 × (2.30116 / 2.25620 − 1)
    # A downgrade is a negative uplift, and it costs.
    down = _model({"levers": {"retention": {"points": -5}}}).evaluate()
    assert _rows(down, "retention").at["gold", "yearly_benefit"] == pytest.approx(
        200.0 * (_lifetime(0.75) / _lifetime(0.80) - 1), rel=1e-12)


def test_share_of_customer_is_more_spend_from_customers_still_active():
    rows = _rows(_model({"levers": {"share_of_customer": {"uplift": 0.05}}}).evaluate(),
                 "share_of_customer")
    assert rows.at["gold", "yearly_benefit"] == pytest.approx(0.05 * 240.0)
    assert rows.at["lapsed", "yearly_benefit"] == 0.0  # nobody active buys there


def test_reactivation_wins_back_a_share_at_the_value_of_the_segment_rejoined():
    rows = _rows(_model().evaluate(), "reactivation")
    assert list(rows.index) == ["lapsed"]
    row = rows.loc["lapsed"]
    assert row["reached"] == pytest.approx(4 * 0.5)  # 50 % consent by default
    assert row["rejoin"] == "gold"
    value = (500.0 - 60.0 * _lifetime(0.8)) / 2  # gold's CLV less its cost over its lifetime
    assert row["base"] == pytest.approx(value)
    assert row["gross"] == pytest.approx(0.05 * 2 * value)
    assert row["cost"] == pytest.approx(2 * 2 * 0.5)  # two contacts a year at 0.5
    assert row["yearly_benefit"] == pytest.approx(0.05 * 2 * 182.3138 - 2.0, abs=1e-3)


def test_automation_is_the_response_over_the_control_group_less_coupons_and_contacts():
    rows = _rows(_model().evaluate(), "automation")
    gold = rows.loc["gold"]
    control = 1 - math.exp(-2.0 * 30 / 365)  # two orders a year, a 30-day deadline
    added = 0.10 * (1 - control)  # the offer converts 10 % of the others
    alive = 0.9 * 0.5 * 1.5  # treated (90 %) × consent (50 %) × Σ P(alive)
    contacted = 0.9 * 0.5 * 2
    coupon = 10.0  # 10 % of an average order of 100
    assert gold["response_control"] == pytest.approx(control)
    assert gold["response_treated"] == pytest.approx(control + added)
    assert gold["coupon"] == coupon and gold["base"] == pytest.approx(50.0)  # margin per order
    assert gold["gross"] == pytest.approx(4 * alive * added * 50.0)
    assert gold["cost"] == pytest.approx(4 * (alive * (control + added) * coupon
                                              + contacted * 0.05))
    # A segment that orders on promotion twice as often as the base responds twice as much.
    promotions = pd.DataFrame({"orders": [20, 16], "promo_orders": [2, 6]},
                              index=pd.Index(["gold", "lapsed"], name="segment"))
    model = _model(promotions=promotions)
    base = 8 / 36
    assert model.stats.at["gold", "promo_index"] == pytest.approx(0.1 / base)
    assert model.stats.at["lapsed", "promo_index"] == pytest.approx(0.375 / base)
    with_history = _rows(model.evaluate(), "automation").loc["gold"]
    assert with_history["change"] == pytest.approx(0.10 * 0.1 / base * (1 - control))


def test_acquisition_counts_only_when_the_objective_is_attract():
    assert "acquisition" not in set(_model().evaluate()["lever"])
    rows = _model({"levers": {"acquisition": {"new_customers": 30, "cost_per_acquisition": 50}}},
                  objective="attract").evaluate()
    row = rows[rows["lever"] == "acquisition"].iloc[0]
    # The mean CLV of the customers acquired in the last year: g2 alone, 200.
    assert row["yearly_benefit"] == pytest.approx(30 * (200.0 - 50.0))
    default = _model(objective="attract").evaluate()
    row = default[default["lever"] == "acquisition"].iloc[0]
    # 10 % more than last year's one new customer, each costing a year of its margin (240).
    assert row["yearly_benefit"] == pytest.approx(0.1 * (200.0 - 240.0))


def _scenario_model():
    """gold (2 customers) is served by personal assistance (1 a minute, 100 minutes in 10
    contacts a year), basic (3) by self-service (0.2 a minute)."""
    from crmkit.relationships.inventory import TYPES
    from crmkit.relationships.scenarios import ScenarioModel

    minutes = np.zeros((2, len(TYPES)))
    interactions = np.zeros((2, len(TYPES)))
    pa, ss = TYPES.index("personal_assistance"), TYPES.index("self_service")
    minutes[0, pa], interactions[0, pa] = 100.0, 10.0
    minutes[1, ss], interactions[1, ss] = 50.0, 10.0
    rate = np.zeros(len(TYPES))
    rate[pa], rate[ss] = 1.0, 0.2
    return ScenarioModel(segments=["gold", "lapsed"], names=["Gold", "Lapsed"],
                         customers=[2, 4], minutes=minutes, interactions=interactions,
                         variable_cost=minutes * rate, rate=rate, fixed=np.zeros(len(TYPES)),
                         minutes_per_interaction=np.full(len(TYPES), 10.0),
                         margin=[360.0, 0.0], revenue=[600.0, 0.0], clv=[500.0, 40.0],
                         retention=[0.8, 0.5], discount_rate=0.1, horizon_years=3.0)


def test_cost_to_serve_is_avoidable_cost_only_and_a_downgrade_costs_retention():
    from crmkit.relationships.scenarios import Scenario

    move = Scenario(name="Half of gold to self-service", changes=[
        {"move": {"segment": "gold", "from": "personal_assistance", "to": "self_service",
                  "share": 0.5, "retention_change": -0.02}}])
    frame = _model(scenario_model=_scenario_model(), scenarios=[move]).evaluate()
    saving = _rows(frame, "cost_to_serve")
    # 50 minutes moved × (1.0 − 0.2) a minute
    assert saving.at["gold", "yearly_benefit"] == pytest.approx(50 * (1.0 - 0.2))
    assert list(saving.index) == ["gold"]
    # The move's −2 points on half the segment (−1) offsets half the lever's +2.
    retention = _rows(frame, "retention")
    assert retention.at["gold", "change"] == pytest.approx(1.0)
    assert retention.at["gold", "yearly_benefit"] == pytest.approx(
        200.0 * (_lifetime(0.81) / _lifetime(0.80) - 1), rel=1e-12)
    # A platform the plan adds is a cost; the move alone retires nothing.
    platform = Scenario(name="App", changes=[
        {"cost": {"type": "self_service", "fixed_yearly_cost": 1000}}])
    frame = _model(scenario_model=_scenario_model(), scenarios=[platform]).evaluate()
    assert _rows(frame, "cost_to_serve")["yearly_benefit"].sum() == pytest.approx(-1000.0)


NO_CHANGE = {"levers": {
    "retention": {"points": 0}, "share_of_customer": {"uplift": 0},
    "reactivation": {"win_back_rate": 0, "contact_cost": 0},
    "automation": {"campaigns_per_year": 0}}}


def test_a_plan_without_change_has_exactly_zero_benefit():
    from crmkit.relationships.scenarios import Scenario

    nothing = Scenario(name="Nothing moves", changes=[
        {"move": {"segment": "gold", "from": "personal_assistance", "to": "self_service",
                  "share": 0.0}}])
    model = _model(NO_CHANGE, scenario_model=_scenario_model(), scenarios=[nothing])
    frame = model.evaluate()
    assert not frame.empty
    assert (frame["yearly_benefit"] == 0.0).all(), frame
    assert sum(levers.by_lever(frame).values()) == 0.0
    p = plan.build(_config(NO_CHANGE), SCALE)
    flows = finance.cash_flows(p, levers.lever_benefits(frame, p))
    assert (flows["benefits"] == 0.0).all()


def test_lever_benefits_ramp_from_go_live_and_offers_start_with_level_2():
    p = plan.build(_config(), SCALE)
    frame = _model().evaluate()
    benefits = {b.name: b for b in levers.lever_benefits(frame, p)}
    assert set(benefits) == {"retention", "share_of_customer", "reactivation", "automation"}
    assert benefits["retention"].start == "launch"
    assert benefits["automation"].start == p.go_live_month + 3
    named = levers.lever_benefits(frame, p, lang="es")
    assert [b.name for b in named][:2] == ["Retención", "Cuota de cliente"]


def test_assumptions_are_listed_with_their_source():
    table = levers.assumptions(_model({"levers": {"retention": {"points": 3}}}), FMT)
    by_key = table.set_index("key")
    assert by_key.at["crm_project.levers.retention.points", "source"] == "client.yaml"
    assert by_key.at["crm_project.levers.retention.points", "value"] == "3.0 points"
    assert by_key.at["crm_project.levers.share_of_customer.uplift", "source"] == "default"
    spanish = levers.assumptions(_model(), Formatter("es", "EUR"))
    assert set(spanish["source_name"]) == {"estimación por defecto"}


# --- break-even and decision -------------------------------------------------------------------

def _pv_of_unit(p, benefit):
    """The present value of 1 a year of ``benefit``'s schedule (its ramp and start)."""
    unit = finance.cash_flows(p, [plan.Benefit("u", 1.0, benefit.ramp_months, benefit.start)])
    costs = finance.cash_flows(p, [])
    rate = unit.attrs["monthly_rate"]
    return finance.npv(rate, unit["net"] - costs["net"])


def test_break_even_is_the_retention_uplift_that_zeroes_the_npv():
    p = plan.build(_config(), SCALE)
    model = _model()
    # Scale the business up so that retention can pay for the plan: 1,000 copies of gold.
    model.stats.loc["gold", ["margin", "contribution"]] *= 1000
    model.stats.loc["gold", "consenting"] *= 1000
    even = decision.break_even(p, model)
    assert even.lever == "retention" and even.unit == "points"
    # By hand: the NPV of the other levers plus the retention's must be zero.
    others = model.evaluate(retention_points=0.0)
    benefits = levers.lever_benefits(others, p)
    flows = finance.cash_flows(p, benefits)
    rest = finance.npv(flows.attrs["monthly_rate"], flows["net"])
    needed = -rest / _pv_of_unit(p, plan.Benefit("r", 1.0))  # yearly retention benefit
    target = _lifetime(0.8) * (1 + needed / 200_000.0)  # L(r′) = L(r)(1 + B / Y)
    q = (-1 + math.sqrt(1 - 4 * (1 - target))) / 2  # 1 + q + q² = target
    assert even.value == pytest.approx((q * 1.1 - 0.8) * 100, abs=1e-6)
    at = model.evaluate(retention_points=even.value)
    flows = finance.cash_flows(p, levers.lever_benefits(at, p))
    assert npf.npv(flows.attrs["monthly_rate"], flows["net"]) == pytest.approx(0.0, abs=1e-3)


def test_break_even_falls_back_to_the_scale_of_the_levers():
    p = plan.build(_config(), SCALE)
    model = _model()  # far too small for retention alone to pay for a 1M-revenue plan
    even = decision.break_even(p, model)
    assert even.lever == "scale" and even.unit == "times"
    benefits = levers.lever_benefits(model.evaluate(), p)
    gains = finance.cash_flows(p, benefits)
    costs = finance.cash_flows(p, [])
    rate = gains.attrs["monthly_rate"]
    pv_benefits = finance.npv(rate, gains["net"] - costs["net"])
    pv_costs = -finance.npv(rate, costs["net"])
    assert even.value == pytest.approx(pv_costs / pv_benefits, rel=1e-9)
    none = decision.break_even(p, _model(NO_CHANGE))
    assert none.value is None
    assert "nothing to set against" in none.text(FMT)


@pytest.mark.parametrize("yearly, expected, conditions", [
    (400_000.0, "go", []),
    (0.0, "no_go", []),
])
def test_the_decision_follows_the_npv_and_its_margins(yearly, expected, conditions):
    p = plan.build(_config(), SCALE)
    benefits = [plan.Benefit("retention", yearly)] if yearly else []
    returns = finance.evaluate(p, benefits)
    even = decision.BreakEven("scale", 1.0, "times", 1.0)
    lines = plan.cost_lines(p, "en")
    made = decision.decide(p, benefits, returns, even, lines, FMT)
    assert made.decision == expected and made.conditions == conditions
    assert made.default_cost_lines == 10 and made.cost_lines == 10
    keys = [k for k, _ in made.reasons]
    assert "default_costs" in keys and "break_even" in keys
    assert any("10 of the 10 cost lines" in text for _, text in made.reasons)


def test_a_thin_case_goes_ahead_only_with_its_conditions_named():
    p = plan.build(_config(), SCALE)
    costs = -finance.npv(finance.monthly_rate(p.discount_rate), finance.cash_flows(p, [])["net"])
    unit = _pv_of_unit(p, plan.Benefit("u", 1.0))
    yearly = 1.1 * costs / unit  # NPV 10 % of the costs: positive, but not 20 % either way
    benefits = [plan.Benefit("retention", yearly)]
    returns = finance.evaluate(p, benefits)
    assert returns.npv == pytest.approx(0.1 * costs, rel=1e-9)
    made = decision.decide(p, benefits, returns, decision.BreakEven("scale", 1 / 1.1, "times",
                                                                    1.0),
                           plan.cost_lines(p, "es"), Formatter("es", "EUR"))
    assert made.decision == "go_with_conditions"
    assert made.conditions == ["pilot_levers", "replace_default_costs"]
    assert made.npv_low_benefits == pytest.approx(0.8 * 1.1 * costs - costs, rel=1e-9)
    texts = " ".join(text for _, text in made.reasons)
    assert "sustituir las 10 partidas" in texts and "grupo de control" in texts


def test_the_business_case_in_one_call_and_its_results():
    customers = _customers()
    config = _config()
    p = plan.build(config, SCALE)
    case = plan.business_case(p, customers, _cost(customers), config, FMT)
    out = case.as_dict()
    assert out["decision"] in decision.DECISIONS
    assert set(out["break_even"]) >= {"lever", "value", "unit"}
    assert out["cost_lines"] == {"total": 10, "default": 10}
    by_lever = out["benefits"]["by_lever"]
    assert list(by_lever) == ["retention", "share_of_customer", "reactivation", "automation"]
    assert out["benefits"]["yearly_total"] == pytest.approx(sum(by_lever.values()))
    # The returns are those of the case's own cash flows (numpy-financial as the oracle).
    rate = case.flows.attrs["monthly_rate"]
    assert out["npv"] == pytest.approx(npf.npv(rate, case.flows["net"].to_numpy()), abs=0.01)
    labels = [label for label, _ in case.key_figures(FMT)]
    assert labels[:3] == ["Decision", "Net present value", "What you must believe"]


# --- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("section, message", [
    ({"levers": {"retention": {"points": 150}}}, "less than or equal to 50"),
    ({"levers": {"acquisition": {"cost_per_acquisition": -20}}}, "greater than or equal to 0"),
    ({"levers": {"retention": {"by_segment": {"gold": -80}}}}, "greater than or equal to -50"),
    ({"levers": {"reactivation": {"win_back_rate": 1.5}}}, "less than or equal to 1"),
    ({"levers": {"retention": {"point": 2}}}, "Extra inputs are not permitted"),
])
def test_lever_assumptions_out_of_range_are_refused(section, message):
    with pytest.raises(ValidationError, match=message):
        plan.CrmProject.model_validate(section)


def test_a_lever_aimed_at_a_segment_the_map_has_not_is_named():
    config = _config({"levers": {"retention": {"segments": ["champions", "champs"]},
                                 "reactivation": {"rejoin": {"hibernating": "loyall"}}}})
    keys = dict(segment_references(config))
    assert keys["crm_project.levers.retention.segments[1]"] == "champs"
    problems = cross_check(config, load_map("rfm_ten"))
    texts = [p.message for p in problems]
    assert len(texts) == 2
    assert "crm_project.levers.retention.segments[1]" in texts[0] and "'champions'" in texts[0]
    assert "rejoin.hibernating" in texts[1] and "'loyall'" in texts[1]


def test_crmkit_check_exits_2_naming_the_key_found_and_expected(tmp_path):
    target = tmp_path / "retail"
    shutil.copytree(paths.DEMO_CLIENTS / "retail", target)
    with (target / "client.yaml").open("a", encoding="utf-8") as handle:
        handle.write("crm_project:\n  levers:\n    retention:\n      points: 150\n")
    done = subprocess.run([sys.executable, "-m", "crmkit", "check", str(target)],
                          capture_output=True, text=True, timeout=300, env={**os.environ})
    assert done.returncode == 2, done.stderr
    text = done.stdout + done.stderr
    assert "crm_project.levers.retention.points" in text and "150" in text
    assert "expected a value of at most 50\n" in text and "Traceback" not in text
