"""Context analysis: indicators on a hand-computable customer base, the objective's rules, SWOT."""

import datetime as dt

import pandas as pd
import pytest

from crmkit.analysis import context
from crmkit.core.i18n import Formatter
from crmkit.settings.client import ClientConfig

AS_OF = dt.date(2026, 6, 30)


def base_tables():
    """Five customers, one never buying; C's last purchase is after the analysis date."""
    customers = pd.DataFrame({"customer_id": list("ABCDE")})
    transactions = pd.DataFrame({
        "customer_id": ["A", "A", "A", "B", "C", "D", "D", "C"],
        "date": pd.to_datetime(["2024-08-01", "2025-08-01", "2026-01-10", "2024-09-01",
                                "2026-03-01", "2025-01-01", "2025-01-01", "2026-07-15"]),
        "amount": [100.0, 50.0, 50.0, 200.0, 30.0, 20.0, 10.0, 999.0],
    })
    return customers, transactions


@pytest.fixture
def base():
    return base_tables()


def config(**overrides) -> ClientConfig:
    cap = {"score": 3, "note": ""}
    factor = {"impact": "medium", "time_frame": "short", "direction": "threat"}
    raw = {
        "name": "Test", "context": {
            "internal": {k: dict(cap) for k in context.CAPABILITIES},
            "external": {"competitors": dict(factor), "regulation": dict(factor),
                         "disruptive_technology": dict(factor, impact="low"),
                         "industry_maturity": dict(factor, stage="maturity")}}}
    for path, value in overrides.items():
        node = raw
        *parents, last = path.split(".")
        for p in parents:
            node = node[p]
        node[last] = value
    return ClientConfig.model_validate(raw)


def test_indicators_match_a_hand_count(base):
    customers, transactions = base
    ind = context.indicators(customers, transactions, AS_OF, window_months=12, lapse_days=180)
    assert (ind.customers, ind.buyers, ind.active_customers, ind.new_customers) == (5, 4, 2, 1)
    assert ind.new_customer_rate == 0.5
    # A bought on three days; D's two lines on one day are one purchase.
    assert ind.repeat_rate == 0.25
    # A, B and D bought in the previous year; B and D did not come back.
    assert ind.lapse_rate == pytest.approx(2 / 3)
    assert ind.lapsed_share == 0.5
    # The after-as_of purchase of C (999) is ignored: top buyer 200 of 460.
    assert ind.top20_revenue_share == pytest.approx(200 / 460)
    assert ind.revenue_window == 130 and ind.revenue_previous_window == 330
    assert ind.revenue_growth == pytest.approx(-200 / 330)
    assert ind.average_order_value == pytest.approx(130 / 3)
    assert ind.orders_per_active_customer == 1.5
    assert ind.satisfaction_top_two_box is None


def test_satisfaction_top_two_box_counts_four_and_five():
    customers = pd.DataFrame({"customer_id": ["A"]})
    transactions = pd.DataFrame({"customer_id": ["A"], "date": pd.to_datetime(["2026-01-01"]),
                                 "amount": [10.0]})
    survey = pd.DataFrame({"customer_id": list("ABCD"), "satisfaction": [5, 4, 3, 1]})
    ind = context.indicators(customers, transactions, AS_OF, survey=survey)
    assert ind.satisfaction_top_two_box == 0.5


def test_monthly_activity_splits_new_and_returning(base):
    customers, transactions = base
    monthly = context.monthly_activity(transactions, AS_OF)
    assert monthly.loc["2025-01-01", "revenue"] == 30
    assert monthly.loc["2026-01-01", "returning_customers"] == 1
    assert monthly.loc["2026-03-01", "new_customers"] == 1
    assert monthly["new_customers"].sum() == 4
    assert pd.Timestamp("2026-07-01") not in monthly.index


def test_monthly_activity_counts_occasions_once_per_customer_and_month():
    """By hand: A's order o1 (a purchase and a return) and o2 in January, a returns-only o3 in
    March; B new in February with a return only; C's line after the analysis date is left out."""
    lines = pd.DataFrame({
        "customer_id": ["A", "A", "A", "A", "B", "B", "C", "C"],
        "date": pd.to_datetime(["2026-01-05", "2026-01-05", "2026-01-20", "2026-03-02",
                                "2026-02-10", "2026-03-15", "2026-01-31", "2026-07-01"]),
        "amount": [100.0, -20.0, 30.0, -10.0, -15.0, 60.0, 40.0, 999.0],
        "order_id": ["o1", "o1", "o2", "o3", None, None, "", "o4"]})
    expected = pd.DataFrame({"revenue": [150.0, -15.0, 50.0], "active_customers": [2, 1, 2],
                             "new_customers": [2, 1, 0], "returning_customers": [0, 0, 2]},
                            index=pd.DatetimeIndex(["2026-01-01", "2026-02-01", "2026-03-01"],
                                                   name="month"))
    monthly = context.monthly_activity(lines, AS_OF)
    pd.testing.assert_frame_equal(monthly, expected, check_index_type=False, check_freq=False)
    empty = context.monthly_activity(lines, dt.date(2025, 12, 31))
    assert empty.empty and list(empty.columns) == list(expected.columns)


def test_objective_retains_a_base_that_leaks(base):
    customers, transactions = base
    fmt = Formatter("en", "EUR")
    ind = context.indicators(customers, transactions, AS_OF)
    rec = context.recommend_objective(config(), ind, "en", fmt)
    # maturity +2 retain +1 grow; competitor threat (medium) +1 retain; lapse 67 % +2 retain;
    # repeat 25 % (not < 25 %): nothing; new 50 % > 40 % +1 retain; falling revenue +1 retain.
    assert rec.points == {"attract": 0, "retain": 7, "grow": 1}
    assert rec.recommended == rec.chosen == "retain" and not rec.overridden
    assert "67%" in " ".join(rec.evidence["finding"])


def test_a_young_industry_with_few_new_customers_points_to_attract():
    customers = pd.DataFrame({"customer_id": list("AB")})
    transactions = pd.DataFrame({
        "customer_id": ["A", "A", "B", "B"],
        "date": pd.to_datetime(["2024-01-05", "2025-12-01", "2024-02-01", "2026-02-01"]),
        "amount": [10.0, 10.0, 10.0, 10.0]})
    ind = context.indicators(customers, transactions, AS_OF)
    cfg = config(**{"context.external.industry_maturity.stage": "growth",
                    "context.external.competitors.direction": "opportunity"})
    rec = context.recommend_objective(cfg, ind, "es", Formatter("es", "EUR"))
    assert rec.recommended == "attract"
    assert rec.points["attract"] == 2 + 1 + 2


def test_the_consultant_can_override_the_objective(base):
    customers, transactions = base
    ind = context.indicators(customers, transactions, AS_OF)
    rec = context.recommend_objective(config(objective="grow"), ind, "en",
                                      Formatter("en", "EUR"))
    assert rec.recommended == "retain" and rec.chosen == "grow" and rec.overridden


def test_ties_go_to_retention():
    ind = context.Indicators(
        as_of=AS_OF, window_months=12, customers=10, buyers=10, active_customers=8,
        new_customers=4, new_customer_rate=0.5, repeat_rate=0.3, lapse_rate=0.4,
        lapsed_share=0.2, top20_revenue_share=0.2, revenue_window=1.0,
        revenue_previous_window=1.0, revenue_growth=0.0, average_order_value=1.0,
        orders_per_active_customer=1.0, satisfaction_top_two_box=None)
    cfg = config(**{"context.external.competitors.direction": "opportunity",
                    "context.external.competitors.impact": "low",
                    "context.external.industry_maturity.stage": "growth"})
    rec = context.recommend_objective(cfg, ind, "en", Formatter("en", "EUR"))
    # growth stage +2 and competitors' opportunity +1 attract; lapse 40 % +2 and new 50 % +1 retain
    assert rec.points == {"attract": 3, "retain": 3, "grow": 0}
    assert rec.recommended == "retain"


def test_external_weights_discount_distant_factors_and_sign_threats():
    cfg = config(**{"context.external.regulation.impact": "high",
                    "context.external.regulation.time_frame": "long",
                    "context.external.regulation.direction": "opportunity"})
    factors = context.external_factors(cfg, "en").set_index("factor")
    assert factors.loc["regulation", "weight"] == 1.5
    assert factors.loc["competitors", "weight"] == -2.0


def test_swot_sorts_judgements_into_quadrants(base):
    customers, transactions = base
    cfg = config(**{"context.internal.people.score": 5, "context.internal.people.note": "keen",
                    "context.internal.financial.score": 1})
    ind = context.indicators(customers, transactions, AS_OF)
    quadrants = context.swot(cfg, ind, "en", Formatter("en", "EUR"))
    assert quadrants["strengths"][0] == "People: keen"
    assert quadrants["weaknesses"][0] == "Financial"
    assert any("67%" in w for w in quadrants["weaknesses"])
    assert len(quadrants["threats"]) == 4 and quadrants["opportunities"] == []


def thirteen_months():
    """Transactions from 2025-05-31 to 2026-06-30: the previous window (2024-07-01 to
    2025-06-30) holds 31 days of data, 8 % of it; the current window is covered whole."""
    customers = pd.DataFrame({"customer_id": list("ABC")})
    transactions = pd.DataFrame({
        "customer_id": ["A", "B", "A", "C", "B"],
        "date": pd.to_datetime(["2025-05-31", "2025-06-15", "2025-09-01", "2026-02-01",
                                "2026-06-30"]),
        "amount": [10.0, 20.0, 30.0, 40.0, 50.0]})
    return customers, transactions


def test_window_coverage_by_hand():
    end, start = pd.Timestamp("2026-06-30"), pd.Timestamp("2025-06-30")
    assert context.window_coverage(pd.Timestamp("2025-07-01"), start, end) == 1.0
    assert context.window_coverage(pd.Timestamp("2020-01-01"), start, end) == 1.0
    assert context.window_coverage(pd.Timestamp("2026-06-22"), start, end) == pytest.approx(
        9 / 365)
    assert context.window_coverage(pd.Timestamp("2026-07-15"), start, end) == 0.0


def test_thirteen_months_of_data_give_no_growth_rate():
    customers, transactions = thirteen_months()
    ind = context.indicators(customers, transactions, AS_OF, window_months=12)
    assert ind.data_start == dt.date(2025, 5, 31)
    assert ind.coverage["window"] == 1.0
    # 2025-05-31 .. 2025-06-30: 31 days of the 365 of the previous window
    assert ind.coverage["previous_window"] == pytest.approx(31 / 365)
    for key in ("revenue_growth", "new_customer_rate", "new_customers", "lapse_rate",
                "revenue_previous_window"):
        assert getattr(ind, key) is None, key
        assert ind.not_covered[key] == "previous_window"
    # what the current window alone can tell is still computed
    assert ind.revenue_window == 120 and ind.active_customers == 3
    assert ind.orders_per_active_customer == 1.0
    assert ind.repeat_rate == pytest.approx(2 / 3)
    data = ind.as_dict()
    assert data["revenue_growth"] is None and data["new_customer_rate"] is None
    assert data["data_start"] == "2025-05-31"
    import json
    assert '"revenue_growth": null' in json.dumps(data)


def test_a_window_covered_at_ninety_percent_is_computed():
    customers, transactions = thirteen_months()
    # data from 2024-08-06: the previous window's last 329 of 365 days, just over 90 %
    early = pd.DataFrame({"customer_id": ["C"], "date": pd.to_datetime(["2024-08-06"]),
                          "amount": [5.0]})
    ind = context.indicators(customers, pd.concat([early, transactions]), AS_OF)
    assert ind.coverage["previous_window"] == pytest.approx(329 / 365)
    assert ind.not_covered == {}
    assert ind.revenue_growth == pytest.approx((120 - 35) / 35)
    # one day later it is not
    late = early.assign(date=pd.to_datetime(["2024-08-07"]))
    ind = context.indicators(customers, pd.concat([late, transactions]), AS_OF)
    assert ind.coverage["previous_window"] == pytest.approx(328 / 365)
    assert ind.revenue_growth is None


@pytest.mark.parametrize("lang", ["en", "es"])
def test_uncovered_indicators_are_explained_and_left_out_of_the_evidence(lang):
    customers, transactions = thirteen_months()
    fmt = Formatter(lang, "EUR")
    ind = context.indicators(customers, transactions, AS_OF)
    rows = context.indicator_rows(ind, fmt, 180).set_index("key")
    assert pd.isna(rows.loc["revenue_growth", "value"])
    assert ("8%" if lang == "en" else "8\xa0%") in rows.loc["revenue_growth", "display"]
    assert rows.loc["revenue_window", "display"] == fmt.money(120)
    note = context.coverage_note(ind, lang, fmt)
    assert "2025-05-31" in note and ("90%" if lang == "en" else "90\xa0%") in note
    rec = context.recommend_objective(config(), ind, lang, fmt)
    assert not {"lapse", "new", "growth"} & set(rec.evidence["key"])
    assert context.swot(config(), ind, lang, fmt)
    covered = context.indicators(*base_tables(), AS_OF)
    assert context.coverage_note(covered, lang, fmt) is None


def test_a_workspace_of_thirteen_months_records_null_growth(make_workspace):
    """The run's path: a workspace loaded as `crmkit run` loads it, the indicators of the
    steps, made JSON as workbook 01 records them into results.json."""
    import json

    from crmkit.delivery.steps import Steps
    from crmkit.delivery.workbook import to_jsonable
    from crmkit.inputs.workspace import load_workspace

    months = pd.date_range("2025-05-31", "2026-06-30", freq="MS")  # 13 month-starts
    lines = ["customer_id,date,amount"] + [
        f"C{1 + i % 3},{day.date().isoformat()},{10 + i}.00" for i, day in enumerate(months)]
    lines.append("C2,2026-06-30,5.00")
    lines.insert(1, "C3,2025-05-31,7.00")
    root = make_workspace(files={"transactions.csv": "\n".join(lines) + "\n"})
    ws = load_workspace(root)
    recorded = json.loads(json.dumps(to_jsonable(Steps(ws, "en").indicators.as_dict())))
    assert recorded["data_start"] == "2025-05-31"
    assert recorded["revenue_growth"] is None
    assert recorded["new_customer_rate"] is None and recorded["lapse_rate"] is None
    assert set(recorded["not_covered"]) >= {"revenue_growth", "new_customer_rate",
                                            "new_customers", "lapse_rate"}
    assert recorded["revenue_window"] is not None
