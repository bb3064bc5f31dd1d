"""Cost to serve: what each customer's relationship costs a year, by time-driven ABC.

Time-driven activity-based costing (Kaplan & Anderson, "Time-Driven Activity-Based Costing",
Harvard Business Review, November 2004) needs two estimates per resource: what a minute of it
costs, and how many minutes each activity takes. A customer's *variable* (avoidable) cost to serve
is then the minutes their interactions took times the cost per minute of the team or channel that
served them. The fixed costs of the platforms behind each type (a contact centre's systems, an
app) are a separate, platform-level figure: moving one segment off a type does not retire the
platform, so they are never shared out by minutes. The interaction log (``interactions.csv``)
gives the minutes; the catalogue (``data/relationship_types.yaml``) and ``client.yaml`` give the
rates, every one an assumption the report shows.

The rules, stated once (the docstring of :func:`compute` repeats them where they are applied):

- **Logged activity** is costed at ``minutes × cost per minute`` of its type, or of its type and
  channel when client.yaml gives a channel rate; totals are annualised by dividing by the years
  the log covers (first to last interaction date, both included).
- **Declared but not logged**: when client.yaml declares a type for a segment
  (``relationships.current``) and the log shows no interaction of that type for that segment —
  the log is absent, or the type is not recorded in it (automated e-mails often are not) —
  every customer of the segment is assumed served at the catalogue's drivers
  (``interactions_per_year × minutes_per_interaction`` minutes at ``cost_per_minute``).
- **Customers with no interaction** in a segment whose types are logged cost nothing variable:
  the log is the measure.
- **Fixed yearly costs** of a type are incurred while at least one customer is served by it
  (logged or assumed minutes > 0); a type nobody uses costs nothing. They are reported at the
  platform level and, *for display only*, spread evenly over the type's active (served)
  customers, so that a segment's ``fixed_cost`` reads "its customers' share of the platforms they
  use". No verdict and no scenario saving rests on that share: the verdicts use the variable cost.
- **Evidence**: every cost line says whether it is ``logged`` (minutes from interactions.csv) or
  ``imputed`` (minutes assumed from the catalogue's drivers, data/relationship_types.yaml, or
  client.yaml's); a segment's ``imputed_share`` is the part of its variable cost that is imputed.

Written here rather than taken from a costing package because none models relationship types,
and the arithmetic is a few grouped sums a consultant must be able to redo by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from crmkit.relationships.inventory import (
    ASSUMED_CHANNEL,
    TYPES,
    RelationshipsConfig,
    _logged,
    _window_months,
    channel_rates,
    check_segments,
    drivers,
    interaction_window_years,
    map_segments,
    relationships_config,
    segment_names,
    segment_order,
)

if TYPE_CHECKING:
    from crmkit.settings.client import ClientConfig

__all__ = ["CostToServe", "Whale", "compute", "customer_profit", "per_customer",
           "save_table", "whale_curve"]

_AMOUNTS = ["interactions_year", "minutes_year", "variable_cost", "fixed_cost", "cost"]
#: The text columns of the interaction log (inventory._logged) and of the cost lines that the
#: computation groups by.
_LOG_KEYS = ["customer_id", "segment", "relationship_type", "channel"]
_LINE_KEYS = ["customer_id", "segment", "relationship_type", "channel", "source", "evidence"]
#: How each source of a cost line counts as evidence: minutes seen in the log, or imputed.
EVIDENCE = {"logged": "logged", "assumed": "imputed"}


@dataclass
class CostToServe:
    """The cost to serve of every customer, segment and relationship type, a year.

    Attributes
    ----------
    customers : DataFrame
        One row per customer of the table, in its order: ``customer_id, segment,
        interactions_year, minutes_year, variable_cost, fixed_cost, cost_to_serve``
        (``fixed_cost``: the customer's display share of the platforms it uses, the fixed cost
        of each type divided by the type's served customers).
    lines : DataFrame
        The costed activity per customer, type and channel: ``customer_id, segment,
        relationship_type, channel, source`` (``"logged"`` or ``"assumed"``; assumed lines carry
        the channel ``"(assumed)"``), ``evidence`` (``"logged"`` or ``"imputed"``),
        ``interactions_year, minutes_year, variable_cost, fixed_cost, cost``.
    activity : DataFrame
        ``lines`` summed per segment, type, channel and source, with ``customers`` served.
    segment_types : DataFrame
        Per segment and type: ``segment, relationship_type, source, evidence, customers``
        (served), the amounts, ``share_of_minutes`` and ``share_of_cost`` within the segment.
    segments : DataFrame
        Per segment (table order): ``segment, segment_name, customers, served_customers``, the
        amounts (``variable_cost``: avoidable; ``fixed_cost``: display share of the platforms;
        ``cost_to_serve`` = variable + fixed), ``cost_per_customer``,
        ``variable_cost_per_customer``, ``imputed_cost`` (variable cost of imputed lines) and
        ``imputed_share`` (``imputed_cost / variable_cost``; 0 without variable cost).
    types : DataFrame
        Per type (catalogue order): ``relationship_type, in_use, customers`` (served), the
        amounts; ``fixed_cost`` is the yearly fixed cost incurred (0 when not in use) and
        ``fixed_cost_per_customer`` that cost per served customer.
    drivers : DataFrame
        :func:`crmkit.relationships.inventory.drivers` as applied.
    channel_rates : dict
        ``(type, channel) -> cost per minute`` from client.yaml.
    window_years : float or None
        Years the log covers (None without a log).
    assumed : list of (segment, type)
        Pairs costed at the catalogue's drivers because the log does not show them.
    unmatched_interactions : int
        Log rows whose customer is not in the table (left out).
    """

    customers: pd.DataFrame
    lines: pd.DataFrame
    activity: pd.DataFrame
    segment_types: pd.DataFrame
    segments: pd.DataFrame
    types: pd.DataFrame
    drivers: pd.DataFrame
    channel_rates: dict[tuple[str, str], float] = field(default_factory=dict)
    window_years: float | None = None
    assumed: list[tuple[str, str]] = field(default_factory=list)
    unmatched_interactions: int = 0

    @property
    def total(self) -> float:
        """Total yearly cost to serve: variable cost plus the platforms' fixed cost."""
        return self.variable_total + self.platform_fixed_cost

    @property
    def variable_total(self) -> float:
        """Total yearly variable (avoidable) cost to serve."""
        return float(self.lines["variable_cost"].sum())

    @property
    def platform_fixed_cost(self) -> float:
        """Yearly fixed cost of the platforms in use (every type with minutes)."""
        return float(self.types["fixed_cost"].sum())

    @property
    def imputed_total(self) -> float:
        """Yearly variable cost imputed from the drivers because the log does not show it."""
        lines = self.lines
        return float(lines.loc[lines["evidence"] == "imputed", "variable_cost"].sum())

    def as_dict(self) -> dict:
        """Key figures for ``results.json`` and the workbook's prose.

        Besides the totals per segment and type: ``variable_cost`` (avoidable, a year),
        ``fixed_cost`` (the platforms', a year) and ``fixed_cost_per_active_customer`` (for
        display: the platforms' cost over the customers served by any type; None without one);
        ``assumed_cost`` (the variable cost imputed from the drivers because the log does not
        show it, also as ``imputed_cost``) and ``assumed_share`` / ``imputed_share`` (its share
        of the variable cost), ``client_drivers`` (the types whose drivers client.yaml sets),
        ``catalogue_drivers`` (how many types keep the catalogue's defaults) and ``costliest``
        (the segment with the highest cost per customer, None without customers). Each segment
        record carries ``variable_cost``, ``fixed_cost`` and ``imputed_share``.
        """
        assumed_cost = self.imputed_total
        variable = self.variable_total
        active = int((self.customers["minutes_year"] > 0).sum())
        overridden = self.drivers["overridden"].astype(str) != ""
        segs = self.segments[self.segments["customers"] > 0]
        costliest = None
        if len(segs):
            row = segs.loc[segs["cost_per_customer"].idxmax()]
            costliest = {"segment": row["segment"], "segment_name": row["segment_name"],
                         "cost_per_customer": float(row["cost_per_customer"]),
                         "cost_to_serve": float(row["cost_to_serve"])}
        total = self.total
        share = assumed_cost / variable if variable > 0 else None
        return {
            "total_cost_to_serve": total,
            "cost_per_customer": total / len(self.customers) if len(self.customers) else None,
            "variable_cost": variable,
            "fixed_cost": self.platform_fixed_cost,
            "fixed_cost_per_active_customer": (self.platform_fixed_cost / active if active
                                               else None),
            "window_years": self.window_years,
            "segments": self.segments[["segment", "segment_name", "customers",
                                       "served_customers", "minutes_year", "variable_cost",
                                       "fixed_cost", "cost_to_serve", "cost_per_customer",
                                       "imputed_share"]],
            "types": self.types[["relationship_type", "in_use", "minutes_year", "variable_cost",
                                 "fixed_cost", "cost"]],
            "assumed": [list(pair) for pair in self.assumed],
            "assumed_cost": assumed_cost,
            "assumed_share": share,
            "imputed_cost": assumed_cost,
            "imputed_share": share,
            "client_drivers": [str(k) for k in self.drivers.index[overridden]],
            "catalogue_drivers": int((~overridden).sum()),
            "costliest": costliest,
            "unmatched_interactions": self.unmatched_interactions,
        }


def compute(customers: pd.DataFrame, interactions: pd.DataFrame | None = None,
            config: ClientConfig | RelationshipsConfig | Mapping | None = None, *,
            window_years: float | None = None) -> CostToServe:
    """Cost to serve per customer, segment and type, a year, by time-driven ABC.

    Rules:

    - logged interactions cost ``minutes × rate``, the rate of their type (or of their type and
      channel when ``cost_drivers.<type>.channel_cost_per_minute`` sets one), divided by the
      years the log covers;
    - a type declared for a segment in ``relationships.current`` that the log does not show for
      that segment (no log at all, or the type not recorded) is assumed for *every* customer of
      the segment at the catalogue's drivers: ``interactions_per_year × minutes_per_interaction``
      minutes a year at ``cost_per_minute``;
    - a customer with no logged interaction and no assumed type costs nothing variable;
    - each type's ``fixed_yearly_cost`` is incurred when the type has any minutes; it is a
      platform cost, shown per customer only as an even share over the type's served customers
      (never by minutes, never in a verdict);
    - every line is marked ``logged`` or ``imputed`` (``evidence``).

    Parameters
    ----------
    customers : DataFrame
        The per-customer table (``customer_id``, ``segment``, optional ``segment_name``).
    interactions : DataFrame, optional
        The canonical interactions frame (None when the client has none).
    config : ClientConfig or RelationshipsConfig, optional
        Supplies ``relationships.cost_drivers`` and ``relationships.current``.
    window_years : float, optional
        Years the log covers; default its first to last date, both included.

    Raises
    ------
    ValueError
        When client.yaml names a segment the table does not have, or the log an unknown type.
    """
    rel = relationships_config(config)
    order = segment_order(customers)
    check_segments(rel, order, map_segments(config))
    drv = drivers(rel)
    rates = channel_rates(rel)
    logged, unmatched = _logged(customers, interactions)
    years = window_years or interaction_window_years(interactions)

    parts = []
    # The text columns are grouped and looked up as categoricals (_coded): each distinct value
    # is hashed once, not once per row and grouping (a million customers: 14.7 s, then 11.3).
    logged = _coded(logged, _LOG_KEYS)
    if not logged.empty:
        rate = _looked_up(logged["relationship_type"], drv["cost_per_minute"])
        for (key, channel), value in rates.items():
            rate[((logged["relationship_type"] == key) & (logged["channel"] == channel))
                 .to_numpy()] = value
        logged = logged.assign(variable_cost=logged["minutes"].to_numpy() * rate)
        grouped = (logged.groupby(_LOG_KEYS, sort=False, observed=True)
                   .agg(interactions_year=("minutes", "size"), minutes_year=("minutes", "sum"),
                        variable_cost=("variable_cost", "sum"))
                   .reset_index())
        _as_text(grouped, _LOG_KEYS)
        grouped["interactions_year"] = grouped["interactions_year"].astype(float) / years
        grouped["minutes_year"] /= years
        grouped["variable_cost"] /= years
        grouped["source"] = "logged"
        parts.append(grouped)

    pairs = logged[["segment", "relationship_type"]].drop_duplicates().astype("str")
    seen = set(zip(pairs["segment"], pairs["relationship_type"], strict=True))
    segment_of = customers["segment"].astype(str)
    ids = customers["customer_id"].astype(str)
    assumed = []
    for segment in order:
        for key in rel.current.get(segment, []):
            if (segment, key) in seen or (segment, key) in assumed:
                continue
            assumed.append((segment, key))
            members = ids[segment_of == segment].to_numpy()
            per_year = drv.loc[key, "interactions_per_year"]
            minutes = per_year * drv.loc[key, "minutes_per_interaction"]
            parts.append(pd.DataFrame({
                "customer_id": members, "segment": segment, "relationship_type": key,
                "channel": ASSUMED_CHANNEL,
                "interactions_year": np.full(len(members), per_year, dtype=float),
                "minutes_year": np.full(len(members), minutes, dtype=float),
                "variable_cost": np.full(len(members), minutes * drv.loc[key, "cost_per_minute"],
                                         dtype=float),
                "source": "assumed"}))

    columns = ["customer_id", "segment", "relationship_type", "channel", "source",
               "interactions_year", "minutes_year", "variable_cost"]
    if parts:
        lines = pd.concat(parts, ignore_index=True)[columns]
    else:
        lines = pd.DataFrame({c: pd.Series(dtype="str" if i < 5 else "float64")
                              for i, c in enumerate(columns)})
    lines.insert(5, "evidence", lines["source"].map(EVIDENCE).astype("str"))
    keys = _coded(lines[_LINE_KEYS], _LINE_KEYS)
    kind = keys["relationship_type"]

    # Fixed costs: incurred by the types in use; shown per customer as an even share over the
    # type's served customers (a display figure: the platform costs the same whoever uses it).
    type_minutes = _by_text(lines["minutes_year"].groupby(kind, observed=True).sum()).reindex(
        list(TYPES)).fillna(0.0)
    in_use = type_minutes > 0
    fixed = drv["fixed_yearly_cost"].where(in_use, 0.0)
    # a customer as the code of its id: counting distinct codes counts distinct customers
    customer = keys["customer_id"].cat.codes.to_numpy()
    used = (lines["minutes_year"] > 0).to_numpy()
    served_by_type = _by_text(pd.Series(customer[used]).groupby(kind[used].to_numpy(),
                                                              observed=True).nunique()
                              ).reindex(list(TYPES)).fillna(0)
    per_served = (fixed / served_by_type.where(served_by_type > 0)).fillna(0.0)
    # a customer's share of a type is split over its lines of that type by their minutes
    own = lines["minutes_year"].groupby([customer, kind.cat.codes.to_numpy()]).transform("sum")
    weight = (lines["minutes_year"] / own.where(own > 0)).fillna(0.0).to_numpy(float)
    lines["fixed_cost"] = _looked_up(kind, per_served) * weight
    lines["cost"] = lines["variable_cost"] + lines["fixed_cost"]
    # "served" counts a customer with minutes of the type, as the fixed-cost shares do
    counted = keys.drop(columns="customer_id").assign(
        customer_id=np.where(used, customer, -1), **{c: lines[c] for c in _AMOUNTS})
    counted["customer_id"] = counted["customer_id"].where(used)  # nunique leaves out NaN

    per_customer = lines[_AMOUNTS].groupby(customer).sum()
    per_customer.index = keys["customer_id"].cat.categories[per_customer.index]
    table = pd.DataFrame({"customer_id": ids.to_numpy(), "segment": segment_of.to_numpy()})
    table = table.join(per_customer, on="customer_id")
    table[_AMOUNTS] = table[_AMOUNTS].fillna(0.0)
    table = table.rename(columns={"cost": "cost_to_serve"})

    activity_keys = ["segment", "relationship_type", "channel", "source"]
    activity = (counted.groupby(activity_keys, sort=False, observed=True)
                .agg(customers=("customer_id", "nunique"),
                     **{c: (c, "sum") for c in _AMOUNTS}).reset_index())
    _as_text(activity, activity_keys)
    type_keys = ["segment", "relationship_type", "source", "evidence"]
    segment_types = (counted.groupby(type_keys, sort=False, observed=True)
                     .agg(customers=("customer_id", "nunique"),
                          **{c: (c, "sum") for c in _AMOUNTS}).reset_index())
    _as_text(segment_types, type_keys)
    by_segment = segment_types.groupby("segment")
    for amount, share in (("minutes_year", "share_of_minutes"), ("cost", "share_of_cost")):
        whole = by_segment[amount].transform("sum")
        segment_types[share] = (segment_types[amount] / whole.where(whole != 0)).fillna(0.0)
    rank = {s: i for i, s in enumerate(order)}
    type_rank = {k: i for i, k in enumerate(TYPES)}
    segment_types = (segment_types.assign(_s=segment_types["segment"].map(rank),
                                          _t=segment_types["relationship_type"].map(type_rank))
                     .sort_values(["_s", "_t"]).drop(columns=["_s", "_t"])
                     .reset_index(drop=True))
    activity = (activity.assign(_s=activity["segment"].map(rank),
                                _t=activity["relationship_type"].map(type_rank))
                .sort_values(["_s", "_t", "channel"]).drop(columns=["_s", "_t"])
                .reset_index(drop=True))

    sums = table.groupby("segment")[_AMOUNTS[:-1] + ["cost_to_serve"]].sum()
    counts = table.groupby("segment").size()
    served = table[table["minutes_year"] > 0].groupby("segment").size()
    names = segment_names(customers)
    segments = pd.DataFrame({"segment": order, "segment_name": [names[s] for s in order],
                             "customers": counts.reindex(order).fillna(0).astype(int).to_numpy(),
                             "served_customers": served.reindex(order).fillna(0).astype(int)
                             .to_numpy()})
    segments = segments.join(sums.reindex(order).fillna(0.0), on="segment")
    customers_of = segments["customers"].where(segments["customers"] > 0)
    segments["cost_per_customer"] = segments["cost_to_serve"] / customers_of
    segments["variable_cost_per_customer"] = segments["variable_cost"] / customers_of
    imputed = (lines[lines["evidence"] == "imputed"].groupby("segment")["variable_cost"].sum()
               .reindex(order).fillna(0.0).to_numpy(float))
    segments["imputed_cost"] = imputed
    variable = segments["variable_cost"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        segments["imputed_share"] = np.where(variable > 0, imputed / variable, 0.0)

    types = _by_text(counted.groupby("relationship_type", observed=True)
                     .agg(customers=("customer_id", "nunique"),
                          **{c: (c, "sum") for c in _AMOUNTS})).reindex(list(TYPES))
    types[["customers"] + _AMOUNTS] = types[["customers"] + _AMOUNTS].fillna(0.0)
    # the fixed cost incurred, even in the (theoretical) case of a type with minutes but no line
    types["fixed_cost"] = fixed
    types["cost"] = types["variable_cost"] + types["fixed_cost"]
    types["fixed_cost_per_customer"] = per_served
    types.insert(0, "in_use", in_use.to_numpy())
    types = types.reset_index()

    return CostToServe(customers=table, lines=lines, activity=activity,
                       segment_types=segment_types, segments=segments, types=types, drivers=drv,
                       channel_rates=rates, window_years=years, assumed=assumed,
                       unmatched_interactions=unmatched)


def _coded(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``frame`` with ``columns`` as categoricals (the caller's frame is not changed).

    The categories are in order of appearance, not sorted (half the time of ``astype
    ("category")``): the groupings that keep an order keep that of appearance (``sort=False``),
    and the others are reindexed by a list.
    """
    def coded(column: pd.Series) -> pd.Categorical:
        codes, uniques = pd.factorize(column)
        return pd.Categorical.from_codes(codes, categories=uniques)

    return frame.assign(**{c: coded(frame[c]) for c in columns})


def _as_text(frame: pd.DataFrame, columns: list[str]) -> None:
    """``columns`` of ``frame``, categoricals of text, made text again (in place)."""
    for column in columns:
        labels = frame[column]
        frame[column] = pd.Series(labels.cat.categories.array.take(
            labels.cat.codes.to_numpy(), allow_fill=True), index=frame.index)  # -1: missing


def _looked_up(labels: pd.Series, values: pd.Series) -> np.ndarray:
    """``labels.map(values)`` as floats, for a categorical ``labels``: one lookup per category."""
    table = np.append(values.reindex(labels.cat.categories).to_numpy(float), np.nan)
    return table[labels.cat.codes.to_numpy()]  # code -1 (a missing label) takes the NaN


def _by_text(result):
    """A grouping's result indexed by text again, not by the categorical it was grouped by."""
    result.index = result.index.astype("str")
    return result


def customer_profit(customers: pd.DataFrame, cost: CostToServe, *,
                    window_months: int | None = None, config=None) -> pd.DataFrame:
    """Yearly profit of every customer after the cost of serving them.

    ``margin_year = margin_window × 12 / window_months`` (the table's margin over its indicator
    window, made yearly like the cost to serve) and ``profit = margin_year − cost_to_serve``.

    Parameters
    ----------
    customers : DataFrame
        The per-customer table (``customer_id``, ``segment``, ``margin_window``, optional
        ``revenue_window``).
    cost : CostToServe
    window_months : int, optional
        Months ``margin_window`` covers (default the config's ``assumptions.window_months``,
        else 12).

    Returns
    -------
    DataFrame
        ``customer_id, segment, revenue_year, margin_year, cost_to_serve, profit`` in the
        table's order (``revenue_year`` is NaN without ``revenue_window``).
    """
    months = window_months or _window_months(config)
    scale = 12.0 / months
    cts = cost.customers.set_index("customer_id")["cost_to_serve"]
    ids = customers["customer_id"].astype(str)
    margin = customers["margin_window"].to_numpy(float) * scale
    revenue = (customers["revenue_window"].to_numpy(float) * scale
               if "revenue_window" in customers else np.full(len(customers), np.nan))
    serve = ids.map(cts).fillna(0.0).to_numpy(float)
    return pd.DataFrame({"customer_id": ids.to_numpy(),
                         "segment": customers["segment"].astype(str).to_numpy(),
                         "revenue_year": revenue, "margin_year": margin, "cost_to_serve": serve,
                         "profit": margin - serve})


def per_customer(customers: pd.DataFrame, cost: CostToServe, *,
                 window_months: int | None = None, config=None) -> pd.DataFrame:
    """The per-customer cost table of a run (``tables/cost_to_serve.parquet``).

    One row per customer of the table, in its order: ``customer_id, segment``, the yearly
    ``interactions_year, minutes_year, variable_cost, fixed_cost, cost_to_serve`` of
    :attr:`CostToServe.customers`, and ``revenue_year, margin_year, profit`` of
    :func:`customer_profit`.
    """
    profit = customer_profit(customers, cost, window_months=window_months, config=config)
    table = cost.customers.reset_index(drop=True)
    extra = profit[["revenue_year", "margin_year", "profit"]].reset_index(drop=True)
    return pd.concat([table, extra], axis=1)


def save_table(frame: pd.DataFrame, path) -> None:
    """Write a table of the run as parquet (no-op when ``path`` is None: no run folder)."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)


@dataclass
class Whale:
    """The whale curve of cumulative profit.

    Attributes
    ----------
    curve : DataFrame
        Customers sorted by yearly profit, most profitable first: ``customer_id, segment,
        profit, share_of_customers`` (rank / n, from 1/n to 1), ``cumulative_profit`` and
        ``cumulative_pct`` (cumulative profit / total profit; NaN when the total is not
        positive, as a percentage of a loss reads backwards).
    total_profit : float
    peak_profit : float
        The height of the whale: the most profit the best customers make before the
        unprofitable ones eat into it.
    peak_pct : float
        ``peak_profit / total_profit`` (e.g. 1.6 = 160 %; NaN when the total is not positive).
    peak_share_of_customers : float
        Share of customers that makes the peak.
    unprofitable_share : float
        Share of customers with negative profit.
    """

    curve: pd.DataFrame
    total_profit: float
    peak_profit: float
    peak_pct: float
    peak_share_of_customers: float
    unprofitable_share: float

    def as_dict(self) -> dict:
        """Key figures for ``results.json`` (the curve itself is left out).

        ``unprofitable_loss`` is the yearly profit the unprofitable customers take back (a
        positive amount: the peak minus what is left).
        """
        return {"total_profit": self.total_profit, "peak_profit": self.peak_profit,
                "peak_pct": self.peak_pct,
                "peak_share_of_customers": self.peak_share_of_customers,
                "unprofitable_share": self.unprofitable_share,
                "unprofitable_loss": self.peak_profit - self.total_profit}


def whale_curve(customers: pd.DataFrame, cost: CostToServe, *, window_months: int | None = None,
                config=None) -> Whale:
    """The whale curve: cumulative profit by customer, most profitable first.

    Kaplan's whale curve shows that the most profitable customers often make well over 100 % of
    the total profit, and the least profitable ones sink it back: the peak is the "whale".
    Profit is :func:`customer_profit` (yearly margin − cost to serve).

    Parameters
    ----------
    customers : DataFrame
        The per-customer table.
    cost : CostToServe
    window_months : int, optional
        Months ``margin_window`` covers (default the config's, else 12).
    """
    profit = customer_profit(customers, cost, window_months=window_months, config=config)
    order = np.argsort(-profit["profit"].to_numpy(), kind="stable")
    ranked = profit.iloc[order].reset_index(drop=True)
    n = len(ranked)
    cumulative = ranked["profit"].cumsum().to_numpy()
    total = float(cumulative[-1]) if n else 0.0
    pct = cumulative / total if total > 0 else np.full(n, np.nan)
    curve = pd.DataFrame({"customer_id": ranked["customer_id"], "segment": ranked["segment"],
                          "profit": ranked["profit"],
                          "share_of_customers": np.arange(1, n + 1) / max(n, 1),
                          "cumulative_profit": cumulative, "cumulative_pct": pct})
    if n == 0:
        return Whale(curve, 0.0, 0.0, np.nan, 0.0, 0.0)
    peak = int(np.argmax(cumulative))
    return Whale(curve=curve, total_profit=total, peak_profit=float(cumulative[peak]),
                 peak_pct=float(cumulative[peak] / total) if total > 0 else np.nan,
                 peak_share_of_customers=(peak + 1) / n,
                 unprofitable_share=float((ranked["profit"] < 0).mean()))
