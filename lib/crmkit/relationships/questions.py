"""The four questions of every segment: what it expects, what it has, how costly, how it fits.

:func:`gap` sets the relationship each segment expects (:func:`crmkit.relationships.inventory.
expectations`) against the one it has and pays for (:mod:`crmkit.relationships.cost_to_serve`);
:func:`four_questions` answers the four questions in one table a consultant can check by hand.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from crmkit.relationships.cost_to_serve import CostToServe
from crmkit.relationships.inventory import (
    TYPES,
    Expectations,
    RelationshipsConfig,
    _window_months,
    relationships_config,
    segment_order,
    type_name,
)

__all__ = ["Gap", "four_questions", "gap", "questions_summary"]


# --------------------------------------------------------------------------------------------
# Gap and the four questions
# --------------------------------------------------------------------------------------------

@dataclass
class Gap:
    """Expected against current relationship, segments × types.

    Attributes
    ----------
    current : DataFrame
        Each type's share of the segment's minutes today (logged, plus the catalogue's drivers
        for declared types the log does not show: see
        :func:`crmkit.relationships.cost_to_serve.compute`).
    expected : DataFrame
        Each type's share of the segment's respondents (or 1.0 on the consultant's type; NaN
        when unknown).
    gap : DataFrame
        ``current − expected``: positive where the segment gets more of a type than it asks for,
        negative where it asks for more than it gets.
    """

    current: pd.DataFrame
    expected: pd.DataFrame
    gap: pd.DataFrame = field(init=False)

    def __post_init__(self):
        self.gap = self.current - self.expected

    def as_dict(self, expected: Expectations, lang: str) -> dict:
        """The largest gaps for ``results.json`` and the prose.

        ``over``: the segment × type that gets most more than its customers ask for; ``under``:
        the one that asks for most more than it gets (each None when no gap goes that way).
        Points are shares (0.42 = 42 points of the segment's minutes or respondents). Each
        names the segment, the type, where the expectation comes from (``source``: survey or
        consultant) and the type the segment expects (``expected_type``).

        Parameters
        ----------
        expected : Expectations
            The expectations the gap was computed from (for names and sources).
        lang : {"en", "es"}
            Language of the type names.
        """
        info = expected.summary.set_index("segment")
        values = self.gap.stack()
        values = values[values.notna()]
        out: dict[str, Any] = {"segments_known": int(self.expected.notna().all(axis=1).sum())}
        for label, pick in (("over", values[values > 0]), ("under", values[values < 0])):
            if pick.empty:
                out[label] = None
                continue
            segment, key = pick.abs().idxmax()
            wanted = info.loc[segment, "expected"]
            out[label] = {"segment": segment, "segment_name": info.loc[segment, "segment_name"],
                          "relationship_type": key, "type_name": type_name(key, lang),
                          "points": float(pick[(segment, key)]),
                          "current": float(self.current.loc[segment, key]),
                          "expected": float(self.expected.loc[segment, key]),
                          "source": info.loc[segment, "source"], "expected_type": wanted,
                          "expected_type_name": type_name(wanted, lang) if wanted else None}
        return out


def gap(cost: CostToServe, expected: Expectations) -> Gap:
    """The gap matrix between the relationship each segment has and the one it expects.

    Parameters
    ----------
    cost : CostToServe
        From :func:`crmkit.relationships.cost_to_serve.compute` (its minutes per segment and type).
    expected : Expectations
        From :func:`expectations`.
    """
    order = list(expected.shares.index)
    minutes = (cost.segment_types.pivot_table(index="segment", columns="relationship_type",
                                              values="minutes_year", aggfunc="sum")
               .reindex(index=order, columns=list(TYPES)).fillna(0.0))
    totals = minutes.sum(axis=1)
    current = minutes.div(totals.where(totals != 0), axis=0).fillna(0.0)
    current.index.name, current.columns.name = "segment", "relationship_type"
    return Gap(current=current, expected=expected.shares.copy())


def four_questions(customers: pd.DataFrame, cost: CostToServe, expected: Expectations,
                   config: RelationshipsConfig | Any | Mapping | None = None, *,
                   window_months: int | None = None) -> pd.DataFrame:
    """The four questions of every segment, answered in one table.

    1. What relationship does it expect? (``expects``, ``expects_share``, ``expects_source``)
    2. Which does it have? (``has``: the type with most minutes; ``has_types``: every type with
       minutes, most first; ``has_share``: the main type's share of minutes;
       ``expects_minutes_share``: the expected type's share of minutes; ``match``: whether the
       expected type is the main one — None when the expectation is unknown)
    3. How costly is it? (``cost_per_customer``: yearly cost to serve per customer)
    4. How does it fit the business model? (``margin_per_customer``: yearly gross margin per
       customer, ``cost_share_of_margin``: cost to serve / margin, NaN when the margin is not
       positive; ``fit``: the consultant's note)

    Parameters
    ----------
    customers : DataFrame
        The per-customer table (``margin_window`` is turned into a yearly margin:
        × 12 / ``window_months``).
    cost : CostToServe
    expected : Expectations
    config : ClientConfig or RelationshipsConfig, optional
        Supplies the ``fit`` notes and, for a ClientConfig, ``assumptions.window_months``.
    window_months : int, optional
        Months ``margin_window`` covers (default the config's, else 12).
    """
    rel = relationships_config(config)
    months = window_months or _window_months(config)
    order = segment_order(customers)
    margin = (customers.assign(segment=customers["segment"].astype(str))
              .groupby("segment")["margin_window"].sum() * 12.0 / months)
    segs = cost.segments.set_index("segment")
    exp = expected.summary.set_index("segment")
    st = cost.segment_types
    rows = []
    for segment in order:
        mine = st[st["segment"] == segment].sort_values("minutes_year", ascending=False)
        mine = mine[mine["minutes_year"] > 0]
        has_types = list(mine["relationship_type"])
        total = mine["minutes_year"].sum()
        n = int(segs.loc[segment, "customers"])
        seg_cost = float(segs.loc[segment, "cost_to_serve"])
        seg_margin = float(margin.get(segment, 0.0))
        expects = exp.loc[segment, "expected"]
        rows.append({
            "segment": segment, "segment_name": exp.loc[segment, "segment_name"],
            "customers": n,
            "expects": expects, "expects_share": exp.loc[segment, "expected_share"],
            "expects_source": exp.loc[segment, "source"],
            "has": has_types[0] if has_types else None, "has_types": has_types,
            "has_share": float(mine["minutes_year"].iloc[0] / total) if has_types else math.nan,
            "expects_minutes_share": (float(mine.loc[mine["relationship_type"] == expects,
                                                     "minutes_year"].sum() / total)
                                      if expects is not None and total > 0 else math.nan),
            "match": (expects == has_types[0]) if expects is not None and has_types else (
                False if expects is not None else None),
            "cost_per_customer": seg_cost / n if n else math.nan,
            "margin_per_customer": seg_margin / n if n else math.nan,
            "cost_share_of_margin": seg_cost / seg_margin if seg_margin > 0 else math.nan,
            "fit": rel.fit.get(segment, ""),
        })
    return pd.DataFrame(rows)


def questions_summary(frame: pd.DataFrame, lang: str) -> dict:
    """Key figures of :func:`four_questions` for ``results.json`` and the prose.

    ``known``: segments whose expectation is known; ``matches``: those whose main type today is
    the one they expect; ``mismatched``: the names of the others, in table order.
    """
    known = frame[frame["expects"].notna()]
    matched = known["match"].astype(bool)
    segments = [{"segment": row.segment, "segment_name": row.segment_name,
                 "customers": row.customers, "expects": row.expects,
                 "expects_name": type_name(row.expects, lang) if row.expects else None,
                 "expects_source": row.expects_source, "has": row.has,
                 "has_name": type_name(row.has, lang) if row.has else None,
                 "match": row.match, "cost_per_customer": row.cost_per_customer,
                 "margin_per_customer": row.margin_per_customer,
                 "cost_share_of_margin": row.cost_share_of_margin, "fit": row.fit}
                for row in frame.itertuples(index=False)]
    return {"segments_count": len(frame), "known": len(known), "matches": int(matched.sum()),
            "mismatched": list(known.loc[~matched, "segment_name"]), "segments": segments}
