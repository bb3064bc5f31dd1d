"""Valuing every customer with a customer-base model the client's own data support.

Workbook 02 used to value everyone with BG/NBD, whatever the data said: one-time buyers could
never drop out, so a customer not seen for two years was "100 % alive". This module chooses the
model instead, in four steps a reviewer can follow:

1. **Holdout.** :func:`crmkit.analysis.model_choice.compare` fits each candidate (BG/NBD, MBG/NBD,
   Pareto/NBD) on a calibration period and compares its predictions with the purchases of the
   holdout; the sound candidates are tried in order of their error (``value.model`` in
   client.yaml may force one). Too short a history: the candidates are tried in their fixed
   order, and the report says the model could not be checked.
2. **Refit** on the whole history.
3. **Guards.** A refit that is degenerate (:meth:`~crmkit.analysis.value.BetaGeo.diagnostics`) or
   that calls customers alive who have not bought for twice their usual interval (mean P(alive)
   above :data:`OVERDUE_ALIVE_LIMIT`) is passed over, with the reason kept for the report.
4. **Fallback.** When no purchase model survives (nobody bought twice, or every fit is
   degenerate), customers are valued by their historical margin: the last twelve months' margin,
   continued over the horizon at the base's observed year-on-year repeat rate and discounted; a
   customer is "active" when they bought within ``lapse_days``. The reason is said.

Every customer gets ``probability_alive``, ``retention`` (the probability of still being a customer
in twelve months, given alive now: see :mod:`crmkit.analysis.retention`), ``expected_purchases``
over the horizon and ``clv`` (margin over the horizon, discounted).

The twelve-month survival of a customer alive now is computed here from the fitted parameters,
in closed form: Pareto/NBD ``((β+T)/(β+T+t))^s`` (the posterior of the dropout rate of a customer
alive at T is Gamma(s, β+T)); BG/NBD and MBG/NBD ``E[exp(−λ p t)]`` over the posteriors
λ ~ Gamma(r+x, α+T) and p ~ Beta(a, b+x) (MBG: b+x+1, one more dropout opportunity), which by
Euler's integral is ``2F1(r+x, a; a+b+x; −t/(α+T))`` (scipy's ``hyp2f1``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import hyp2f1

from crmkit.analysis import model_choice, value
from crmkit.core.i18n import t
from crmkit.inputs import occasions

__all__ = ["HISTORICAL", "Valuation", "value_customers", "twelve_month_survival"]

#: Key of the fallback valuation (no purchase model).
HISTORICAL = "historical"
#: Mean P(alive) above which customers not seen for twice their usual interval are "too alive".
OVERDUE_ALIVE_LIMIT = 0.95
#: Fewest overdue customers for the guard to judge (a handful says nothing).
OVERDUE_MIN_CUSTOMERS = 20
#: A purchase model needs at least this many repeat buyers (a spend model needs two).
MIN_REPEAT_BUYERS = 2
DAYS_PER_MONTH = 365.25 / 12
DAYS_PER_YEAR = 365.25


@dataclass
class Valuation:
    """Every customer valued, and how the model was chosen.

    Attributes
    ----------
    frame : DataFrame
        Indexed by ``customer_id`` (customers who bought): ``probability_alive``,
        ``retention``, ``expected_purchases`` (over the horizon), ``clv``.
    model : str
        Key of the purchase model used (:data:`crmkit.analysis.model_choice.CANDIDATES`) or
        :data:`HISTORICAL`.
    purchases : fitted purchase model or None
    spend : value.GammaGamma or None
        None when fewer than two customers bought twice (then each customer's own mean spend).
    independence : float
        Frequency-spend correlation of repeat buyers (Gamma-Gamma assumes it near zero).
    comparison : model_choice.Comparison or None
        The holdout comparison; None when the history is too short (or nobody bought twice).
    passed_over : dict
        Model key -> reasons (diagnostic keys, ``alive_while_overdue``) it was not used.
    fallback : str or None
        Why no purchase model is used: ``no_repeat_buyers`` or ``no_sound_model``.
    repeat_buyers, customers : int
    overdue_alive : float
        Mean P(alive) of customers not seen for twice their usual interval (NaN if too few).
    yearly_repeat_rate : float
        Observed share of last year's buyers who bought again in the following year (the
        fallback's retention; shown beside the model's as a check).
    """

    frame: pd.DataFrame
    model: str
    purchases: object | None
    spend: value.GammaGamma | None
    independence: float
    comparison: model_choice.Comparison | None
    passed_over: dict[str, list[str]] = field(default_factory=dict)
    fallback: str | None = None
    repeat_buyers: int = 0
    customers: int = 0
    overdue_alive: float = float("nan")
    yearly_repeat_rate: float = float("nan")

    @property
    def tracked(self) -> bool:
        """Whether the chosen model's holdout tracking (week by week) is there to show."""
        return self.comparison is not None and not self.comparison.tracking.empty \
            and self.comparison.chosen is not None and self.fallback is None

    @property
    def repeat_share(self) -> float:
        return self.repeat_buyers / self.customers if self.customers else 0.0

    def as_dict(self) -> dict:
        """``results.json`` ``segments.value_model``."""
        comparison = self.comparison
        return {
            "model": self.model,
            "fallback": self.fallback,
            "candidates": [c.as_dict() for c in comparison.candidates] if comparison else [],
            "validation": (comparison.validation() if comparison and self.fallback is None
                           else None),
            "checked": self.tracked,
            "spend_model": self.spend is not None,
            "passed_over": {k: sorted(v) for k, v in self.passed_over.items()},
            "params": ({k: float(v) for k, v in self.purchases.params.items()}
                       if self.purchases is not None else {}),
            "repeat_buyers": self.repeat_buyers,
            "customers": self.customers,
            "repeat_share": self.repeat_share,
            "overdue_alive": _finite(self.overdue_alive),
            "yearly_repeat_rate": _finite(self.yearly_repeat_rate),
            "tracking": (comparison.tracking.assign(date=lambda f: f["date"].astype(str))
                         .to_dict("records")
                         if comparison is not None and not comparison.tracking.empty else []),
            "by_frequency": (comparison.by_frequency.to_dict("records")
                             if comparison is not None and not comparison.by_frequency.empty
                             else []),
        }


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def twelve_month_survival(model, frequency, recency, T, t: float = DAYS_PER_YEAR) -> np.ndarray:
    """P(still a customer at T + t | alive at T, history), per customer (see module docstring)."""
    x = np.asarray(frequency, dtype=float)
    age = np.asarray(T, dtype=float)
    params = model.params
    if isinstance(model, value.ParetoNBD):
        s, beta = params["s"], params["beta"]
        return np.exp(s * (np.log(beta + age) - np.log(beta + age + t)))
    r, alpha, a, b = params["r"], params["alpha"], params["a"], params["b"]
    extra = 1.0 if isinstance(model, value.ModifiedBetaGeo) else 0.0
    with np.errstate(all="ignore"):
        out = hyp2f1(r + x, a, a + b + x + extra, -t / (alpha + age))
    return np.clip(np.nan_to_num(out, nan=1.0), 0.0, 1.0)


def _usual_gap(summary: pd.DataFrame) -> np.ndarray:
    """Each customer's usual days between purchases (the base's median for one-time buyers)."""
    x = summary["frequency"].to_numpy(float)
    gap = np.where(x > 0, summary["recency"].to_numpy(float) / np.maximum(x, 1), np.nan)
    median = np.nanmedian(gap) if np.any(x > 0) else np.nan
    return np.where(np.isfinite(gap) & (gap > 0), gap, median)


def overdue(summary: pd.DataFrame) -> np.ndarray:
    """Customers with no purchase in twice their usual inter-purchase time."""
    since = summary["T"].to_numpy(float) - summary["recency"].to_numpy(float)
    return since > 2.0 * _usual_gap(summary)


#: Penalty used when the maximum-likelihood fit runs to a boundary (see :func:`fit_with_fallback`).
FALLBACK_PENALIZER = 0.001


def fit_with_fallback(model, *columns):
    """Fit by maximum likelihood; if the optimum lies on a boundary, with a light penalty.

    A likelihood with no interior maximum (lifetimes fails the same way) gets the small L2
    penalty lifetimes' documentation recommends; ``model.penalizer_`` records which was used.
    The fit's :meth:`diagnostics` still say whether the result can be trusted.
    """
    try:
        model.fit(*columns)
        model.penalizer_ = 0.0
    except value.ConvergenceError:
        model = type(model)()
        model.fit(*columns, penalizer_coef=FALLBACK_PENALIZER)
        model.penalizer_ = FALLBACK_PENALIZER
    return model


def _refit(key: str, summary: pd.DataFrame):
    return fit_with_fallback(model_choice.CANDIDATES[key](), summary["frequency"],
                             summary["recency"], summary["T"])


class _Histories:
    """The customers' distinct histories (:func:`crmkit.analysis.value.history_codes`): every
    per-customer prediction is made once per history, then spread back to the customers."""

    def __init__(self, summary: pd.DataFrame) -> None:
        self.x, self.tx, self.age, self.codes = value.history_codes(
            summary["frequency"], summary["recency"], summary["T"])

    def each(self, per_history) -> np.ndarray:
        """Per-history values, one per customer."""
        return np.asarray(per_history, dtype=float)[self.codes]


def _discounted_purchases(model, histories: _Histories, months: int, discount_rate: float
                          ) -> np.ndarray:
    """Σ over months of the purchases expected in that month, discounted monthly, per history.

    Months of 30 days, as :func:`crmkit.analysis.value.customer_lifetime_value` (and lifetimes)
    count them, so the CLV here equals that oracle's whenever a spend model is fitted.
    """
    monthly = (1.0 + discount_rate) ** (1.0 / 12.0) - 1.0
    x, tx, age = histories.x, histories.tx, histories.age
    total = np.zeros(len(x))
    previous = np.zeros(len(x))
    ends = [month * value.PERIODS_PER_MONTH["D"] for month in range(1, months + 1)]
    for month, expected in enumerate(model.expected_purchases_each(ends, x, tx, age), start=1):
        cumulative = np.asarray(expected, dtype=float)
        total += (cumulative - previous) / (1.0 + monthly) ** month
        previous = cumulative
    return total


def yearly_repeat_rate(transactions: pd.DataFrame, as_of) -> float:
    """Share of the customers who bought in the year before last who bought again in the last
    year (NaN when the data do not reach two years back)."""
    end = pd.Timestamp(as_of)
    dates = pd.to_datetime(transactions["date"])
    if dates.min() > end - pd.DateOffset(years=2) + pd.Timedelta(days=30):
        return float("nan")
    last = transactions.loc[dates > end - pd.DateOffset(years=1), "customer_id"].unique()
    before = pd.Index(transactions.loc[(dates > end - pd.DateOffset(years=2))
                                       & (dates <= end - pd.DateOffset(years=1)),
                                       "customer_id"].unique())
    # a hash lookup, not isin: see model_choice._tracking
    back = pd.Index(last).get_indexer(before) >= 0
    return float(back.sum()) / len(before) if len(before) else float("nan")


def _historical(summary: pd.DataFrame, transactions: pd.DataFrame, as_of, *, margin_rate,
                horizon_months, discount_rate, lapse_days, repeat_rate) -> pd.DataFrame:
    """The fallback valuation: last year's margin continued at the observed repeat rate."""
    end = pd.Timestamp(as_of)
    dates = pd.to_datetime(transactions["date"])
    recent = transactions[dates > end - pd.DateOffset(years=1)]
    per_year = recent.groupby("customer_id", observed=True)["amount"].sum()
    count = occasions.purchase_counts(recent)
    retention = 0.0 if not np.isfinite(repeat_rate) else float(repeat_rate)
    years = horizon_months / 12.0
    q = retention / (1.0 + discount_rate)
    # Σ_{y=1..H} r^(y−1) / (1+d)^y, fractional H as in the cost-benefit lifetime factor.
    factor = (1.0 - q ** years) / (1.0 - q) / (1.0 + discount_rate)
    kept = (1.0 - retention ** years) / (1.0 - retention) if retention < 1 else years
    frame = pd.DataFrame(index=summary.index)
    since = summary["T"] - summary["recency"]
    frame["probability_alive"] = (since <= lapse_days).astype(float)
    frame["retention"] = retention
    frame["expected_purchases"] = count.reindex(summary.index).fillna(0.0) * kept
    frame["clv"] = (per_year.reindex(summary.index).fillna(0.0).clip(lower=0.0)
                    * margin_rate * factor)
    return frame


def value_customers(transactions: pd.DataFrame, as_of, *, margin_rate: float,
                    horizon_months: int, discount_rate: float, lapse_days: int = 180,
                    model: str = "auto", holdout_months: int | None = None) -> Valuation:
    """Choose the customer-base model on the client's data and value every customer who bought.

    Parameters
    ----------
    transactions : DataFrame
        ``customer_id``, ``date``, ``amount``; only lines up to ``as_of`` are used.
    as_of : date
    margin_rate : float
        Gross margin over net revenue, applied to expected spend.
    horizon_months : int
    discount_rate : float
        Yearly.
    lapse_days : int
        The fallback's "active" threshold.
    model : {"auto", "bg_nbd", "mbg_nbd", "pareto_nbd"}
        ``value.model`` of client.yaml.
    holdout_months : int, optional
        ``value.holdout_months``; default a quarter of the history (3 to 12).

    Returns
    -------
    Valuation
    """
    end = pd.Timestamp(as_of)
    tx = occasions.up_to(transactions, end)  # the same frame when nothing is later
    summary = value.summarise(tx, observation_period_end=end,
                              order_id_col=occasions.ORDER_COLUMN)
    repeat = value.repeat_customers(summary)
    repeat_rate = yearly_repeat_rate(tx, end)
    common = {"repeat_buyers": int((summary["frequency"] > 0).sum()),
              "customers": len(summary), "yearly_repeat_rate": repeat_rate}

    def fallback(reason, comparison=None, passed_over=None) -> Valuation:
        frame = _historical(summary, tx, end, margin_rate=margin_rate,
                            horizon_months=horizon_months, discount_rate=discount_rate,
                            lapse_days=lapse_days, repeat_rate=repeat_rate)
        return Valuation(frame=frame, model=HISTORICAL, purchases=None, spend=None,
                         independence=float("nan"), comparison=comparison,
                         passed_over=passed_over or {}, fallback=reason, **common)

    if common["repeat_buyers"] < MIN_REPEAT_BUYERS:
        return fallback("no_repeat_buyers")
    try:
        comparison = model_choice.compare(tx, end, holdout_months=holdout_months, model=model)
    except ValueError:      # e.g. nobody bought twice in the calibration period
        comparison = None
    order = _order(comparison, model)
    passed_over: dict[str, list[str]] = {}
    if comparison is not None:
        for candidate in comparison.candidates:
            if not candidate.sound:
                passed_over[candidate.model] = sorted(candidate.issues)
    late = overdue(summary)
    histories = _Histories(summary)
    chosen = None
    for key in order:
        try:
            fitted = _refit(key, summary)
        except (value.ConvergenceError, ValueError, FloatingPointError):
            passed_over[key] = ["fit_failed"]
            continue
        issues = sorted(fitted.diagnostics())
        alive = histories.each(fitted.probability_alive(histories.x, histories.tx,
                                                        histories.age))
        overdue_alive = float(alive[late].mean()) if late.sum() >= OVERDUE_MIN_CUSTOMERS \
            else float("nan")
        if overdue_alive > OVERDUE_ALIVE_LIMIT:
            issues.append("alive_while_overdue")
        if issues and model == "auto":
            passed_over[key] = issues
            continue
        if issues:
            passed_over[key] = issues      # forced by client.yaml: used, and named
        chosen = (key, fitted, alive, overdue_alive)
        break
    if chosen is None:
        return fallback("no_sound_model", comparison, passed_over)
    key, fitted, alive, overdue_alive = chosen
    if key in passed_over and model == "auto":
        del passed_over[key]
    if comparison is not None and comparison.chosen != key:
        # The holdout's favourite failed on the whole history: report the holdout figures of
        # the model actually used (its tracking, its error), not of the one passed over.
        comparison = model_choice.compare(tx, end, holdout_months=holdout_months, model=key)

    spend, independence = None, float("nan")
    if len(repeat) >= 2:
        spend = fit_with_fallback(value.GammaGamma(), repeat["frequency"],
                                  repeat["monetary_value"])
        independence = value.frequency_value_correlation(repeat["frequency"],
                                                         repeat["monetary_value"])
    x = summary["frequency"].to_numpy(float)
    if spend is not None:
        per_purchase = np.asarray(spend.expected_average_value(x, summary["monetary_value"]
                                                               .fillna(0.0).to_numpy(float)))
    else:
        bought = occasions.frame(tx, purchases_only=True)
        per_purchase = (bought.groupby("customer_id", observed=True)["amount"].mean()
                        .reindex(summary.index).fillna(0.0).to_numpy(float))
    frame = pd.DataFrame(index=summary.index)
    frame["probability_alive"] = alive
    h = histories
    frame["retention"] = h.each(twelve_month_survival(fitted, h.x, h.tx, h.age))
    frame["expected_purchases"] = h.each(fitted.expected_purchases(
        horizon_months * DAYS_PER_MONTH, h.x, h.tx, h.age))
    frame["clv"] = margin_rate * per_purchase * h.each(_discounted_purchases(
        fitted, h, horizon_months, discount_rate))
    return Valuation(frame=frame, model=key, purchases=fitted, spend=spend,
                     independence=independence, comparison=comparison, passed_over=passed_over,
                     overdue_alive=overdue_alive, **common)


def _order(comparison: model_choice.Comparison | None, model: str) -> list[str]:
    """Candidate keys in the order they are tried on the whole history."""
    keys = list(model_choice.CANDIDATES)
    if model != "auto":
        return [model] + [k for k in keys if k != model]
    if comparison is None:
        return keys
    sound = sorted((c for c in comparison.candidates if c.sound), key=lambda c: c.mae)
    return [c.model for c in sound]


#: Key of the contractual model (shifted-beta-geometric, :mod:`crmkit.analysis.contractual`).
CONTRACTUAL = "sbg"


def value_contracts(customers: pd.DataFrame, transactions: pd.DataFrame, as_of, *,
                    gross_margin: float, discount_rate: float, horizon_months: int, lang: str
                    ) -> tuple[Valuation, pd.Series, dict[str, str], pd.DataFrame]:
    """Segment and value the customers of a contractual client (``business_model: contractual``).

    Customers of a subscription or contract business do not drift away unseen: they cancel, and
    the register says when. So the segments are by tenure, value and churn signal
    (:func:`crmkit.analysis.contractual.segments`), and each customer is valued as margin per
    month × discounted expected residual lifetime from the shifted-beta-geometric model, fitted
    per start-year cohort as Fader & Hardie fit it (a cohort mixes customers who left and who
    stayed; the segments do not), a cohort too small or degenerate taking the whole base's fit.

    Returns
    -------
    valuation : Valuation
        ``model`` :data:`CONTRACTUAL`; ``frame`` per customer as for non-contractual clients
        (P(alive) is 1 for a customer with a running contract, 0 after it ended).
    segment : Series
        Segment key per customer (index ``customer_id``).
    names : dict
        Segment key -> name in ``lang``, in display order.
    fits : DataFrame
        One row per cohort fit (``all`` first): ``cohort``, ``customers``, ``churned``, ``own``,
        ``reason`` (why the base's fit was used, in words), ``alpha``, ``beta``,
        ``retention_first_year`` (share of a new customer still a customer after 12 months).
    """
    from crmkit.analysis import contractual

    measured = contractual.measures(customers, transactions, as_of, gross_margin=gross_margin)
    segment, names = contractual.segments(measured, lang)
    cohort = measured["start_date"].dt.year.astype(str)
    frame, fits = contractual.value(measured, segment.astype(str), discount_rate=discount_rate,
                                    horizon_months=horizon_months, fit_by=cohort)
    rows = []
    for key, fit in fits.items():
        survival = float(fit.model.survival(contractual.RETENTION_MONTHS))
        rows.append({"cohort": t("val_cohort_all", lang) if key == contractual.BASE_FIT
                     else key, "customers": fit.customers, "churned": fit.churned,
                     "own": fit.own,
                     "reason": contractual.fit_reason(fit, lang) or t("val_fit_own", lang),
                     "alpha": fit.alpha, "beta": fit.beta, "retention_first_year": survival})
    base = fits[contractual.BASE_FIT].model
    valuation = Valuation(
        frame=frame[["probability_alive", "retention", "expected_purchases", "clv"]],
        model=CONTRACTUAL, purchases=base, spend=None, independence=float("nan"),
        comparison=None, customers=len(measured),
        repeat_buyers=int(measured["active"].sum()))
    return valuation, segment.astype(str), names, pd.DataFrame(rows)
