"""Contractual clients: tenure, value and churn risk instead of purchase recency.

A subscription, contract or account business (``business_model: contractual`` in client.yaml)
knows who its customers are: customers.csv carries each contract's ``start_date`` and
``end_date`` (empty while it runs) and the transactions are the bills, about one a month.
Segmenting such customers by the recency of their last "purchase" is wrong (a customer who last
paid 25 days ago is not "about to sleep", they are between two bills), and so is a
non-contractual model that has to guess whether a customer is still there. This module does
what the contractual setting calls for:

- :func:`measures` turns the register and the bills into one row per customer: tenure, status,
  margin per month, the trend of the bills and the months since the last one.
- :func:`segments` reads them as a manager does: new, at risk, loyal, established (each split by
  value) and churned, with thresholds that are module constants.
- :func:`fit_retention` fits the shifted-beta-geometric (sBG) model of Fader & Hardie (2007) by
  maximum likelihood on individual, right-censored durations (customers who started at
  different times, each observed for as long as they have been a customer).
- :func:`value` fits it per segment and values every customer: P(alive) (known: 1 or 0),
  twelve-month retention, expected bills over the horizon and CLV = monthly margin x discounted
  expected residual lifetime. :func:`segment_retention` gives a segment's yearly retention.

Time is counted in months throughout, the bills' period: a customer's tenure is the number of
monthly renewals behind them, and the sBG parameters are per month.

References
----------
.. [1] Fader, P. S. and Hardie, B. G. S. (2007), "How to Project Customer Retention", Journal of
   Interactive Marketing 21 (1), 76-90.
.. [2] Fader, P. S. and Hardie, B. G. S. (2010), "Customer-Base Valuation in a Contractual
   Setting: The Perils of Ignoring Heterogeneity", Marketing Science 29 (1), 85-93.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import betaln, digamma

from crmkit.analysis.value import ConvergenceError, ShiftedBetaGeometric
from crmkit.core.i18n import Formatter, t

__all__ = [
    "AT_RISK_BILL_DROP",
    "AT_RISK_MONTHS_WITHOUT_BILL",
    "BASE_FIT",
    "LOYAL_MONTHS",
    "MARGIN_WINDOW_MONTHS",
    "MIN_FIT_CUSTOMERS",
    "NEW_MONTHS",
    "RECENT_CHURN_MONTHS",
    "RETENTION_MONTHS",
    "SEGMENTS",
    "TREND_MONTHS",
    "RetentionFit",
    "customer_values",
    "fit_reason",
    "fit_retention",
    "measures",
    "segment_descriptions",
    "segment_retention",
    "segments",
    "value",
]

# --------------------------------------------------------------------------------------------
# Thresholds of the segmentation (months unless said otherwise)
# --------------------------------------------------------------------------------------------

#: A customer of fewer months than this is ``new``: too early to judge loyalty or value.
NEW_MONTHS = 6
#: A customer of at least this many months is ``loyal``; between NEW_MONTHS and this,
#: ``established``.
LOYAL_MONTHS = 24
#: No bill for at least this many whole months is a churn signal (``at_risk``): with monthly
#: bills, a customer two months silent has missed at least one bill.
AT_RISK_MONTHS_WITHOUT_BILL = 2
#: Bills down by at least this share (last TREND_MONTHS against the TREND_MONTHS before) is a
#: churn signal (``at_risk``): a customer moving to a cheaper plan or dropping lines.
AT_RISK_BILL_DROP = 0.30
#: Length of each of the two windows ``bill_trend`` compares.
TREND_MONTHS = 3
#: Window of ``monthly_margin``: the last twelve months, a full cycle of seasonal bills.
MARGIN_WINDOW_MONTHS = 12
#: A customer who ended within this many months is ``churned_recent`` (still worth winning
#: back), earlier ``churned``.
RECENT_CHURN_MONTHS = 12

#: The segments, in the order a report lists them.
SEGMENTS = (
    "new",
    "at_risk",
    "loyal_high_value",
    "loyal",
    "established_high_value",
    "established",
    "churned_recent",
    "churned",
)

# --------------------------------------------------------------------------------------------
# Valuation constants
# --------------------------------------------------------------------------------------------

#: A segment with fewer customers than this takes the whole base's sBG fit: two parameters
#: estimated on a handful of durations say nothing.
MIN_FIT_CUSTOMERS = 30
#: ``retention`` is the probability of still being a customer this many months from now.
RETENTION_MONTHS = 12
#: Key of the whole base's fit in the ``fits`` that :func:`value` returns.
BASE_FIT = "all"

# Log-parameters stay within these bounds, so exp() neither overflows nor reaches zero while
# the optimiser explores; a fit that ends on one is degenerate and flagged as such.
_LOG_BOUND = 25.0
_CATALOGUE_PREFIX = "ctr_"


# --------------------------------------------------------------------------------------------
# The sBG fitted on individual durations
# --------------------------------------------------------------------------------------------


def fit_retention(tenure_periods, churned, *, weights=None, entered=None) -> ShiftedBetaGeometric:
    """Fit the shifted-beta-geometric model to individual, right-censored durations.

    Each customer renews at the end of every period with a probability 1 - theta of their own,
    theta ~ Beta(alpha, beta) across customers (Fader & Hardie 2007). With B the beta function,
    a customer who churned in period t (renewed t - 1 times, then not) contributes

        P(T = t) = B(alpha + 1, beta + t - 1) / B(alpha, beta),   t >= 1,

    and one still active after n renewals (right-censored) contributes the survival

        S(n) = B(alpha, beta + n) / B(alpha, beta),   n >= 0.

    Unlike :meth:`ShiftedBetaGeometric.fit`, which takes one cohort's survivor counts, this
    takes every customer's own duration, so customers who started at different times (each
    censored at a different tenure) are fitted together. On one cohort's durations the two give
    the same estimates.

    A register that lists only the contracts still running when it begins (the usual export:
    "every customer since the new billing system") holds the old customers *because* they
    survived until then. ``entered`` gives, per customer, the renewals already made when they
    came under observation; each contribution is then conditioned on having survived them,
    divided by S(entered) (left truncation). Ignoring it makes old cohorts look as if nobody
    ever left them in their early months, and retention far too high.

    The log-likelihood is evaluated with ``scipy.special.betaln``, the log of the beta function
    computed directly: B itself underflows to zero for long tenures (B(0.7, 3.8 + 400) is
    about 1e-2), while its log stays finite, and the ratios above become differences of logs
    (B(alpha, beta) itself is the e = 0 case of the truncation term B(alpha, beta + e)).
    Identical (duration, churned, entered) rows are collapsed into one weighted row first, so
    the cost of an evaluation grows with the number of distinct tenures, not of customers. The
    gradient is analytic (digamma); BFGS runs on log(alpha), log(beta), which keeps both
    positive.

    Parameters
    ----------
    tenure_periods : array_like of int
        Per customer, the number of periods: for a churned customer the period in which they
        left (>= 1), for an active one the renewals made so far (>= 0; 0 contributes nothing).
    churned : array_like of bool
        True when the customer has left, False when still active (censored).
    weights : array_like, optional
        Number of customers with each row; default one per row.
    entered : array_like of int, optional
        Renewals made before the customer came under observation (left truncation); default 0
        for everyone. At most the duration minus 1 for a churned customer, the duration for an
        active one.

    Returns
    -------
    crmkit.analysis.value.ShiftedBetaGeometric
        Built with ``from_params(alpha, beta)``, with ``log_likelihood_``, ``n_customers_`` (sum
        of weights) and ``periods_`` (longest duration) set, and :meth:`diagnostics` naming a
        degenerate fit (a parameter at a bound, a shape beyond 1e3, a flat likelihood).

    Raises
    ------
    ValueError
        When the inputs are not one duration and one flag per customer, a duration is negative,
        not whole, or 0 for a churned customer, an ``entered`` is impossible, or nobody churned
        (churn cannot be estimated).
    crmkit.analysis.value.ConvergenceError
        When the optimiser fails.

    Examples
    --------
    The high-end cohort of Fader & Hardie (2007) as individual durations:

    >>> lost = [131, 126, 90, 60, 42, 34, 26]
    >>> model = fit_retention([1, 2, 3, 4, 5, 6, 7, 7], [True] * 7 + [False],
    ...                       weights=lost + [491])
    >>> model.params.round(3).to_dict()
    {'alpha': 0.668, 'beta': 3.806}
    """
    caller = "fit_retention"
    periods, left, w, since = _durations(tenure_periods, churned, weights, entered, caller)
    # One row per distinct (duration, churned, entered): cohorts repeat the same few tenures.
    rows = pd.DataFrame({"t": periods, "churned": left, "entered": since, "w": w})
    rows = rows[rows["w"] > 0].groupby(["t", "churned", "entered"], sort=False)["w"].sum()
    rows = rows.reset_index()
    is_churn = rows["churned"].to_numpy(dtype=bool)
    duration = rows["t"].to_numpy(dtype=float)
    weight = rows["w"].to_numpy(dtype=float)
    churn_t, churn_w = duration[is_churn], weight[is_churn]
    alive_n, alive_w = duration[~is_churn], weight[~is_churn]
    # The truncation terms, one per distinct entry tenure (0 for most customers).
    entry = rows.groupby("entered", sort=False)["w"].sum()
    entry_e, entry_w = entry.index.to_numpy(dtype=float), entry.to_numpy(dtype=float)
    if not churn_w.sum() > 0:
        raise ValueError(f"{caller}: nobody churned, so the churn rate cannot be estimated.")
    total = float(weight.sum())

    def log_likelihood(alpha, beta, with_gradient):
        ll = (float(np.sum(churn_w * betaln(alpha + 1.0, beta + churn_t - 1.0)))
              + float(np.sum(alive_w * betaln(alpha, beta + alive_n)))
              - float(np.sum(entry_w * betaln(alpha, beta + entry_e))))
        if not with_gradient:
            return ll, None
        psi_churn = digamma(alpha + beta + churn_t)
        psi_alive = digamma(alpha + beta + alive_n)
        psi_entry = digamma(alpha + beta + entry_e)
        d_alpha = (np.sum(churn_w * (digamma(alpha + 1.0) - psi_churn))
                   + np.sum(alive_w * (digamma(alpha) - psi_alive))
                   - np.sum(entry_w * (digamma(alpha) - psi_entry)))
        d_beta = (np.sum(churn_w * (digamma(beta + churn_t - 1.0) - psi_churn))
                  + np.sum(alive_w * (digamma(beta + alive_n) - psi_alive))
                  - np.sum(entry_w * (digamma(beta + entry_e) - psi_entry)))
        return ll, np.array([d_alpha, d_beta])

    def objective(theta):
        # Mean negative log-likelihood in log-parameters: scale-free, so the same tolerance
        # suits ten customers and a million.
        params = np.exp(np.clip(theta, -_LOG_BOUND, _LOG_BOUND))
        ll, grad = log_likelihood(*params, with_gradient=True)
        return -ll / total, -grad * params / total

    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        theta = _maximise(objective, caller)
        alpha, beta = np.exp(theta)
        model = ShiftedBetaGeometric.from_params(alpha, beta)
        model.log_likelihood_, _ = log_likelihood(alpha, beta, with_gradient=False)
        # The model's own bookkeeping of a fit (bounds hit, flat likelihood), so that
        # diagnostics() judges this fit exactly as it judges ShiftedBetaGeometric.fit's.
        model._record_fit(objective, theta, total)
    model.n_customers_ = total
    model.periods_ = int(duration.max())
    return model


def _durations(tenure_periods, churned, weights, entered, caller):
    """Validate the inputs of :func:`fit_retention`; return periods, flags, weights, entries."""
    try:
        periods = np.asarray(tenure_periods, dtype=float)
        left = np.asarray(churned)
        since = np.zeros(periods.shape) if entered is None else np.asarray(entered, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{caller}: tenure_periods and entered must be numeric: {exc}") from None
    if periods.ndim != 1 or left.shape != periods.shape or since.shape != periods.shape:
        raise ValueError(f"{caller}: tenure_periods, churned (and entered) must be "
                         f"one-dimensional and equally long, got shapes {periods.shape}, "
                         f"{left.shape} and {since.shape}.")
    if not periods.size:
        raise ValueError(f"{caller}: no customers given (empty input).")
    if left.dtype != bool:
        if not np.isin(left, [0, 1]).all():
            raise ValueError(f"{caller}: churned must be True/False (or 1/0).")
        left = left.astype(bool)
    problems = {
        "a missing or infinite duration": ~np.isfinite(periods),
        "a negative duration": periods < 0,
        "a duration that is not a whole number of periods": np.isfinite(periods)
        & (periods != np.round(periods)),
        "churned with duration 0 (a customer leaves in period 1 at the earliest)": left
        & (periods == 0),
        "an entered that is missing, negative or not whole": ~np.isfinite(since) | (since < 0)
        | (since != np.round(since)),
        "entered after their last renewal": since > periods - left,
    }
    if weights is None:
        w = np.ones(len(periods))
    else:
        w = np.asarray(weights, dtype=float)
        if w.shape != periods.shape:
            raise ValueError(f"{caller}: weights must have one value per customer "
                             f"({len(periods)}), got shape {w.shape}.")
        problems["a missing, infinite or negative weight"] = ~(np.isfinite(w) & (w >= 0))
    lines = [f"  - {int(mask.sum())} of {len(periods)} rows have {what} (first at position "
             f"{int(np.flatnonzero(mask)[0])})" for what, mask in problems.items() if mask.any()]
    if lines:
        raise ValueError(f"{caller} got impossible durations:\n" + "\n".join(lines))
    if not w.sum() > 0:
        raise ValueError(f"{caller}: the weights sum to zero; there is nothing to fit.")
    return periods, left, w, since


def _maximise(objective, caller: str) -> np.ndarray:
    """Minimise ``objective`` over (log alpha, log beta) from alpha = beta = 1.

    BFGS first (two parameters: its dense update is trivial and it makes no BLAS calls); if it
    stops short of a zero gradient, L-BFGS-B within the log-bounds. A fit that runs to a bound
    (nobody renews, or no heterogeneity at all) is returned as is: the model's diagnostics()
    names it, which is what the caller needs to decide to use another fit.
    """
    result = minimize(objective, np.zeros(2), jac=True, method="BFGS", options={"gtol": 1e-9})
    theta = np.clip(result.x, -_LOG_BOUND, _LOG_BOUND)
    gradient = np.max(np.abs(objective(theta)[1]))
    if not gradient <= 1e-6:
        bounds = [(-_LOG_BOUND, _LOG_BOUND)] * 2
        start = theta if np.all(np.isfinite(theta)) else np.zeros(2)
        retry = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds)
        if np.isfinite(retry.fun) and (retry.fun <= result.fun or not np.isfinite(result.fun)):
            theta = np.clip(retry.x, -_LOG_BOUND, _LOG_BOUND)
    value_at = objective(theta)[0]
    on_bound = np.abs(theta) >= _LOG_BOUND - 1e-6
    gradient = np.abs(objective(theta)[1])
    if not np.isfinite(value_at) or np.max(gradient[~on_bound], initial=0.0) > 1e-5:
        raise ConvergenceError(f"{caller} did not converge (largest gradient "
                               f"{np.max(gradient):.2g}).")
    return theta


# --------------------------------------------------------------------------------------------
# Per-customer measures
# --------------------------------------------------------------------------------------------


def _month_parts(dates: np.ndarray):
    """Month number, day of the month and length of the month of ``datetime64[D]`` dates."""
    month = dates.astype("datetime64[M]")
    first = month.astype("datetime64[D]")
    day = (dates - first).astype(np.int64) + 1
    length = ((month + 1).astype("datetime64[D]") - first).astype(np.int64)
    return month.astype(np.int64), day, length


def _whole_months(start: np.ndarray, end: np.ndarray, round_up: bool = False) -> np.ndarray:
    """Calendar months from ``start`` to ``end``: completed ones, or begun ones with round_up.

    A month is completed on its anniversary day, the day of the month of ``start`` (or the last
    day of a shorter month: a contract started on 31 January renews on 28 February), as a bill
    that falls on it.
    """
    start_month, start_day, _ = _month_parts(start)
    end_month, end_day, end_length = _month_parts(end)
    anniversary = np.minimum(start_day, end_length)
    completed = end_month - start_month - (end_day < anniversary)
    if round_up:
        return completed + (end_day != anniversary)
    return completed


def _day(value) -> np.datetime64:
    return np.datetime64(pd.Timestamp(value).date(), "D")


def _days(series: pd.Series) -> np.ndarray:
    """A date column as ``datetime64[D]`` (NaT kept)."""
    return pd.to_datetime(series).to_numpy().astype("datetime64[D]")


def _months_back(dates: np.ndarray, months: int) -> np.ndarray:
    """``dates`` minus ``months`` calendar months (clamped to the month's end, as pandas does)."""
    shifted = pd.DatetimeIndex(dates.astype("datetime64[ns]")) - pd.DateOffset(months=months)
    return shifted.to_numpy().astype("datetime64[D]")


def measures(customers: pd.DataFrame, transactions: pd.DataFrame, as_of, *,
             gross_margin: float | None, observed_from=None) -> pd.DataFrame:
    """Tenure, status, margin and bill signals of every contractual customer at ``as_of``.

    Parameters
    ----------
    customers : pandas.DataFrame
        The register: ``customer_id`` (a column, or the index), ``start_date`` and, optionally,
        ``end_date`` (empty or NaT while the contract runs). ``end_date`` is the contract's last
        day; an export that gives the first day without contract instead (the day of the bill
        not paid) gives the same tenure.
    transactions : pandas.DataFrame
        The bills: ``customer_id``, ``date``, ``amount`` and optionally ``margin`` (an amount).
        Bills after ``as_of`` and of customers not in the register are ignored.
    as_of : date-like
        The analysis date.
    gross_margin : float or None
        Margin rate for bills without a ``margin`` amount (all of them when there is no such
        column); None counts their margin as 0.
    observed_from : date-like, optional
        A date from which the register holds every contract that was running (contracts that
        ended before it may be missing, as in an export from a billing system started then).
        Default: the earliest ``end_date`` in the register, the latest date for which that can
        be assumed without being told (before it the register shows nobody leaving). It only
        sets ``entered_months``, the left truncation of the retention fit.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id``, in the register's order, one row per customer who had
        started by ``as_of`` (a contract starting later is not a customer yet):

        - ``start_date``, ``end_date``: as given (``end_date`` NaT while active).
        - ``tenure_months`` (int): for an active customer the whole months completed from
          ``start_date`` to ``as_of`` (the monthly renewals behind them); for an ended one the
          months begun from ``start_date`` to ``end_date``, at least 1 (the billing period in
          which they left, a part month counting as one). These are the durations the sBG
          model takes (:func:`fit_retention`).
        - ``entered_months`` (int): the renewals a customer who started before
          ``observed_from`` had made by then (0 for the others, and for a customer who ended
          before it): they are in the register because they survived them, and
          :func:`fit_retention` conditions on it (``entered``).
        - ``active`` (bool): no ``end_date``, or one after ``as_of``.
        - ``months_since_end`` (float): whole months from ``end_date`` to ``as_of``; NaN while
          active.
        - ``monthly_margin`` (float): margin of the bills of the last MARGIN_WINDOW_MONTHS
          (up to ``as_of``, or for an ended customer up to ``end_date``) divided by the billing
          months in that window: 12, or the months the customer has been billed for when
          shorter (an active customer is billed for the month they are in). A customer whose
          window lies before the transaction log begins shows 0.
        - ``bill_trend`` (float): total bills of the last TREND_MONTHS months over the total of
          the TREND_MONTHS before (same reference date as ``monthly_margin``); 1 is flat, 0.6
          is bills down 40 %. NaN when the customer has been one for fewer than
          2 x TREND_MONTHS months or billed nothing in the earlier window.
        - ``months_since_last_bill`` (float): whole months from the last bill to ``as_of``;
          NaN for a customer without bills.

    Raises
    ------
    ValueError
        When the register lacks ``customer_id`` or ``start_date``, repeats a customer, has a
        customer without ``start_date`` or an ``end_date`` before the ``start_date``.
    """
    caller = "contractual.measures"
    register = customers
    if "customer_id" not in register.columns:
        if register.index.name != "customer_id":
            raise ValueError(f"{caller}: customers need a customer_id column.")
        register = register.reset_index()
    if "start_date" not in register.columns:
        raise ValueError(f"{caller}: a contractual client's customers need a start_date column.")
    ids = register["customer_id"]
    duplicated = ids.duplicated()
    if duplicated.any():
        raise ValueError(f"{caller}: {int(duplicated.sum())} customer ids appear twice, e.g. "
                         f"{ids[duplicated].iloc[0]!r}.")
    today = _day(as_of)
    start = _days(register["start_date"])
    end = (_days(register["end_date"]) if "end_date" in register.columns
           else np.full(len(register), np.datetime64("NaT"), dtype="datetime64[D]"))
    missing = np.isnat(start)
    if missing.any():
        raise ValueError(f"{caller}: {int(missing.sum())} customers have no start_date, e.g. "
                         f"{ids[missing].iloc[0]!r}.")
    backwards = ~np.isnat(end) & (end < start)
    if backwards.any():
        raise ValueError(f"{caller}: {int(backwards.sum())} customers have an end_date before "
                         f"their start_date, e.g. {ids[backwards].iloc[0]!r}.")
    started = start <= today
    ids, start, end = ids[started], start[started], end[started]

    active = np.isnat(end) | (end > today)
    # The reference date of an ended customer is their end: their last year as a customer,
    # not the year since, describes what they were worth.
    reference = np.where(active, today, end)
    tenure = np.where(active, _whole_months(start, today),
                      np.maximum(_whole_months(start, reference, round_up=True), 1))
    since_end = np.where(active, np.nan, _whole_months(reference, today).astype(float))
    # Billing months: an active customer is billed for the month they are in (bills come at
    # the start of a period, as a subscription's do), an ended one for the months begun.
    billed_months = np.where(active, tenure + 1, tenure)
    ends = end[~np.isnat(end) & (end <= today)]
    entered = np.zeros(len(start), dtype=np.int64)
    if observed_from is not None or len(ends):
        truncation = min(_day(observed_from) if observed_from is not None else ends.min(), today)
        before = (start < truncation) & (active | (end >= truncation))
        at_truncation = np.full(int(before.sum()), truncation)
        entered[before] = _whole_months(start[before], at_truncation)
        # An ended customer made at most tenure - 1 renewals (the last period is the one they
        # left in); an end on the truncation day itself must not count as one more.
        entered = np.minimum(entered, tenure - ~active)

    position = pd.Index(ids)
    bills = transactions[["customer_id", "date", "amount"]
                         + (["margin"] if "margin" in transactions.columns else [])]
    owner = position.get_indexer(bills["customer_id"])
    bill_day = _days(bills["date"])
    kept = (owner >= 0) & ~np.isnat(bill_day) & (bill_day <= today)
    owner, bill_day = owner[kept], bill_day[kept]
    amount = bills["amount"].to_numpy(dtype=float, na_value=np.nan)[kept]
    amount = np.nan_to_num(amount)
    estimate = amount * (gross_margin if gross_margin is not None else 0.0)
    if "margin" in bills.columns:
        margin = bills["margin"].to_numpy(dtype=float, na_value=np.nan)[kept]
        margin = np.where(np.isnan(margin), estimate, margin)
    else:
        margin = estimate
    n = len(position)

    def window_sum(values, months_from, months_to):
        """Per customer, the sum of ``values`` of bills in (ref - from, ref - to] months."""
        low = _months_back(reference, months_from)[owner]
        high = (_months_back(reference, months_to) if months_to else reference)[owner]
        inside = (bill_day > low) & (bill_day <= high)
        return np.bincount(owner[inside], weights=values[inside], minlength=n)

    window = np.minimum(billed_months, MARGIN_WINDOW_MONTHS)
    monthly_margin = window_sum(margin, MARGIN_WINDOW_MONTHS, 0) / np.maximum(window, 1)
    recent = window_sum(amount, TREND_MONTHS, 0)
    earlier = window_sum(amount, 2 * TREND_MONTHS, TREND_MONTHS)
    long_enough = _whole_months(start, reference) >= 2 * TREND_MONTHS
    with np.errstate(divide="ignore", invalid="ignore"):
        trend = np.where(long_enough & (earlier > 0), recent / earlier, np.nan)

    last_bill = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    if len(owner):
        latest = pd.Series(bill_day).groupby(owner).max()
        last_bill[latest.index.to_numpy()] = latest.to_numpy().astype("datetime64[D]")
    has_bill = ~np.isnat(last_bill)
    since_bill = np.full(n, np.nan)
    since_bill[has_bill] = _whole_months(last_bill[has_bill], np.full(has_bill.sum(), today))

    return pd.DataFrame(
        {
            "start_date": pd.to_datetime(start.astype("datetime64[ns]")),
            "end_date": pd.to_datetime(end.astype("datetime64[ns]")),
            "tenure_months": tenure.astype(np.int64),
            "entered_months": entered,
            "active": active,
            "months_since_end": since_end,
            "monthly_margin": monthly_margin,
            "bill_trend": trend,
            "months_since_last_bill": since_bill,
        },
        index=pd.Index(ids.to_numpy(), name="customer_id"),
    )


# --------------------------------------------------------------------------------------------
# Segments
# --------------------------------------------------------------------------------------------


def segments(measures: pd.DataFrame, lang: str) -> tuple[pd.Series, dict[str, str]]:
    """Tenure x value x churn-risk segments, the way a manager of a contract base reads them.

    Rules, first match wins (thresholds are the module constants):

    - ``churned_recent``: ended within the last RECENT_CHURN_MONTHS (12) months;
      ``churned``: ended earlier.
    - ``at_risk``: active with a churn signal: no bill for AT_RISK_MONTHS_WITHOUT_BILL (2)
      months or more (or none ever, after two months), or bills down AT_RISK_BILL_DROP (30 %)
      or more (``bill_trend <= 0.7``). It comes before the tenure bands: a new customer who
      stopped paying is the one to call, whatever their tenure.
    - ``new``: active, tenure under NEW_MONTHS (6) months.
    - ``loyal_high_value`` / ``loyal``: active, tenure LOYAL_MONTHS (24) months or more, with
      ``monthly_margin`` at or above / below the median of all active customers.
    - ``established_high_value`` / ``established``: active, 6 to 23 months, split by the same
      median.

    Parameters
    ----------
    measures : pandas.DataFrame
        From :func:`measures`.
    lang : {"en", "es"}

    Returns
    -------
    segment : pandas.Series
        Segment key per customer (ordered categorical over SEGMENTS), named ``segment``.
    names : dict of str to str
        Every key of SEGMENTS, in order, to its name in ``lang``
        (:func:`segment_descriptions` gives the one-line descriptions).
    """
    active = measures["active"].to_numpy(dtype=bool)
    tenure = measures["tenure_months"].to_numpy(dtype=float)
    margin = measures["monthly_margin"].to_numpy(dtype=float)
    since_end = measures["months_since_end"].to_numpy(dtype=float)
    silent = measures["months_since_last_bill"].to_numpy(dtype=float)
    # A customer who never paid a bill has been silent since they started.
    silent = np.where(np.isnan(silent), tenure, silent)
    trend = measures["bill_trend"].to_numpy(dtype=float)
    median = np.median(margin[active]) if active.any() else np.nan
    high = margin >= median  # False for every customer when the median is NaN
    churn_signal = (silent >= AT_RISK_MONTHS_WITHOUT_BILL) | (trend <= 1.0 - AT_RISK_BILL_DROP)
    key = np.select(
        [
            ~active & (since_end < RECENT_CHURN_MONTHS),
            ~active,
            churn_signal,
            tenure < NEW_MONTHS,
            (tenure >= LOYAL_MONTHS) & high,
            tenure >= LOYAL_MONTHS,
            high,
        ],
        ["churned_recent", "churned", "at_risk", "new", "loyal_high_value", "loyal",
         "established_high_value"],
        default="established",
    )
    segment = pd.Series(pd.Categorical(key, categories=SEGMENTS, ordered=True),
                        index=measures.index, name="segment")
    names = {k: t(_CATALOGUE_PREFIX + "segment_" + k, lang) for k in SEGMENTS}
    return segment, names


def segment_descriptions(lang: str) -> dict[str, str]:
    """One line per segment saying who is in it, with the module's thresholds filled in."""
    fmt = Formatter(lang)
    values = {
        "new": {"months": NEW_MONTHS},
        "at_risk": {"silent": AT_RISK_MONTHS_WITHOUT_BILL, "drop": fmt.pct(AT_RISK_BILL_DROP)},
        "loyal_high_value": {"months": LOYAL_MONTHS},
        "loyal": {"months": LOYAL_MONTHS},
        "established_high_value": {"low": NEW_MONTHS, "high": LOYAL_MONTHS},
        "established": {"low": NEW_MONTHS, "high": LOYAL_MONTHS},
        "churned_recent": {"months": RECENT_CHURN_MONTHS},
        "churned": {"months": RECENT_CHURN_MONTHS},
    }
    return {k: t(f"{_CATALOGUE_PREFIX}segment_{k}_desc", lang, **values[k]) for k in SEGMENTS}


# --------------------------------------------------------------------------------------------
# Value
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetentionFit:
    """The sBG fit a group of customers is valued with.

    Attributes
    ----------
    model : ShiftedBetaGeometric
        The fit used (the whole base's when ``own`` is False).
    customers, churned : int
        Customers of the group, and how many of them have ended.
    own : bool
        True when fitted on the group's own customers.
    reason : str or None
        Why the base's fit was used: ``"too_few_customers"``, ``"only_churned"``,
        ``"no_churn"``, ``"degenerate"`` or ``"not_converged"`` (see :func:`fit_reason`).
    """

    model: ShiftedBetaGeometric
    customers: int
    churned: int
    own: bool
    reason: str | None = None

    @property
    def alpha(self) -> float:
        return float(self.model.params["alpha"])

    @property
    def beta(self) -> float:
        return float(self.model.params["beta"])


def fit_reason(fit: RetentionFit, lang: str) -> str | None:
    """Why a group took the whole base's fit, in words in ``lang``; None when it has its own."""
    if fit.reason is None:
        return None
    return t(f"{_CATALOGUE_PREFIX}fit_{fit.reason}", lang, customers=fit.customers,
             minimum=MIN_FIT_CUSTOMERS)


def _group_fit(group: pd.DataFrame, base: ShiftedBetaGeometric) -> RetentionFit:
    """The group's own sBG fit when its data can carry one, else the base's with the reason."""
    customers = len(group)
    churned = int((~group["active"]).sum())
    reason = None
    if customers < MIN_FIT_CUSTOMERS:
        reason = "too_few_customers"
    elif churned == customers:
        reason = "only_churned"
    elif churned == 0:
        reason = "no_churn"
    if reason is None:
        try:
            model = fit_retention(group["tenure_months"], ~group["active"],
                                  entered=_entered(group))
        except ConvergenceError:
            reason = "not_converged"
        else:
            if not model.degenerate:
                return RetentionFit(model, customers, churned, own=True)
            reason = "degenerate"
    return RetentionFit(base, customers, churned, own=False, reason=reason)


def _entered(frame: pd.DataFrame):
    """The left truncation of the customers of ``frame``, if :func:`measures` gave one."""
    return frame["entered_months"] if "entered_months" in frame.columns else None


def _conditional_survival(model: ShiftedBetaGeometric, tenure: np.ndarray,
                          ahead: np.ndarray) -> np.ndarray:
    """S(n + k) / S(n) for every tenure n (rows) and months ahead k (columns), via betaln."""
    alpha, beta = model.params.to_numpy()
    n = tenure[:, None]
    return np.exp(betaln(alpha, beta + n + ahead[None, :]) - betaln(alpha, beta + n))


def customer_values(model: ShiftedBetaGeometric, tenure_months, monthly_margin, *,
                    discount_rate: float, horizon_months: int) -> pd.DataFrame:
    """Retention, expected bills and CLV of active customers under one sBG model.

    With n the tenure (renewals made), S the model's survival, H the horizon and the monthly
    rate d_m = (1 + d)^(1/12) - 1:

    - ``retention`` = S(n + 12) / S(n), still a customer twelve months from now;
    - ``expected_purchases`` = sum_{k=1..H} S(n + k) / S(n), the expected bills of the horizon;
    - ``clv`` = margin x sum_{k=1..H} S(n + k) / S(n) / (1 + d_m)^k.

    Each S(n + k) / S(n) is exp(betaln(alpha, beta + n + k) - betaln(alpha, beta + n)), in logs
    because S itself underflows for long tenures; each distinct tenure is evaluated once.

    Parameters
    ----------
    model : ShiftedBetaGeometric
        Fitted, or built with ``from_params``; parameters per month.
    tenure_months, monthly_margin : array_like
        Per customer (all active), as in :func:`measures`.
    discount_rate : float
        Yearly discount rate d (> -1; 0 for none).
    horizon_months : int
        H (>= 1).

    Returns
    -------
    pandas.DataFrame
        Columns ``retention``, ``expected_purchases``, ``clv``, one row per customer (the
        index of ``tenure_months`` when it is a Series).
    """
    if int(horizon_months) != horizon_months or horizon_months < 1:
        raise ValueError(f"horizon_months must be a whole number >= 1, got {horizon_months!r}.")
    if not discount_rate > -1:
        raise ValueError(f"discount_rate must be > -1 (yearly), got {discount_rate!r}.")
    index = tenure_months.index if isinstance(tenure_months, pd.Series) else None
    tenure = np.asarray(tenure_months, dtype=float)
    margin = np.asarray(monthly_margin, dtype=float)
    ahead = np.arange(1, int(horizon_months) + 1, dtype=float)
    # (1 + d_m)^-k = (1 + d)^(-k/12): the yearly rate spread evenly over the months.
    discount = (1.0 + discount_rate) ** (-ahead / 12.0)
    distinct, inverse = np.unique(tenure, return_inverse=True)
    survival = _conditional_survival(model, distinct, ahead)
    year = _conditional_survival(model, distinct, np.array([float(RETENTION_MONTHS)]))[:, 0]
    return pd.DataFrame(
        {
            "retention": year[inverse],
            "expected_purchases": survival.sum(axis=1)[inverse],
            "clv": margin * (survival * discount).sum(axis=1)[inverse],
        },
        index=index,
    )


def value(measures: pd.DataFrame, segment: pd.Series, *, discount_rate: float,
          horizon_months: int, fit_by: pd.Series | None = None
          ) -> tuple[pd.DataFrame, dict[str, RetentionFit]]:
    """Value every customer with the sBG model fitted per segment.

    The model is fitted on the whole base (every customer's monthly duration, ended and active
    alike, conditioned on ``entered_months`` when :func:`measures` gives it:
    :func:`fit_retention`) and on each segment's customers. A segment keeps its own fit
    only when it has at least MIN_FIT_CUSTOMERS (30) customers, some ended and some still
    active, and the fit is sound; otherwise it takes the whole base's fit, and ``fits`` says
    why. A segment of only ended customers would describe those who left without those who
    stayed; one of only active customers has no churn to estimate. Note that the segments of
    :func:`segments` are each either all active or all ended, so with them every segment takes
    the base's fit; pass ``fit_by`` (groups that mix ended and active customers: the start
    year's cohort, the plan, the channel) to fit per group instead, as Fader & Hardie fit per
    cohort.

    Per customer, with n = ``tenure_months``, S the fitted survival, H = ``horizon_months`` and
    the monthly rate d_m = (1 + d)^(1/12) - 1:

    - ``probability_alive``: 1.0 active, 0.0 ended: in a contractual business it is known.
    - ``retention``: S(n + 12) / S(n), the probability of still being a customer twelve months
      from now; 0 for ended customers.
    - ``expected_purchases``: expected bills over the horizon, sum_{k=1..H} S(n + k) / S(n); 0 for
      ended customers.
    - ``clv``: ``monthly_margin`` x sum_{k=1..H} S(n + k) / S(n) / (1 + d_m)^k, the margin of the
      expected bills of the next H months, each discounted to today; 0 for ended customers.

    Parameters
    ----------
    measures : pandas.DataFrame
        From :func:`measures`.
    segment : pandas.Series
        Segment key per customer (same index), e.g. from :func:`segments`.
    discount_rate : float
        Yearly discount rate d (> -1; 0 for none).
    horizon_months : int
        H, months of future bills counted (>= 1).
    fit_by : pandas.Series, optional
        Groups to fit the model on (same index); default ``segment``.

    Returns
    -------
    frame : pandas.DataFrame
        Indexed like ``measures``: ``segment``, ``fit`` (the key in ``fits`` of the fit used),
        ``probability_alive``, ``retention``, ``expected_purchases``, ``clv``.
    fits : dict of str to RetentionFit
        ``BASE_FIT`` ("all", the whole base) first, then every group.

    Raises
    ------
    ValueError
        When the horizon or the discount rate is impossible, the indexes differ, or nobody in
        the base has ended (churn cannot be estimated).
    """
    if int(horizon_months) != horizon_months or horizon_months < 1:
        raise ValueError(f"horizon_months must be a whole number >= 1, got {horizon_months!r}.")
    if not discount_rate > -1:
        raise ValueError(f"discount_rate must be > -1 (yearly), got {discount_rate!r}.")
    groups = segment if fit_by is None else fit_by
    for name, series in (("segment", segment), ("fit_by", groups)):
        if not series.index.equals(measures.index):
            raise ValueError(f"value: {name} must have the index of measures (customer_id).")

    base = fit_retention(measures["tenure_months"], ~measures["active"],
                         entered=_entered(measures))
    fits = {BASE_FIT: RetentionFit(base, len(measures), int((~measures["active"]).sum()),
                                   own=True)}
    keys = groups.astype(str)
    used = pd.Series(BASE_FIT, index=measures.index, name="fit")
    for key, members in measures.groupby(keys, sort=False):
        fits[key] = _group_fit(members, base)
        if fits[key].own:
            used[members.index] = key

    active = measures["active"].to_numpy(dtype=bool)
    columns = {name: np.zeros(len(measures)) for name in ("retention", "expected_purchases", "clv")}
    for key in used.unique():
        rows = np.flatnonzero((used.to_numpy() == key) & active)
        if not len(rows):
            continue
        valued = customer_values(fits[key].model, measures["tenure_months"].to_numpy()[rows],
                                 measures["monthly_margin"].to_numpy()[rows],
                                 discount_rate=discount_rate, horizon_months=horizon_months)
        for name, column in columns.items():
            column[rows] = valued[name].to_numpy()

    frame = pd.DataFrame(
        {
            "segment": segment,
            "fit": used,
            "probability_alive": active.astype(float),
            **columns,
        },
        index=measures.index,
    )
    return frame, fits


def segment_retention(valued: pd.DataFrame, by: str = "segment") -> pd.Series:
    """A segment's yearly retention: the share of its customers active now still active in 12
    months, sum(P(alive) x retention) / sum(P(alive)) over its customers.

    In a contractual business P(alive) is 1 or 0, so this is the mean ``retention`` of the
    segment's active customers: the definition the non-contractual models use
    (``crmkit.analysis.retention.yearly_retention``), so both read alike beside P(alive).

    Parameters
    ----------
    valued : pandas.DataFrame
        The frame of :func:`value` (columns ``probability_alive``, ``retention`` and ``by``).
    by : str
        The grouping column.

    Returns
    -------
    pandas.Series
        Per group, in [0, 1]; NaN for a group without an active customer (the churned ones).
    """
    alive = valued["probability_alive"].astype(float)
    kept = alive * valued["retention"].astype(float)
    grouped = valued[by]
    weight = alive.groupby(grouped, sort=False, observed=True).sum()
    result = kept.groupby(grouped, sort=False, observed=True).sum() / weight.where(weight > 0)
    return result.rename("retention")
