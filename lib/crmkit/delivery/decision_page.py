"""The decision on one page: what the client's management reads first.

One HTML fragment, built from ``results.json`` alone, so the report (at the front of
``report.html`` and of page one of ``report.pdf``) and the dashboard show the same page:

- the objective in one sentence, and the customer base in one more;
- the decision (go / go with conditions / no go, :mod:`crmkit.planning.decision`) and what it
  means in plain words;
- the figures that drive it: the NPV, the payback, "what you must believe" (the break-even) and
  the sensitivity (every benefit lower, every cost higher by the decision's margins);
- the conditions, and the cost lines that are still default estimates (placeholders to replace
  with suppliers' quotes);
- per segment, in the segment map's order: the verdict, the relationship it keeps or moves to
  and the € at stake over the horizon of chapter 4.

The sentences are the catalogue's own (``decision_reason_*``, ``decision_condition_*``,
``decision_break_even_*``, ``rel_verdict_*``, ``rel_col_impact``), filled with the figures of the
run, so the page reads word for word like the chapters behind it. Under a ``no_go`` the page never
says "invest": a segment's "invest" verdict is about where today's means go, and is worded so.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

from crmkit.core.i18n import Formatter, t, tn
from crmkit.relationships.inventory import type_name
from crmkit.settings.project import DecisionSettings

__all__ = ["DECISION_CLASSES", "VERDICT_CLASSES", "believe", "break_even_text",
           "decision_page", "decision_reasons", "segment_rows"]

#: CSS class of the decision's badge.
DECISION_CLASSES = {"go": "good", "go_with_conditions": "warn", "no_go": "bad"}
#: CSS class of each verdict's pill (the same colours as the executive summary's).
VERDICT_CLASSES = {"invest": "good", "maintain": "neutral", "move_cheaper": "warn",
                   "win_back": "warn", "stop": "bad"}


def _esc(text) -> str:
    return html.escape(str(text), quote=True)


def break_even_text(break_even: Mapping | None, fmt: Formatter) -> str | None:
    """The break-even as the sentence of chapter 5 (``BreakEven.text``), or None without one."""
    if not break_even:
        return None
    lang = fmt.lang
    value = break_even.get("value")
    if value is None:
        return t("decision_break_even_none", lang)
    value = float(value)
    if break_even.get("lever") == "retention":
        key = "decision_break_even_points" if value >= 0 else "decision_break_even_points_fall"
        return t(key, lang, points=fmt.number(abs(value), 1),
                 planned=fmt.number(float(break_even.get("planned") or 0.0), 1))
    return t("decision_break_even_scale", lang, scale=fmt.number(value, 2))


def believe(break_even: Mapping | None, fmt: Formatter) -> str | None:
    """"What you must believe" in a few words (a card's value), or None without a break-even.

    A negative retention break-even means the case holds even if retention falls: it reads "no
    more than 0.1 points lower", never "−0.1 points higher".
    """
    if not break_even or break_even.get("value") is None:
        return None
    value = float(break_even["value"])
    if break_even.get("lever") == "retention":
        key = "decision_believe_points" if value >= 0 else "decision_believe_points_fall"
        return t(key, fmt.lang, points=fmt.number(abs(value), 1))
    return t("decision_believe_scale", fmt.lang, scale=fmt.number(value, 2))


def decision_reasons(plan: Mapping, fmt: Formatter,
                     margins: DecisionSettings | None = None) -> list[str]:
    """Why: the NPV, the sensitivity and the break-even, as sentences in ``fmt.lang``.

    Rebuilt from the figures (not copied from ``decision_reasons``' texts), so the page reads in
    the language it is shown in whatever language the run was made in.
    """
    lang = fmt.lang
    margins = margins or DecisionSettings()
    out: list[str] = []
    npv = plan.get("npv")
    if npv is not None:
        key = "decision_reason_npv_positive" if npv > 0 else "decision_reason_npv_negative"
        out.append(t(key, lang, npv=fmt.money(npv), months=plan.get("horizon_months")))
    low, high = plan.get("npv_low_benefits"), plan.get("npv_high_costs")
    if low is not None and high is not None:
        out.append(t("dp_sensitivity", lang, benefits=fmt.pct(margins.benefit_margin, 0),
                     low=fmt.money(low), costs=fmt.pct(margins.cost_margin, 0),
                     high=fmt.money(high)))
    even = break_even_text(plan.get("break_even"), fmt)
    if even:
        out.append(even)
    return out


def _payback(plan: Mapping, fmt: Formatter) -> str:
    # payback_month is the index of the month (0 = the project's first) from which the
    # cumulative cash flow stays positive: it pays back within payback_month + 1 months.
    month = plan.get("payback_month")
    if month is None:
        return t("sum_no_payback", fmt.lang)
    return t("sum_months", fmt.lang, months=int(month) + 1)


def _map_order(results: Mapping) -> list[str]:
    """Segment keys in the segment map's order (chapter 2's profiles follow the map)."""
    segments = results.get("segments") or {}
    order = [str(p["segment"]) for p in segments.get("profiles", []) if p.get("segment")]
    return order or [str(k) for k in (segments.get("assignment") or {}).get("counts", {})]


def segment_rows(results: Mapping, fmt: Formatter) -> list[dict]:
    """One row per segment with a verdict, in the map's order: what the page's table shows.

    Each row: ``segment``, ``name``, ``verdict``, ``verdict_label``, ``css``, ``relationship``
    (the main relationship type, "from → to" when the verdict moves it) and ``impact`` (money
    text, over chapter 4's horizon).
    """
    lang = fmt.lang
    decision = (results.get("implementation") or {}).get("decision")
    rows = [r for r in (results.get("cost_benefit") or {}).get("segments", [])
            if r.get("verdict")]
    rank = {key: i for i, key in enumerate(_map_order(results))}
    rows = sorted(rows, key=lambda r: rank.get(str(r.get("segment")), len(rank)))
    out = []
    for row in rows:
        verdict = row["verdict"]
        # Under a no-go there is no CRM project to invest in: the verdict is about today's means.
        label_key = ("dp_verdict_invest_no_go" if verdict == "invest" and decision == "no_go"
                     else f"rel_verdict_{verdict}")
        main = row.get("main_type")
        relationship = type_name(main, lang) if main else ""
        if verdict == "move_cheaper" and row.get("cheaper_type"):
            relationship = t("dp_relationship_move", lang, current=relationship,
                             cheaper=type_name(row["cheaper_type"], lang))
        impact = row.get("impact")
        out.append({"segment": row.get("segment"),
                    "name": row.get("segment_name") or row.get("segment"),
                    "verdict": verdict, "verdict_label": t(label_key, lang),
                    "css": VERDICT_CLASSES.get(verdict, "neutral"),
                    "relationship": relationship,
                    "impact": fmt.money(impact) if impact is not None else "–"})
    return out


def _objective(results: Mapping, fmt: Formatter) -> str | None:
    objective = (results.get("context") or {}).get("objective")
    if not objective:
        return None
    chosen = objective["chosen"]
    key = "dp_objective_set" if objective.get("overridden") else "dp_objective"
    return t(key, fmt.lang, objective=t(f"objective_{chosen}", fmt.lang).lower())


def _base(results: Mapping, fmt: Formatter) -> str | None:
    segments = results.get("segments") or {}
    if "total_clv" not in segments:
        return None
    named = [p for p in segments.get("profiles", []) if p.get("customers")]
    count = len(named) or len(segments.get("assignment", {}).get("counts", {}))
    text = tn("dp_base", count, fmt.lang, segments=fmt.number(count),
              value=fmt.money(segments["total_clv"]),
              months=segments.get("horizon_months", "–"))
    leading = segments.get("leading")
    if leading:
        text += " " + t("sum_leading_text", fmt.lang, name=leading["name"],
                        customers=fmt.pct(leading["customer_share"]),
                        revenue=fmt.pct(leading["revenue_share"]))
    return text


def _list(items: Sequence[str], css: str) -> str:
    return f'<ul class="{css}">' + "".join(f"<li>{_esc(i)}</li>" for i in items) + "</ul>"


def decision_page(results: Mapping, lang: str, *, currency: str = "EUR",
                  margins: DecisionSettings | None = None) -> str:
    """The one-page decision as an HTML fragment (a ``<section>``), or ``""`` without a plan.

    Parameters
    ----------
    results : mapping
        The run's ``results.json``.
    lang : {"en", "es"}
    currency : str
        The client's currency (``config.currency``).
    margins : DecisionSettings, optional
        ``config.crm_project.decision``: the benefit and cost margins of the sensitivity
        (default 20 % each, as the decision rule's).

    Returns
    -------
    str
        Self-contained markup (every client text escaped) styled by the report template's
        ``.decision-page`` rules; the dashboard can embed it as it is.
    """
    plan = results.get("implementation") or {}
    decision = plan.get("decision")
    if not decision:
        return ""
    fmt = Formatter(lang, currency)
    margins = margins or DecisionSettings()
    # class="summary": the page takes the executive summary's place (and its card styles).
    parts = [f'<section class="summary" id="decision" '
             f'aria-label="{_esc(t("dp_title", lang))}"><div class="decision-page">',
             f"<h2>{_esc(t('dp_title', lang))}</h2>"]
    lead = [s for s in (_objective(results, fmt), _base(results, fmt)) if s]
    if lead:
        parts.append(f'<p class="dp-lead">{_esc(" ".join(lead))}</p>')
    parts.append(
        f'<div class="dp-decision {DECISION_CLASSES.get(decision, "neutral")}">'
        f'<span class="dp-decision-label">{_esc(t("decision_label", lang))}</span>'
        f'<span class="dp-decision-value">{_esc(t(f"decision_{decision}", lang))}</span>'
        f'<span class="dp-decision-meaning">{_esc(t(f"dp_meaning_{decision}", lang))}</span>'
        "</div>")
    cards = []
    if plan.get("npv") is not None:
        cards.append((fmt.money(plan["npv"]), t("sum_npv", lang)))
    cards.append((_payback(plan, fmt), t("sum_payback", lang)))
    believed = believe(plan.get("break_even"), fmt)
    if believed:
        cards.append((believed, t("decision_break_even_label", lang)))
    parts.append('<div class="crm-kpis">' + "".join(
        f'<div class="crm-kpi"><div class="crm-kpi-value">{_esc(v)}</div>'
        f'<div class="crm-kpi-label">{_esc(k)}</div></div>' for v, k in cards) + "</div>")
    reasons = decision_reasons(plan, fmt, margins)
    if reasons:
        parts.append(f"<h3>{_esc(t('dp_why', lang))}</h3>" + _list(reasons, "dp-reasons"))
    lines = plan.get("cost_lines") or {}
    defaults = int(lines.get("default") or 0)
    conditions = [t(f"decision_condition_{c}", lang, default=defaults)
                  for c in plan.get("decision_conditions", [])]
    if conditions:
        parts.append(f"<h3>{_esc(t('dp_conditions', lang))}</h3>"
                     + _list(conditions, "dp-conditions"))
    if defaults:
        parts.append('<p class="dp-flag">' + _esc(t(
            "decision_reason_default_costs", lang, default=defaults,
            total=lines.get("total", defaults))) + "</p>")
    rows = segment_rows(results, fmt)
    if rows:
        years = (results.get("cost_benefit") or {}).get("horizon_years")
        impact = (tn("dp_col_impact", years, lang, years=fmt.number(years))
                  if years else t("rel_col_impact", lang))
        head = "".join(f"<th{c}>{_esc(h)}</th>" for h, c in (
            (t("rel_segment", lang), ""), (t("rel_col_verdict", lang), ""),
            (t("rel_type", lang), ""), (impact, ' class="num"')))
        body = "".join(
            f'<tr><td>{_esc(r["name"])}</td><td><span class="verdict {r["css"]}">'
            f'{_esc(r["verdict_label"])}</span></td><td>{_esc(r["relationship"])}</td>'
            f'<td class="num">{_esc(r["impact"])}</td></tr>' for r in rows)
        title = "dp_segments_no_go" if decision == "no_go" else "sum_verdicts"
        parts.append(f"<h3>{_esc(t(title, lang))}</h3>"
                     f'<table class="crm-table dp-segments"><thead><tr>{head}</tr></thead>'
                     f"<tbody>{body}</tbody></table>")
    parts.append("</div></section>")
    return "".join(parts)
