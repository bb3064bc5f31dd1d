"""Cost-benefit per segment: does each segment pay for the relationship it receives?

A segment that does not pay for its relationship may be moved to a cheaper one, or no longer
served. This module sets each segment's yearly revenue, gross margin and cost to serve
(:mod:`crmkit.relationships.cost_to_serve`) side by side with its customer value (the ``clv`` of the
per-customer table), and gives a verdict — invest, maintain, move to a cheaper relationship type,
or stop serving — with the rule and the figures that decided it.

The verdict is a short, ordered rule set rather than a score or a model, so that a consultant can
defend it line by line in front of the client, and the client can move a threshold in
``client.yaml`` (``relationships.thresholds``) and see what changes. The rules:

1. **stop serving** when a customer of the segment loses money every year (profit per customer
   < 0) *and* is worth less than it would cost to serve over the CLV horizon
   (``clv < cost to serve × lifetime factor``): no future margin pays the relationship back;
2. **move to a cheaper type** when the cost to serve exceeds ``max_cost_share`` (30 %) of the
   segment's yearly gross margin and the service ladder offers a type that is cheaper under the
   client's drivers (the verdict names it);
3. **invest** when the segment's CLV per customer is at least ``invest_min_clv_index`` (1.0)
   times the average customer's and each unit spent on the relationship returns at least
   ``invest_min_return`` (2.0) of profit;
4. **maintain** otherwise.

The segment's *main type* is the one whose own activity (variable cost) costs it most; the
cheaper type is the first one down its service ladder (``step_down`` in the catalogue) that costs
less per served customer under the client's drivers.

The lifetime factor ties yearly costs to the CLV horizon with a simple retention model: a
customer kept with yearly probability ``r`` and discounted at ``d`` is served
``L = Σ_{t=0}^{H-1} (r / (1 + d))^t`` discounted years over a horizon of ``H`` years (which tends
to the textbook multiplier ``(1 + d) / (1 + d − r)`` as ``H`` grows). Retention comes from the
data (:func:`retention_by_segment`) or from client.yaml.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from crmkit.core.i18n import Formatter, t
from crmkit.relationships.cost_to_serve import CostToServe, customer_profit, save_table
from crmkit.relationships.inventory import (
    RelationshipsConfig,
    VerdictThresholds,
    _window_months,
    relationships_config,
    segment_names,
    segment_order,
    type_name,
)

if TYPE_CHECKING:
    from crmkit.settings.client import ClientConfig

__all__ = [
    "DEFAULT_RETENTION",
    "VERDICTS",
    "cheaper_type",
    "figures",
    "lifetime_factor",
    "per_segment",
    "reason",
    "retention_by_segment",
    "save_table",
]

#: The verdicts, from the most to the least committed.
VERDICTS = ("invest", "maintain", "move_cheaper", "stop")
#: Yearly retention assumed when the data cannot estimate it (no customer a year old).
DEFAULT_RETENTION = 0.5
#: Retention is capped below 1: a segment kept for ever at no discount would be worth infinity.
MAX_RETENTION = 0.99


def lifetime_factor(retention, discount_rate, years):
    """Discounted years a customer is served over the horizon: ``Σ_{t=0}^{H-1} q^t``.

    ``q = retention / (1 + discount_rate)``; ``H = years`` may be fractional (``(1 − q^H) /
    (1 − q)``). With ``H → ∞`` this is the textbook lifetime multiplier ``(1 + d) / (1 + d − r)``.
    Works on scalars and numpy arrays alike.
    """
    r = np.clip(np.asarray(retention, dtype=float), 0.0, MAX_RETENTION)
    q = r / (1.0 + np.asarray(discount_rate, dtype=float))
    return (1.0 - q ** np.asarray(years, dtype=float)) / (1.0 - q)


def retention_by_segment(customers: pd.DataFrame,
                         config: ClientConfig | RelationshipsConfig | Mapping | None = None
                         ) -> pd.Series:
    """Yearly retention per segment: client.yaml's, else estimated from the table.

    The estimate is a repeat-purchase proxy for a non-contractual business: of the segment's
    customers who first bought at least a year before the analysis date (``tenure_days ≥ 365``),
    the share who bought again in the last year (``recency_days ≤ 365``). A segment with no such
    customer takes the whole base's estimate; without any, :data:`DEFAULT_RETENTION`. Values are
    capped at :data:`MAX_RETENTION`.

    Returns
    -------
    Series
        Indexed by segment (table order), values in [0, 0.99].
    """
    rel = relationships_config(config)
    order = segment_order(customers)
    segment = customers["segment"].astype(str)
    if {"tenure_days", "recency_days"} <= set(customers.columns):
        tenure = pd.to_numeric(customers["tenure_days"]).to_numpy(float)
        recency = pd.to_numeric(customers["recency_days"]).to_numpy(float)
        old = tenure >= 365
        kept = pd.Series((recency <= 365) & old, index=customers.index)
        eligible = pd.Series(old, index=customers.index)
        counts = eligible.groupby(segment).sum()
        rates = kept.groupby(segment).sum() / counts.where(counts > 0)
        overall = kept.sum() / eligible.sum() if eligible.sum() else DEFAULT_RETENTION
    else:
        rates, overall = pd.Series(dtype=float), DEFAULT_RETENTION
    out = rates.reindex(order).fillna(overall).clip(0.0, MAX_RETENTION)
    for key, value in rel.retention.items():
        if key in out.index:
            out[key] = min(value, MAX_RETENTION)
    out.index.name = "segment"
    return out.rename("retention").astype(float)


def cheaper_type(main: str | None, drivers: pd.DataFrame) -> str | None:
    """The first type down ``main``'s service ladder that costs less per served customer.

    Cost per served customer is ``variable_cost_per_customer`` of
    :func:`crmkit.relationships.inventory.
    drivers` (minutes per interaction × interactions a year × cost per minute, under the
    client's drivers). None when ``main`` is None or nothing down its ladder is cheaper.
    """
    if main is None:
        return None
    own = drivers.loc[main, "variable_cost_per_customer"]
    step, seen = drivers.loc[main, "step_down"], {main}
    while isinstance(step, str) and step not in seen:
        if drivers.loc[step, "variable_cost_per_customer"] < own:
            return step
        seen.add(step)
        step = drivers.loc[step, "step_down"]
    return None


def per_segment(customers: pd.DataFrame, cost: CostToServe,
                config: ClientConfig | RelationshipsConfig | Mapping | None = None, *,
                window_months: int | None = None, discount_rate: float | None = None,
                horizon_months: int | None = None,
                thresholds: VerdictThresholds | Mapping | None = None,
                retention: Mapping[str, float] | pd.Series | None = None) -> pd.DataFrame:
    """Revenue, margin, cost to serve, value and profit per segment, with a verdict.

    Yearly figures: ``revenue_window`` and ``margin_window`` × 12 / ``window_months``; the cost to
    serve is yearly already. ``profit = margin − cost_to_serve``.

    Parameters
    ----------
    customers : DataFrame
        The per-customer table (``customer_id, segment, revenue_window, margin_window, clv``,
        and ``tenure_days, recency_days`` for the retention estimate).
    cost : CostToServe
        From :func:`crmkit.relationships.cost_to_serve.compute`.
    config : ClientConfig or RelationshipsConfig, optional
        A ClientConfig supplies ``assumptions`` (window, discount rate, horizon) and the
        relationships section (thresholds, retention, drivers).
    window_months, discount_rate, horizon_months : optional
        Override the config's assumptions (defaults 12, 0.10, 36).
    thresholds : VerdictThresholds or mapping, optional
        Override ``relationships.thresholds``.
    retention : mapping or Series, optional
        Yearly retention per segment; default :func:`retention_by_segment`.

    Returns
    -------
    DataFrame
        One row per segment (table order): ``segment, segment_name, customers``; yearly totals
        ``revenue, margin, cost_to_serve, profit`` and ``clv``; per customer
        ``revenue_per_customer, margin_per_customer, cost_per_customer, profit_per_customer,
        clv_per_customer``; ``cost_share_of_margin`` (NaN when margin ≤ 0),
        ``return_on_relationship`` (profit / cost to serve; ±inf when there is no cost),
        ``clv_index`` (CLV per customer / the whole base's), ``retention, lifetime_factor,
        cost_horizon_per_customer`` (cost per customer × lifetime factor),
        ``net_value_per_customer`` (CLV − that), ``main_type`` (the type with most cost),
        ``cheaper_type``, ``verdict`` (one of :data:`VERDICTS`) and ``rule`` (1-4, the rule of
        the module docstring that decided it).
    """
    rel = relationships_config(config)
    limits = (rel.thresholds if thresholds is None else
              VerdictThresholds.model_validate(thresholds) if isinstance(thresholds, Mapping)
              else thresholds)
    assumptions = _assumptions(config, window_months, discount_rate, horizon_months)
    order = segment_order(customers)
    profit = customer_profit(customers, cost, window_months=assumptions["window_months"])
    profit["clv"] = customers["clv"].to_numpy(float)
    sums = profit.groupby("segment")[["revenue_year", "margin_year", "cost_to_serve", "profit",
                                      "clv"]].sum(min_count=1).reindex(order)
    counts = profit.groupby("segment").size().reindex(order).to_numpy()
    names = segment_names(customers)
    frame = pd.DataFrame({
        "segment": order, "segment_name": [names[s] for s in order], "customers": counts,
        "revenue": sums["revenue_year"].to_numpy(), "margin": sums["margin_year"].to_numpy(),
        "cost_to_serve": sums["cost_to_serve"].to_numpy(), "profit": sums["profit"].to_numpy(),
        "clv": sums["clv"].to_numpy()})
    for name in ("revenue", "margin", "cost", "profit", "clv"):
        column = "cost_to_serve" if name == "cost" else name
        frame[f"{name}_per_customer"] = frame[column] / frame["customers"]
    margin, serve, gain = (frame[c].to_numpy(float) for c in ("margin", "cost_to_serve",
                                                               "profit"))
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["cost_share_of_margin"] = np.where(margin > 0, serve / margin, np.nan)
        frame["return_on_relationship"] = np.where(
            serve > 0, gain / serve, np.where(gain > 0, np.inf, np.where(gain < 0, -np.inf,
                                                                         np.nan)))
    base_clv = profit["clv"].sum() / len(profit) if len(profit) else np.nan
    frame["clv_index"] = frame["clv_per_customer"] / base_clv if base_clv > 0 else np.nan
    kept = (retention_by_segment(customers, rel) if retention is None
            else pd.Series(retention, dtype=float).reindex(order))
    frame["retention"] = kept.reindex(order).to_numpy(float)
    frame["lifetime_factor"] = lifetime_factor(frame["retention"].to_numpy(),
                                               assumptions["discount_rate"],
                                               assumptions["horizon_months"] / 12.0)
    frame["cost_horizon_per_customer"] = frame["cost_per_customer"] * frame["lifetime_factor"]
    frame["net_value_per_customer"] = (frame["clv_per_customer"]
                                       - frame["cost_horizon_per_customer"])
    st = cost.segment_types
    # the type whose own activity costs most; allocated fixed costs would not be saved by moving
    # one segment off a type others still use
    main = (st[st["variable_cost"] > 0].sort_values("variable_cost", ascending=False)
            .drop_duplicates("segment").set_index("segment")["relationship_type"])
    mains = [main.get(s) for s in order]
    frame["main_type"] = pd.Series(mains, dtype=object)
    frame["cheaper_type"] = pd.Series([cheaper_type(m, cost.drivers) for m in mains],
                                      dtype=object)
    verdicts = [_verdict(row, limits) for row in frame.itertuples(index=False)]
    frame["verdict"] = [v for v, _ in verdicts]
    frame["rule"] = [r for _, r in verdicts]
    return frame


def _verdict(row: Any, limits: VerdictThresholds) -> tuple[str, int]:
    """The rule set of the module docstring, in order; returns (verdict, rule number)."""
    if row.profit_per_customer < 0 and row.clv_per_customer < row.cost_horizon_per_customer:
        return "stop", 1
    too_costly = row.cost_per_customer > limits.max_cost_share * row.margin_per_customer
    if too_costly and row.cost_per_customer > 0 and isinstance(row.cheaper_type, str):
        return "move_cheaper", 2
    index = row.clv_index
    if (not math.isnan(index) and index >= limits.invest_min_clv_index
            and row.profit_per_customer > 0
            and row.return_on_relationship >= limits.invest_min_return):
        return "invest", 3
    return "maintain", 4


def _assumptions(config: Any, window_months: int | None, discount_rate: float | None,
                 horizon_months: int | None) -> dict[str, float]:
    given = getattr(config, "assumptions", None)
    return {
        "window_months": window_months or _window_months(config),
        "discount_rate": (discount_rate if discount_rate is not None
                          else float(getattr(given, "discount_rate", 0.10))),
        "horizon_months": horizon_months or int(getattr(given, "horizon_months", 36)),
    }


def reason(row: Mapping | pd.Series, fmt: Formatter,
           thresholds: VerdictThresholds | None = None) -> str:
    """The sentence that explains one segment's verdict, with the figures that decided it.

    Parameters
    ----------
    row : mapping or Series
        A row of :func:`per_segment`.
    fmt : Formatter
    thresholds : VerdictThresholds, optional
        The thresholds used (default ones when not given).
    """
    limits = thresholds or VerdictThresholds()
    lang = fmt.lang
    verdict = row["verdict"]
    if verdict == "stop":
        return t("rel_reason_stop", lang, profit=fmt.money(row["profit_per_customer"]),
                 clv=fmt.money(row["clv_per_customer"]),
                 cost=fmt.money(row["cost_horizon_per_customer"]))
    if verdict == "move_cheaper":
        share = row["cost_share_of_margin"]
        types = {"main": type_name(row["main_type"], lang),
                 "cheaper": type_name(row["cheaper_type"], lang)}
        if _missing(share):
            return t("rel_reason_move_cheaper_no_margin", lang,
                     limit=fmt.pct(limits.max_cost_share), **types)
        return t("rel_reason_move_cheaper", lang, share=fmt.pct(share),
                 limit=fmt.pct(limits.max_cost_share), **types)
    if verdict == "invest":
        return t("rel_reason_invest", lang, index=fmt.number(row["clv_index"], 1),
                 ret=_ratio(row["return_on_relationship"], fmt),
                 min_index=fmt.number(limits.invest_min_clv_index, 1),
                 min_ret=fmt.number(limits.invest_min_return, 1))
    share = row["cost_share_of_margin"]
    if _missing(share):
        return t("rel_reason_maintain_no_margin", lang,
                 profit=fmt.money(row["profit_per_customer"]))
    return t("rel_reason_maintain", lang, profit=fmt.money(row["profit_per_customer"]),
             share=fmt.pct(share))


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _ratio(value: float, fmt: Formatter) -> str:
    if value is None or math.isnan(value):
        return "–"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    return fmt.number(value, 1)


def _finite(value):
    """A float for results.json: None for NaN and ±inf (a return with no cost to serve)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def figures(frame: pd.DataFrame, fmt: Formatter,
            thresholds: VerdictThresholds | None = None) -> dict:
    """Key figures of :func:`per_segment` for ``results.json`` and the workbook's prose.

    Returns
    -------
    dict
        ``thresholds`` (as used); ``counts`` (segments per verdict) and ``names`` (their names
        per verdict, in table order); ``totals`` (customers, yearly revenue, margin, cost to
        serve, profit and CLV, with the cost share of margin and the return on the
        relationship: None where undefined); ``best`` and ``worst`` (the segments with the
        highest and lowest profit per customer); ``segments`` (one record per segment: its
        figures, ``verdict``, ``rule``, the type names in the report's language and the
        ``reason`` sentence). Non-finite figures are None.
    """
    limits = thresholds or VerdictThresholds()
    lang = fmt.lang
    verdict = frame["verdict"]
    totals = {c: float(frame[c].sum()) for c in ("revenue", "margin", "cost_to_serve", "profit",
                                                  "clv")}
    totals["customers"] = int(frame["customers"].sum())
    totals["cost_share_of_margin"] = (totals["cost_to_serve"] / totals["margin"]
                                      if totals["margin"] > 0 else None)
    totals["return_on_relationship"] = (totals["profit"] / totals["cost_to_serve"]
                                        if totals["cost_to_serve"] > 0 else None)
    numeric = ["customers", "revenue", "margin", "cost_to_serve", "profit", "clv",
               "revenue_per_customer", "margin_per_customer", "cost_per_customer",
               "profit_per_customer", "clv_per_customer", "cost_share_of_margin",
               "return_on_relationship", "clv_index", "retention", "lifetime_factor",
               "cost_horizon_per_customer", "net_value_per_customer"]
    segments = []
    for _, row in frame.iterrows():
        record = {"segment": row["segment"], "segment_name": row["segment_name"]}
        record.update({c: _finite(row[c]) for c in numeric})
        record["customers"] = int(row["customers"])
        for column in ("main_type", "cheaper_type"):
            key = row[column]
            record[column] = key if isinstance(key, str) else None
            record[f"{column}_name"] = type_name(key, lang) if isinstance(key, str) else None
        record.update({"verdict": row["verdict"], "rule": int(row["rule"]),
                       "reason": reason(row, fmt, limits)})
        segments.append(record)
    ranked = [r for r in segments if r["profit_per_customer"] is not None]

    def pick(record):
        return None if record is None else {
            k: record[k] for k in ("segment", "segment_name", "profit_per_customer",
                                   "verdict")}

    best = max(ranked, key=lambda r: r["profit_per_customer"], default=None)
    worst = min(ranked, key=lambda r: r["profit_per_customer"], default=None)
    return {"thresholds": limits.model_dump(),
            "counts": {v: int((verdict == v).sum()) for v in VERDICTS},
            "names": {v: [str(n) for n in frame.loc[verdict == v, "segment_name"]]
                      for v in VERDICTS},
            "totals": totals, "best": pick(best), "worst": pick(worst), "segments": segments}
