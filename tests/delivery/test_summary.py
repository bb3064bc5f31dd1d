"""The executive summary states this run's figures, in the report's language."""

from crmkit.core.i18n import Formatter
from crmkit.delivery.summary import executive_summary

RESULTS = {
    "context": {"objective": {"chosen": "retain", "recommended": "retain",
                              "points": {"attract": 1, "retain": 7, "grow": 2}}},
    "segments": {"assignment": {"counts": {"champions": 10, "loyal": 20, "other": 0}},
                 "profiles": [{"segment": "champions", "customers": 10},
                              {"segment": "loyal", "customers": 20}],
                 "total_clv": 123456.7,
                 "leading": {"name": "Champions", "customer_share": 0.12,
                             "revenue_share": 0.38}},
    "cost_benefit": {"segments": [{"segment": "champions", "segment_name": "Champions",
                                   "verdict": "invest"},
                                  {"segment": "hibernating", "segment_name": "Hibernating",
                                   "verdict": "move_cheaper"}]},
    "implementation": {"npv": 250000.0, "payback_month": 19},
}


def test_english_summary_has_the_runs_figures():
    summary = executive_summary(RESULTS, Formatter("en", "EUR"))
    cards = dict(summary.cards)
    assert cards["Objective"] == "Retain"
    assert cards["Segments"] == "2"
    assert cards["Expected value of the base"] == "€123,457"
    assert cards["Payback"] == "20 months"  # payback_month is an index: month 0 is the first
    assert "Champions are 12% of customers and bring 38% of revenue." in summary.statements
    assert ("Hibernating", "Move to a cheaper relationship", "warn") in summary.verdicts


def test_spanish_summary_and_a_plan_without_payback():
    results = {**RESULTS, "implementation": {"npv": -5000.0, "payback_month": None}}
    summary = executive_summary(results, Formatter("es", "EUR"))
    cards = dict(summary.cards)
    assert cards["Objetivo"] == "Retener"
    assert cards["Recuperación de la inversión"] == "No dentro del horizonte"
    assert cards["Valor actual neto del proyecto CRM"] == "-5.000\xa0€"


def test_a_run_without_results_has_no_summary():
    assert not executive_summary({}, Formatter("en", "EUR"))


def test_the_decision_leads_the_summary_with_what_you_must_believe():
    plan = {"npv": 12000.0, "payback_month": 30, "decision": "go_with_conditions",
            "decision_reasons": [{"reason": "npv_positive",
                                  "text": "Over the 60 months the net present value is €12,000."}],
            "decision_conditions": ["replace_default_costs"], "cost_lines": {"default": 3,
                                                                             "total": 10},
            "break_even": {"lever": "retention", "value": 1.25, "unit": "points"}}
    summary = executive_summary({**RESULTS, "implementation": plan}, Formatter("en", "EUR"))
    assert summary.cards[0] == ("Decision", "Go, with conditions")
    assert summary.cards[1] == ("What you must believe", "retention 1.2 points higher")
    assert summary.statements[:2] == [
        "Over the 60 months the net present value is €12,000.",
        "Condition: replace the 3 default cost lines with suppliers' quotes before signing."]
    spanish = executive_summary({**RESULTS, "implementation": {**plan, "decision": "no_go"}},
                                Formatter("es", "EUR"))
    assert spanish.cards[0] == ("Decisión", "No seguir")


def test_a_break_even_below_zero_reads_as_a_fall_not_a_negative_rise():
    plan = {"npv": 25765.0, "payback_month": 30, "decision": "go",
            "break_even": {"lever": "retention", "value": -0.0752, "unit": "points"}}
    summary = executive_summary({**RESULTS, "implementation": plan}, Formatter("en", "EUR"))
    assert summary.cards[1] == ("What you must believe",
                                "retention falls by no more than 0.1 points")
