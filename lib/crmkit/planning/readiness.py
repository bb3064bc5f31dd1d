"""Readiness of people, process and technology, and the risk register of the CRM project.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from crmkit.core.i18n import t

if TYPE_CHECKING:  # annotations only: config imports this module for CrmProject
    from crmkit.settings.client import ClientConfig
from crmkit.settings.project import (
    DEFAULT_RISKS,
    READINESS,
    READINESS_SOURCE,
    CrmProject,
    project_settings,
)

# Columns of the frames below as a client reads them: ``Table(frame, fmt, PHASE_COLUMNS)``.
#: For :func:`readiness`.
READINESS_COLUMNS = {"name": ("plan_col_dimension", "text"), "score": ("plan_col_score", "score"),
                     "reading_name": ("plan_col_reading", "text"),
                     "advice": ("plan_col_advice", "text")}
#: For :func:`risk_register`.
RISK_COLUMNS = {"number": ("plan_col_number", "integer"), "risk": ("plan_col_risk", "text"),
                "likelihood": ("plan_col_likelihood", "score"),
                "impact": ("plan_col_impact", "score"), "score": ("plan_col_risk_score", "score"),
                "level_name": ("plan_col_level", "text"),
                "mitigation": ("plan_col_mitigation", "text"), "owner": ("plan_col_owner", "text")}


# --------------------------------------------------------------------------------------------
# Readiness and risks
# --------------------------------------------------------------------------------------------

def _reading(score: float) -> str:
    if score <= 2:
        return "limit"
    return "strength" if score >= 4 else "adequate"


def _readiness_scores(config: Any) -> dict[str, tuple[int, str, str]]:
    """dimension -> (score, source, note)."""
    settings = project_settings(config)
    internal = getattr(getattr(config, "context", None), "internal", None)
    out = {}
    for dim in READINESS:
        own = getattr(settings.readiness, dim)
        if own is not None:
            out[dim] = (own.score, "crm_project", own.note)
        elif internal is not None:
            capability = getattr(internal, READINESS_SOURCE[dim])
            out[dim] = (capability.score, f"context.{READINESS_SOURCE[dim]}", capability.note)
        else:
            out[dim] = (3, "default", "")
    return out


def readiness(config: ClientConfig | CrmProject | Mapping | None, lang: str) -> pd.DataFrame:
    """People, process and technology readiness, scored 1-5, with what to do about each.

    Scores come from ``crm_project.readiness``; unset ones from ``context.internal`` (people ←
    people, process ← operational, technology ← technological), else 3.

    Returns
    -------
    DataFrame
        ``dimension``, ``name``, ``score`` (1-5), ``source`` (``crm_project``,
        ``context.<capability>`` or ``default``), ``reading`` (``limit`` ≤ 2, ``adequate`` 3,
        ``strength`` ≥ 4), ``reading_name``, ``advice`` (what the plan does about it) and
        ``note`` (the consultant's). ``frame.attrs["index"]`` is the overall readiness
        ``(mean score − 1) / 4`` (0 = nothing ready, 1 = fully ready).
    """
    rows = []
    for dim, (score, source, note) in _readiness_scores(config).items():
        reading = _reading(score)
        rows.append({"dimension": dim, "name": t(f"plan_readiness_{dim}", lang), "score": score,
                     "source": source, "reading": reading,
                     "reading_name": t(f"reading_{reading}", lang),
                     "advice": t(f"plan_advice_{dim}_{reading}", lang), "note": note})
    frame = pd.DataFrame(rows)
    frame.attrs["index"] = float((frame["score"].mean() - 1) / 4)
    return frame


def _risk_level(score: int) -> str:
    if score >= 15:
        return "high"
    return "medium" if score >= 8 else "low"


def risk_register(config: ClientConfig | CrmProject | Mapping | None, lang: str) -> pd.DataFrame:
    """The risk register: default risks adjusted to the client's readiness, plus its own.

    Each default risk is tied to a readiness dimension (or to ``context.internal.financial``):
    its likelihood is ``base + (3 − score)``, kept within 1-5, so a process scored 1 makes
    "procedures never formalised" two steps more likely and a process scored 5 two steps less.
    ``crm_project.risks`` overrides any field of a default risk, drops one (``include: false``)
    or adds new ones. Score = likelihood × impact (1-25); level: high ≥ 15, medium ≥ 8, else low.

    Returns
    -------
    DataFrame
        ``number`` (1 = highest score; the bubbles of the risk matrix carry it), ``risk_key``,
        ``risk`` (text), ``dimension``, ``likelihood``, ``impact``, ``score``, ``level``,
        ``level_name``, ``mitigation``, ``owner``, ``source`` (``default`` or ``client.yaml``);
        highest score first.
    """
    settings = project_settings(config)
    scores = {dim: s for dim, (s, _, _) in _readiness_scores(config).items()}
    internal = getattr(getattr(config, "context", None), "internal", None)
    if internal is not None:
        scores["financial"] = internal.financial.score
    rows = []
    for key, (dim, base, impact, owner) in DEFAULT_RISKS.items():
        likelihood = base if dim is None else int(np.clip(base + 3 - scores.get(dim, 3), 1, 5))
        rows.append({"risk_key": key, "risk": t(f"plan_risk_{key}", lang), "dimension": dim,
                     "likelihood": likelihood, "impact": impact,
                     "mitigation": t(f"plan_mitigation_{key}", lang), "owner": t(owner, lang),
                     "source": "default"})
    by_key = {r["risk_key"]: r for r in rows}
    for key, own in settings.risks.items():
        if not own.include:
            by_key.pop(key, None)
            continue
        row = by_key.setdefault(key, {"risk_key": key, "dimension": None, "mitigation": "",
                                      "owner": ""})
        for name in ("risk", "likelihood", "impact", "mitigation", "owner"):
            value = getattr(own, name)
            if value is not None:
                row[name] = value
        row["source"] = "client.yaml"
    frame = pd.DataFrame(list(by_key.values()),
                         columns=["risk_key", "risk", "dimension", "likelihood", "impact",
                                  "mitigation", "owner", "source"])
    frame["likelihood"] = frame["likelihood"].astype(int)
    frame["impact"] = frame["impact"].astype(int)
    frame["score"] = frame["likelihood"] * frame["impact"]
    frame["level"] = frame["score"].map(_risk_level)
    frame["level_name"] = [t(f"plan_level_{lv}", lang) for lv in frame["level"]]
    frame = frame[["risk_key", "risk", "dimension", "likelihood", "impact", "score", "level",
                   "level_name", "mitigation", "owner", "source"]]
    frame = frame.sort_values(["score", "impact"], ascending=False, kind="stable"
                              ).reset_index(drop=True)
    frame.insert(0, "number", range(1, len(frame) + 1))
    return frame
