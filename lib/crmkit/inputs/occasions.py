"""Purchase occasions: which transaction lines make one purchase.

Clients export lines, not purchases: a basket of three products is three lines, an invoice of an
online shop is one line per product, a return is a line of its own. Every count of purchases in
crmkit (RFM frequency, the customer-base models' repeat purchases, the holdout's actual
purchases, the context's orders, a segment's promoted orders, the check's repeat buyers) counts
*occasions*, and this module is the one place that says what an occasion is:

- when the transactions have an ``order_id`` (an invoice, ticket or order number), an occasion
  is one order of one customer: two orders on one day are two purchases. A line whose order id
  is blank falls back to the rule below;
- without it, an occasion is a customer-day: every line of a customer on one day.

An occasion is a **purchase** when it holds a purchase line, a line of 0 or more (a free item or
a fully discounted order is a visit); an occasion of returns only (a cancellation invoice
``C536379``, made negative on loading by :mod:`crmkit.inputs.line_items`, or a day on which the
customer only brought something back) is not a purchase, but its money still nets against the
customer's revenue. The time of an occasion is that of its first line (an order's lines
normally share one date); callers that count time in weeks or months pass the period of each
line as ``time``.

It lives in ``inputs`` rather than ``core`` because it knows the canonical transactions table
(its ``order_id``, its signed amounts), and both ``inputs`` (the check's repeat buyers) and
``analysis`` use it. Everything is numpy on integer codes: a million lines take well under a
second.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["CUSTOMER_CODES", "ORDER_COLUMN", "Occasions", "customer_codes", "customer_numbering",
           "day_numbers",
           "find", "frame", "group", "purchase_counts", "up_to", "with_customer_codes"]

#: The canonical column that makes an occasion one order.
ORDER_COLUMN = "order_id"

#: A hidden column the run's cached transactions carry (:func:`with_customer_codes`): each line's
#: customer id as a categorical over the sorted distinct ids. No client column is named so.
CUSTOMER_CODES = "__crmkit_customer_codes__"
#: The columns of a transaction line that an occasion is made of (:func:`find`), its numbering
#: included: all that the context analysis (workbook 01) reads of the lines.
LINE_COLUMNS = ("customer_id", "date", "amount", ORDER_COLUMN, CUSTOMER_CODES)


def customer_numbering(transactions: pd.DataFrame) -> pd.Categorical | None:
    """Each line's customer id as a categorical over the sorted distinct ids, or None when a
    line has no id (or there is no id column)."""
    if "customer_id" not in transactions.columns:
        return None
    codes, ids = pd.factorize(transactions["customer_id"], sort=True)
    if len(codes) and codes.min() < 0:
        return None   # a blank id: the callers' own checks name it
    return pd.Categorical.from_codes(codes, categories=ids)


def with_customer_codes(transactions: pd.DataFrame,
                        numbering: pd.Categorical | None = None) -> pd.DataFrame:
    """The transactions with :data:`CUSTOMER_CODES` added (in place), when every line has an id.

    Every count per customer starts by numbering the customers (``pd.factorize`` of the ids):
    two seconds for ten million lines, paid again in every function that counts. Numbered once
    here as a categorical, which travels with every row subset of the frame, the numbering of
    any subset is a ``bincount`` away (:func:`customer_codes`). ``numbering``: the
    :func:`customer_numbering` of these very lines, when the caller has it.
    """
    if "customer_id" not in transactions.columns or CUSTOMER_CODES in transactions.columns:
        return transactions
    coded = numbering if numbering is not None else customer_numbering(transactions)
    if coded is not None:
        transactions[CUSTOMER_CODES] = coded
    return transactions


def customer_codes(transactions: pd.DataFrame, keep: np.ndarray | None = None,
                   customer_id: str = "customer_id") -> tuple[np.ndarray, pd.Index]:
    """Each line's customer as a number, and the ids: ``pd.factorize(ids[keep], sort=True)``.

    Parameters
    ----------
    transactions : DataFrame
    keep : array of bool, optional
        Number only these lines (the codes returned are for them alone).
    customer_id : str
        The id column.

    Returns
    -------
    codes : numpy.ndarray of int64
        For each (kept) line, the position of its customer in ``ids``.
    ids : pandas.Index
        The distinct customer ids of those lines, sorted.
    """
    coded = transactions.get(CUSTOMER_CODES) if customer_id == "customer_id" else None
    if coded is None or not isinstance(coded.dtype, pd.CategoricalDtype):
        ids = transactions[customer_id]
        return pd.factorize(ids if keep is None else ids[keep], sort=True)
    codes = coded.cat.codes.to_numpy(dtype=np.int64)
    if keep is not None:
        codes = codes[keep]
    categories = coded.cat.categories
    present = np.bincount(codes, minlength=len(categories)) > 0
    if present.all():
        return codes, categories
    return (np.cumsum(present) - 1)[codes], categories[present]


@dataclass(frozen=True)
class Occasions:
    """The occasions of a set of transaction lines, sorted by customer, then time.

    Attributes
    ----------
    of_line : numpy.ndarray of int64
        For each line (in the order given), the occasion it belongs to.
    customer : numpy.ndarray of int64
        For each occasion, its customer's code (the codes passed to :func:`group`).
    time : numpy.ndarray of int64
        For each occasion, the time of its first line (day numbers unless told otherwise).
    amount : numpy.ndarray of float
        For each occasion, the net amount of its lines (purchases minus returns).
    purchase : numpy.ndarray of bool
        For each occasion, whether it holds a purchase line (an amount of 0 or more).
    by_order : bool
        True when at least one line had an order id (occasions are then orders).
    """

    of_line: np.ndarray
    customer: np.ndarray
    time: np.ndarray
    amount: np.ndarray
    purchase: np.ndarray
    by_order: bool

    def __len__(self) -> int:
        return len(self.customer)

    def purchases_per_customer(self, customers: int) -> np.ndarray:
        """Number of purchase occasions of each customer code ``0 .. customers - 1``."""
        return np.bincount(self.customer[self.purchase], minlength=customers)


def up_to(transactions: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """The lines dated on or before ``cutoff``: ``transactions`` itself when none is later.

    The analysis date is most often the last date of the log, and a filtered copy of every line
    is a gigabyte on a big client. The caller must not change the frame it gets in place.
    """
    keep = transactions["date"] <= cutoff
    return transactions if keep.all() else transactions[keep]


def day_numbers(dates: pd.Series) -> np.ndarray:
    """Dates as whole days since the epoch (int64), whatever the datetime resolution."""
    values = pd.to_datetime(dates)
    if getattr(values.dt, "tz", None) is not None:
        # An occasion is a local calendar day; UTC offsets would split local days.
        values = values.dt.tz_localize(None)
    return values.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype(np.int64)


def group(customer: np.ndarray, time: np.ndarray, amount: np.ndarray | None = None,
          orders: pd.Series | np.ndarray | None = None) -> Occasions:
    """Group lines into occasions: one per customer and order, or per customer and time.

    Parameters
    ----------
    customer : array of int
        Each line's customer code (>= 0).
    time : array of int
        Each line's time: its day number (:func:`day_numbers`), or a period ordinal.
    amount : array of float, optional
        Each line's signed amount. Without it, every occasion is a purchase and amounts are 0.
    orders : Series or array, optional
        Each line's order id; blank ones (NaN, None, "") fall back to the customer-time rule.

    Returns
    -------
    Occasions
    """
    # The line-long temporaries are dropped as soon as they are used: on ten million lines each
    # is 90 MB, and a dozen of them held at once were a gigabyte of a workbook's peak memory.
    customer = np.asarray(customer, dtype=np.int64)
    n = len(customer)
    values = (np.zeros(n) if amount is None else np.asarray(amount, dtype=np.float64))
    offset = np.asarray(time, dtype=np.int64)
    start = int(offset.min()) if n else 0
    offset = offset - start
    time_span = int(offset.max()) + 1 if n else 1
    order_code = np.full(n, -1, dtype=np.int64)
    if orders is not None and n:
        ids = pd.Series(np.asarray(orders, dtype=object))
        text = ids.astype(str).str.strip()
        blank = ids.isna() | (text == "")
        codes, _ = pd.factorize(text.where(~blank))  # a blank id gets -1
        order_code = np.where(blank.to_numpy(), -1, codes).astype(np.int64)
        del ids, text, blank, codes
    by_order = bool((order_code >= 0).any())
    n_orders = int(order_code.max()) + 1 if by_order else 0
    # One int64 key per line: the customer, then its order, or (past the orders) its time.
    span = n_orders + time_span
    if (int(customer.max()) + 1 if n else 1) * span >= 2**62:
        raise ValueError("occasions: too many customers, orders and periods for one key")
    key = np.where(order_code >= 0, order_code, n_orders + offset)
    del order_code
    key += customer * span
    # Grouping needs no stable order: min, max and sum do not depend on it.
    by_key = np.argsort(key)
    sorted_key = key[by_key]
    del key
    if not n:
        empty = np.zeros(0, dtype=np.int64)
        return Occasions(of_line=empty, customer=empty, time=empty, amount=np.zeros(0),
                         purchase=np.zeros(0, dtype=bool), by_order=by_order)
    new_group = np.empty(n, dtype=bool)
    new_group[0] = True
    np.not_equal(sorted_key[1:], sorted_key[:-1], out=new_group[1:])
    starts = np.flatnonzero(new_group)
    occasion_of_sorted = np.cumsum(new_group, dtype=np.int64)
    occasion_of_sorted -= 1
    del new_group
    occ_customer = sorted_key[starts] // span
    del sorted_key
    occ_time = np.minimum.reduceat(offset[by_key], starts)
    del offset
    sorted_values = values[by_key]
    occ_amount = np.add.reduceat(sorted_values, starts)
    occ_purchase = (np.maximum.reduceat(sorted_values, starts) >= 0 if amount is not None
                    else np.ones(len(starts), dtype=bool))
    del sorted_values
    of_line = np.empty(n, dtype=np.int64)
    if by_order:
        # Orders are numbered as they appear, not in time: sort the occasions by customer, then
        # time (one int64 key; ties keep their order).
        chronological = np.argsort(occ_customer * time_span + occ_time, kind="stable")
        rank = np.empty(len(starts), dtype=np.int64)
        rank[chronological] = np.arange(len(starts))
        of_line[by_key] = rank[occasion_of_sorted]
        occ_customer, occ_time = occ_customer[chronological], occ_time[chronological]
        occ_amount, occ_purchase = occ_amount[chronological], occ_purchase[chronological]
    else:  # keys are customer, then time: already in order
        of_line[by_key] = occasion_of_sorted
    return Occasions(of_line=of_line, customer=occ_customer, time=occ_time + start,
                     amount=occ_amount, purchase=occ_purchase, by_order=by_order)


class _Shared:
    """The whole log's occasions, found once for the callers inside :func:`shared`."""

    def __init__(self, transactions: pd.DataFrame):
        self.frame = weakref.ref(transactions)
        self.columns = tuple(transactions.columns)
        self.lines = len(transactions)
        self.found: tuple[Occasions, pd.Index] | None = None

    def holds(self, transactions: pd.DataFrame) -> bool:
        return (self.frame() is transactions and self.lines == len(transactions)
                and self.columns == tuple(transactions.columns))


_shared: _Shared | None = None


@contextlib.contextmanager
def shared(transactions: pd.DataFrame) -> Iterator[None]:
    """Within the block, the occasions of ``transactions`` (:func:`find`'s) are found once.

    Segmenting and valuing a customer base groups the same whole log three times (the RFM
    table, the value models' summary, the holdout's tracking): 2.7 s each on a log of ten
    million lines. Inside ``with shared(log):`` the first :func:`find` of that very frame (by
    identity, with its default columns) is kept and given to the next ones; the occasions are
    let go at the end of the block. The frame must not be changed in place meanwhile (as
    everywhere here: :func:`up_to`).
    """
    global _shared
    previous, _shared = _shared, _Shared(transactions)
    try:
        yield
    finally:
        _shared = previous


def is_shared(transactions: pd.DataFrame) -> bool:
    """Whether :func:`find` of this very frame is kept (inside :func:`shared`): a caller that
    would group the whole log itself takes :func:`find`'s occasions instead."""
    return _shared is not None and _shared.holds(transactions)


def find(transactions: pd.DataFrame, *, customer_id: str = "customer_id", date: str = "date",
         amount: str | None = "amount", time: np.ndarray | None = None
         ) -> tuple[Occasions, pd.Index]:
    """The occasions of a canonical transactions frame.

    Parameters
    ----------
    transactions : DataFrame
        ``customer_id``, ``date``, ``amount`` and, when the export has one, ``order_id``.
    customer_id, date, amount : str
        Column names (``amount=None``: no amounts, every occasion is a purchase).
    time : array of int, optional
        Each line's time, when not its day (e.g. a week's period ordinal).

    Returns
    -------
    occasions : Occasions
    customers : pandas.Index
        The customer ids (sorted): ``customers[occasions.customer]`` is each occasion's id.
    """
    usual = (customer_id, date, amount, time) == ("customer_id", "date", "amount", None)
    if usual and is_shared(transactions):
        if _shared.found is None:
            _shared.found = _find(transactions, customer_id, date, amount, time)
        return _shared.found
    return _find(transactions, customer_id, date, amount, time)


def _find(transactions: pd.DataFrame, customer_id: str, date: str, amount: str | None,
          time: np.ndarray | None) -> tuple[Occasions, pd.Index]:
    codes, customers = customer_codes(transactions, customer_id=customer_id)
    if time is None:
        time = day_numbers(transactions[date])
    values = None if amount is None else transactions[amount].to_numpy(dtype=np.float64)
    orders = transactions[ORDER_COLUMN] if ORDER_COLUMN in transactions.columns else None
    return group(codes, time, values, orders), customers


def frame(transactions: pd.DataFrame, *, purchases_only: bool = False) -> pd.DataFrame:
    """The occasions as a table: ``customer_id``, ``date`` (the day), ``amount`` (net),
    ``purchase`` (bool); one row per occasion, sorted by customer and date.

    Parameters
    ----------
    transactions : DataFrame
        Canonical transactions.
    purchases_only : bool
        Keep only the purchase occasions (leave out returns-only ones).
    """
    found, customers = find(transactions)
    table = pd.DataFrame({
        "customer_id": customers[found.customer],
        "date": pd.to_datetime(found.time.astype("datetime64[D]")).astype("datetime64[ns]"),
        "amount": found.amount,
        "purchase": found.purchase,
    })
    return table[table["purchase"]].reset_index(drop=True) if purchases_only else table


def purchase_counts(transactions: pd.DataFrame) -> pd.Series:
    """Purchase occasions per customer (customers with none have 0), indexed by customer id."""
    found, customers = find(transactions)
    return pd.Series(found.purchases_per_customer(len(customers)), index=customers,
                     name="purchases")
