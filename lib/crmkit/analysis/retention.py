"""One yearly retention per segment, defined once from the chosen customer-base model.

A report that says "93 % still active", "54 % retained" and "45 % yearly retention" about the same
customers loses the reader. So retention has one definition, used by chapters 2, 4 and 5 and the
dashboard:

- **non-contractual** clients: the expected share of the segment's customers alive now who are
  still alive in twelve months, ``Σ P(alive now)·P(alive in 12 months | alive now) / Σ P(alive
  now)``, from the model chosen on the holdout (:mod:`crmkit.analysis.model_choice`);
- **contractual** clients: the shifted-beta-geometric retention of the segment's next renewal
  period, expressed per year.

The per-customer table (``tables/customers.parquet``) carries both factors: ``probability_alive``
and ``retention`` (the customer's probability of still being a customer twelve months on, given
alive now). The empirical year-on-year migration between segments
(:func:`migration_matrix`) is shown beside it as a check on the model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["yearly_retention", "migration_matrix"]


def yearly_retention(customers: pd.DataFrame, by: str = "segment") -> pd.Series:
    """Yearly retention per group of the per-customer table, weighted by P(alive now).

    Parameters
    ----------
    customers : DataFrame
        Columns ``probability_alive``, ``retention`` and ``by``.
    by : str
        The grouping column.

    Returns
    -------
    Series
        Indexed by group (first-appearance order), values in [0, 1]; NaN for a group whose
        customers are all certainly gone.
    """
    alive = pd.to_numeric(customers["probability_alive"], errors="coerce").fillna(0.0)
    kept = alive * pd.to_numeric(customers["retention"], errors="coerce").fillna(0.0)
    groups = customers[by].astype(str)
    order = list(pd.unique(groups))  # first-appearance order, in C rather than a dict
    weight = alive.groupby(groups, sort=False).sum()
    result = kept.groupby(groups, sort=False).sum() / weight.where(weight > 0)
    return result.reindex(order).clip(0.0, 1.0).rename("retention")


def migration_matrix(before: pd.Series, after: pd.Series) -> pd.DataFrame:
    """Where last year's segment members are now: row shares of a before × after table.

    Parameters
    ----------
    before, after : Series
        Segment key per customer (index ``customer_id``) a year ago and now; customers absent
        from ``before`` (acquired since) are left out.

    Returns
    -------
    DataFrame
        Rows: segment a year ago; columns: segment now; each row adds up to 1. A ``customers``
        column gives the row's size.
    """
    now = after.reindex(before.index)
    table = pd.crosstab(before.astype(str), now.astype(str))
    sizes = table.sum(axis=1)
    shares = table.div(sizes.where(sizes > 0), axis=0).fillna(0.0)
    shares["customers"] = sizes.astype(np.int64)
    return shares
