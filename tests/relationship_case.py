"""The hand-computable case shared by the relationship, cost-to-serve, cost-benefit and scenario
tests.

Two segments, four customers. Rates: personal assistance 1.0/min (2.0 in store), self-service
0.1/min with 100 a year fixed, automated services 0.5/min with 10 a year fixed. The basic segment
is declared to receive automated services, which the log does not show.
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


def customers_table(*, with_activity: bool = False) -> pd.DataFrame:
    """The per-customer table; ``with_activity`` adds recency and tenure (for retention)."""
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
