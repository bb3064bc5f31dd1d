"""Who is in each segment, what they buy, how they answer offers, and how satisfied they are.

The CRM texts' first lesson is that there is no average customer, only types of customers:
:func:`average_customer_gap` shows how few customers resemble the mean, and the rest of this
module describes each segment with the three classes of customer data (typological: who they
are; consumption: what they buy; promotional history: what they were offered and how they
answered), their satisfaction on the five-point scale, their share of customer, and what each
segment is worth (revenue and margin). :func:`differentiate` is the second step of
identify-differentiate-interact-customise: which customers are the most valuable, which cost
more than they bring, and which are buying less.

``segments`` is everywhere a Series ``customer_id -> segment key`` (the ``segments`` of a
:class:`crmkit.analysis.segment_maps.Assignment`, the ``labels`` of a
:class:`crmkit.analysis.clustering.Clustering`, or any labelling); those objects are accepted as
they
are. Customers outside ``segments`` are left out of every table; tables list the segments in
their categorical order, ``other`` only when someone is in it.

All computations are vectorised on integer codes (no Python loop per customer).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from crmkit.analysis.rfm import as_timestamp, day_numbers, line_margin, rfm_table
from crmkit.analysis.segment_maps import OTHER
from crmkit.inputs import occasions

DateLike = dt.date | str | pd.Timestamp


# ---- helpers ---------------------------------------------------------------------------------

def _series(segments: Any) -> pd.Series:
    """The ``customer_id -> segment`` Series of an Assignment, a Clustering or a Series."""
    for attribute in ("segments", "labels"):
        value = getattr(segments, attribute, None)
        if isinstance(value, pd.Series):
            return value
    if isinstance(segments, pd.Series):
        return segments
    raise TypeError("segments must be a Series customer_id -> segment, an Assignment or a "
                    f"Clustering; found {type(segments).__name__}")


def _codes(segments: Any) -> tuple[np.ndarray, pd.Index, pd.Index]:
    """Segment code per customer (-1 when missing), the segment labels, and the customer ids."""
    series = _series(segments)
    if series.index.has_duplicates:
        duplicated = series.index[series.index.duplicated()].unique()[:5]
        raise ValueError("segments list a customer twice: " + ", ".join(map(str, duplicated)))
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy(dtype=np.int64)
        labels = pd.Index(series.cat.categories)
    else:
        codes, labels = pd.factorize(series, sort=True)
        labels = pd.Index(labels)
    return codes, labels, pd.Index(series.index)


def _result_index(labels: pd.Index, counts: np.ndarray) -> np.ndarray:
    """Segments to show: all of them, but ``other`` only when someone is in it."""
    return np.array([label != OTHER or count > 0 for label, count in zip(labels, counts,
                                                                       strict=True)])


def _line_positions(transactions: pd.DataFrame, ids: pd.Index) -> np.ndarray:
    """Position in ``ids`` of each transaction line's customer, -1 when not there.

    Factorising first and looking up the distinct customers only is several times faster
    than hashing a million customer ids against the index.
    """
    codes, uniques = occasions.customer_codes(transactions)
    lookup = ids.get_indexer(pd.Index(uniques))
    return np.where(codes >= 0, lookup[codes], -1)


def _before(transactions: pd.DataFrame, as_of: DateLike | None) -> pd.DataFrame:
    if as_of is None:
        return transactions
    return occasions.up_to(transactions, as_timestamp(as_of))


def _window_start(as_of: DateLike, months: int) -> pd.Timestamp:
    return as_timestamp(as_of) - pd.DateOffset(months=months)


def _frame(labels: pd.Index, show: np.ndarray, data: dict[str, Any]) -> pd.DataFrame:
    frame = pd.DataFrame(data, index=pd.Index(labels, name="segment"))
    return frame[show]


def _ratio(numerator, denominator) -> np.ndarray:
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator != 0, numerator / np.where(denominator != 0, denominator, 1),
                        np.nan)


# ---- there is no average customer ------------------------------------------------------------

@dataclass
class AverageGap:
    """How far customers are from the "average customer" (see :func:`average_customer_gap`).

    Attributes
    ----------
    customers : DataFrame
        Per customer: ``spend`` (net, currency), ``frequency`` (purchases), ``recency`` (days).
    summary : DataFrame
        One row per measure (``spend``, ``frequency``, ``recency``): ``mean``, ``median``,
        ``p10``, ``p90``, ``within_band`` (share of customers within ±``band`` of the mean) and
        ``below_mean`` (share of customers under the mean).
    band : float
    top20_revenue_share : float
        Share of net revenue from the top 20 % of customers by spend.
    gini : float
        Gini coefficient of spend (0: everyone spends the same; near 1: a few spend it all).
    """

    customers: pd.DataFrame
    summary: pd.DataFrame
    band: float
    top20_revenue_share: float
    gini: float

    def as_dict(self) -> dict[str, Any]:
        return {"band": self.band, "top20_revenue_share": self.top20_revenue_share,
                "gini": self.gini, "customers": int(len(self.customers)),
                "measures": {m: {c: float(v) for c, v in row.items()}
                             for m, row in self.summary.iterrows()}}


def gini(values) -> float:
    """Gini coefficient of non-negative values (negative ones are counted as 0).

    ``G = 2 Σ i·x_(i) / (n Σ x) − (n + 1) / n`` with ``x`` sorted ascending and ``i`` from 1;
    0 when everyone has the same, ``(n − 1) / n`` when one has everything.
    """
    x = np.sort(np.clip(np.asarray(values, dtype=np.float64), 0, None))
    n = len(x)
    total = x.sum()
    if n == 0 or total == 0:
        return float("nan")
    return float(2 * np.sum(np.arange(1, n + 1) * x) / (n * total) - (n + 1) / n)


def top_share(values, share: float = 0.2) -> float:
    """Share of the total held by the top ``share`` of values (at least one value)."""
    x = np.sort(np.asarray(values, dtype=np.float64))[::-1]
    if len(x) == 0 or x.sum() == 0:
        return float("nan")
    top = max(1, int(np.ceil(share * len(x))))
    return float(x[:top].sum() / x.sum())


def average_customer_gap(transactions: pd.DataFrame, as_of: DateLike, *, band: float = 0.2,
                         rfm: pd.DataFrame | None = None) -> AverageGap:
    """Per-customer spend, frequency and recency against their means.

    Parameters
    ----------
    transactions : DataFrame
        Canonical transactions.
    as_of : date
        The analysis date.
    band : float
        Half-width of the band around the mean, as a share of it (0.2: within ±20 %).
    rfm : DataFrame, optional
        :func:`crmkit.analysis.rfm.rfm_table` if already computed.

    Returns
    -------
    AverageGap

    Notes
    -----
    Computed on the customers who bought up to ``as_of`` (:func:`crmkit.analysis.rfm.rfm_table`),
    over
    all their history. A customer is within the band when ``|x − mean| ≤ band·|mean|``.
    """
    if rfm is None:
        rfm = rfm_table(transactions, as_of)
    customers = pd.DataFrame({"spend": rfm["monetary"], "frequency": rfm["frequency"],
                              "recency": rfm["recency"]})
    rows = {}
    for measure in customers.columns:
        x = customers[measure].to_numpy(dtype=np.float64)
        mean = float(x.mean()) if len(x) else float("nan")
        rows[measure] = {
            "mean": mean,
            "median": float(np.median(x)) if len(x) else float("nan"),
            "p10": float(np.quantile(x, 0.1)) if len(x) else float("nan"),
            "p90": float(np.quantile(x, 0.9)) if len(x) else float("nan"),
            "within_band": float(np.mean(np.abs(x - mean) <= band * abs(mean)))
            if len(x) else float("nan"),
            "below_mean": float(np.mean(x < mean)) if len(x) else float("nan"),
        }
    summary = pd.DataFrame.from_dict(rows, orient="index")
    summary.index.name = "measure"
    return AverageGap(customers=customers, summary=summary, band=band,
                      top20_revenue_share=top_share(customers["spend"], 0.2),
                      gini=gini(customers["spend"]))


# ---- segment profiles ------------------------------------------------------------------------

#: Columns of :func:`segment_profiles`, in order, with their kind (for formatting).
PROFILE_COLUMNS = {
    "customers": "integer", "customer_share": "pct", "revenue": "money", "revenue_share": "pct",
    "margin": "money", "margin_share": "pct", "revenue_per_customer": "money",
    "margin_per_customer": "money", "frequency": "number", "recency": "days",
    "avg_order_value": "money", "tenure": "days",
}


def segment_profiles(customers: pd.DataFrame | None, transactions: pd.DataFrame, segments: Any,
                     survey: pd.DataFrame | None = None, *, as_of: DateLike,
                     gross_margin: float = 0.30, rfm: pd.DataFrame | None = None,
                     with_total: bool = False) -> pd.DataFrame:
    """One row per segment: its size, what it is worth and how its customers behave.

    Parameters
    ----------
    customers : DataFrame or None
        Canonical customers; when it has ``category_spend``, a ``share_of_customer`` column
        is added (see :func:`share_of_customer`).
    transactions : DataFrame
        Canonical transactions; lines after ``as_of`` are ignored.
    segments : Series, Assignment or Clustering
        Segment per customer; the population of the table.
    survey : DataFrame, optional
        When given, ``respondents``, ``satisfaction_mean`` and ``top_two_box`` are added.
    as_of : date
        The analysis date.
    gross_margin : float
        Margin rate for lines without a ``margin`` amount (``assumptions.gross_margin``).
    rfm : DataFrame, optional
        :func:`crmkit.analysis.rfm.rfm_table` computed with ``gross_margin``, to avoid computing it
        twice (it must have a ``margin`` column).
    with_total : bool
        Append a row ``all`` for the whole population (the "average customer").

    Returns
    -------
    DataFrame
        Index ``segment``; columns ``customers``, ``customer_share``, ``revenue`` (net),
        ``revenue_share``, ``margin``, ``margin_share``, ``revenue_per_customer``,
        ``margin_per_customer``, ``frequency`` (mean purchases), ``recency`` (mean days since
        the last purchase), ``avg_order_value`` (segment revenue / segment purchases),
        ``tenure`` (mean days since the first purchase); all over the history up to ``as_of``.
        Revenue and margin add up over segments to the totals of their customers.

    Notes
    -----
    Margin is the ``margin`` column where the client has one and ``gross_margin × amount``
    elsewhere. Customers of ``segments`` who never bought count in ``customers`` with zero
    revenue and no recency.
    """
    codes, labels, ids = _codes(segments)
    if rfm is None or "margin" not in rfm.columns:
        rfm = rfm_table(transactions, as_of, gross_margin=gross_margin)
    aligned = rfm.reindex(ids)
    k = len(labels)
    in_segment = codes >= 0
    c = codes[in_segment]

    def total(column: str) -> np.ndarray:
        values = aligned[column].to_numpy(dtype=np.float64)[in_segment]
        return np.bincount(c, weights=np.nan_to_num(values), minlength=k)

    def mean(column: str) -> np.ndarray:
        values = aligned[column].to_numpy(dtype=np.float64)[in_segment]
        known = ~np.isnan(values)
        return _ratio(np.bincount(c[known], weights=values[known], minlength=k),
                      np.bincount(c[known], minlength=k))

    count = np.bincount(c, minlength=k)
    revenue, margin, orders = total("monetary"), total("margin"), total("frequency")
    data = {
        "customers": count,
        "customer_share": _ratio(count, count.sum()),
        "revenue": revenue,
        "revenue_share": _ratio(revenue, revenue.sum()),
        "margin": margin,
        "margin_share": _ratio(margin, margin.sum()),
        "revenue_per_customer": _ratio(revenue, count),
        "margin_per_customer": _ratio(margin, count),
        "frequency": _ratio(orders, count),
        "recency": mean("recency"),
        "avg_order_value": _ratio(revenue, orders),
        "tenure": mean("tenure"),
    }
    show = _result_index(labels, count)
    frame = _frame(labels, show, data)
    if survey is not None and len(survey):
        sat = satisfaction(survey, segments)
        frame = frame.join(sat[["respondents", "satisfaction_mean", "top_two_box"]], how="left")
        frame["respondents"] = frame["respondents"].fillna(0).astype(np.int64)
    if customers is not None and "category_spend" in customers.columns:
        soc = share_of_customer(customers, transactions, segments, as_of=as_of)
        frame = frame.join(soc[["share_of_customer"]], how="left")
    if with_total:
        # The whole population as one segment: the "average customer" row to compare with.
        everyone = pd.Series("all", index=ids[in_segment], name="segment")
        total = segment_profiles(customers, transactions, everyone, survey, as_of=as_of,
                                 gross_margin=gross_margin, rfm=rfm)
        frame = pd.concat([frame.set_axis(frame.index.astype(object)), total])
        frame.index.name = "segment"
    return frame


# ---- typological, consumption and promotional data ------------------------------------------

def typological_mix(customers: pd.DataFrame, segments: Any, attribute: str, *,
                    max_levels: int = 12, bands: int = 5, missing_label: str = "n/a",
                    order: str | None = None) -> pd.DataFrame:
    """Who the customers of each segment are: the mix of one ``customers.csv`` attribute.

    Parameters
    ----------
    customers : DataFrame
        Canonical customers.
    segments : Series, Assignment or Clustering
    attribute : str
        A column of ``customers`` (region, age band, signup channel …).
    max_levels : int
        A numeric attribute with more distinct values than this (age, a year) is cut into
        ``bands`` quantile bands first, so the table stays readable.
    missing_label : str
        Label of the customers whose attribute is empty.
    order : {"frequency", "value"}, optional
        Order of the columns: most frequent value first, or by value; by default by value for
        a numeric attribute or bands written with numbers ("18-24", "25-34" …, so that they
        read in order) and by frequency otherwise. The missing label is always last.

    Returns
    -------
    DataFrame
        Index ``segment``, one column per attribute value,
        values are shares of the segment's customers (each row sums to 1), plus a ``customers``
        column with the segment's count of customers found in ``customers``.
    """
    if attribute not in customers.columns:
        raise KeyError(f"customers has no column '{attribute}'; it has "
                       + ", ".join(c for c in customers.columns if c != "customer_id"))
    codes, labels, ids = _codes(segments)
    values = customers[attribute]
    numeric = pd.api.types.is_numeric_dtype(values)
    if order is None:
        text = values.dropna().astype(str)
        bands_like = len(text) > 0 and bool(text.str.match(r"\s*[<>≤≥+]?\s*\d").all())
        order = "value" if numeric or bands_like else "frequency"
    if order not in ("frequency", "value"):
        raise ValueError(f"order {order!r}; expected 'frequency' or 'value'")
    sort_key = values
    if numeric and values.nunique() > max_levels:
        banded = pd.qcut(values.astype(np.float64), bands, duplicates="drop")
        sort_key = banded.cat.codes.where(values.notna())
        values = banded.astype(str).where(values.notna())
    values = values.astype(object).where(values.notna(), missing_label).astype(str)
    position = ids.get_indexer(pd.Index(customers["customer_id"]))
    found = position >= 0
    seg = codes[position[found]]
    keep = seg >= 0
    seg = seg[keep]
    value_codes, levels = pd.factorize(values.to_numpy()[found][keep])
    k, m = len(labels), len(levels)
    counts = np.bincount(seg * m + value_codes, minlength=k * m).reshape(k, m)
    if order == "value":
        if numeric:  # by the smallest underlying number (or band) of each level
            number = pd.to_numeric(sort_key, errors="coerce").to_numpy(dtype=np.float64,
                                                                      na_value=np.nan)
            rank = (pd.Series(number[found][keep]).groupby(value_codes).min()
                    .reindex(range(m)).to_numpy(dtype=np.float64))
        else:  # alphabetically: age bands like "18-24", "25-34" read in order
            rank = np.argsort(np.argsort(np.asarray(levels, dtype=str), kind="stable"))
            rank = rank.astype(np.float64)
        rank = np.where(np.isnan(rank) | (np.asarray(levels) == missing_label), np.inf, rank)
        order = np.argsort(rank, kind="stable")
    else:
        total = counts.sum(axis=0).astype(np.float64)
        total[np.asarray(levels) == missing_label] = -1  # the missing label goes last
        order = np.argsort(-total, kind="stable")
    size = counts.sum(axis=1)
    shares = _ratio(counts[:, order], size[:, None])
    frame = pd.DataFrame(shares, index=pd.Index(labels, name="segment"),
                         columns=pd.Index(np.asarray(levels)[order], name=attribute))
    frame["customers"] = size
    return frame[_result_index(labels, np.bincount(codes[codes >= 0], minlength=k))]


def consumption_mix(transactions: pd.DataFrame, segments: Any, *, as_of: DateLike | None = None,
                    column: str = "category", missing_label: str = "n/a") -> pd.DataFrame:
    """What each segment buys: the share of its purchases in each category.

    Parameters
    ----------
    transactions : DataFrame
        Canonical transactions with a ``category`` (or ``column``) column.
    segments : Series, Assignment or Clustering
    as_of : date, optional
        Lines after it are ignored.
    column : str
        ``category`` or ``product``.

    Returns
    -------
    DataFrame
        Index ``segment``, one column per category (largest overall first); each row sums
        to 1. Purchases only (positive lines): a return says what a customer did not keep,
        and netting it would give a category a negative share.
    """
    if column not in transactions.columns:
        raise KeyError(f"transactions have no '{column}' column: the consumption mix needs it")
    tx = _before(transactions, as_of)
    codes, labels, ids = _codes(segments)
    position = _line_positions(tx, ids)
    seg = np.where(position >= 0, codes[np.clip(position, 0, None)], -1)
    keep = (seg >= 0) & (tx["amount"].to_numpy(dtype=np.float64) > 0)
    values = tx[column].astype(object).where(tx[column].notna(), missing_label).to_numpy()
    cat_codes, levels = pd.factorize(values[keep])
    amount = tx["amount"].to_numpy(dtype=np.float64)[keep]
    k, m = len(labels), len(levels)
    spend = np.bincount(seg[keep] * m + cat_codes, weights=amount,
                        minlength=k * m).reshape(k, m)
    order = np.argsort(-spend.sum(axis=0), kind="stable")
    shares = _ratio(spend[:, order], spend.sum(axis=1)[:, None])
    frame = pd.DataFrame(shares, index=pd.Index(labels, name="segment"),
                         columns=pd.Index(np.asarray(levels, dtype=object)[order].astype(str),
                                          name=column))
    return frame[_result_index(labels, np.bincount(codes[codes >= 0], minlength=k))]


def _promoted(transactions: pd.DataFrame) -> np.ndarray:
    if "promotion" not in transactions.columns:
        raise KeyError("transactions have no 'promotion' column: the promotional history "
                       "needs it")
    promotion = transactions["promotion"]
    return (promotion.notna() & (promotion.astype(str).str.strip() != "")).to_numpy(dtype=bool)


def promotion_history(transactions: pd.DataFrame, segments: Any, *,
                      as_of: DateLike | None = None) -> pd.DataFrame:
    """How each segment answered offers: promoted purchases and customers who used a promotion.

    Parameters
    ----------
    transactions : DataFrame
        Canonical transactions with ``promotion`` (code; empty = bought without one).
    segments : Series, Assignment or Clustering
    as_of : date, optional
        Lines after it are ignored.

    Returns
    -------
    DataFrame
        Index ``segment``; columns ``orders`` (purchase occasions of
        :mod:`crmkit.inputs.occasions`: orders, or customer-days with a purchase),
        ``promo_orders`` (of which with a promotion on at least one line),
        ``promo_order_share``, ``customers``, ``promo_customers`` (who ever bought with a
        promotion), ``promo_customer_share`` and ``promo_spend_share`` (share of purchase
        spend bought on promotion).
    """
    tx = _before(transactions, as_of)
    codes, labels, ids = _codes(segments)
    k = len(labels)
    position = _line_positions(tx, ids)
    amount = tx["amount"].to_numpy(dtype=np.float64)
    # Purchase lines only (0 or more): grouped, they are exactly the purchase occasions of
    # crmkit.inputs.occasions (orders, or customer-days), a promoted one having a promoted line.
    keep = (position >= 0) & (amount >= 0)
    keep &= np.where(position >= 0, codes[np.clip(position, 0, None)], -1) >= 0
    pos, spend = position[keep], amount[keep]
    del position, amount  # line-long: not held through the grouping (a big client's memory)
    promo, day = _promoted(tx)[keep], day_numbers(tx["date"])[keep]
    orders_of_line = (tx[occasions.ORDER_COLUMN].to_numpy()[keep]
                      if occasions.ORDER_COLUMN in tx.columns else None)
    del keep
    found = occasions.group(pos, day, spend, orders_of_line)
    occasion_promo = np.bincount(found.of_line, weights=promo, minlength=len(found)) > 0
    occasion_segment = codes[found.customer]
    orders = np.bincount(occasion_segment, minlength=k)
    promo_orders = np.bincount(occasion_segment, weights=occasion_promo, minlength=k)
    customer_promo = np.bincount(pos, weights=promo, minlength=len(ids)) > 0
    buyer = np.bincount(pos, minlength=len(ids)) > 0
    in_segment = codes >= 0
    buyers = np.bincount(codes[buyer & in_segment], minlength=k)
    promo_customers = np.bincount(codes[customer_promo & in_segment], minlength=k)
    seg_line = codes[pos]
    data = {
        "orders": orders,
        "promo_orders": promo_orders.astype(np.int64),
        "promo_order_share": _ratio(promo_orders, orders),
        "customers": buyers,
        "promo_customers": promo_customers,
        "promo_customer_share": _ratio(promo_customers, buyers),
        "promo_spend_share": _ratio(np.bincount(seg_line, weights=spend * promo, minlength=k),
                                    np.bincount(seg_line, weights=spend, minlength=k)),
    }
    return _frame(labels, _result_index(labels, np.bincount(codes[in_segment], minlength=k)),
                  data)


# ---- satisfaction and share of customer ------------------------------------------------------

def satisfaction(survey: pd.DataFrame, segments: Any) -> pd.DataFrame:
    """Satisfaction per segment on the five-point scale, and NPS where it was asked.

    Parameters
    ----------
    survey : DataFrame
        Canonical survey: ``customer_id``, ``satisfaction`` 1-5 (1 completely dissatisfied,
        5 completely satisfied), optionally ``nps`` 0-10.
    segments : Series, Assignment or Clustering

    Returns
    -------
    DataFrame
        Index ``segment``; columns ``respondents``, ``satisfaction_mean``,
        ``completely_satisfied`` (share answering 5), ``top_two_box`` (share answering 4 or
        5), ``share_1`` … ``share_5`` (the distribution, for a stacked chart), and when the
        survey has ``nps``: ``nps_respondents``, ``promoters`` (share 9-10), ``detractors``
        (share 0-6) and ``nps`` = (promoters − detractors) × 100, in points from −100 to 100.
        Respondents outside ``segments`` are left out; each survey row counts as one answer.
    """
    codes, labels, ids = _codes(segments)
    k = len(labels)
    position = ids.get_indexer(pd.Index(survey["customer_id"]))
    seg = np.where(position >= 0, codes[np.clip(position, 0, None)], -1)
    score = pd.to_numeric(survey["satisfaction"], errors="coerce").to_numpy(dtype=np.float64)
    ok = (seg >= 0) & ~np.isnan(score)
    s, sc = seg[ok], score[ok]
    respondents = np.bincount(s, minlength=k)
    data: dict[str, Any] = {
        "respondents": respondents,
        "satisfaction_mean": _ratio(np.bincount(s, weights=sc, minlength=k), respondents),
        "completely_satisfied": _ratio(np.bincount(s, weights=sc == 5, minlength=k),
                                       respondents),
        "top_two_box": _ratio(np.bincount(s, weights=sc >= 4, minlength=k), respondents),
    }
    for level in range(1, 6):
        data[f"share_{level}"] = _ratio(np.bincount(s, weights=sc == level, minlength=k),
                                        respondents)
    if "nps" in survey.columns:
        nps = pd.to_numeric(survey["nps"], errors="coerce").to_numpy(dtype=np.float64,
                                                                     na_value=np.nan)
        ok = (seg >= 0) & ~np.isnan(nps)
        s, n = seg[ok], nps[ok]
        answers = np.bincount(s, minlength=k)
        promoters = _ratio(np.bincount(s, weights=n >= 9, minlength=k), answers)
        detractors = _ratio(np.bincount(s, weights=n <= 6, minlength=k), answers)
        data.update(nps_respondents=answers, promoters=promoters, detractors=detractors,
                    nps=(promoters - detractors) * 100)
    return _frame(labels, _result_index(labels, np.bincount(codes[codes >= 0], minlength=k)),
                  data)


def customer_share(customers: pd.DataFrame, transactions: pd.DataFrame, *, as_of: DateLike,
                   months: int = 12) -> pd.DataFrame:
    """Per customer with an estimate of their category spend: our share of it.

    Returns
    -------
    DataFrame
        Index ``customer_id`` (customers with a positive ``category_spend`` only); columns
        ``our_spend`` (net spend in the ``months`` up to ``as_of``), ``category_spend`` and
        ``share`` = ``our_spend / category_spend`` clipped to 0-1, and ``capped`` (our spend
        exceeded the estimate: the estimate is too low, the share is counted as 1).
    """
    if "category_spend" not in customers.columns:
        raise KeyError("customers have no 'category_spend' column: share of customer needs "
                       "the customer's estimated spend in the category")
    estimate = pd.to_numeric(customers["category_spend"], errors="coerce")
    has = (estimate > 0).to_numpy()
    ids = pd.Index(customers["customer_id"].to_numpy()[has], name="customer_id")
    category_spend = estimate.to_numpy(dtype=np.float64)[has]
    end = as_timestamp(as_of)
    tx = transactions[(transactions["date"] > _window_start(end, months))
                      & (transactions["date"] <= end)]
    position = _line_positions(tx, ids)
    known = position >= 0
    ours = np.bincount(position[known], weights=tx["amount"].to_numpy(dtype=np.float64)[known],
                       minlength=len(ids))
    share = ours / category_spend
    return pd.DataFrame({"our_spend": ours, "category_spend": category_spend,
                         "share": np.clip(share, 0, 1), "capped": share > 1}, index=ids)


def share_of_customer(customers: pd.DataFrame, transactions: pd.DataFrame, segments: Any, *,
                      as_of: DateLike, months: int = 12) -> pd.DataFrame:
    """Share of customer per segment: how much of their category spend comes to us.

    Parameters
    ----------
    customers : DataFrame
        Canonical customers with ``category_spend`` (estimated yearly spend in the category).
    transactions : DataFrame
    segments : Series, Assignment or Clustering
    as_of : date
    months : int
        Our spend is measured over this many months up to ``as_of`` (12: a year, like the
        estimate).

    Returns
    -------
    DataFrame
        Index ``segment``; ``customers_with_estimate`` (customers of the segment with a
        positive ``category_spend``; the others are left out), ``share_of_customer`` (mean of
        the customers' shares), ``median_share`` and ``capped`` (customers whose spend with us
        exceeded their estimate, counted as 1).
    """
    codes, labels, ids = _codes(segments)
    k = len(labels)
    per = customer_share(customers, transactions, as_of=as_of, months=months)
    position = ids.get_indexer(per.index)
    seg = np.where(position >= 0, codes[np.clip(position, 0, None)], -1)
    ok = seg >= 0
    s, share = seg[ok], per["share"].to_numpy()[ok]
    n = np.bincount(s, minlength=k)
    median = pd.Series(share).groupby(s).median().reindex(range(k)).to_numpy()
    data = {"customers_with_estimate": n,
            "share_of_customer": _ratio(np.bincount(s, weights=share, minlength=k), n),
            "median_share": median,
            "capped": np.bincount(s, weights=per["capped"].to_numpy()[ok],
                                  minlength=k).astype(np.int64)}
    return _frame(labels, _result_index(labels, np.bincount(codes[codes >= 0], minlength=k)),
                  data)


# ---- differentiate ---------------------------------------------------------------------------

FLAGS = ("most_valuable", "unprofitable", "declining")


@dataclass
class Differentiation:
    """Customers flagged for different treatment (see :func:`differentiate`).

    Attributes
    ----------
    customers : DataFrame
        Per customer: ``segment`` (when segments were given), ``value``, ``margin_window``,
        ``spend_window``, ``spend_previous``, ``spend_change`` and the three flags
        ``most_valuable``, ``unprofitable``, ``declining``.
    by_segment : DataFrame
        Per segment: ``customers``, and for each flag its count and share (``<flag>_share``).
    settings : dict
        The thresholds used (``top_share``, ``decline``, ``window_months``, ``value_threshold``:
        the smallest value among the most valuable).
    """

    customers: pd.DataFrame
    by_segment: pd.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)

    def flagged(self, flag: str) -> pd.DataFrame:
        """The customers with ``flag``, largest value first."""
        if flag not in FLAGS:
            raise KeyError(f"flag {flag!r}; expected one of {', '.join(FLAGS)}")
        return self.customers[self.customers[flag]].sort_values("value", ascending=False)

    def as_dict(self) -> dict[str, Any]:
        return {**self.settings,
                "counts": {f: int(self.customers[f].sum()) for f in FLAGS},
                "shares": {f: float(self.customers[f].mean()) if len(self.customers) else 0.0
                           for f in FLAGS}}


def differentiate(transactions: pd.DataFrame, segments: Any = None, *, as_of: DateLike,
                  gross_margin: float = 0.30, window_months: int = 12, top_share: float = 0.2,
                  decline: float = 0.3, value: pd.Series | None = None) -> Differentiation:
    """Flag the customers to treat differently: most valuable, unprofitable, declining.

    Parameters
    ----------
    transactions : DataFrame
        Canonical transactions.
    segments : Series, Assignment or Clustering, optional
        The population and its segments; by default every customer who bought up to ``as_of``.
    as_of : date
    gross_margin : float
        Margin rate for lines without a ``margin`` amount.
    window_months : int
        Length of the current window (and of the previous one it is compared with).
    top_share : float
        Share of customers flagged most valuable.
    decline : float
        A drop of more than this share of the previous window's spend flags ``declining``.
    value : Series, optional
        Value per customer to rank on (e.g. a customer lifetime value); by default the
        customer's total gross margin up to ``as_of``.

    Returns
    -------
    Differentiation

    Notes
    -----
    - most valuable: the top ``top_share`` by value (``ceil(top_share × n)`` customers); a
      customer tied with the last one is included, so ties never depend on row order;
    - unprofitable: bought or returned something in the window and their net margin over it
      is zero or less (returns exceeded purchases, or sales below cost); customers with no
      activity in the window are not flagged (they are lapsed, not unprofitable);
    - declining: spent in the previous window (net > 0) and the window's net spend is lower
      by more than ``decline`` (a customer who stopped buying is declining by 100 %).
    """
    end = as_timestamp(as_of)
    tx = _before(transactions, end)
    if segments is not None:
        codes, labels, ids = _codes(segments)
    else:
        ids = rfm_table(tx, end).index
        codes, labels = np.zeros(len(ids), dtype=np.int64), pd.Index(["all"])
    n = len(ids)
    position = _line_positions(tx, ids)
    known = position >= 0
    pos = position[known]
    amount = tx["amount"].to_numpy(dtype=np.float64)[known]
    margin = line_margin(tx, gross_margin)[known]
    dates = tx["date"].to_numpy()[known]
    current = dates > np.datetime64(_window_start(end, window_months))
    previous = ~current & (dates > np.datetime64(_window_start(end, 2 * window_months)))

    if value is None:
        values = np.bincount(pos, weights=margin, minlength=n)
    else:
        values = value.reindex(ids).to_numpy(dtype=np.float64, na_value=np.nan)
    spend_now = np.bincount(pos[current], weights=amount[current], minlength=n)
    spend_before = np.bincount(pos[previous], weights=amount[previous], minlength=n)
    margin_now = np.bincount(pos[current], weights=margin[current], minlength=n)
    active_now = np.bincount(pos[current], minlength=n) > 0

    top = max(1, int(np.ceil(top_share * n))) if n else 0
    filled = np.where(np.isnan(values), -np.inf, values)
    # Rank with method="min" on the value: customers tied with the last of the top all get in.
    above = len(filled) - np.searchsorted(np.sort(filled), filled, side="right")
    most_valuable = (above < top) & ~np.isnan(values)
    change = _ratio(spend_now - spend_before, np.where(spend_before > 0, spend_before, 0))
    table = pd.DataFrame({
        "value": values, "margin_window": margin_now, "spend_window": spend_now,
        "spend_previous": spend_before, "spend_change": change,
        "most_valuable": most_valuable,
        "unprofitable": active_now & (margin_now <= 0),
        "declining": (spend_before > 0) & (change < -decline),
    }, index=pd.Index(ids, name="customer_id"))
    if segments is not None:
        table.insert(0, "segment", _series(segments).reindex(ids).to_numpy())
    k = len(labels)
    in_segment = codes >= 0
    count = np.bincount(codes[in_segment], minlength=k)
    data: dict[str, Any] = {"customers": count}
    for flag in FLAGS:
        flagged = np.bincount(codes[in_segment], weights=table[flag].to_numpy()[in_segment],
                              minlength=k).astype(np.int64)
        data[flag] = flagged
        data[f"{flag}_share"] = _ratio(flagged, count)
    by_segment = _frame(labels, _result_index(labels, count), data)
    threshold = float(values[most_valuable].min()) if most_valuable.any() else float("nan")
    return Differentiation(customers=table, by_segment=by_segment,
                           settings={"top_share": top_share, "decline": decline,
                                     "window_months": window_months,
                                     "value_threshold": threshold,
                                     "value": "margin" if value is None else "given"})
