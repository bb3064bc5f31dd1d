"""Choosing the customer-base model and valuing customers (crmkit.analysis.valuation, retention).

Oracles: numerical integration for the twelve-month survival (against the closed forms the
module uses), a population simulated from the Pareto/NBD story (dropouts that the chosen model
must see), and hand-computed cases for the fallback and the retention aggregates.
"""

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from crmkit.analysis import retention, valuation, value

AS_OF = pd.Timestamp("2026-06-30")


def simulate(n=1500, years=3.0, seed=1, dropout=True):
    """Transactions of a Pareto/NBD population: Poisson purchases while alive, an exponential
    lifetime (none when ``dropout`` is False), every customer acquired in the first year."""
    rng = np.random.default_rng(seed)
    days = years * 365.25
    start = AS_OF - pd.Timedelta(days=days)
    lam = rng.gamma(2.0, 1 / 60.0, n)                 # ~ one purchase a month on average
    mu = rng.gamma(1.5, 1 / 300.0, n) if dropout else np.zeros(n)
    birth = rng.uniform(0, 365, n)
    with np.errstate(divide="ignore"):
        death = birth + rng.exponential(np.where(mu > 0, 1 / np.maximum(mu, 1e-12), np.inf))
    rows = []
    for i in range(n):
        t, end = birth[i], min(death[i], days)
        rows.append((i, t))
        while True:
            t += rng.exponential(1 / lam[i])
            if t > end:
                break
            rows.append((i, t))
    frame = pd.DataFrame(rows, columns=["customer_id", "day"])
    return pd.DataFrame({"customer_id": frame["customer_id"].map(lambda i: f"C{i:05d}"),
                         "date": start + pd.to_timedelta(frame["day"], unit="D"),
                         "amount": rng.gamma(4.0, 10.0, len(frame))})


@pytest.fixture(scope="module")
def attrition():
    return simulate()


def test_twelve_month_survival_matches_numerical_integration():
    bg = value.BetaGeo.from_params(r=0.8, alpha=40.0, a=0.9, b=3.0)
    mbg = value.ModifiedBetaGeo.from_params(r=0.8, alpha=40.0, a=0.9, b=3.0)
    x, T = np.array([0.0, 3.0, 12.0]), np.array([300.0, 500.0, 700.0])
    for model, extra in ((bg, 0.0), (mbg, 1.0)):
        got = valuation.twelve_month_survival(model, x, T - 10, T)
        for i in range(3):
            r, alpha = 0.8 + x[i], 40.0 + T[i]
            beta_b = stats.beta(0.9, 3.0 + x[i] + extra)
            want = integrate.quad(lambda p, r=r, alpha=alpha, d=beta_b:
                                  d.pdf(p) * (alpha / (alpha + p * 365.25)) ** r, 0, 1)[0]
            assert got[i] == pytest.approx(want, rel=1e-6)
    pareto = value.ParetoNBD.from_params(r=0.55, alpha=10.58, s=0.61, beta=11.67)
    got = valuation.twelve_month_survival(pareto, [2.0], [20.0], [39.0], t=52.0)
    want = integrate.quad(lambda m: stats.gamma(0.61, scale=1 / (11.67 + 39.0)).pdf(m)
                          * np.exp(-52.0 * m), 0, np.inf)[0]
    assert got[0] == pytest.approx(want, rel=1e-6)


def test_a_base_with_dropouts_gets_a_checked_model_that_sees_them(attrition):
    v = valuation.value_customers(attrition, AS_OF, margin_rate=0.4, horizon_months=24,
                                  discount_rate=0.1)
    assert v.model in ("bg_nbd", "mbg_nbd", "pareto_nbd") and v.fallback is None
    check = v.as_dict()["validation"]
    assert check["holdout_months"] == 9           # a quarter of 3 years
    assert check["predicted_purchases"] == pytest.approx(check["actual_purchases"], rel=0.2)
    summary = value.summarise(attrition, observation_period_end=AS_OF)
    since = (summary["T"] - summary["recency"]).reindex(v.frame.index)
    alive = v.frame["probability_alive"]
    assert alive[since > 365].mean() < 0.5 < alive[since < 60].mean()
    assert ((v.frame["retention"] >= 0) & (v.frame["retention"] <= 1)).all()
    assert (v.frame["clv"] >= 0).all() and v.frame["clv"].sum() > 0
    # The candidates are reported with their holdout figures.
    models = {c["model"] for c in v.as_dict()["candidates"]}
    assert models == {"bg_nbd", "mbg_nbd", "pareto_nbd"}


def test_the_clv_is_margin_times_spend_times_discounted_purchases(attrition):
    v = valuation.value_customers(attrition, AS_OF, margin_rate=0.4, horizon_months=12,
                                  discount_rate=0.1, model="bg_nbd")
    if v.model != "bg_nbd":
        pytest.skip("BG/NBD could not be fitted on this sample")
    summary = value.summarise(attrition, observation_period_end=AS_OF)
    oracle = value.customer_lifetime_value(
        v.purchases, v.spend, summary["frequency"], summary["recency"], summary["T"],
        summary["monetary_value"], time=12, margin=0.4, discount_rate=0.1)
    np.testing.assert_allclose(v.frame["clv"].to_numpy(), oracle.reindex(v.frame.index),
                               rtol=1e-3)


def test_everyone_bought_once_is_valued_by_historical_margin():
    tx = pd.DataFrame({"customer_id": ["A", "B", "C", "D"],
                       "date": pd.to_datetime(["2024-03-01", "2025-05-01", "2026-02-01",
                                               "2026-06-01"]),
                       "amount": [100.0, 50.0, 80.0, 20.0]})
    v = valuation.value_customers(tx, AS_OF, margin_rate=0.5, horizon_months=24,
                                  discount_rate=0.1, lapse_days=180)
    assert v.model == valuation.HISTORICAL and v.fallback == "no_repeat_buyers"
    # Nobody who bought in the year before last bought again: retention 0, so only the first
    # year counts, discounted once: margin of the last 12 months / 1.1.
    assert v.yearly_repeat_rate == 0.0
    expected = {"A": 0.0, "B": 0.0, "C": 40 / 1.1, "D": 10 / 1.1}
    for customer, clv in expected.items():
        assert v.frame.loc[customer, "clv"] == pytest.approx(clv)
    # Active: bought within 180 days of the analysis date (C: 149 days, B: 425 days).
    assert v.frame["probability_alive"].to_dict() == {"A": 0.0, "B": 0.0, "C": 1.0, "D": 1.0}
    assert v.as_dict()["candidates"] == [] and v.as_dict()["validation"] is None


def test_a_base_with_no_dropout_is_not_valued_as_if_the_gone_were_alive():
    tx = simulate(n=800, dropout=False, seed=3)
    v = valuation.value_customers(tx, AS_OF, margin_rate=0.4, horizon_months=12,
                                  discount_rate=0.1)
    # Whatever is chosen, a degenerate fit is never used silently.
    for key, reasons in v.passed_over.items():
        assert key in ("bg_nbd", "mbg_nbd", "pareto_nbd") and reasons
    if v.purchases is not None:
        assert not v.purchases.diagnostics()


def test_yearly_retention_weights_by_probability_alive():
    table = pd.DataFrame({"segment": ["a", "a", "b", "b"],
                          "probability_alive": [1.0, 0.5, 0.0, 0.2],
                          "retention": [0.9, 0.6, 0.5, 0.7]})
    got = retention.yearly_retention(table)
    assert got["a"] == pytest.approx((0.9 + 0.3) / 1.5)
    assert got["b"] == pytest.approx(0.7)


def test_migration_matrix_rows_are_where_last_years_members_went():
    before = pd.Series({"1": "x", "2": "x", "3": "y", "4": "y"})
    after = pd.Series({"1": "x", "2": "y", "3": "y", "4": "y", "5": "x"})
    matrix = retention.migration_matrix(before, after)
    assert matrix.loc["x", "x"] == 0.5 and matrix.loc["x", "y"] == 0.5
    assert matrix.loc["y", "y"] == 1.0 and matrix.loc["y", "customers"] == 2
