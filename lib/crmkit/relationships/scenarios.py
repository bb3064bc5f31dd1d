"""What-if scenarios on the relationship per segment: cost, customer value and profit.

A consultant proposes changes — move the "hibernating" segment from personal assistance to
automated services and expect its retention to fall 5 points; negotiate a cheaper call centre;
run a loyalty scheme that lifts the champions' retention — and the client wants to see what each
does to the cost to serve, to customer value and to profit, per segment and in total, and which
assumptions the answer hangs on.

:class:`ScenarioModel` is built once from the per-customer table and the cost to serve
(:meth:`ScenarioModel.from_tables`); it keeps per-segment × per-type aggregates (customers,
minutes, interactions, variable cost, margin, CLV, retention), so evaluating a scenario is a few
numpy operations on arrays of segments × six types, whatever the number of customers: the
dashboard calls it on every slider move (see ``benchmarks/scenarios.py``). It is written by hand
because the arithmetic is small and must stay exact: the model is linear in the aggregates, so
per-segment sums give the same answer as per-customer recomputation, and a scenario without
changes reproduces the baseline bit for bit (its changes are exactly zero).

The model, in the order it is applied:

1. **Cost rates**: a :class:`CostRate` change sets a type's ``cost_per_minute`` or changes it
   by a share (its channel-specific rates scale by the same ratio) and/or sets its
   ``fixed_yearly_cost``.
2. **Moves**: a :class:`Move` takes ``share`` of a segment's interactions of one type to another.
   The customers still need the same number of contacts; each now takes the destination type's
   ``minutes_per_interaction`` at its cost per minute. Only that *variable* cost moves: a
   platform's fixed yearly cost stays incurred while the plan keeps the platform, even when a
   move empties it (retiring it is an explicit :class:`CostRate` with ``fixed_yearly_cost: 0``),
   and a type opened by a move incurs its fixed cost. Per segment, the fixed cost is shown as
   in :mod:`crmkit.relationships.cost_to_serve` — each platform's cost shared over today's
   served customers, a display figure that a move does not shift — and a newly opened
   platform's falls on the segments that use it, by minutes.
3. **Retention**: a :class:`RetentionChange` (or a move's ``retention_change``, weighted by its
   share) shifts a segment's yearly retention ``r`` by points. Customer value follows the
   retention-based lifetime factor of :func:`crmkit.relationships.cost_benefit.lifetime_factor`,
   ``L(r, d, H) = Σ_{t<H} (r / (1 + d))^t``: CLV scales by ``L(r + Δ, d, H) / L(r, d, H)``
   (the ratio of the textbook multipliers ``(1 + d) / (1 + d − r)`` over the CLV horizon).
   Yearly profit does not move with retention: it is this year's margin minus this year's cost.
4. **Margin**: a :class:`MarginChange` scales a segment's gross margin (a price or mix change);
   CLV, being margin-based, scales with it.
5. **Discount rate**: a :class:`DiscountRate` change rescales CLV by ``L(r, d', H) / L(r, d, H)``.

Reported per segment: ``cost`` (yearly cost to serve: variable plus the display share of the
platforms), ``value`` (customer value, the CLV), ``profit`` (yearly margin − cost), and
``net_value`` (value − avoidable cost × lifetime factor: the customer value left once the
relationship is paid for over the horizon, where the avoidable cost is the variable cost plus
any platform cost the scenario itself adds or retires), each as base, scenario and change.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from crmkit.core.i18n import t
from crmkit.core.problems import UserError
from crmkit.relationships import cost_to_serve as cts_module
from crmkit.relationships.cost_benefit import (
    MAX_RETENTION,
    _assumptions,
    lifetime_factor,
    retention_by_segment,
)
from crmkit.relationships.cost_to_serve import CostToServe
from crmkit.relationships.inventory import (
    TYPES,
    RelationshipsConfig,
    map_segments,
    relationships_config,
    segment_names,
    segment_order,
    type_name,
)

if TYPE_CHECKING:
    from crmkit.settings.client import ClientConfig

__all__ = [
    "CHANGE_KINDS",
    "METRICS",
    "CostRate",
    "DiscountRate",
    "MarginChange",
    "Move",
    "RetentionChange",
    "Scenario",
    "ScenarioModel",
    "ScenarioResult",
    "compare",
    "comparison_figures",
    "proposed",
    "sensitivity",
    "sensitivity_figures",
    "suggested",
]

#: What a scenario reports, per segment and in total.
METRICS = ("cost", "value", "profit", "net_value")
from crmkit.settings.scenarios import (  # noqa: E402,F401  (the scenario model's public names)
    CHANGE_KINDS,
    Change,
    CostRate,
    DiscountRate,
    MarginChange,
    Move,
    RetentionChange,
    Scenario,
    _scenario,
)

# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------

@dataclass
class _Params:
    """A scenario as arrays: what the evaluation needs, with no pydantic in the hot path."""

    rate: np.ndarray            # K: cost per minute
    fixed: np.ndarray           # K: fixed yearly cost
    moves: list[tuple[int, int, int, float, float]]  # segment, from, to, share, minutes/contact
    retention_shift: np.ndarray  # S: points
    retention_factor: np.ndarray  # S: multiplier (for the sensitivity of retention)
    margin_factor: np.ndarray   # S
    discount: float


@dataclass
class ScenarioResult:
    """Base and scenario figures per segment, and their change.

    Attributes
    ----------
    name : str
    segments : list of str
    names : list of str
        The segments' display names.
    base, scenario : dict of str -> ndarray
        Per segment: ``customers, cost, variable_cost, fixed_cost, avoidable_cost, margin,
        profit, value, net_value, retention, lifetime_factor``.
    """

    name: str
    segments: list[str]
    names: list[str]
    base: dict[str, np.ndarray]
    scenario: dict[str, np.ndarray]
    _frame: pd.DataFrame | None = field(default=None, repr=False)

    def change(self, metric: str) -> np.ndarray:
        """Per-segment change of one metric (scenario − base)."""
        return self.scenario[metric] - self.base[metric]

    def total(self, metric: str, which: str = "scenario") -> float:
        """Total of a metric over segments: ``which`` is ``"scenario"``, ``"base"`` or
        ``"change"``."""
        if which == "change":
            return float(self.change(metric).sum())
        return float(getattr(self, which)[metric].sum())

    @property
    def totals(self) -> dict[str, float]:
        """``{metric}_base``, ``{metric}``, ``{metric}_change`` for every metric, in total."""
        out = {}
        for metric in METRICS:
            out[f"{metric}_base"] = self.total(metric, "base")
            out[metric] = self.total(metric)
            out[f"{metric}_change"] = self.total(metric, "change")
        return out

    @property
    def frame(self) -> pd.DataFrame:
        """Per segment: ``segment, segment_name, customers``, then for cost, value, profit and
        net_value the ``_base`` figure, the scenario figure and the ``_change``; and
        ``retention_base, retention``."""
        if self._frame is None:
            data = {"segment": self.segments, "segment_name": self.names,
                    "customers": self.base["customers"]}
            for metric in METRICS:
                data[f"{metric}_base"] = self.base[metric]
                data[metric] = self.scenario[metric]
                data[f"{metric}_change"] = self.change(metric)
            data["retention_base"] = self.base["retention"]
            data["retention"] = self.scenario["retention"]
            self._frame = pd.DataFrame(data)
        return self._frame


class ScenarioModel:
    """Per-segment aggregates, prepared once, on which scenarios are evaluated in microseconds.

    Build it with :meth:`from_tables` (or :meth:`from_cost` when the cost to serve is computed
    already), then call :meth:`evaluate` as often as needed (:meth:`what_if` for the dashboard's
    one-segment controls).

    Attributes
    ----------
    segments, names : list of str
    customers : ndarray (S,)
    minutes, interactions, variable_cost : ndarray (S, K)
        Yearly, per segment and type (K = the six types of the catalogue, in its order).
    served : ndarray (S, K)
        Customers served per segment and type today (the display share of the platforms).
    rate, fixed, minutes_per_interaction : ndarray (K,)
        The drivers in force.
    margin, revenue, clv, retention : ndarray (S,)
        Yearly margin and revenue, total CLV, yearly retention.
    discount_rate, horizon_years : float
    baseline : ScenarioResult
        The model's own evaluation of no change.
    """

    def __init__(self, *, segments: Sequence[str], names: Sequence[str], customers, minutes,
                 interactions, variable_cost, rate, fixed, minutes_per_interaction, margin,
                 revenue, clv, retention, discount_rate: float, horizon_years: float,
                 served=None):
        self.segments = list(segments)
        self.names = list(names)
        self._index = {s: i for i, s in enumerate(self.segments)}
        arrays = {"customers": customers, "margin": margin, "revenue": revenue, "clv": clv,
                  "retention": retention}
        for key, value in arrays.items():
            setattr(self, key, np.asarray(value, dtype=float).reshape(len(self.segments)))
        for key, value in {"minutes": minutes, "interactions": interactions,
                           "variable_cost": variable_cost}.items():
            setattr(self, key, np.asarray(value, dtype=float).reshape(len(self.segments),
                                                                      len(TYPES)))
        for key, value in {"rate": rate, "fixed": fixed,
                           "minutes_per_interaction": minutes_per_interaction}.items():
            setattr(self, key, np.asarray(value, dtype=float).reshape(len(TYPES)))
        self.retention = np.clip(self.retention, 0.0, MAX_RETENTION)
        if served is None:  # without counts, every customer of a segment using a type
            served = np.where(self.minutes > 0, self.customers[:, None], 0.0)
        self.served = np.asarray(served, dtype=float).reshape(self.minutes.shape)
        # today's platforms and each segment's display share of them (by served customers)
        self._in_use = self.minutes.sum(axis=0) > 0
        users = self.served.sum(axis=0)
        self._share = np.where(users > 0, self.served / np.where(users > 0, users, 1.0), 0.0)
        self._base_fixed = (self._share * np.where(self._in_use, self.fixed, 0.0)).sum(axis=1)
        self.discount_rate = float(discount_rate)
        self.horizon_years = float(horizon_years)
        #: Segments of the client's map with no customer in this table: a change naming one
        #: is skipped (it changes nothing) rather than refused as a misspelt key.
        self.absent: set[str] = set()
        self._lifetime = lifetime_factor(self.retention, self.discount_rate, self.horizon_years)
        self._identity = self._params(Scenario(name="baseline"))
        self._base = self._compute(self._identity)
        self.baseline = ScenarioResult("baseline", self.segments, self.names, self._base,
                                       self._base)

    # -- building ---------------------------------------------------------------------------

    @classmethod
    def from_tables(cls, customers: pd.DataFrame, interactions: pd.DataFrame | None = None,
                    config: ClientConfig | RelationshipsConfig | Mapping | None = None, *,
                    retention: Mapping[str, float] | pd.Series | None = None,
                    window_months: int | None = None, discount_rate: float | None = None,
                    horizon_months: int | None = None) -> ScenarioModel:
        """Compute the cost to serve and prepare the model from the tables.

        Parameters
        ----------
        customers : DataFrame
            The per-customer table (``customer_id, segment, margin_window, clv``; optional
            ``revenue_window, segment_name, tenure_days, recency_days``).
        interactions : DataFrame, optional
            The canonical interactions frame.
        config : ClientConfig or RelationshipsConfig, optional
        retention : mapping or Series, optional
            Yearly retention per segment; default
            :func:`crmkit.relationships.cost_benefit.retention_by_segment`.
        window_months, discount_rate, horizon_months : optional
            Override the config's assumptions (defaults 12, 0.10, 36).
        """
        cost = cts_module.compute(customers, interactions, config)
        return cls.from_cost(customers, cost, config, retention=retention,
                             window_months=window_months, discount_rate=discount_rate,
                             horizon_months=horizon_months)

    @classmethod
    def from_cost(cls, customers: pd.DataFrame, cost: CostToServe,
                  config: ClientConfig | RelationshipsConfig | Mapping | None = None, *,
                  retention: Mapping[str, float] | pd.Series | None = None,
                  window_months: int | None = None, discount_rate: float | None = None,
                  horizon_months: int | None = None) -> ScenarioModel:
        """Prepare the model from the per-customer table and an already computed cost to serve.

        Same parameters as :meth:`from_tables`, with ``cost`` from
        :func:`crmkit.relationships.cost_to_serve.compute` in place of the interactions.
        """
        rel = relationships_config(config)
        assumptions = _assumptions(config, window_months, discount_rate, horizon_months)
        order = segment_order(customers)
        names = segment_names(customers)
        scale = 12.0 / assumptions["window_months"]
        segment = customers["segment"].astype(str)
        grouped = customers.groupby(segment)
        margin = grouped["margin_window"].sum().reindex(order).fillna(0.0) * scale
        revenue = (grouped["revenue_window"].sum().reindex(order).fillna(0.0) * scale
                   if "revenue_window" in customers else pd.Series(np.nan, index=order))
        clv = grouped["clv"].sum().reindex(order).fillna(0.0)
        counts = grouped.size().reindex(order).fillna(0)
        kept = (retention_by_segment(customers, rel) if retention is None
                else pd.Series(retention, dtype=float).reindex(order))
        if kept.isna().any():
            missing = ", ".join(kept.index[kept.isna()])
            raise ValueError(f"retention is missing for segment {missing}")
        st = cost.segment_types
        pivots = {}
        for column in ("minutes_year", "interactions_year", "variable_cost", "customers"):
            pivots[column] = (st.pivot_table(index="segment", columns="relationship_type",
                                             values=column, aggfunc="sum")
                              .reindex(index=order, columns=list(TYPES)).fillna(0.0))
        drv = cost.drivers
        model = cls(segments=order, names=[names[s] for s in order], customers=counts,
                    minutes=pivots["minutes_year"], interactions=pivots["interactions_year"],
                    variable_cost=pivots["variable_cost"],
                    rate=drv["cost_per_minute"].reindex(list(TYPES)),
                    fixed=drv["fixed_yearly_cost"].reindex(list(TYPES)),
                    minutes_per_interaction=drv["minutes_per_interaction"].reindex(list(TYPES)),
                    margin=margin, revenue=revenue, clv=clv, retention=kept.reindex(order),
                    discount_rate=assumptions["discount_rate"],
                    horizon_years=assumptions["horizon_months"] / 12.0,
                    served=pivots["customers"])
        model.absent = map_segments(config) - set(order)
        return model

    # -- evaluating -------------------------------------------------------------------------

    def segment_index(self, segment: str) -> int:
        """Position of a segment; ValueError naming the known ones when it is not one."""
        try:
            return self._index[segment]
        except KeyError:
            raise UserError(f"scenario names segment {segment!r}; the segments are "
                             + ", ".join(self.segments)) from None

    def _segments_of(self, segment: str | None) -> np.ndarray | int:
        return slice(None) if segment is None else self.segment_index(segment)

    def _params(self, scenario: Scenario) -> _Params:
        n = len(self.segments)
        p = _Params(rate=self.rate.copy(), fixed=self.fixed.copy(), moves=[],
                    retention_shift=np.zeros(n), retention_factor=np.ones(n),
                    margin_factor=np.ones(n), discount=self.discount_rate)
        for change in scenario.changes:
            if getattr(change, "segment", None) in self.absent:
                continue
            if isinstance(change, CostRate):
                k = TYPES.index(change.type)
                if change.cost_per_minute is not None:
                    p.rate[k] = change.cost_per_minute
                if change.fixed_yearly_cost is not None:
                    p.fixed[k] = change.fixed_yearly_cost
                if change.change is not None:
                    p.rate[k] *= 1.0 + change.change
            elif isinstance(change, Move):
                s = self.segment_index(change.segment)
                b = TYPES.index(change.to_type)
                mpi = (change.minutes_per_interaction if change.minutes_per_interaction
                       is not None else self.minutes_per_interaction[b])
                p.moves.append((s, TYPES.index(change.from_type), b, change.share, mpi))
                p.retention_shift[s] += change.share * change.retention_change
            elif isinstance(change, RetentionChange):
                p.retention_shift[self._segments_of(change.segment)] += change.change
            elif isinstance(change, MarginChange):
                p.margin_factor[self._segments_of(change.segment)] *= 1.0 + change.change
            elif isinstance(change, DiscountRate):
                p.discount = change.rate
        return p

    def _compute(self, p: _Params) -> dict[str, np.ndarray]:
        """The figures per segment under ``p``; the same code computes the baseline, so a
        scenario without change reproduces it exactly."""
        minutes, interactions, variable = self.minutes, self.interactions, self.variable_cost
        changed = p.rate != self.rate
        if changed.any():
            # scale by the ratio so channel-specific rates keep their relation to the type's rate;
            # a type whose rate was 0 has no ratio: its minutes are costed at the new rate
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(self.rate > 0, p.rate / self.rate, 0.0)
            variable = np.where(changed, np.where(self.rate > 0, variable * ratio,
                                                  minutes * p.rate), variable)
        if p.moves:
            minutes, interactions, variable = minutes.copy(), interactions.copy(), variable.copy()
            for s, a, b, share, mpi in p.moves:
                moved = share * interactions[s, a]
                added = moved * mpi
                minutes[s, a] -= share * minutes[s, a]
                variable[s, a] -= share * variable[s, a]
                interactions[s, a] -= moved
                minutes[s, b] += added
                variable[s, b] += added * p.rate[b]
                interactions[s, b] += moved
        type_minutes = minutes.sum(axis=0)
        # a platform in use today stays (and keeps its display shares) unless its fixed cost is
        # changed explicitly; one opened by a move is incurred, on the segments that use it
        opened = (type_minutes > 0) & ~self._in_use
        incurred = np.where(self._in_use | opened, p.fixed, 0.0)
        by_minutes = np.where(opened, minutes / np.where(opened, type_minutes, 1.0), 0.0)
        fixed = ((np.where(self._in_use, self._share, by_minutes)) * incurred).sum(axis=1)
        var = variable.sum(axis=1)
        cost = var + fixed
        avoidable = var + (fixed - self._base_fixed)
        margin = self.margin * p.margin_factor
        retention = np.clip(self.retention * p.retention_factor + p.retention_shift, 0.0,
                            MAX_RETENTION)
        if (p.retention_shift.any() or (p.retention_factor != 1.0).any()
                or p.discount != self.discount_rate):
            lifetime = lifetime_factor(retention, p.discount, self.horizon_years)
            value = self.clv * p.margin_factor * (lifetime / self._lifetime)
        else:
            lifetime = self._lifetime
            value = self.clv * p.margin_factor
        return {"customers": self.customers, "cost": cost, "variable_cost": var,
                "fixed_cost": fixed, "avoidable_cost": avoidable, "margin": margin,
                "profit": margin - cost, "value": value,
                "net_value": value - avoidable * lifetime, "retention": retention,
                "lifetime_factor": lifetime}

    def main_type(self, segment: str) -> str | None:
        """The type whose own activity costs the segment most (None when nothing is costed),
        as in :func:`crmkit.relationships.cost_benefit.per_segment`."""
        row = self.variable_cost[self.segment_index(segment)]
        return TYPES[int(np.argmax(row))] if (row > 0).any() else None

    def what_if(self, segment: str, relationship_type: str | None = None, *,
                cost_rate_change: float = 0.0, retention_change: float = 0.0
                ) -> ScenarioResult:
        """The one-segment what-if of the dashboard's controls.

        Moves the segment's activity of its :meth:`main_type` to ``relationship_type`` (when
        given and different), changes that destination type's cost per minute by
        ``cost_rate_change`` (relative, −0.2 = 20 % cheaper; for every segment using it, as a
        rate is the team's, not the segment's) and the segment's yearly retention by
        ``retention_change`` (points, 0.05 = five more).
        """
        current = self.main_type(segment)
        target = relationship_type or current
        changes: list = []
        if target is not None and current is not None and target != current:
            changes.append(Move(segment=segment, from_type=current, to_type=target))
        if target is not None and cost_rate_change:
            changes.append(CostRate(type=target, change=cost_rate_change))
        if retention_change:
            changes.append(RetentionChange(segment=segment, change=retention_change))
        return self.evaluate(changes, name="what-if")

    def evaluate(self, scenario: Scenario | Sequence | Mapping | None = None, *,
                 name: str = "") -> ScenarioResult:
        """The scenario's cost, value, profit and net value per segment, against the baseline.

        Parameters
        ----------
        scenario : Scenario, list of changes, mapping, or None
            A :class:`Scenario`, a list of changes (:class:`Move`, :class:`CostRate`,
            :class:`RetentionChange`, :class:`MarginChange`, :class:`DiscountRate`, or their
            mappings), a mapping as in client.yaml, or None for no change.
        name : str, optional
            Name for a scenario given as a list.

        Raises
        ------
        ValueError
            When a change names a segment the model does not have.
        """
        spec = _scenario(scenario, name)
        figures = self._compute(self._params(spec))
        return ScenarioResult(spec.name, self.segments, self.names, self._base, figures)


# --------------------------------------------------------------------------------------------
# Comparing scenarios and sensitivity
# --------------------------------------------------------------------------------------------

def compare(model: ScenarioModel, scenarios: Sequence[Scenario | Mapping], *,
            by: Literal["total", "segment"] = "total",
            baseline: str | None = None) -> pd.DataFrame:
    """The consultant's scenarios side by side.

    Parameters
    ----------
    model : ScenarioModel
    scenarios : list of Scenario or mappings
        E.g. ``config.scenarios``.
    by : {"total", "segment"}
        One row per scenario (totals), or one per scenario and segment.
    baseline : str, optional
        When given, a first scenario of that name with no change (every ``_change`` is 0):
        today's figures, shown beside the alternatives.

    Returns
    -------
    DataFrame
        ``scenario, note`` (and ``segment, segment_name`` when by segment), then for cost, value,
        profit and net_value the ``_base`` figure, the scenario's and the ``_change``.
    """
    rows = []
    if baseline is not None:
        scenarios = [Scenario(name=baseline), *scenarios]
    for item in scenarios:
        spec = _scenario(item)
        result = model.evaluate(spec)
        if by == "segment":
            frame = result.frame.drop(columns=["retention_base", "retention", "customers"])
            frame.insert(0, "note", spec.note)
            frame.insert(0, "scenario", spec.name)
            rows.append(frame)
        else:
            rows.append(pd.DataFrame([{"scenario": spec.name, "note": spec.note,
                                       **result.totals}]))
    if not rows:
        columns = ["scenario", "note"] + (["segment", "segment_name"] if by == "segment" else [])
        columns += [f"{m}{s}" for m in METRICS for s in ("_base", "", "_change")]
        return pd.DataFrame(columns=columns)
    return pd.concat(rows, ignore_index=True)


def suggested(model: ScenarioModel, verdicts: pd.DataFrame, lang: str) -> list[Scenario]:
    """Scenarios the verdicts suggest, for a client.yaml that has none.

    - every segment whose verdict is ``move_cheaper``: its main type's activity moved to the
      cheaper type the verdict names (one scenario per segment);
    - every segment whose verdict is ``stop``: all its activity moved to automated services,
      the cheapest way to keep serving it while it is let go;
    - when there are two or more of these, one more scenario with all of them together.

    A ``win_back`` segment gets no suggested move: its verdict is a reactivation test, valued by
    the plan's reactivation lever, not a change of relationship type.

    Retention is left unchanged (the sensitivity analysis shows how much it matters). Names and
    notes are in ``lang`` and say that the scenario is a suggestion, not the consultant's.

    Parameters
    ----------
    model : ScenarioModel
    verdicts : DataFrame
        :func:`crmkit.relationships.cost_benefit.per_segment` on the same customers.
    lang : {"en", "es"}
    """
    bottom = "automated_services"
    out: list[Scenario] = []
    every: list[Move] = []
    for row in verdicts.itertuples(index=False):
        if row.segment not in model.segments:
            continue
        name = str(row.segment_name)
        moves: list[Move] = []
        if row.verdict == "move_cheaper" and isinstance(row.cheaper_type, str):
            moves = [Move(segment=row.segment, from_type=row.main_type,
                          to_type=row.cheaper_type)]
            title = t("rel_suggested_move", lang, segment=name,
                      type=type_name(row.cheaper_type, lang))
            note = t("rel_suggested_move_note", lang,
                     main=type_name(row.main_type, lang).lower(),
                     cheaper=type_name(row.cheaper_type, lang).lower())
        elif row.verdict == "stop":
            used = model.interactions[model.segment_index(row.segment)] > 0
            moves = [Move(segment=row.segment, from_type=key, to_type=bottom)
                     for k, key in enumerate(TYPES) if used[k] and key != bottom]
            title = t("rel_suggested_stop", lang, segment=name,
                      type=type_name(bottom, lang))
            note = t("rel_suggested_stop_note", lang, type=type_name(bottom, lang).lower())
        if moves:
            out.append(Scenario(name=title, note=note, changes=moves))
            every.extend(moves)
    if len(out) >= 2:
        out.append(Scenario(name=t("rel_suggested_all", lang),
                            note=t("rel_suggested_all_note", lang), changes=every))
    return out


def proposed(config: Any, model: ScenarioModel, verdicts: pd.DataFrame, lang: str
             ) -> tuple[list[Scenario], bool]:
    """The scenarios a workbook compares: client.yaml's, else :func:`suggested` ones.

    Returns
    -------
    scenarios : list of Scenario
    suggested : bool
        True when client.yaml has no ``scenarios:`` and the list was suggested.
    """
    given = list(getattr(config, "scenarios", None) or [])
    if given:
        return [_scenario(item) for item in given], False
    return suggested(model, verdicts, lang), True


def comparison_figures(comparison: pd.DataFrame, *, baseline: str | None = None,
                       suggested: bool = False) -> dict:
    """Key figures of :func:`compare` (by total) for ``results.json`` and the prose.

    ``scenarios``: one record per row; ``compared``: how many alternatives there are besides
    the baseline; ``best``: the alternative that adds most customer value after serving costs
    (``net_value_change``), None when there is none; ``suggested``: as given.
    """
    records = comparison.to_dict("records")
    alternatives = [r for r in records if baseline is None or r["scenario"] != baseline]
    best = max(alternatives, key=lambda r: r["net_value_change"], default=None)
    keep = ("scenario", "note", "cost_change", "value_change", "profit_change",
            "net_value_change")
    return {"suggested": suggested, "baseline": baseline, "compared": len(alternatives),
            "scenarios": records,
            "best": None if best is None else {k: best[k] for k in keep}}


@dataclass
class _Assumption:
    key: str
    relationship_type: str | None
    unit: str                       # money_per_minute, money, pct
    base: float
    lower: float                    # plausible range for the break-even search
    upper: float
    apply: Callable[[float], _Params]


def _assumptions_of(model: ScenarioModel) -> list[_Assumption]:
    items = []
    in_use = model.minutes.sum(axis=0) > 0
    identity = model._identity

    def with_(**changes) -> _Params:
        p = _Params(rate=identity.rate.copy(), fixed=identity.fixed.copy(), moves=[],
                    retention_shift=identity.retention_shift,
                    retention_factor=identity.retention_factor,
                    margin_factor=identity.margin_factor, discount=identity.discount)
        for key, value in changes.items():
            setattr(p, key, value)
        return p

    def rate_at(k: int):
        def apply(x: float) -> _Params:
            rate = identity.rate.copy()
            rate[k] = x
            return with_(rate=rate)
        return apply

    def fixed_at(k: int):
        def apply(x: float) -> _Params:
            fixed = identity.fixed.copy()
            fixed[k] = x
            return with_(fixed=fixed)
        return apply

    for k, key in enumerate(TYPES):
        if in_use[k] and model.rate[k] > 0:
            items.append(_Assumption("cost_per_minute", key, "money_per_minute",
                                     float(model.rate[k]), 0.0, float(model.rate[k]) * 10,
                                     rate_at(k)))
    for k, key in enumerate(TYPES):
        if in_use[k] and model.fixed[k] > 0:
            items.append(_Assumption("fixed_yearly_cost", key, "money", float(model.fixed[k]),
                                     0.0, float(model.fixed[k]) * 10, fixed_at(k)))
    weights = model.customers.sum()
    mean_retention = float((model.retention * model.customers).sum() / weights) if weights else 0
    if mean_retention > 0:
        items.append(_Assumption(
            "retention", None, "pct", mean_retention, 0.0, MAX_RETENTION,
            lambda x: with_(retention_factor=np.full(len(model.segments),
                                                     x / mean_retention))))
    revenue = float(np.nansum(model.revenue))
    margin = float(model.margin.sum())
    if revenue > 0 and margin > 0:
        rate = margin / revenue
        items.append(_Assumption("gross_margin", None, "pct", rate, 0.0, max(1.0, rate * 3),
                                 lambda x: with_(margin_factor=np.full(len(model.segments),
                                                                       x / rate))))
    elif margin > 0:
        items.append(_Assumption("margin_factor", None, "pct", 1.0, 0.0, 3.0,
                                 lambda x: with_(margin_factor=np.full(len(model.segments), x))))
    if model.discount_rate > 0:
        items.append(_Assumption("discount_rate", None, "pct", model.discount_rate, 0.0, 1.0,
                                 lambda x: with_(discount=x)))
    return items


def sensitivity(model: ScenarioModel, *, swing: float = 0.2,
                metric: Literal["cost", "value", "profit", "net_value"] = "net_value",
                grid: int = 200) -> pd.DataFrame:
    """How the total of ``metric`` moves when each key assumption moves by ±``swing``.

    The assumptions: the cost per minute and the fixed yearly cost of every type in use (that
    has one), the customers' yearly retention (every segment's scaled alike; shown as the
    customer-weighted mean), the gross margin rate (margin / revenue; every segment's margin
    scaled alike) and the discount rate. Each is set to ``base × (1 − swing)`` and
    ``base × (1 + swing)`` (kept within the plausible range below), everything else at base.

    The break-even of an assumption is the value at which the total crosses zero, nearest to the
    base value, in a plausible range (rates and fixed costs 0 to 10 × base; retention 0 to 0.99;
    margin rate 0 to max(1, 3 × base); discount rate 0 to 1): a grid of ``grid`` points brackets
    the crossing and bisection solves it (:func:`_bisect`). None when the total keeps its sign
    over the range.

    Parameters
    ----------
    model : ScenarioModel
    swing : float
        Relative move of each assumption (0.2 = ±20 %).
    metric : {"net_value", "profit", "value", "cost"}
        Total to watch. ``profit`` is a yearly figure and does not move with retention or the
        discount rate; ``net_value`` (customer value after serving costs over the horizon, the
        default) moves with all of them.

    Returns
    -------
    DataFrame
        One row per assumption, largest swing first: ``assumption`` (``cost_per_minute``,
        ``fixed_yearly_cost``, ``retention``, ``gross_margin`` or ``margin_factor``,
        ``discount_rate``), ``relationship_type`` (for costs; else None), ``unit``
        (``money_per_minute``, ``money`` or ``pct``), ``base, low, high``, ``metric_base,
        metric_low, metric_high``, ``swing`` (|high − low| of the metric) and ``break_even``
        (None when there is none).
    """
    if metric not in METRICS:
        raise ValueError(f"metric {metric!r}; expected one of {', '.join(METRICS)}")
    base_total = float(model._base[metric].sum())

    rows = []
    for item in _assumptions_of(model):
        def total(x: float, item=item) -> float:
            return float(model._compute(item.apply(x))[metric].sum())
        # kept in the plausible range: a retention of 0.99 × 1.2 would read as 119 %
        low = min(max(item.base * (1 - swing), item.lower), item.upper)
        high = min(max(item.base * (1 + swing), item.lower), item.upper)
        at_low, at_high = total(low), total(high)
        rows.append({"assumption": item.key, "relationship_type": item.relationship_type,
                     "unit": item.unit, "base": item.base, "low": low, "high": high,
                     "metric_base": base_total, "metric_low": at_low, "metric_high": at_high,
                     "swing": abs(at_high - at_low),
                     "break_even": _break_even(total, item.base, item.lower, item.upper, grid)})
    columns = ["assumption", "relationship_type", "unit", "base", "low", "high", "metric_base",
               "metric_low", "metric_high", "swing", "break_even"]
    frame = pd.DataFrame(rows, columns=columns)
    # object columns, so that "no break-even" and "not a cost" read None, not NaN
    for column in ("break_even", "relationship_type"):
        frame[column] = pd.Series([row[column] for row in rows], dtype=object)
    return frame.sort_values("swing", ascending=False, kind="stable").reset_index(drop=True)


def _bisect(f: Callable[[float], float], a: float, b: float, fa: float, *,
            rtol: float = 1e-12) -> float:
    """The root of ``f`` in ``[a, b]``, where ``f(a)`` (given: ``fa``) and ``f(b)`` differ in sign.

    Plain bisection to a relative width of ``rtol``: about forty evaluations of a function
    that costs microseconds here, and no import of :mod:`scipy.optimize` (half a second) in the
    workbook and the dashboard that call it.
    """
    for _ in range(200):
        mid = 0.5 * (a + b)
        if b - a <= rtol * max(abs(a), abs(b), 1e-300) or mid in (a, b):
            break
        fm = f(mid)
        if fm == 0:
            return mid
        if (fm < 0) == (fa < 0):
            a, fa = mid, fm
        else:
            b = mid
    return 0.5 * (a + b)


def _break_even(f: Callable[[float], float], base: float, lower: float, upper: float,
                grid: int) -> float | None:
    """The root of ``f`` in [lower, upper] nearest to ``base``, or None."""
    xs = np.unique(np.concatenate([np.linspace(lower, upper, grid), [base]]))
    ys = np.array([f(x) for x in xs])
    exact = xs[ys == 0]
    crossings = np.flatnonzero(np.sign(ys[:-1]) * np.sign(ys[1:]) < 0)
    candidates = [float(x) for x in exact]
    for i in crossings:
        candidates.append(_bisect(f, float(xs[i]), float(xs[i + 1]), float(ys[i])))
    if not candidates:
        return None
    best = min(candidates, key=lambda x: abs(x - base))
    return None if math.isnan(best) else best


def sensitivity_figures(table: pd.DataFrame, lang: str, *, swing: float = 0.2,
                        metric: str = "net_value") -> dict:
    """Key figures of :func:`sensitivity` for ``results.json`` and the prose.

    Every row gets a ``label`` in ``lang`` (e.g. "Cost per minute, Self-service");
    ``top`` is the assumption the result hangs on most (None without assumptions);
    ``break_evens`` the rows that have a break-even value in their plausible range.
    """
    rows = []
    for record in table.to_dict("records"):
        kind, key = record["assumption"], record["relationship_type"]
        label = (t(f"rel_assumption_{kind}", lang, type=type_name(key, lang)) if key
                 else t(f"rel_assumption_{kind}", lang))
        rows.append({"label": label, **record})
    return {"swing": swing, "metric": metric,
            "base_total": float(table["metric_base"].iloc[0]) if len(table) else None,
            "assumptions": rows, "top": rows[0] if rows else None,
            "break_evens": [r for r in rows if r["break_even"] is not None]}
