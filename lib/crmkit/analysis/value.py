"""Customer value: who is still buying, how much they will buy, and what they are worth.

This module holds the probabilistic customer-base models the workbook uses to turn a
transaction log into a customer lifetime value (CLV) per customer and per segment:

- :func:`summarise` turns transactions into the RFM summary (frequency, recency, T,
  monetary_value) the models need.
- :class:`BetaGeo` is the BG/NBD model of Fader, Hardie & Lee (2005): how many repeat
  purchases a customer will make and how likely it is that they are still "alive".
- :class:`GammaGamma` is the Gamma-Gamma model of monetary value (Fader, Hardie & Lee 2005,
  Hardie's note 025): what a customer's average purchase is really worth once the noise of a
  few purchases is shrunk towards the population mean.
- :func:`customer_lifetime_value` combines both into a discounted CLV, and
  :func:`segment_value` reports it per segment with bootstrap confidence intervals, because
  "there is no average customer": a consultant must see how certain each segment's figure is.

Why the models are written here on numpy/scipy instead of importing ``lifetimes``:
``lifetimes`` (0.11.3, the reference implementation) is unmaintained, imports
``pkg_resources`` (which new setuptools releases remove), emits deprecation warnings with
pandas 3, and pulls ``autograd`` and ``dill`` only to differentiate a four-parameter
likelihood. The likelihoods below are written in log space (``gammaln``, ``betaln``, a
``log1p``-based log-sum-exp, ``expit``) so customers with hundreds of purchases or very long
histories do not overflow, carry analytic gradients so L-BFGS-B converges in a few dozen cheap
evaluations, and collapse identical customer histories into weights before fitting. The names
and semantics follow ``lifetimes`` closely, so its users feel at home; ``lifetimes`` remains in
the test suite as the oracle the results are checked against, customer by customer.

References
----------
.. [1] Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005), "Counting Your Customers the Easy
   Way: An Alternative to the Pareto/NBD Model", Marketing Science 24 (2), 275-284.
.. [2] Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005), "RFM and CLV: Using Iso-Value
   Curves for Customer Base Analysis", Journal of Marketing Research 42 (4), 415-430.
.. [3] Hardie, B. G. S., "The Gamma-Gamma Model of Monetary Value" (2013),
   http://www.brucehardie.com/notes/025/
.. [4] Fader, P. S., Hardie, B. G. S. and Lee, K. L., "Computing P(alive) Using the BG/NBD
   Model", http://www.brucehardie.com/notes/021/
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

from crmkit.inputs import occasions

__all__ = [
    "BetaGeo",
    "ConvergenceError",
    "DEGENERATE_SHAPE",
    "FLAT_LOG_SE",
    "GammaGamma",
    "ModifiedBetaGeo",
    "NotFittedError",
    "ParetoNBD",
    "ShiftedBetaGeometric",
    "customer_lifetime_value",
    "distinct_histories",
    "frequency_value_correlation",
    "repeat_customers",
    "segment_value",
    "summarise",
]

#: How many offending rows an error message names; the count is always given in full.
EXAMPLES_SHOWN = 5

#: Model time units per month, as ``lifetimes.utils._customer_lifetime_value`` uses them, so
#: that a CLV computed here equals the one a ``lifetimes`` user already reports.
PERIODS_PER_MONTH = {"D": 30.0, "W": 4.345, "M": 1.0, "H": 30.0 * 24, "h": 30.0 * 24}

# Log-parameters are kept inside these bounds so that exp() can neither overflow nor reach
# zero while the optimiser explores; real fits sit many orders of magnitude inside.
_LOG_BOUND = 25.0

#: A fitted shape parameter (BG/NBD a or b, sBG alpha or beta, ...) beyond this marks a
#: degenerate fit.
DEGENERATE_SHAPE = 1e3

#: A log-parameter with a larger standard error than this (a factor e = 2.7 either way at one
#: standard error) marks the likelihood as flat.
FLAT_LOG_SE = 1.0

# Bootstrap draws per block: small enough for the indices and gathered values to stay in CPU
# cache (measured fastest around 10^5), large enough that Python overhead is negligible.
_BOOT_BLOCK = 1 << 17
#: Customers from which :func:`segment_value` averages its resamples in two threads (numpy's
#: gathering runs outside the GIL); at a million customers the bootstrap takes 0.6 times as long.
_BOOT_THREADED = 50_000


class _Background:
    """Calls run in ``threads`` threads, at most ``2 * threads`` waiting; in the caller's thread
    when ``threads`` is 0. Leaving the ``with`` block waits for every call (and raises the first
    error)."""

    def __init__(self, threads: int):
        self.threads, self.pool, self.pending = threads, None, []

    def __enter__(self) -> _Background:
        if self.threads:
            from concurrent.futures import ThreadPoolExecutor  # only a big client needs it

            self.pool = ThreadPoolExecutor(max_workers=self.threads)
        return self

    def run(self, fn, *args) -> None:
        if self.pool is None:
            fn(*args)
            return
        self.pending.append(self.pool.submit(fn, *args))
        if len(self.pending) > 2 * self.threads:
            self.pending.pop(0).result()

    def __exit__(self, *exc) -> None:
        if self.pool is None:
            return
        try:
            for future in self.pending:
                future.result()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)


class NotFittedError(ValueError, AttributeError):
    """A model was used before being fitted.

    Also an AttributeError so that ``hasattr(model, "params_")`` is False on an unfitted model,
    as code written for ``lifetimes`` expects.
    """


class ConvergenceError(RuntimeError):
    """The maximum-likelihood optimiser did not converge.

    Usually the data carry too little information for the model (very few repeat customers)
    or the data are not in the model's time unit; a small ``penalizer_coef`` often helps.
    """


# --------------------------------------------------------------------------------------------
# Input handling shared by the models
# --------------------------------------------------------------------------------------------


def _index_of(*values: Any) -> pd.Index | None:
    """Index of the first pandas Series among ``values``, so results keep customer ids."""
    for value in values:
        if isinstance(value, pd.Series):
            return value.index
    return None


def _as_float(value: Any, name: str) -> np.ndarray:
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from None


def _columns(names: Sequence[str], values: Sequence[Any], caller: str) -> list[np.ndarray]:
    """Convert equally long 1-D inputs of a fit to float arrays, or say which one is off."""
    arrays = [_as_float(v, n) for n, v in zip(names, values, strict=True)]
    for name, array in zip(names, arrays, strict=True):
        if array.ndim != 1:
            raise ValueError(f"{caller}: {name} must be one-dimensional, got shape {array.shape}.")
    lengths = {name: len(array) for name, array in zip(names, arrays, strict=True)}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{n}={k}" for n, k in lengths.items())
        raise ValueError(f"{caller}: inputs must have the same length, got {listed}.")
    if not arrays[0].size:
        raise ValueError(f"{caller}: no customers given (empty input).")
    return arrays


def _where(mask: np.ndarray, index: pd.Index | None) -> str:
    """Describe the first few rows flagged by ``mask`` by position and, if any, index label."""
    positions = np.flatnonzero(mask)[:EXAMPLES_SHOWN]
    text = "positions " + ", ".join(str(p) for p in positions)
    if index is not None and not index.equals(pd.RangeIndex(len(index))):
        text += " (index labels " + ", ".join(repr(index[p]) for p in positions) + ")"
    more = int(mask.sum()) - len(positions)
    return text + (f" and {more} more" if more > 0 else "")


def _raise_problems(
    caller: str,
    checks: list[tuple[np.ndarray, str]],
    index,
    n: int,
    header: str = "got impossible customer data",
) -> None:
    """Raise one ValueError listing every failed check, so all problems are fixed in one go."""
    lines = []
    for mask, what in checks:
        count = int(np.count_nonzero(mask))
        if count:
            lines.append(f"  - {count} of {n} rows have {what}: {_where(mask, index)}")
    if lines:
        raise ValueError(f"{caller} {header}:\n" + "\n".join(lines))


def _weights(weights: Any, n: int, caller: str, index) -> np.ndarray:
    if weights is None:
        return np.ones(n)
    w = _as_float(weights, "weights")
    if w.shape != (n,):
        raise ValueError(f"{caller}: weights must have one value per row ({n}), got {w.shape}.")
    _raise_problems(
        caller,
        [(~np.isfinite(w), "a missing or infinite weight"), (w < 0, "a negative weight")],
        index,
        n,
    )
    if not w.sum() > 0:
        raise ValueError(f"{caller}: the weights sum to zero; there is nothing to fit.")
    return w


def _unique_rows(columns: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    """Distinct rows of ``columns`` and, for every row, the number of its distinct row."""
    frame = pd.DataFrame({i: c for i, c in enumerate(columns)})
    codes = frame.groupby(list(frame.columns), sort=False).ngroup().to_numpy()
    _, first = np.unique(codes, return_index=True)
    if len(first) == len(codes):
        return columns, codes
    return [c[first] for c in columns], codes


def _compress(columns: list[np.ndarray], weights: np.ndarray):
    """Collapse identical rows into one row carrying the summed weight.

    Daily or weekly histories repeat a lot (every one-off buyer of a cohort looks the same), so
    the likelihood is evaluated once per distinct history, as Fader and Hardie do in their
    spreadsheets.
    """
    unique, codes = _unique_rows(columns)
    if len(unique[0]) == len(codes):
        return columns, weights
    return unique, np.bincount(codes, weights=weights, minlength=len(unique[0]))


def _minimise(
    fun, x0: np.ndarray, caller: str, allow_bound: bool = False, stop=None, curvature=False
) -> np.ndarray:
    """Minimise ``fun`` (value and gradient) over log-parameters; raise if it does not converge.

    BFGS first, as ``lifetimes`` does: with three or four parameters its dense update is
    trivial, and unlike L-BFGS-B it makes no BLAS/LAPACK calls, whose thread pool made fits
    several times slower and erratic on a busy machine. L-BFGS-B with bounds is the fallback
    when BFGS stops on a precision-loss warning away from the optimum.

    With ``allow_bound`` a log-parameter that ends on a bound (the likelihood keeps rising as a
    parameter runs to zero or infinity) is not an error: the gradient is then checked on the
    other parameters only, or not at all once a parameter is beyond DEGENERATE_SHAPE (or below
    its inverse), and the model reports the fit as degenerate instead.

    ``stop``, if given, is called after every BFGS iteration with the iterate and may end the
    search (see :class:`_RidgeStop`); the iterate it stopped at is then returned as is, without
    the convergence check, and the model reports why it stopped.
    """

    def bounded(theta):
        # Outside the bounds exp() would overflow; BFGS's line search may probe there.
        return fun(np.clip(theta, -_LOG_BOUND, _LOG_BOUND))

    options: dict[str, Any] = {"gtol": 1e-8}
    if curvature:
        # Start BFGS from the true curvature at x0 (k extra gradients) instead of the identity:
        # the likelihoods are badly scaled in log-parameters, and from the identity BFGS spends
        # dozens of iterations learning the scale (Gamma-Gamma: 30 to 80 evaluations, erratic).
        with np.errstate(all="ignore"):
            hess = _hessian(bounded, x0)
        if np.all(np.isfinite(hess)):
            eigen = np.linalg.eigvalsh(hess)
            if eigen.min() > 1e-8 * eigen.max() > 0:
                inverse = np.linalg.inv(hess)
                options["hess_inv0"] = (inverse + inverse.T) / 2
    result = minimize(bounded, x0, jac=True, method="BFGS", options=options, callback=stop)
    if stop is not None and stop.fired:
        return np.clip(stop.theta, -_LOG_BOUND, _LOG_BOUND)
    if allow_bound:
        result.x = np.clip(result.x, -_LOG_BOUND, _LOG_BOUND)
    if not result.success and np.max(np.abs(result.jac)) > 1e-6:
        bounds = [(-_LOG_BOUND, _LOG_BOUND)] * len(x0)
        start = np.clip(result.x if np.isfinite(result.fun) else x0, -_LOG_BOUND, _LOG_BOUND)
        retry = minimize(fun, start, jac=True, method="L-BFGS-B", bounds=bounds)
        if retry.fun <= result.fun or not np.isfinite(result.fun):
            result = retry
    on_bound = np.abs(result.x) >= _LOG_BOUND - 1e-6
    free = ~on_bound if allow_bound else np.ones(len(x0), dtype=bool)
    if allow_bound and np.any(np.abs(result.x) > np.log(DEGENERATE_SHAPE)):
        # Running off along a ridge towards a degenerate limit: the optimiser stops before a
        # bound; the model names the degeneracy rather than failing.
        free[:] = False
    gradient_norm = float(np.max(np.abs(result.jac[free]), initial=0.0))
    at_bound = np.any(on_bound) and not allow_bound
    if gradient_norm > 1e-6 or at_bound or not np.isfinite(result.fun):
        raise ConvergenceError(
            f"{caller} did not converge ({result.message}; largest gradient "
            f"{gradient_norm:.2g}). Check that the data are in the intended time unit, or try a "
            "small penalizer_coef such as 0.001."
        )
    return result.x


def _wrap(result: np.ndarray, index: pd.Index | None, name: str):
    """Return a Series on the customers' index when there is one, else an array or a float."""
    if result.ndim == 0:
        return float(result)
    if index is not None and result.ndim == 1 and len(result) == len(index):
        return pd.Series(result, index=index, name=name)
    return result


# --------------------------------------------------------------------------------------------
# Transaction log -> RFM summary
# --------------------------------------------------------------------------------------------


def summarise(
    transactions: pd.DataFrame,
    customer_id_col: str = "customer_id",
    datetime_col: str = "date",
    monetary_value_col: str | None = "amount",
    observation_period_end=None,
    freq: str = "D",
    freq_multiplier: float = 1,
    order_id_col: str | None = None,
) -> pd.DataFrame:
    """Summarise a transaction log into one RFM row per customer.

    Same semantics as ``lifetimes.utils.summary_data_from_transaction_data`` (with
    ``include_first_transaction=False``), vectorised: transactions are grouped into periods of
    ``freq``; a customer's first period is their birth; later periods with a purchase are repeat
    purchases.

    Parameters
    ----------
    transactions : pandas.DataFrame
        One row per transaction with at least the customer id, the date and, unless
        ``monetary_value_col`` is None, the amount. Dates may be strings or datetimes; pass
        ``datetime64`` columns for speed on large logs.
    customer_id_col, datetime_col : str
        Names of the customer id and date columns.
    monetary_value_col : str or None
        Name of the amount column; None when there are no amounts (then no
        ``monetary_value`` column is returned).
    observation_period_end : str, datetime or None
        Last day of the observation. Transactions after the period containing it are ignored.
        Defaults to the date of the last transaction.
    freq : str
        Period length: ``"D"`` (day), ``"W"`` (week, Monday to Sunday), ``"M"`` (calendar
        month), or any other pandas period alias (``"h"``, ``"Q"``, ``"Y"``). Recency and T are
        counted in whole periods; for ``"M"`` that is whole calendar months, which
        ``lifetimes`` cannot do with pandas >= 3.
    freq_multiplier : float
        Divide recency and T by this, e.g. ``freq="h", freq_multiplier=24`` for fractional days.
    order_id_col : str, optional
        Name of the order id column; when given and present, an occasion is an order instead
        of a period (crmkit passes ``"order_id"``; the default keeps ``lifetimes``' semantics).

    Returns
    -------
    pandas.DataFrame
        Indexed by customer id (sorted), columns ``frequency`` (number of repeat periods),
        ``recency`` (age at the last purchase), ``T`` (age at the end of the observation) and
        ``monetary_value`` (mean value of the repeat periods, 0 when frequency is 0), all float.

    Notes
    -----
    Negative amounts (returns, credit notes) are legitimate. A period is a purchase occasion
    when it holds a purchase line, a line of 0 or more: a free item or a fully discounted order
    is a visit, as in ``lifetimes``, which counts every transaction; a period of returns only is
    not, and is dropped before frequency, recency, T and monetary_value are computed. Amounts
    are summed per customer and period, so a return in the same period nets against the
    purchase (monetary_value may then be 0: :func:`repeat_customers` keeps the customers with a
    positive one, as the Gamma-Gamma model requires). Customers with no purchase line at all
    are left out of the summary. The number of dropped periods and customers is stored in
    ``result.attrs["periods_without_purchase"]`` and ``result.attrs["customers_without_purchase"]``.
    Without a monetary column every period with a transaction counts. With ``order_id_col``,
    an occasion is an order instead of a period
    (:mod:`crmkit.inputs.occasions`): two orders in one period are a purchase and a repeat
    purchase, and recency and T are still counted in periods of ``freq``.

    Examples
    --------
    >>> log = pd.DataFrame({"customer_id": [1, 1, 2], "amount": [10.0, 20.0, 5.0],
    ...                     "date": ["2024-01-01", "2024-01-05", "2024-01-03"]})
    >>> summarise(log)  # doctest: +NORMALIZE_WHITESPACE
                 frequency  recency    T  monetary_value
    customer_id
    1                  1.0      4.0  4.0            20.0
    2                  0.0      0.0  2.0             0.0
    """
    columns = [customer_id_col, datetime_col]
    if monetary_value_col is not None:
        columns.append(monetary_value_col)
    missing = [c for c in columns if c not in transactions.columns]
    if missing:
        raise ValueError(
            f"summarise: column(s) {missing} not found in the transactions; "
            f"columns present: {list(transactions.columns)}."
        )
    freq = {"H": "h"}.get(freq, freq)
    index = transactions.index
    ids = transactions[customer_id_col]
    dates = pd.to_datetime(transactions[datetime_col])
    if getattr(dates.dt, "tz", None) is not None:
        # A period is a local calendar day/week/month; UTC offsets would split local days.
        dates = dates.dt.tz_localize(None)
    checks = [(ids.isna().to_numpy(), "no customer id"), (dates.isna().to_numpy(), "no date")]
    if monetary_value_col is not None:
        amounts = _as_float(transactions[monetary_value_col], monetary_value_col)
        checks.append((~np.isfinite(amounts), f"a missing or non-numeric {monetary_value_col}"))
    _raise_problems("summarise", checks, index, len(transactions))

    ordinal = pd.DatetimeIndex(dates).to_period(freq).asi8
    if observation_period_end is None:
        end = int(ordinal.max()) if len(ordinal) else 0
    else:
        end = pd.Timestamp(observation_period_end).to_period(freq).ordinal
    keep = ordinal <= end
    ordinal = ordinal[keep]
    codes, customers = occasions.customer_codes(transactions, keep, customer_id_col)
    start = int(ordinal.min()) if len(ordinal) else 0
    span = int(ordinal.max()) - start + 1 if len(ordinal) else 1
    if len(customers) * span >= 2**62:
        raise ValueError(f"summarise: freq={freq!r} is too fine for a log this long.")

    # One occasion per customer and period, or per order when asked for order ids
    # (crmkit.inputs.occasions); they come sorted by customer, then period, so first and last
    # periods are simply the first and last occasions of each customer's run.
    orders = (transactions[order_id_col].to_numpy()[keep]
              if order_id_col is not None and order_id_col in transactions.columns else None)
    if (occasions.is_shared(transactions) and keep.all() and freq == "D"
            and (customer_id_col, datetime_col, monetary_value_col)
            == ("customer_id", "date", "amount")
            and (orders is None) == (occasions.ORDER_COLUMN not in transactions.columns)
            and (orders is None or order_id_col == occasions.ORDER_COLUMN)):
        # the whole log by day: the same occasions as occasions.find's (day numbers are the
        # days' period ordinals), which the RFM table may have found already
        found = occasions.find(transactions)[0]
        customer, period = found.customer, found.time - start
    else:
        found = occasions.group(codes, ordinal - start,
                                None if monetary_value_col is None else amounts[keep], orders)
        customer, period = found.customer, found.time

    dropped_periods = 0
    if monetary_value_col is not None:
        bought = found.purchase
        dropped_periods = int(len(found) - bought.sum())
        customer, period, totals = customer[bought], period[bought], found.amount[bought]

    boundary = np.flatnonzero(np.diff(customer)) + 1
    first = np.concatenate(([0], boundary))
    last = np.concatenate((boundary, [len(customer)])) - 1
    if not len(customer):
        first = last = np.empty(0, dtype=np.int64)
    frequency = (last - first).astype(float)
    birth = period[first]
    result = pd.DataFrame(
        {
            "frequency": frequency,
            "recency": (period[last] - birth) / freq_multiplier,
            "T": (end - start - birth) / freq_multiplier,
        },
        index=pd.Index(customers[customer[first]], name=customer_id_col),
    ).astype(float)
    if monetary_value_col is not None:
        is_first = np.zeros(len(customer), dtype=bool)
        is_first[first] = True
        local = np.repeat(np.arange(len(first)), last - first + 1)
        repeat_total = np.bincount(
            local, weights=np.where(is_first, 0.0, totals), minlength=len(first)
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(frequency > 0, repeat_total / frequency, 0.0)
        result["monetary_value"] = mean
        result.attrs["periods_without_purchase"] = dropped_periods
        result.attrs["customers_without_purchase"] = len(customers) - len(first)
    return result


def distinct_histories(frequency, recency, T) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                       np.ndarray]:
    """The distinct ``(frequency, recency, T)`` histories and how many customers have each.

    A total over customers of a per-history quantity (expected purchases, P(alive)) is the total
    over distinct histories weighted by these counts, computed once per history as the fits are:
    a base of a million customers has far fewer distinct histories (every one-off buyer of a day
    looks the same).

    Returns
    -------
    frequency, recency, T, counts : numpy.ndarray
        One entry per distinct history, in order of first appearance.
    """
    x, tx, age, codes = history_codes(frequency, recency, T)
    return x, tx, age, np.bincount(codes, minlength=len(x))


def history_codes(frequency, recency, T) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                  np.ndarray]:
    """The distinct ``(frequency, recency, T)`` histories and, per customer, which one is theirs.

    A per-customer quantity (P(alive), expected purchases) is a function of the history alone:
    computed once per distinct history and spread back with ``result[codes]``, it is the same
    number for every customer, for a fraction of the work.

    Returns
    -------
    frequency, recency, T : numpy.ndarray
        One entry per distinct history, in order of first appearance.
    codes : numpy.ndarray of int
        For each customer, the position of their history in those arrays.
    """
    columns = _columns(("frequency", "recency", "T"), (frequency, recency, T), "history_codes")
    (x, tx, age), codes = _unique_rows(columns)
    return x, tx, age, codes


def repeat_customers(summary: pd.DataFrame) -> pd.DataFrame:
    """Keep the customers the Gamma-Gamma model can be fitted on.

    Parameters
    ----------
    summary : pandas.DataFrame
        An RFM summary with ``frequency`` and ``monetary_value`` columns, as returned by
        :func:`summarise`.

    Returns
    -------
    pandas.DataFrame
        The rows with ``frequency > 0`` and ``monetary_value > 0``.
    """
    missing = [c for c in ("frequency", "monetary_value") if c not in summary.columns]
    if missing:
        raise ValueError(f"repeat_customers: summary lacks column(s) {missing}.")
    return summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]


# --------------------------------------------------------------------------------------------
# BG/NBD
# --------------------------------------------------------------------------------------------


class _Histories(NamedTuple):
    """Customer histories prepared once per fit, reused by every likelihood evaluation."""

    x: np.ndarray
    tx: np.ndarray
    T: np.ndarray
    w: np.ndarray
    x_unique: np.ndarray  # distinct frequencies
    w_unique: np.ndarray  # total weight per distinct frequency
    repeat: np.ndarray  # x > 0
    x_minus_1: np.ndarray  # max(x, 1) - 1, the dropout term's offset

    @classmethod
    def of(cls, x, tx, T, w) -> _Histories:
        x_unique, inverse = np.unique(x, return_inverse=True)
        w_unique = np.bincount(inverse, weights=w, minlength=len(x_unique))
        return cls(x, tx, T, w, x_unique, w_unique, x > 0, np.maximum(x, 1) - 1)


def _wsum(weights: np.ndarray, values: np.ndarray) -> float:
    """Weighted sum without BLAS.

    ``np.dot`` on long vectors goes to OpenBLAS, whose thread pool made each likelihood
    evaluation 3 to 6 times slower and erratic on a shared two-core machine; numpy's own pairwise
    sum is single-threaded, predictable and as accurate.
    """
    return float(np.multiply(weights, values).sum())


def _bg_log_likelihood(params, h: _Histories, with_gradient: bool):
    """Weighted BG/NBD log-likelihood (eq. 6 of [1]) and its gradient in (r, alpha, a, b).

    Terms that depend on frequency only are evaluated once per distinct frequency: there are
    rarely more than a few hundred, against up to millions of customers.
    """
    r, alpha, a, b = params
    xu, wx, w = h.x_unique, h.w_unique, h.w
    ll_x = gammaln(r + xu) - gammaln(r) + r * np.log(alpha) + betaln(a, b + xu) - betaln(a, b)

    rx = r + h.x
    log_at = np.log(alpha + h.T)
    log_ar = np.log(alpha + h.tx)
    b_x = b + h.x_minus_1
    a3 = -rx * log_at
    a4 = np.log(a) - np.log(b_x) - rx * log_ar
    # log(exp(A3) + exp(A4)) = max + log1p(exp(-|A4 - A3|)). Written out rather than with
    # np.logaddexp, which is not vectorised and 5x slower; the exponent is capped at -50
    # (exp(-50) ~ 2e-22, below rounding) because libm's exp takes a slow path near underflow.
    d = a4 - a3
    e = np.exp(np.maximum(-np.abs(d), -50.0))
    # The dropout branch (A4) exists only for customers with a repeat purchase.
    tail = np.where(h.repeat, np.maximum(a3, a4) + np.log1p(e), a3)
    ll = _wsum(wx, ll_x) + _wsum(w, tail)
    if not with_gradient:
        return ll, None

    # Share of the dropout branch in each customer's likelihood, expit(A4 - A3), from the same
    # capped exponential; 0 for one-off buyers.
    share = np.where(h.repeat, np.where(d >= 0, 1.0, e) / (1.0 + e), 0.0)
    alive = 1.0 - share
    psi_ab = digamma(a + b)
    psi_abx = digamma(a + b + xu)
    g = np.empty(4)
    g[0] = _wsum(wx, digamma(r + xu) - digamma(r) + np.log(alpha)) - _wsum(
        w, alive * log_at + share * log_ar
    )
    g[1] = wx.sum() * r / alpha - _wsum(w, rx * (alive / (alpha + h.T) + share / (alpha + h.tx)))
    g[2] = _wsum(wx, psi_ab - psi_abx) + _wsum(w, share) / a
    g[3] = _wsum(wx, digamma(b + xu) - digamma(b) + psi_ab - psi_abx) - _wsum(w, share / b_x)
    return ll, g


def _bg_check(frequency, recency, T, caller: str) -> list[np.ndarray]:
    index = _index_of(frequency, recency, T)
    x, tx, age = _columns(("frequency", "recency", "T"), (frequency, recency, T), caller)
    n = len(x)
    finite = np.isfinite(x) & np.isfinite(tx) & np.isfinite(age)
    with np.errstate(invalid="ignore"):
        checks = [
            (~finite, "a missing (NaN) or infinite frequency, recency or T"),
            (finite & ((x < 0) | (tx < 0) | (age < 0)), "a negative frequency, recency or T"),
            (finite & (x != np.round(x)), "a non-integer frequency"),
            (finite & (tx > age), "recency > T (last purchase after the end of observation)"),
            (finite & (x > 0) & (tx == 0), "frequency > 0 but recency 0"),
            (finite & (x == 0) & (tx != 0), "frequency 0 but recency > 0"),
        ]
    _raise_problems(caller, checks, index, n)
    if not age.max() > 0:
        raise ValueError(f"{caller}: every customer has T == 0; there is no history to fit.")
    if not np.any(x > 0):
        # The likelihood then has no maximum (r -> 0): the optimiser would return nonsense.
        raise ValueError(
            f"{caller}: no customer has a repeat purchase (every frequency is 0), so purchase "
            "and dropout rates cannot be estimated."
        )
    return [x, tx, age]


def _hessian(objective, theta: np.ndarray, numeric_gradient: bool = False) -> np.ndarray:
    """Hessian of ``objective`` (value, gradient) at ``theta``: central differences of the
    gradient, with a larger step when the gradient is itself a finite difference."""
    h = 1e-4 if numeric_gradient else 1e-5
    columns = [(objective(theta + h * e)[1] - objective(theta - h * e)[1]) / (2 * h)
               for e in np.eye(len(theta))]
    hess = np.array(columns)
    return (hess + hess.T) / 2


class _ParametricModel:
    """What the models share: parameters set by ``fit()`` or ``from_params()``, shown alike,
    and the degeneracy checks of :meth:`diagnostics`."""

    param_names: tuple[str, ...] = ()
    #: How to fit the model, for the error raised when it is used unfitted.
    fit_call = ".fit(...)"
    #: Shape parameters whose estimate beyond DEGENERATE_SHAPE marks a degenerate fit.
    shape_params: tuple[str, ...] = ()

    def __init__(self) -> None:
        self._params: pd.Series | None = None
        self.log_likelihood_: float | None = None
        self.n_customers_: float | None = None
        self._fit_issues: dict[str, str] = {}

    def _record_fit(
        self, objective, theta, total: float, numeric_gradient=False, hessian=None, stopped=None
    ) -> None:
        """Keep what :meth:`diagnostics` needs from the optimum: bounds hit, flatness.

        ``hessian``, if given, returns the Hessian of the (mean) objective at ``theta`` in one
        call, instead of differencing ``objective``'s gradient. ``stopped`` is the reason the
        optimiser was stopped early on a ridge (:class:`_RidgeStop`): the fit is then known to
        be degenerate, and neither the gradient nor the curvature is worth computing.
        """
        names = np.array(self.param_names)
        issues: dict[str, str] = {}
        if stopped is not None:
            self._fit_issues = {"no_dropout": stopped}
            return
        on_bound = np.abs(theta) >= _LOG_BOUND - 1e-6
        with np.errstate(all="ignore"):
            gradient = np.max(np.abs(objective(theta)[1]))
        if not gradient <= 1e-6:
            issues["not_converged"] = (
                f"the optimiser stopped with gradient {gradient:.2g} while the parameters ran off "
                "towards a degenerate limit: the likelihood has no proper maximum."
            )
        if on_bound.any():
            issues["parameter_at_bound"] = (
                f"{', '.join(names[on_bound])} ran to the edge of the search space "
                f"(exp(+-{_LOG_BOUND:g})): the likelihood has no interior maximum."
            )
        with np.errstate(all="ignore"):
            if hessian is not None:
                hess = hessian(theta) * total
            else:
                hess = _hessian(objective, theta, numeric_gradient) * total
        free = ~on_bound
        hess = hess[np.ix_(free, free)]
        if hess.size:
            eigen = np.linalg.eigvalsh(hess) if np.all(np.isfinite(hess)) else np.array([np.nan])
            if not np.all(np.isfinite(eigen)) or eigen.min() <= 1e-12 * max(eigen.max(), 1.0):
                issues["flat_likelihood"] = (
                    "the likelihood is flat at the optimum (its curvature is not positive in "
                    "every direction): the data do not determine the parameters."
                )
            else:
                se = np.sqrt(np.diag(np.linalg.inv(hess)))
                loose = se > FLAT_LOG_SE
                if loose.any():
                    shown = ", ".join(
                        f"log({n}) +-{e:.2g}" for n, e in zip(names[free][loose], se[loose],
                                                             strict=True)
                    )
                    issues["flat_likelihood"] = (
                        f"the likelihood is flat: standard error {shown} (limit {FLAT_LOG_SE:g}); "
                        "the data do not determine these parameters."
                    )
        self._fit_issues = issues

    def diagnostics(self) -> dict[str, str]:
        """Why the fit is degenerate, if it is: reason key -> explanation in words.

        A fit is degenerate when a parameter ran to a bound of the search space
        (``"parameter_at_bound"``), a shape parameter listed in ``shape_params`` is beyond
        :data:`DEGENERATE_SHAPE` (``"shape_beyond_1e3"``: e.g. BG/NBD a or b > 1000, i.e. the
        heterogeneity the model is built on has vanished), or the likelihood is flat at the
        optimum (``"flat_likelihood"``: the Hessian of the log-likelihood in log-parameters is
        not positive definite, or some log-parameter has a standard error above
        :data:`FLAT_LOG_SE`), or the optimiser stopped on a ridge running to such a limit
        (``"not_converged"``), or, for the Pareto/NBD, the optimiser was stopped while running
        along the ridge towards "nobody ever drops out" (``"no_dropout"``: the model without
        dropout fits as well, see :class:`ParetoNBD`). A model built with ``from_params`` is
        only checked on its shapes.

        Returns
        -------
        dict of str to str
            Empty when the fit is sound.
        """
        params = self.params
        issues = dict(self._fit_issues)
        big = [n for n in self.shape_params if params[n] > DEGENERATE_SHAPE]
        if big:
            shown = ", ".join(f"{n}={params[n]:.4g}" for n in big)
            issues["shape_beyond_1e3"] = (
                f"{shown} beyond {DEGENERATE_SHAPE:g}: the mixing distribution has collapsed to "
                "a point, the fit is degenerate."
            )
        return issues

    @property
    def degenerate(self) -> bool:
        """True when :meth:`diagnostics` finds a reason to distrust the fit."""
        return bool(self.diagnostics())

    @classmethod
    def _with_params(cls, values):
        values = np.array(values, dtype=float)
        if not np.all(np.isfinite(values) & (values > 0)):
            raise ValueError(f"{cls.__name__} parameters must be positive and finite, "
                             f"got {values}.")
        model = cls()
        model._params = pd.Series(values, index=list(cls.param_names), name=cls.__name__)
        return model

    @property
    def params(self) -> pd.Series:
        """Fitted parameters as a Series, in the order of ``param_names``."""
        if self._params is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted yet: call "
                                 f"{self.fit_call} first.")
        return self._params

    #: ``lifetimes`` spelling of :attr:`params`.
    params_ = params

    def __repr__(self) -> str:
        name = type(self).__name__
        if self._params is None:
            return f"<{name}: not fitted>"
        shown = ", ".join(f"{k}={v:.4g}" for k, v in self._params.items())
        return f"<{name}: {shown}>"


class _Predictions:
    """The prediction verbs every repeat-purchase model shares, on its private kernels
    ``_probability_alive(x, tx, age)`` and ``_expected_purchases(t, x, tx, age)``."""

    def probability_alive(self, frequency, recency, T):
        """Probability that a customer with this history has not dropped out (P(alive)).

        Parameters
        ----------
        frequency, recency, T : array_like or float
            The customers' histories, as in :meth:`fit`. Broadcast together.

        Returns
        -------
        pandas.Series, numpy.ndarray or float
            A Series on the input's index when a Series was given.
        """
        index = _index_of(frequency, recency, T)
        x = _as_float(frequency, "frequency")
        tx = _as_float(recency, "recency")
        age = _as_float(T, "T")
        with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
            alive = self._probability_alive(x, tx, age)
        return _wrap(alive, index, "probability_alive")

    def expected_purchases(self, t, frequency, recency, T):
        """Expected number of repeat purchases in the next ``t`` time units, given a history.

        The same quantity as ``lifetimes``'
        ``conditional_expected_number_of_purchases_up_to_time``; the model's class docstring
        (and its ``_expected_purchases``) gives the formula.

        Parameters
        ----------
        t : array_like or float
            Length of the future period, in the data's time unit.
        frequency, recency, T : array_like or float
            The customers' histories. Broadcast with ``t``.

        Returns
        -------
        pandas.Series, numpy.ndarray or float
            A Series on the input's index when a Series was given and the result is 1-D.
        """
        index = _index_of(frequency, recency, T, t)
        t = _as_float(t, "t")
        x = _as_float(frequency, "frequency")
        tx = _as_float(recency, "recency")
        age = _as_float(T, "T")
        return _wrap(self._expected_purchases(t, x, tx, age), index, "expected_purchases")

    def expected_purchases_each(self, times, frequency, recency, T):
        """:meth:`expected_purchases` at each of ``times`` in turn, for the same histories.

        The arrays are those of a loop over ``times``, bit for bit. A model whose term in
        ``t`` depends on the frequency and the age alone (BG/NBD, MBG/NBD) evaluates it once
        per distinct (frequency, age) pair, and what does not depend on ``t`` once: a million
        customers' 420,000 distinct histories hold 24,000 such pairs, and a valuation asks for
        36 months and a holdout for 26 weeks.

        Parameters
        ----------
        times : sequence of float
            Lengths of the future period, in the data's time unit.
        frequency, recency, T : array_like
            The customers' histories, one-dimensional, of one length.

        Yields
        ------
        numpy.ndarray
            The expected purchases of every history, one array per time.
        """
        x = _as_float(frequency, "frequency")
        tx = _as_float(recency, "recency")
        age = _as_float(T, "T")
        times = np.asarray(times, dtype=float)
        if x.ndim == 1 and x.shape == tx.shape == age.shape and len(x):
            yield from self._expected_purchases_each(times, x, tx, age)
        else:
            for t in times:
                yield self._expected_purchases(t, x, tx, age)

    def _expected_purchases_each(self, times, x, tx, age):
        for t in times:
            yield self._expected_purchases(t, x, tx, age)

    def expected_purchases_new_customer(self, t):
        """Expected number of repeat purchases in ``t`` time units of a new, random customer.

        ``lifetimes``' ``expected_number_of_purchases_up_to_time``.

        Parameters
        ----------
        t : array_like or float
            Time since the first purchase, in the data's time unit.

        Returns
        -------
        pandas.Series, numpy.ndarray or float
        """
        index = _index_of(t)
        t = _as_float(t, "t")
        zero = np.zeros_like(t)
        return _wrap(self._expected_purchases(t, zero, zero, zero), index, "expected_purchases")

    # lifetimes names, so code written for its fitters keeps working.
    def conditional_expected_number_of_purchases_up_to_time(self, t, frequency, recency, T):
        """``lifetimes`` name of :meth:`expected_purchases`."""
        return self.expected_purchases(t, frequency, recency, T)

    def conditional_probability_alive(self, frequency, recency, T):
        """``lifetimes`` name of :meth:`probability_alive`."""
        return self.probability_alive(frequency, recency, T)

    def expected_number_of_purchases_up_to_time(self, t):
        """``lifetimes`` name of :meth:`expected_purchases_new_customer`."""
        return self.expected_purchases_new_customer(t)

    predict = conditional_expected_number_of_purchases_up_to_time


class BetaGeo(_Predictions, _ParametricModel):
    """The BG/NBD ("beta-geometric / negative binomial") model of repeat purchasing.

    Each customer buys as a Poisson process with rate lambda while alive and, after each
    repeat purchase, drops out for good with probability p; lambda ~ Gamma(r, alpha) and
    p ~ Beta(a, b) across customers (Fader, Hardie & Lee 2005). Equivalent to
    ``lifetimes.BetaGeoFitter``; method names follow the paper's quantities, and the
    ``lifetimes`` names are kept as aliases.

    Attributes
    ----------
    params : pandas.Series
        Fitted ``r, alpha, a, b``; ``alpha`` is in the time unit of the data.
    log_likelihood_ : float
        Total (weighted, unpenalised) log-likelihood at the fitted parameters.
    n_customers_ : float
        Number of customers (sum of weights) the model was fitted on.

    Examples
    --------
    Fit with ``BetaGeo().fit(summary["frequency"], summary["recency"], summary["T"])``; here
    the published CDNOW estimates (time in weeks) and CDNOW's first customer:

    >>> bg = BetaGeo.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
    >>> round(bg.probability_alive(2, 30.43, 38.86), 3)
    0.727
    >>> round(bg.expected_purchases(39, 2, 30.43, 38.86), 3)
    1.226
    """

    param_names = ("r", "alpha", "a", "b")
    fit_call = ".fit(frequency, recency, T)"
    shape_params = ("a", "b")

    @classmethod
    def from_params(cls, r: float, alpha: float, a: float, b: float) -> BetaGeo:
        """Build a model with known parameters, e.g. from an earlier fit or a simulation.

        Parameters
        ----------
        r, alpha, a, b : float
            Positive model parameters; ``alpha`` in the time unit of the data.

        Returns
        -------
        BetaGeo
        """
        return cls._with_params([r, alpha, a, b])

    def fit(
        self,
        frequency,
        recency,
        T,
        weights=None,
        penalizer_coef: float = 0.0,
        initial_params=None,
    ) -> BetaGeo:
        """Fit the model by maximum likelihood.

        Parameters
        ----------
        frequency : array_like
            Number of repeat purchases (x), integers >= 0.
        recency : array_like
            Age of the customer at the last purchase (t_x); 0 when frequency is 0.
        T : array_like
            Age of the customer at the end of the observation, same unit as recency.
        weights : array_like, optional
            Number of customers with each history, for data already condensed the way Fader
            and Hardie do; default one per row.
        penalizer_coef : float
            L2 penalty on the parameters, added to the mean negative log-likelihood exactly as
            ``lifetimes`` does: on (r, alpha, a, b) with time rescaled so that the largest T is
            1. Helps convergence on small or odd data; 0 gives the maximum-likelihood fit.
        initial_params : sequence of 4 floats, optional
            Starting values of ``r, alpha, a, b`` in the data's time unit (not the log-scaled
            values ``lifetimes`` expects). Default: ``lifetimes``' own starting point.

        Returns
        -------
        BetaGeo
            ``self``, fitted.

        Raises
        ------
        ValueError
            For impossible histories: NaN, negative values, non-integer frequency, recency > T,
            frequency > 0 with recency 0 or frequency 0 with recency > 0. The message says
            how many rows and names the first few.
        ConvergenceError
            When the optimiser fails.
        """
        x, tx, age = _bg_check(frequency, recency, T, "BetaGeo.fit")
        index = _index_of(frequency, recency, T)
        w = _weights(weights, len(x), "BetaGeo.fit", index)
        (x, tx, age), w = _compress([x, tx, age], w)
        # Rescale time so that the largest T is 1: alpha then lives near 1 whatever the unit
        # (days, weeks), which keeps the optimisation well conditioned; lifetimes does the same.
        scale = 1.0 / age.max()
        scaled = _Histories.of(x, tx * scale, age * scale, w)
        total = w.sum()

        def objective(theta):
            params = np.exp(theta)
            ll, grad = _bg_log_likelihood(params, scaled, with_gradient=True)
            value = -ll / total + penalizer_coef * np.sum(params**2)
            return value, -grad * params / total + 2.0 * penalizer_coef * params**2

        if initial_params is None:
            start = np.full(4, 0.1)
        else:
            start_params = _as_float(initial_params, "initial_params")
            if start_params.shape != (4,) or not np.all(start_params > 0):
                raise ValueError("initial_params must be 4 positive numbers: r, alpha, a, b.")
            start = np.log(start_params * np.array([1.0, scale, 1.0, 1.0]))
        with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
            theta = _minimise(objective, start, "BetaGeo.fit")
        fitted = np.exp(theta)
        fitted[1] /= scale
        self._params = pd.Series(fitted, index=list(self.param_names), name="BetaGeo")
        natural = _Histories.of(x, tx, age, w)
        self.log_likelihood_, _ = _bg_log_likelihood(fitted, natural, with_gradient=False)
        self.n_customers_ = float(total)
        self._record_fit(objective, theta, total)
        return self

    def _probability_alive(self, x, tx, age):
        # expit(-log odds of dropout) (Hardie's note 021): exact, warning-free for any history
        r, alpha, a, b = self.params.to_numpy()
        log_odds = (
            np.log(a)
            - np.log(b + np.maximum(x, 1) - 1)
            + (r + x) * (np.log(alpha + age) - np.log(alpha + tx))
        )
        return np.where(x > 0, expit(-log_odds), 1.0)

    def _expected_purchases(self, t, x, tx, age):
        # Equation (10) of Fader, Hardie & Lee (2005); the 2F1 term after Euler's transformation,
        # (1-z)^(r+x) 2F1(r+x, b+x; a+b+x-1; z) = (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z), whose
        # first two arguments do not grow with x: no overflow or lost precision for heavy buyers.
        # With x = tx = age = 0 it is equation (9), the new customer's expectation.
        r, alpha, a, b = self.params.to_numpy()
        return (a + b + x - 1) / (a - 1) * self._gap(t, x, age) * self._probability_alive(
            x, tx, age)

    def _gap(self, t, x, age):
        """The term of equation (10) in ``t``: a function of the frequency and the age alone."""
        r, alpha, a, b = self.params.to_numpy()
        log_1mz = np.log(alpha + age) - np.log(alpha + age + t)
        z = t / (alpha + age + t)
        hyp = hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z)
        with np.errstate(divide="ignore", invalid="ignore"):
            # 1 - (1-z)^(a-1) * 2F1 via expm1: for short horizons the two terms nearly cancel.
            log_tail = (a - 1) * log_1mz + np.log(hyp)
            return np.where(hyp > 0, -np.expm1(log_tail), 1 - np.exp((a - 1) * log_1mz) * hyp)

    def _expected_purchases_each(self, times, x, tx, age):
        r, alpha, a, b = self.params.to_numpy()
        (x_pair, age_pair), pair = _unique_rows([x, age])
        scale = (a + b + x - 1) / (a - 1)
        alive = self._probability_alive(x, tx, age)
        for t in times:
            yield scale * self._gap(t, x_pair, age_pair)[pair] * alive


# --------------------------------------------------------------------------------------------
# MBG/NBD and Pareto/NBD
# --------------------------------------------------------------------------------------------


class _PurchaseModel(_Predictions, _ParametricModel):
    """Fit and prediction plumbing shared by the non-contractual models added after BetaGeo.

    Subclasses give ``param_names`` (time-scale parameters listed in ``_time_params``), a
    ``_prepare(x, tx, T, w)`` that builds the likelihood's data, a
    ``_log_likelihood(params, data, with_gradient)`` and the ``_probability_alive`` and
    ``_expected_purchases`` kernels.
    """

    fit_call = ".fit(frequency, recency, T)"
    _time_params: tuple[str, ...] = ()
    #: Start of the optimiser, in time rescaled so that the largest T is 1.
    _start: tuple[float, ...] = ()
    #: The gradient is a finite difference: the Hessian takes a larger step.
    _numeric_gradient = False

    def fit(
        self,
        frequency,
        recency,
        T,
        weights=None,
        penalizer_coef: float = 0.0,
        initial_params=None,
    ):
        """Fit the model by maximum likelihood.

        Parameters
        ----------
        frequency : array_like
            Number of repeat purchases (x), integers >= 0.
        recency : array_like
            Age of the customer at the last purchase (t_x); 0 when frequency is 0.
        T : array_like
            Age of the customer at the end of the observation, same unit as recency.
        weights : array_like, optional
            Number of customers with each history; default one per row.
        penalizer_coef : float
            L2 penalty on the parameters (time rescaled so that the largest T is 1) added to the
            mean negative log-likelihood, as in :meth:`BetaGeo.fit`. 0 gives the
            maximum-likelihood fit.
        initial_params : sequence of 4 floats, optional
            Starting values of the parameters, in the data's time unit.

        Returns
        -------
        self
            Fitted. Check :meth:`diagnostics` (or :attr:`degenerate`) before using it.

        Raises
        ------
        ValueError
            For impossible histories, as :meth:`BetaGeo.fit`.
        ConvergenceError
            When the optimiser fails (a parameter running to a bound is reported by
            :meth:`diagnostics` instead).
        """
        caller = f"{type(self).__name__}.fit"
        x, tx, age = _bg_check(frequency, recency, T, caller)
        index = _index_of(frequency, recency, T)
        w = _weights(weights, len(x), caller, index)
        (x, tx, age), w = _compress([x, tx, age], w)
        scale = 1.0 / age.max()
        to_scaled = np.array([scale if n in self._time_params else 1.0 for n in self.param_names])
        scaled = self._prepare(x, tx * scale, age * scale, w)
        total = w.sum()
        k = len(self.param_names)

        def objective(theta):
            params = np.exp(theta)
            ll, grad = self._log_likelihood(params, scaled, with_gradient=True)
            value = -ll / total + penalizer_coef * np.sum(params**2)
            return value, -grad * params / total + 2.0 * penalizer_coef * params**2

        if initial_params is None:
            start = np.log(np.array(self._start))
        else:
            start_params = _as_float(initial_params, "initial_params")
            if start_params.shape != (k,) or not np.all(start_params > 0):
                raise ValueError(
                    f"initial_params must be {k} positive numbers: {', '.join(self.param_names)}."
                )
            start = np.log(start_params * to_scaled)
        with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
            # The ridge test compares likelihoods, which a penalty would shift: only without one.
            stop = self._ridge_stop(scaled, to_scaled) if penalizer_coef == 0 else None
            theta = _minimise(objective, start, caller, allow_bound=True, stop=stop)
            fitted = np.exp(theta) / to_scaled
            self._params = pd.Series(fitted, index=list(self.param_names), name=type(self).__name__)
            natural = self._prepare(x, tx, age, w)
            self.log_likelihood_, _ = self._log_likelihood(fitted, natural, with_gradient=False)
            self._record_fit(
                objective,
                theta,
                total,
                numeric_gradient=self._numeric_gradient,
                hessian=self._objective_hessian(scaled, total, penalizer_coef),
                stopped=stop.reason if stop is not None and stop.fired else None,
            )
        self.n_customers_ = float(total)
        return self

    def _ridge_stop(self, data, to_scaled):
        """A BFGS callback that stops a fit running off along a degenerate ridge, or None."""
        return None

    def _objective_hessian(self, data, total, penalizer_coef):
        """A function giving the objective's Hessian in one call, or None to difference the
        gradient."""
        return None


def _mbg_log_likelihood(params, h: _Histories, with_gradient: bool):
    """Weighted MBG/NBD log-likelihood and its gradient in (r, alpha, a, b).

    Per customer (Batislam et al. 2007, with Wagner & Hoppe's 2008 erratum):
    ln[Gamma(r+x) alpha^r / Gamma(r)] + ln[B(a, b+x+1) / B(a, b)]
    + ln[(alpha+T)^-(r+x) + a/(b+x) (alpha+t_x)^-(r+x)]; unlike the BG/NBD the dropout branch
    exists for one-off buyers too.
    """
    r, alpha, a, b = params
    xu, wx, w = h.x_unique, h.w_unique, h.w
    ll_x = (
        gammaln(r + xu) - gammaln(r) + r * np.log(alpha) + betaln(a, b + xu + 1) - betaln(a, b)
    )
    rx = r + h.x
    log_at = np.log(alpha + h.T)
    log_ar = np.log(alpha + h.tx)
    b_x = b + h.x
    a3 = -rx * log_at
    a4 = np.log(a) - np.log(b_x) - rx * log_ar
    d = a4 - a3
    e = np.exp(np.maximum(-np.abs(d), -50.0))
    ll = _wsum(wx, ll_x) + _wsum(w, np.maximum(a3, a4) + np.log1p(e))
    if not with_gradient:
        return ll, None
    share = np.where(d >= 0, 1.0, e) / (1.0 + e)  # weight of the dropout branch
    alive = 1.0 - share
    psi_ab = digamma(a + b)
    psi_abx = digamma(a + b + xu + 1)
    g = np.empty(4)
    g[0] = _wsum(wx, digamma(r + xu) - digamma(r) + np.log(alpha)) - _wsum(
        w, alive * log_at + share * log_ar
    )
    g[1] = wx.sum() * r / alpha - _wsum(w, rx * (alive / (alpha + h.T) + share / (alpha + h.tx)))
    g[2] = _wsum(wx, psi_ab - psi_abx) + _wsum(w, share) / a
    g[3] = _wsum(wx, digamma(b + xu + 1) - digamma(b) + psi_ab - psi_abx) - _wsum(w, share / b_x)
    return ll, g


class ModifiedBetaGeo(_PurchaseModel):
    """The MBG/NBD model: the BG/NBD in which one-time buyers may drop out too.

    As :class:`BetaGeo`, a customer buys as a Poisson process with rate lambda ~ Gamma(r, alpha)
    while alive, but the dropout coin p ~ Beta(a, b) is tossed at the first purchase as well as
    after every repeat purchase (Batislam, Denizel & Filiztekin 2007; Wagner & Hoppe 2008), so a
    customer who never came back is not assumed alive. Equivalent to
    ``lifetimes.ModifiedBetaGeoFitter``.

    P(alive) = 1 / (1 + a/(b+x) ((alpha+T)/(alpha+t_x))^(r+x)), and the expected number of
    purchases in the next t is

    (a+b+x)/(a-1) [1 - (1-z)^(a-1) 2F1(a+b-r, a-1; a+b+x; z)] P(alive), z = t/(alpha+T+t),

    the Wagner-Hoppe formula after Euler's transformation (as in :class:`BetaGeo`), whose
    hypergeometric arguments do not grow with the frequency x.

    Attributes
    ----------
    params : pandas.Series
        Fitted ``r, alpha, a, b``; ``alpha`` is in the time unit of the data.
    log_likelihood_ : float
        Total (weighted, unpenalised) log-likelihood at the fitted parameters.
    n_customers_ : float
        Number of customers (sum of weights) the model was fitted on.

    References
    ----------
    Batislam, E. P., Denizel, M. and Filiztekin, A. (2007), "Empirical validation and comparison
    of models for customer base analysis", International Journal of Research in Marketing 24
    (3), 201-209. Wagner, U. and Hoppe, D. (2008), "Erratum on the MBG/NBD Model", ibid. 25 (3),
    225-226.

    Examples
    --------
    >>> mbg = ModifiedBetaGeo.from_params(r=0.525, alpha=6.183, a=0.891, b=1.614)
    >>> round(mbg.probability_alive(0, 0.0, 38.86), 3)  # a one-off buyer is not surely alive
    0.39
    """

    param_names = ("r", "alpha", "a", "b")
    shape_params = ("a", "b")
    _time_params = ("alpha",)
    _start = (0.1, 0.1, 0.1, 0.1)

    @classmethod
    def from_params(cls, r: float, alpha: float, a: float, b: float) -> ModifiedBetaGeo:
        """Build a model with known parameters.

        Parameters
        ----------
        r, alpha, a, b : float
            Positive model parameters; ``alpha`` in the time unit of the data.

        Returns
        -------
        ModifiedBetaGeo
        """
        return cls._with_params([r, alpha, a, b])

    @staticmethod
    def _prepare(x, tx, T, w) -> _Histories:
        return _Histories.of(x, tx, T, w)

    @staticmethod
    def _log_likelihood(params, data, with_gradient):
        return _mbg_log_likelihood(params, data, with_gradient)

    def _probability_alive(self, x, tx, age):
        r, alpha, a, b = self.params.to_numpy()
        log_odds = np.log(a) - np.log(b + x) + (r + x) * (np.log(alpha + age) - np.log(alpha + tx))
        return expit(-log_odds)

    def _expected_purchases(self, t, x, tx, age):
        r, alpha, a, b = self.params.to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            alive = self._probability_alive(x, tx, age)
        return (a + b + x) / (a - 1) * self._gap(t, x, age) * alive

    def _gap(self, t, x, age):
        """The term in ``t``: a function of the frequency and the age alone."""
        r, alpha, a, b = self.params.to_numpy()
        log_1mz = np.log(alpha + age) - np.log(alpha + age + t)
        z = t / (alpha + age + t)
        hyp = hyp2f1(a + b - r, a - 1, a + b + x, z)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_tail = (a - 1) * log_1mz + np.log(hyp)
            return np.where(hyp > 0, -np.expm1(log_tail), 1 - np.exp((a - 1) * log_1mz) * hyp)

    def _expected_purchases_each(self, times, x, tx, age):
        r, alpha, a, b = self.params.to_numpy()
        (x_pair, age_pair), pair = _unique_rows([x, age])
        scale = (a + b + x) / (a - 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            alive = self._probability_alive(x, tx, age)
        for t in times:
            yield scale * self._gap(t, x_pair, age_pair)[pair] * alive


class _ParetoData(NamedTuple):
    """Customer histories for the Pareto/NBD likelihood, with the distinct hypergeometric
    arguments: the t_x term depends on (x, t_x) only, the T term on (x, T) only."""

    x: np.ndarray
    T: np.ndarray
    w: np.ndarray
    x_unique: np.ndarray
    w_unique: np.ndarray
    recent: tuple[np.ndarray, np.ndarray, np.ndarray]  # distinct (x, t_x) and each row's code
    ages: tuple[np.ndarray, np.ndarray, np.ndarray]  # distinct (x, T) and each row's code

    @classmethod
    def of(cls, x, tx, T, w) -> _ParetoData:
        x_unique, inverse = np.unique(x, return_inverse=True)
        w_unique = np.bincount(inverse, weights=w, minlength=len(x_unique))
        (x1, t1), c1 = _unique_rows([x, tx])
        (x2, t2), c2 = _unique_rows([x, T])
        return cls(x, T, w, x_unique, w_unique, (x1, t1, c1), (x2, t2, c2))


def _pareto_log_term(r, alpha, s, beta, x, t):
    """ln[2F1(r+s+x, b; r+s+x+1; z) / (max(alpha, beta) + t)^(r+s+x)], the two halves of A0.

    Fader & Hardie's note 008 (eq. 19-20 of note 009): with alpha >= beta, b = s + 1 and
    z = (alpha - beta)/(alpha + t); with alpha < beta, b = r + x and z = (beta - alpha)/
    (beta + t), so that 0 <= z < 1 always. The 2F1 is evaluated after Euler's transformation,
    2F1(c-1, b; c; z) = (1-z)^(1-b) 2F1(1, c-b; c; z) with c = r+s+x+1, whose first argument
    is 1: a series of positive terms with no cancellation, well defined for any frequency; the
    power of (1-z) = (min + t)/(max + t) is taken in log space. The parameters may be column
    vectors, to evaluate several parameter sets in one call.
    """
    rsx = r + s + x
    ge = alpha >= beta
    high = np.where(ge, alpha, beta)
    low = np.where(ge, beta, alpha)
    b = np.where(ge, s + 1.0, r + x)
    log_high = np.log(high + t)
    z = (high - low) / (high + t)
    return (
        (1.0 - b) * (np.log(low + t) - log_high)
        + np.log(hyp2f1(1.0, rsx + 1.0 - b, rsx + 1.0, z))
        - rsx * log_high
    )


def _pareto_log_a0(log_recent, log_age):
    """ln A0 = ln(term(t_x) - term(T)) from the two log terms, without leaving log space."""
    return log_recent + np.log(-np.expm1(np.minimum(log_age - log_recent, 0.0)))


#: Distinct histories from which :func:`_pareto_values` splits its parameter sets between two
#: threads (numpy's and scipy's kernels run outside the GIL). Below it the threads cost more
#: than they save; at a million customers (420,000 histories) a fit takes 0.6 times as long on
#: two free cores.
THREADED_HISTORIES = 50_000


def _pareto_values(params: np.ndarray, data: _ParetoData) -> np.ndarray:
    """Weighted Pareto/NBD log-likelihood for each row of ``params`` (shape (m, 4)).

    The hypergeometric terms are evaluated on the distinct (x, t_x) and (x, T) only, and all m
    parameter sets in the same numpy calls, so the finite-difference gradient costs one pass.
    A big customer base has its parameter sets split between two threads: each set's value is
    computed by the same operations in the same order either way, so the figures are the same
    to the last bit.
    """
    if len(params) > 1 and len(data.x) >= THREADED_HISTORIES:
        from concurrent.futures import ThreadPoolExecutor  # only a big client's fit needs it

        with ThreadPoolExecutor(max_workers=2) as pool:
            parts = pool.map(_pareto_set_values, np.array_split(params, 2), [data, data])
            return np.concatenate(list(parts))
    return _pareto_set_values(params, data)


def _pareto_set_values(params: np.ndarray, data: _ParetoData) -> np.ndarray:
    """:func:`_pareto_values` in one thread."""
    r, alpha, s, beta = (params[:, i : i + 1] for i in range(4))
    x1, t1, c1 = data.recent
    x2, t2, c2 = data.ages
    with np.errstate(divide="ignore"):  # ln A0 = -inf when t_x = T: exact, handled below
        log_a0 = _pareto_log_a0(
            _pareto_log_term(r, alpha, s, beta, x1, t1)[:, c1],
            _pareto_log_term(r, alpha, s, beta, x2, t2)[:, c2],
        )
    x, age = data.x, data.T
    alive = -(r + x) * np.log(alpha + age) - s * np.log(beta + age)
    dead = np.log(s) - np.log(r + s + x) + log_a0
    # log(exp(alive) + exp(dead)) written out: np.logaddexp is several times slower (see
    # _bg_log_likelihood); dead = -inf (t_x = T) gives exp(-inf) = 0, exact.
    rows = np.maximum(alive, dead) + np.log1p(np.exp(np.maximum(-np.abs(alive - dead), -50.0)))
    xu, wx = data.x_unique, data.w_unique
    head = np.multiply(wx, gammaln(r + xu) - gammaln(r)).sum(axis=1) + wx.sum() * (
        r * np.log(alpha) + s * np.log(beta)
    ).ravel()
    return head + np.multiply(data.w, rows).sum(axis=1)


def _pareto_log_likelihood(params, data: _ParetoData, with_gradient: bool):
    """Weighted Pareto/NBD log-likelihood (eq. 18 of Fader & Hardie's note 009).

    ln L = ln[Gamma(r+x) alpha^r beta^s / Gamma(r)]
    + ln[(alpha+T)^-(r+x) (beta+T)^-s + s/(r+s+x) A0], A0 as in :func:`_pareto_log_term`.
    The gradient in (r, alpha, s, beta) is a central difference in log-parameters (step 1e-5,
    error ~1e-10): the derivatives of 2F1 with respect to its parameters have no closed form.
    """
    params = np.asarray(params, dtype=float)
    if not with_gradient:
        return float(_pareto_values(params[None, :], data)[0]), None
    h = 1e-5
    steps = np.vstack([np.zeros(4), h * np.eye(4), -h * np.eye(4)])
    values = _pareto_values(params * np.exp(steps), data)
    g = (values[1:5] - values[5:]) / (2 * h)
    return float(values[0]), g / params


def _nbd_limit(data: _ParetoData) -> float:
    """Largest log-likelihood of the Pareto/NBD's no-dropout limit, the NBD model.

    When s -> 0 and beta -> infinity with s/beta -> 0, every customer is alive for ever and the
    Pareto/NBD likelihood tends to the NBD's, Gamma(r+x) alpha^r / (Gamma(r) (alpha+T)^(r+x)),
    which does not depend on t_x. Its maximum (two parameters, analytic gradient, a few
    milliseconds) is the height of the ridge a degenerate fit runs along.
    """
    xu, wx, w, x, age = data.x_unique, data.w_unique, data.w, data.x, data.T
    total = w.sum()

    def objective(theta):
        r, alpha = np.exp(theta)
        log_at = np.log(alpha + age)
        ll = _wsum(wx, gammaln(r + xu) - gammaln(r)) + total * r * np.log(alpha)
        ll -= _wsum(w, (r + x) * log_at)
        d_r = _wsum(wx, digamma(r + xu) - digamma(r)) + total * np.log(alpha) - _wsum(w, log_at)
        d_alpha = total * r / alpha - _wsum(w, (r + x) / (alpha + age))
        return -ll / total, -np.array([d_r * r, d_alpha * alpha]) / total

    try:
        theta = _minimise(objective, np.zeros(2), "the NBD limit of ParetoNBD.fit")
    except ConvergenceError:
        return np.inf  # no reference height: the ridge test never fires
    return -objective(theta)[0] * total


class _RidgeStop:
    """BFGS callback ending a Pareto/NBD fit that runs off along the no-dropout ridge.

    On data in which (almost) nobody visibly drops out, the likelihood keeps rising, ever more
    slowly, as s -> 0 and beta -> infinity: the optimiser then creeps along a flat ridge for
    dozens of iterations, and each evaluation gets slower as the hypergeometric argument z
    approaches 1. The fit is stopped as soon as the iterate (a) expects less than
    ``NO_DROPOUT_RATE`` of a customer's lifetime to end within the longest observed history
    (s / beta < 1 % in time scaled to the longest T) and (b) is within ``RIDGE_TOLERANCE``
    log-likelihood units of the no-dropout NBD's maximum: a likelihood-ratio statistic below
    0.2, nowhere near significant, so the data cannot tell the fitted dropout from none. The
    caller treats such a fit as unsound anyway; where exactly on the ridge it stopped is not
    meaningful (``lifetimes`` stops elsewhere on it, after a minute).
    """

    #: See the class docstring.
    NO_DROPOUT_RATE = 1e-2
    #: See the class docstring.
    RIDGE_TOLERANCE = 0.1

    def __init__(self, data: _ParetoData, to_scaled: np.ndarray) -> None:
        self.total = float(data.w.sum())
        self.ridge = _nbd_limit(data)
        self.to_scaled = to_scaled
        self.fired = False
        self.theta: np.ndarray | None = None
        self.reason: str | None = None

    def __call__(self, intermediate_result) -> None:
        theta = np.asarray(intermediate_result.x, dtype=float)
        ll = -float(intermediate_result.fun) * self.total
        r, alpha, s, beta = np.exp(theta)
        if s / beta < self.NO_DROPOUT_RATE and abs(ll - self.ridge) <= self.RIDGE_TOLERANCE:
            self.fired = True
            self.theta = theta
            natural = np.exp(theta) / self.to_scaled
            self.reason = (
                f"the fit ran off along the ridge s -> 0, beta -> infinity (stopped at "
                f"s={natural[2]:.3g}, beta={natural[3]:.3g}): a model in which nobody ever drops "
                f"out fits as well (log-likelihood within {self.RIDGE_TOLERANCE:g}), so the data "
                "do not show dropout and its rate cannot be estimated."
            )
            raise StopIteration


def _pareto_hessian(data: _ParetoData, total: float, penalizer_coef: float):
    """Hessian of the mean Pareto/NBD objective in log-parameters, from function values only.

    Differencing the (itself finite-difference) gradient would cost 8 gradient evaluations of 9
    parameter sets each; the second-order stencil of the value needs 33 sets (the point, +-h
    along each axis, and the four corners of each of the 6 axis pairs), all evaluated in one
    batched call of :func:`_pareto_values`. The step h = 1e-4 balances truncation (h^2 ~ 1e-8)
    against rounding (~1e-16 |ll| / h^2).
    """
    h = 1e-4
    k = 4
    eye = np.eye(k)
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    corners = [(a, b) for a in (1, -1) for b in (1, -1)]
    steps = [np.zeros(k)] + [h * eye[i] for i in range(k)] + [-h * eye[i] for i in range(k)]
    steps += [h * (a * eye[i] + b * eye[j]) for i, j in pairs for a, b in corners]
    steps = np.array(steps)

    def hessian(theta):
        thetas = theta + steps
        params = np.exp(thetas)
        values = -_pareto_values(params, data) / total
        values += penalizer_coef * np.sum(params**2, axis=1)
        centre, plus, minus = values[0], values[1 : k + 1], values[k + 1 : 2 * k + 1]
        hess = np.diag((plus - 2 * centre + minus) / h**2)
        for n, (i, j) in enumerate(pairs):
            pp, pm, mp, mm = values[2 * k + 1 + 4 * n : 2 * k + 5 + 4 * n]
            hess[i, j] = hess[j, i] = (pp - pm - mp + mm) / (4 * h**2)
        return hess

    return hessian


class ParetoNBD(_PurchaseModel):
    """The Pareto/NBD model of repeat purchasing (Schmittlein, Morrison & Colombo 1987).

    While alive a customer buys as a Poisson process with rate lambda ~ Gamma(r, alpha); the
    lifetime is exponential with rate mu ~ Gamma(s, beta), so dropout can happen at any time,
    not only right after a purchase as in the BG/NBD. Equivalent to
    ``lifetimes.ParetoNBDFitter``.

    The likelihood follows Fader & Hardie's note 008 (eq. 18-20 of note 009), with the branch on
    alpha >= beta that keeps the argument of the Gauss hypergeometric function 2F1 in [0, 1).
    2F1 is :func:`scipy.special.hyp2f1`, called after Euler's transformation on
    2F1(1, c-b; c; z), a series of positive terms; everything else is in log space, including
    the difference of the two 2F1 terms of A0 (``log(-expm1(.))``), so customers with hundreds
    of purchases or a last purchase at the end of the observation (A0 = 0) are exact.
    The log-likelihood's gradient is a central difference (the parameter derivatives of 2F1 have
    no closed form); hypergeometric terms are evaluated once per distinct (x, t_x) and (x, T),
    for the 9 parameter sets of the difference stencil in one vectorised call, and the Hessian
    behind :meth:`diagnostics` from a 33-set stencil of values in one call as well. (Writing A0
    as the integral of (alpha+t)^-(r+x) (beta+t)^-(s+1) over [t_x, T] and using fixed-node
    quadrature would give analytic gradients, but no fixed rule tried — Gauss-Legendre or
    tanh-sinh after exponential changes of variable, 24 to 96 nodes — was accurate to better
    than 1e-8 over the parameter range the optimiser visits, against 1e-15 for hyp2f1.)

    Fits on data in which nobody visibly drops out run along a flat ridge s -> 0, beta -> oo,
    where scipy's 2F1 gets about 60 times slower (z -> 1): such a fit is stopped as soon as it
    is within 0.1 log-likelihood units of the no-dropout limit (see :class:`_RidgeStop`) and
    :meth:`diagnostics` reports ``"no_dropout"``; its s and beta are then just where it stopped.

    P(alive) = 1 / (1 + s/(r+s+x) (alpha+T)^(r+x) (beta+T)^s A0), and the expected number of
    purchases in the next t is the closed form (eq. 41 of note 009)

    P(alive) (r+x)(beta+T) / ((alpha+T)(s-1)) [1 - ((beta+T)/(beta+T+t))^(s-1)],

    taken as its limit (r+x)(beta+T)/(alpha+T) ln(1 + t/(beta+T)) P(alive) when s = 1.

    Attributes
    ----------
    params : pandas.Series
        Fitted ``r, alpha, s, beta``; ``alpha`` and ``beta`` are in the time unit of the data.
    log_likelihood_ : float
        Total (weighted, unpenalised) log-likelihood at the fitted parameters.
    n_customers_ : float
        Number of customers (sum of weights) the model was fitted on.

    References
    ----------
    Schmittlein, D. C., Morrison, D. G. and Colombo, R. (1987), "Counting Your Customers: Who
    Are They and What Will They Do Next?", Management Science 33 (1), 1-24. Fader, P. S. and
    Hardie, B. G. S. (2005), "A Note on Deriving the Pareto/NBD Model and Related
    Expressions", http://www.brucehardie.com/notes/009/.

    Examples
    --------
    The CDNOW estimates of Fader, Hardie & Lee (2005), time in weeks:

    >>> pnbd = ParetoNBD.from_params(r=0.55, alpha=10.58, s=0.61, beta=11.67)
    >>> round(pnbd.probability_alive(2, 30.43, 38.86), 3)
    0.868
    """

    param_names = ("r", "alpha", "s", "beta")
    shape_params = ("s",)
    _time_params = ("alpha", "beta")
    _start = (1.0, 1.0, 1.0, 1.0)
    _numeric_gradient = True

    @classmethod
    def from_params(cls, r: float, alpha: float, s: float, beta: float) -> ParetoNBD:
        """Build a model with known parameters.

        Parameters
        ----------
        r, alpha, s, beta : float
            Positive model parameters; ``alpha`` and ``beta`` in the time unit of the data.

        Returns
        -------
        ParetoNBD
        """
        return cls._with_params([r, alpha, s, beta])

    @staticmethod
    def _prepare(x, tx, T, w) -> _ParetoData:
        return _ParetoData.of(x, tx, T, w)

    @staticmethod
    def _log_likelihood(params, data, with_gradient):
        return _pareto_log_likelihood(params, data, with_gradient)

    def _ridge_stop(self, data, to_scaled):
        return _RidgeStop(data, to_scaled)

    def _objective_hessian(self, data, total, penalizer_coef):
        return _pareto_hessian(data, total, penalizer_coef)

    def _probability_alive(self, x, tx, age):
        r, alpha, s, beta = self.params.to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            log_a0 = _pareto_log_a0(
                _pareto_log_term(r, alpha, s, beta, x, tx),
                _pareto_log_term(r, alpha, s, beta, x, age),
            )
            log_odds = (
                np.log(s) - np.log(r + s + x)
                + (r + x) * np.log(alpha + age) + s * np.log(beta + age) + log_a0
            )
        return expit(-log_odds)

    def _expected_purchases(self, t, x, tx, age):
        r, alpha, s, beta = self.params.to_numpy()
        log_ratio = -np.log1p(t / (beta + age))  # ln((beta+T)/(beta+T+t)) <= 0
        if abs(s - 1.0) > 1e-12:
            horizon = -np.expm1((s - 1.0) * log_ratio) / (s - 1.0)
        else:
            horizon = -log_ratio
        alive = self._probability_alive(x, tx, age)
        return alive * (r + x) * (beta + age) / (alpha + age) * horizon


# --------------------------------------------------------------------------------------------
# Shifted-beta-geometric (contractual retention)
# --------------------------------------------------------------------------------------------


class ShiftedBetaGeometric(_ParametricModel):
    """The shifted-beta-geometric (sBG) model of contractual retention.

    Each customer renews at the end of every period with a constant probability 1 - theta and
    theta ~ Beta(alpha, beta) across customers (Fader & Hardie 2007). Retention rises with
    tenure because the customers most likely to leave leave first. With B the beta function:

    - survival S(t) = B(alpha, beta + t) / B(alpha, beta), the share of a cohort still active
      at the start of period t (S(0) = 1);
    - retention r(t) = S(t) / S(t-1) = (beta + t - 1) / (alpha + beta + t - 1), t >= 1;
    - P(leaving in period t) = B(alpha + 1, beta + t - 1) / B(alpha, beta).

    Attributes
    ----------
    params : pandas.Series
        Fitted ``alpha, beta``.
    log_likelihood_ : float
        Log-likelihood at the fitted parameters.
    n_customers_ : float
        Size of the cohort (survivors at period 0).
    periods_ : int
        Number of periods observed (length of ``survivors`` minus one).

    References
    ----------
    Fader, P. S. and Hardie, B. G. S. (2007), "How to Project Customer Retention", Journal of
    Interactive Marketing 21 (1), 76-90. Fader, P. S. and Hardie, B. G. S. (2010), "Customer-Base
    Valuation in a Contractual Setting: The Perils of Ignoring Heterogeneity", Marketing Science
    29 (1), 85-93.

    Examples
    --------
    The high-end cohort of Fader & Hardie (2007):

    >>> sbg = ShiftedBetaGeometric().fit([1000, 869, 743, 653, 593, 551, 517, 491])
    >>> sbg.params.round(3).to_dict()
    {'alpha': 0.668, 'beta': 3.806}
    >>> round(sbg.retention(8), 3)
    0.942
    """

    param_names = ("alpha", "beta")
    fit_call = ".fit(survivors)"
    shape_params = ("alpha", "beta")

    def __init__(self) -> None:
        super().__init__()
        self.periods_: int | None = None

    @classmethod
    def from_params(cls, alpha: float, beta: float) -> ShiftedBetaGeometric:
        """Build a model with known parameters.

        Parameters
        ----------
        alpha, beta : float
            Positive parameters of the beta distribution of the churn probability.

        Returns
        -------
        ShiftedBetaGeometric
        """
        return cls._with_params([alpha, beta])

    def fit(self, survivors, initial_params=None) -> ShiftedBetaGeometric:
        """Fit the model by maximum likelihood to one cohort's survivors.

        Parameters
        ----------
        survivors : array_like
            Number of customers of the cohort still active at the start of each period, period
            0 (the whole cohort) first; non-increasing, at least two values. Counts need not be
            integers (a cohort given as percentages works).
        initial_params : sequence of 2 floats, optional
            Starting values of ``alpha, beta``; default 1, 1.

        Returns
        -------
        ShiftedBetaGeometric
            ``self``, fitted. Check :meth:`diagnostics`: a cohort whose retention does not rise
            with tenure sends alpha and beta to infinity (no heterogeneity).

        Raises
        ------
        ValueError
            When survivors are missing, negative, increasing, too few, or nobody churns or
            survives in a way that leaves nothing to estimate.
        ConvergenceError
            When the optimiser fails.
        """
        caller = "ShiftedBetaGeometric.fit"
        n = _as_float(survivors, "survivors")
        if n.ndim != 1 or len(n) < 2:
            raise ValueError(f"{caller}: survivors must be a list of at least two counts "
                             f"(period 0 first), got shape {n.shape}.")
        periods = np.arange(len(n))
        _raise_problems(
            caller,
            [
                (~np.isfinite(n), "a missing or infinite count"),
                (n < 0, "a negative count"),
                (np.concatenate(([False], np.diff(n) > 0)), "more survivors than the period "
                 "before"),
            ],
            None,
            len(n),
        )
        if not n[0] > 0:
            raise ValueError(f"{caller}: the cohort is empty (survivors[0] = {n[0]}).")
        lost = -np.diff(n)  # customers leaving in periods 1..T
        if not lost.sum() > 0:
            raise ValueError(f"{caller}: nobody left the cohort, so churn cannot be estimated.")
        t = periods[1:].astype(float)
        last = float(len(n) - 1)
        total = float(n[0])

        def log_likelihood(params, with_gradient):
            alpha, beta = params
            base = betaln(alpha, beta)
            churn = betaln(alpha + 1.0, beta + t - 1.0) - base
            alive = betaln(alpha, beta + last) - base
            ll = _wsum(lost, churn) + n[-1] * alive
            if not with_gradient:
                return ll, None
            psi_ab = digamma(alpha + beta)
            d_base = np.array([digamma(alpha) - psi_ab, digamma(beta) - psi_ab])
            psi_c = digamma(alpha + beta + t)
            d_churn = np.array(
                [_wsum(lost, digamma(alpha + 1.0) - psi_c),
                 _wsum(lost, digamma(beta + t - 1.0) - psi_c)]
            )
            psi_s = digamma(alpha + beta + last)
            d_alive = np.array([digamma(alpha) - psi_s, digamma(beta + last) - psi_s])
            return ll, d_churn + n[-1] * d_alive - total * d_base

        def objective(theta):
            params = np.exp(theta)
            ll, grad = log_likelihood(params, with_gradient=True)
            return -ll / total, -grad * params / total

        if initial_params is None:
            start = np.zeros(2)
        else:
            start_params = _as_float(initial_params, "initial_params")
            if start_params.shape != (2,) or not np.all(start_params > 0):
                raise ValueError("initial_params must be 2 positive numbers: alpha, beta.")
            start = np.log(start_params)
        with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
            theta = _minimise(objective, start, caller, allow_bound=True)
            fitted = np.exp(theta)
            self._params = pd.Series(fitted, index=list(self.param_names), name=type(self).__name__)
            self.log_likelihood_, _ = log_likelihood(fitted, with_gradient=False)
            self._record_fit(objective, theta, total)
        self.n_customers_ = total
        self.periods_ = int(last)
        return self

    def survival(self, t):
        """Share of a cohort still active at the start of period ``t``, S(t).

        Parameters
        ----------
        t : array_like or float
            Period(s), >= 0 (0 is the start: S(0) = 1).

        Returns
        -------
        pandas.Series, numpy.ndarray or float
        """
        index = _index_of(t)
        t = _as_float(t, "t")
        alpha, beta = self.params.to_numpy()
        return _wrap(np.exp(betaln(alpha, beta + t) - betaln(alpha, beta)), index, "survival")

    def retention(self, t):
        """Retention rate in period ``t``: the share of those active in t-1 still active in t.

        r(t) = (beta + t - 1) / (alpha + beta + t - 1), for t >= 1.

        Parameters
        ----------
        t : array_like or float
            Period(s), >= 1.

        Returns
        -------
        pandas.Series, numpy.ndarray or float
        """
        index = _index_of(t)
        t = _as_float(t, "t")
        alpha, beta = self.params.to_numpy()
        return _wrap((beta + t - 1.0) / (alpha + beta + t - 1.0), index, "retention")

    def derl(self, discount_rate: float, renewals=0):
        """Discounted expected residual lifetime of a customer who has renewed ``renewals`` times.

        Fader & Hardie (2010), eq. 6: the expected number of future payments, each discounted
        per period at ``discount_rate``, of a customer observed just before the next renewal
        decision (the first of those payments, if the customer renews, is not discounted):

        DERL = B(alpha, beta+n+1) / B(alpha, beta+n) 2F1(1, beta+n+1; alpha+beta+n+1; 1/(1+d))
        = sum over k >= 0 of S(n+1+k) / S(n) / (1+d)^k.

        Multiply by the margin per period to get the discounted expected residual lifetime
        value (DERLV).

        Parameters
        ----------
        discount_rate : float
            Discount rate per period (d > 0).
        renewals : array_like or int
            Number of renewals made so far (n >= 0); may be an array of tenures.

        Returns
        -------
        pandas.Series, numpy.ndarray or float
        """
        if not discount_rate > 0:
            raise ValueError(f"discount_rate must be > 0 (per period), got {discount_rate!r}.")
        index = _index_of(renewals)
        n = _as_float(renewals, "renewals")
        if np.any(n < 0):
            raise ValueError("renewals must be >= 0.")
        alpha, beta = self.params.to_numpy()
        ratio = np.exp(betaln(alpha, beta + n + 1.0) - betaln(alpha, beta + n))
        series = hyp2f1(1.0, beta + n + 1.0, alpha + beta + n + 1.0, 1.0 / (1.0 + discount_rate))
        return _wrap(ratio * series, index, "derl")


# --------------------------------------------------------------------------------------------
# Gamma-Gamma
# --------------------------------------------------------------------------------------------


class _Spends(NamedTuple):
    """Repeat customers' spends prepared once per fit for the Gamma-Gamma likelihood."""

    xm: np.ndarray  # frequency x mean spend: total spend on repeat purchases
    w: np.ndarray
    wxt: np.ndarray  # weight x frequency
    x_unique: np.ndarray
    w_unique: np.ndarray
    sum_w_log_m: float
    sum_wx_log_m: float

    @classmethod
    def of(cls, x, m, w) -> _Spends:
        x_unique, inverse = np.unique(x, return_inverse=True)
        log_m = np.log(m)
        return cls(
            x * m,
            w,
            w * x,
            x_unique,
            np.bincount(inverse, weights=w, minlength=len(x_unique)),
            _wsum(w, log_m),
            _wsum(w * x, log_m),
        )


def _gg_log_likelihood(params, s: _Spends, with_gradient: bool):
    """Weighted Gamma-Gamma log-likelihood of mean spends (eq. 1a of [3]) and its gradient.

    Per customer: lnG(px+q) - lnG(px) - lnG(q) + q ln v + (px-1) ln m + px ln x
    - (px+q) ln(xm+v). Only the last term needs every customer at every evaluation; the gamma
    functions depend on the frequency alone and the ln m terms are constant sums.
    """
    p, q, v = params
    xu, wx = s.x_unique, s.w_unique
    total = wx.sum()
    pxu = p * xu
    log_xmv = np.log(s.xm + v)
    ll = (
        _wsum(wx, gammaln(pxu + q) - gammaln(pxu) + pxu * np.log(xu))
        + total * (q * np.log(v) - gammaln(q))
        + p * s.sum_wx_log_m
        - s.sum_w_log_m
        - p * _wsum(s.wxt, log_xmv)
        - q * _wsum(s.w, log_xmv)
    )
    if not with_gradient:
        return ll, None
    psi_pxq = digamma(pxu + q)
    inverse_xmv = 1.0 / (s.xm + v)
    g = np.empty(3)
    g[0] = (
        _wsum(wx * xu, psi_pxq - digamma(pxu) + np.log(xu)) + s.sum_wx_log_m - _wsum(s.wxt, log_xmv)
    )
    g[1] = _wsum(wx, psi_pxq) + total * (np.log(v) - digamma(q)) - _wsum(s.w, log_xmv)
    g[2] = total * q / v - p * _wsum(s.wxt, inverse_xmv) - q * _wsum(s.w, inverse_xmv)
    return ll, g


class GammaGamma(_ParametricModel):
    """The Gamma-Gamma model of the monetary value of a customer's purchases.

    A customer's purchase values are Gamma(p, nu) with a customer-specific nu ~ Gamma(q, gamma)
    (Fader, Hardie & Lee 2005; Hardie's note 025). Assumes that spend per purchase does not
    depend on purchase frequency: check :func:`frequency_value_correlation` first.
    Equivalent to ``lifetimes.GammaGammaFitter``, whose third parameter is called ``v``; here it
    is called ``gamma``, as in the literature.

    Attributes
    ----------
    params : pandas.Series
        Fitted ``p, q, gamma`` (``gamma`` is ``lifetimes``' ``v``, in money units).
    log_likelihood_ : float
        Total (weighted, unpenalised) log-likelihood at the fitted parameters.
    n_customers_ : float
        Number of customers (sum of weights) the model was fitted on.

    Examples
    --------
    Fit with ``GammaGamma().fit(repeat["frequency"], repeat["monetary_value"])`` where
    ``repeat = repeat_customers(summary)``; here the published CDNOW estimates:

    >>> gg = GammaGamma.from_params(p=6.25, q=3.74, gamma=15.44)
    >>> round(gg.expected_average_value(2, 22.35), 2)  # two repeat purchases averaging 22.35
    24.66
    >>> round(gg.expected_average_value(0, 0.0), 2)  # a one-off buyer: the population mean
    35.22
    """

    param_names = ("p", "q", "gamma")
    fit_call = ".fit(frequency, monetary_value)"

    @classmethod
    def from_params(cls, p: float, q: float, gamma: float) -> GammaGamma:
        """Build a model with known parameters.

        Parameters
        ----------
        p, q, gamma : float
            Positive model parameters; ``gamma`` is ``lifetimes``' ``v``.

        Returns
        -------
        GammaGamma
        """
        return cls._with_params([p, q, gamma])

    @property
    def population_mean(self) -> float:
        """Mean spend per purchase in the population, ``p * gamma / (q - 1)``.

        Infinite (and meaningless) when ``q <= 1``.
        """
        p, q, gamma = self.params.to_numpy()
        return float(p * gamma / (q - 1)) if q > 1 else float("inf")

    def fit(
        self,
        frequency,
        monetary_value,
        weights=None,
        penalizer_coef: float = 0.0,
        initial_params=None,
    ) -> GammaGamma:
        """Fit the model by maximum likelihood on repeat customers.

        Parameters
        ----------
        frequency : array_like
            Number of repeat purchases; must be > 0 (integer).
        monetary_value : array_like
            Mean value of the repeat purchases; must be > 0.
        weights : array_like, optional
            Number of customers with each (frequency, monetary_value); default one per row.
        penalizer_coef : float
            L2 penalty on (p, q, gamma), gamma in money units, added to the mean negative
            log-likelihood exactly as ``lifetimes`` does.
        initial_params : sequence of 3 floats, optional
            Starting values of ``p, q, gamma``.

        Returns
        -------
        GammaGamma
            ``self``, fitted.

        Raises
        ------
        ValueError
            When a customer has frequency 0, a non-positive or missing monetary value, or a
            non-integer frequency; the message gives the count and the first positions. Use
            :func:`repeat_customers` to select the customers the model applies to.
        """
        caller = "GammaGamma.fit"
        index = _index_of(frequency, monetary_value)
        x, m = _columns(("frequency", "monetary_value"), (frequency, monetary_value), caller)
        finite = np.isfinite(x) & np.isfinite(m)
        try:
            _raise_problems(
                caller,
                [
                    (~finite, "a missing (NaN) or infinite frequency or monetary_value"),
                    (finite & (x <= 0), "frequency 0 (no repeat purchase, so no spend to model)"),
                    (finite & (x != np.round(x)), "a non-integer frequency"),
                    (finite & (m <= 0), "monetary_value <= 0"),
                ],
                index,
                len(x),
                header="cannot use some customers",
            )
        except ValueError as exc:
            raise ValueError(
                f"{exc}\nThe Gamma-Gamma model only applies to customers with at least one "
                "repeat purchase and a positive mean spend: select them with "
                "crmkit.analysis.value.repeat_customers(summary)."
            ) from None
        w = _weights(weights, len(x), caller, index)
        (x, m), w = _compress([x, m], w)
        # Rescale money to a mean spend of 1 so gamma starts near its optimum in any currency
        # (pesos or euros); p and q are scale-free.
        scale = float(np.average(m, weights=w))
        scaled = _Spends.of(x, m / scale, w)
        total = w.sum()

        to_money = np.array([1.0, 1.0, scale])

        def objective(theta):
            params = np.exp(theta)
            ll, grad = _gg_log_likelihood(params, scaled, with_gradient=True)
            # Penalise gamma in money units, as lifetimes does, not in the rescaled units.
            squares = (params * to_money) ** 2
            value = -ll / total + penalizer_coef * np.sum(squares)
            return value, -grad * params / total + 2.0 * penalizer_coef * squares

        if initial_params is None:
            # From lifetimes' start (0.1, 0.1, 0.1) BFGS needed 55-70 evaluations. Start instead
            # from the best of four points whose population mean p gamma / (q - 1) is the
            # observed mean spend (1 after rescaling), with the true curvature there.
            probes = [np.log([p, q, (q - 1.0) / p]) for p in (1.0, 4.0) for q in (2.0, 4.0)]
            with np.errstate(all="ignore"):
                heights = [objective(theta)[0] for theta in probes]
            start = probes[int(np.nanargmin(heights))]
        else:
            start_params = _as_float(initial_params, "initial_params")
            if start_params.shape != (3,) or not np.all(start_params > 0):
                raise ValueError("initial_params must be 3 positive numbers: p, q, gamma.")
            start = np.log(start_params / np.array([1.0, 1.0, scale]))
        with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
            theta = _minimise(objective, start, caller, curvature=True)
        fitted = np.exp(theta)
        fitted[2] *= scale
        self._params = pd.Series(fitted, index=list(self.param_names), name="GammaGamma")
        self.log_likelihood_, _ = _gg_log_likelihood(
            fitted, _Spends.of(x, m, w), with_gradient=False
        )
        self.n_customers_ = float(total)
        self._record_fit(objective, theta, total)
        return self

    def expected_average_value(self, frequency, monetary_value):
        """Expected mean spend per future purchase, given the observed spend (eq. 5 of [3]).

        A credibility-weighted average of the customer's own mean and the population mean
        ``p * gamma / (q - 1)``; the more repeat purchases, the more the customer's own mean
        counts. For customers with frequency 0 it is the population mean, whatever their
        monetary_value (which may be 0 or NaN), so CLV can be computed for every customer.

        Parameters
        ----------
        frequency : array_like or float
            Number of repeat purchases.
        monetary_value : array_like or float
            Mean value of the repeat purchases.

        Returns
        -------
        pandas.Series, numpy.ndarray or float
        """
        index = _index_of(frequency, monetary_value)
        x = _as_float(frequency, "frequency")
        m = _as_float(monetary_value, "monetary_value")
        return _wrap(self._expected_average_value(x, m), index, "expected_average_value")

    def _expected_average_value(self, x, m):
        p, q, gamma = self.params.to_numpy()
        weight = p * x / (p * x + q - 1)
        prior = p * gamma / (q - 1)
        return np.where(x > 0, (1 - weight) * prior + weight * np.where(x > 0, m, 0.0), prior)

    #: ``lifetimes`` name of :meth:`expected_average_value`.
    conditional_expected_average_profit = expected_average_value


def frequency_value_correlation(frequency, monetary_value) -> float:
    """Pearson correlation between purchase frequency and mean spend of repeat customers.

    The Gamma-Gamma model assumes that how much a customer spends per purchase is independent
    of how often they buy; this is the usual check of that assumption. It is computed on the
    customers the model is fitted on (frequency > 0 and monetary_value > 0): one-off buyers
    have a monetary value of 0 by construction and would fake a correlation. The figure is
    reported for the consultant to judge; no threshold is applied here.

    Parameters
    ----------
    frequency, monetary_value : array_like
        As in an RFM summary; all customers may be passed.

    Returns
    -------
    float
        The correlation, or NaN with fewer than two repeat customers or no variation.
    """
    x, m = _columns(
        ("frequency", "monetary_value"), (frequency, monetary_value), "frequency_value_correlation"
    )
    keep = (x > 0) & (m > 0) & np.isfinite(x) & np.isfinite(m)
    x, m = x[keep], m[keep]
    if len(x) < 2:
        return float("nan")
    dx, dm = x - x.mean(), m - m.mean()
    denominator = np.sqrt(_wsum(dx, dx) * _wsum(dm, dm))
    return _wsum(dx, dm) / denominator if denominator > 0 else float("nan")


# --------------------------------------------------------------------------------------------
# Customer lifetime value
# --------------------------------------------------------------------------------------------


def customer_lifetime_value(
    bg: BetaGeo | ModifiedBetaGeo | ParetoNBD,
    gg: GammaGamma,
    frequency,
    recency,
    T,
    monetary_value,
    time: int = 12,
    margin: float = 0.3,
    discount_rate: float = 0.01,
    freq: str = "D",
) -> pd.Series:
    """Discounted customer lifetime value over the next ``time`` months.

    Same construction as ``lifetimes``' ``GammaGammaFitter.customer_lifetime_value``: for each
    month i = 1..time, the purchases the BG/NBD model expects in that month times the
    Gamma-Gamma expected value per purchase, discounted by ``(1 + monthly rate) ** i``;
    additionally multiplied by the gross ``margin`` so the result is profit, not revenue.

    Parameters
    ----------
    bg : BetaGeo, ModifiedBetaGeo or ParetoNBD
        Fitted purchase model.
    gg : GammaGamma
        Fitted spend model. Customers with frequency 0 are valued at its population mean.
    frequency, recency, T, monetary_value : array_like
        The customers' RFM summary, recency and T in the unit given by ``freq``. Series are
        aligned on the index of the first one.
    time : int
        Horizon in months.
    margin : float
        Gross margin applied to the expected value per purchase (0.3 = 30 %).
    discount_rate : float
        YEARLY discount rate (0.01 = 1 % a year). ``lifetimes`` takes a monthly rate; the
        yearly rate y is converted to the equivalent monthly rate ``(1 + y) ** (1 / 12) - 1``,
        so ``discount_rate=0.12`` here equals ``lifetimes``' ``discount_rate=0.00949``.
    freq : {"D", "W", "M", "H"}
        Time unit of recency and T. A month is taken as 30 days, 4.345 weeks or 720 hours,
        exactly as in ``lifetimes``.

    Returns
    -------
    pandas.Series
        CLV per customer, named ``"clv"``, on the input's index (or a RangeIndex).
    """
    if freq not in PERIODS_PER_MONTH:
        raise ValueError(f"freq must be one of {sorted(PERIODS_PER_MONTH)}, got {freq!r}.")
    if isinstance(time, bool) or int(time) != time or time < 1:
        raise ValueError(f"time must be a whole number of months >= 1, got {time!r}.")
    if not discount_rate > -1:
        raise ValueError(f"discount_rate must be > -1 (a yearly rate), got {discount_rate!r}.")
    caller = "customer_lifetime_value"
    names = ["frequency", "recency", "T", "monetary_value"]
    index = _index_of(frequency, recency, T, monetary_value)
    # Columns taken from different frames are matched by customer, not by position.
    aligned = _aligned([frequency, recency, T, monetary_value], names, caller)
    x, tx, age, m = _columns(names, aligned, caller)
    value = margin * gg._expected_average_value(x, m)

    # Expected purchases depend on (x, t_x, T) only: evaluate the costly hypergeometric terms
    # once per distinct history. Month by month rather than one (months x customers) broadcast,
    # so memory stays proportional to the number of customers.
    (ux, utx, uage), codes = _unique_rows([x, tx, age])
    monthly_rate = (1.0 + discount_rate) ** (1.0 / 12.0) - 1.0
    discounted_purchases = np.zeros(len(ux))
    previous = np.zeros(len(ux))
    for month in range(1, int(time) + 1):
        cumulative = bg._expected_purchases(month * PERIODS_PER_MONTH[freq], ux, utx, uage)
        discounted_purchases += (cumulative - previous) / (1.0 + monthly_rate) ** month
        previous = cumulative
    clv = value * discounted_purchases[codes]
    return pd.Series(clv, index=index if index is not None else pd.RangeIndex(len(clv)), name="clv")


# --------------------------------------------------------------------------------------------
# Value per segment
# --------------------------------------------------------------------------------------------


def _aligned(values: list[Any], names: list[str], caller: str) -> list[np.ndarray]:
    """Align Series on the first one's index; fall back to position for plain arrays."""
    base = next((v for v in values if isinstance(v, pd.Series)), None)
    out = []
    for value, name in zip(values, names, strict=True):
        if isinstance(value, pd.Series) and base is not None and not value.index.equals(base.index):
            missing = ~base.index.isin(value.index)
            if missing.any() or value.index.has_duplicates:
                raise ValueError(
                    f"{caller}: {name} does not have one value per customer of {names[0]} "
                    f"({int(missing.sum())} customers missing)."
                )
            value = value.reindex(base.index)
        out.append(np.asarray(value))
    lengths = {n: len(v) for n, v in zip(names, out, strict=True)}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{n}={k}" for n, k in lengths.items())
        raise ValueError(f"{caller}: inputs must have the same length, got {listed}.")
    return out


def segment_value(
    clv,
    probability_alive,
    segments,
    n_boot: int = 1000,
    seed: int | np.random.Generator | None = 0,
    confidence: float = 0.9,
) -> pd.DataFrame:
    """Customer value per segment, with bootstrap confidence intervals.

    The interval on a segment's mean CLV is the percentile bootstrap: the segment's customers
    are resampled with replacement ``n_boot`` times. The segment total is the mean times the
    number of customers, and so is its interval: the uncertainty is about what a customer of
    the segment is worth, the number of customers is known.

    Parameters
    ----------
    clv : array_like
        CLV per customer, e.g. from :func:`customer_lifetime_value`.
    probability_alive : array_like
        P(alive) per customer, e.g. from :meth:`BetaGeo.probability_alive`.
    segments : array_like
        Segment label per customer. Series are aligned on ``clv``'s index.
    n_boot : int
        Number of bootstrap resamples.
    seed : int, numpy.random.Generator or None
        Seed of the resampling; the same seed gives the same intervals.
    confidence : float
        Confidence level of the intervals, in (0, 1).

    Returns
    -------
    pandas.DataFrame
        One row per segment (sorted; categorical order for categoricals) with columns
        ``customers, mean_clv, mean_clv_low, mean_clv_high, total_clv, total_clv_low,
        total_clv_high, mean_probability_alive``.
    """
    caller = "segment_value"
    if not 0 < confidence < 1:
        raise ValueError(f"{caller}: confidence must be between 0 and 1, got {confidence!r}.")
    if isinstance(n_boot, bool) or int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"{caller}: n_boot must be a positive integer, got {n_boot!r}.")
    index = _index_of(clv, probability_alive, segments)
    values, alive, labels = _aligned(
        [clv, probability_alive, segments], ["clv", "probability_alive", "segments"], caller
    )
    values = _as_float(values, "clv")
    alive = _as_float(alive, "probability_alive")
    _raise_problems(
        caller,
        [
            (~np.isfinite(values), "a missing or infinite clv"),
            (~np.isfinite(alive), "a missing probability_alive"),
            (pd.isna(labels), "no segment"),
        ],
        index,
        len(values),
    )
    if not len(values):
        raise ValueError(f"{caller}: no customers given (empty input).")
    if isinstance(segments, pd.Series) and isinstance(segments.dtype, pd.CategoricalDtype):
        labels = pd.Categorical(labels, dtype=segments.dtype)
    codes, names = pd.factorize(labels, sort=True)
    order = np.argsort(codes, kind="stable")
    sorted_values = values[order]
    counts = np.bincount(codes, minlength=len(names))
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))

    rng = np.random.default_rng(seed)
    boot_means = np.empty((len(names), int(n_boot)))

    def resampled(s: int, first: int, segment: np.ndarray, draws: np.ndarray) -> None:
        boot_means[s, first : first + len(draws)] = segment[draws].mean(axis=1)

    # The draws are made here, in order, so that a seed gives the same resamples; gathering and
    # averaging them (four fifths of the time) runs in two threads on a big customer base, each
    # block's means computed as in one thread: the same intervals to the last bit.
    threads = 2 if len(values) >= _BOOT_THREADED else 0
    with _Background(threads) as background:
        for s, (start, n) in enumerate(zip(starts, counts, strict=True)):
            segment = sorted_values[start : start + n]
            block = max(1, _BOOT_BLOCK // n)
            # Each block resamples `block` replicates in one call; the loop only walks blocks.
            for first in range(0, int(n_boot), block):
                k = min(block, int(n_boot) - first)
                draws = rng.integers(0, n, size=(k, n),
                                     dtype=np.int64 if n >= 2**31 else np.int32)
                background.run(resampled, s, first, segment, draws)
    tail = (1 - confidence) / 2
    low, high = np.quantile(boot_means, [tail, 1 - tail], axis=1)

    totals = np.bincount(codes, weights=values, minlength=len(names))
    means = totals / counts
    result = pd.DataFrame(
        {
            "customers": counts,
            "mean_clv": means,
            "mean_clv_low": low,
            "mean_clv_high": high,
            "total_clv": totals,
            "total_clv_low": low * counts,
            "total_clv_high": high * counts,
            "mean_probability_alive": np.bincount(codes, weights=alive, minlength=len(names))
            / counts,
        },
        index=pd.Index(names, name=getattr(segments, "name", None) or "segment"),
    )
    return result
