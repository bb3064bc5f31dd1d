"""Scenarios: exact no-change, moves and rates against per-customer recomputation, retention's
effect on value, client.yaml's section, comparison, sensitivity and break-even, speed."""

import time

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from relationship_case import CONFIG as CASE_CONFIG
from relationship_case import customers_table, interactions_log

from crmkit.core.i18n import LANGUAGES, Formatter
from crmkit.delivery.charts import cost_benefit as charts
from crmkit.relationships import cost_benefit, cost_to_serve, scenarios
from crmkit.relationships.scenarios import (
    CostRate,
    DiscountRate,
    MarginChange,
    Move,
    RetentionChange,
    Scenario,
    ScenarioModel,
)
from crmkit.settings.client import ClientConfig

CONFIG = {**CASE_CONFIG,
          "retention": {"gold": 0.8, "basic": 0.5}}
ASSUMPTIONS = {"window_months": 12, "discount_rate": 0.1, "horizon_months": 36}


def build(config=CONFIG, log=None) -> ScenarioModel:
    cost = cost_to_serve.compute(customers_table(), interactions_log() if log is None else log,
                                 config, window_years=1.0)
    return ScenarioModel.from_cost(customers_table(), cost, config, **ASSUMPTIONS)


def segment_costs(config=CONFIG, log=None) -> dict:
    cost = cost_to_serve.compute(customers_table(), interactions_log() if log is None else log,
                                 config, window_years=1.0)
    return cost.segments.set_index("segment")["cost_to_serve"].to_dict()


def lifetime(r, d=0.1, years=3):
    return sum((r / (1 + d)) ** t for t in range(years))


@pytest.fixture
def model():
    return build()


def test_baseline_matches_the_cost_to_serve(model):
    base = dict(zip(model.segments, model.baseline.base["cost"], strict=True))
    assert base == pytest.approx(segment_costs())
    assert model.baseline.total("profit") == pytest.approx(137.5)
    assert model.baseline.total("value") == pytest.approx(780)


@pytest.mark.parametrize("scenario", [
    None, [], Scenario(name="nothing"),
    [Move(segment="gold", from_type="personal_assistance", to_type="self_service", share=0)],
    [RetentionChange(change=0.0)], [MarginChange(segment="gold", change=0.0)],
    [CostRate(type="personal_assistance", cost_per_minute=1.0)],
    [DiscountRate(rate=0.1)],
])
def test_a_scenario_without_change_changes_nothing_exactly(model, scenario):
    result = model.evaluate(scenario)
    for metric in scenarios.METRICS:
        assert (result.change(metric) == 0.0).all(), metric
        assert result.totals[f"{metric}_change"] == 0.0
    changes = result.frame.filter(like="_change")
    assert (changes.to_numpy() == 0.0).all()


def test_moving_a_segment_to_a_cheaper_type_lowers_its_cost_by_the_computed_amount(model):
    move = Move(segment="gold", from_type="personal_assistance", to_type="self_service")
    result = model.evaluate([move])
    change = dict(zip(model.segments, result.change("cost"), strict=True))
    # gold's 2 personal-assistance contacts (50 of cost) become 2 self-service ones of 4 minutes
    # at 0.1; self-service's fixed 100 stays with gold, its only user
    assert change["gold"] == pytest.approx(-50 + 2 * 4 * 0.1)
    assert change["basic"] == 0
    assert result.total("profit", "change") == pytest.approx(50 - 0.8)


def test_a_move_equals_recomputing_every_customer():
    config = {**CONFIG, "cost_drivers": {**CONFIG["cost_drivers"],
                                         "personal_assistance": {
                                             "cost_per_minute": 1.0, "fixed_yearly_cost": 30,
                                             "channel_cost_per_minute": {"store": 2.0}}}}
    model = build(config)
    result = model.evaluate([Move(segment="gold", from_type="personal_assistance",
                                  to_type="self_service")])
    # the same move, customer by customer: A's two contacts become self-service ones of 4 min
    log = interactions_log()
    moved = log["customer_id"] == "A"
    log.loc[moved, ["relationship_type", "channel", "minutes"]] = ["self_service", "web", 4.0]
    recomputed = cost_to_serve.compute(customers_table(), log, config, window_years=1.0)
    variable = recomputed.segments.set_index("segment")["variable_cost"].to_dict()
    assert dict(zip(model.segments, result.scenario["variable_cost"], strict=True)) == (
        pytest.approx(variable))
    # personal assistance's platform (30 a year) is not retired by gold's move: each segment
    # keeps its display share (A and C served today: 15 each), the total fixed cost unchanged
    assert (result.change("fixed_cost") == 0).all()
    assert dict(zip(model.segments, result.scenario["fixed_cost"], strict=True)) == (
        pytest.approx({"gold": 15 + 100, "basic": 15 + 10}))
    assert result.change("cost")[model.segment_index("gold")] == pytest.approx(
        result.total("cost", "change"))


def test_emptying_a_type_does_not_retire_its_platform(model):
    move = Move(segment="basic", from_type="automated_services", to_type="self_service")
    result = model.evaluate([move])
    # automated: 24 min × 0.5 gone; 24 contacts × 4 min × 0.1 added; its fixed 10 stays
    assert result.total("cost", "change") == pytest.approx(-12 + 9.6)
    assert (result.change("fixed_cost") == 0).all()
    basic = model.segment_index("basic")
    assert result.change("net_value")[basic] == pytest.approx(2.4 * lifetime(0.5))
    # retiring the platform is a change of its own, and only then is its cost saved
    retired = model.evaluate([move, CostRate(type="automated_services", fixed_yearly_cost=0)])
    assert retired.total("cost", "change") == pytest.approx(-12 + 9.6 - 10)
    assert retired.change("net_value")[basic] == pytest.approx(12.4 * lifetime(0.5))


def test_opening_a_type_incurs_its_platform(model):
    from crmkit.relationships.inventory import drivers

    drv = drivers(CONFIG)
    result = model.evaluate([Move(segment="basic", from_type="automated_services",
                                  to_type="communities")])
    basic, gold = (model.segment_index(s) for s in ("basic", "gold"))
    added = 24 * drv.loc["communities", "minutes_per_interaction"] * drv.loc[
        "communities", "cost_per_minute"]
    fixed = drv.loc["communities", "fixed_yearly_cost"]
    assert fixed > 0
    assert result.change("cost")[basic] == pytest.approx(-12 + added + fixed)
    assert result.change("cost")[gold] == 0
    assert result.change("net_value")[basic] == pytest.approx(
        -(-12 + added + fixed) * lifetime(0.5))


def test_a_partial_move_with_its_own_minutes(model):
    result = model.evaluate([Move(segment="gold", from_type="personal_assistance",
                                  to_type="self_service", share=0.5, minutes_per_interaction=2)])
    gold = model.segment_index("gold")
    assert result.change("cost")[gold] == pytest.approx(-25 + 1 * 2 * 0.1)


def test_a_cost_rate_change_equals_recomputing_every_customer(model):
    result = model.evaluate([CostRate(type="personal_assistance", cost_per_minute=1.5)])
    config = {**CONFIG, "cost_drivers": {**CONFIG["cost_drivers"], "personal_assistance": {
        "cost_per_minute": 1.5, "fixed_yearly_cost": 0,
        "channel_cost_per_minute": {"store": 3.0}}}}
    assert dict(zip(model.segments, result.scenario["cost"], strict=True)) == pytest.approx(
        segment_costs(config))
    result = model.evaluate([CostRate(type="self_service", fixed_yearly_cost=0)])
    assert result.total("cost", "change") == pytest.approx(-100)


def test_retention_moves_value_not_this_years_profit(model):
    result = model.evaluate([RetentionChange(segment="gold", change=0.05)])
    gold, basic = (model.segment_index(s) for s in ("gold", "basic"))
    assert result.scenario["value"][gold] == pytest.approx(750 * lifetime(0.85) / lifetime(0.8))
    assert result.change("value")[basic] == 0.0
    assert (result.change("profit") == 0).all()
    assert result.scenario["net_value"][gold] == pytest.approx(
        result.scenario["value"][gold] - 50.5 * lifetime(0.85))  # variable cost only
    # the move's retention change counts in proportion to its share
    moved = model.evaluate([Move(segment="gold", from_type="personal_assistance",
                                 to_type="self_service", share=0.5, retention_change=-0.1)])
    assert moved.scenario["retention"][gold] == pytest.approx(0.75)


def test_margin_and_discount_rate(model):
    result = model.evaluate([MarginChange(change=-0.1)])
    assert result.total("profit", "change") == pytest.approx(-32)
    assert result.total("value", "change") == pytest.approx(-78)
    result = model.evaluate([DiscountRate(rate=0.2)])
    gold = model.segment_index("gold")
    assert result.scenario["value"][gold] == pytest.approx(
        750 * lifetime(0.8, 0.2) / lifetime(0.8))


def test_unknown_segment_is_named(model):
    with pytest.raises(ValueError, match="'platinum'.*gold, basic"):
        model.evaluate([RetentionChange(segment="platinum", change=0.1)])


# --- client.yaml -------------------------------------------------------------------------------

SCENARIOS = [
    {"name": "Gold to self-service", "note": "web first",
     "changes": [{"move": {"segment": "gold", "from": "personal_assistance",
                           "to": "self_service", "retention_change": -0.05}}]},
    {"name": "Cheaper call centre",
     "changes": [{"cost": {"type": "personal_assistance", "cost_per_minute": 0.8}},
                 {"kind": "retention", "change": 0.02}]},
]


def test_scenarios_section_of_client_yaml():
    from conftest import MINIMAL_CONFIG

    config = ClientConfig.model_validate({**MINIMAL_CONFIG, "scenarios": SCENARIOS})
    first = config.scenarios[0].changes[0]
    assert isinstance(first, Move) and first.from_type == "personal_assistance"
    assert isinstance(config.scenarios[1].changes[1], RetentionChange)


@pytest.mark.parametrize(("change", "match"), [
    ({"move": {"segment": "gold", "from": "personal_asistance", "to": "self_service"}},
     "'personal_asistance'.*personal_assistance, dedicated_personal_assistance"),
    ({"cost": {"type": "call_centre", "cost_per_minute": 1}}, "'call_centre'"),
    ({"moove": {"segment": "gold"}}, "moove"),
    ({"move": {"segment": "gold", "from": "self_service", "to": "self_service"}}, "both"),
    ({"retention": {"change": 0.1, "segmnt": "gold"}}, "segmnt"),
])
def test_invalid_changes_are_named(change, match):
    with pytest.raises(ValidationError, match=match):
        Scenario.model_validate({"name": "x", "changes": [change]})


def test_client_yaml_error_names_the_key(make_workspace):
    from crmkit.core.problems import WorkspaceError
    from crmkit.settings.client import load_config

    root = make_workspace(config_overrides={"scenarios": [
        {"name": "x", "changes": [{"cost": {"type": "telepathy", "cost_per_minute": 1}}]}]})
    with pytest.raises(WorkspaceError, match="scenarios.0.changes.0.cost.type"):
        load_config(root)


def test_compare_side_by_side(model):
    table = scenarios.compare(model, SCENARIOS)
    assert table["scenario"].tolist() == ["Gold to self-service", "Cheaper call centre"]
    assert table.loc[0, "note"] == "web first"
    assert table.loc[0, "cost_change"] == pytest.approx(-49.2)
    # 0.8 instead of 1.0 on 60 of personal-assistance cost
    assert table.loc[1, "cost_change"] == pytest.approx(-12)
    by_segment = scenarios.compare(model, SCENARIOS, by="segment")
    assert len(by_segment) == 4
    assert by_segment.groupby("scenario", sort=False)["cost_change"].sum().tolist() == (
        pytest.approx(table["cost_change"].tolist()))
    assert scenarios.compare(model, []).empty


# --- sensitivity -------------------------------------------------------------------------------

def test_sensitivity_and_profit_break_even(model):
    table = scenarios.sensitivity(model, metric="profit")
    assert table["swing"].is_monotonic_decreasing
    rate = table[(table["assumption"] == "cost_per_minute")
                 & (table["relationship_type"] == "personal_assistance")].iloc[0]
    assert (rate["low"], rate["high"]) == pytest.approx((0.8, 1.2))
    assert rate["metric_low"] == pytest.approx(137.5 + 12)
    # profit = 137.5 + 60 − 60 x crosses zero at x = 197.5 / 60
    assert rate["break_even"] == pytest.approx(197.5 / 60)
    at = model.evaluate([CostRate(type="personal_assistance", cost_per_minute=rate["break_even"])])
    assert at.total("profit") == pytest.approx(0, abs=1e-6)
    # profit is a yearly figure: retention and discount do not move it, no break-even
    retention = table[table["assumption"] == "retention"].iloc[0]
    assert retention["swing"] == 0 and retention["break_even"] is None


def test_net_value_break_evens_solve(model):
    table = scenarios.sensitivity(model, metric="net_value").set_index("assumption")
    base_margin = 320 / 650
    margin = table.loc["gross_margin"]
    assert margin["base"] == pytest.approx(base_margin)
    at = model.evaluate([MarginChange(change=margin["break_even"] / base_margin - 1)])
    assert at.total("net_value") == pytest.approx(0, abs=1e-6)
    assert set(table.index) >= {"cost_per_minute", "fixed_yearly_cost", "retention",
                                "gross_margin", "discount_rate"}
    retention = table.loc["retention"]
    assert retention["high"] <= cost_benefit.MAX_RETENTION


@pytest.mark.parametrize("lang", LANGUAGES)
def test_scenario_and_tornado_charts(model, lang):
    fmt = Formatter(lang, "EUR")
    figures = [charts.scenario_bars(scenarios.compare(model, SCENARIOS), fmt),
               charts.scenario_bars(scenarios.compare(model, SCENARIOS, by="segment"), fmt),
               charts.tornado(scenarios.sensitivity(model), fmt)]
    for fig in figures:
        fig.to_json()
        assert fig.layout.title.text and fig.layout.xaxis.title.text
    assert fmt.currency_symbol() in figures[2].layout.xaxis.title.text


# --- speed -------------------------------------------------------------------------------------

def test_evaluation_does_not_depend_on_the_number_of_customers():
    n = 50_000
    rng = np.random.default_rng(1)
    segment = rng.choice(["champions", "loyal", "at_risk", "hibernating"], n)
    customers = pd.DataFrame({"customer_id": [f"C{i}" for i in range(n)], "segment": segment,
                              "margin_window": rng.gamma(2, 50, n), "clv": rng.gamma(2, 120, n),
                              "revenue_window": rng.gamma(2, 100, n)})
    config = {"current": {"champions": ["dedicated_personal_assistance"],
                          "loyal": ["personal_assistance", "automated_services"],
                          "at_risk": ["personal_assistance"],
                          "hibernating": ["personal_assistance", "self_service"]}}
    model = ScenarioModel.from_tables(customers, None, config)
    move = [Move(segment="hibernating", from_type="personal_assistance",
                 to_type="automated_services", retention_change=-0.05)]
    start = time.perf_counter()
    for _ in range(100):
        _ = model.evaluate(move).frame
    assert (time.perf_counter() - start) / 100 < 0.05


def test_relative_cost_rate_and_what_if(model):
    relative = model.evaluate([CostRate(type="personal_assistance", change=-0.2)])
    assert relative.total("cost", "change") == pytest.approx(-12)
    assert model.main_type("gold") == "personal_assistance"
    assert model.main_type("basic") == "automated_services"
    assert (model.what_if("gold").change("cost") == 0).all()
    result = model.what_if("gold", "self_service", retention_change=0.05)
    gold = model.segment_index("gold")
    assert result.change("cost")[gold] == pytest.approx(-49.2)
    assert result.scenario["retention"][gold] == pytest.approx(0.85)
    cheaper = model.what_if("gold", cost_rate_change=-0.2)
    assert cheaper.total("cost", "change") == pytest.approx(-12)
