"""RFM table and scores: hand-computed figures, ties kept together, row order irrelevant."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from crmkit.analysis.rfm import quantile_scores, rfm_scores, rfm_table, score_grid

AS_OF = dt.date(2024, 12, 31)


def _tx(rows, columns=("customer_id", "date", "amount")) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(columns))
    frame["customer_id"] = frame["customer_id"].astype("str")
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def ladder(n: int = 10) -> pd.DataFrame:
    """Customer i (1..n) bought on i distinct days, the last 10·i days before AS_OF, 10·i each.

    So recency = 10·i, frequency = i, monetary = 10·i², tenure = 10·i + i − 1.
    """
    end = pd.Timestamp(AS_OF)
    rows = []
    for i in range(1, n + 1):
        for j in range(i):
            rows.append((f"C{i:02d}", end - pd.Timedelta(days=10 * i + j), 10.0 * i))
    return _tx(rows)


def test_rfm_table_on_a_hand_made_log():
    tx = _tx([
        ("C1", "2024-12-01", 50.0, 20.0),
        ("C1", "2024-12-01", 30.0, None),   # same day: one purchase, two lines
        ("C1", "2024-11-01", 20.0, 5.0),
        ("C1", "2024-12-20", -10.0, -3.0),  # a return: lowers spend, is not a purchase
        ("C2", "2024-06-01", -40.0, -12.0),  # only a return: not a buyer
        ("C3", "2025-01-05", 99.0, 30.0),   # after as_of: ignored
        ("C4", "2024-12-31", 12.5, None),
    ], columns=("customer_id", "date", "amount", "margin"))
    table = rfm_table(tx, AS_OF, gross_margin=0.5)
    assert list(table.index) == ["C1", "C4"]
    c1 = table.loc["C1"]
    assert c1["recency"] == 30                  # 1 Dec to 31 Dec
    assert c1["frequency"] == 2                 # two purchase days
    assert c1["monetary"] == pytest.approx(90.0)
    assert c1["avg_order"] == pytest.approx(45.0)
    assert c1["tenure"] == 60                   # 1 Nov to 31 Dec
    assert c1["margin"] == pytest.approx(20 + 0.5 * 30 + 5 - 3)
    c4 = table.loc["C4"]
    assert (c4["recency"], c4["frequency"], c4["tenure"]) == (0, 1, 0)
    assert c4["margin"] == pytest.approx(6.25)

    lines = rfm_table(tx, AS_OF, frequency="lines")
    assert lines.loc["C1", "frequency"] == 3
    assert lines.loc["C1", "avg_order"] == pytest.approx(30.0)


def test_margin_column_only_when_known():
    tx = _tx([("A", "2024-01-01", 10.0)])
    assert "margin" not in rfm_table(tx, AS_OF).columns
    assert rfm_table(tx, AS_OF, gross_margin=0.3).loc["A", "margin"] == pytest.approx(3.0)
    with pytest.raises(ValueError, match="frequency 'orders'"):
        rfm_table(tx, AS_OF, frequency="orders")


def test_no_purchase_gives_an_empty_table():
    empty = _tx([], columns=("customer_id", "date", "amount"))
    assert rfm_table(empty, AS_OF).empty
    later = _tx([("A", "2025-03-01", 10.0), ("B", "2024-05-01", -5.0)])
    table = rfm_table(later, AS_OF)
    assert table.empty and list(table.columns) == ["recency", "frequency", "monetary",
                                                   "avg_order", "tenure"]
    assert rfm_scores(table).empty


def test_ladder_table_and_scores():
    table = rfm_table(ladder(), AS_OF)
    i = np.arange(1, 11)
    assert table["recency"].tolist() == (10 * i).tolist()
    assert table["frequency"].tolist() == i.tolist()
    assert table["monetary"].tolist() == (10.0 * i * i).tolist()
    assert table["tenure"].tolist() == (10 * i + i - 1).tolist()
    scores = rfm_scores(table)
    # Distinct values, n = 10: exact quintiles, two customers per score.
    assert scores["f_score"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert scores["m_score"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    # Recency is reversed: the most recent customers score 5.
    assert scores["r_score"].tolist() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]


def test_identical_values_get_identical_scores():
    #            six customers bought once, two twice, one 3 times, one 5 times
    frequency = [1, 1, 1, 1, 1, 1, 2, 2, 3, 5]
    # 1: nobody below -> 1; 2: six below -> 1 + 5·6 // 10 = 4; 3: eight -> 5; 5: nine -> 5
    assert quantile_scores(frequency).tolist() == [1, 1, 1, 1, 1, 1, 4, 4, 5, 5]
    # Fewer distinct values than bins: all tied customers share the lowest score.
    assert quantile_scores([1] * 10).tolist() == [1] * 10
    assert quantile_scores([1] * 9 + [4]).tolist() == [1] * 9 + [5]


def test_scores_do_not_depend_on_row_order():
    rng = np.random.default_rng(3)
    table = pd.DataFrame({
        "recency": rng.integers(0, 30, 500),          # many ties
        "frequency": rng.choice([1, 1, 1, 2, 3], 500),
        "monetary": rng.choice([10.0, 20.0, 35.5, 80.0], 500),
    }, index=pd.Index([f"C{i:03d}" for i in range(500)], name="customer_id"))
    reference = rfm_scores(table)
    for seed in range(5):
        shuffled = table.sample(frac=1.0, random_state=seed)
        pd.testing.assert_frame_equal(rfm_scores(shuffled).loc[reference.index], reference)
    # And ties are never split: one score per distinct value.
    for column, score in (("recency", "r_score"), ("frequency", "f_score"),
                          ("monetary", "m_score")):
        assert (reference.groupby(table[column])[score].nunique() == 1).all()


def test_recency_ties_and_order():
    assert quantile_scores([0, 0, 5, 5, 100], higher_is_better=False).tolist() == [4, 4, 2, 2, 1]


def test_scores_reject_bad_input():
    with pytest.raises(ValueError, match="bins=1"):
        quantile_scores([1, 2], bins=1)
    with pytest.raises(ValueError, match="missing"):
        quantile_scores([1.0, np.nan])
    assert quantile_scores([]).tolist() == []


def test_score_grid_counts_every_cell():
    scores = rfm_scores(rfm_table(ladder(), AS_OF))
    grid = score_grid(scores)
    assert grid.shape == (5, 5)
    assert list(grid.index) == [5, 4, 3, 2, 1]
    assert list(grid.columns) == [1, 2, 3, 4, 5]
    assert grid.to_numpy().sum() == 10
    assert grid.loc[5, 1] == 2 and grid.loc[1, 5] == 2 and grid.loc[3, 3] == 2


def test_a_purchase_of_zero_is_a_purchase_occasion():
    # A free item and a fully discounted order are visits; only a return is not.
    tx = _tx([("A", "2024-10-01", 0.0), ("A", "2024-11-01", 20.0), ("Z", "2024-09-01", 0.0),
              ("R", "2024-09-01", -5.0)])
    table = rfm_table(tx, AS_OF)
    assert table.loc["A", "frequency"] == 2 and table.loc["A", "monetary"] == 20.0
    assert table.loc["Z", "frequency"] == 1 and table.loc["Z", "monetary"] == 0.0
    assert "R" not in table.index
