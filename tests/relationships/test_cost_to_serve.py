"""Cost to serve by time-driven ABC: a hand-computed case, its rules, invariants and edge cases."""

import numpy as np
import pandas as pd
import pytest
from relationship_case import CONFIG as CASE_CONFIG
from relationship_case import customers_table, interactions_log

from crmkit.relationships import cost_to_serve
from crmkit.relationships.inventory import ASSUMED_CHANNEL, TYPES

CONFIG = {**CASE_CONFIG}


@pytest.fixture
def cost():
    return cost_to_serve.compute(customers_table(), interactions_log(), CONFIG, window_years=1.0)


def test_hand_computed_cost_to_serve(cost):
    table = cost.customers.set_index("customer_id")
    # A: 10 min × 1.0 + 20 min × 2.0 (store rate); B: 5 × 0.1 + all of self-service's fixed 100;
    # C: 10 × 1.0 + assumed automated 12 × 1 min × 0.5 + half of automated's fixed 10; D: the same
    # assumed automated without any logged contact.
    assert table["variable_cost"].to_dict() == pytest.approx(
        {"A": 50.0, "B": 0.5, "C": 16.0, "D": 6.0})
    assert table["fixed_cost"].to_dict() == pytest.approx({"A": 0, "B": 100, "C": 5, "D": 5})
    assert table["cost_to_serve"].to_dict() == pytest.approx(
        {"A": 50.0, "B": 100.5, "C": 21.0, "D": 11.0})
    segments = cost.segments.set_index("segment")
    assert list(cost.segments["segment"]) == ["gold", "basic"]
    assert segments["cost_to_serve"].to_dict() == pytest.approx({"gold": 150.5, "basic": 32.0})
    assert segments["cost_per_customer"].to_dict() == pytest.approx({"gold": 75.25, "basic": 16})
    assert cost.assumed == [("basic", "automated_services")]
    assert cost.total == pytest.approx(182.5)


def test_variable_and_fixed_costs_apart(cost):
    segments = cost.segments.set_index("segment")
    assert segments["variable_cost"].to_dict() == pytest.approx({"gold": 50.5, "basic": 22.0})
    assert segments["fixed_cost"].to_dict() == pytest.approx({"gold": 100.0, "basic": 10.0})
    # basic's automated e-mails are declared, never logged: 12 of its 22 are imputed
    assert segments["imputed_share"].to_dict() == pytest.approx({"gold": 0.0, "basic": 12 / 22})
    assert segments["variable_cost_per_customer"].to_dict() == pytest.approx(
        {"gold": 25.25, "basic": 11.0})
    assert set(cost.lines["evidence"]) == {"logged", "imputed"}
    assert (cost.lines.loc[cost.lines["source"] == "assumed", "evidence"] == "imputed").all()
    figures = cost.as_dict()
    assert figures["variable_cost"] == pytest.approx(72.5)
    assert figures["fixed_cost"] == pytest.approx(110)  # self-service 100 + automated 10
    assert figures["total_cost_to_serve"] == pytest.approx(182.5)
    # four customers served by some type: 110 / 4, a display figure
    assert figures["fixed_cost_per_active_customer"] == pytest.approx(27.5)
    assert figures["imputed_cost"] == figures["assumed_cost"] == pytest.approx(12)
    assert figures["imputed_share"] == pytest.approx(12 / 72.5)
    assert {"variable_cost", "fixed_cost", "imputed_share"} <= set(figures["segments"].columns)


def test_fixed_cost_is_shared_per_served_customer_not_by_minutes():
    # personal assistance with a 30 fixed: A (30 min) and C (10 min) are its served customers
    config = {**CONFIG, "cost_drivers": {**CONFIG["cost_drivers"], "personal_assistance": {
        "cost_per_minute": 1.0, "fixed_yearly_cost": 30,
        "channel_cost_per_minute": {"store": 2.0}}}}
    cost = cost_to_serve.compute(customers_table(), interactions_log(), config, window_years=1)
    table = cost.customers.set_index("customer_id")
    # 15 each (by minutes it would have been 22.5 and 7.5); A's 15 split over its two lines
    assert table["fixed_cost"].to_dict() == pytest.approx({"A": 15, "B": 100, "C": 20, "D": 5})
    a = cost.lines[cost.lines["customer_id"] == "A"].set_index("channel")["fixed_cost"]
    assert a.to_dict() == pytest.approx({"phone": 5, "store": 10})
    types = cost.types.set_index("relationship_type")
    assert types.loc["personal_assistance", "fixed_cost_per_customer"] == pytest.approx(15)
    assert types.loc["personal_assistance", "customers"] == 2
    # the variable cost does not move with the fixed cost
    assert cost.segments.set_index("segment")["variable_cost"].to_dict() == pytest.approx(
        {"gold": 50.5, "basic": 22.0})


def test_profit_and_whale_curve(cost):
    profit = cost_to_serve.customer_profit(customers_table(), cost, window_months=12)
    assert profit.set_index("customer_id")["profit"].to_dict() == pytest.approx(
        {"A": 150.0, "B": -0.5, "C": -1.0, "D": -11.0})
    whale = cost_to_serve.whale_curve(customers_table(), cost, window_months=12)
    assert list(whale.curve["customer_id"]) == ["A", "B", "C", "D"]
    assert whale.curve["cumulative_profit"].tolist() == pytest.approx([150, 149.5, 148.5, 137.5])
    assert whale.total_profit == pytest.approx(137.5)
    assert whale.peak_profit == pytest.approx(150)
    assert whale.peak_pct == pytest.approx(150 / 137.5)
    assert whale.peak_share_of_customers == 0.25
    assert whale.unprofitable_share == 0.75
    assert whale.curve["cumulative_pct"].iloc[-1] == pytest.approx(1.0)


def test_margin_window_is_made_yearly(cost):
    profit = cost_to_serve.customer_profit(customers_table(), cost, window_months=6)
    assert profit.loc[0, "margin_year"] == 400.0


def test_segment_totals_equal_customer_sums(cost):
    by_customer = cost.customers.groupby("segment")[["variable_cost", "fixed_cost",
                                                     "cost_to_serve"]].sum()
    segments = cost.segments.set_index("segment")
    for column in by_customer:
        assert segments[column].to_dict() == pytest.approx(by_customer[column].to_dict())
    per_type = cost.segment_types.groupby("segment")["cost"].sum()
    assert per_type.to_dict() == pytest.approx(segments["cost_to_serve"].to_dict())
    assert cost.types["cost"].sum() == pytest.approx(cost.total)
    assert cost.lines["cost"].sum() == pytest.approx(cost.total)


def test_fixed_costs_only_for_types_in_use(cost):
    types = cost.types.set_index("relationship_type")
    assert types.loc["self_service", "fixed_cost"] == 100
    # co-creation has a catalogue fixed cost but nobody uses it: it costs nothing
    assert not types.loc["co_creation", "in_use"]
    assert types.loc["co_creation", ["fixed_cost", "cost", "minutes_year"]].sum() == 0
    assert list(cost.types["relationship_type"]) == list(TYPES)


def test_assumed_lines_are_labelled(cost):
    assumed = cost.lines[cost.lines["source"] == "assumed"]
    assert set(assumed["customer_id"]) == {"C", "D"}
    assert set(assumed["channel"]) == {ASSUMED_CHANNEL}
    assert assumed["minutes_year"].tolist() == [12.0, 12.0]


def test_annualised_over_the_log_window():
    log = interactions_log()
    cost = cost_to_serve.compute(customers_table(), log, {})
    years = ((log["date"].max() - log["date"].min()).days + 1) / 365.25
    assert cost.window_years == pytest.approx(years)
    assert cost.customers.set_index("customer_id").loc["A", "minutes_year"] == pytest.approx(
        30 / years)


def test_no_interactions_file_uses_declared_drivers_only():
    cost = cost_to_serve.compute(customers_table(), None, CONFIG)
    table = cost.customers.set_index("customer_id")
    # gold has nothing declared: zero; basic: automated at the drivers, fixed shared by minutes
    assert table["cost_to_serve"].to_dict() == pytest.approx(
        {"A": 0.0, "B": 0.0, "C": 11.0, "D": 11.0})
    assert cost.window_years is None


@pytest.mark.parametrize("log", [None, interactions_log().iloc[:0]])
def test_empty_interactions_and_no_declaration_cost_nothing(log):
    cost = cost_to_serve.compute(customers_table(), log, {})
    assert cost.total == 0
    assert (cost.segments["cost_per_customer"] == 0).all()
    assert cost.lines.empty and cost.activity.empty


def test_declared_type_seen_in_the_log_is_not_assumed():
    config = {**CONFIG, "current": {"gold": ["self_service"]}}
    cost = cost_to_serve.compute(customers_table(), interactions_log(), config, window_years=1)
    assert cost.assumed == []
    # A has no self-service contact in the log: the log is the measure, A costs it nothing
    a = cost.lines[(cost.lines["customer_id"] == "A")]
    assert set(a["relationship_type"]) == {"personal_assistance"}


def test_segment_without_interactions():
    customers = pd.concat([customers_table(), pd.DataFrame({
        "customer_id": ["E"], "segment": ["quiet"], "segment_name": ["Quiet"],
        "revenue_window": [10.0], "margin_window": [5.0], "clv": [8.0]})], ignore_index=True)
    cost = cost_to_serve.compute(customers, interactions_log(), CONFIG, window_years=1)
    quiet = cost.segments.set_index("segment").loc["quiet"]
    assert quiet["customers"] == 1 and quiet["served_customers"] == 0
    assert quiet["cost_to_serve"] == 0


def test_unknown_interactions_are_left_out_and_counted():
    log = pd.concat([interactions_log(), interactions_log().iloc[:1].assign(customer_id="Z")])
    cost = cost_to_serve.compute(customers_table(), log, CONFIG, window_years=1)
    assert cost.unmatched_interactions == 1
    assert cost.total == pytest.approx(182.5)


def test_unknown_segment_in_config_is_named():
    with pytest.raises(ValueError, match="'platinum'.*segments are basic, gold"):
        cost_to_serve.compute(customers_table(), None, {"current": {"platinum": ["co_creation"]}})


def test_unknown_relationship_type_in_log_is_named():
    log = interactions_log().assign(relationship_type="telepathy")
    with pytest.raises(ValueError, match="'telepathy'.*personal_assistance"):
        cost_to_serve.compute(customers_table(), log)


def test_whale_curve_with_a_loss_has_no_percentages():
    customers = customers_table().assign(margin_window=0.0)
    cost = cost_to_serve.compute(customers, interactions_log(), CONFIG, window_years=1)
    whale = cost_to_serve.whale_curve(customers, cost)
    assert whale.total_profit < 0
    assert np.isnan(whale.peak_pct) and whale.curve["cumulative_pct"].isna().all()


def test_realistic_data_runs():
    from crmkit.demo.synthetic import generate

    client = generate("retail", n_customers=600, seed=3)
    customers = client.customers[["customer_id"]].assign(
        segment=np.where(np.arange(600) % 3 == 0, "a", "b"), margin_window=10.0, clv=20.0)
    cost = cost_to_serve.compute(customers, client.interactions)
    assert cost.total > 0
    assert cost.segments["cost_to_serve"].sum() == pytest.approx(cost.total)
    assert cost.window_years == pytest.approx(3, abs=0.01)
