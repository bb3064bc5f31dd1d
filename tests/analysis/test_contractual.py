"""Contractual clients: the sBG fitted on individual durations, measures, segments and value.

The oracle is the high-end cohort of Fader & Hardie (2007), "How to Project Customer Retention":
1000, 869, 743, 653, 593, 551, 517, 491 customers over seven years give alpha = 0.668 and
beta = 3.806. Everything else is computed by hand in the test or simulated from known
parameters with a fixed seed.
"""

import numpy as np
import pandas as pd
import pytest

from crmkit.analysis import contractual as ctr
from crmkit.analysis.value import ShiftedBetaGeometric
from crmkit.core.i18n import catalogue

HIGH_END = [1000, 869, 743, 653, 593, 551, 517, 491]


def _high_end_durations():
    """The cohort as (duration, churned, customers) rows: 131 leave in year 1, ..., 491 stay."""
    lost = -np.diff(HIGH_END)
    periods = list(range(1, 8)) + [7]
    churned = [True] * 7 + [False]
    return periods, churned, list(lost) + [HIGH_END[-1]]


# --------------------------------------------------------------------------------------------
# fit_retention
# --------------------------------------------------------------------------------------------


def test_the_published_high_end_cohort_from_individual_durations():
    periods, churned, weights = _high_end_durations()
    model = ctr.fit_retention(periods, churned, weights=weights)
    assert isinstance(model, ShiftedBetaGeometric)
    assert model.params.round(3).to_dict() == {"alpha": 0.668, "beta": 3.806}
    assert not model.diagnostics()
    assert model.n_customers_ == 1000 and model.periods_ == 7

    # The same as the cohort fit on survivor counts, likelihood included.
    cohort = ShiftedBetaGeometric().fit(HIGH_END)
    np.testing.assert_allclose(model.params, cohort.params, rtol=1e-5)
    assert model.log_likelihood_ == pytest.approx(cohort.log_likelihood_, rel=1e-9)

    # One row per customer gives the same as weighted rows.
    expanded = ctr.fit_retention(np.repeat(periods, weights), np.repeat(churned, weights))
    np.testing.assert_allclose(expanded.params, model.params, rtol=1e-6)
    # And the fitted model's verbs work: the paper's retention in year 8.
    assert round(model.retention(8), 3) == 0.942


def _simulate(rng, alpha, beta, ages, per_cohort):
    """Cohorts started ``ages`` periods ago, sBG churn; durations censored at each age."""
    periods, churned, entered_at = [], [], []
    for age in ages:
        theta = rng.beta(alpha, beta, per_cohort)
        leave = rng.geometric(theta)  # the period in which each customer leaves, >= 1
        gone = leave <= age
        periods.append(np.where(gone, leave, age))
        churned.append(gone)
        entered_at.append(np.full(per_cohort, age))
    return np.concatenate(periods), np.concatenate(churned), np.concatenate(entered_at)


def test_cohorts_censored_at_different_tenures_recover_the_true_parameters():
    rng = np.random.default_rng(20070101)
    alpha, beta = 0.7, 3.0
    periods, churned, _ = _simulate(rng, alpha, beta, ages=[4, 8, 12, 24, 48], per_cohort=4000)
    model = ctr.fit_retention(periods, churned)
    # 20,000 customers: the standard error of log(alpha), log(beta) is about 3-4 % (measured
    # over seeds), so 12 % is three of them.
    np.testing.assert_allclose(model.params, [alpha, beta], rtol=0.12)
    assert not model.degenerate


def test_left_truncation_recovers_what_a_register_of_survivors_hides():
    """A register started 24 months ago lists the older contracts only if they survived."""
    rng = np.random.default_rng(5)
    alpha, beta, opened = 0.8, 4.0, 24
    periods, churned, age = _simulate(rng, alpha, beta, ages=range(1, 73), per_cohort=400)
    renewals_at_opening = np.maximum(age - opened, 0)
    # Left out of the register: whoever left before it opened.
    listed = ~churned | (periods > renewals_at_opening)
    periods, churned, entered = periods[listed], churned[listed], renewals_at_opening[listed]

    model = ctr.fit_retention(periods, churned, entered=entered)
    np.testing.assert_allclose(model.params, [alpha, beta], rtol=0.15)
    # Without the truncation the survivors of old cohorts make retention look far better.
    naive = ctr.fit_retention(periods, churned)
    truth = ShiftedBetaGeometric.from_params(alpha, beta)
    assert naive.survival(12) > truth.survival(12) + 0.05
    assert model.survival(12) == pytest.approx(truth.survival(12), abs=0.02)


@pytest.mark.parametrize(("periods", "churned", "kwargs", "message"), [
    ([3, 5], [False, False], {}, "nobody churned"),
    ([0, 5], [True, False], {}, "churned with duration 0"),
    ([1.5, 5], [True, False], {}, "not a whole number"),
    ([-1, 5], [False, True], {}, "a negative duration"),
    ([2, 5], [True, False], {"entered": [2, 0]}, "entered after their last renewal"),
    ([2, 5], [True], {}, "equally long"),
    ([2, 5], [True, False], {"weights": [0, 0]}, "sum to zero"),
])
def test_impossible_durations_are_named(periods, churned, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ctr.fit_retention(periods, churned, **kwargs)


# --------------------------------------------------------------------------------------------
# measures
# --------------------------------------------------------------------------------------------

AS_OF = "2026-03-31"


def _monthly(customer, first, count, amount, day):
    dates = pd.date_range(first, periods=count, freq="MS") + pd.Timedelta(days=day - 1)
    return pd.DataFrame({"customer_id": customer, "date": dates, "amount": amount})


def _register(c_end="2025-08-31"):
    customers = pd.DataFrame({
        "customer_id": ["A", "B", "C", "D", "E"],
        "start_date": pd.to_datetime(["2025-01-15", "2025-11-10", "2024-06-01", "2026-05-01",
                                      "2026-03-20"]),
        "end_date": pd.to_datetime([None, None, c_end, None, "2026-06-30"]),
    })
    bills = pd.concat([
        # A: 30 a month on the 15th, down to 15 from January (a cheaper plan); one bill after
        # as_of, to be ignored.
        _monthly("A", "2025-01-01", 12, 30.0, 15),
        _monthly("A", "2026-01-01", 4, 15.0, 15),
        # B: three bills, then nothing since 10 January.
        _monthly("B", "2025-11-01", 3, 50.0, 10),
        # C: 15 bills on the 1st, June 2024 to August 2025, then the contract ended.
        _monthly("C", "2024-06-01", 15, 20.0, 1),
        # Not in the register.
        _monthly("Z", "2025-06-01", 3, 99.0, 1),
    ], ignore_index=True)
    return customers, bills


def test_measures_by_hand():
    customers, bills = _register()
    m = ctr.measures(customers, bills, AS_OF, gross_margin=0.4)
    assert list(m.index) == ["A", "B", "C", "E"]  # D starts after as_of: not a customer yet
    assert m["tenure_months"].to_dict() == {"A": 14, "B": 4, "C": 15, "E": 0}
    assert m["active"].to_dict() == {"A": True, "B": True, "C": False, "E": True}
    assert m.loc["C", "months_since_end"] == 7
    assert m[["months_since_end"]].drop(index="C").isna().all().all()
    # A: April 2025 to March 2026, 9 bills of 30 and 3 of 15, at 40 %: 0.4 x 315 / 12.
    assert m.loc["A", "monthly_margin"] == pytest.approx(0.4 * 315 / 12)
    # B: 3 bills of 50 over the 5 months billed so far (November to March).
    assert m.loc["B", "monthly_margin"] == pytest.approx(0.4 * 150 / 5)
    # C: its last year as a customer, 12 bills of 20.
    assert m.loc["C", "monthly_margin"] == pytest.approx(0.4 * 20)
    assert m.loc["E", "monthly_margin"] == 0
    # A's last three bills (45) against the three before (90); C flat until it left.
    assert m.loc["A", "bill_trend"] == pytest.approx(0.5)
    assert m.loc["C", "bill_trend"] == pytest.approx(1.0)
    assert np.isnan(m.loc["B", "bill_trend"])  # under six months
    assert m["months_since_last_bill"].fillna(-1).to_dict() == {"A": 0, "B": 2, "C": 7, "E": -1}
    # The register shows no end before 31 August 2025: A had renewed 7 times by then, C 14.
    assert m["entered_months"].to_dict() == {"A": 7, "B": 0, "C": 14, "E": 0}


def test_margin_column_wins_and_the_end_date_convention_does_not_matter():
    customers, bills = _register()
    bills["margin"] = np.where(bills["customer_id"] == "C", 5.0, np.nan)
    m = ctr.measures(customers, bills, AS_OF, gross_margin=0.4, observed_from="2024-01-01")
    assert m.loc["C", "monthly_margin"] == pytest.approx(5.0)
    assert m.loc["B", "monthly_margin"] == pytest.approx(0.4 * 150 / 5)  # no margin: the rate
    assert (m["entered_months"] == 0).all()  # everyone started after the register opened
    # An export that gives the day of the unpaid bill (1 September) instead of the last day.
    customers, _ = _register(c_end="2025-09-01")
    other = ctr.measures(customers, bills, AS_OF, gross_margin=0.4)
    assert other.loc["C", "tenure_months"] == 15


def test_a_register_without_start_dates_is_refused():
    customers, bills = _register()
    with pytest.raises(ValueError, match="start_date"):
        ctr.measures(customers.drop(columns="start_date"), bills, AS_OF, gross_margin=0.4)
    customers.loc[0, "end_date"] = pd.Timestamp("2024-01-01")
    with pytest.raises(ValueError, match="end_date before their start_date"):
        ctr.measures(customers, bills, AS_OF, gross_margin=0.4)


# --------------------------------------------------------------------------------------------
# segments
# --------------------------------------------------------------------------------------------


def test_segments_follow_the_rules_in_order():
    rows = {  # tenure, active, months since end, margin, trend, months since last bill
        "new": (3, True, np.nan, 10.0, np.nan, 0),
        "silent": (30, True, np.nan, 20.0, 1.0, 2),
        "downgraded": (10, True, np.nan, 20.0, 0.69, 0),
        "new_but_silent": (3, True, np.nan, 20.0, np.nan, 3),
        "loyal_high": (30, True, np.nan, 50.0, 1.0, 0),
        "loyal": (24, True, np.nan, 5.0, 1.0, 0),
        "established_high": (6, True, np.nan, 50.0, 1.0, 0),
        "established": (23, True, np.nan, 5.0, 0.8, 0),
        "left_recently": (40, False, 11.0, 50.0, 1.0, 11),
        "left_long_ago": (40, False, 12.0, 50.0, 1.0, 12),
    }
    m = pd.DataFrame.from_dict(rows, orient="index", columns=[
        "tenure_months", "active", "months_since_end", "monthly_margin", "bill_trend",
        "months_since_last_bill"])
    segment, names = ctr.segments(m, "es")
    # The median margin of the active customers is 20.
    assert segment.astype(str).to_dict() == {
        "new": "new", "silent": "at_risk", "downgraded": "at_risk", "new_but_silent": "at_risk",
        "loyal_high": "loyal_high_value", "loyal": "loyal",
        "established_high": "established_high_value", "established": "established",
        "left_recently": "churned_recent", "left_long_ago": "churned",
    }
    assert list(names) == list(ctr.SEGMENTS)
    assert names["loyal_high_value"] == "Fieles de alto valor"
    assert list(segment.cat.categories) == list(ctr.SEGMENTS)


def test_every_segment_has_a_name_and_a_description_in_both_languages():
    messages = catalogue()
    for key in ctr.SEGMENTS:
        for entry in (f"ctr_segment_{key}", f"ctr_segment_{key}_desc"):
            assert set(messages[entry]) >= {"en", "es"}, entry
    described = ctr.segment_descriptions("en")
    assert described["new"] == "Customers for less than 6 months, with no churn signal"
    assert "30%" in described["at_risk"] and "30\xa0%" in ctr.segment_descriptions("es")["at_risk"]


# --------------------------------------------------------------------------------------------
# value
# --------------------------------------------------------------------------------------------


def test_clv_of_a_customer_of_tenure_three_by_hand():
    # alpha = 1, beta = 2: retention r(t) = (t + 1) / (t + 2), so S(n) = 2 / (n + 2) and a
    # customer of tenure 3 is still one k months on with probability 5 / (k + 5).
    model = ShiftedBetaGeometric.from_params(1.0, 2.0)
    valued = ctr.customer_values(model, [3], [20.0], discount_rate=0.10, horizon_months=3)
    monthly = 1.10 ** (1 / 12) - 1
    by_hand = 20.0 * (5 / 6 / (1 + monthly) + 5 / 7 / (1 + monthly) ** 2
                      + 5 / 8 / (1 + monthly) ** 3)
    assert valued.loc[0, "clv"] == pytest.approx(by_hand, rel=1e-12)
    assert valued.loc[0, "expected_purchases"] == pytest.approx(5 / 6 + 5 / 7 + 5 / 8)
    assert valued.loc[0, "retention"] == pytest.approx(5 / 17)


def _base(rng):
    """A simulated base: cohorts of a plan 'fibre' (loyal) and 'mobile' (fickle), 16 'other'."""
    frames = []
    for plan, (alpha, beta), n in (("fibre", (0.5, 8.0), 600), ("mobile", (1.0, 3.0), 600),
                                   ("other", (1.0, 3.0), 16)):
        periods, churned, _ = _simulate(rng, alpha, beta, ages=[6, 12, 24, 36], per_cohort=n // 4)
        frames.append(pd.DataFrame({"plan": plan, "tenure_months": periods,
                                    "active": ~churned}))
    m = pd.concat(frames, ignore_index=True)
    m.index = pd.Index([f"C{i:05d}" for i in range(len(m))], name="customer_id")
    m["monthly_margin"] = 10.0
    m["months_since_end"] = np.where(m["active"], np.nan, 3.0)
    m["bill_trend"] = 1.0
    m["months_since_last_bill"] = np.where(m["active"], 0.0, 3.0)
    return m


def test_value_per_group_with_the_base_fit_where_a_group_cannot_carry_one():
    m = _base(np.random.default_rng(11))
    segment, _ = ctr.segments(m, "en")
    frame, fits = ctr.value(m, segment, discount_rate=0.1, horizon_months=36, fit_by=m["plan"])
    assert list(fits)[0] == ctr.BASE_FIT and fits[ctr.BASE_FIT].own
    assert fits["fibre"].own and fits["mobile"].own
    assert fits["other"].reason == "too_few_customers"
    assert fits["other"].model is fits[ctr.BASE_FIT].model
    assert "16" in ctr.fit_reason(fits["other"], "es")
    # The loyal plan keeps its customers longer.
    assert fits["fibre"].model.survival(12) > fits["mobile"].model.survival(12)
    assert set(frame.loc[m["plan"] == "other", "fit"]) == {ctr.BASE_FIT}

    ended = ~m["active"]
    assert (frame.loc[ended, ["probability_alive", "retention", "expected_purchases",
                              "clv"]] == 0).all().all()
    assert (frame.loc[~ended, "probability_alive"] == 1).all()
    # A customer's figures are those of their group's fit.
    first = m.index[(m["plan"] == "fibre") & m["active"]][0]
    alone = ctr.customer_values(fits["fibre"].model, [m.loc[first, "tenure_months"]], [10.0],
                                discount_rate=0.1, horizon_months=36)
    assert frame.loc[first, "clv"] == pytest.approx(alone.loc[0, "clv"])

    # A segment's yearly retention: the mean retention of its active customers.
    retention = ctr.segment_retention(frame)
    loyal = frame["segment"] == "loyal_high_value"
    assert retention["loyal_high_value"] == pytest.approx(frame.loc[loyal, "retention"].mean())
    assert np.isnan(retention["churned_recent"])


def test_the_default_segments_take_the_base_fit_and_say_why():
    m = _base(np.random.default_rng(3))
    segment, _ = ctr.segments(m, "en")
    frame, fits = ctr.value(m, segment, discount_rate=0.1, horizon_months=12)
    # Every segment of segments() is all active or all ended: none can be fitted on its own.
    reasons = {key: fit.reason for key, fit in fits.items() if key != ctr.BASE_FIT}
    assert reasons["churned_recent"] == "only_churned"
    assert reasons["loyal_high_value"] == "no_churn"
    assert set(frame["fit"]) == {ctr.BASE_FIT}
    assert frame["clv"].max() <= 10.0 * 12


def test_value_refuses_an_impossible_horizon():
    m = _base(np.random.default_rng(3))
    segment, _ = ctr.segments(m, "en")
    with pytest.raises(ValueError, match="horizon_months"):
        ctr.value(m, segment, discount_rate=0.1, horizon_months=0)
