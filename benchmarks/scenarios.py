"""Time scenario evaluation on 100,000 customers against a naive per-customer recomputation.

Run it by hand::

    .venv/bin/python benchmarks/scenarios.py [--customers 100000] [--evaluations 1000]

The dashboard re-evaluates a scenario on every slider move, so one evaluation must take at most
50 ms. The script draws a customer base with six segments and an interaction log (about three
contacts per customer a year over three years; vectorised numpy, not crmkit.demo.synthetic, so the
data are ready in a second), then times

- building: :func:`crmkit.relationships.cost_to_serve.compute` plus :meth:`ScenarioModel.from_cost`;
- ``--evaluations`` evaluations of a "slider" scenario (move a share of the hibernating
  segment's personal assistance to automated services with a retention change, at a new cost
  rate; the values change every call), each including its per-segment DataFrame;
- the same scenario recomputed the naive way, customer by customer in pandas, from the costed
  lines (``--naive`` times), to give the ratio; the two answers are compared.

Figures only: this script asserts nothing.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import pandas as pd

from crmkit.relationships import cost_to_serve
from crmkit.relationships.cost_benefit import lifetime_factor
from crmkit.relationships.inventory import TYPES
from crmkit.relationships.scenarios import CostRate, Move, ScenarioModel

SEGMENTS = ("champions", "loyal", "potential", "new", "at_risk", "hibernating")
#: Share of each segment's contacts by relationship type (catalogue order).
MIX = np.array([
    [0.30, 0.35, 0.15, 0.10, 0.05, 0.05],
    [0.35, 0.10, 0.25, 0.20, 0.05, 0.05],
    [0.30, 0.05, 0.30, 0.30, 0.03, 0.02],
    [0.25, 0.00, 0.35, 0.35, 0.05, 0.00],
    [0.45, 0.05, 0.25, 0.20, 0.05, 0.00],
    [0.50, 0.00, 0.25, 0.25, 0.00, 0.00],
])
MINUTES = np.array([8.0, 25.0, 4.0, 1.0, 12.0, 35.0])
CONFIG = {"cost_drivers": {"personal_assistance": {"channel_cost_per_minute": {"store": 1.1}}},
          "current": {"hibernating": ["automated_services"]}}
DISCOUNT, HORIZON_YEARS = 0.10, 3.0


def simulate(n: int, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A per-customer table and an interaction log over three years."""
    segment = rng.choice(len(SEGMENTS), n, p=[0.10, 0.15, 0.20, 0.15, 0.15, 0.25])
    scale = np.array([6.0, 3.0, 1.5, 1.0, 0.8, 0.3])[segment]
    customers = pd.DataFrame({
        "customer_id": pd.array([f"C{i:07d}" for i in range(n)], dtype="str"),
        "segment": pd.array(np.array(SEGMENTS, dtype=object)[segment], dtype="str"),
        "revenue_window": rng.gamma(2.0, 60.0, n) * scale,
        "recency_days": rng.uniform(1, 700, n), "tenure_days": rng.uniform(200, 2000, n)})
    customers["margin_window"] = customers["revenue_window"] * 0.4
    customers["clv"] = customers["margin_window"] * rng.uniform(1.5, 3.0, n)
    contacts = rng.poisson(3 * 3 * np.array([2.0, 1.5, 1.0, 1.0, 0.8, 0.4])[segment])
    owner = np.repeat(np.arange(n), contacts)
    cum = np.cumsum(MIX, axis=1)
    kind = (rng.random(len(owner))[:, None] >= cum[segment[owner]]).sum(axis=1).clip(0, 5)
    channel = np.where(kind <= 1, rng.choice(["phone", "store", "email"], len(owner)),
                       rng.choice(["web", "app"], len(owner)))
    interactions = pd.DataFrame({
        "customer_id": customers["customer_id"].to_numpy()[owner],
        "date": pd.Timestamp("2023-01-01") + pd.to_timedelta(
            rng.integers(0, 3 * 365, len(owner)), unit="D"),
        "channel": pd.array(channel, dtype="str"),
        "relationship_type": pd.array(np.array(TYPES, dtype=object)[kind], dtype="str"),
        "minutes": np.maximum(np.round(MINUTES[kind] * rng.lognormal(0, 0.5, len(owner)) * 2)
                              / 2, 0.5)})
    interactions.loc[[0, len(interactions) - 1], "date"] = [pd.Timestamp("2023-01-01"),
                                                            pd.Timestamp("2025-12-31")]
    return customers, interactions


def scenario(i: int) -> list:
    """The i-th slider position: a share, a retention change and a cost rate."""
    share = (i % 100) / 100
    return [CostRate(type="automated_services", cost_per_minute=0.02 + (i % 7) * 0.001),
            Move(segment="hibernating", from_type="personal_assistance",
                 to_type="automated_services", share=share,
                 retention_change=-0.05 * share)]


def naive(customers: pd.DataFrame, cost: cost_to_serve.CostToServe, retention: pd.Series,
          changes: list) -> pd.DataFrame:
    """The same scenario, recomputed customer by customer in pandas."""
    rate, move = changes
    drivers = cost.drivers
    lines = cost.lines[["customer_id", "segment", "relationship_type", "minutes_year",
                        "interactions_year", "variable_cost"]].copy()
    ratio = rate.cost_per_minute / drivers.loc[rate.type, "cost_per_minute"]
    hit = lines["relationship_type"] == rate.type
    lines.loc[hit, "variable_cost"] *= ratio
    moved = (lines["segment"] == move.segment) & (lines["relationship_type"] == move.from_type)
    new = lines[moved].copy()
    new["relationship_type"] = move.to_type
    new["interactions_year"] *= move.share
    new["minutes_year"] = new["interactions_year"] * drivers.loc[move.to_type,
                                                                 "minutes_per_interaction"]
    new["variable_cost"] = new["minutes_year"] * (rate.cost_per_minute if rate.type ==
                                                  move.to_type else
                                                  drivers.loc[move.to_type, "cost_per_minute"])
    lines.loc[moved, ["minutes_year", "interactions_year", "variable_cost"]] *= 1 - move.share
    lines = pd.concat([lines, new], ignore_index=True)
    type_minutes = lines.groupby("relationship_type")["minutes_year"].transform("sum")
    fixed = lines["relationship_type"].map(drivers["fixed_yearly_cost"])
    lines["fixed_cost"] = np.where(type_minutes > 0, fixed * lines["minutes_year"]
                                   / type_minutes.where(type_minutes > 0, 1), 0.0)
    lines["cost"] = lines["variable_cost"] + lines["fixed_cost"]
    per_customer = lines.groupby("customer_id")["cost"].sum()
    table = customers[["customer_id", "segment", "margin_window", "clv"]].copy()
    table["cost"] = table["customer_id"].map(per_customer).fillna(0.0)
    kept = retention.copy()
    kept[move.segment] = min(kept[move.segment] + move.share * move.retention_change, 0.99)
    before = lifetime_factor(table["segment"].map(retention), DISCOUNT, HORIZON_YEARS)
    after = lifetime_factor(table["segment"].map(kept), DISCOUNT, HORIZON_YEARS)
    table["value"] = table["clv"] * after / before
    table["profit"] = table["margin_window"] - table["cost"]
    return table.groupby("segment")[["cost", "value", "profit"]].sum()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--evaluations", type=int, default=1000)
    parser.add_argument("--naive", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    customers, interactions = simulate(args.customers, rng)
    print(f"python {platform.python_version()}, pandas {pd.__version__}, numpy {np.__version__}"
          f" on {platform.machine()}")
    print(f"{len(customers):,} customers, {len(interactions):,} interactions, "
          f"{len(SEGMENTS)} segments × {len(TYPES)} types")

    start = time.perf_counter()
    cost = cost_to_serve.compute(customers, interactions, CONFIG)
    costed = time.perf_counter()
    model = ScenarioModel.from_cost(customers, cost, CONFIG, window_months=12,
                                    discount_rate=DISCOUNT, horizon_months=36)
    built = time.perf_counter()
    print(f"build: cost to serve {1000 * (costed - start):,.0f} ms + model "
          f"{1000 * (built - costed):,.1f} ms = {1000 * (built - start):,.0f} ms")

    times = np.empty(args.evaluations)
    for i in range(args.evaluations):
        changes = scenario(i)  # built outside the timing: the dashboard holds the widgets' values
        t0 = time.perf_counter()
        _ = model.evaluate(changes).frame
        times[i] = time.perf_counter() - t0
    mean, p95 = 1000 * times.mean(), 1000 * np.percentile(times, 95)
    print(f"model: {args.evaluations} evaluations, mean {mean:.3f} ms, p95 {p95:.3f} ms, "
          f"max {1000 * times.max():.3f} ms per evaluation")

    retention = pd.Series(model.retention, index=model.segments)
    naive_times = np.empty(args.naive)
    worst = 0.0
    for i in range(args.naive):
        changes = scenario(37 + i)
        t0 = time.perf_counter()
        slow = naive(customers, cost, retention, changes)
        naive_times[i] = time.perf_counter() - t0
        fast = model.evaluate(changes).frame.set_index("segment")
        for metric in ("cost", "value", "profit"):
            worst = max(worst, float((slow[metric].reindex(fast.index) - fast[metric]).abs()
                                     .max() / max(fast[metric].abs().max(), 1.0)))
    naive_mean = 1000 * naive_times.mean()
    print(f"naive per-customer pandas: {args.naive} evaluations, mean {naive_mean:.1f} ms")
    print(f"ratio naive / model: {naive_mean / mean:,.0f}× faster; "
          f"largest relative difference between the two answers: {worst:.1e}")
    print(f"budget 50 ms per evaluation: {'met' if p95 <= 50 else 'NOT met'} (p95 {p95:.3f} ms)")


if __name__ == "__main__":
    main()
