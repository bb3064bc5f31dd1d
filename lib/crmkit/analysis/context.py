"""Context analysis: where the client stands before any CRM decision is taken.

The CRM texts start strategy from the objective (attract new customers, retain the ones the firm
has, or grow sales to them) and from two contexts: the internal one (financial, operational,
technological and people capabilities and limits) and the external one (competitors, industry
maturity, regulation, disruptive technology). This module scores the consultant's judgements from
``client.yaml``, computes the indicators the data can tell (new-customer rate, repeat rate, lapse
rate, revenue concentration), and combines both into a recommended objective whose reasoning is a
table of evidence a client can read, and a SWOT synthesis.

The rules are deliberately simple and visible: a consultant must be able to defend every point
in front of the client, which a fitted model would not allow.

**A figure the data cannot support is not shown as a number.** The indicators compare the last
``window_months`` with the same length just before. When the transactions start inside one of
those windows (a twelve-month export leaves the previous window a few days), a comparison over
it would read "revenue +2,590 %" or "91 % new customers": every indicator that needs a window the
data cover for less than :data:`MIN_COVERAGE` of its length is ``None`` (``null`` in
results.json), the table says why, and the objective's evidence leaves it out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from crmkit.core.i18n import t
from crmkit.inputs import occasions
from crmkit.settings.client import ClientConfig

OBJECTIVES = ("attract", "retain", "grow")
CAPABILITIES = ("financial", "operational", "technological", "people")
EXTERNAL_FACTORS = ("competitors", "industry_maturity", "regulation", "disruptive_technology")

IMPACT_WEIGHT = {"low": 1.0, "medium": 2.0, "high": 3.0}
# A threat three years out matters, but less than one arriving this year.
TIME_FRAME_WEIGHT = {"short": 1.0, "medium": 0.75, "long": 0.5}

#: Share of a window the transactions must cover for an indicator over it to be computed.
MIN_COVERAGE = 0.9
#: The windows each window-based indicator needs: ``window`` (the last ``window_months``) and
#: ``previous_window`` (the same length before it). "New" needs the previous window too: a first
#: purchase in the window is only a new customer's if the data could have seen an earlier one.
WINDOWS_NEEDED = {
    "active_customers": ("window",),
    "new_customers": ("window", "previous_window"),
    "new_customer_rate": ("window", "previous_window"),
    "lapse_rate": ("window", "previous_window"),
    "revenue_window": ("window",),
    "revenue_previous_window": ("previous_window",),
    "revenue_growth": ("window", "previous_window"),
    "average_order_value": ("window",),
    "orders_per_active_customer": ("window",),
}


@dataclass
class Indicators:
    """What the transaction data says about the customer base, over the indicator window.

    Rates are shares between 0 and 1. ``window`` is the last ``window_months`` before ``as_of``;
    the previous window is the same length just before it. An indicator over a window the data
    cover for less than :data:`MIN_COVERAGE` is None; ``coverage`` gives each window's covered
    share (``window``, ``previous_window``), ``not_covered`` the indicators left out with the
    window that is short, and ``data_start`` the first transaction date.
    """

    as_of: dt.date
    window_months: int
    customers: int
    buyers: int
    active_customers: int | None
    new_customers: int | None
    new_customer_rate: float | None
    repeat_rate: float
    lapse_rate: float | None
    lapsed_share: float
    top20_revenue_share: float
    revenue_window: float | None
    revenue_previous_window: float | None
    revenue_growth: float | None
    average_order_value: float | None
    orders_per_active_customer: float | None
    satisfaction_top_two_box: float | None
    data_start: dt.date | None = None
    coverage: dict[str, float] = field(default_factory=lambda: {"window": 1.0,
                                                                "previous_window": 1.0})
    not_covered: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["as_of"] = self.as_of.isoformat()
        data["data_start"] = self.data_start.isoformat() if self.data_start else None
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Indicators:
        """The indicators of :meth:`as_dict` (through JSON written with NaN allowed: each float
        comes back to the last bit)."""
        data = dict(data)
        data["as_of"] = dt.date.fromisoformat(data["as_of"])
        if data["data_start"] is not None:
            data["data_start"] = dt.date.fromisoformat(data["data_start"])
        return cls(**data)


def known(value) -> bool:
    """True when an indicator has a value: not None (window not covered) and not NaN."""
    return value is not None and value == value


def window_coverage(data_start: pd.Timestamp | None, start: pd.Timestamp,
                    end: pd.Timestamp) -> float:
    """Share of the window ``(start, end]`` (in days) that transactions from ``data_start`` on
    cover: 1 when the data start on or before the window's first day, 0 after its end."""
    length = (end - start).days
    if data_start is None or pd.isna(data_start) or length <= 0:
        return 0.0
    first_day = start + pd.Timedelta(days=1)
    covered = (end - max(first_day, pd.Timestamp(data_start).normalize())).days + 1
    return float(min(max(covered / length, 0.0), 1.0))


def _window_start(as_of: dt.date, months: int) -> pd.Timestamp:
    return pd.Timestamp(as_of) - pd.DateOffset(months=months)


def orders(transactions: pd.DataFrame) -> pd.DataFrame:
    """Occasions: one row per customer and order (customer and day without order ids), with
    its net amount (:mod:`crmkit.inputs.occasions`).

    Clients export line items; a basket of three lines is one purchase, so frequency and order
    value are measured on occasions. The context counts every occasion, a returns-only one
    included (its money is in the window's revenue), as it always has.
    """
    return occasions.frame(transactions)[["customer_id", "date", "amount"]]


def indicators(customers: pd.DataFrame, transactions: pd.DataFrame, as_of: dt.date, *,
               window_months: int = 12, lapse_days: int = 180,
               survey: pd.DataFrame | None = None) -> Indicators:
    """Compute the customer-base indicators of the context analysis.

    Parameters
    ----------
    customers, transactions : DataFrame
        Canonical frames (docs/data-contract.md).
    as_of : date
        The analysis date; transactions after it are ignored.
    window_months : int
        Length of the indicator window (and of the previous window it is compared with).
    lapse_days : int
        A buyer whose last purchase is older than this is counted as lapsed.
    survey : DataFrame, optional
        When given, the share of respondents satisfied or completely satisfied (4-5).

    Returns
    -------
    Indicators

    Notes
    -----
    - new-customer rate: customers whose first purchase falls in the window, over the customers
      active in the window;
    - repeat rate: buyers with purchases on two or more distinct days, over all buyers;
    - lapse rate: customers active in the previous window who did not buy in this one, over the
      customers active in the previous window (year-on-year attrition);
    - revenue concentration: share of net revenue from the top 20 % of buyers;
    - an indicator of :data:`WINDOWS_NEEDED` whose window the data (from the first transaction
      on) cover for less than :data:`MIN_COVERAGE` is None, named in ``not_covered``.
    """
    end = pd.Timestamp(as_of)
    # only the columns an occasion is made of are copied (occasions.find)
    needed = [c for c in ("customer_id", "date", "amount", occasions.ORDER_COLUMN,
                          occasions.CUSTOMER_CODES) if c in transactions.columns]
    tx = transactions.loc[(transactions["date"] <= end).to_numpy(dtype=bool), needed]
    start = _window_start(as_of, window_months)
    previous_start = _window_start(as_of, 2 * window_months)

    # The occasions (context.orders) as arrays on customer codes: sorted by customer, then
    # date, so a customer's first and last are the ends of its run; revenue is pandas' own sum
    # in the occasions' order, as a groupby of the table of occasions gives it.
    found, ids = occasions.find(tx)
    buyers = len(ids)
    customer = found.customer
    date = found.time.astype("datetime64[D]").astype("datetime64[ns]")
    ends = np.flatnonzero(np.r_[customer[1:] != customer[:-1], True]) if len(customer) \
        else np.zeros(0, dtype=np.int64)
    starts = np.r_[0, ends[:-1] + 1] if len(ends) else ends
    first, last = date[starts], date[ends]
    per_customer_occasions = np.bincount(customer, minlength=buyers)
    revenue = pd.Series(found.amount).groupby(customer).sum().to_numpy()
    in_window = date > start.to_datetime64()
    in_previous = (date > previous_start.to_datetime64()) & ~in_window
    active = np.bincount(customer[in_window], minlength=buyers) > 0
    previous = np.bincount(customer[in_previous], minlength=buyers) > 0
    active_customers = int(active.sum())
    new = int((first > start.to_datetime64()).sum())

    revenue_sorted = np.sort(revenue)[::-1]
    top_n = max(1, int(np.ceil(0.2 * buyers))) if buyers else 0
    total_revenue = revenue_sorted.sum()
    window_amounts = pd.Series(found.amount[in_window])
    revenue_window = float(window_amounts.sum())
    revenue_previous = float(pd.Series(found.amount[in_previous]).sum())

    top_two_box = None
    if survey is not None and len(survey):
        top_two_box = float((survey["satisfaction"] >= 4).mean())

    def share(numerator: float, denominator: float) -> float:
        return float(numerator / denominator) if denominator else float("nan")

    data_start = tx["date"].min() if len(tx) else None
    coverage = {"window": window_coverage(data_start, start, end),
                "previous_window": window_coverage(data_start, previous_start, start)}
    values = dict(
        active_customers=active_customers,
        new_customers=new,
        new_customer_rate=share(new, active_customers),
        lapse_rate=share(int((previous & ~active).sum()), int(previous.sum())),
        revenue_window=revenue_window,
        revenue_previous_window=revenue_previous,
        revenue_growth=share(revenue_window - revenue_previous, revenue_previous),
        average_order_value=share(window_amounts.sum(), len(window_amounts)),
        orders_per_active_customer=share(len(window_amounts), active_customers),
    )
    not_covered = {}
    for key, windows in WINDOWS_NEEDED.items():
        short = [w for w in windows if coverage[w] < MIN_COVERAGE]
        if short:
            # the shorter window is the one that explains it
            not_covered[key] = min(short, key=lambda w: coverage[w])
            values[key] = None
    return Indicators(
        as_of=as_of,
        window_months=window_months,
        customers=int(len(customers)),
        buyers=int(buyers),
        repeat_rate=share((per_customer_occasions >= 2).sum(), buyers),
        lapsed_share=share(
            (last < (end - pd.Timedelta(days=lapse_days)).to_datetime64()).sum(), buyers),
        top20_revenue_share=share(revenue_sorted[:top_n].sum(), total_revenue),
        satisfaction_top_two_box=top_two_box,
        data_start=None if data_start is None else pd.Timestamp(data_start).date(),
        coverage=coverage, not_covered=not_covered,
        **values,
    )


#: Indicators shown in the workbook's table, with how each is formatted.
INDICATOR_KINDS = {
    "customers": "integer", "buyers": "integer", "active_customers": "integer",
    "new_customers": "integer", "new_customer_rate": "pct", "repeat_rate": "pct",
    "lapse_rate": "pct", "lapsed_share": "pct", "top20_revenue_share": "pct",
    "revenue_window": "money", "revenue_growth": "pct", "average_order_value": "money",
    "orders_per_active_customer": "number", "satisfaction_top_two_box": "pct",
}


def indicator_rows(ind: Indicators, fmt, lapse_days: int) -> pd.DataFrame:
    """The indicators as rows of (key, name, value, formatted value) for a table.

    An indicator left out for want of data over its window keeps its row, with ``value`` None
    and a ``display`` that says why (the share of the window the data cover).
    """
    rows = []
    for key, kind in INDICATOR_KINDS.items():
        value = getattr(ind, key)
        name = t(f"ind_{key}", fmt.lang, days=lapse_days)
        if key in ind.not_covered:
            window = ind.not_covered[key]
            rows.append({"key": key, "name": name, "value": None,
                         "display": t(f"ind_not_covered_{window}", fmt.lang,
                                      coverage=fmt.pct(ind.coverage[window]))})
            continue
        if value is None:
            continue
        display = {"integer": lambda v: fmt.number(v), "pct": lambda v: fmt.pct(v, 1),
                   "money": lambda v: fmt.money(v), "number": lambda v: fmt.number(v, 1)}[kind]
        rows.append({"key": key, "name": name, "value": value, "display": display(value)})
    return pd.DataFrame(rows)


def coverage_note(ind: Indicators, lang: str, fmt) -> str | None:
    """One sentence naming the indicators left out and why; None when every one is computed."""
    if not ind.not_covered:
        return None
    window = min(ind.not_covered.values(), key=lambda w: ind.coverage[w])
    names = ", ".join(t(f"ind_{k}", lang, days="").lower() for k in ind.not_covered)
    return t("ind_coverage_note", lang, names=names, coverage=fmt.pct(ind.coverage[window]),
             window=t(f"ind_window_{window}", lang),
             start=ind.data_start.isoformat() if ind.data_start else "–",
             limit=fmt.pct(MIN_COVERAGE))


def monthly_activity(transactions: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """Revenue, active, new and returning customers per calendar month up to ``as_of``.

    Counted on the occasions (:func:`orders`: every occasion, a returns-only one included) as
    arrays on customer codes, not as a table of text ids grouped by month: sorted by customer,
    then date, a customer's months are runs, the first of them the month it is new. Revenue is
    pandas' own sum in the occasions' order, as a groupby of the table of occasions gives it.
    """
    tx = occasions.up_to(transactions, pd.Timestamp(as_of))
    found, _ = occasions.find(tx)
    customer = found.customer
    month = found.time.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    months, month_code = np.unique(month, return_inverse=True)
    changes = customer[1:] != customer[:-1]
    first_of_customer = np.r_[True, changes] if len(customer) else np.zeros(0, dtype=bool)
    first_in_month = np.r_[True, changes | (month[1:] != month[:-1])] if len(customer) \
        else first_of_customer
    active = np.bincount(month_code[first_in_month], minlength=len(months))
    new = np.bincount(month_code[first_of_customer], minlength=len(months))
    monthly = pd.DataFrame({
        "revenue": pd.Series(found.amount).groupby(month_code).sum().reindex(
            range(len(months)), fill_value=0.0).to_numpy(dtype=float),
        "active_customers": active.astype(np.int64),
        "new_customers": new.astype(int),
        "returning_customers": (active - new).astype(int),
    }, index=pd.PeriodIndex.from_ordinals(months, freq="M").to_timestamp())
    monthly.index.name = "month"
    return monthly


def internal_scores(config: ClientConfig, lang: str) -> pd.DataFrame:
    """The four internal capabilities, scored 1 (hard limit) to 5 (strength), with notes."""
    rows = []
    for key in CAPABILITIES:
        capability = getattr(config.context.internal, key)
        rows.append({"capability": key, "name": t(f"capability_{key}", lang),
                     "score": capability.score,
                     "reading": t(_reading(capability.score), lang), "note": capability.note})
    return pd.DataFrame(rows)


def _reading(score: int) -> str:
    if score <= 2:
        return "reading_limit"
    return "reading_strength" if score >= 4 else "reading_adequate"


def external_factors(config: ClientConfig, lang: str) -> pd.DataFrame:
    """The four external factors with impact, time frame, direction and a signed weight.

    The weight is impact (1-3) × time-frame discount (1, 0.75, 0.5), positive for an
    opportunity and negative for a threat, so that factors can be ranked and summed.
    """
    rows = []
    for key in EXTERNAL_FACTORS:
        factor = getattr(config.context.external, key)
        weight = IMPACT_WEIGHT[factor.impact] * TIME_FRAME_WEIGHT[factor.time_frame]
        rows.append({
            "factor": key, "name": t(f"factor_{key}", lang),
            "impact": factor.impact, "impact_label": t(f"impact_{factor.impact}", lang),
            "time_frame": factor.time_frame,
            "time_frame_label": t(f"time_frame_{factor.time_frame}", lang),
            "direction": factor.direction,
            "direction_label": t(f"direction_{factor.direction}", lang),
            "weight": weight if factor.direction == "opportunity" else -weight,
            "stage": getattr(factor, "stage", None),
            "note": factor.note,
        })
    return pd.DataFrame(rows)


@dataclass
class Evidence:
    """One reason for or against each objective, in points."""

    key: str
    finding: str
    attract: int = 0
    retain: int = 0
    grow: int = 0


def _evidence(config: ClientConfig, ind: Indicators, lang: str, fmt) -> list[Evidence]:
    """The rules behind the recommended objective; each row is shown to the client."""
    ev: list[Evidence] = []
    ext = config.context.external
    stage = ext.industry_maturity.stage
    stage_name = t(f"stage_{stage}", lang)
    if stage in ("introduction", "growth"):
        ev.append(Evidence("stage", t("ev_stage_young", lang, stage=stage_name), attract=2))
    else:
        ev.append(Evidence("stage", t("ev_stage_mature", lang, stage=stage_name), retain=2, grow=1))

    if ext.competitors.direction == "threat" and ext.competitors.impact != "low":
        ev.append(Evidence("competitors", t("ev_competitors_threat", lang),
                           retain=2 if ext.competitors.impact == "high" else 1))
    elif ext.competitors.direction == "opportunity":
        ev.append(Evidence("competitors", t("ev_competitors_opportunity", lang), attract=1))

    if ext.disruptive_technology.impact != "low":
        if ext.disruptive_technology.direction == "threat":
            ev.append(Evidence("technology", t("ev_technology_threat", lang), retain=1))
        else:
            ev.append(Evidence("technology", t("ev_technology_opportunity", lang), attract=1,
                               grow=1))

    if known(ind.lapse_rate):  # a previous window the data cover, with customers in it
        if ind.lapse_rate > 0.35:
            ev.append(Evidence("lapse", t("ev_lapse_high", lang, rate=fmt.pct(ind.lapse_rate)),
                               retain=2))
        elif ind.lapse_rate > 0.20:
            ev.append(Evidence("lapse", t("ev_lapse_moderate", lang,
                                          rate=fmt.pct(ind.lapse_rate)), retain=1))
        else:
            ev.append(Evidence("lapse", t("ev_lapse_low", lang, rate=fmt.pct(ind.lapse_rate)),
                               grow=1))

    if ind.repeat_rate >= 0.5:
        ev.append(Evidence("repeat", t("ev_repeat_high", lang, rate=fmt.pct(ind.repeat_rate)),
                           grow=2))
    elif ind.repeat_rate < 0.25:
        ev.append(Evidence("repeat", t("ev_repeat_low", lang, rate=fmt.pct(ind.repeat_rate)),
                           retain=1))

    if known(ind.new_customer_rate):  # windows not covered: no evidence either way
        if ind.new_customer_rate < 0.15:
            ev.append(Evidence("new", t("ev_new_low", lang,
                                        rate=fmt.pct(ind.new_customer_rate)), attract=2))
        elif ind.new_customer_rate > 0.40:
            ev.append(Evidence("new", t("ev_new_high", lang,
                                        rate=fmt.pct(ind.new_customer_rate)), retain=1))

    if ind.top20_revenue_share > 0.70:
        ev.append(Evidence("concentration", t("ev_concentration_high", lang,
                                              share=fmt.pct(ind.top20_revenue_share)), retain=1))

    if known(ind.revenue_growth):
        if ind.revenue_growth < -0.05:
            ev.append(Evidence("growth", t("ev_revenue_falling", lang,
                                           rate=fmt.pct(-ind.revenue_growth)), retain=1))
        elif ind.revenue_growth > 0.10:
            ev.append(Evidence("growth", t("ev_revenue_rising", lang,
                                           rate=fmt.pct(ind.revenue_growth)), grow=1))

    if ind.satisfaction_top_two_box is not None:
        if ind.satisfaction_top_two_box >= 0.6:
            ev.append(Evidence("satisfaction", t("ev_satisfaction_high", lang,
                                                 share=fmt.pct(ind.satisfaction_top_two_box)),
                               grow=1))
        elif ind.satisfaction_top_two_box < 0.4:
            ev.append(Evidence("satisfaction", t("ev_satisfaction_low", lang,
                                                 share=fmt.pct(ind.satisfaction_top_two_box)),
                               retain=1))

    if config.context.internal.financial.score <= 2:
        # Winning a new customer costs several times more than keeping one.
        ev.append(Evidence("finance", t("ev_finance_tight", lang), attract=-1, retain=1))
    return ev


@dataclass
class Recommendation:
    """The objective the evidence points to, and the one the strategy will follow."""

    recommended: str
    chosen: str
    overridden: bool
    points: dict[str, int]
    evidence: pd.DataFrame

    def as_dict(self) -> dict:
        return {"recommended": self.recommended, "chosen": self.chosen,
                "overridden": self.overridden, "points": self.points,
                "evidence": self.evidence.drop(columns=["finding"]).to_dict("records")}


#: When two objectives tie, retention wins: it is the cheaper of the two to pursue.
TIE_ORDER = ("retain", "grow", "attract")


def recommend_objective(config: ClientConfig, ind: Indicators, lang: str, fmt) -> Recommendation:
    """Weigh the evidence into attract, retain or grow, honouring a consultant's override.

    Ties are broken in the order retain, grow, attract: keeping a customer is cheaper than
    winning a new one.
    """
    evidence = _evidence(config, ind, lang, fmt)
    table = pd.DataFrame([asdict(e) for e in evidence],
                         columns=["key", "finding", *OBJECTIVES])
    points = {o: int(table[o].sum()) for o in OBJECTIVES}
    best = max(TIE_ORDER, key=lambda o: (points[o], -TIE_ORDER.index(o)))
    chosen = config.objective or best
    return Recommendation(recommended=best, chosen=chosen, overridden=chosen != best,
                          points=points, evidence=table)


def swot(config: ClientConfig, ind: Indicators, lang: str, fmt) -> dict[str, list[str]]:
    """Strengths, weaknesses, opportunities and threats, from judgements and indicators.

    Returns a dict with keys ``strengths``, ``weaknesses``, ``opportunities``, ``threats``,
    each a list of sentences in ``lang``, strongest first.
    """
    out: dict[str, list[str]] = {k: [] for k in
                                 ("strengths", "weaknesses", "opportunities", "threats")}
    internal = internal_scores(config, lang).sort_values("score", ascending=False)
    for row in internal.itertuples():
        text = row.name + (f": {row.note}" if row.note else "")
        if row.score >= 4:
            out["strengths"].append(text)
        elif row.score <= 2:
            out["weaknesses"].insert(0, text)
    if ind.repeat_rate >= 0.5:
        out["strengths"].append(t("swot_repeat_high", lang, rate=fmt.pct(ind.repeat_rate)))
    elif ind.repeat_rate < 0.25:
        out["weaknesses"].append(t("swot_repeat_low", lang, rate=fmt.pct(ind.repeat_rate)))
    if known(ind.lapse_rate) and ind.lapse_rate > 0.35:
        out["weaknesses"].append(t("swot_lapse_high", lang, rate=fmt.pct(ind.lapse_rate)))
    elif known(ind.lapse_rate) and ind.lapse_rate <= 0.20:
        out["strengths"].append(t("swot_lapse_low", lang, rate=fmt.pct(ind.lapse_rate)))
    if ind.top20_revenue_share > 0.70:
        out["weaknesses"].append(t("swot_concentration", lang,
                                   share=fmt.pct(ind.top20_revenue_share)))
    if ind.satisfaction_top_two_box is not None and ind.satisfaction_top_two_box >= 0.6:
        out["strengths"].append(t("swot_satisfaction", lang,
                                  share=fmt.pct(ind.satisfaction_top_two_box)))

    external = external_factors(config, lang)
    external = external.reindex(external["weight"].abs().sort_values(ascending=False).index)
    for row in external.itertuples():
        text = f"{row.name} ({row.impact_label}, {row.time_frame_label})"
        text += f": {row.note}" if row.note else ""
        out["opportunities" if row.direction == "opportunity" else "threats"].append(text)
    return out
