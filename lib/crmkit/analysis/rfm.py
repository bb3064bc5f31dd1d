"""RFM: how recently, how often and how much each customer buys, and their 1-5 scores.

Recency, frequency and monetary value are the three measures the CRM texts start segmentation
from: a customer who bought last week, buys every month and spends a lot is worth a different
treatment from one who bought once, two years ago. :func:`rfm_table` computes them per customer
from the transaction log, :func:`rfm_scores` turns them into scores 1-5 (5 = best) that segment
maps (:mod:`crmkit.analysis.segment_maps`) read.

Everything is vectorised with numpy on integer customer codes: 1,000,000 transaction lines of
100,000 customers take a fraction of a second, with no Python loop per customer.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import numpy as np
import pandas as pd

from crmkit.inputs import occasions

#: Per-customer measures of :func:`rfm_table`, in the order the table has them.
MEASURES = ("recency", "frequency", "monetary", "avg_order", "tenure")
#: Score columns of :func:`rfm_scores`.


def as_timestamp(as_of: dt.date | str | pd.Timestamp) -> pd.Timestamp:
    """The analysis date as a midnight :class:`pandas.Timestamp` (day precision)."""
    return pd.Timestamp(as_of).normalize()


def day_numbers(dates: pd.Series) -> np.ndarray:
    """Dates as whole days since the epoch (int64), whatever the datetime resolution."""
    return dates.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype(np.int64)


def rfm_table(transactions: pd.DataFrame, as_of: dt.date | str | pd.Timestamp, *,
              frequency: Literal["days", "lines"] = "days",
              gross_margin: float | None = None) -> pd.DataFrame:
    """Recency, frequency and monetary value of every customer who bought up to ``as_of``.

    Parameters
    ----------
    transactions : DataFrame
        Canonical transactions (docs/data-contract.md): ``customer_id``, ``date``, ``amount``
        and optionally ``margin``. Lines after ``as_of`` are ignored.
    as_of : date
        The analysis date.
    frequency : {"days", "lines"}
        ``"days"`` (default) counts purchase occasions (:mod:`crmkit.inputs.occasions`): orders
        when the transactions have an ``order_id``, else distinct purchase days (clients export
        line items, and a basket of three lines is one purchase). ``"lines"`` counts purchase
        lines, for clients whose export has one line per order.
    gross_margin : float, optional
        Margin rate used for lines without a ``margin`` amount. When given, or when the
        transactions have a ``margin`` column, the table has a ``margin`` column.

    Returns
    -------
    DataFrame
        Indexed by ``customer_id`` (sorted), with columns

        - ``recency``: days from the last purchase to ``as_of`` (0 = bought on ``as_of``);
        - ``frequency``: number of purchases (purchase occasions, or lines);
        - ``monetary``: total net spend (purchases minus returns), in the client's currency;
        - ``avg_order``: ``monetary / frequency``, net spend per purchase;
        - ``tenure``: days from the first purchase to ``as_of``;
        - ``margin``: total gross margin (see ``gross_margin``), when available.

    Notes
    -----
    A purchase is an occasion with a line of 0 or more; returns (negative lines) lower
    ``monetary`` but are not purchases, so a day (or a cancellation invoice) with only returns
    does not make a customer recent.
    Customers with no purchase up to ``as_of`` (nothing bought, or only returns of purchases
    made before the data starts) have no recency and are left out of the table.
    """
    if frequency not in ("days", "lines"):
        raise ValueError(f"frequency {frequency!r}; expected 'days' or 'lines'")
    end = as_timestamp(as_of)
    end_day = np.int64((end - pd.Timestamp(0)).days)
    days = day_numbers(transactions["date"])
    keep = days <= end_day
    amount = transactions["amount"].to_numpy(dtype=np.float64)
    # Customers who only appear after as_of get a code but no purchase, and drop out below.
    codes, ids = occasions.customer_codes(transactions)
    if not keep.all():
        days, amount, codes = days[keep], amount[keep], codes[keep]
    n = len(ids)

    monetary = np.bincount(codes, weights=amount, minlength=n)
    # Purchases are occasions (crmkit.inputs.occasions: orders when the export has order ids,
    # else customer-days) holding a line of 0 or more; an occasion of returns only is not one,
    # so a return does not make a customer recent.
    orders = (transactions[occasions.ORDER_COLUMN].to_numpy()[keep]
              if occasions.ORDER_COLUMN in transactions.columns else None)
    # the whole log (as_of its last day): the occasions others may have found already
    found = occasions.find(transactions)[0] if keep.all() and occasions.is_shared(transactions) \
        else occasions.group(codes, days, amount, orders)
    bought = found.purchase
    p_customer, p_ago = found.customer[bought], end_day - found.time[bought]
    # Occasions come sorted by customer, then time: a customer's last one is its recency, its
    # first its tenure.
    last = np.flatnonzero(np.r_[p_customer[1:] != p_customer[:-1], True]) if len(p_customer) \
        else np.zeros(0, dtype=np.int64)
    first = np.flatnonzero(np.r_[True, p_customer[1:] != p_customer[:-1]]) if len(p_customer) \
        else np.zeros(0, dtype=np.int64)
    recency = np.zeros(n, dtype=np.int64)
    tenure = np.zeros(n, dtype=np.int64)
    recency[p_customer[last]] = p_ago[last]
    tenure[p_customer[first]] = p_ago[first]
    if frequency == "days":
        count = np.bincount(p_customer, minlength=n)
    else:
        count = np.bincount(codes[amount >= 0], minlength=n)
    buyers = count > 0

    table = pd.DataFrame({
        "recency": recency[buyers],
        "frequency": count[buyers].astype(np.int64),
        "monetary": monetary[buyers],
        "avg_order": monetary[buyers] / count[buyers],
        "tenure": tenure[buyers],
    }, index=pd.Index(ids[buyers], name="customer_id"))
    if gross_margin is not None or "margin" in transactions.columns:
        margin = line_margin(transactions, gross_margin)
        if not keep.all():
            margin = margin[keep]
        table["margin"] = np.bincount(codes, weights=margin, minlength=n)[buyers]
    return table


def line_margin(transactions: pd.DataFrame, gross_margin: float | None) -> np.ndarray:
    """Gross margin amount per transaction line.

    The ``margin`` column when the client has one (an amount, not a rate); lines without it,
    or every line when there is no such column, get ``gross_margin * amount`` (0 when no rate
    is given). A return (negative amount) thus gives back its margin.
    """
    amount = transactions["amount"].to_numpy(dtype=np.float64)
    estimate = amount * (gross_margin if gross_margin is not None else 0.0)
    if "margin" not in transactions.columns:
        return estimate
    margin = transactions["margin"].to_numpy(dtype=np.float64, na_value=np.nan)
    return np.where(np.isnan(margin), estimate, margin)


def quantile_scores(values, bins: int = 5, *, higher_is_better: bool = True) -> np.ndarray:
    """Scores 1..``bins`` by position in the distribution, ties always kept together.

    A customer's score is ``1 + floor(bins * below / n)``, where ``below`` is the number of
    customers with a strictly worse value (the rank with ``method="min"``, minus one).

    Why this rule: pandas' ``rank(method="first")`` followed by ``qcut`` splits identical
    values across scores by row order, so two customers who both bought once could get 1 and
    2, and re-sorting the file would change scores. Here a score depends only on the value and
    the distribution, so identical values get identical scores and the order of the rows never
    matters. With distinct values and ``n`` a multiple of ``bins`` the scores are exact
    quintiles. When a value is shared by many customers (most customers bought once) they all
    get the score of the lowest position they occupy, and the scores in between stay empty:
    the frequency scores of a base where 70 % bought once are 1 for them, and 4 or 5 for the
    others. The worst value always scores 1.

    Parameters
    ----------
    values : array_like
        One value per customer, without missing values.
    bins : int
        Number of scores (5 for quintiles).
    higher_is_better : bool
        False for recency (days since the last purchase: fewer is better, so recent = 5).
    """
    if bins < 2:
        raise ValueError(f"bins={bins}; expected at least 2")
    v = np.asarray(values, dtype=np.float64)
    if np.isnan(v).any():
        raise ValueError("cannot score missing values")
    if not higher_is_better:
        v = -v
    n = len(v)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    below = np.searchsorted(np.sort(v), v, side="left")
    return 1 + (bins * below) // n


def rfm_scores(rfm: pd.DataFrame, bins: int = 5) -> pd.DataFrame:
    """Recency, frequency and monetary scores 1..``bins`` (5 = best) for each customer.

    Parameters
    ----------
    rfm : DataFrame
        The output of :func:`rfm_table` (columns ``recency``, ``frequency``, ``monetary``).
    bins : int
        Number of scores per dimension; segment maps are written for 5.

    Returns
    -------
    DataFrame
        Same index, integer columns ``r_score``, ``f_score``, ``m_score``. Recency is
        reversed: the most recent customers get the highest score. Ties are kept in the same
        score and scores do not depend on row order (see :func:`quantile_scores`).
    """
    return pd.DataFrame({
        "r_score": quantile_scores(rfm["recency"], bins, higher_is_better=False),
        "f_score": quantile_scores(rfm["frequency"], bins),
        "m_score": quantile_scores(rfm["monetary"], bins),
    }, index=rfm.index)


def score_grid(scores: pd.DataFrame, bins: int = 5, rows: str = "r_score",
               columns: str = "f_score") -> pd.DataFrame:
    """Customers per cell of a score grid, every cell present (R 5..1 down, F 1..5 across).

    Parameters
    ----------
    scores : DataFrame
        The output of :func:`rfm_scores`.
    bins : int
        The score scale.
    rows, columns : str
        Score columns for the rows (highest first) and the columns (lowest first).
    """
    r = scores[rows].to_numpy(dtype=np.int64)
    c = scores[columns].to_numpy(dtype=np.int64)
    ok = (r >= 1) & (r <= bins) & (c >= 1) & (c <= bins)
    counts = np.bincount((r[ok] - 1) * bins + (c[ok] - 1), minlength=bins * bins)
    grid = counts.reshape(bins, bins)[::-1]
    levels = np.arange(1, bins + 1)
    return pd.DataFrame(grid, index=pd.Index(levels[::-1], name=rows),
                        columns=pd.Index(levels, name=columns))
