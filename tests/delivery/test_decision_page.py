"""The one-page decision: this run's figures, the catalogue's words, never contradicting itself."""

import html as htmllib
import re

import pytest

from crmkit.core.i18n import Formatter, t
from crmkit.delivery.decision_page import believe, break_even_text, decision_page, segment_rows
from crmkit.settings.project import DecisionSettings

HOSTILE = '<script>alert("x")</script>'


def _results(decision="go", **plan):
    return {
        "context": {"objective": {"chosen": "retain", "overridden": False,
                                  "points": {"attract": 1, "retain": 7, "grow": 2}}},
        "segments": {
            "horizon_months": 36, "total_clv": 500000.0,
            "assignment": {"counts": {"champions": 10, "loyal": 20, "hibernating": 5}},
            # the map's order: champions, loyal, hibernating
            "profiles": [{"segment": "champions", "customers": 10},
                         {"segment": "loyal", "customers": 20},
                         {"segment": "hibernating", "customers": 5}],
            "leading": {"name": "Champions", "customer_share": 0.1, "revenue_share": 0.4}},
        "cost_benefit": {"horizon_years": 3.0, "segments": [
            # deliberately not in the map's order
            {"segment": "hibernating", "segment_name": "Hibernating", "verdict": "move_cheaper",
             "main_type": "dedicated_personal_assistance", "cheaper_type": "self_service",
             "impact": 313.2},
            {"segment": "loyal", "segment_name": HOSTILE, "verdict": "maintain",
             "main_type": "personal_assistance", "impact": 54602.1},
            {"segment": "champions", "segment_name": "Champions", "verdict": "invest",
             "main_type": "dedicated_personal_assistance", "impact": 339273.7}]},
        "implementation": {
            "decision": decision, "npv": 25765.13, "horizon_months": 67, "payback_month": 30,
            "npv_low_benefits": 9541.92, "npv_high_costs": 15026.21,
            "break_even": {"lever": "retention", "value": 1.24, "unit": "points",
                           "planned": 3.0},
            "decision_conditions": [], "cost_lines": {"total": 10, "default": 0}, **plan}}


def plain(page: str) -> str:
    # \xa0 (between a figure and its € or %) is kept: it is part of the formatted figure
    return re.sub(r"[ \t\n]+", " ", htmllib.unescape(re.sub(r"<[^>]+>", " ", page))).strip()


def test_a_go_states_the_runs_figures_in_the_catalogues_words():
    page = decision_page(_results(), "en")
    text = plain(page)
    assert "The objective: retain current customers" in text
    assert "Go Carry out the CRM project as planned" in text
    assert "€25,765 Net present value of the CRM project" in text
    assert "31 months Payback" in text  # payback_month 30 is the 31st month
    assert "retention 1.2 points higher What you must believe" in text
    assert ("The project breaks even if yearly retention on the targeted segments rises by 1.2 "
            "points (the plan assumes 3.0).") in text
    assert ("With every benefit 20% lower the net present value would be €9,542; with every "
            "cost 20% higher, €15,026.") in text
    assert t("decision_reason_npv_positive", "en", npv="€25,765", months=67) in text
    assert "At stake over 3 years" in text
    assert "Conditions" not in text  # a plain go has none


def test_segments_follow_the_maps_order_with_their_relationship_and_impact():
    rows = segment_rows(_results(), Formatter("en", "EUR"))
    assert [r["segment"] for r in rows] == ["champions", "loyal", "hibernating"]
    assert rows[2]["relationship"] == "Dedicated personal assistance → Self-service"
    assert rows[2]["verdict_label"] == "Move to a cheaper relationship"
    assert rows[0]["impact"] == "€339,274"


def test_client_text_is_escaped():
    page = decision_page(_results(), "en")
    assert HOSTILE not in page
    assert htmllib.escape(HOSTILE) in page


def test_conditions_and_placeholder_costs_are_named():
    results = _results("go_with_conditions", npv_high_costs=-1200.0,
                       decision_conditions=["replace_default_costs"],
                       cost_lines={"total": 10, "default": 7})
    text = plain(decision_page(results, "en"))
    assert "Go, with conditions" in text
    assert ("Condition: replace the 7 default cost lines with suppliers' quotes before signing."
            in text)
    assert ("7 of the 10 cost lines are default estimates, to be replaced with suppliers' quotes."
            in text)
    assert "with every cost 20% higher, -€1,200." in text


@pytest.mark.parametrize("lang", ["en", "es"])
def test_a_no_go_never_says_invest_or_go(lang):
    results = _results("no_go", npv=-85700.0, payback_month=None, npv_low_benefits=-99000.0,
                       npv_high_costs=-101000.0)
    text = plain(decision_page(results, lang))
    assert t("decision_no_go", lang) in text
    assert t("sum_no_payback", lang) in text
    # "Invest" / "Invertir" and the other decisions would contradict the no-go.
    for key in ("rel_verdict_invest", "sum_verdict_invest", "decision_go",
                "decision_go_with_conditions", "dp_meaning_go"):
        assert t(key, lang) not in text, key
    assert t("dp_verdict_invest_no_go", lang) in text
    fmt = Formatter(lang, "EUR")
    assert t("decision_reason_npv_negative", lang, npv=fmt.money(-85700.0), months=67) in text


@pytest.mark.parametrize("decision", ["go", "go_with_conditions", "no_go"])
def test_the_page_names_one_decision_only(decision):
    text = plain(decision_page(_results(decision), "en"))
    named = [d for d in ("No go", "Go, with conditions") if d in text]
    meaning = [d for d in ("go", "go_with_conditions", "no_go")
               if t(f"dp_meaning_{d}", "en") in text]
    assert meaning == [decision]
    assert named == ({"go": [], "go_with_conditions": ["Go, with conditions"],
                      "no_go": ["No go"]}[decision])


def test_spanish_page_reads_in_spanish_with_spanish_figures():
    text = plain(decision_page(_results(), "es"))
    assert "La decisión en una página" in text and "Adelante" in text
    assert "25.765\xa0€ Valor actual neto del proyecto CRM" in text
    assert "31 meses" in text
    assert "En juego en 3 años" in text
    assert "The decision" not in text and "Payback" not in text


def test_the_margins_of_the_sensitivity_are_the_clients():
    text = plain(decision_page(_results(), "en", margins=DecisionSettings(benefit_margin=0.3,
                                                                         cost_margin=0.1)))
    assert "With every benefit 30% lower" in text and "with every cost 10% higher" in text


def test_break_even_reads_the_way_of_its_sign():
    fmt = Formatter("en", "EUR")
    fall = {"lever": "retention", "value": -0.0752, "planned": 3.0}
    assert believe(fall, fmt) == "retention falls by no more than 0.1 points"
    assert "falls by 0.1 points" in break_even_text(fall, fmt)
    assert believe({"lever": "scale", "value": 1.3}, fmt) == "1.30 × the planned benefits"
    assert believe({"lever": "retention", "value": None}, fmt) is None
    assert break_even_text({"lever": "scale", "value": None}, fmt) == t(
        "decision_break_even_none", "en")


def test_without_a_decision_there_is_no_page():
    assert decision_page({}, "en") == ""
    assert decision_page({"implementation": {"npv": 1.0}}, "en") == ""
