"""Cost-benefit per segment: does each segment pay for the relationship it receives?

A segment that does not pay for its relationship may be moved to a cheaper one, or no longer
served; a valuable segment that is drifting away may be won back. This module sets each segment's
yearly revenue, gross margin and cost to serve (:mod:`crmkit.relationships.cost_to_serve`) side by
side with its customer value (the ``clv`` of the per-customer table), and gives a verdict —
invest, maintain, move to a cheaper relationship type, win back, or stop serving — with the rule,
the figures that decided it and its € impact over the horizon.

**Only avoidable cost decides.** The rules weigh a segment's *variable* cost to serve (minutes ×
rate, per-contact costs): the fixed cost of the platforms is incurred whoever uses them, and
moving or dropping one segment does not retire it, so it never enters a verdict (chapter 3 shows
it at the platform level). The segment's ``cost_to_serve`` and ``profit`` columns keep the
fully-loaded view (variable plus its display share of the platforms) for the tables.

The verdict is a short, ordered rule set rather than a score or a model, so that a consultant can
defend it line by line in front of the client, and the client can move a threshold in
``client.yaml`` (``relationships.thresholds``) and see what changes. The rules:

1. **win back** when the objective is ``retain``, the segment's past yearly margin per customer
   is at least ``win_back_min_past_value`` (0.5) times the average customer's, and it is lapsing:
   at least ``win_back_min_lapsed_share`` (two in three) of its customers have not bought for
   ``lapse_days`` — a clear majority, so that a loyal segment with a slow buying rhythm (half of
   it quiet for a while) is not mistaken for one drifting away. (The model's yearly retention is
   no test of lapsing: it is the retention of the customers still alive, high even in a segment
   that is mostly gone.) It gets a reactivation test, never a downgrade;
2. **stop serving** when a customer of the segment loses money every year after its variable cost
   (contribution < 0) *and* is worth less than that cost over the horizon (``clv < variable cost
   × lifetime factor``) — *on logged costs alone*: a loss that rests on costs imputed from the
   catalogue's drivers is not evidence enough (the rules go on, and the reason says so);
3. **move to a cheaper type** when the variable cost exceeds ``max_cost_share`` (30 %) of the
   segment's yearly gross margin and moving its main type's contacts down the service ladder
   saves money under the client's drivers (the verdict names the type);
4. **invest** when the segment's CLV per customer is at least ``invest_min_clv_index`` (1.0)
   times the average customer's and each unit of variable cost returns at least
   ``invest_min_return`` (2.0) of contribution;
5. **maintain** otherwise.

The € impact over the horizon (``impact``), for the whole segment: *stop*, the variable cost no
longer spent minus the customer value given up; *move cheaper*, the variable cost saved by the
move, over the horizon; *win back*, ``win_back_rate`` of the segment brought back at its past
yearly margin less its variable cost, valued at the base's average retention; *invest* and
*maintain*, the customer value left after the variable cost over the horizon (what the
relationship protects).

The segment's *main type* is the one whose own activity (variable cost) costs it most; the
cheaper type is the first one down its service ladder (``step_down`` in the catalogue) that costs
less per served customer under the client's drivers.

The lifetime factor ties yearly costs to the CLV horizon with a simple retention model: a
customer kept with yearly probability ``r`` and discounted at ``d`` is served
``L = Σ_{t=0}^{H-1} (r / (1 + d))^t`` discounted years over a horizon of ``H`` years (which tends
to the textbook multiplier ``(1 + d) / (1 + d − r)`` as ``H`` grows). Retention is the one yearly
retention of the customer-base model (:func:`crmkit.analysis.retention.yearly_retention`), or
client.yaml's (:func:`retention_by_segment`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from crmkit.analysis.retention import yearly_retention
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
VERDICTS = ("invest", "maintain", "move_cheaper", "win_back", "stop")
#: The objectives of :mod:`crmkit.analysis.context` (the one that turns on the win-back rule).
RETAIN = "retain"
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
    """Yearly retention per segment: client.yaml's, else the customer-base model's.

    When the per-customer table carries the model's ``probability_alive`` and ``retention``
    (``tables/customers.parquet`` of workbook 02), retention is the model-based definition of
    :func:`crmkit.analysis.retention.yearly_retention` — the expected share of the segment's
    customers alive now who are still alive in twelve months — so chapters 2, 4 and 5 speak of one
    retention. A segment whose customers are all certainly gone takes the base's figure.

    Without those columns (an older table), a repeat-purchase proxy: of the segment's customers
    who first bought at least a year before the analysis date (``tenure_days ≥ 365``), the share
    who bought again in the last year (``recency_days ≤ 365``); a segment with no such customer
    takes the whole base's estimate, and without any, :data:`DEFAULT_RETENTION`.

    Values are capped at :data:`MAX_RETENTION`.

    Returns
    -------
    Series
        Indexed by segment (table order), values in [0, 0.99].
    """
    rel = relationships_config(config)
    order = segment_order(customers)
    segment = customers["segment"].astype(str)
    if {"probability_alive", "retention"} <= set(customers.columns):
        rates = yearly_retention(customers.assign(segment=segment))
        whole = yearly_retention(customers.assign(_all="all"), by="_all")
        overall = float(whole.iloc[0]) if len(whole) and whole.notna().all() \
            else DEFAULT_RETENTION
    elif {"tenure_days", "recency_days"} <= set(customers.columns):
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
    out = rates.reindex(order).astype(float).fillna(overall).clip(0.0, MAX_RETENTION)
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
                retention: Mapping[str, float] | pd.Series | None = None,
                objective: str | None = None, lapse_days: int | None = None) -> pd.DataFrame:
    """Revenue, margin, cost to serve, value and contribution per segment, with a verdict.

    Yearly figures: ``revenue_window`` and ``margin_window`` × 12 / ``window_months``; the cost to
    serve is yearly already. The verdict figures use the *variable* (avoidable) cost only
    (module docstring).

    Parameters
    ----------
    customers : DataFrame
        The per-customer table (``customer_id, segment, revenue_window, margin_window, clv``;
        ``recency_days`` and ``tenure_days``, and ``margin`` (the margin of the whole history),
        for the win-back rule; ``probability_alive`` and ``retention`` for the model's retention).
    cost : CostToServe
        From :func:`crmkit.relationships.cost_to_serve.compute`.
    config : ClientConfig or RelationshipsConfig, optional
        A ClientConfig supplies ``assumptions`` (window, discount rate, horizon, lapse days),
        ``objective`` and the relationships section (thresholds, retention, drivers).
    window_months, discount_rate, horizon_months : optional
        Override the config's assumptions (defaults 12, 0.10, 36).
    thresholds : VerdictThresholds or mapping, optional
        Override ``relationships.thresholds``.
    retention : mapping or Series, optional
        Yearly retention per segment; default :func:`retention_by_segment`.
    objective : {"attract", "retain", "grow"}, optional
        The strategy's objective (workbook 01's chosen one); default client.yaml's
        ``objective``. Under ``retain`` the win-back rule applies.
    lapse_days : int, optional
        Days without a purchase that make a customer lapsed (default the config's, else 180).

    Returns
    -------
    DataFrame
        One row per segment (table order): ``segment, segment_name, customers``; yearly totals
        ``revenue, margin, variable_cost`` (avoidable), ``fixed_cost`` (display share of the
        platforms), ``cost_to_serve`` (the two together), ``profit`` (margin − cost to serve),
        ``contribution`` (margin − variable cost) and ``clv``; ``imputed_share`` (of the
        variable cost, imputed from the drivers); per customer ``revenue_per_customer,
        margin_per_customer, cost_per_customer, profit_per_customer, clv_per_customer,
        variable_cost_per_customer, contribution_per_customer, logged_cost_per_customer``;
        ``cost_share_of_margin`` (variable cost / margin, NaN when margin ≤ 0),
        ``return_on_relationship`` (contribution / variable cost; ±inf without variable cost),
        ``clv_index`` (CLV per customer / the whole base's), ``retention, lifetime_factor,
        cost_horizon_per_customer`` (variable cost per customer × lifetime factor),
        ``net_value_per_customer`` (CLV − that); ``past_value_per_customer`` (past yearly
        margin), ``past_value_index``, ``lapsed_share``, ``base_retention`` (the whole base's,
        customer-weighted); ``main_type``, ``cheaper_type``,
        ``move_saving`` (yearly variable cost the move to it saves the segment); ``verdict``
        (one of :data:`VERDICTS`), ``rule`` (1-5, the rule of the module docstring that decided
        it), ``stop_unproven`` (the stop test holds only with imputed costs), ``impact`` (€ over
        the horizon, for the segment), ``objective`` and ``horizon_years``.
    """
    rel = relationships_config(config)
    limits = (rel.thresholds if thresholds is None else
              VerdictThresholds.model_validate(thresholds) if isinstance(thresholds, Mapping)
              else thresholds)
    assumptions = _assumptions(config, window_months, discount_rate, horizon_months)
    goal = objective if objective is not None else getattr(config, "objective", None)
    lapse = lapse_days or int(getattr(getattr(config, "assumptions", None), "lapse_days", 180)
                              or 180)
    order = segment_order(customers)
    profit = customer_profit(customers, cost, window_months=assumptions["window_months"])
    profit["clv"] = customers["clv"].to_numpy(float)
    sums = profit.groupby("segment")[["revenue_year", "margin_year", "cost_to_serve", "profit",
                                      "clv"]].sum(min_count=1).reindex(order)
    counts = profit.groupby("segment").size().reindex(order).to_numpy()
    names = segment_names(customers)
    segs = cost.segments.set_index("segment").reindex(order)
    frame = pd.DataFrame({
        "segment": order, "segment_name": [names[s] for s in order], "customers": counts,
        "revenue": sums["revenue_year"].to_numpy(), "margin": sums["margin_year"].to_numpy(),
        "variable_cost": segs["variable_cost"].fillna(0.0).to_numpy(float),
        "fixed_cost": segs["fixed_cost"].fillna(0.0).to_numpy(float),
        "cost_to_serve": sums["cost_to_serve"].to_numpy(), "profit": sums["profit"].to_numpy(),
        "clv": sums["clv"].to_numpy(),
        "imputed_share": segs["imputed_share"].fillna(0.0).to_numpy(float)})
    frame["contribution"] = frame["margin"] - frame["variable_cost"]
    for name in ("revenue", "margin", "cost", "profit", "clv", "variable_cost",
                 "contribution"):
        column = "cost_to_serve" if name == "cost" else name
        frame[f"{name}_per_customer"] = frame[column] / frame["customers"]
    frame["logged_cost_per_customer"] = (frame["variable_cost_per_customer"]
                                         * (1.0 - frame["imputed_share"]))
    margin, serve, gain = (frame[c].to_numpy(float) for c in ("margin", "variable_cost",
                                                               "contribution"))
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
    years = assumptions["horizon_months"] / 12.0
    frame["lifetime_factor"] = lifetime_factor(frame["retention"].to_numpy(),
                                               assumptions["discount_rate"], years)
    frame["cost_horizon_per_customer"] = (frame["variable_cost_per_customer"]
                                          * frame["lifetime_factor"])
    frame["net_value_per_customer"] = (frame["clv_per_customer"]
                                       - frame["cost_horizon_per_customer"])
    past = _past_value(customers, order)
    frame["past_value_per_customer"] = past["per_customer"].to_numpy(float)
    frame["past_value_index"] = past["index"].to_numpy(float)
    frame["lapsed_share"] = _lapsed_share(customers, order, lapse).to_numpy(float)
    st = cost.segment_types
    # the type whose own activity costs most; the platforms' fixed costs would not be saved by
    # moving one segment off a type
    main = (st[st["variable_cost"] > 0].sort_values("variable_cost", ascending=False)
            .drop_duplicates("segment").set_index("segment")["relationship_type"])
    mains = [main.get(s) for s in order]
    cheaper = [cheaper_type(m, cost.drivers) for m in mains]
    frame["main_type"] = pd.Series(mains, dtype=object)
    frame["cheaper_type"] = pd.Series(cheaper, dtype=object)
    frame["move_saving"] = [_move_saving(st, cost.drivers, s, m, c)
                            for s, m, c in zip(order, mains, cheaper, strict=True)]
    weights = frame["customers"].to_numpy(float)
    base_retention = (float(np.nansum(frame["retention"] * weights) / weights.sum())
                      if weights.sum() else DEFAULT_RETENTION)
    frame["base_retention"] = base_retention
    base_lifetime = float(lifetime_factor(base_retention, assumptions["discount_rate"], years))
    decided = [_verdict(row, limits, goal) for row in frame.itertuples(index=False)]
    frame["verdict"] = [v for v, _, _ in decided]
    frame["rule"] = [r for _, r, _ in decided]
    frame["stop_unproven"] = [u for _, _, u in decided]
    frame["impact"] = [_impact(row, limits, base_lifetime)
                       for row in frame.itertuples(index=False)]
    frame["objective"] = goal
    frame["horizon_years"] = years
    return frame


def _past_value(customers: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Past yearly margin per customer of each segment, and its index to the whole base's.

    A customer's past yearly margin is the margin of its whole history (``margin``; else
    ``monetary``, the revenue) over the years it has been a customer, at least one
    (``tenure_days``): a long-standing customer is not "high value" merely for being old. NaN
    when the table has neither column.
    """
    column = next((c for c in ("margin", "monetary") if c in customers.columns), None)
    if column is None:
        empty = pd.Series(np.nan, index=order)
        return pd.DataFrame({"per_customer": empty, "index": empty})
    value = pd.to_numeric(customers[column], errors="coerce").fillna(0.0)
    if "tenure_days" in customers.columns:
        tenure = pd.to_numeric(customers["tenure_days"], errors="coerce").fillna(0.0)
        value = value * 365.25 / tenure.clip(lower=365.25)
    segment = customers["segment"].astype(str)
    per_customer = value.groupby(segment).mean().reindex(order)
    base = float(value.mean()) if len(value) else np.nan
    index = per_customer / base if base > 0 else per_customer * np.nan
    return pd.DataFrame({"per_customer": per_customer, "index": index})


def _lapsed_share(customers: pd.DataFrame, order: list[str], lapse_days: int) -> pd.Series:
    """Share of each segment's customers with no purchase for more than ``lapse_days``.

    A customer who never bought (no recency) counts as lapsed. NaN without ``recency_days``.
    """
    if "recency_days" not in customers.columns:
        return pd.Series(np.nan, index=order)
    recency = pd.to_numeric(customers["recency_days"], errors="coerce")
    lapsed = (recency.isna() | (recency > lapse_days)).astype(float)
    return lapsed.groupby(customers["segment"].astype(str)).mean().reindex(order)


def _move_saving(segment_types: pd.DataFrame, drivers: pd.DataFrame, segment: str,
                 main: str | None, cheaper: str | None) -> float:
    """Yearly variable cost saved by moving a segment's ``main``-type contacts to ``cheaper``.

    The customers keep the same number of contacts; each takes the cheaper type's minutes per
    interaction at its cost per minute (as :class:`crmkit.relationships.scenarios.Move`). 0 when
    there is no cheaper type.
    """
    if not isinstance(main, str) or not isinstance(cheaper, str):
        return 0.0
    rows = segment_types[(segment_types["segment"] == segment)
                         & (segment_types["relationship_type"] == main)]
    contacts = float(rows["interactions_year"].sum())
    now = float(rows["variable_cost"].sum())
    after = (contacts * drivers.loc[cheaper, "minutes_per_interaction"]
             * drivers.loc[cheaper, "cost_per_minute"])
    return now - float(after)


def _verdict(row: Any, limits: VerdictThresholds, objective: str | None
             ) -> tuple[str, int, bool]:
    """The rule set of the module docstring, in order: (verdict, rule number, stop unproven)."""
    past, lapsed = row.past_value_index, row.lapsed_share
    if (objective == RETAIN and not _missing(past) and not _missing(lapsed)
            and past >= limits.win_back_min_past_value
            and lapsed >= limits.win_back_min_lapsed_share):
        return "win_back", 1, False
    unproven = False
    if (row.contribution_per_customer < 0
            and row.clv_per_customer < row.cost_horizon_per_customer):
        logged = row.logged_cost_per_customer
        if (row.margin_per_customer - logged < 0
                and row.clv_per_customer < logged * row.lifetime_factor):
            return "stop", 2, False
        unproven = True
    too_costly = row.variable_cost_per_customer > limits.max_cost_share * row.margin_per_customer
    if (too_costly and row.variable_cost_per_customer > 0 and isinstance(row.cheaper_type, str)
            and row.move_saving > 0):
        return "move_cheaper", 3, unproven
    index = row.clv_index
    if (not _missing(index) and index >= limits.invest_min_clv_index
            and row.contribution_per_customer > 0
            and row.return_on_relationship >= limits.invest_min_return):
        return "invest", 4, unproven
    return "maintain", 5, unproven


def _impact(row: Any, limits: VerdictThresholds, base_lifetime: float) -> float:
    """The verdict's € impact over the horizon, for the whole segment (module docstring)."""
    n = float(row.customers)
    if row.verdict == "stop":
        return n * (row.cost_horizon_per_customer - row.clv_per_customer)
    if row.verdict == "move_cheaper":
        return float(row.move_saving) * float(row.lifetime_factor)
    if row.verdict == "win_back":
        margin = 0.0 if _missing(row.past_value_per_customer) else row.past_value_per_customer
        return (limits.win_back_rate * n * (margin - row.variable_cost_per_customer)
                * base_lifetime)
    return n * float(row.net_value_per_customer)


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
           thresholds: VerdictThresholds | None = None, *, lapse_days: int = 180) -> str:
    """The sentences that explain one segment's verdict: its rule and figures, its € impact.

    Parameters
    ----------
    row : mapping or Series
        A row of :func:`per_segment`.
    fmt : Formatter
    thresholds : VerdictThresholds, optional
        The thresholds used (default ones when not given).
    lapse_days : int
        The days without a purchase that made customers lapsed (for the win-back sentence).
    """
    limits = thresholds or VerdictThresholds()
    lang = fmt.lang
    verdict = row["verdict"]
    if verdict == "win_back":
        why = t("rel_reason_win_back", lang, past=fmt.money(row["past_value_per_customer"]),
                index=fmt.number(row["past_value_index"], 1),
                lapsed=fmt.pct(row["lapsed_share"]), days=lapse_days)
    elif verdict == "stop":
        why = t("rel_reason_stop", lang, profit=fmt.money(-row["contribution_per_customer"]),
                clv=fmt.money(row["clv_per_customer"]),
                cost=fmt.money(row["cost_horizon_per_customer"]))
    elif verdict == "move_cheaper":
        share = row["cost_share_of_margin"]
        types = {"main": type_name(row["main_type"], lang),
                 "cheaper": type_name(row["cheaper_type"], lang),
                 "saving": fmt.money(row["move_saving"])}
        if _missing(share):
            why = t("rel_reason_move_cheaper_no_margin", lang,
                    limit=fmt.pct(limits.max_cost_share), **types)
        else:
            why = t("rel_reason_move_cheaper", lang, share=fmt.pct(share),
                    limit=fmt.pct(limits.max_cost_share), **types)
    elif verdict == "invest":
        why = t("rel_reason_invest", lang, index=fmt.number(row["clv_index"], 1),
                ret=_ratio(row["return_on_relationship"], fmt),
                min_index=fmt.number(limits.invest_min_clv_index, 1),
                min_ret=fmt.number(limits.invest_min_return, 1))
    elif _missing(row["cost_share_of_margin"]):
        why = t("rel_reason_maintain_no_margin", lang,
                profit=fmt.money(row["contribution_per_customer"]))
    else:
        why = t("rel_reason_maintain", lang, profit=fmt.money(row["contribution_per_customer"]),
                share=fmt.pct(row["cost_share_of_margin"]))
    parts = [why]
    if "impact" in row and not _missing(row["impact"]):
        years = row["horizon_years"] if "horizon_years" in row else None
        parts.append(t(f"rel_impact_{verdict}", lang, impact=fmt.money(row["impact"]),
                       years=fmt.number(years, 0 if float(years or 0).is_integer() else 1),
                       rate=fmt.pct(limits.win_back_rate)))
    if "stop_unproven" in row and bool(row["stop_unproven"]):
        parts.append(t("rel_note_stop_unproven", lang, share=fmt.pct(row["imputed_share"])))
    return " ".join(parts)


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
            thresholds: VerdictThresholds | None = None, *, lapse_days: int = 180) -> dict:
    """Key figures of :func:`per_segment` for ``results.json`` and the workbook's prose.

    Returns
    -------
    dict
        ``thresholds`` (as used), ``objective`` (the one the verdicts served) and
        ``horizon_years``; ``counts`` (segments per verdict), ``names`` (their names per
        verdict, in table order) and ``impact`` (€ over the horizon per verdict, summed over its
        segments); ``totals`` (customers, yearly revenue, margin, ``variable_cost``,
        ``fixed_cost`` (the platforms'), cost to serve (the two), profit (margin − cost to
        serve), ``contribution`` (margin − variable cost) and CLV, with the cost share of
        margin (variable cost / margin) and the return on the relationship (contribution /
        variable cost): None where undefined; ``imputed_share`` of the variable cost);
        ``best`` and ``worst`` (the segments with the highest and lowest profit per customer);
        ``segments`` (one record per segment: its figures, ``verdict``, ``rule``, ``impact``,
        the type names in the report's language and the ``reason`` sentences). Non-finite
        figures are None.
    """
    limits = thresholds or VerdictThresholds()
    lang = fmt.lang
    verdict = frame["verdict"]
    totals = {c: float(frame[c].sum()) for c in ("revenue", "margin", "variable_cost",
                                                  "fixed_cost", "cost_to_serve", "profit",
                                                  "contribution", "clv")}
    totals["customers"] = int(frame["customers"].sum())
    totals["cost_share_of_margin"] = (totals["variable_cost"] / totals["margin"]
                                      if totals["margin"] > 0 else None)
    totals["return_on_relationship"] = (totals["contribution"] / totals["variable_cost"]
                                        if totals["variable_cost"] > 0 else None)
    imputed = float((frame["imputed_share"] * frame["variable_cost"]).sum())
    totals["imputed_share"] = (imputed / totals["variable_cost"] if totals["variable_cost"] > 0
                               else None)
    numeric = ["customers", "revenue", "margin", "variable_cost", "fixed_cost", "cost_to_serve",
               "profit", "contribution", "clv", "revenue_per_customer", "margin_per_customer",
               "cost_per_customer", "variable_cost_per_customer", "profit_per_customer",
               "contribution_per_customer", "clv_per_customer", "cost_share_of_margin",
               "return_on_relationship", "clv_index", "retention", "lifetime_factor",
               "cost_horizon_per_customer", "net_value_per_customer", "imputed_share",
               "past_value_per_customer", "past_value_index", "lapsed_share", "move_saving",
               "impact"]
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
                       "stop_unproven": bool(row["stop_unproven"]),
                       "verdict_name": t(f"rel_verdict_{row['verdict']}", lang),
                       "reason": reason(row, fmt, limits, lapse_days=lapse_days)})
        segments.append(record)
    ranked = [r for r in segments if r["profit_per_customer"] is not None]

    def pick(record):
        return None if record is None else {
            k: record[k] for k in ("segment", "segment_name", "profit_per_customer",
                                   "verdict")}

    best = max(ranked, key=lambda r: r["profit_per_customer"], default=None)
    worst = min(ranked, key=lambda r: r["profit_per_customer"], default=None)
    objective = frame["objective"].iloc[0] if "objective" in frame and len(frame) else None
    return {"thresholds": limits.model_dump(),
            "objective": objective if isinstance(objective, str) else None,
            "horizon_years": (float(frame["horizon_years"].iloc[0])
                              if "horizon_years" in frame and len(frame) else None),
            "counts": {v: int((verdict == v).sum()) for v in VERDICTS},
            "names": {v: [str(n) for n in frame.loc[verdict == v, "segment_name"]]
                      for v in VERDICTS},
            "impact": {v: float(frame.loc[verdict == v, "impact"].sum()) for v in VERDICTS},
            "totals": totals, "best": pick(best), "worst": pick(worst), "segments": segments}
