"""Segment profiles, the "no average customer" figures and IDIC flags, checked by hand."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from crmkit.analysis import profiles
from crmkit.analysis.rfm import rfm_table
from crmkit.core.i18n import Formatter, value_label
from crmkit.delivery.charts import segments as charts

AS_OF = dt.date(2024, 12, 31)
NA = None


def tx() -> pd.DataFrame:
    """Five customers. Gross margin 0.5 fills the missing margins.

    A: 300 revenue, margin 40 + 25 + 60 = 125, 2 purchase days (one with a promotion), recency
       30, tenure 213; B: 80, margin 30, one promoted purchase, recency 60; C: 200 then a return
       of 250 (net -50, margin -5), recency 91; D: 400 in 2023 then 100 in 2024 (margin 130),
       recency 305, tenure 671; E: 60 today, margin 30, an empty promotion code.
    """
    rows = [
        ("A", "2024-12-01", 100.0, "apparel", 40.0, NA),
        ("A", "2024-12-01", 50.0, "home", NA, "SUMMER"),
        ("A", "2024-06-01", 150.0, "apparel", 60.0, NA),
        ("B", "2024-11-01", 80.0, "apparel", 30.0, "WELCOME"),
        ("C", "2024-10-01", 200.0, "home", 20.0, NA),
        ("C", "2024-10-15", -250.0, "home", -25.0, NA),
        ("D", "2023-03-01", 400.0, "apparel", 100.0, NA),
        ("D", "2024-03-01", 100.0, "apparel", 30.0, NA),
        ("E", "2024-12-31", 60.0, "beauty", NA, " "),
        ("X", "2024-12-30", 999.0, "apparel", 99.0, NA),   # not segmented
    ]
    frame = pd.DataFrame(rows, columns=["customer_id", "date", "amount", "category", "margin",
                                        "promotion"])
    frame["date"] = pd.to_datetime(frame["date"])
    for column in ("customer_id", "category", "promotion"):
        frame[column] = frame[column].astype("str")
    frame["margin"] = frame["margin"].astype(float)
    return frame


def segments() -> pd.Series:
    order = pd.CategoricalDtype(["gold", "silver", "bronze", "other"])
    return pd.Series(["gold", "gold", "silver", "silver", "bronze"],
                     index=pd.Index(list("ABCDE"), name="customer_id"), dtype=order,
                     name="segment")


def customers() -> pd.DataFrame:
    return pd.DataFrame({"customer_id": list("ABCDEF"),
                         "region": ["North", "South", "North", None, "North", "South"],
                         "category_spend": [1000.0, np.nan, 100.0, 200.0, 50.0, 10.0]})


def survey() -> pd.DataFrame:
    return pd.DataFrame({"customer_id": list("ABCDEX"), "satisfaction": [5, 4, 2, 5, 3, 1],
                         "nps": pd.array([10, 9, 3, 7, None, 0], dtype="Int64")})


# ---- there is no average customer ------------------------------------------------------------

def test_average_customer_gap_by_hand():
    end = pd.Timestamp(AS_OF)
    frame = pd.DataFrame({"customer_id": list("abcde"),
                          "date": [end - pd.Timedelta(days=d) for d in (0, 10, 20, 30, 40)],
                          "amount": [10.0, 10.0, 10.0, 10.0, 160.0]})
    gap = profiles.average_customer_gap(frame, AS_OF)
    spend = gap.summary.loc["spend"]
    assert spend["mean"] == 40 and spend["median"] == 10
    assert spend["within_band"] == 0.0          # nobody spends 32-48
    assert spend["below_mean"] == 0.8
    assert gap.summary.loc["frequency", "within_band"] == 1.0
    assert gap.summary.loc["recency", "mean"] == 20
    assert gap.summary.loc["recency", "within_band"] == 0.2   # only the one at 20 days
    assert gap.top20_revenue_share == pytest.approx(160 / 200)
    # Gini: sorted 10,10,10,10,160; 2·(10+20+30+40+800)/(5·200) − 6/5 = 0.6
    assert gap.gini == pytest.approx(0.6)
    assert gap.as_dict()["measures"]["spend"]["mean"] == 40


def test_gini_extremes():
    assert profiles.gini([5, 5, 5, 5]) == pytest.approx(0.0)
    assert profiles.gini([0, 0, 0, 1]) == pytest.approx(0.75)
    assert profiles.gini([-3, 0, 0, 1]) == pytest.approx(0.75)   # negatives count as 0
    assert np.isnan(profiles.gini([]))
    assert profiles.top_share([1, 1, 1, 1, 1, 5], 0.2) == pytest.approx(6 / 10)


# ---- segment profiles ------------------------------------------------------------------------

def test_segment_profiles_by_hand():
    table = profiles.segment_profiles(None, tx(), segments(), as_of=AS_OF, gross_margin=0.5)
    assert list(table.index) == ["gold", "silver", "bronze"]          # empty "other" dropped
    assert table["customers"].tolist() == [2, 2, 1]
    assert table["customer_share"].tolist() == pytest.approx([0.4, 0.4, 0.2])
    assert table["revenue"].tolist() == pytest.approx([380, 450, 60])
    assert table["revenue_share"].tolist() == pytest.approx([380 / 890, 450 / 890, 60 / 890])
    assert table["margin"].tolist() == pytest.approx([155, 125, 30])
    assert table["margin_share"].tolist() == pytest.approx([155 / 310, 125 / 310, 30 / 310])
    assert table["frequency"].tolist() == pytest.approx([1.5, 1.5, 1.0])
    assert table["recency"].tolist() == pytest.approx([45, 198, 0])
    assert table["avg_order_value"].tolist() == pytest.approx([380 / 3, 150, 60])
    assert table["tenure"].tolist() == pytest.approx([136.5, 381, 0])
    assert table["revenue_per_customer"].tolist() == pytest.approx([190, 225, 60])


def test_profile_totals_equal_sums_over_customers():
    rng = np.random.default_rng(2)
    n = 2000
    frame = pd.DataFrame({
        "customer_id": [f"C{i:03d}" for i in rng.integers(0, 300, n)],
        "date": pd.Timestamp("2022-01-01") + pd.to_timedelta(rng.integers(0, 1000, n), "D"),
        "amount": np.round(rng.normal(50, 40, n), 2),
        "margin": np.where(rng.random(n) < 0.3, np.nan, np.round(rng.normal(15, 10, n), 2)),
    })
    rfm = rfm_table(frame, AS_OF, gross_margin=0.4)
    labels = pd.Series(rng.choice(["a", "b", "c"], len(rfm)), index=rfm.index)
    table = profiles.segment_profiles(None, frame, labels, as_of=AS_OF, gross_margin=0.4,
                                      with_total=True)
    body = table.drop(index="all")
    assert body["customers"].sum() == len(rfm) == table.loc["all", "customers"]
    assert body["revenue"].sum() == pytest.approx(rfm["monetary"].sum())
    assert body["margin"].sum() == pytest.approx(rfm["margin"].sum())
    assert table.loc["all", "revenue"] == pytest.approx(rfm["monetary"].sum())
    assert body["revenue_share"].sum() == pytest.approx(1.0)
    assert table.loc["all", "frequency"] == pytest.approx(rfm["frequency"].mean())
    assert table.loc["all", "recency"] == pytest.approx(rfm["recency"].mean())
    # Same figures from a precomputed RFM table.
    again = profiles.segment_profiles(None, frame, labels, as_of=AS_OF, gross_margin=0.4,
                                      rfm=rfm)
    pd.testing.assert_frame_equal(again, body.set_axis(again.index))


def test_profiles_with_survey_and_share_of_customer():
    table = profiles.segment_profiles(customers(), tx(), segments(), survey(), as_of=AS_OF,
                                      gross_margin=0.5, with_total=True)
    assert table["respondents"].tolist() == [2, 2, 1, 5]
    assert table["satisfaction_mean"].tolist() == pytest.approx([4.5, 3.5, 3.0, 3.8])
    assert table["share_of_customer"].tolist() == pytest.approx([0.3, 0.25, 1.0, 0.45])


# ---- typological, consumption, promotional ---------------------------------------------------

def test_typological_mix():
    mix = profiles.typological_mix(customers(), segments(), "region")
    assert list(mix.columns) == ["North", "South", "n/a", "customers"]
    assert mix.loc["gold"].tolist() == [0.5, 0.5, 0.0, 2]
    assert mix.loc["silver"].tolist() == [0.5, 0.0, 0.5, 2]
    assert mix.loc["bronze"].tolist() == [1.0, 0.0, 0.0, 1]
    with pytest.raises(KeyError, match="no column 'age'"):
        profiles.typological_mix(customers(), segments(), "age")


def test_typological_mix_orders_numbers_and_bands_by_value():
    people = pd.DataFrame({"customer_id": list("ABCDE"), "since": [2020, 2018, 2020, 2019, 2018],
                           "band": ["35-44", "18-24", "25-34", "18-24", "65+"]})
    assert list(profiles.typological_mix(people, segments(), "since").columns) == [
        "2018", "2019", "2020", "customers"]
    assert list(profiles.typological_mix(people, segments(), "band").columns) == [
        "18-24", "25-34", "35-44", "65+", "customers"]
    many = pd.DataFrame({"customer_id": list("ABCDE"), "age": [20, 30, 40, 50, 60]})
    banded = profiles.typological_mix(many, segments(), "age", max_levels=3, bands=2)
    assert list(banded.columns) == ["(19.999, 40.0]", "(40.0, 60.0]", "customers"]
    assert banded.loc["silver"].tolist() == [0.5, 0.5, 2]


def test_consumption_mix_counts_purchases():
    mix = profiles.consumption_mix(tx(), segments(), as_of=AS_OF)
    assert list(mix.columns) == ["apparel", "home", "beauty"]
    assert mix.loc["gold"].tolist() == pytest.approx([330 / 380, 50 / 380, 0])
    assert mix.loc["silver"].tolist() == pytest.approx([500 / 700, 200 / 700, 0])
    assert mix.loc["bronze"].tolist() == pytest.approx([0, 0, 1])
    with pytest.raises(KeyError, match="'product'"):
        profiles.consumption_mix(tx(), segments(), column="product")


def test_promotion_history_by_hand():
    history = profiles.promotion_history(tx(), segments(), as_of=AS_OF)
    gold = history.loc["gold"]
    # A: 1 Dec (one promoted line of two) and 1 Jun; B: one promoted purchase.
    assert (gold["orders"], gold["promo_orders"]) == (3, 2)
    assert gold["promo_order_share"] == pytest.approx(2 / 3)
    assert (gold["customers"], gold["promo_customers"]) == (2, 2)
    assert gold["promo_spend_share"] == pytest.approx(130 / 380)
    silver = history.loc["silver"]
    assert (silver["orders"], silver["promo_orders"], silver["customers"]) == (3, 0, 2)
    bronze = history.loc["bronze"]   # a blank code is no promotion
    assert (bronze["orders"], bronze["promo_orders"], bronze["promo_customer_share"]) == (1, 0, 0)


# ---- satisfaction, share of customer ---------------------------------------------------------

def test_satisfaction_and_nps_by_hand():
    sat = profiles.satisfaction(survey(), segments())
    gold, silver, bronze = (sat.loc[k] for k in ("gold", "silver", "bronze"))
    assert gold["respondents"] == 2 and gold["satisfaction_mean"] == 4.5
    assert gold["completely_satisfied"] == 0.5 and gold["top_two_box"] == 1.0
    assert gold["nps"] == pytest.approx(100.0)              # two promoters (10, 9)
    assert silver["completely_satisfied"] == 0.5 and silver["top_two_box"] == 0.5
    assert silver["share_2"] == 0.5 and silver["share_5"] == 0.5
    # C detractor (3), D passive (7): 0 % promoters − 50 % detractors
    assert silver["nps"] == pytest.approx(-50.0)
    assert (silver["promoters"], silver["detractors"]) == (0.0, 0.5)
    assert bronze["respondents"] == 1 and bronze["nps_respondents"] == 0
    assert np.isnan(bronze["nps"])
    assert sat[[f"share_{i}" for i in range(1, 6)]].sum(axis=1).tolist() == pytest.approx(
        [1, 1, 1])
    without = profiles.satisfaction(survey().drop(columns="nps"), segments())
    assert "nps" not in without.columns


def test_share_of_customer_by_hand():
    per = profiles.customer_share(customers(), tx(), as_of=AS_OF)
    assert list(per.index) == ["A", "C", "D", "E", "F"]
    assert per.loc["A", "share"] == pytest.approx(0.3)
    assert per.loc["C", "share"] == 0.0                       # net returns: nothing of theirs
    assert per.loc["D", "share"] == pytest.approx(0.5)       # only 2024's 100 counts
    assert per.loc["E", "share"] == 1.0 and bool(per.loc["E", "capped"])
    soc = profiles.share_of_customer(customers(), tx(), segments(), as_of=AS_OF)
    assert soc["customers_with_estimate"].tolist() == [1, 2, 1]
    assert soc["share_of_customer"].tolist() == pytest.approx([0.3, 0.25, 1.0])
    assert soc["capped"].tolist() == [0, 0, 1]
    with pytest.raises(KeyError, match="category_spend"):
        profiles.share_of_customer(customers().drop(columns="category_spend"), tx(),
                                   segments(), as_of=AS_OF)


# ---- differentiate ---------------------------------------------------------------------------

def test_differentiate_flags_the_hand_made_customers():
    result = profiles.differentiate(tx(), segments(), as_of=AS_OF, gross_margin=0.5)
    table = result.customers
    assert table.index.tolist() == list("ABCDE")
    assert table.loc["C", "margin_window"] == pytest.approx(-5)
    assert table.index[table["unprofitable"]].tolist() == ["C"]
    assert table.loc["D", "spend_previous"] == 400 and table.loc["D", "spend_window"] == 100
    assert table.loc["D", "spend_change"] == pytest.approx(-0.75)
    assert table.index[table["declining"]].tolist() == ["D"]
    # Top 20 % of 5 customers = 1: D has the largest margin (130).
    assert table.index[table["most_valuable"]].tolist() == ["D"]
    assert result.settings["value_threshold"] == pytest.approx(130)
    by = result.by_segment
    assert by.loc["silver", ["customers", "most_valuable", "unprofitable", "declining"]
                  ].tolist() == [2, 1, 1, 1]
    assert by.loc["silver", "declining_share"] == 0.5
    assert by.loc["gold", ["most_valuable", "unprofitable", "declining"]].tolist() == [0, 0, 0]
    assert result.flagged("declining").index.tolist() == ["D"]
    assert result.as_dict()["counts"] == {"most_valuable": 1, "unprofitable": 1, "declining": 1}


def test_differentiate_with_a_given_value_keeps_ties_together():
    value = pd.Series({"A": 10.0, "B": 10.0, "C": 5.0, "D": 1.0, "E": 0.0})
    result = profiles.differentiate(tx(), segments(), as_of=AS_OF, value=value)
    assert result.customers.index[result.customers["most_valuable"]].tolist() == ["A", "B"]
    smaller_drop = profiles.differentiate(tx(), as_of=AS_OF, decline=0.8)
    assert not smaller_drop.customers["declining"].any()       # D fell 75 %, not 80 %
    assert "X" in smaller_drop.customers.index                 # everyone who bought


# ---- charts ----------------------------------------------------------------------------------

def test_profile_charts_in_both_languages():
    names = {"gold": "<b>Gold</b>", "silver": "Silver", "bronze": "Bronze"}
    table = profiles.segment_profiles(None, tx(), segments(), as_of=AS_OF, gross_margin=0.5,
                                      with_total=True)
    brand = {"primary": "#123456", "accent": "#abcdef"}
    for lang, share_title in (("en", "Share (%)"), ("es", "Proporción (%)")):
        fmt = Formatter(lang, "EUR")
        bars = charts.segment_bars(table, fmt, names=names, **brand)
        assert list(bars.data[0].y) == ["&lt;b&gt;Gold&lt;/b&gt;", "Silver", "Bronze"]
        assert bars.data[1].marker.color == "#123456"
        assert bars.layout.xaxis.title.text == share_title
        sat = charts.satisfaction_by_segment(profiles.satisfaction(survey(), segments()), fmt,
                                             names=names, **brand)
        assert len(sat.data) == 5 and sat.data[4].marker.color == "#123456"
        mix = charts.category_mix_heatmap(profiles.consumption_mix(tx(), segments()), fmt,
                                          names=names, **brand)
        # Values from the data reach the chart in the report's language.
        assert list(mix.data[0].x) == [value_label(c, lang) for c in ("apparel", "home",
                                                                      "beauty")]
        mix = profiles.typological_mix(customers(), segments(), "region")
        fig = charts.typology_heatmap(mix, fmt, "Region <i>", names=names, **brand)
        assert "Region &lt;i&gt;" in fig.layout.title.text
        flags = charts.flags_by_segment(
            profiles.differentiate(tx(), segments(), as_of=AS_OF).by_segment, fmt,
            names=names, **brand)
        assert len(flags.data) == 3


def test_distribution_chart_marks_the_average():
    end = pd.Timestamp(AS_OF)
    frame = pd.DataFrame({"customer_id": list("abcde"),
                          "date": [end - pd.Timedelta(days=d) for d in (0, 10, 20, 30, 40)],
                          "amount": [10.0, 10.0, 10.0, 10.0, 160.0]})
    gap = profiles.average_customer_gap(frame, AS_OF)
    fig = charts.distribution_vs_average(gap, Formatter("es", "EUR"), "spend")
    assert fig.layout.xaxis.type == "log"
    assert fig.layout.xaxis.ticksuffix == "\u00a0€"
    assert "€" in fig.layout.xaxis.title.text
    assert any(a.text == "Media: 40\u00a0€" for a in fig.layout.annotations)
    assert "0\u00a0%" in fig.layout.title.subtitle.text
    line = [s for s in fig.layout.shapes if s.type == "line"][0]
    assert line.x0 == 40
    recency = charts.distribution_vs_average(gap, Formatter("en", "EUR"), "recency")
    assert recency.layout.xaxis.type != "log"
    assert recency.layout.xaxis.title.text == "Days since the last purchase"
    with pytest.raises(ValueError, match="measure 'age'"):
        charts.distribution_vs_average(gap, Formatter("en", "EUR"), "age")
