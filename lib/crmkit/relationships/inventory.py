"""Customer-relationship types: the catalogue, the client's settings, and the inventory per segment.

The CRM texts ask four questions of every segment: what relationship does it expect, which does it
have, how costly is it, and how does it fit the business model. The relationship types are
Osterwalder's: personal assistance, dedicated personal assistance, self-service, automated
services, communities and co-creation. This module holds

- the catalogue of types (``data/relationship_types.yaml``: names and descriptions in both
  languages, typical channels, default time-driven cost drivers, the next cheaper type down the
  service ladder) and :func:`drivers`, the drivers in force once ``client.yaml`` overrides them;
- the ``relationships:`` section of ``client.yaml`` (:class:`RelationshipsConfig`), validated so
  that a misspelt type key is named in the error with the valid ones listed;
- the inventory: which types each segment receives today, declared by the consultant and seen in
  the interaction log (:func:`inventory`, :func:`usage`); which it expects, from the survey or
  the consultant (:func:`expectations`); the gap between both (:func:`gap`); and the four
  questions answered in one table (:func:`four_questions`).

How costly each relationship is, is computed by :mod:`crmkit.relationships.cost_to_serve`; what to
do about it
by :mod:`crmkit.relationships.cost_benefit`. The rules here are counts and shares a consultant can
check by
hand, on purpose: the client must be able to follow every figure back to its data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:  # imported for annotations only: config imports this module
    from crmkit.settings.client import ClientConfig

__all__ = [
    "ASSUMED_CHANNEL",
    "CATALOGUE_FILE",
    "DRIVER_FIELDS",
    "TYPES",
    "CostDrivers",
    "Expectations",
    "Inventory",
    "RelationshipType",
    "RelationshipsConfig",
    "VerdictThresholds",
    "catalogue",
    "channel_rates",
    "check_segments",
    "drivers",
    "expectations",
    "interaction_window_years",
    "map_segments",
    "inventory",
    "relationships_config",
    "segment_names",
    "segment_order",
    "type_name",
    "type_names",
    "usage",
]

from crmkit.core.catalogue import (  # noqa: F401  (the inventory's public names)
    ASSUMED_CHANNEL,
    CATALOGUE_FILE,
    DRIVER_FIELDS,
    TYPES,
    RelationshipType,
    catalogue,
    type_name,
    type_names,
)
from crmkit.core.problems import UserError
from crmkit.settings.relationships import (  # noqa: F401
    CostDrivers,
    RelationshipsConfig,
    VerdictThresholds,
    relationships_config,
)


def check_segments(config: RelationshipsConfig, segments, known=()) -> None:
    """Raise ValueError when the section names a segment the per-customer table does not have.

    A segment key misspelt in ``client.yaml`` would otherwise silently fall back to defaults.
    Keys in ``known`` (the segments of the client's segment map, :func:`map_segments`) are
    accepted even when no customer falls in them this time: a segment can be empty in one run.
    """
    present = set(segments)
    unknown = sorted(config.segments() - present - set(known))
    if unknown:
        raise UserError(
            "client.yaml relationships names segment "
            + ", ".join(repr(u) for u in unknown)
            + " that the customer table does not have; its segments are "
            + ", ".join(sorted(map(str, present))))


def map_segments(config: Any) -> set[str]:
    """The segment keys of the client's segment map, when it is a bundled one (else empty).

    Parameters
    ----------
    config : ClientConfig or anything else
        Only a ClientConfig segmented by a bundled map (``rfm_ten``, ``managerial``) gives keys:
        a workspace's own map is read relative to the workspace, which is not known here.
    """
    settings = getattr(config, "segmentation", None)
    if settings is None or getattr(settings, "method", None) != "map":
        return set()
    from crmkit.settings.segment_maps import bundled_maps, load_map

    if settings.map not in bundled_maps():
        return set()
    return {segment.key for segment in load_map(settings.map).segments}


def drivers(config: ClientConfig | RelationshipsConfig | Mapping | None = None) -> pd.DataFrame:
    """The cost drivers in force: the catalogue's defaults with the client's overrides.

    Returns
    -------
    DataFrame
        Indexed by ``relationship_type`` (catalogue order) with ``minutes_per_interaction``,
        ``interactions_per_year``, ``cost_per_minute``, ``fixed_yearly_cost``,
        ``minutes_per_customer`` (minutes × interactions, a year), ``variable_cost_per_customer``
        (a served customer's yearly variable cost at these drivers), ``overridden`` (the fields
        client.yaml set, a comma-separated string, empty when all are the catalogue's) and
        ``step_down`` (the next type down the service ladder).
    """
    rel = relationships_config(config)
    rows = []
    for key, entry in catalogue().items():
        values = dict(entry.drivers)
        override = rel.cost_drivers.get(key)
        changed = []
        if override is not None:
            for name in DRIVER_FIELDS:
                value = getattr(override, name)
                if value is not None:
                    values[name] = float(value)
                    changed.append(name)
            if override.channel_cost_per_minute:
                changed.append("channel_cost_per_minute")
        rows.append({"relationship_type": key, **values, "overridden": ", ".join(changed),
                     "step_down": entry.step_down})
    frame = pd.DataFrame(rows).set_index("relationship_type")
    # object dtype keeps None for the bottom of the ladder (a string column would make it NaN)
    frame["step_down"] = pd.Series([r["step_down"] for r in rows], index=frame.index,
                                   dtype=object)
    frame["minutes_per_customer"] = (frame["minutes_per_interaction"]
                                     * frame["interactions_per_year"])
    frame["variable_cost_per_customer"] = frame["minutes_per_customer"] * frame["cost_per_minute"]
    order = [*DRIVER_FIELDS, "minutes_per_customer", "variable_cost_per_customer", "overridden",
             "step_down"]
    return frame[order]


def channel_rates(config: ClientConfig | RelationshipsConfig | Mapping | None = None
                  ) -> dict[tuple[str, str], float]:
    """Channel-specific cost rates, ``(type, channel) -> cost per minute``, from client.yaml."""
    rel = relationships_config(config)
    return {(key, channel): float(rate) for key, override in rel.cost_drivers.items()
            for channel, rate in override.channel_cost_per_minute.items()}


# --------------------------------------------------------------------------------------------
# Segments and the interaction log
# --------------------------------------------------------------------------------------------

def segment_order(customers: pd.DataFrame) -> list[str]:
    """Segment keys in display order: the categories' order when ``segment`` is categorical,
    else the order of first appearance."""
    column = customers["segment"]
    if isinstance(column.dtype, pd.CategoricalDtype):
        # the categories present, from the integer codes: no Python string per customer
        codes = column.cat.codes.to_numpy()
        present = np.unique(codes[codes >= 0])
        return [str(column.cat.categories[code]) for code in present]
    return [str(s) for s in pd.unique(column.dropna().astype(str))]


def segment_names(customers: pd.DataFrame) -> dict[str, str]:
    """``segment -> segment_name`` (the key itself when the table has no ``segment_name``)."""
    order = segment_order(customers)
    if "segment_name" not in customers:
        return {s: s for s in order}
    # each segment's name on its first row, found from the segments' codes
    codes, keys = pd.factorize(customers["segment"].astype(str))
    found, first = np.unique(codes, return_index=True)
    first = first[found >= 0]  # a missing segment (code -1) has no name to give
    names = customers["segment_name"].iloc[first]
    named = dict(zip(keys[codes[first]], names, strict=True))
    return {s: str(named.get(s, s)) for s in order}


def interaction_window_years(interactions: pd.DataFrame | None) -> float | None:
    """Length of the interaction log in years (first to last date, both days included).

    None without interactions. Yearly figures are the log's totals divided by this.
    """
    if interactions is None or len(interactions) == 0:
        return None
    dates = pd.to_datetime(interactions["date"])
    days = (dates.max() - dates.min()).days + 1
    return days / 365.25


def _logged(customers: pd.DataFrame, interactions: pd.DataFrame | None
            ) -> tuple[pd.DataFrame, int]:
    """The interaction log with each row's segment; rows of unknown customers are dropped.

    Returns the frame (``customer_id, segment, relationship_type, channel, minutes``) and the
    number of rows dropped.
    """
    columns = ["customer_id", "segment", "relationship_type", "channel", "minutes"]
    if interactions is None or len(interactions) == 0:
        empty = pd.DataFrame({c: pd.Series(dtype="float64" if c == "minutes" else "str")
                              for c in columns})
        return empty, 0
    types = interactions["relationship_type"].astype("str")
    unknown = sorted(set(types[~types.isin(TYPES)].astype(str)))
    if unknown:
        raise ValueError("interactions have relationship_type " + ", ".join(map(repr, unknown))
                         + "; expected one of " + ", ".join(TYPES))
    # One hash lookup of every logged id among the customers' (pyarrow's index_in), and the
    # columns taken and filtered as Arrow strings: no Python string per row (millions of rows
    # for a big client), and no Series of segments per row built first.
    customer_ids = pa.array(customers["customer_id"].astype(str))
    if pc.count_distinct(customer_ids).as_py() != len(customer_ids):
        raise ValueError("the customer table has duplicate customer_id values")
    ids = interactions["customer_id"].astype(str)
    found = pc.index_in(pa.array(ids), value_set=customer_ids)
    known = found.is_valid().to_numpy(zero_copy_only=False)
    position = found.drop_null().to_numpy(zero_copy_only=False)
    segments = customers["segment"].astype(str).reset_index(drop=True)
    frame = pd.DataFrame({
        "customer_id": ids[known].array,
        "segment": segments.take(position).array,
        "relationship_type": types[known].array,
        "channel": interactions["channel"].astype(str)[known].array,
        "minutes": pd.to_numeric(interactions["minutes"]).fillna(0.0).to_numpy(float)[known],
    })
    return frame, int((~known).sum())


def usage(customers: pd.DataFrame, interactions: pd.DataFrame | None, *,
          window_years: float | None = None,
          logged: tuple[pd.DataFrame, int] | None = None) -> pd.DataFrame:
    """What the interaction log says each segment uses: volume, minutes and shares.

    Parameters
    ----------
    customers : DataFrame
        The per-customer table (``customer_id``, ``segment``).
    interactions : DataFrame or None
        The canonical interactions frame; None or empty gives an empty result.
    window_years : float, optional
        Years the log covers; default :func:`interaction_window_years`.
    logged : tuple, optional
        The log joined to the segments (``_logged(customers, interactions)``) when the caller
        has it already; else it is joined here.

    Returns
    -------
    DataFrame
        One row per segment, relationship type and channel that occur in the log:
        ``segment, relationship_type, channel, interactions, minutes, customers`` (distinct
        customers), ``interactions_year, minutes_year`` (divided by the window),
        ``share_of_minutes, share_of_interactions`` (within the segment).
    """
    logged, _ = logged if logged is not None else _logged(customers, interactions)
    columns = ["segment", "relationship_type", "channel", "interactions", "minutes", "customers",
               "interactions_year", "minutes_year", "share_of_minutes", "share_of_interactions"]
    if logged.empty:
        return pd.DataFrame({c: pd.Series(dtype="str" if c in columns[:3] else "float64")
                             for c in columns})
    years = window_years or interaction_window_years(interactions)
    keys = ["segment", "relationship_type", "channel"]
    out = (logged.groupby(keys, sort=False)
           .agg(interactions=("minutes", "size"), minutes=("minutes", "sum"),
                customers=("customer_id", "nunique"))
           .reset_index())
    out["interactions"] = out["interactions"].astype(float)
    out["customers"] = out["customers"].astype(float)
    out["interactions_year"] = out["interactions"] / years
    out["minutes_year"] = out["minutes"] / years
    by_segment = out.groupby("segment")
    out["share_of_minutes"] = _safe_share(out["minutes"], by_segment["minutes"].transform("sum"))
    out["share_of_interactions"] = _safe_share(out["interactions"],
                                               by_segment["interactions"].transform("sum"))
    order = {s: i for i, s in enumerate(segment_order(customers))}
    type_rank = {k: i for i, k in enumerate(TYPES)}
    out = out.sort_values(["segment", "relationship_type", "channel"],
                          key=lambda c: c.map(order) if c.name == "segment"
                          else c.map(type_rank) if c.name == "relationship_type" else c)
    return out.reset_index(drop=True)[columns]


def _safe_share(part: pd.Series, whole: pd.Series) -> pd.Series:
    """``part / whole``, 0 where the whole is 0 (a segment with no minutes has no shares)."""
    whole = whole.astype(float)
    return (part / whole.where(whole != 0)).fillna(0.0)


@dataclass
class Inventory:
    """Which relationship types each segment receives today.

    Attributes
    ----------
    usage : DataFrame
        :func:`usage`: the log per segment, type and channel.
    shares : DataFrame
        Segments × types: each type's share of the segment's logged minutes (0 when unused).
    status : DataFrame
        Segments × types: ``"both"`` (declared in client.yaml and seen in the log),
        ``"declared"`` (declared only), ``"observed"`` (in the log only: a usage pattern the
        client did not know it had) or ``""``.
    summary : DataFrame
        One row per segment: ``segment, segment_name, customers, contacted`` (customers with at
        least one logged interaction), ``declared, observed`` (lists of types; observed ordered by
        minutes), ``main_type`` (most logged minutes, else the first declared, else None),
        ``not_declared, not_observed`` (lists).
    window_years : float or None
        Years the log covers.
    unmatched_interactions : int
        Log rows whose customer is not in the customer table (left out).
    """

    usage: pd.DataFrame
    shares: pd.DataFrame
    status: pd.DataFrame
    summary: pd.DataFrame
    window_years: float | None = None
    unmatched_interactions: int = 0

    def as_dict(self, lang: str) -> dict:
        """Key figures for ``results.json`` and the workbook's prose, type names in ``lang``.

        ``pairs`` counts segment × type cells by :attr:`status`; ``undeclared_minutes_share`` is
        the share of all logged minutes spent on types the client did not declare for the
        segment (None when nothing is declared or logged: the share would mean nothing);
        ``surprise`` is the undeclared pattern with most minutes a year (None when there is
        none, or when nothing is declared).
        """
        summary = self.summary
        customers = int(summary["customers"].sum()) if len(summary) else 0
        contacted = int(summary["contacted"].sum()) if len(summary) else 0
        status = self.status.to_numpy()
        pairs = {key: int((status == key).sum()) for key in ("both", "declared", "observed")}
        declared_any = pairs["both"] + pairs["declared"] > 0
        use = self.usage
        minutes = (use.groupby(["segment", "relationship_type"])["minutes_year"].sum()
                   if len(use) else pd.Series(dtype=float))
        total = float(minutes.sum())
        undeclared = {pair: float(m) for pair, m in minutes.items()
                      if self.status.loc[pair[0], pair[1]] == "observed"}
        share = (sum(undeclared.values()) / total) if declared_any and total > 0 else None
        surprise = None
        if declared_any and undeclared:
            (segment, key), value = max(undeclared.items(), key=lambda item: item[1])
            names = dict(zip(summary["segment"], summary["segment_name"], strict=True))
            surprise = {"segment": segment, "segment_name": names[segment],
                        "relationship_type": key, "type_name": type_name(key, lang),
                        "minutes_year": value,
                        "share_of_segment": float(self.shares.loc[segment, key])}
        segments = [{"segment": row.segment, "segment_name": row.segment_name,
                     "customers": row.customers, "contacted": row.contacted,
                     "declared": list(row.declared), "observed": list(row.observed),
                     "main_type": row.main_type,
                     "main_type_name": type_name(row.main_type, lang) if row.main_type else None}
                    for row in summary.itertuples(index=False)]
        return {"logged": bool(len(use)), "window_years": self.window_years,
                "customers": customers, "contacted": contacted,
                "contacted_share": contacted / customers if customers else None,
                "interactions_year": float(use["interactions_year"].sum()) if len(use) else 0.0,
                "minutes_year": total, "declared_any": declared_any, "pairs": pairs,
                "undeclared_minutes_share": share, "surprise": surprise,
                "unmatched_interactions": self.unmatched_interactions, "segments": segments}


def inventory(customers: pd.DataFrame, interactions: pd.DataFrame | None = None,
              config: ClientConfig | RelationshipsConfig | Mapping | None = None, *,
              window_years: float | None = None) -> Inventory:
    """The relationship types each segment receives, declared and observed.

    Parameters
    ----------
    customers : DataFrame
        The per-customer table (``customer_id``, ``segment``, optional ``segment_name``).
    interactions : DataFrame, optional
        The canonical interactions frame.
    config : ClientConfig or RelationshipsConfig, optional
        Supplies ``relationships.current``.
    window_years : float, optional
        Years the log covers; default the log's first to last date.

    Raises
    ------
    ValueError
        When client.yaml names a segment the table does not have, or the log an unknown type.
    """
    rel = relationships_config(config)
    order = segment_order(customers)
    check_segments(rel, order, map_segments(config))
    joined = _logged(customers, interactions)  # once: usage and the counts below share it
    use = usage(customers, interactions, window_years=window_years, logged=joined)
    minutes = (use.groupby(["segment", "relationship_type"])["minutes"].sum()
               .unstack("relationship_type").reindex(index=order, columns=list(TYPES))
               .fillna(0.0))
    totals = minutes.sum(axis=1)
    shares = minutes.div(totals.where(totals != 0), axis=0).fillna(0.0)
    shares.index.name, shares.columns.name = "segment", "relationship_type"
    declared = pd.DataFrame(False, index=shares.index, columns=shares.columns)
    for segment, types in rel.current.items():
        if segment in declared.index:  # a segment of the map may have no customer this time
            declared.loc[segment, list(types)] = True
    observed = minutes > 0
    status = pd.DataFrame("", index=shares.index, columns=shares.columns, dtype=object)
    status[declared & observed] = "both"
    status[declared & ~observed] = "declared"
    status[~declared & observed] = "observed"
    names = segment_names(customers)
    counts = customers["segment"].astype(str).value_counts()
    logged, unmatched = joined
    contacted = logged.groupby("segment")["customer_id"].nunique()
    rows = []
    for segment in order:
        seen = [k for k in shares.columns[shares.loc[segment].to_numpy() > 0]]
        seen.sort(key=lambda k: -shares.loc[segment, k])
        said = [k for k in TYPES if declared.loc[segment, k]]
        main = seen[0] if seen else (said[0] if said else None)
        rows.append({"segment": segment, "segment_name": names[segment],
                     "customers": int(counts.get(segment, 0)),
                     "contacted": int(contacted.get(segment, 0)),
                     "declared": said, "observed": seen, "main_type": main,
                     "not_declared": [k for k in seen if k not in said],
                     "not_observed": [k for k in said if k not in seen]})
    return Inventory(usage=use, shares=shares, status=status, summary=pd.DataFrame(rows),
                     window_years=window_years or interaction_window_years(interactions),
                     unmatched_interactions=unmatched)


# --------------------------------------------------------------------------------------------
# What each segment expects
# --------------------------------------------------------------------------------------------

@dataclass
class Expectations:
    """The relationship each segment expects.

    Attributes
    ----------
    summary : DataFrame
        One row per segment: ``segment, segment_name, expected`` (type key or None),
        ``expected_share`` (share of the segment's respondents preferring it; 1.0 for a
        consultant's judgement; NaN when unknown), ``respondents`` (survey answers with a
        preference), ``source`` (``"survey"``, ``"consultant"`` or ``"none"``).
    shares : DataFrame
        Segments × types: the share of respondents preferring each type where the survey decides;
        1.0 on the consultant's type where the consultant decides; NaN rows where nothing is known.
    """

    summary: pd.DataFrame
    shares: pd.DataFrame
    min_respondents: int = 5

    def as_dict(self, lang: str) -> dict:
        """Key figures for ``results.json`` and the prose: how many segments each source
        decided, and every segment's expected type (its name in ``lang``)."""
        sources = self.summary["source"].value_counts()
        segments = [{"segment": row.segment, "segment_name": row.segment_name,
                     "expected": row.expected,
                     "expected_name": type_name(row.expected, lang) if row.expected else None,
                     "expected_share": row.expected_share, "respondents": row.respondents,
                     "source": row.source} for row in self.summary.itertuples(index=False)]
        return {"sources": {key: int(sources.get(key, 0))
                            for key in ("survey", "consultant", "none")},
                "respondents": int(self.summary["respondents"].sum()),
                "min_respondents": self.min_respondents, "segments": segments}

    def expected_type(self, segment: str) -> str | None:
        """The expected type of one segment (None when unknown)."""
        found = self.summary.loc[self.summary["segment"] == segment, "expected"]
        return None if found.empty else found.iloc[0]


def expectations(customers: pd.DataFrame, survey: pd.DataFrame | None = None,
                 config: ClientConfig | RelationshipsConfig | Mapping | None = None, *,
                 min_respondents: int | None = None) -> Expectations:
    """Which relationship each segment expects: the survey's majority, else the consultant's.

    The rule, per segment:

    1. the survey, when at least ``min_respondents`` of the segment's customers named a
       ``preferred_relationship``: the type most of them prefer (ties go to the catalogue's
       order), with its share of respondents;
    2. else the consultant's judgement, ``relationships.expected`` in client.yaml;
    3. else the survey's majority however few answered (the count is shown);
    4. else unknown (``source = "none"``).

    Parameters
    ----------
    customers : DataFrame
        The per-customer table.
    survey : DataFrame, optional
        The canonical survey frame; without it, or without ``preferred_relationship``, only the
        consultant's judgement counts.
    config : ClientConfig or RelationshipsConfig, optional
    min_respondents : int, optional
        Default ``relationships.min_respondents`` (5).
    """
    rel = relationships_config(config)
    order = segment_order(customers)
    check_segments(rel, order, map_segments(config))
    needed = min_respondents if min_respondents is not None else rel.min_respondents
    counts = pd.DataFrame(0.0, index=pd.Index(order, name="segment"),
                          columns=pd.Index(list(TYPES), name="relationship_type"))
    if survey is not None and "preferred_relationship" in survey and len(survey):
        pref = survey[["customer_id", "preferred_relationship"]].dropna()
        pref = pref.assign(preferred_relationship=pref["preferred_relationship"].astype(str))
        unknown = sorted(set(pref.loc[~pref["preferred_relationship"].isin(TYPES),
                                      "preferred_relationship"]))
        if unknown:
            raise ValueError("survey has preferred_relationship " + ", ".join(map(repr, unknown))
                             + "; expected one of " + ", ".join(TYPES))
        seg = pd.Series(customers["segment"].astype(str).to_numpy(),
                        index=customers["customer_id"].astype(str).to_numpy())
        pref = pref.assign(segment=pref["customer_id"].astype(str).map(seg)).dropna(
            subset=["segment"])
        found = pref.groupby(["segment", "preferred_relationship"]).size().unstack()
        counts = counts.add(found.reindex(index=order, columns=list(TYPES)).fillna(0.0),
                            fill_value=0.0)
    respondents = counts.sum(axis=1)
    shares = pd.DataFrame(np.nan, index=counts.index, columns=counts.columns)
    names = segment_names(customers)
    rows = []
    for segment in order:
        n = int(respondents[segment])
        judged = rel.expected.get(segment)
        if n >= needed or (n > 0 and judged is None):
            row_shares = counts.loc[segment] / n
            # idxmax keeps the first maximum, i.e. the catalogue's order breaks ties
            chosen, share, source = row_shares.idxmax(), float(row_shares.max()), "survey"
            shares.loc[segment] = row_shares
        elif judged is not None:
            chosen, share, source = judged, 1.0, "consultant"
            shares.loc[segment] = 0.0
            shares.loc[segment, judged] = 1.0
        else:
            chosen, share, source = None, math.nan, "none"
        rows.append({"segment": segment, "segment_name": names[segment], "expected": chosen,
                     "expected_share": share, "respondents": n, "source": source})
    return Expectations(summary=pd.DataFrame(rows), shares=shares, min_respondents=needed)


def _window_months(config: Any) -> int:
    assumptions = getattr(config, "assumptions", None)
    return int(getattr(assumptions, "window_months", 12) or 12)


