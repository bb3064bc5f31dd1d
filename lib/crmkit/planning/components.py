"""Which CRM component to build first (analytical, operational, collaborative), from the
objective and the relationship gaps, with every rule's points shown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from crmkit.core.i18n import t

if TYPE_CHECKING:  # annotations only: config imports this module for CrmProject
    pass
from crmkit.settings.project import (
    COMPONENTS,
)

# Columns of the frames below as a client reads them: ``Table(frame, fmt, PHASE_COLUMNS)``.
#: For ``components_first(...).ranking``.
COMPONENT_COLUMNS = {"rank": ("plan_col_rank", "integer"), "name": ("plan_col_component", "text"),
                     "description": ("plan_col_description", "text"),
                     "points": ("plan_col_points", "integer")}
#: For ``components_first(...).rules``.
RULE_COLUMNS = {"reason": ("plan_col_rule", "text"),
                "analytical": ("plan_col_analytical", "integer"),
                "operational": ("plan_col_operational", "integer"),
                "collaborative": ("plan_col_collaborative", "integer")}


# --------------------------------------------------------------------------------------------
# Which CRM component first
# --------------------------------------------------------------------------------------------

#: The rule table: rule -> points to (analytical, operational, collaborative). Each rule's
#: reason is the message ``plan_rule_<rule>``.
COMPONENT_RULES: dict[str, tuple[int, int, int]] = {
    "objective_attract": (1, 2, 2),
    "objective_retain": (2, 1, 1),
    "objective_grow": (2, 2, 0),
    "gap_personal": (0, 2, 1),
    "gap_self_service": (1, 0, 2),
    "gap_community": (0, 0, 2),
    "gap_segments": (0, 1, 1),
    "technology_low": (-1, 1, 0),
    "technology_high": (1, 0, 0),
}
#: Which relationship types each gap rule covers.
GAP_TYPES: dict[str, tuple[str, ...]] = {
    "gap_personal": ("personal_assistance", "dedicated_personal_assistance"),
    "gap_self_service": ("self_service", "automated_services"),
    "gap_community": ("communities", "co_creation"),
}
#: A segment whose gap (or a type whose shortfall) reaches this share counts as a gap.
GAP_THRESHOLD = 0.10
#: Ties are broken in the usual build order: operational systems collect the data that the
#: analytical ones need, and the channels come last.
TIE_ORDER = ("operational", "analytical", "collaborative")


@dataclass
class ComponentChoice:
    """Which CRM component to build first, and why.

    Attributes
    ----------
    rules : DataFrame
        The rules that applied: ``rule``, ``analytical``, ``operational``, ``collaborative``
        (points), ``reason`` (the sentence in the language).
    ranking : DataFrame
        ``component``, ``name``, ``description``, ``points``, ``rank`` (1 = first), best first.
    first : str
        The component to build first.
    sentence : str
        The reasoning in one paragraph, in the language.
    types_to_strengthen : list of str
        The relationship types the gaps pointed at.
    """

    rules: pd.DataFrame
    ranking: pd.DataFrame
    first: str
    sentence: str
    types_to_strengthen: list[str]
    lang: str = "en"

    def as_dict(self) -> dict:
        """Key figures: ``first``, ``order``, ``points``, ``rules``, ``types_to_strengthen``
        and their names in the choice's language (``type_names``)."""
        from crmkit.relationships.inventory import type_name

        return {"first": self.first,
                "order": list(self.ranking["component"]),
                "points": {r.component: int(r.points) for r in self.ranking.itertuples()},
                "rules": list(self.rules["rule"]),
                "types_to_strengthen": list(self.types_to_strengthen),
                "type_names": [type_name(k, self.lang) for k in self.types_to_strengthen]}


def _read_gaps(gaps: Any) -> tuple[list[str], int]:
    """Relationship types to strengthen and the number of segments with a large gap.

    Accepts None; a list of relationship types; a mapping or Series ``type -> gap`` (gap =
    current − expected share, as in :class:`crmkit.relationships.questions.Gap`: negative = the
    client
    asks for more of that type than it gets); a mapping or Series ``segment -> gap size`` (0-1);
    a DataFrame segments × types (``Gap.gap``) or with columns ``segment`` and ``gap``; or a
    :class:`crmkit.relationships.questions.Gap`.
    """
    from crmkit.relationships.inventory import TYPES

    if gaps is None:
        return [], 0
    if hasattr(gaps, "gap") and isinstance(gaps.gap, pd.DataFrame):
        gaps = gaps.gap
    if isinstance(gaps, pd.DataFrame):
        type_columns = [c for c in gaps.columns if c in TYPES]
        if type_columns:
            shortfall = gaps[type_columns].min(axis=0)
            return [c for c in type_columns if shortfall[c] <= -GAP_THRESHOLD], 0
        if {"segment", "gap"} <= set(gaps.columns):
            gaps = gaps.set_index("segment")["gap"]
        else:
            raise ValueError("gaps: a DataFrame of segments × relationship types, or with "
                             f"columns segment and gap; found columns {list(gaps.columns)}")
    if isinstance(gaps, pd.Series):
        gaps = gaps.to_dict()
    if isinstance(gaps, Mapping):
        keys = [str(k) for k in gaps]
        if keys and all(k in TYPES for k in keys):
            return [k for k in keys if float(gaps[k]) <= -GAP_THRESHOLD], 0
        return [], sum(1 for v in gaps.values() if abs(float(v)) >= GAP_THRESHOLD)
    if isinstance(gaps, str):
        gaps = [gaps]
    if isinstance(gaps, Iterable):
        types = [str(g) for g in gaps]
        unknown = [g for g in types if g not in TYPES]
        if unknown:
            raise ValueError(f"gaps: relationship types, found {', '.join(unknown)}; expected "
                             + ", ".join(TYPES))
        return types, 0
    raise TypeError(f"gaps: a list, mapping, Series, DataFrame or Gap, found {type(gaps)!r}")


def components_first(objective: str, gaps: Any = None, lang: str = "en", *,
                     technology_score: int | None = None) -> ComponentChoice:
    """Which CRM component — analytical, operational, collaborative — to build first.

    A transparent rule table (:data:`COMPONENT_RULES`): the objective of workbook 01 gives
    points to the components that serve it; the relationship types the segments ask for more of
    (workbook 03) add points to the components that deliver them; weak technology favours an
    operational start that collects clean data; strong technology lets analytics start early.
    The component with most points goes first (ties: operational, analytical, collaborative).

    Parameters
    ----------
    objective : {"attract", "retain", "grow"}
    gaps : optional
        The relationship gaps: a list of relationship types to strengthen, a mapping
        ``type -> gap`` (current − expected; ≤ −0.10 counts), a mapping ``segment -> gap size``
        (≥ 0.10 counts), a DataFrame segments × types (``relationships.Gap.gap``) or a ``Gap``.
    lang : {"en", "es"}
    technology_score : int, optional
        Technology readiness 1-5 (``readiness(config, lang)``); ≤ 2 and ≥ 4 add a rule.

    Returns
    -------
    ComponentChoice
    """
    if objective not in ("attract", "retain", "grow"):
        raise ValueError(f"objective {objective!r}; expected attract, retain or grow")
    types, segments_with_gap = _read_gaps(gaps)
    applied = [f"objective_{objective}"]
    for rule, covered in GAP_TYPES.items():
        if any(tp in covered for tp in types):
            applied.append(rule)
    if segments_with_gap:
        applied.append("gap_segments")
    if technology_score is not None and technology_score <= 2:
        applied.append("technology_low")
    elif technology_score is not None and technology_score >= 4:
        applied.append("technology_high")
    rows = []
    for rule in applied:
        points = dict(zip(COMPONENTS, COMPONENT_RULES[rule], strict=True))
        rows.append({"rule": rule, **points,
                     "reason": t(f"plan_rule_{rule}", lang, segments=segments_with_gap)})
    rules = pd.DataFrame(rows, columns=["rule", *COMPONENTS, "reason"])
    totals = {c: int(rules[c].sum()) for c in COMPONENTS}
    order = sorted(COMPONENTS, key=lambda c: (-totals[c], TIE_ORDER.index(c)))
    ranking = pd.DataFrame({
        "component": order, "name": [t(f"plan_component_{c}", lang) for c in order],
        "description": [t(f"plan_component_{c}_description", lang) for c in order],
        "points": [totals[c] for c in order], "rank": range(1, 4)})
    first = order[0]
    reasons = " ".join(r for r, p in zip(rules["reason"], rules[first], strict=True) if p > 0)
    sentence = t("plan_components_sentence", lang,
                 first=t(f"plan_component_{first}", lang).lower(), points=totals[first],
                 second=t(f"plan_component_{order[1]}", lang).lower(),
                 third=t(f"plan_component_{order[2]}", lang).lower(), reasons=reasons)
    return ComponentChoice(rules=rules, ranking=ranking, first=first, sentence=sentence,
                           types_to_strengthen=types, lang=lang)


# --------------------------------------------------------------------------------------------
# results.json
# --------------------------------------------------------------------------------------------
