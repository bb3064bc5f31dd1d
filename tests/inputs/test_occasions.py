"""One rule for what a purchase is (crmkit.inputs.occasions), and every count that follows it.

The hand-computed case, as an invoice-line export gives it (amounts already signed, the
cancellation made negative on loading):

====  ==========  ======  =======  =========
cust  date        order   amount   promotion
====  ==========  ======  =======  =========
A     2024-01-01  1       10.00
A     2024-01-01  1        5.00
A     2024-01-01  2        8.00    SPRING
A     2024-01-03  C2      -8.00
A     2024-02-01  3       20.00
B     2024-01-10  4       30.00
B     2024-01-10  5        0.00    (a free item)
====  ==========  ======  =======  =========

With the order ids: A made three purchases (orders 1 and 2 on one day, and 3; the cancellation
C2 is not a purchase), B two (4 and the free order 5 on one day). Without them: A bought on two
days (01-01, 02-01; 01-03 holds only a return), B on one.
"""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from crmkit.analysis import context, model_choice, profiles, rfm, value
from crmkit.inputs import occasions
from crmkit.inputs.history_checks import history_checks
from crmkit.settings.client import ClientConfig

AS_OF = "2024-03-01"   # day 60 after 2024-01-01


@pytest.fixture
def lines() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": ["A", "A", "A", "A", "A", "B", "B"],
        "date": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-01", "2024-01-03",
                                "2024-02-01", "2024-01-10", "2024-01-10"]),
        "amount": [10.0, 5.0, 8.0, -8.0, 20.0, 30.0, 0.0],
        "order_id": ["1", "1", "2", "C2", "3", "4", "5"],
        "promotion": ["", "", "SPRING", "", "", "", ""],
    })


@pytest.fixture
def days(lines) -> pd.DataFrame:
    return lines.drop(columns="order_id")


def test_two_orders_on_one_day_are_two_purchases(lines, days):
    by_order = occasions.frame(lines)
    assert by_order.groupby("customer_id")["purchase"].sum().to_dict() == {"A": 3, "B": 2}
    assert len(by_order) == 6  # the cancellation is an occasion, not a purchase
    cancelled = by_order[~by_order["purchase"]]
    assert cancelled["amount"].tolist() == [-8.0]
    a = by_order[by_order["customer_id"] == "A"]
    assert a["amount"].tolist() == [15.0, 8.0, -8.0, 20.0]  # sorted by date, orders as found
    by_day = occasions.frame(days)
    assert by_day.groupby("customer_id")["purchase"].sum().to_dict() == {"A": 2, "B": 1}
    assert by_day["amount"].tolist() == [23.0, -8.0, 20.0, 30.0]
    assert occasions.purchase_counts(lines).to_dict() == {"A": 3, "B": 2}
    assert occasions.purchase_counts(days).to_dict() == {"A": 2, "B": 1}


def test_a_line_without_an_order_id_falls_back_to_its_day(lines):
    # Order 2's line has lost its id: it joins the other blank-id lines of A's day, not order 1.
    blank = lines.assign(order_id=["1", "1", None, "C2", "3", "4", ""])
    found = occasions.frame(blank)
    a = found[found["customer_id"] == "A"]
    assert a["amount"].tolist() == [15.0, 8.0, -8.0, 20.0]
    b = found[found["customer_id"] == "B"]
    assert b["amount"].tolist() == [30.0, 0.0]  # order 4, and the blank-id day line


def test_group_keeps_the_line_to_occasion_map():
    found = occasions.group(np.array([1, 0, 1, 0]), np.array([3, 9, 3, 2]),
                            np.array([1.0, -2.0, 4.0, 5.0]))
    assert found.customer.tolist() == [0, 0, 1]
    assert found.time.tolist() == [2, 9, 3]
    assert found.of_line.tolist() == [2, 1, 2, 0]
    assert found.purchase.tolist() == [True, False, True]
    assert not found.by_order


def test_summarise_counts_repeat_orders_in_days(lines, days):
    ours = value.summarise(lines, observation_period_end=AS_OF, order_id_col="order_id")
    # A: born with order 1 on day 0; repeats 2 (day 0) and 3 (day 31); T = 60.
    assert ours.loc["A"].tolist() == [2.0, 31.0, 60.0, 14.0]
    # B: born with order 4 on day 9, repeat: the free order 5 the same day.
    assert ours.loc["B"].tolist() == [1.0, 0.0, 51.0, 0.0]
    assert ours.attrs["periods_without_purchase"] == 1
    plain = value.summarise(days, observation_period_end=AS_OF, order_id_col="order_id")
    assert plain.loc["A"].tolist() == [1.0, 31.0, 60.0, 20.0]
    assert plain.loc["B"].tolist() == [0.0, 0.0, 51.0, 0.0]
    # Without order_id_col, lifetimes' semantics: periods, whatever the columns.
    assert value.summarise(lines, observation_period_end=AS_OF).equals(plain)


def test_summarise_in_weeks_keeps_orders_apart(lines):
    weeks = value.summarise(lines, observation_period_end=AS_OF, freq="W",
                            order_id_col="order_id")
    # 2024-01-01 is a Monday: A's orders fall in weeks 0, 0 and 4; T = week of 03-01 = 8.
    assert weeks.loc["A", ["frequency", "recency", "T"]].tolist() == [2.0, 4.0, 8.0]


def test_rfm_frequency_is_orders(lines, days):
    table = rfm.rfm_table(lines, AS_OF)
    assert table.loc["A", ["recency", "frequency", "monetary", "tenure"]].tolist() == \
        [29, 3, 35.0, 60]
    assert table.loc["A", "avg_order"] == pytest.approx(35.0 / 3)
    assert table.loc["B", ["recency", "frequency", "monetary", "tenure"]].tolist() == \
        [51, 2, 30.0, 51]
    plain = rfm.rfm_table(days, AS_OF)
    assert plain["frequency"].to_dict() == {"A": 2, "B": 1}
    assert plain.loc["A", "avg_order"] == pytest.approx(17.5)


def test_holdout_and_tracking_count_orders(lines, days):
    the_split = model_choice.Split(start=dt.date(2024, 1, 1),
                                   calibration_end=dt.date(2024, 1, 5),
                                   holdout_end=dt.date(2024, 3, 1), holdout_months=2)
    who = pd.Index(["A", "B"])
    assert model_choice.holdout_purchases(lines, who, the_split).tolist() == [1.0, 2.0]
    assert model_choice.holdout_purchases(days, who, the_split).tolist() == [1.0, 1.0]


def test_context_and_promotions_count_orders(lines, days):
    assert len(context.orders(lines)) == 6
    assert len(context.orders(days)) == 4
    segments = pd.Series(["x", "y"], index=["A", "B"])
    by_order = profiles.promotion_history(lines, segments)
    assert by_order["orders"].tolist() == [3, 2]
    assert by_order["promo_orders"].tolist() == [1, 0]
    by_day = profiles.promotion_history(days, segments)
    assert by_day["orders"].tolist() == [2, 1]
    assert by_day["promo_orders"].tolist() == [1, 0]


def test_check_counts_repeat_buyers_by_order(lines, days):
    judgement = {"impact": "low", "time_frame": "short", "direction": "threat"}
    config = ClientConfig.model_validate({"name": "Test", "context": {
        "internal": {k: {"score": 3} for k in ("financial", "operational", "technological",
                                                "people")},
        "external": {k: judgement for k in ("competitors", "regulation",
                                            "disruptive_technology")}
        | {"industry_maturity": {**judgement, "stage": "growth"}}}})
    customers = pd.DataFrame({"customer_id": ["A", "B"]})
    _, warnings = history_checks(config, customers, lines, dt.date(2024, 3, 1))
    assert dict(warnings)["check_warning_few_repeat_buyers"]["repeat"] == "2"
    _, warnings = history_checks(config, customers, days, dt.date(2024, 3, 1))
    assert dict(warnings)["check_warning_few_repeat_buyers"]["repeat"] == "1"


def test_tracking_counts_the_calibration_customers_purchases_week_by_week(lines, days):
    """A bought (order 3, or the day 2024-02-01) on day 27 of the holdout; B, first seen in
    the holdout, is not one of the calibration's customers and is not counted."""
    the_split = model_choice.Split(start=dt.date(2024, 1, 1),
                                   calibration_end=dt.date(2024, 1, 5),
                                   holdout_end=dt.date(2024, 3, 1), holdout_months=2)
    model = value.BetaGeo.from_params(r=1.0, alpha=10.0, a=2.0, b=3.0)
    for frame in (lines, days):
        calibration = frame[frame["date"] <= "2024-01-05"]
        summary = value.summarise(calibration, observation_period_end="2024-01-05",
                                  order_id_col=occasions.ORDER_COLUMN)
        tracking = model_choice._tracking(frame, summary, model, the_split)
        assert tracking["day"].tolist() == [7, 14, 21, 28, 35, 42, 49, 56]
        assert tracking["actual"].tolist() == [0, 0, 0, 1, 1, 1, 1, 1]
        expected = model.expected_purchases(np.array([7.0, 56.0]), summary["frequency"].iloc[0],
                                            summary["recency"].iloc[0], summary["T"].iloc[0])
        assert tracking["predicted"].iloc[[0, -1]].tolist() == pytest.approx(list(expected))


@pytest.mark.parametrize("keep", [None, [True, False, True, True, False, True, False]])
def test_customer_codes_number_a_subset_as_factorize_does(keep):
    frame = pd.DataFrame({"customer_id": ["C9", "A1", "C9", "B5", "A1", "Z0", "B5"],
                          "amount": np.arange(7.0)})
    plain = occasions.customer_codes(frame, None if keep is None else np.array(keep))
    coded = occasions.with_customer_codes(frame.copy())
    assert occasions.CUSTOMER_CODES in coded
    subset = coded[coded["amount"] > 1]      # a row subset keeps the numbering of the whole
    for table, mask in ((coded, keep), (subset, None)):
        codes, ids = occasions.customer_codes(table, None if mask is None else np.array(mask))
        ids_alone = table["customer_id"] if mask is None else table["customer_id"][mask]
        want_codes, want_ids = pd.factorize(ids_alone, sort=True)
        assert codes.tolist() == want_codes.tolist()
        assert ids.tolist() == list(want_ids)
    assert plain[1].tolist() == sorted(set(frame["customer_id"][keep] if keep else
                                           frame["customer_id"]))


def test_every_count_is_the_same_with_the_customers_numbered_once(lines, days):
    for frame in (lines, days):
        coded = occasions.with_customer_codes(frame.copy())
        pd.testing.assert_frame_equal(occasions.frame(coded), occasions.frame(frame))
        pd.testing.assert_frame_equal(rfm.rfm_table(coded, AS_OF), rfm.rfm_table(frame, AS_OF))
        pd.testing.assert_frame_equal(value.summarise(coded, order_id_col="order_id"),
                                      value.summarise(frame, order_id_col="order_id"))
        segments = pd.Series(["x", "y"], index=["A", "B"])
        pd.testing.assert_frame_equal(profiles.promotion_history(coded, segments),
                                      profiles.promotion_history(frame, segments))
        people = pd.DataFrame({"customer_id": ["A", "B", "C"]})
        for window in (1, 12):
            # (repr: a rate of no one is NaN, which == would call different)
            assert repr(context.indicators(people, coded, AS_OF, window_months=window)) == \
                repr(context.indicators(people, frame, AS_OF, window_months=window))


def test_up_to_copies_nothing_when_no_line_is_later():
    tx = pd.DataFrame({"customer_id": ["A", "B", "A"],
                       "date": pd.to_datetime(["2024-01-05", "2024-02-01", "2024-03-01"]),
                       "amount": [10.0, 20.0, 30.0]})
    assert occasions.up_to(tx, pd.Timestamp("2024-03-01")) is tx
    earlier = occasions.up_to(tx, pd.Timestamp("2024-02-01"))
    pd.testing.assert_frame_equal(earlier, tx[tx["date"] <= pd.Timestamp("2024-02-01")])
    assert list(earlier.index) == [0, 1]


@pytest.mark.parametrize("demo", ["retail", "bank", "retail with orders"])
def test_a_log_shared_is_grouped_once_and_every_figure_is_the_same(demo, monkeypatch):
    """Inside occasions.shared, the RFM table, the value summary and the tracking's find of the
    whole log group it once; their results are those of grouping it each time."""
    from crmkit.core import paths
    from crmkit.inputs.workspace import load_workspace

    ws = load_workspace(paths.DEMO_CLIENTS / demo.split()[0])
    log = occasions.up_to(ws.transactions, pd.Timestamp(ws.as_of))
    if demo.endswith("orders"):  # two orders some days, a blank id on some lines
        rng = np.random.default_rng(2)
        order = (log["customer_id"].astype(str) + "-" + log["date"].astype(str) + "-"
                 + pd.Series(rng.integers(0, 2, len(log)), index=log.index).astype(str))
        log = log.assign(**{occasions.ORDER_COLUMN: order.where(rng.random(len(log)) > 0.1)})
    alone_rfm = rfm.rfm_table(log, ws.as_of)
    alone_summary = value.summarise(log, observation_period_end=ws.as_of,
                                    order_id_col=occasions.ORDER_COLUMN)
    alone_found, alone_ids = occasions.find(log)
    calls = []
    group = occasions.group
    monkeypatch.setattr(occasions, "group", lambda *a, **k: calls.append(1) or group(*a, **k))
    with occasions.shared(log):
        shared_rfm = rfm.rfm_table(log, ws.as_of)
        shared_summary = value.summarise(log, observation_period_end=ws.as_of,
                                         order_id_col=occasions.ORDER_COLUMN)
        found, ids = occasions.find(log)
        assert len(calls) == 1
        occasions.find(log.copy())  # another frame: grouped anew
        assert len(calls) == 2
    occasions.find(log)  # after the block: nothing kept
    assert len(calls) == 3
    pd.testing.assert_frame_equal(shared_rfm, alone_rfm, check_exact=True)
    pd.testing.assert_frame_equal(shared_summary, alone_summary, check_exact=True)
    assert ids.equals(alone_ids)
    for field in ("of_line", "customer", "time", "amount", "purchase"):
        np.testing.assert_array_equal(getattr(found, field), getattr(alone_found, field))
    assert (occasions.ORDER_COLUMN in log.columns) == found.by_order
