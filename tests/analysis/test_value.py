"""Tests of crmkit.analysis.value: the BG/NBD and Gamma-Gamma models, the RFM summary, CLV per
segment.

``lifetimes`` is the oracle: our models must reproduce it customer by customer and reproduce the
published CDNOW estimates. It is imported through a fixture, so the tests that do not need it
still run where it is missing; its deprecation warnings under pandas 3 are silenced only around
the calls into it.
"""

from __future__ import annotations

import contextlib
import importlib
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import OptimizeResult

from crmkit.analysis import value
from crmkit.analysis.value import (
    BetaGeo,
    GammaGamma,
    customer_lifetime_value,
    frequency_value_correlation,
    repeat_customers,
    segment_value,
    summarise,
)

# Fader, Hardie & Lee (2005), CDNOW cohort, 39-week calibration; Hardie's note 025.
PUBLISHED_BG = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_GG = {"p": 6.25, "q": 3.74, "gamma": 15.44}


@contextlib.contextmanager
def quiet():
    """Silence lifetimes' pandas-3 and pkg_resources warnings, here only, not globally."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


@contextlib.contextmanager
def no_warnings():
    """Turn every warning (numpy floating point ones included) into an error."""
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        yield


@pytest.fixture(scope="module")
def lt():
    """The lifetimes package, imported quietly (its import alters warning filters)."""
    with quiet():
        lifetimes = pytest.importorskip("lifetimes")
        for submodule in ("lifetimes.datasets", "lifetimes.utils"):
            importlib.import_module(submodule)
    return lifetimes


@pytest.fixture(scope="module")
def cdnow(lt):
    """CDNOW summary (2357 customers, weeks) as shipped with lifetimes."""
    with quiet():
        return lt.datasets.load_cdnow_summary(index_col=[0])


@pytest.fixture(scope="module")
def cdnow_money(lt):
    """CDNOW summary with the mean spend of repeat purchases."""
    with quiet():
        return lt.datasets.load_cdnow_summary_data_with_monetary_value()


@pytest.fixture(scope="module")
def cdnow_log(lt):
    """Raw CDNOW sample transaction log (customer_id, date, amount)."""
    with quiet():
        log = lt.datasets.load_dataset(
            "CDNOW_sample.txt",
            header=None,
            sep=r"\s+",
            names=["customer_id", "order_id", "date", "quantity", "amount"],
            dtype={"date": str},
        )
    log["date"] = pd.to_datetime(log["date"], format="%Y%m%d")
    return log


@pytest.fixture(scope="module")
def bg(cdnow):
    return BetaGeo().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])


@pytest.fixture(scope="module")
def gg(cdnow_money):
    repeat = repeat_customers(cdnow_money)
    return GammaGamma().fit(repeat["frequency"], repeat["monetary_value"])


@pytest.fixture(scope="module")
def lt_bg(lt, cdnow):
    with quiet():
        return lt.BetaGeoFitter().fit(
            cdnow["frequency"].to_numpy(), cdnow["recency"].to_numpy(), cdnow["T"].to_numpy()
        )


@pytest.fixture(scope="module")
def lt_gg(lt, cdnow_money):
    repeat = repeat_customers(cdnow_money)
    with quiet():
        return lt.GammaGammaFitter().fit(
            repeat["frequency"].to_numpy(), repeat["monetary_value"].to_numpy()
        )


def lifetimes_bg(lt, params):
    """A lifetimes BetaGeoFitter carrying given parameters, without fitting."""
    model = lt.BetaGeoFitter()
    model.params_ = pd.Series(dict(params))[["r", "alpha", "a", "b"]]
    # lifetimes only creates this alias in fit(); its CLV calls it.
    model.predict = model.conditional_expected_number_of_purchases_up_to_time
    return model


def lifetimes_gg(lt, params):
    model = lt.GammaGammaFitter()
    model.params_ = pd.Series({"p": params["p"], "q": params["q"], "v": params["gamma"]})
    return model


# --------------------------------------------------------------------------------------------
# BG/NBD
# --------------------------------------------------------------------------------------------


def test_betageo_reproduces_published_cdnow_estimates(bg):
    assert list(bg.params.index) == ["r", "alpha", "a", "b"]
    np.testing.assert_allclose(
        bg.params[list(PUBLISHED_BG)], list(PUBLISHED_BG.values()), rtol=5e-3
    )
    # Fader, Hardie & Lee report LL = -9582.4 for this fit.
    assert bg.log_likelihood_ == pytest.approx(-9582.4, abs=0.1)
    assert bg.n_customers_ == 2357


def test_betageo_params_match_lifetimes(bg, lt_bg):
    np.testing.assert_allclose(bg.params, lt_bg.params_[["r", "alpha", "a", "b"]], rtol=1e-4)


def test_betageo_predictions_equal_lifetimes_with_same_params(lt, cdnow):
    ours = BetaGeo.from_params(**PUBLISHED_BG)
    theirs = lifetimes_bg(lt, PUBLISHED_BG)
    x, tx, T = cdnow["frequency"], cdnow["recency"], cdnow["T"]
    with quiet():
        expected = theirs.conditional_expected_number_of_purchases_up_to_time(39, x, tx, T)
        alive = theirs.conditional_probability_alive(x.to_numpy(), tx.to_numpy(), T.to_numpy())
        new = theirs.expected_number_of_purchases_up_to_time(np.array([1.0, 39.0, 78.0]))
    np.testing.assert_allclose(ours.expected_purchases(39, x, tx, T), expected, rtol=1e-9)
    np.testing.assert_allclose(ours.probability_alive(x, tx, T), alive, rtol=1e-12)
    np.testing.assert_allclose(ours.expected_purchases_new_customer([1.0, 39.0, 78.0]), new)


def test_betageo_predictions_match_lifetimes_fitted(bg, lt_bg, cdnow):
    x, tx, T = cdnow["frequency"], cdnow["recency"], cdnow["T"]
    with quiet():
        expected = lt_bg.conditional_expected_number_of_purchases_up_to_time(39, x, tx, T)
        alive = lt_bg.conditional_probability_alive(x.to_numpy(), tx.to_numpy(), T.to_numpy())
    np.testing.assert_allclose(bg.expected_purchases(39, x, tx, T), expected, rtol=1e-3)
    np.testing.assert_allclose(bg.probability_alive(x, tx, T), alive, rtol=1e-3)


def test_betageo_output_types_follow_input(bg, cdnow):
    x, tx, T = cdnow["frequency"], cdnow["recency"], cdnow["T"]
    series = bg.expected_purchases(39, x, tx, T)
    assert isinstance(series, pd.Series) and series.index.equals(cdnow.index)
    assert isinstance(bg.probability_alive(x.to_numpy(), tx.to_numpy(), T.to_numpy()), np.ndarray)
    assert isinstance(bg.expected_purchases(39, 2, 30.43, 38.86), float)
    grid = bg.expected_purchases(np.array([[13.0], [39.0]]), x.to_numpy(), tx.to_numpy(), T)
    assert grid.shape == (2, len(cdnow))
    # lifetimes names are aliases of ours.
    assert bg.predict(39, 2, 30.43, 38.86) == bg.expected_purchases(39, 2, 30.43, 38.86)
    assert bg.params_ is bg.params


def test_betageo_weights_equal_repeated_rows(bg, cdnow):
    condensed = cdnow.groupby(["frequency", "recency", "T"]).size().rename("n").reset_index()
    weighted = BetaGeo().fit(
        condensed["frequency"], condensed["recency"], condensed["T"], weights=condensed["n"]
    )
    np.testing.assert_allclose(weighted.params, bg.params, rtol=1e-6)
    assert weighted.log_likelihood_ == pytest.approx(bg.log_likelihood_, rel=1e-9)
    assert weighted.n_customers_ == len(cdnow)


def test_betageo_penalizer_matches_lifetimes(lt, cdnow):
    arrays = [cdnow[c].to_numpy() for c in ("frequency", "recency", "T")]
    with quiet():
        theirs = lt.BetaGeoFitter(penalizer_coef=0.01).fit(*arrays)
    ours = BetaGeo().fit(*arrays, penalizer_coef=0.01)
    np.testing.assert_allclose(ours.params, theirs.params_[["r", "alpha", "a", "b"]], rtol=1e-3)


def test_betageo_initial_params_and_time_unit(cdnow, bg):
    # The same customers measured in days: alpha scales with the unit, r, a, b do not.
    in_days = BetaGeo().fit(
        cdnow["frequency"], cdnow["recency"] * 7, cdnow["T"] * 7, initial_params=[1, 30, 1, 1]
    )
    np.testing.assert_allclose(in_days.params / [1, 7, 1, 1], bg.params, rtol=1e-5)


def test_betageo_recovers_simulated_parameters():
    truth = {"r": 0.8, "alpha": 20.0, "a": 0.6, "b": 3.0}
    x, tx, T = simulate_bgnbd(truth, 50_000, seed=1)
    fitted = BetaGeo().fit(x, tx, T)
    np.testing.assert_allclose(fitted.params, list(truth.values()), rtol=0.1)


def simulate_bgnbd(params, n, seed):
    """Draw (frequency, recency, T) from the BG/NBD model itself (see benchmarks/value_fits)."""
    rng = np.random.default_rng(seed)
    T = rng.uniform(90, 730, n).round()
    lam = rng.gamma(params["r"], 1 / params["alpha"], n)
    p = rng.beta(params["a"], params["b"], n)
    arrivals = rng.poisson(lam * T)
    lives = rng.geometric(p)  # the repeat purchase after which the customer drops out
    x = np.minimum(arrivals, lives)
    # The x-th of `arrivals` uniform arrival times in (0, T] is T * Beta(x, arrivals - x + 1).
    tx = np.where(x > 0, T * rng.beta(np.maximum(x, 1), arrivals - x + 1), 0.0)
    return x.astype(float), tx, T


def test_failed_optimisation_raises_convergence_error(monkeypatch):
    def stuck(fun, x0, **kwargs):
        return OptimizeResult(x=x0, fun=1.0, jac=np.ones_like(x0), success=False, message="stuck")

    monkeypatch.setattr(value, "minimize", stuck)
    with pytest.raises(value.ConvergenceError, match=r"did not converge \(stuck.*penalizer_coef"):
        BetaGeo().fit([0, 1], [0, 2], [5, 5])


def test_unfitted_models_say_so():
    with pytest.raises(ValueError, match=r"not fitted yet.*\.fit\("):
        BetaGeo().params  # noqa: B018
    with pytest.raises(ValueError, match="not fitted yet"):
        GammaGamma().expected_average_value(1, 10)
    # lifetimes-style code probes for a fit with hasattr.
    assert not hasattr(BetaGeo(), "params_") and not hasattr(GammaGamma(), "params")
    with pytest.raises(ValueError, match="positive"):
        BetaGeo.from_params(r=0.2, alpha=-1, a=1, b=1)


# --------------------------------------------------------------------------------------------
# Impossible inputs
# --------------------------------------------------------------------------------------------


def _histories():
    index = pd.Index(["c1", "c2", "c3", "c4", "c5", "c6"], name="customer_id")
    return pd.DataFrame(
        {
            "frequency": [0.0, 1, 2, 3, 0, 4],
            "recency": [0.0, 5, 10, 20, 0, 30],
            "T": [40.0, 40, 40, 40, 40, 40],
        },
        index=index,
    )


@pytest.mark.parametrize(
    ("column", "rows", "bad", "expected"),
    [
        ("recency", ["c2", "c4"], [50.0, 41.0], "2 of 6 rows have recency > T"),
        ("recency", ["c3"], [-1.0], "1 of 6 rows have a negative frequency, recency or T"),
        ("frequency", ["c5"], [-2.0], "1 of 6 rows have a negative frequency, recency or T"),
        (
            "recency",
            ["c2", "c3", "c6"],
            [0.0, 0, 0],
            "3 of 6 rows have frequency > 0 but recency 0",
        ),
        ("recency", ["c1"], [3.0], "1 of 6 rows have frequency 0 but recency > 0"),
        ("T", ["c6"], [np.nan], "1 of 6 rows have a missing (NaN) or infinite"),
        ("frequency", ["c2"], [1.5], "1 of 6 rows have a non-integer frequency"),
    ],
)
def test_betageo_rejects_impossible_histories(column, rows, bad, expected):
    data = _histories()
    data.loc[rows, column] = bad
    with pytest.raises(ValueError) as error:
        BetaGeo().fit(data["frequency"], data["recency"], data["T"])
    message = str(error.value)
    assert "BetaGeo.fit got impossible customer data" in message
    assert expected in message
    for label in rows:
        assert repr(label) in message


def test_betageo_error_lists_every_problem_and_caps_examples():
    n = 20
    x = np.ones(n)
    tx = np.full(n, 50.0)  # every recency beyond T
    T = np.full(n, 40.0)
    tx[0] = np.nan
    with pytest.raises(ValueError) as error:
        BetaGeo().fit(x, tx, T)
    message = str(error.value)
    assert "1 of 20 rows have a missing (NaN)" in message
    assert "19 of 20 rows have recency > T" in message
    assert "positions 1, 2, 3, 4, 5 and 14 more" in message


def test_betageo_rejects_mismatched_or_empty_inputs():
    with pytest.raises(ValueError, match="same length, got frequency=2, recency=2, T=3"):
        BetaGeo().fit([0, 1], [0, 2], [5, 5, 5])
    with pytest.raises(ValueError, match="no customers"):
        BetaGeo().fit([], [], [])
    with pytest.raises(ValueError, match="T == 0"):
        BetaGeo().fit([0, 0], [0, 0], [0, 0])
    with pytest.raises(ValueError, match="no customer has a repeat purchase"):
        BetaGeo().fit([0, 0, 0], [0, 0, 0], [10, 20, 30])
    with pytest.raises(ValueError, match="negative weight"):
        BetaGeo().fit([0, 1], [0, 2], [5, 5], weights=[1, -1])


def test_gammagamma_rejects_one_off_buyers_and_non_positive_values(cdnow_money):
    with pytest.raises(ValueError) as error:
        GammaGamma().fit(cdnow_money["frequency"], cdnow_money["monetary_value"])
    message = str(error.value)
    one_off = int((cdnow_money["frequency"] == 0).sum())
    assert f"{one_off} of 2357 rows have frequency 0" in message
    assert message.startswith("GammaGamma.fit cannot use some customers")
    assert "positions 2, 3, 4, 7, 9 (index labels 3, 4, 5, 8, 10) and 1406 more" in message
    assert "repeat_customers(summary)" in message

    frequency = np.array([1.0, 2, 3, 4])
    with pytest.raises(ValueError, match=r"2 of 4 rows have monetary_value <= 0: positions 1, 3"):
        GammaGamma().fit(frequency, np.array([10.0, 0, 12, -3]))


def test_repeat_customers_selects_the_gamma_gamma_population(cdnow_money):
    repeat = repeat_customers(cdnow_money)
    assert len(repeat) == 946  # the repeat buyers of the CDNOW cohort
    assert (repeat["frequency"] > 0).all() and (repeat["monetary_value"] > 0).all()
    with pytest.raises(ValueError, match="monetary_value"):
        repeat_customers(cdnow_money[["frequency"]])


# --------------------------------------------------------------------------------------------
# Gamma-Gamma
# --------------------------------------------------------------------------------------------


def test_gammagamma_reproduces_published_estimates(gg):
    assert list(gg.params.index) == ["p", "q", "gamma"]
    np.testing.assert_allclose(gg.params, list(PUBLISHED_GG.values()), rtol=5e-3)
    assert gg.n_customers_ == 946


def test_gammagamma_matches_lifetimes(gg, lt_gg, lt, cdnow_money):
    np.testing.assert_allclose(gg.params, lt_gg.params_[["p", "q", "v"]], rtol=1e-4)
    x, m = cdnow_money["frequency"], cdnow_money["monetary_value"]
    with quiet():
        fitted = lt_gg.conditional_expected_average_profit(x, m)
        same = lifetimes_gg(lt, PUBLISHED_GG).conditional_expected_average_profit(x, m)
    np.testing.assert_allclose(gg.expected_average_value(x, m), fitted, rtol=1e-3)
    ours_same = GammaGamma.from_params(**PUBLISHED_GG).expected_average_value(x, m)
    np.testing.assert_allclose(ours_same, same, rtol=1e-12)


def test_gammagamma_penalizer_matches_lifetimes(lt, cdnow_money):
    repeat = repeat_customers(cdnow_money)
    x, m = repeat["frequency"].to_numpy(), repeat["monetary_value"].to_numpy()
    with quiet():
        theirs = lt.GammaGammaFitter(penalizer_coef=0.001).fit(x, m)
    ours = GammaGamma().fit(x, m, penalizer_coef=0.001)
    np.testing.assert_allclose(ours.params, theirs.params_[["p", "q", "v"]], rtol=1e-3)


def test_gammagamma_prior_mean_for_one_off_buyers(gg):
    p, q, gamma = gg.params
    prior = p * gamma / (q - 1)
    assert gg.population_mean == pytest.approx(prior)
    values = gg.expected_average_value(np.array([0.0, 0.0, 3.0]), np.array([0.0, np.nan, 20.0]))
    np.testing.assert_allclose(values[:2], prior)
    weight = 3 * p / (3 * p + q - 1)
    assert values[2] == pytest.approx((1 - weight) * prior + weight * 20.0)


def test_gammagamma_is_currency_invariant(gg, cdnow_money):
    repeat = repeat_customers(cdnow_money)
    in_cents = GammaGamma().fit(repeat["frequency"], repeat["monetary_value"] * 100)
    np.testing.assert_allclose(in_cents.params / [1, 1, 100], gg.params, rtol=1e-5)


def test_frequency_value_correlation(cdnow_money):
    repeat = repeat_customers(cdnow_money)
    expected = np.corrcoef(repeat["frequency"], repeat["monetary_value"])[0, 1]
    # One-off buyers (monetary_value 0) are left out rather than faking a correlation.
    got = frequency_value_correlation(cdnow_money["frequency"], cdnow_money["monetary_value"])
    assert got == pytest.approx(expected)
    assert 0 < got < 0.2  # CDNOW: 0.11, the weak correlation the model tolerates
    assert np.isnan(frequency_value_correlation([1, 2, 3], [5.0, 5.0, 5.0]))
    assert np.isnan(frequency_value_correlation([0, 1], [0.0, 5.0]))


# --------------------------------------------------------------------------------------------
# Customer lifetime value
# --------------------------------------------------------------------------------------------


def monthly(yearly):
    return (1 + yearly) ** (1 / 12) - 1


def test_clv_equals_lifetimes_with_same_params(lt, cdnow_money):
    data = cdnow_money
    columns = [data[c] for c in ("frequency", "recency", "T", "monetary_value")]
    ours = customer_lifetime_value(
        BetaGeo.from_params(**PUBLISHED_BG),
        GammaGamma.from_params(**PUBLISHED_GG),
        *columns,
        time=12,
        margin=1.0,
        discount_rate=0.12,
        freq="W",
    )
    with quiet():
        theirs = lifetimes_gg(lt, PUBLISHED_GG).customer_lifetime_value(
            lifetimes_bg(lt, PUBLISHED_BG), *columns, time=12, discount_rate=monthly(0.12), freq="W"
        )
    assert ours.name == "clv" and ours.index.equals(data.index)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9)


def test_clv_matches_lifetimes_fitted_with_margin(bg, gg, lt_bg, lt_gg, cdnow_money):
    data = cdnow_money
    columns = [data[c] for c in ("frequency", "recency", "T", "monetary_value")]
    ours = customer_lifetime_value(
        bg, gg, *columns, time=6, margin=0.3, discount_rate=0.1, freq="W"
    )
    with quiet():
        theirs = lt_gg.customer_lifetime_value(
            lt_bg, *columns, time=6, discount_rate=monthly(0.1), freq="W"
        )
    np.testing.assert_allclose(ours, 0.3 * theirs, rtol=1e-3)


def test_clv_of_one_off_buyer_uses_population_mean(bg, gg):
    # Undiscounted, CLV is margin x expected value x expected purchases over the horizon.
    clv = customer_lifetime_value(
        bg,
        gg,
        [0.0, 2.0],
        [0.0, 30.43],
        [38.86, 38.86],
        [0.0, 22.35],
        time=12,
        margin=0.25,
        discount_rate=0.0,
        freq="W",
    )
    purchases = bg.expected_purchases(12 * 4.345, np.array([0.0, 2.0]), [0.0, 30.43], 38.86)
    spend = gg.expected_average_value(np.array([0.0, 2.0]), [0.0, 22.35])
    assert spend[0] == pytest.approx(gg.population_mean)
    np.testing.assert_allclose(clv, 0.25 * spend * purchases, rtol=1e-12)
    assert isinstance(clv.index, pd.RangeIndex)


def test_clv_aligns_series_by_customer(bg, gg, cdnow_money):
    data = cdnow_money
    shuffled = data.sample(frac=1.0, random_state=1)
    mixed = customer_lifetime_value(
        bg, gg, data["frequency"], shuffled["recency"], data["T"], shuffled["monetary_value"]
    )
    plain = customer_lifetime_value(
        bg, gg, data["frequency"], data["recency"], data["T"], data["monetary_value"]
    )
    pd.testing.assert_series_equal(mixed, plain)


def test_clv_discounting_is_yearly(bg, gg):
    args = (bg, gg, [3.0], [20.0], [38.0], [30.0])
    flat = customer_lifetime_value(*args, time=24, discount_rate=0.0, freq="W")
    discounted = customer_lifetime_value(*args, time=24, discount_rate=0.1, freq="W")
    # The second year is discounted by about 1.1, the first by about sqrt(1.1): in between.
    assert 1 / 1.1 < discounted.iloc[0] / flat.iloc[0] < 1 / 1.1**0.25


def test_clv_rejects_bad_arguments(bg, gg):
    args = (bg, gg, [1.0], [2.0], [3.0], [10.0])
    with pytest.raises(ValueError, match="freq must be one of"):
        customer_lifetime_value(*args, freq="Y")
    with pytest.raises(ValueError, match="whole number of months"):
        customer_lifetime_value(*args, time=1.5)
    with pytest.raises(ValueError, match="same length"):
        customer_lifetime_value(bg, gg, [1.0, 2.0], [2.0], [3.0], [10.0])


# --------------------------------------------------------------------------------------------
# Numerical stability
# --------------------------------------------------------------------------------------------


def test_extreme_histories_are_finite_and_warning_free(lt):
    ours = BetaGeo.from_params(**PUBLISHED_BG)
    x = np.array([0, 1, 50, 200, 500, 500, 500, 2000, 5000.0])
    T = np.array([1e3, 1e4, 1e5, 400, 1e3, 1e6, 1e6, 3e3, 1e6])
    tx = T * np.array([0, 0.5, 0.9, 0.99, 1, 1e-5, 0.999, 1, 1])
    with no_warnings():
        expected = ours.expected_purchases(39, x, tx, T)
        alive = ours.probability_alive(x, tx, T)
        clv = customer_lifetime_value(
            ours, GammaGamma.from_params(**PUBLISHED_GG), x, tx, T, np.full(9, 30.0), freq="D"
        )
    assert np.all(np.isfinite(expected)) and np.all(expected >= 0)
    assert np.all((alive >= 0) & (alive <= 1)) and np.all(np.isfinite(clv))
    # A customer who bought 500 times in 1000 days and just bought again: about one purchase
    # every two days, barely any chance of having dropped out.
    assert 18 < expected[4] < 19.5 and alive[4] > 0.99
    # The same count bunched in the first 10 days of a million-day history: surely gone.
    assert alive[5] < 1e-100 and expected[5] < 1e-100
    with quiet():
        theirs = lifetimes_bg(lt, PUBLISHED_BG).conditional_expected_number_of_purchases_up_to_time(
            39, x, tx, T
        )
    np.testing.assert_allclose(expected, theirs, rtol=1e-6, atol=1e-300)


def test_fits_with_heavy_buyers_are_warning_free():
    x, tx, T = simulate_bgnbd({"r": 0.8, "alpha": 20.0, "a": 0.6, "b": 3.0}, 5_000, seed=2)
    x[:3], tx[:3], T[:3] = [500, 1500, 700], [700, 729, 720], [730, 730, 730]
    rng = np.random.default_rng(3)
    m = np.where(x > 0, rng.gamma(6.0, 5.0, len(x)), 0.0)
    with no_warnings():
        fitted = BetaGeo().fit(x, tx, T)
        spend = GammaGamma().fit(x[x > 0], m[x > 0])
    assert np.all(np.isfinite(fitted.params)) and np.isfinite(fitted.log_likelihood_)
    assert np.all(np.isfinite(spend.params)) and np.isfinite(spend.log_likelihood_)


# --------------------------------------------------------------------------------------------
# summarise
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("freq", ["D", "W"])
@pytest.mark.parametrize("end", [None, "1997-09-30"])
def test_summarise_equals_lifetimes_on_cdnow(lt, cdnow_log, freq, end):
    # CDNOW has zero-amount orders; lifetimes counts them as purchases, and so do we (a free
    # item is a visit), so the whole log is compared, zero orders included.
    log = cdnow_log
    assert (log["amount"] == 0).any() and (log["amount"] >= 0).all()
    with quiet():
        theirs = lt.utils.summary_data_from_transaction_data(
            log,
            "customer_id",
            "date",
            monetary_value_col="amount",
            observation_period_end=end,
            freq=freq,
        )
    ours = summarise(log, observation_period_end=end, freq=freq)
    pd.testing.assert_frame_equal(ours, theirs, check_exact=False, rtol=1e-12)
    assert ours.attrs == {"periods_without_purchase": 0, "customers_without_purchase": 0}

    with quiet():
        theirs = lt.utils.summary_data_from_transaction_data(
            cdnow_log, "customer_id", "date", observation_period_end=end, freq=freq
        )
    ours = summarise(cdnow_log, monetary_value_col=None, observation_period_end=end, freq=freq)
    pd.testing.assert_frame_equal(ours, theirs)


@pytest.mark.parametrize(("freq", "multiplier"), [("D", 1), ("W", 1), ("h", 24)])
def test_summarise_equals_lifetimes_on_example_log(lt, freq, multiplier):
    with quiet():
        log = lt.datasets.load_transaction_data()
        theirs = lt.utils.summary_data_from_transaction_data(
            log, "id", "date", freq=freq, freq_multiplier=multiplier
        )
    ours = summarise(
        log, "id", "date", monetary_value_col=None, freq=freq, freq_multiplier=multiplier
    )
    pd.testing.assert_frame_equal(ours, theirs)


def test_summarise_ignores_transactions_after_observation_end():
    log = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "c"],
            "date": pd.to_datetime(
                ["2024-01-01", "2024-01-10", "2024-03-01", "2024-01-05", "2024-02-01"]
            ),
            "amount": [10.0, 20.0, 999.0, 5.0, 7.0],
        }
    )
    got = summarise(log, observation_period_end="2024-01-31")
    expected = pd.DataFrame(
        {
            "frequency": [1.0, 0.0],
            "recency": [9.0, 0.0],
            "T": [30.0, 26.0],
            "monetary_value": [20.0, 0.0],
        },
        index=pd.Index(["a", "b"], name="customer_id"),
    )
    pd.testing.assert_frame_equal(got, expected, check_index_type=False)


def test_summarise_monthly_counts_calendar_months():
    log = pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 1, 2],
            "date": ["2024-01-31", "2024-02-01", "2024-02-20", "2024-05-15", "2024-04-01"],
            "amount": [10.0, 20.0, 30.0, 40.0, 5.0],
        }
    )
    got = summarise(log, freq="M")
    # Customer 1 bought in January, February (twice, one occasion) and May.
    assert got.loc[1].to_dict() == {
        "frequency": 2.0,
        "recency": 4.0,
        "T": 4.0,
        "monetary_value": 45.0,
    }
    assert got.loc[2].to_dict() == {
        "frequency": 0.0,
        "recency": 0.0,
        "T": 1.0,
        "monetary_value": 0.0,
    }


def test_summarise_counts_only_periods_with_a_positive_total():
    log = pd.DataFrame(
        {
            "customer_id": ["A", "A", "A", "A", "A", "A", "B", "C", "C"],
            "date": pd.to_datetime(
                [
                    "2024-01-01",
                    "2024-01-01",
                    "2024-01-03",
                    "2024-01-05",
                    "2024-01-06",
                    "2024-01-06",
                    "2024-01-02",
                    "2024-01-02",
                    "2024-01-04",
                ]
            ),
            "amount": [100.0, -30.0, -50.0, 40.0, 10.0, -10.0, -20.0, -5.0, 20.0],
        }
    )
    got = summarise(log)
    # A: Jan 1 nets to 70 (a purchase); the Jan 3 return is not an occasion; Jan 6 (a purchase
    # of 10 and a return of 10) is one, worth 0. B only returned goods and is left out. C's life
    # starts at its purchase.
    expected = pd.DataFrame(
        {
            "frequency": [2.0, 0.0],
            "recency": [5.0, 0.0],
            "T": [5.0, 2.0],
            "monetary_value": [20.0, 0.0],
        },
        index=pd.Index(["A", "C"], name="customer_id"),
    )
    pd.testing.assert_frame_equal(got, expected, check_index_type=False)
    assert got.attrs == {"periods_without_purchase": 3, "customers_without_purchase": 1}
    # Without amounts every period with a transaction is an occasion, as in lifetimes.
    counted = summarise(log, monetary_value_col=None)
    assert counted.loc["A", "frequency"] == 3 and "B" in counted.index


def test_summarise_reports_bad_input():
    log = pd.DataFrame(
        {
            "customer_id": [1, 2, None, 4],
            "date": ["2024-01-01", None, "2024-01-02", None],
            "amount": [1.0, 2.0, 3.0, np.nan],
        }
    )
    with pytest.raises(ValueError) as error:
        summarise(log)
    message = str(error.value)
    assert "1 of 4 rows have no customer id: positions 2" in message
    assert "2 of 4 rows have no date: positions 1, 3" in message
    assert "1 of 4 rows have a missing or non-numeric amount: positions 3" in message
    with pytest.raises(ValueError, match=r"column\(s\) \['when'\] not found"):
        summarise(log, datetime_col="when")


# --------------------------------------------------------------------------------------------
# segment_value
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def customers():
    rng = np.random.default_rng(7)
    n = 5_000
    sizes = {"champions": 1, "pair": 2, "loyal": 200, "at risk": 1_297, "lost": 3_500}
    segments = np.repeat(list(sizes), list(sizes.values()))
    rng.shuffle(segments)
    index = pd.Index([f"cust{i}" for i in range(n)], name="customer_id")
    return pd.DataFrame(
        {
            "clv": rng.gamma(0.5, 200.0, n),
            "alive": rng.uniform(0, 1, n),
            "segment": segments,
        },
        index=index,
    )


def test_segment_value_totals_counts_and_intervals(customers):
    got = segment_value(customers["clv"], customers["alive"], customers["segment"])
    assert list(got.columns) == [
        "customers",
        "mean_clv",
        "mean_clv_low",
        "mean_clv_high",
        "total_clv",
        "total_clv_low",
        "total_clv_high",
        "mean_probability_alive",
    ]
    groups = customers.groupby("segment")
    pd.testing.assert_series_equal(
        got["customers"], groups.size().rename("customers"), check_dtype=False
    )
    np.testing.assert_allclose(got["total_clv"], groups["clv"].sum(), rtol=1e-12)
    np.testing.assert_allclose(got["mean_clv"], groups["clv"].mean(), rtol=1e-12)
    np.testing.assert_allclose(got["mean_probability_alive"], groups["alive"].mean(), rtol=1e-12)
    assert (got["mean_clv_low"] <= got["mean_clv"]).all()
    assert (got["mean_clv"] <= got["mean_clv_high"]).all()
    assert (got["total_clv_low"] <= got["total_clv"]).all()
    assert (got["total_clv"] <= got["total_clv_high"]).all()
    np.testing.assert_allclose(got["total_clv_high"], got["mean_clv_high"] * got["customers"])
    # A segment of one customer has no sampling spread.
    champion = got.loc["champions"]
    assert champion["mean_clv_low"] == champion["mean_clv"] == champion["mean_clv_high"]


def test_segment_value_interval_matches_normal_theory(customers):
    got = segment_value(customers["clv"], customers["alive"], customers["segment"], n_boot=4000)
    lost = customers.loc[customers["segment"] == "lost", "clv"]
    half_width = 1.6449 * lost.std() / np.sqrt(len(lost))
    measured = (got.loc["lost", "mean_clv_high"] - got.loc["lost", "mean_clv_low"]) / 2
    assert measured == pytest.approx(half_width, rel=0.1)


def test_segment_value_is_reproducible_with_seed(customers):
    args = (customers["clv"], customers["alive"], customers["segment"])
    first = segment_value(*args, seed=3)
    pd.testing.assert_frame_equal(first, segment_value(*args, seed=3))
    other = segment_value(*args, seed=4)
    assert not np.allclose(first["mean_clv_low"], other["mean_clv_low"])
    np.testing.assert_allclose(first["mean_clv"], other["mean_clv"])


def test_segment_value_in_two_threads_is_the_same_to_the_last_bit(customers, monkeypatch):
    """A big customer base averages its resamples in two threads: the same intervals."""
    args = (customers["clv"], customers["alive"], customers["segment"])
    alone = segment_value(*args, seed=3)
    monkeypatch.setattr(value, "_BOOT_THREADED", 1)
    monkeypatch.setattr(value, "_BOOT_BLOCK", 64)  # many blocks in flight at once
    pd.testing.assert_frame_equal(segment_value(*args, seed=3), alone, check_exact=True)


def test_segment_value_aligns_series_and_keeps_category_order(customers):
    order = ["lost", "at risk", "loyal", "pair", "champions"]
    segments = customers["segment"].astype(pd.CategoricalDtype(order, ordered=True))
    shuffled = segments.sample(frac=1.0, random_state=0)
    got = segment_value(customers["clv"], customers["alive"].to_numpy(), shuffled)
    assert list(got.index) == order and got.index.name == "segment"
    expected = segment_value(customers["clv"], customers["alive"], customers["segment"])
    expected = expected.loc[order].reset_index(drop=True)
    got = got.reset_index(drop=True)
    exact = ["customers", "mean_clv", "total_clv", "mean_probability_alive"]
    pd.testing.assert_frame_equal(got[exact], expected[exact])
    # Segments are resampled in a different order, so the intervals differ by noise only.
    np.testing.assert_allclose(got.drop(columns=exact), expected.drop(columns=exact), rtol=0.02)


def test_segment_value_rejects_bad_input(customers):
    clv = customers["clv"].copy()
    clv.iloc[[3, 8]] = np.nan
    with pytest.raises(ValueError, match=r"2 of 5000 rows have a missing or infinite clv"):
        segment_value(clv, customers["alive"], customers["segment"])
    with pytest.raises(ValueError, match="confidence must be between 0 and 1"):
        segment_value(customers["clv"], customers["alive"], customers["segment"], confidence=90)
    with pytest.raises(ValueError, match="same length"):
        segment_value([1.0, 2.0], [0.5], ["a", "b"])
    with pytest.raises(ValueError, match="1 of 2 rows have no segment"):
        segment_value([1.0, 2.0], [0.5, 0.5], ["a", None])


def test_public_api_is_documented():
    for name in value.__all__:
        assert getattr(value, name).__doc__, name
    for cls in (BetaGeo, GammaGamma):
        for attribute in ("fit", "from_params"):
            assert getattr(cls, attribute).__doc__


def test_distinct_histories_give_the_same_total_as_every_customer(cdnow):
    # the weekly tracking of workbook 02 sums a prediction over customers per week: once per
    # distinct history, weighted by its count, it is the same total (CDNOW: 2357 customers)
    x, tx, age, counts = value.distinct_histories(cdnow["frequency"], cdnow["recency"],
                                                  cdnow["T"])
    assert counts.sum() == len(cdnow) and len(x) < len(cdnow)
    seen = set(zip(cdnow["frequency"], cdnow["recency"], cdnow["T"], strict=True))
    assert set(zip(x, tx, age, strict=True)) == seen
    fitted = BetaGeo().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    every = fitted.expected_purchases(39.0, cdnow["frequency"], cdnow["recency"], cdnow["T"])
    once = np.dot(fitted.expected_purchases(39.0, x, tx, age), counts)
    assert once == pytest.approx(float(np.sum(every)), rel=1e-12)
