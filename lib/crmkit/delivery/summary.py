"""The executive summary at the front of the report: the strategy on one screen.

It reads only ``results.json``, so it always states the figures of this run: the objective of
workbook 01, the segments and their value from 02, the verdict per segment from 04 and the plan's
returns from 05. A section a run does not have (an older run, a workbook left out) is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crmkit.core.i18n import Formatter, t
from crmkit.delivery.decision_page import believe


@dataclass
class Summary:
    """What the summary shows: headline cards and short statements, already in the language."""

    cards: list[tuple[str, str]] = field(default_factory=list)
    statements: list[str] = field(default_factory=list)
    verdicts: list[tuple[str, str, str]] = field(default_factory=list)  # segment, verdict, css

    def __bool__(self) -> bool:
        return bool(self.cards or self.statements)


VERDICT_CLASSES = {"invest": "good", "maintain": "neutral", "move_cheaper": "warn",
                   "win_back": "warn", "stop": "bad"}


def executive_summary(results: dict, fmt: Formatter) -> Summary:
    """Build the executive summary from a run's results.

    Parameters
    ----------
    results : dict
        The run's ``results.json``.
    fmt : Formatter
        The report's language and the client's currency.
    """
    lang = fmt.lang
    out = Summary()
    context = results.get("context")
    if context:
        objective = context["objective"]
        out.cards.append((t("sum_objective", lang),
                          t(f"objective_{objective['chosen']}_short", lang)))
        out.statements.append(t("sum_objective_text", lang,
                                objective=t(f"objective_{objective['chosen']}", lang).lower(),
                                points=objective["points"][objective["chosen"]]))
    segments = results.get("segments")
    if segments:
        counts = segments.get("assignment", {}).get("counts", {})
        named = [p for p in segments.get("profiles", []) if p.get("customers")]
        out.cards.append((t("sum_segments", lang), fmt.number(len(named) or len(counts))))
        if "total_clv" in segments:
            out.cards.append((t("sum_value", lang), fmt.money(segments["total_clv"])))
        leading = segments.get("leading")
        if leading:
            out.statements.append(t(
                "sum_leading_text", lang, name=leading["name"],
                customers=fmt.pct(leading["customer_share"]),
                revenue=fmt.pct(leading["revenue_share"])))
    cost_benefit = results.get("cost_benefit")
    if cost_benefit:
        for row in cost_benefit.get("segments", []):
            verdict = row.get("verdict")
            if verdict:
                out.verdicts.append((row.get("segment_name") or row.get("segment"),
                                     t(f"sum_verdict_{verdict}", lang),
                                     VERDICT_CLASSES.get(verdict, "neutral")))
    plan = results.get("implementation")
    if plan:
        decision = plan.get("decision")
        if decision:
            # The decision leads the page: the card first, its reasons and conditions first.
            out.cards.insert(0, (t("decision_label", lang), t(f"decision_{decision}", lang)))
            reasons = [r["text"] for r in plan.get("decision_reasons", []) if r.get("text")]
            defaults = (plan.get("cost_lines") or {}).get("default", 0)
            reasons += [t(f"decision_condition_{c}", lang, default=defaults)
                        for c in plan.get("decision_conditions", [])]
            out.statements[0:0] = reasons
            believe = _believe(plan.get("break_even"), fmt)
            if believe:
                out.cards.insert(1, (t("decision_break_even_label", lang), believe))
        if plan.get("npv") is not None:
            out.cards.append((t("sum_npv", lang), fmt.money(plan["npv"])))
        # payback_month is the index of the month (0 = the project's first month) from which
        # the cumulative cash flow stays positive: it pays back within payback_month + 1 months.
        payback = plan.get("payback_month")
        out.cards.append((t("sum_payback", lang),
                          t("sum_months", lang, months=payback + 1) if payback is not None
                          else t("sum_no_payback", lang)))
    return out


def _believe(break_even: dict | None, fmt: Formatter) -> str | None:
    """"What you must believe" in a few words: the decision page's own (its sign read right)."""
    return believe(break_even, fmt)
