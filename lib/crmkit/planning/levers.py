"""The business case's levers: what the CRM changes in the customers' expected margin.

Every lever is a change over **one baseline**, the customer-base model of workbook 02 (the
per-customer table ``tables/customers.parquet``): for customer ``i``, ``p_i`` the probability of
being still a customer (``probability_alive``), ``m_i`` its yearly gross margin
(``margin_window × 12 / window_months``, not below 0) and ``c_i`` its yearly variable (avoidable)
cost to serve (chapter 3). A segment's **expected yearly margin** is ``Σ p_i m_i`` and its
**expected yearly contribution** ``Σ p_i (m_i − c_i)``; its yearly retention ``r`` is the model's
(:func:`crmkit.relationships.cost_benefit.retention_by_segment`), and ``L(r)`` the discounted
years a customer is served over the CLV horizon
(:func:`crmkit.relationships.cost_benefit.lifetime_factor`). Each lever, per segment, for the
customers it reaches, a year at full run-rate:

- **retention**: ``Δr`` points on the segment's yearly retention (``crm_project.levers.retention``
  on its targeted segments, plus the retention changes of the plan's scenarios — a downgrade to a
  cheaper relationship is a negative ``Δr``) →
  ``Σ p_i (m_i − c_i) × (L(r + Δr) / L(r) − 1)``: the contribution a year is proportional to how
  long customers stay, as in workbook 04;
- **share of customer**: ``γ`` more spend from still-active customers → ``Σ p_i m_i × γ`` (a
  margin change of a scenario adds to ``γ``);
- **reactivation** of the lapsing segments: of the ``n`` customers reached (those with marketing
  consent), ``ρ n`` are won back a year, each worth ``V``, the value of a customer of the segment
  it rejoins (its CLV per customer less its variable cost over its lifetime factor), minus the
  contacts: ``ρ n V − n × contacts a year × cost per contact``. With a win-back programme run
  every year, the cohorts won back stack up, so at full run-rate a year's programme is worth the
  lifetime value of the customers it wins;
- **automation offers** (level 2), per segment and campaign, on the consenting customers not held
  out as the control group (share ``1 − h``): ``Σ κ_i p_i × (response treated − response
  control) × margin per order − Σ κ_i p_i × response treated × coupon − Σ κ_i × cost per
  contact``, × campaigns a year. The **control response** is the chance that an active customer
  orders within the offer's deadline ``D`` anyway, ``1 − exp(−λ D / 365)`` with ``λ`` the
  segment's expected orders a year per active customer (the model's ``expected_purchases``); the
  offer converts a further share ``redemption_rate × π_s / π`` of the others, where ``π_s`` is
  the share of the segment's past orders placed on a promotion and ``π`` the base's (chapter 2's
  promotion history; 1 without one). Every treated buyer redeems the coupon — those who would
  have bought anyway too, which is why the control group is part of the design;
- **cost to serve**: only avoidable cost — the variable cost the scenarios' moves and rate
  changes save (moved contacts costed at the destination's minutes and rate: with equal minutes
  a contact this is ``moved minutes × (rate from − rate to)``), plus any platform cost a scenario
  explicitly adds or retires (``cost: fixed_yearly_cost``). Moving a segment never retires a
  platform by itself;
- **acquisition**, when the objective is ``attract``: ``new customers × (CLV of a new customer −
  cost of acquisition)``.

A plan without change (every assumption 0 and no scenario) has exactly zero benefit: every
formula above is a difference from the baseline that vanishes term by term.

The arithmetic is written out here rather than taken from a marketing-mix package because each
line must be redone by hand in front of the client's management team.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from crmkit.core.i18n import Formatter, t
from crmkit.core.problems import UserError
from crmkit.planning.schedule import Benefit, Plan
from crmkit.relationships.cost_benefit import (
    MAX_RETENTION,
    lifetime_factor,
    retention_by_segment,
)
from crmkit.relationships.cost_to_serve import CostToServe
from crmkit.settings.project import (
    LEVERS,
    AutomationSettings,
    LeverSettings,
    OfferSettings,
    project_settings,
)

__all__ = [
    "ASSUMPTION_COLUMNS",
    "DEFAULT_COUPON_SHARE",
    "LEVERS",
    "LEVER_COLUMNS",
    "SUMMARY_COLUMNS",
    "LeverModel",
    "assumptions",
    "by_lever",
    "lever_benefits",
    "lever_figures",
]

#: Default coupon of a level-2 offer: this share of the segment's average order ("10 % off").
DEFAULT_COUPON_SHARE = 0.10
#: A segment is *lapsing* when at least this share of its customers are lapsed.
LAPSING_SHARE = 0.5
#: The lever table's columns for a :class:`~crmkit.delivery.tables.Table`.
LEVER_COLUMNS = {"lever_name": ("lever_col_lever", "text"),
                 "segment_name": ("lever_col_segment", "text"),
                 "reached": ("lever_col_reached", "number:0"),
                 "base": ("lever_col_base", "money"),
                 "change_text": ("lever_col_change", "text"),
                 "gross": ("lever_col_gross", "money"),
                 "cost": ("lever_col_cost", "money"),
                 "yearly_benefit": ("lever_col_yearly_benefit", "money")}
#: For :func:`lever_summary`.
SUMMARY_COLUMNS = {"lever_name": ("lever_col_lever", "text"),
                   "segments": ("lever_col_segments", "integer"),
                   "reached": ("lever_col_reached", "number:0"),
                   "gross": ("lever_col_gross", "money"),
                   "cost": ("lever_col_cost", "money"),
                   "yearly_benefit": ("lever_col_yearly_benefit", "money")}
#: For :func:`assumptions`.
ASSUMPTION_COLUMNS = {"lever_name": ("lever_col_lever", "text"),
                      "assumption": ("lever_col_assumption", "text"),
                      "value": ("lever_col_value", "text"),
                      "source_name": ("lever_col_source", "text")}
_COLUMNS = ["lever", "segment", "segment_name", "customers", "reached", "base", "change",
            "gross", "cost", "yearly_benefit"]


@dataclass
class LeverModel:
    """Per-segment aggregates of the customer-base model, on which every lever is evaluated.

    Build it with :meth:`from_tables`; :meth:`evaluate` gives the lever table (also with another
    retention uplift, for the break-even).

    Attributes
    ----------
    segments, names : list of str
    stats : DataFrame
        Indexed by segment: ``customers``, ``alive`` (Σ p), ``margin`` (Σ p m, the expected
        yearly margin), ``contribution`` (Σ p (m − c)), ``retention``, ``lifetime``,
        ``lapsed_share``, ``lapsing`` (bool), ``value_per_customer`` (CLV − variable cost × L, per
        customer), ``consenting`` (Σ κ), ``margin_per_order``, ``order_rate`` (expected orders a
        year per active customer), ``promo_index``, ``cost_saving`` (yearly avoidable cost the
        scenarios save), ``scenario_points`` (their retention change, points),
        ``scenario_margin`` (their margin change, a share), and per offer ``offer_alive``
        (Σ κ p of the customers an offer may go to) and ``offer_consenting`` (Σ κ of them).
    settings : LeverSettings
    offers : dict of str -> OfferSettings
        The level-2 offer in force per segment (``crm_project.automation``).
    objective : str or None
    discount_rate, horizon_years : float
        Those of the CLV (workbook 04's lifetime factor).
    new_customers : dict
        ``last_year`` (customers acquired in the last 12 months), ``clv`` and ``margin`` (their
        mean CLV and yearly margin).
    promotions : bool
        Whether the promotion history was available.
    """

    segments: list[str]
    names: list[str]
    stats: pd.DataFrame
    settings: LeverSettings
    offers: dict[str, OfferSettings]
    objective: str | None
    discount_rate: float
    horizon_years: float
    new_customers: dict = field(default_factory=dict)
    promotions: bool = False

    # -- building ---------------------------------------------------------------------------

    @classmethod
    def from_tables(cls, customers: pd.DataFrame, cost: CostToServe | None, config: Any = None,
                    *, scenario_model: Any = None, scenarios: Sequence[Any] = (),
                    objective: str | None = None, promotions: pd.DataFrame | None = None,
                    attributes: pd.DataFrame | None = None,
                    automation: AutomationSettings | None = None,
                    window_months: int | None = None) -> LeverModel:
        """Prepare the levers from the per-customer table, the cost to serve and the scenarios.

        Parameters
        ----------
        customers : DataFrame
            ``tables/customers.parquet`` of workbook 02: ``customer_id, segment,
            margin_window, probability_alive, retention, expected_purchases, clv``; and
            ``recency_days``, ``tenure_days``, ``margin``, ``frequency`` when present.
        cost : CostToServe or None
            Chapter 3's cost to serve of the same customers (None: no variable cost).
        config : ClientConfig, optional
            ``crm_project.levers``, ``crm_project.automation``, ``assumptions``.
        scenario_model : ScenarioModel, optional
            Workbook 04's model; with ``scenarios``, the cost-to-serve lever and the scenarios'
            retention and margin changes.
        scenarios : list of Scenario
            The scenarios of the plan (client.yaml's or the suggested ones); one that only repeats
            smaller ones is not counted (as in :func:`crmkit.planning.benefits.scenario_benefits`).
        objective : {"attract", "retain", "grow"}, optional
            The acquisition lever counts only under ``attract``.
        promotions : DataFrame, optional
            :func:`crmkit.analysis.profiles.promotion_history` per segment (``orders``,
            ``promo_orders``).
        attributes : DataFrame, optional
            customers.csv, for ``levers.consent_attribute``.
        automation : AutomationSettings, optional
            The offers, when not ``config``'s (:func:`crmkit.planning.automation.level2`).
        window_months : int, optional
            Months ``margin_window`` covers; default ``assumptions.window_months``, else 12.
        """
        project = (project_settings(config) if not isinstance(config, AutomationSettings)
                   else project_settings(None))
        offers_settings = automation if automation is not None else (
            config if isinstance(config, AutomationSettings) else project.automation)
        settings = project.levers
        a = getattr(config, "assumptions", None)
        window = int(window_months or getattr(a, "window_months", 12) or 12)
        lapse = int(getattr(a, "lapse_days", 180) or 180)
        rate = float(getattr(a, "discount_rate", 0.10))
        years = float(getattr(a, "horizon_months", 36)) / 12.0
        missing = [c for c in ("customer_id", "segment", "margin_window", "probability_alive")
                   if c not in customers.columns]
        if missing:
            raise ValueError("the per-customer table needs " + ", ".join(missing)
                             + " (tables/customers.parquet of workbook 02)")
        table = customers.assign(segment=customers["segment"].astype(str),
                                 customer_id=customers["customer_id"].astype(str))
        order = list(dict.fromkeys(table["segment"]))
        names = (table.drop_duplicates("segment").set_index("segment")["segment_name"]
                 .astype(str).to_dict() if "segment_name" in table else {s: s for s in order})
        p = pd.to_numeric(table["probability_alive"], errors="coerce").fillna(0.0).clip(0, 1)
        m = (pd.to_numeric(table["margin_window"], errors="coerce").fillna(0.0).clip(lower=0)
             * 12.0 / window)
        if cost is not None:
            variable = cost.customers.assign(
                customer_id=cost.customers["customer_id"].astype(str)
            ).set_index("customer_id")["variable_cost"]
            c = table["customer_id"].map(variable).fillna(0.0).astype(float)
        else:
            c = pd.Series(0.0, index=table.index)
        kappa = _consent(table, settings, attributes)
        recency = (pd.to_numeric(table["recency_days"], errors="coerce")
                   if "recency_days" in table else pd.Series(np.nan, index=table.index))
        lapsed = (recency > lapse).astype(float).where(recency.notna(), 1.0 - p)
        expected = (pd.to_numeric(table["expected_purchases"], errors="coerce").fillna(0.0)
                    if "expected_purchases" in table else pd.Series(0.0, index=table.index))
        if {"margin", "frequency"} <= set(table.columns):
            order_margin = pd.to_numeric(table["margin"], errors="coerce").fillna(0.0)
            orders = pd.to_numeric(table["frequency"], errors="coerce").fillna(0.0)
        else:  # an older table: the window's margin over one order each
            order_margin, orders = m * window / 12.0, (m > 0).astype(float)
        if "monetary" in table and "frequency" in table:
            order_spend = pd.to_numeric(table["monetary"], errors="coerce").fillna(0.0)
        elif "revenue_window" in table:  # an older table: the window's spend, one order each
            order_spend = pd.to_numeric(table["revenue_window"], errors="coerce").fillna(0.0)
            orders = (order_spend > 0).astype(float)
        else:
            order_spend = order_margin
        frame = pd.DataFrame({"segment": table["segment"], "p": p, "m": m, "c": c,
                              "kappa": kappa, "lapsed": lapsed, "expected": expected,
                              "order_margin": order_margin, "orders": orders,
                              "order_spend": order_spend,
                              "clv": (pd.to_numeric(table["clv"], errors="coerce").fillna(0.0)
                                      if "clv" in table else 0.0)})
        frame["pm"] = frame["p"] * frame["m"]
        frame["pmc"] = frame["p"] * (frame["m"] - frame["c"])
        frame["kp"] = frame["kappa"] * frame["p"]
        g = frame.groupby("segment", sort=False)
        stats = pd.DataFrame(index=pd.Index(order, name="segment"))
        stats["customers"] = g.size().reindex(order).astype(float)
        stats["alive"] = g["p"].sum().reindex(order)
        stats["margin"] = g["pm"].sum().reindex(order)
        stats["contribution"] = g["pmc"].sum().reindex(order)
        stats["retention"] = retention_by_segment(table, config).reindex(order).to_numpy(float)
        stats["lifetime"] = lifetime_factor(stats["retention"].to_numpy(), rate, years)
        stats["lapsed_share"] = g["lapsed"].mean().reindex(order)
        stats["lapsing"] = stats["lapsed_share"] >= LAPSING_SHARE
        stats["value_per_customer"] = ((g["clv"].sum().reindex(order)
                                        - g["c"].sum().reindex(order) * stats["lifetime"])
                                       / stats["customers"])
        stats["consenting"] = g["kappa"].sum().reindex(order)
        orders_sum = g["orders"].sum().reindex(order)
        stats["margin_per_order"] = (g["order_margin"].sum().reindex(order)
                                     / orders_sum.where(orders_sum > 0)).fillna(0.0)
        stats["spend_per_order"] = (g["order_spend"].sum().reindex(order)
                                    / orders_sum.where(orders_sum > 0)).fillna(0.0)
        alive = stats["alive"].where(stats["alive"] > 0)
        stats["order_rate"] = (g["expected"].sum().reindex(order) / alive / years).fillna(0.0)
        stats["promo_index"] = _promo_index(promotions, order)
        offers = {s: offers_settings.offer(s) for s in order}
        stats["offer_alive"] = [float(frame.loc[(frame["segment"] == s)
                                                & (frame["p"] >= offers[s].min_probability_alive),
                                                "kp"].sum()) for s in order]
        stats["offer_consenting"] = [float(frame.loc[(frame["segment"] == s)
                                                     & (frame["p"]
                                                        >= offers[s].min_probability_alive),
                                                     "kappa"].sum()) for s in order]
        # the same sums without consent, so that a uniform consent can be changed later
        # (the dashboard's slider, :meth:`with_levers`) without the per-customer table
        stats["offer_p"] = [float(frame.loc[(frame["segment"] == s)
                                            & (frame["p"] >= offers[s].min_probability_alive),
                                            "p"].sum()) for s in order]
        stats["offer_customers"] = [float(((frame["segment"] == s)
                                           & (frame["p"] >= offers[s].min_probability_alive)
                                           ).sum()) for s in order]
        saving, points, margin = _scenario_changes(scenario_model, scenarios, order)
        stats["cost_saving"], stats["scenario_points"] = saving, points
        stats["scenario_margin"] = margin
        tenure = (pd.to_numeric(table["tenure_days"], errors="coerce")
                  if "tenure_days" in table else pd.Series(np.nan, index=table.index))
        new = tenure <= 365
        new_customers = {"last_year": int(new.sum()),
                         "clv": float(frame.loc[new, "clv"].mean()) if new.any() else 0.0,
                         "margin": float(frame.loc[new, "m"].mean()) if new.any() else 0.0}
        goal = objective if objective is not None else getattr(config, "objective", None)
        return cls(segments=order, names=[names.get(s, s) for s in order], stats=stats,
                   settings=settings, offers=offers, objective=goal, discount_rate=rate,
                   horizon_years=years, new_customers=new_customers,
                   promotions=promotions is not None and len(promotions) > 0)

    # -- other assumptions, for the dashboard's what-if ---------------------------------------

    def with_levers(self, settings: LeverSettings) -> LeverModel:
        """The same customers under other lever assumptions (``crm_project.levers``).

        Only a uniform ``consent`` (no ``consent_attribute``) changes the aggregates: the
        consenting customers and the offers' reach scale with it; every other assumption is
        read by :meth:`evaluate` itself. The result equals :meth:`from_tables` on a client.yaml
        holding ``settings`` (to the last rounding of a sum), without its per-customer work.
        """
        stats = self.stats
        if (settings.consent_attribute is None and self.settings.consent_attribute is None
                and settings.consent != self.settings.consent):
            stats = stats.copy()
            kappa = float(settings.consent)
            stats["consenting"] = kappa * stats["customers"]
            stats["offer_alive"] = kappa * stats["offer_p"]
            stats["offer_consenting"] = kappa * stats["offer_customers"]
        elif settings.consent_attribute != self.settings.consent_attribute:
            raise ValueError("consent_attribute cannot change without the customer table; "
                             "build the model again with LeverModel.from_tables")
        return replace(self, settings=settings, stats=stats)

    def with_scenario(self, scenario_model: Any, scenario: Any) -> LeverModel:
        """The same customers with one more scenario added to the plan's.

        Its avoidable-cost saving, retention points and margin change are added to those of the
        plan's scenarios, as :meth:`from_tables` would with the scenario last in the list (the
        caller checks that the scenario repeats none of the plan's: see
        :func:`crmkit.planning.benefits._covered`).
        """
        saving, points, margin = _scenario_changes(scenario_model, [scenario], self.segments)
        stats = self.stats.copy()
        stats["cost_saving"] = stats["cost_saving"].to_numpy() + saving
        stats["scenario_points"] = stats["scenario_points"].to_numpy() + points
        stats["scenario_margin"] = stats["scenario_margin"].to_numpy() + margin
        return replace(self, stats=stats)

    def retention_benefit(self, points: float | None = None) -> float:
        """The retention lever's yearly benefit, all segments, at ``points`` on its targets
        (the break-even's unknown; default client.yaml's); 0 when the lever is left out."""
        if not self.included("retention"):
            return 0.0
        # :meth:`_retention`'s arithmetic on arrays: the break-even calls this at every step
        s, lever = self.stats, self.settings.retention
        targets = set(self.retention_targets())
        own = np.array([(points if points is not None else lever.by_segment.get(seg, lever.points))
                        if seg in targets else 0.0 for seg in self.segments], dtype=float)
        delta = own + s["scenario_points"].to_numpy(dtype=float)
        counted = np.array([seg in targets for seg in self.segments]) | (delta != 0)
        r = s["retention"].to_numpy(dtype=float)
        new = np.clip(r + delta / 100.0, 0.0, MAX_RETENTION)
        after = lifetime_factor(new, self.discount_rate, self.horizon_years)
        gain = np.where(new == r, 0.0, s["contribution"].to_numpy(dtype=float)
                        * (after / s["lifetime"].to_numpy(dtype=float) - 1.0))
        return float(gain[counted].sum())

    # -- targets ----------------------------------------------------------------------------

    def retention_targets(self) -> list[str]:
        """The segments the retention lever aims at: client.yaml's, else the active ones."""
        lever = self.settings.retention
        chosen = (list(lever.segments) if lever.segments is not None
                  else [s for s in self.segments if not self.stats.at[s, "lapsing"]])
        chosen += [s for s in lever.by_segment if s not in chosen]
        return [s for s in chosen if s in self.stats.index]

    def reactivation_targets(self) -> list[str]:
        """The segments the reactivation lever reaches: client.yaml's, else the lapsing ones."""
        lever = self.settings.reactivation
        chosen = (lever.segments if lever.segments is not None
                  else [s for s in self.segments if self.stats.at[s, "lapsing"]])
        return [s for s in chosen if s in self.stats.index]

    def rejoin(self, segment: str) -> str | None:
        """The segment a won-back customer of ``segment`` rejoins (module docstring)."""
        own = self.settings.reactivation.rejoin.get(segment)
        if own is not None:
            return own if own in self.stats.index else None
        active = self.stats[~self.stats["lapsing"]]
        if active.empty:
            return None
        return str(active["value_per_customer"].idxmin())

    def included(self, lever: str) -> bool:
        """Whether a lever counts: listed in ``levers.include`` (acquisition: under attract)."""
        if lever not in self.settings.include:
            return False
        if lever == "acquisition":
            return self.objective == "attract"
        if lever == "cost_to_serve":
            return self.settings.cost_to_serve.include
        return True

    # -- evaluating -------------------------------------------------------------------------

    def evaluate(self, *, retention_points: float | None = None) -> pd.DataFrame:
        """The yearly benefit of every lever, per segment, at full run-rate.

        Parameters
        ----------
        retention_points : float, optional
            Replace the retention lever's points on every targeted segment (``by_segment``
            included) by this figure — the break-even's unknown. Default: client.yaml's.

        Returns
        -------
        DataFrame
            One row per lever and segment reached, in :data:`LEVERS` order: ``lever``,
            ``segment`` (None for acquisition), ``segment_name``, ``customers``, ``reached``,
            ``base`` (what the lever works on: expected yearly contribution, expected yearly
            margin, value of a won-back customer, margin per order, avoidable cost, CLV of a new
            customer), ``change`` (Δr in points, γ, ρ, the response the offer adds, —, new
            customers), ``gross``, ``cost`` (contacts, coupons, acquisition) and
            ``yearly_benefit`` (gross − cost); plus lever-specific columns (``retention``,
            ``new_retention``, ``rejoin``, ``response_control``, ``response_treated``,
            ``coupon``).
        """
        rows: list[dict] = []
        for lever in LEVERS:
            if self.included(lever):
                rows += getattr(self, f"_{lever}")(retention_points)
        frame = pd.DataFrame(rows)
        for column in _COLUMNS:
            if column not in frame:
                frame[column] = pd.Series(dtype=float if column not in (
                    "lever", "segment", "segment_name") else object)
        extra = [c for c in frame.columns if c not in _COLUMNS]
        return frame[_COLUMNS + extra].reset_index(drop=True)

    def _row(self, lever: str, segment: str | None, **values) -> dict:
        s = self.stats
        name = self.names[self.segments.index(segment)] if segment is not None else None
        out = {"lever": lever, "segment": segment, "segment_name": name,
               "customers": float(s.at[segment, "customers"]) if segment is not None else None}
        out.update(values)
        out["yearly_benefit"] = out["gross"] - out["cost"]
        return out

    def _retention(self, points: float | None) -> list[dict]:
        lever, s = self.settings.retention, self.stats
        targets = set(self.retention_targets())
        rows = []
        for seg in self.segments:
            own = 0.0
            if seg in targets:
                own = (points if points is not None
                       else lever.by_segment.get(seg, lever.points))
            delta = own + float(s.at[seg, "scenario_points"])
            if seg not in targets and delta == 0:
                continue
            r = float(s.at[seg, "retention"])
            new = min(max(r + delta / 100.0, 0.0), MAX_RETENTION)
            after = float(lifetime_factor(new, self.discount_rate, self.horizon_years))
            before = float(s.at[seg, "lifetime"])
            base = float(s.at[seg, "contribution"])
            # a retention that stays put gives exactly zero, not a rounding error
            gain = 0.0 if new == r else base * (after / before - 1.0)
            rows.append(self._row("retention", seg, reached=float(s.at[seg, "customers"]),
                                  base=base, change=delta, gross=gain, cost=0.0, retention=r,
                                  new_retention=new))
        return rows

    def _share_of_customer(self, _points: float | None) -> list[dict]:
        lever, s = self.settings.share_of_customer, self.stats
        targets = set(lever.segments if lever.segments is not None else self.segments)
        rows = []
        for seg in self.segments:
            gamma = (lever.uplift if seg in targets else 0.0) + float(s.at[seg,
                                                                         "scenario_margin"])
            if seg not in targets and gamma == 0:
                continue
            base = float(s.at[seg, "margin"])
            rows.append(self._row("share_of_customer", seg,
                                  reached=float(s.at[seg, "customers"]), base=base,
                                  change=gamma, gross=base * gamma, cost=0.0))
        return rows

    def _reactivation(self, _points: float | None) -> list[dict]:
        lever, s = self.settings.reactivation, self.stats
        rows = []
        for seg in self.reactivation_targets():
            target = self.rejoin(seg)
            value = float(s.at[target, "value_per_customer"]) if target is not None else 0.0
            reached = float(s.at[seg, "consenting"])
            won = lever.win_back_rate * reached
            rows.append(self._row("reactivation", seg, reached=reached, base=value,
                                  change=lever.win_back_rate, gross=won * value,
                                  cost=reached * lever.contacts_per_year * lever.contact_cost,
                                  rejoin=target))
        return rows

    def offer_terms(self, segment: str) -> dict:
        """The level-2 offer of a segment: ``coupon``, ``response_control`` (the chance an
        active customer orders within the deadline anyway), ``response_added`` (the share the
        offer converts of the others, scaled by the segment's promotion history),
        ``response_treated`` (their sum) and ``margin_per_order`` (module docstring)."""
        s, offer = self.stats, self.offers[segment]
        coupon = (float(offer.coupon_value) if offer.coupon_value is not None
                  else default_coupon(float(s.at[segment, "spend_per_order"])))
        control = 1.0 - math.exp(-float(s.at[segment, "order_rate"]) * offer.deadline_days
                                 / 365.0)
        added = min(offer.redemption_rate * float(s.at[segment, "promo_index"]), 1.0) \
            * (1.0 - control)
        return {"coupon": coupon, "response_control": control, "response_added": added,
                "response_treated": control + added,
                "margin_per_order": float(s.at[segment, "margin_per_order"])}

    def _automation(self, _points: float | None) -> list[dict]:
        lever, s = self.settings.automation, self.stats
        rows = []
        treated = 1.0 - lever.control_share
        for seg in self.segments:
            offer = self.offers[seg]
            if not offer.include:
                continue
            terms = self.offer_terms(seg)
            coupon, control = terms["coupon"], terms["response_control"]
            added = terms["response_added"]
            alive = treated * float(s.at[seg, "offer_alive"])
            contacted = treated * float(s.at[seg, "offer_consenting"])
            margin = float(s.at[seg, "margin_per_order"])
            campaigns = lever.campaigns_per_year
            gross = campaigns * alive * added * margin
            spent = campaigns * (alive * (control + added) * coupon
                                 + contacted * lever.contact_cost)
            rows.append(self._row("automation", seg, reached=contacted, base=margin,
                                  change=added, gross=gross, cost=spent,
                                  response_control=control, response_treated=control + added,
                                  coupon=coupon))
        return rows

    def _cost_to_serve(self, _points: float | None) -> list[dict]:
        s = self.stats
        return [self._row("cost_to_serve", seg, reached=float(s.at[seg, "customers"]),
                          base=np.nan, change=np.nan, gross=float(s.at[seg, "cost_saving"]),
                          cost=0.0)
                for seg in self.segments if s.at[seg, "cost_saving"] != 0]

    def _acquisition(self, _points: float | None) -> list[dict]:
        lever, new = self.settings.acquisition, self.new_customers
        count = (float(lever.new_customers) if lever.new_customers is not None
                 else lever.growth * new.get("last_year", 0))
        clv = float(lever.clv) if lever.clv is not None else new.get("clv", 0.0)
        cac = (float(lever.cost_per_acquisition) if lever.cost_per_acquisition is not None
               else new.get("margin", 0.0))
        return [self._row("acquisition", None, reached=count, base=clv, change=count,
                          gross=count * clv, cost=count * cac, cost_per_acquisition=cac)]


def default_coupon(spend_per_order: float) -> float:
    """10 % of the segment's average order, to two significant figures (an estimate)."""
    from crmkit.planning.schedule import _nice

    return _nice(DEFAULT_COUPON_SHARE * max(spend_per_order, 0.0))


def _consent(table: pd.DataFrame, settings: LeverSettings,
             attributes: pd.DataFrame | None) -> pd.Series:
    """Each customer's marketing consent, 0 or 1 from an attribute, else the default share."""
    column = settings.consent_attribute
    if column is None:
        return pd.Series(float(settings.consent), index=table.index)
    if column in table.columns:
        values = table[column]
    elif attributes is not None and column in attributes.columns:
        lookup = attributes.assign(customer_id=attributes["customer_id"].astype(str)
                                   ).set_index("customer_id")[column]
        values = table["customer_id"].map(lookup)
    else:
        raise UserError(f"crm_project.levers.consent_attribute is '{column}', which is not a "
                        "column of customers.csv; expected one of its columns (yes/no, "
                        "true/false or 1/0), or leave it out to use crm_project.levers.consent")
    text = values.astype("string").str.strip().str.lower()
    yes = text.isin(["1", "yes", "y", "true", "si", "sí", "s", "1.0"])
    return yes.fillna(False).astype(float)


def _promo_index(promotions: pd.DataFrame | None, order: list[str]) -> pd.Series:
    """Each segment's share of orders on promotion over the base's (1 without a history)."""
    if promotions is None or len(promotions) == 0 or "promo_orders" not in promotions:
        return pd.Series(1.0, index=order)
    history = promotions.reindex(order)
    orders = history["orders"].fillna(0.0).astype(float)
    promo = history["promo_orders"].fillna(0.0).astype(float)
    base = promo.sum() / orders.sum() if orders.sum() > 0 else 0.0
    if not base > 0:
        return pd.Series(1.0, index=order)
    own = promo / orders.where(orders > 0)
    return (own / base).fillna(1.0)


def _scenario_changes(model: Any, scenarios: Sequence[Any], order: list[str]
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per segment: the yearly avoidable cost the counted scenarios save, their retention change
    (points) and their margin change (a share).

    Each counted scenario is evaluated on workbook 04's model with its cost changes only (moves
    without their retention change, rate and platform changes); the saving is the fall of the
    segment's avoidable cost — variable cost, plus any platform cost the scenario sets.
    """
    from crmkit.planning.benefits import _covered
    from crmkit.relationships.scenarios import (
        CostRate,
        MarginChange,
        Move,
        RetentionChange,
        Scenario,
        _scenario,
    )

    n = len(order)
    saving, points, margin = np.zeros(n), np.zeros(n), np.zeros(n)
    if model is None or not scenarios:
        return saving, points, margin
    specs = [_scenario(s) for s in scenarios]
    where = {s: i for i, s in enumerate(order)}
    absent = getattr(model, "absent", set())
    for spec, repeated in zip(specs, _covered(specs), strict=True):
        if repeated:
            continue
        costs = []
        for change in spec.changes:
            segment = getattr(change, "segment", None)
            if segment in absent:
                continue
            rows = [where[segment]] if segment in where else (
                list(range(n)) if segment is None else [])
            if isinstance(change, Move):
                costs.append(change.model_copy(update={"retention_change": 0.0}))
                for i in rows:
                    points[i] += 100.0 * change.share * change.retention_change
            elif isinstance(change, CostRate):
                costs.append(change)
            elif isinstance(change, RetentionChange):
                for i in rows:
                    points[i] += 100.0 * change.change
            elif isinstance(change, MarginChange):
                for i in rows:
                    margin[i] += change.change
        if costs:
            result = model.evaluate(Scenario(name=spec.name, changes=costs))
            change = result.scenario["avoidable_cost"] - result.base["avoidable_cost"]
            index = {s: i for i, s in enumerate(result.segments)}
            for seg, i in where.items():
                if seg in index:
                    saving[i] -= float(change[index[seg]])
    return saving, points, margin


def by_lever(frame: pd.DataFrame) -> dict[str, float]:
    """The yearly benefit of each lever at full run-rate (levers without a row are left out)."""
    sums = frame.groupby("lever", sort=False)["yearly_benefit"].sum()
    return {lever: float(sums[lever]) for lever in LEVERS if lever in sums.index}


def lever_benefits(frame: pd.DataFrame, plan: Plan, *, lang: str | None = None,
                   automation_delay_months: int = 3) -> list[Benefit]:
    """One :class:`Benefit` per lever, ramping up from go-live over the plan's ramp.

    The offers of level 2 start ``automation_delay_months`` after go-live, as in the automation
    roadmap (:func:`crmkit.planning.automation.roadmap`). With ``lang``, each benefit is named
    after its lever in that language (else by its key).
    """
    out = []
    for lever, amount in by_lever(frame).items():
        start: str | int = "launch"
        if lever == "automation":
            start = plan.go_live_month + automation_delay_months
        out.append(Benefit(t(f"lever_{lever}", lang) if lang else lever, amount, None, start))
    return out


def lever_figures(frame: pd.DataFrame, model: LeverModel, plan: Plan | None = None, *,
                  suggested: bool = False) -> dict:
    """Key figures of the levers for ``results.json`` (``implementation.benefits``).

    ``by_lever`` ({lever: yearly benefit at full run-rate}), ``yearly_total``, ``counted``
    (levers with a benefit line), ``negative`` (levers below zero), ``largest`` ({lever,
    yearly_benefit}; None without a lever), ``baseline`` (the base's expected yearly margin,
    Σ p m), ``segments`` (per lever and segment: ``lever, segment, reached, yearly_benefit``),
    ``retention_targets``, ``reactivation_targets``, ``promotion_history`` (whether chapter 2's
    promotion history set the offers' response), ``ramp_months`` and ``suggested`` (the plan's
    scenarios were suggested by workbook 04).
    """
    levers = by_lever(frame)
    largest = max(levers.items(), key=lambda kv: kv[1]) if levers else None
    return {
        "by_lever": levers, "yearly_total": float(sum(levers.values())),
        "counted": len(levers), "negative": [k for k, v in levers.items() if v < 0],
        "largest": None if largest is None else {"lever": largest[0], "name": largest[0],
                                                 "yearly_benefit": largest[1]},
        "baseline": float(model.stats["margin"].sum()),
        "segments": [{"lever": r.lever, "segment": r.segment, "reached": float(r.reached),
                      "yearly_benefit": float(r.yearly_benefit)}
                     for r in frame.itertuples(index=False)],
        "retention_targets": model.retention_targets(),
        "reactivation_targets": model.reactivation_targets(),
        "promotion_history": bool(model.promotions),
        "ramp_months": int(plan.benefit_ramp_months) if plan is not None else None,
        "suggested": bool(suggested)}


def lever_summary(frame: pd.DataFrame, fmt: Formatter) -> pd.DataFrame:
    """One row per lever: segments with a line, customers reached, gain, cost and benefit a
    year (the per-segment detail is :func:`lever_table`)."""
    rows = []
    for lever in LEVERS:
        part = frame[frame["lever"] == lever]
        if part.empty:
            continue
        rows.append({"lever": lever, "lever_name": t(f"lever_{lever}", fmt.lang),
                     "segments": int(part["segment"].notna().sum()),
                     "reached": float(part["reached"].sum()), "gross": float(part["gross"].sum()),
                     "cost": float(part["cost"].sum()),
                     "yearly_benefit": float(part["yearly_benefit"].sum())})
    return pd.DataFrame(rows, columns=["lever", "lever_name", "segments", "reached", "gross",
                                       "cost", "yearly_benefit"])


def lever_table(frame: pd.DataFrame, fmt: Formatter) -> pd.DataFrame:
    """The lever frame with ``lever_name`` and ``change_text`` for a client's table."""
    out = frame.copy()
    out["lever_name"] = [t(f"lever_{k}", fmt.lang) for k in out["lever"]]
    out["segment_name"] = [n if isinstance(n, str) else t("lever_new_customers", fmt.lang)
                           for n in out["segment_name"]]
    texts = []
    for row in out.itertuples(index=False):
        if row.lever == "retention":
            texts.append(t("lever_change_points", fmt.lang, points=fmt.number(row.change, 1)))
        elif row.lever == "acquisition":
            texts.append(t("lever_change_customers", fmt.lang,
                           customers=fmt.number(row.change, 0)))
        elif row.lever == "cost_to_serve" or pd.isna(row.change):
            texts.append("–")
        else:
            texts.append(fmt.pct(row.change, 1))
        # (automation: the response the offer adds to the control's)
    out["change_text"] = texts
    return out


def assumptions(model: LeverModel, fmt: Formatter) -> pd.DataFrame:
    """Every assumption of the levers in force, with its value and whether it is a default.

    Returns
    -------
    DataFrame
        ``lever``, ``lever_name``, ``key`` (its client.yaml path under ``crm_project``),
        ``assumption`` (text), ``value`` (text), ``source`` (``default`` or ``client.yaml``),
        ``source_name``.
    """
    s, lang = model.settings, fmt.lang
    default_rate = OfferSettings().redemption_rate
    rates = {o.redemption_rate for o in model.offers.values()} or {default_rate}
    rows = [
        ("retention", "levers.retention.points", s.retention, "points",
         t("lever_change_points", lang, points=fmt.number(s.retention.points, 1))),
        ("share_of_customer", "levers.share_of_customer.uplift", s.share_of_customer,
         "uplift", fmt.pct(s.share_of_customer.uplift, 1)),
        ("reactivation", "levers.reactivation.win_back_rate", s.reactivation, "win_back_rate",
         fmt.pct(s.reactivation.win_back_rate, 1)),
        ("reactivation", "levers.reactivation.contact_cost", s.reactivation, "contact_cost",
         fmt.money(s.reactivation.contact_cost, 2)),
        ("reactivation", "levers.reactivation.contacts_per_year", s.reactivation,
         "contacts_per_year", fmt.number(s.reactivation.contacts_per_year, 0)),
        ("automation", "levers.automation.campaigns_per_year", s.automation,
         "campaigns_per_year", fmt.number(s.automation.campaigns_per_year, 0)),
        ("automation", "levers.automation.contact_cost", s.automation, "contact_cost",
         fmt.money(s.automation.contact_cost, 2)),
        ("automation", "levers.automation.control_share", s.automation, "control_share",
         fmt.pct(s.automation.control_share, 0)),
        ("automation", "automation.offer_defaults.redemption_rate", None, "redemption_rate",
         " / ".join(fmt.pct(r, 0) for r in sorted(rates))),
        ("automation", "levers.consent", s, "consent",
         fmt.pct(s.consent, 0) if s.consent_attribute is None else s.consent_attribute),
    ]
    if model.included("acquisition"):
        acq = s.acquisition
        rows.append(("acquisition", "levers.acquisition.growth", acq, "growth",
                     fmt.pct(acq.growth, 0) if acq.new_customers is None
                     else fmt.number(acq.new_customers, 0)))
        rows.append(("acquisition", "levers.acquisition.cost_per_acquisition", acq,
                     "cost_per_acquisition",
                     fmt.money(acq.cost_per_acquisition if acq.cost_per_acquisition is not None
                               else model.new_customers.get("margin", 0.0), 2)))
    out = []
    for lever, key, section, name, value in rows:
        if section is None:
            given = rates != {default_rate}
        else:
            given = name in section.model_fields_set or (
                name == "consent" and s.consent_attribute is not None)
        source = "client.yaml" if given else "default"
        out.append({"lever": lever, "lever_name": t(f"lever_{lever}", lang),
                    "key": f"crm_project.{key}",
                    "assumption": t(f"lever_assumption_{name}", lang), "value": value,
                    "source": source,
                    "source_name": t("plan_source_client" if given else "plan_source_default",
                                     lang)})
    return pd.DataFrame(out)
