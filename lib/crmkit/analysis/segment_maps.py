"""Placing customers in the segments of a map (the maps themselves:
:mod:`crmkit.settings.segment_maps`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from crmkit.analysis.rfm import rfm_scores
from crmkit.settings.segment_maps import *  # noqa: F403  (the maps' public names, one import away)
from crmkit.settings.segment_maps import (  # noqa: F401
    OTHER,
    SCORE_COLUMNS,
    SegmentMap,
    _lower_limit,
    bundled_maps,
    describe,
    label,
    load_map,
    names,
    rule_text,
)

# ---- assignment ------------------------------------------------------------------------------

@dataclass
class Assignment:
    """Customers placed in the segments of a map.

    Attributes
    ----------
    segments : Series
        Segment key per customer (index ``customer_id``), categorical in map order with
        ``other`` last.
    map : SegmentMap
    other_count, other_share : int, float
        Customers no rule matched (scores outside the map's scale, missing values), and their
        share; a valid map on :func:`crmkit.analysis.rfm.rfm_scores` leaves none.
    details : dict
        What the assignment depended on, e.g. the managerial value threshold in currency.
    """

    segments: pd.Series
    map: SegmentMap
    other_count: int
    other_share: float
    details: dict[str, Any] = field(default_factory=dict)

    def counts(self) -> pd.Series:
        """Customers per segment, in map order (``other`` only when not empty)."""
        counts = self.segments.value_counts(sort=False)
        return counts[(counts.index != OTHER) | (counts > 0)]

    def as_dict(self) -> dict[str, Any]:
        return {"map": self.map.key, "counts": {str(k): int(v) for k, v in
                                                 self.counts().items()},
                "other_count": self.other_count, "other_share": self.other_share,
                **self.details}


def assign(scores_or_rfm: pd.DataFrame, segment_map: SegmentMap | str) -> Assignment:
    """Place every customer in the segment whose rule they match.

    Parameters
    ----------
    scores_or_rfm : DataFrame
        For a ``scores`` map: the scores of :func:`crmkit.analysis.rfm.rfm_scores` (``r_score``,
        ``f_score`` ...), or the RFM table, which is then scored on the map's scale. For a
        ``managerial`` map: the table of :func:`crmkit.analysis.rfm.rfm_table` (``recency``,
        ``tenure`` and the value measure).
    segment_map : SegmentMap or str
        A loaded map, or the name of a bundled one.

    Returns
    -------
    Assignment
        Customers matched by no rule are put in ``other`` and counted.
    """
    if isinstance(segment_map, str):
        segment_map = load_map(segment_map)
    data = scores_or_rfm
    details: dict[str, Any] = {}
    n = len(data)
    if segment_map.kind == "scores":
        columns = [SCORE_COLUMNS[d.name] for d in segment_map.dimensions]
        if not set(columns) <= set(data.columns):
            if {"recency", "frequency", "monetary"} <= set(data.columns):
                data = rfm_scores(data, bins=segment_map.scale)
            else:
                raise ValueError(f"map '{segment_map.key}' needs the columns "
                                 f"{', '.join(columns)} (crmkit.analysis.rfm.rfm_scores) "
                                 "or an RFM table")
        positions = [data[c].to_numpy(dtype=np.float64, na_value=np.nan) - 1 for c in columns]
    else:
        value = segment_map.value or {}
        measure = value.get("measure", "avg_order")
        needed = ["recency", "tenure", measure]
        missing = [c for c in needed if c not in data.columns]
        if missing:
            raise ValueError(f"map '{segment_map.key}' needs the RFM table of "
                             f"crmkit.analysis.rfm.rfm_table; missing {', '.join(missing)}")
        recency = data["recency"].to_numpy(dtype=np.float64, na_value=np.nan)
        tenure = data["tenure"].to_numpy(dtype=np.float64, na_value=np.nan)
        amount = data[measure].to_numpy(dtype=np.float64, na_value=np.nan)
        limits = np.array([m for _, m in segment_map.bands[:-1]], dtype=np.float64)
        band = np.searchsorted(limits, recency, side="left").astype(np.float64)
        if "amount" in value:
            threshold = float(value["amount"])
        else:
            known = amount[~np.isnan(amount)]
            threshold = float(np.quantile(known, value["quantile"])) if len(known) else np.nan
        new = np.where(tenure <= segment_map.new_days, 0.0, 1.0)
        high = np.where(amount >= threshold, 0.0, 1.0)
        band[np.isnan(recency)] = np.nan
        new[np.isnan(tenure)] = np.nan
        high[np.isnan(amount)] = np.nan
        positions = [band, new, high]
        details = {"value_measure": measure, "value_threshold": threshold}

    shape = segment_map.lookup.shape
    valid = np.ones(n, dtype=bool)
    for pos, size in zip(positions, shape, strict=True):
        valid &= ~np.isnan(pos) & (pos >= 0) & (pos < size) & (pos == np.floor(pos))
    index = np.full(n, len(segment_map.segments), dtype=np.int64)  # = other
    if valid.any():
        cells = tuple(pos[valid].astype(np.int64) for pos in positions)
        index[valid] = segment_map.lookup[cells]
    categories = [*segment_map.keys, OTHER]
    labels = pd.Categorical.from_codes(index, categories=categories)
    segments = pd.Series(labels, index=data.index, name="segment")
    other = int((index == len(segment_map.segments)).sum())
    return Assignment(segments=segments, map=segment_map, other_count=other,
                      other_share=other / n if n else 0.0, details=details)
