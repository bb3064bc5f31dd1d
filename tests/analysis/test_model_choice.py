"""Model choice by holdout: the split, the purchases that happened, the candidates compared."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from crmkit.analysis import model_choice as mc
from crmkit.analysis import value


def _log(rows):
    return pd.DataFrame(rows, columns=["customer_id", "date", "amount"]).assign(
        date=lambda f: pd.to_datetime(f["date"]))


def test_default_holdout_is_a_quarter_of_the_history_within_3_and_12_months():
    assert mc.default_holdout_months(365) == 3
    assert mc.default_holdout_months(int(2 * 365.25)) == 6
    assert mc.default_holdout_months(10 * 365) == 12


def test_split_dates_and_too_short_a_history():
    log = _log([("a", "2024-01-01", 10.0), ("a", "2025-12-31", 5.0)])
    s = mc.split(log, dt.date(2025, 12, 31))
    assert s.holdout_months == 6
    assert s.calibration_end == dt.date(2025, 6, 30)
    assert s.holdout_days == 184
    short = _log([("a", "2025-10-01", 10.0)])
    assert mc.split(short, dt.date(2025, 12, 31), holdout_months=3) is None


def test_holdout_purchases_count_customer_days_with_a_purchase_line():
    log = _log([("a", "2025-01-05", 10.0),                       # calibration: not counted
                ("a", "2025-08-01", 10.0), ("a", "2025-08-01", 5.0),  # one day: one purchase
                ("a", "2025-09-01", 0.0),                  # a free item: a purchase
                ("a", "2025-09-02", 4.0),
                ("b", "2025-10-01", -20.0),                       # a pure return does not
                ("b", "2025-11-01", 30.0)])
    s = mc.Split(dt.date(2025, 1, 1), dt.date(2025, 6, 30), dt.date(2025, 12, 31), 6)
    counts = mc.holdout_purchases(log, pd.Index(["a", "b", "c"]), s)
    assert counts.to_dict() == {"a": 3.0, "b": 1.0, "c": 0.0}


@pytest.fixture(scope="module")
def cdnow():
    lifetimes = pytest.importorskip("lifetimes")
    from lifetimes.datasets import load_dataset

    # The sample's second column is the customer's id in the full CDNOW file, not an order
    # id: named order_id, it would make every line its own purchase occasion.
    raw = load_dataset("CDNOW_sample.txt", header=None, sep=r"\s+", dtype={"date": str},
                       names=["customer_id", "master_id", "date", "quantity", "amount"])
    assert lifetimes is not None
    return raw.assign(date=pd.to_datetime(raw["date"], format="%Y%m%d"),
                      customer_id=raw["customer_id"].astype(str))


def test_comparison_on_cdnow_agrees_with_an_independent_count(cdnow):
    as_of = dt.date(1998, 6, 30)
    comparison = mc.compare(cdnow, as_of, holdout_months=9)
    s = comparison.split
    assert s.calibration_end == dt.date(1997, 9, 30)
    # the purchases that happened, counted independently with plain pandas: CDNOW has only
    # purchase lines (zero-amount orders included), so every customer-day is an occasion, and
    # the calibration period holds the whole published cohort of 2,357 customers
    assert (cdnow["amount"] >= 0).all()
    calibration = cdnow[cdnow["date"] <= "1997-09-30"]
    customers = calibration["customer_id"].unique()
    assert comparison.customers == len(customers) == 2357
    later = cdnow[(cdnow["date"] > "1997-09-30") & cdnow["customer_id"].isin(customers)]
    days = later.groupby(["customer_id", "date"]).size()
    for candidate in comparison.candidates:
        assert candidate.actual == len(days)
    # every sound candidate predicts within 25 % of what happened on this classic data set
    sound = [c for c in comparison.candidates if c.sound]
    assert {c.model for c in sound} >= {"bg_nbd", "pareto_nbd"}
    for c in sound:
        assert abs(c.predicted / c.actual - 1) < 0.25, c.as_dict()
    best = min(sound, key=lambda c: c.mae)
    assert comparison.chosen == best.model
    v = comparison.validation()
    assert v["calibration_end"] == "1997-09-30" and v["actual_purchases"] == best.actual
    # the tracking ends on the holdout totals
    assert comparison.tracking["actual"].iloc[-1] == best.actual
    assert comparison.tracking["predicted"].iloc[-1] == pytest.approx(best.predicted, rel=1e-9)
    assert comparison.by_frequency["customers"].sum() == comparison.customers


def test_a_degenerate_candidate_is_named_and_passed_over(cdnow, monkeypatch):
    original = value.BetaGeo.diagnostics
    monkeypatch.setattr(value.BetaGeo, "diagnostics",
                        lambda self: {**original(self), "shape_beyond_1e3": "test"})
    comparison = mc.compare(cdnow, dt.date(1998, 6, 30), holdout_months=9)
    bg = comparison.candidate("bg_nbd")
    assert not bg.sound and "shape_beyond_1e3" in bg.issues
    assert comparison.chosen != "bg_nbd"
    forced = mc.compare(cdnow, dt.date(1998, 6, 30), holdout_months=9, model="bg_nbd")
    assert forced.chosen == "bg_nbd" and np.isfinite(forced.candidate("bg_nbd").mae)
