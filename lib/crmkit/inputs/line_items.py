"""Invoice lines as purchases: quantity × unit price, cancellations, lines that are not purchases.

A web shop or an ERP exports one line per product of an invoice: ``InvoiceNo, StockCode,
Quantity, UnitPrice, CustomerID``. Mapping ``amount`` to the unit price passes every check and
puts a fifth of the revenue in front of the client; so ``quantity`` and ``unit_price`` are
canonical columns, and the amount of a line is their product. Around the real purchases such an
export holds lines that are not purchases (postage, bank charges, marketplace fees, manual
adjustments), cancellations (invoice numbers with a prefix, ``C536379``) and guest checkouts
without a customer id. ``client.yaml`` (:class:`~crmkit.settings.client.TransactionSettings`)
says what they are; this module finds them, and :class:`Reading` keeps the count of what was
read, kept and left out, and why, for ``crmkit check``.

Nothing is left out silently: every line left out is counted with the money it held.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: Why lines are left out, in the order they are applied (a line counts under the first).
REASONS = ("missing_customer", "excluded_product", "zero_amount")


@dataclass
class LeftOut:
    """Lines of one table left out for one reason.

    Attributes
    ----------
    reason : str
        One of :data:`REASONS`.
    lines : int
        How many lines.
    amount : float
        The net money they held (NaN where a value could not be read counts as 0).
    codes : list of str
        For excluded products: the codes found, most lines first.
    """

    reason: str
    lines: int
    amount: float
    codes: list[str] = field(default_factory=list)


@dataclass
class Reading:
    """What ``crmkit check`` says about one table: where it came from, what was kept and why.

    Attributes
    ----------
    table : str
        ``"customers"``, ``"transactions"``...
    source : str
        The file (``"book.xlsx#Sheet"`` for a sheet), ``"client.yaml (queries.<table>)"`` for a
        query, or the transactions' file when the customers are derived from them.
    origin : str
        ``"file"``, ``"query"`` or ``"derived"`` (customers taken from the transactions).
    lines_read : int
        Data lines (or result rows) read, before anything was left out.
    lines_kept : int
        Lines in the canonical frame.
    left_out : list of LeftOut
    revenue : float
        Net amount of the lines kept (transactions only, else 0).
    amount_from : tuple of str or None
        The headers of quantity and unit price, when the amount is their product.
    files : list of str
        For a query: the files it read.
    orders : int or None
        Distinct order ids kept (None without an order id).
    cancellations : LeftOut or None
        Lines kept as cancellations (order id with the cancellation prefix), with their money.
    prefix : str or None
        That prefix.
    """

    table: str
    source: str
    origin: str = "file"
    lines_read: int = 0
    lines_kept: int = 0
    left_out: list[LeftOut] = field(default_factory=list)
    revenue: float = 0.0
    amount_from: tuple[str, str] | None = None
    files: list[str] = field(default_factory=list)
    orders: int | None = None
    cancellations: LeftOut | None = None
    prefix: str | None = None

    @property
    def left_out_amount(self) -> float:
        """Net money of every line left out."""
        return float(sum(item.amount for item in self.left_out))


def excluded(products: pd.Series, patterns: list[str]) -> np.ndarray:
    """Mask of the lines whose product code matches one of ``patterns``.

    A pattern is a product code, case and surrounding spaces ignored; ``*`` and ``?`` are
    wildcards (``AMAZON*``). Blank products match nothing.

    Parameters
    ----------
    products : pandas.Series
        The product codes as text (as found in the file).
    patterns : list of str
        ``transactions.exclude_products``.

    Returns
    -------
    numpy.ndarray of bool
    """
    if not patterns or not len(products):
        return np.zeros(len(products), dtype=bool)
    folded = [p.strip().casefold() for p in patterns]
    codes = products.astype(str).str.strip().str.casefold()
    uniques = pd.unique(codes.to_numpy(dtype=object))
    hit = {code: bool(code) and any(fnmatch.fnmatchcase(code, p) for p in folded)
           for code in uniques}
    return codes.map(hit).to_numpy(dtype=bool)


def unmatched_patterns(products: pd.Series, patterns: list[str]) -> list[str]:
    """The patterns of ``exclude_products`` that match no product (likely a typo)."""
    codes = pd.unique(products.astype(str).str.strip().str.casefold().to_numpy(dtype=object))
    return [p for p in patterns
            if not any(fnmatch.fnmatchcase(c, p.strip().casefold()) for c in codes if c)]


def cancelled(order_ids: pd.Series, prefix: str | None) -> np.ndarray:
    """Mask of the lines whose order id starts with ``prefix`` (case as written)."""
    if not prefix:
        return np.zeros(len(order_ids), dtype=bool)
    return order_ids.astype(str).str.strip().str.startswith(prefix).to_numpy(dtype=bool)


def top_codes(products: pd.Series, limit: int = 6) -> list[str]:
    """The distinct product codes, most lines first (for the check's summary)."""
    counts = products.astype(str).str.strip().value_counts()
    return [str(code) for code in counts.index[:limit]]
