"""The hand-computable case shared by the relationship, cost-to-serve, cost-benefit and scenario
tests.

Two segments, four customers. Rates: personal assistance 1.0/min (2.0 in store), self-service
0.1/min with 100 a year fixed, automated services 0.5/min with 10 a year fixed. The basic segment
is declared to receive automated services, which the log does not show.

Cost to serve, by hand (a year, the log covering one year):

- variable: A 10 × 1.0 + 20 × 2.0 = 50; B 5 × 0.1 = 0.5; C 10 × 1.0 logged + 12 × 1 min × 0.5
  = 6 imputed (automated services at the catalogue's drivers); D 6 imputed. Gold 50.5 (all
  logged), basic 22 (12 imputed: ``imputed_share`` 12 / 22);
- fixed, at the platform level: self-service 100 and automated services 10 (personal
  assistance's is 0); shown per active customer of each type: B 100, C 5, D 5.

``customers_table(with_model=True)`` adds what workbook 02 writes for the win-back rule and the
model's retention: ``margin`` (the whole history's), ``probability_alive`` and ``retention``
(given alive). Gold is then a valuable segment that is lapsing: A and B each brought 365.25 of
margin a year (900 over 900 days, 800 over 800), against the base's mean past yearly
margin (365.25 + 365.25 + 30 + 10) / 4 = 192.625, an index of 1.896; both last bought over 180
days ago (recency 400 and 300). Basic: C 30 over 200 days counts as one year, 30; D 10 (no tenure:
one year). Model retention: gold (0.3 × 0.5 + 0.2 × 0.4) / 0.5 = 0.46, basic (0.9 × 0.8 + 0.6 ×
0.6) / 1.5 = 0.72.
"""

import numpy as np
import pandas as pd

CONFIG = {
    "cost_drivers": {
        "personal_assistance": {"cost_per_minute": 1.0, "fixed_yearly_cost": 0,
                                "channel_cost_per_minute": {"store": 2.0}},
        "self_service": {"cost_per_minute": 0.1, "fixed_yearly_cost": 100},
        "automated_services": {"cost_per_minute": 0.5, "fixed_yearly_cost": 10},
    },
    "current": {"basic": ["automated_services"]},
}


def customers_table(*, with_activity: bool = False, with_model: bool = False) -> pd.DataFrame:
    """The per-customer table; ``with_activity`` adds recency and tenure (for retention),
    ``with_model`` the model's columns and a lapsing gold segment (module docstring)."""
    table = pd.DataFrame({
        "customer_id": ["A", "B", "C", "D"],
        "segment": ["gold", "gold", "basic", "basic"],
        "segment_name": ["Gold", "Gold", "Basic", "Basic"],
        "revenue_window": [400.0, 200.0, 50.0, 0.0],
        "margin_window": [200.0, 100.0, 20.0, 0.0],
        "clv": [500.0, 250.0, 30.0, 0.0],
    })
    if with_activity:
        table["recency_days"] = [30.0, 400.0, 100.0, np.nan]
        table["tenure_days"] = [900.0, 800.0, 200.0, np.nan]
    if with_model:
        table["recency_days"] = [400.0, 300.0, 100.0, 20.0]
        table["tenure_days"] = [900.0, 800.0, 200.0, np.nan]
        table["margin"] = [900.0, 800.0, 30.0, 10.0]
        table["probability_alive"] = [0.3, 0.2, 0.9, 0.6]
        table["retention"] = [0.5, 0.4, 0.8, 0.6]
    return table


def interactions_log() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": ["A", "A", "B", "C"],
        "date": pd.to_datetime(["2025-01-01", "2025-03-01", "2025-06-01", "2025-12-31"]),
        "channel": ["phone", "store", "web", "phone"],
        "relationship_type": ["personal_assistance", "personal_assistance", "self_service",
                              "personal_assistance"],
        "minutes": [10.0, 20.0, 5.0, 10.0],
    })
