"""Reading the plan's costs: cost lines by category, monthly costs, costs by year, TCO.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from crmkit.core.i18n import Formatter, t

if TYPE_CHECKING:  # annotations only: config imports this module for CrmProject
    pass
from crmkit.planning.schedule import Plan, _month_of, phase_name
from crmkit.settings.project import (
    CATEGORIES,
    CATEGORY_GROUP,
)

# Columns of the frames below as a client reads them: ``Table(frame, fmt, PHASE_COLUMNS)``.
#: For :func:`cost_lines`.
COST_COLUMNS = {"name": ("plan_col_category", "text"), "group_name": ("plan_col_group", "text"),
                "one_off": ("plan_col_one_off", "money"), "yearly": ("plan_col_yearly", "money"),
                "when": ("plan_col_when", "text"), "total": ("plan_col_total", "money"),
                "note": ("plan_col_note", "text")}
#: For :func:`tco`.
TCO_COLUMNS = {"year": ("plan_col_year", "integer"), "months": ("plan_col_months", "integer"),
               "project": ("plan_col_project", "money"),
               "technology": ("plan_col_technology", "money"),
               "human": ("plan_col_human", "money"), "total": ("plan_col_tco", "money"),
               "cumulative": ("plan_col_cumulative_cost", "money")}


# --------------------------------------------------------------------------------------------
# Costs by category, by month and by year
# --------------------------------------------------------------------------------------------

def category_name(key: str, lang: str) -> str:
    """A cost category's name in ``lang``."""
    return t(f"plan_cat_{key}", lang)


def cost_lines(plan: Plan, lang: str) -> pd.DataFrame:
    """The cost assumptions, one row per cost line, for the client to check.

    Returns
    -------
    DataFrame
        ``category``, ``name``, ``group``, ``group_name``, ``one_off``, ``yearly`` (recurring,
        a year), ``when`` (text: the phase or month of the one-off, and from when it recurs),
        ``total`` (over the horizon), ``source`` (``default`` or ``client.yaml``), ``note``.
    """
    totals = plan.costs.groupby("category")["amount"].sum()
    rows = []
    seen: dict[str, int] = {}
    for line in plan.lines.itertuples(index=False):
        parts = []
        if line.category == "efficiency_dip":
            dip = plan.settings.efficiency_dip
            parts.append(t("plan_when_dip", lang, depth=Formatter(lang).pct(dip.depth),
                           months=dip.months,
                           basis=t(f"plan_dip_basis_{dip.basis}", lang)))
        else:
            if line.one_off:
                if line.month is not None and not pd.isna(line.month):
                    parts.append(t("plan_when_month", lang, month=int(line.month) + 1))
                else:
                    parts.append(phase_name(line.phase, lang) if line.phase != "project"
                                 else t("plan_phase_project", lang))
            if line.monthly:
                first = _month_of(plan, line.recurring_from)
                parts.append(t("plan_when_recurring", lang, month=first + 1))
        seen[line.category] = seen.get(line.category, 0) + 1
        rows.append({"category": line.category, "name": category_name(line.category, lang),
                     "group": line.group, "group_name": t(f"plan_group_{line.group}", lang),
                     "one_off": float(line.one_off), "yearly": float(line.monthly) * 12.0,
                     "when": "; ".join(parts) or "–", "source": line.source, "note": line.note})
    out = pd.DataFrame(rows)
    # A category with several lines shows its horizon total on its first line only.
    out["total"] = [float(totals.get(c, 0.0)) if i == 0 else np.nan
                    for c, i in zip(out["category"], out.groupby("category").cumcount(),
                                    strict=True)]
    return out


def monthly_costs(plan: Plan) -> pd.DataFrame:
    """Costs per month (rows, ``0 … horizon−1``) and category (columns, :data:`CATEGORIES`)."""
    wide = plan.costs.pivot_table(index="month", columns="category", values="amount",
                                  aggfunc="sum", fill_value=0.0)
    return wide.reindex(index=range(plan.horizon_months), columns=list(CATEGORIES),
                        fill_value=0.0).fillna(0.0).rename_axis(index="month", columns="category")


def costs_by_year(plan: Plan, lang: str | None = None) -> pd.DataFrame:
    """Costs per category (rows) and project year (columns ``1 … n``), with ``total``.

    Year 1 is months 0-11 from the project start; the last year may be shorter (see
    :func:`tco`). With ``lang``, a ``name`` column gives the category's name.
    """
    wide = plan.costs.pivot_table(index="category", columns="year", values="amount",
                                  aggfunc="sum", fill_value=0.0)
    years = range(1, (plan.horizon_months - 1) // 12 + 2)
    wide = wide.reindex(index=list(CATEGORIES), columns=list(years), fill_value=0.0).fillna(0.0)
    wide.columns = [int(c) for c in wide.columns]
    wide["total"] = wide.sum(axis=1)
    wide.insert(0, "group", [CATEGORY_GROUP[c] for c in wide.index])
    if lang is not None:
        wide.insert(0, "name", [category_name(c, lang) for c in wide.index])
    return wide.rename_axis(index="category")


def tco(plan: Plan) -> pd.DataFrame:
    """Total cost of ownership per project year.

    Returns
    -------
    DataFrame
        One row per project year: ``year``, ``months`` (months of the horizon in that year),
        ``start`` (date), ``project``, ``technology``, ``human`` (the groups of
        :data:`CATEGORY_GROUP`), ``one_off``, ``recurring``, ``efficiency_dip``, ``total`` and
        ``cumulative``. The totals equal the sum of every category (tested).
    """
    costs = plan.costs
    years = list(range(1, (plan.horizon_months - 1) // 12 + 2))
    by_group = costs.pivot_table(index="year", columns="group", values="amount", aggfunc="sum",
                                 fill_value=0.0).reindex(index=years, fill_value=0.0)
    by_kind = costs.pivot_table(index="year", columns="kind", values="amount", aggfunc="sum",
                                fill_value=0.0).reindex(index=years, fill_value=0.0)
    out = pd.DataFrame({"year": years})
    out["months"] = [min(12, plan.horizon_months - 12 * (y - 1)) for y in years]
    out["start"] = [plan.month_date(12 * (y - 1)) for y in years]
    for group in ("project", "technology", "human"):
        out[group] = by_group.get(group, pd.Series(0.0, index=years)).to_numpy()
    out["one_off"] = by_kind.get("one_off", pd.Series(0.0, index=years)).to_numpy()
    out["recurring"] = by_kind.get("recurring", pd.Series(0.0, index=years)).to_numpy()
    out["efficiency_dip"] = by_kind.get("dip", pd.Series(0.0, index=years)).to_numpy()
    out["total"] = out[["project", "technology", "human"]].sum(axis=1)
    out["cumulative"] = out["total"].cumsum()
    return out
