"""The CRM implementation plan: schedule, costs, TCO, dip and ramp shapes, readiness, risks."""

import datetime as dt
import json

import pandas as pd
import pytest
from conftest import MINIMAL_CONFIG
from pydantic import ValidationError

from crmkit.core.i18n import Formatter, catalogue
from crmkit.core.problems import WorkspaceError
from crmkit.delivery.charts import plan as charts
from crmkit.planning import plan
from crmkit.settings.client import ClientConfig, load_config

AS_OF = dt.date(2026, 10, 31)
SCALE = plan.Scale(yearly_revenue=1_000_000.0, yearly_gross_margin=400_000.0, customers=5000)


def _config(crm_project=None, **extra):
    return ClientConfig.model_validate({**MINIMAL_CONFIG, "as_of": AS_OF,
                                        "crm_project": crm_project or {}, **extra})


def _plan(crm_project=None, scale=SCALE):
    return plan.build(_config(crm_project), scale)


# --- an empty section is a complete plan ------------------------------------------------------

def test_empty_section_gives_a_complete_plausible_plan():
    p = _plan({})
    assert list(p.phases["phase"]) == list(plan.PHASES)
    assert p.start_date == dt.date(2026, 11, 1)  # first day of the month after as_of
    assert list(p.phases["months"]) == [2, 2, 3, 1]
    assert p.go_live_month == 7 and p.go_live_date == dt.date(2027, 6, 1)
    assert p.horizon_months == 7 + 60  # go-live + five years (crm_project.horizon_months)
    assert p.discount_rate == 0.10
    totals = plan.costs_by_year(p)["total"]
    assert (totals > 0).all(), totals[totals <= 0]
    # The stated rule: 6.8 % of a year's revenue up front, 2 % a year to run.
    lines = p.lines.set_index("category")
    assert lines.drop(index="efficiency_dip")["one_off"].sum() == pytest.approx(68_000)
    assert lines["monthly"].sum() * 12 == pytest.approx(20_000)
    phases = plan.phase_table(p, "es")
    assert list(phases["name"]) == ["Análisis", "Diseño", "Estrategia de implantación",
                                    "Lanzamiento"]
    assert phases.loc[0, "finish"] == dt.date(2026, 12, 31)
    assert phases.loc[3, "depends_on"] == "Estrategia de implantación"


def test_default_costs_scale_with_revenue():
    small = _plan({}, plan.Scale(500_000.0, 200_000.0))
    large = _plan({}, plan.Scale(2_000_000.0, 800_000.0))
    assert large.costs["amount"].sum() == pytest.approx(4 * small.costs["amount"].sum(), rel=0.02)
    # A sample of the data can be scaled to the real business.
    real = _plan({"reference_revenue": 2_000_000}, plan.Scale(500_000.0, 200_000.0))
    assert real.reference_revenue == 2_000_000
    assert real.costs["amount"].sum() == pytest.approx(large.costs["amount"].sum())


def test_no_revenue_and_no_costs_given_is_a_clear_error():
    with pytest.raises(ValueError, match="reference_revenue"):
        _plan({}, plan.Scale(0.0, 0.0))


def test_start_date_is_required_somewhere():
    section = plan.CrmProject()
    with pytest.raises(ValueError, match="start_date"):
        plan.build(section, SCALE)
    p = plan.build(section, SCALE, as_of=dt.date(2026, 12, 15))
    assert p.start_date == dt.date(2027, 1, 1)
    assert plan.build({"start_date": "2027-03-01"}, SCALE).start_date == dt.date(2027, 3, 1)


def test_scale_from_transactions_annualises_the_window():
    customers = pd.DataFrame({"customer_id": ["a", "b"]})
    transactions = pd.DataFrame({
        "customer_id": ["a", "b", "a"],
        "date": pd.to_datetime(["2026-10-01", "2026-06-01", "2025-01-01"]),
        "amount": [100.0, 50.0, 999.0]})
    scale = plan.Scale.from_transactions(customers, transactions, AS_OF, window_months=6,
                                         gross_margin=0.4)
    assert scale.yearly_revenue == pytest.approx(300.0)
    assert scale.yearly_gross_margin == pytest.approx(120.0)
    assert scale.customers == 2


# --- phases ----------------------------------------------------------------------------------

def test_phases_in_weeks_with_dependencies_and_a_phase_of_our_own():
    p = _plan({"start_date": "2027-01-01", "phases": {
        "analysis": {"weeks": 6},
        "data_migration": {"label": "Data migration", "months": 2, "depends_on": ["analysis"]},
        "design": {"months": 3},
        "launch": {"depends_on": ["implementation_strategy", "data_migration"]}}})
    rows = p.phases.set_index("phase")
    assert rows.loc["analysis", "months"] == pytest.approx(6 * 12 / 52)
    assert rows.loc["data_migration", "start_month"] == pytest.approx(6 * 12 / 52)
    assert rows.loc["design", "start_month"] == pytest.approx(6 * 12 / 52)
    # launch waits for the later of implementation strategy and data migration.
    assert rows.loc["launch", "start_month"] == pytest.approx(6 * 12 / 52 + 3 + 3)
    assert p.go_live_month == 8  # 7.38 months, rounded up to a whole month
    assert rows.loc["analysis", "start"] == dt.date(2027, 1, 1)
    assert rows.loc["analysis", "finish"] == dt.date(2027, 2, 11)
    names = plan.phase_table(p, "en").set_index("phase")["name"]
    assert names["data_migration"] == "Data migration"


@pytest.mark.parametrize(("section", "message"), [
    ({"phases": {"design": {"depends_on": ["launch"]}}}, "circle"),
    ({"phases": {"design": {"depends_on": ["nope"]}}}, "not a phase"),
    ({"phases": {"pilot": {"months": 1}}}, "needs a label"),
    ({"phases": {"design": {"months": 1, "weeks": 2}}}, "not both"),
    ({"costs": {"software": {"one_off": 1, "phase": "nowhere"}}}, "not a phase"),
    ({"costs": {"sofware": {"one_off": 1}}}, "sofware"),
    ({"risks": {"flood": {"likelihood": 2}}}, "needs risk, impact"),
    ({"efficiency_dip": {"depth": 1.5}}, "less than or equal to 1"),
    ({"horizon": 36}, "Extra inputs are not permitted"),
])
def test_invalid_sections_are_rejected_with_a_clear_message(section, message):
    with pytest.raises(ValidationError, match=message):
        plan.CrmProject.model_validate(section)


def test_unknown_keys_in_client_yaml_are_named(make_workspace):
    root = make_workspace(config_overrides={"crm_project": {"costs": {"training": {
        "one_off": 100, "phse": "design"}}}})
    with pytest.raises(WorkspaceError) as caught:
        load_config(root)
    assert str(caught.value).count("\n  - ") == 1
    assert "key 'crm_project.costs.training.phse' is not a known setting" in str(caught.value)


def test_a_config_loads_with_an_empty_section(make_workspace):
    config = load_config(make_workspace(config_overrides={"crm_project": {}}))
    assert isinstance(config.crm_project, plan.CrmProject)


# --- costs -------------------------------------------------------------------------------------

def test_cost_categories_sum_to_the_tco():
    p = _plan({"costs": {"software": {"one_off": 10_000}},
               "extra_costs": [{"category": "software", "monthly": 500, "recurring_from": "start",
                                "note": "pilot licence"}]})
    lines = plan.cost_lines(p, "en")
    software = lines[lines["category"] == "software"]
    assert len(software) == 2 and list(software.index) == [3, 4]
    assert software["total"].iloc[0] == pytest.approx(10_000 + 500 * p.horizon_months)
    assert pd.isna(software["total"].iloc[1])
    by_year = plan.costs_by_year(p)
    tco = plan.tco(p)
    total = p.costs["amount"].sum()
    assert by_year["total"].sum() == pytest.approx(total)
    assert tco["total"].sum() == pytest.approx(total)
    assert tco["cumulative"].iloc[-1] == pytest.approx(total)
    for year in tco["year"]:
        assert tco.set_index("year").loc[year, "total"] == pytest.approx(by_year[year].sum())
    assert (tco[["one_off", "recurring", "efficiency_dip"]].sum(axis=1).to_numpy()
            == pytest.approx(tco["total"].to_numpy()))
    assert list(tco["months"]) == [12, 12, 12, 12, 12, 7]
    assert plan.monthly_costs(p).to_numpy().sum() == pytest.approx(total)
    assert set(by_year.index) == set(plan.CATEGORIES)


def test_a_listed_category_replaces_its_default_amounts_and_keeps_its_timing():
    p = _plan({"costs": {"software": {"yearly": 6000, "note": "SaaS"},
                         "hardware": {"one_off": 1200, "month": 5},
                         "training": {"one_off": 3000, "phase": "launch"}}})
    software = p.costs[p.costs["category"] == "software"]
    assert set(software["kind"]) == {"recurring"}  # no default one-off licence
    assert software["month"].min() == p.go_live_month
    assert software["amount"].to_numpy() == pytest.approx(500.0)
    hardware = p.costs[p.costs["category"] == "hardware"]
    assert list(hardware["month"]) == [5] and list(hardware["amount"]) == [1200]
    training = p.costs[p.costs["category"] == "training"]
    assert list(training["month"]) == [7] and list(training["amount"]) == [3000]
    lines = plan.cost_lines(p, "en").set_index("category")
    assert lines.loc["software", "source"] == "client.yaml"
    assert lines.loc["software", "note"] == "SaaS"
    assert lines.loc["software", "yearly"] == pytest.approx(6000)
    assert lines.loc["hardware", "when"] == "month 6"
    assert lines.loc["analysis", "source"] == "default"


def test_a_one_off_is_spread_evenly_over_its_phase():
    p = _plan({"costs": {"design": {"one_off": 9000}}, "phases": {"design": {"months": 3}}})
    design = p.costs[p.costs["category"] == "design"]
    assert list(design["month"]) == [2, 3, 4]
    assert design["amount"].to_numpy() == pytest.approx(3000)
    pm = p.costs[p.costs["category"] == "project_management"]
    assert list(pm["month"]) == list(range(0, 9))  # the whole project, 9 months


# --- the efficiency dip and the ramp-up ----------------------------------------------------------

def test_efficiency_dip_is_deepest_at_go_live_and_recovers_linearly():
    p = _plan({"efficiency_dip": {"depth": 0.2, "months": 4, "staff_cost_yearly": 120_000}})
    dip = plan.monthly_costs(p)["efficiency_dip"]
    monthly = 0.2 * 120_000 / 12  # 2000 at the worst
    expected = [monthly * 4 / 4, monthly * 3 / 4, monthly * 2 / 4, monthly * 1 / 4]
    assert dip.iloc[7:11].to_numpy() == pytest.approx(expected)
    assert dip.drop(index=range(7, 11)).sum() == 0
    assert dip.sum() == pytest.approx(monthly * (4 + 1) / 2)


def test_efficiency_dip_flat_on_gross_margin_and_off():
    p = _plan({"efficiency_dip": {"depth": 0.05, "months": 2, "basis": "gross_margin",
                                  "shape": "flat"}})
    dip = plan.monthly_costs(p)["efficiency_dip"]
    assert dip.iloc[7:9].to_numpy() == pytest.approx(0.05 * 400_000 / 12)
    assert dip.sum() == pytest.approx(2 * 0.05 * 400_000 / 12)
    off = _plan({"efficiency_dip": {"months": 0}})
    assert plan.monthly_costs(off)["efficiency_dip"].sum() == 0
    # The default: 15 % of 12 % of revenue (rounded) over 3 months, linear.
    default = plan.monthly_costs(_plan())["efficiency_dip"]
    assert default.iloc[7] == pytest.approx(0.15 * 120_000 / 12)
    assert default.sum() == pytest.approx(0.15 * 120_000 / 12 * 2)


def test_benefits_ramp_up_linearly_after_go_live():
    p = _plan()
    schedule = plan.benefit_schedule(p, [plan.Benefit("retention", 12_000, 4),
                                         plan.Benefit("fast", 2_400, 0, start=10),
                                         plan.Benefit("default ramp", 1_200)])
    retention = schedule["retention"]
    assert (retention.iloc[:7] == 0).all()
    assert retention.iloc[7:12].to_numpy() == pytest.approx([250, 500, 750, 1000, 1000])
    assert (retention.iloc[11:] == 1000).all()
    assert (schedule["fast"].iloc[:10] == 0).all() and schedule["fast"].iloc[10] == 200
    ramped = schedule["default ramp"]  # crm_project.benefits.ramp_months: 6
    assert ramped.iloc[7:14].to_numpy() == pytest.approx([100 * k / 6 for k in range(1, 7)]
                                                          + [100])
    assert list(plan.ramp(5, 0)) == [1, 1, 1, 1, 1]


def test_benefits_can_come_from_client_yaml():
    p = _plan({"benefits": {"ramp_months": 2, "items": [
        {"name": "retention", "yearly_amount": 24_000}]}})
    schedule = plan.benefit_schedule(p)
    assert schedule["retention"].iloc[7:10].to_numpy() == pytest.approx([1000, 2000, 2000])


# --- readiness, risks, components --------------------------------------------------------------

def test_readiness_defaults_from_context_and_overrides():
    ready = plan.readiness(_config(), "en").set_index("dimension")
    # MINIMAL_CONFIG: people 4, operational 3, technological 2.
    assert ready.loc["people", "score"] == 4 and ready.loc["people", "source"] == "context.people"
    assert ready.loc["process", "score"] == 3
    assert ready.loc["process", "source"] == "context.operational"
    assert ready.loc["technology", "score"] == 2 and ready.loc["technology", "reading"] == "limit"
    own = plan.readiness(_config({"readiness": {"technology": {"score": 5, "note": "new ERP"}}}),
                         "es").set_index("dimension")
    assert own.loc["technology", "score"] == 5 and own.loc["technology", "source"] == "crm_project"
    assert own.loc["technology", "name"] == "Tecnología"
    assert own.attrs["index"] == pytest.approx((4 + 3 + 5) / 3 / 4 - 0.25)


def test_risk_register_in_both_languages_adjusted_to_readiness():
    en = plan.risk_register(_config(), "en").set_index("risk_key")
    es = plan.risk_register(_config(), "es").set_index("risk_key")
    assert set(en.index) == set(plan.DEFAULT_RISKS)
    for key in en.index:
        assert en.loc[key, "risk"] != es.loc[key, "risk"]
        assert en.loc[key, "mitigation"] and es.loc[key, "mitigation"]
        assert en.loc[key, "owner"] and es.loc[key, "owner"]
    assert en.loc["procedures_not_formalised", "risk"].startswith("Procedures were never")
    # Technology scored 2: data quality one step more likely than its base 3.
    assert en.loc["data_quality", "likelihood"] == 4
    # People scored 4: staff buy-in one step less likely.
    assert en.loc["staff_buy_in", "likelihood"] == 2
    assert (en["score"] == en["likelihood"] * en["impact"]).all()
    assert en.loc["data_quality", "level"] == "high"  # 16
    assert list(en["number"]) == list(range(1, len(en) + 1))


def test_risk_register_is_overridable_and_extendable():
    register = plan.risk_register(_config({"risks": {
        "vendor_lock_in": {"include": False},
        "gdpr_consent": {"likelihood": 5, "owner": "Ana (DPO)"},
        "key_person": {"risk": "Only Ana knows the till system", "likelihood": 4, "impact": 4,
                       "mitigation": "Document it", "owner": "IT"}}}), "en").set_index("risk_key")
    assert "vendor_lock_in" not in register.index
    assert register.loc["gdpr_consent", "likelihood"] == 5
    assert register.loc["gdpr_consent", "owner"] == "Ana (DPO)"
    assert register.loc["gdpr_consent", "source"] == "client.yaml"
    assert register.loc["key_person", "score"] == 16
    assert register.index[0] in ("gdpr_consent", "key_person")  # 25 and 16 are the top scores


def test_components_rule_table():
    weak = plan.components_first("retain", ["personal_assistance"], "en", technology_score=2)
    assert weak.first == "operational"
    assert list(weak.rules["rule"]) == ["objective_retain", "gap_personal", "technology_low"]
    assert weak.ranking.set_index("component")["points"].to_dict() == {
        "operational": 4, "analytical": 1, "collaborative": 2}
    assert weak.sentence.startswith("Start with the operational component (4 points)")
    strong = plan.components_first("grow", None, "es", technology_score=5)
    assert strong.first == "analytical"
    assert strong.sentence.startswith("Empezar por el componente analítico")
    # A gap matrix (current − expected) and a segment → gap mapping are read too.
    matrix = pd.DataFrame({"self_service": [-0.3, 0.1], "communities": [-0.2, 0.0],
                           "personal_assistance": [0.5, -0.05]}, index=["a", "b"])
    by_matrix = plan.components_first("attract", matrix, "en")
    assert by_matrix.types_to_strengthen == ["self_service", "communities"]
    assert by_matrix.first == "collaborative"
    by_segment = plan.components_first("retain", {"champions": 0.4, "loyal": 0.05}, "en")
    assert "gap_segments" in list(by_segment.rules["rule"])
    assert "1 segment(s)" in by_segment.rules.set_index("rule").loc["gap_segments", "reason"]
    with pytest.raises(ValueError, match="relationship types"):
        plan.components_first("retain", ["websites"], "en")
    with pytest.raises(ValueError, match="objective"):
        plan.components_first("conquer", None, "en")


# --- results.json and charts --------------------------------------------------------------------

def test_summary_dict_is_plain_json():
    from crmkit.planning import finance

    config = _config()
    p = plan.build(config, SCALE)
    returns = finance.evaluate(p, [plan.Benefit("retention", 60_000, 6)])
    summary = plan.summary_dict(p, returns, plan.readiness(config, "en"),
                                plan.risk_register(config, "en"),
                                components=plan.components_first("retain", None, "en"))
    again = json.loads(json.dumps(summary))
    assert again == summary
    assert again["start_date"] == "2026-11-01" and again["go_live_month"] == 7
    assert [ph["phase"] for ph in again["phases"]] == list(plan.PHASES)
    assert again["total_cost"] == pytest.approx(sum(y["total"] for y in again["tco_per_year"]),
                                                abs=0.05)
    assert again["total_cost"] == pytest.approx(sum(again["costs_by_category"].values()),
                                                abs=0.05)
    assert again["readiness"] == {"people": 4, "process": 3, "technology": 2}
    assert len(again["top_risks"]) == 5 and again["top_risks"][0]["score"] >= 12
    assert again["npv"] == pytest.approx(returns.npv, abs=0.01)
    assert again["components"]["first"] in plan.COMPONENTS
    no_payback = plan.summary_dict(p, finance.evaluate(p, []))
    assert no_payback["payback_month"] is None and no_payback["irr_yearly"] is None


@pytest.mark.parametrize("lang", ["en", "es"])
def test_charts_are_titled_labelled_and_in_the_currency(lang):
    from crmkit.planning import automation, finance

    fmt = Formatter(lang, "EUR")
    config = _config()
    p = plan.build(config, SCALE)
    benefits = [plan.Benefit("retention", 60_000, 6)]
    flows = finance.cash_flows(p, benefits)
    customers = pd.DataFrame({"customer_id": ["1", "2", "3"], "segment": ["a", "a", "b"],
                              "segment_name": ["<b>A</b>", "<b>A</b>", "B"],
                              "margin_window": [100.0, 200.0, 50.0],
                              "probability_alive": [0.9, 0.5, 0.2]})
    level2 = automation.level2(customers, fmt, send_date=p.go_live_date)
    figures = {
        "timeline": charts.timeline(p, fmt),
        "costs": charts.costs(p, fmt),
        "cash": charts.cumulative_cash_flow(flows, finance.returns(flows), fmt),
        "tornado": charts.npv_tornado(finance.sensitivity(p, benefits), fmt),
        "readiness": charts.readiness(plan.readiness(config, lang), fmt),
        "risks": charts.risk_matrix(plan.risk_register(config, lang), fmt),
        "offers": charts.offer_roi(level2.segments, fmt),
    }
    titles = {t_["en" if lang == "en" else "es"] for t_ in catalogue().values()}
    for name, fig in figures.items():
        assert fig.layout.title.text in titles, name
        assert fig.layout.xaxis.title.text, name
        assert fig.layout.separators == fmt.plotly_separators()
    money = figures["costs"].layout.yaxis
    if lang == "es":
        assert money.ticksuffix == "\xa0€" and "Coste (€)" == money.title.text
    else:
        assert money.tickprefix == "€" and money.title.text == "Cost (€)"
    assert figures["cash"].layout.xaxis.type == "date"
    assert any("Payback" in (a.text or "") or "Recuperación" in (a.text or "")
               for a in figures["cash"].layout.annotations)
    assert "&lt;b&gt;A&lt;/b&gt;" in list(figures["offers"].data[0].y)
    assert figures["costs"].data[-1].x[-1].endswith(("(7 months)", "(7 meses)"))


def test_cash_flow_chart_says_when_there_is_no_payback():
    from crmkit.planning import finance

    p = _plan()
    flows = finance.cash_flows(p, [])
    fig = charts.cumulative_cash_flow(flows, finance.returns(flows), Formatter("en"))
    assert any("no payback within" in (a.text or "") for a in fig.layout.annotations)


EXAMPLE = """
crm_project:
  start_date: 2027-01-01          # default: first day of the month after as_of
  horizon_months: 36              # evaluated after go-live; default assumptions.horizon_months
  discount_rate: 0.09             # yearly; default assumptions.discount_rate
  reference_revenue: 2500000      # yearly revenue the default costs scale with
  phases:
    analysis: {weeks: 6}
    design: {months: 2}
    implementation_strategy: {months: 3}
    data_migration: {label: "Data migration", months: 2, depends_on: [design]}
    launch: {months: 1, depends_on: [implementation_strategy, data_migration]}
  costs:
    software: {one_off: 8000, yearly: 9600, note: "Cloud CRM, 20 users, vendor quote 2026-09"}
    hardware: {one_off: 3000, month: 4}
    training: {one_off: 6000, phase: launch}
    maintenance: {monthly: 250, recurring_from: launch}
  extra_costs:
    - {category: software, yearly: 1200, note: "e-mail marketing tool"}
  efficiency_dip: {depth: 0.2, months: 4, basis: staff_cost, staff_cost_yearly: 300000}
  benefits:
    ramp_months: 6
    items:
      - {name: "Retention gains", yearly_amount: 60000, ramp_months: 9}
  readiness:
    technology: {score: 2, note: "Till data not linked to e-mail"}
  risks:
    gdpr_consent: {likelihood: 4, owner: "Ana Ruiz (DPO)"}
    key_person: {risk: "Only one person knows the till system", likelihood: 3, impact: 4,
                 mitigation: "Document the till export", owner: "IT"}
  automation:
    interest_attribute: favourite_category
    messages:
      garden: {en: "Spring is here: seeds and tools", es: "Llega la primavera: semillas"}
    offer_defaults: {redemption_rate: 0.1, uplift: 0.15, deadline_days: 30}
    offers:
      at_risk: {coupon_value: 15, redemption_rate: 0.08}
"""


def test_the_documented_example_loads_and_builds(make_workspace):
    import yaml

    section = yaml.safe_load(EXAMPLE)["crm_project"]
    config = load_config(make_workspace(config_overrides={"crm_project": section,
                                                          "as_of": "2026-10-31"}))
    p = plan.build(config, SCALE)
    assert p.start_date == dt.date(2027, 1, 1) and p.discount_rate == 0.09
    assert p.reference_revenue == 2_500_000
    assert "data_migration" in list(p.phases["phase"])
    assert plan.benefit_schedule(p).columns.tolist() == ["Retention gains"]
    assert "key_person" in set(plan.risk_register(config, "en")["risk_key"])


# --- benefits from the scenarios of workbook 04 ----------------------------------------------

def _scenario_model():
    """Two segments; gold is served by personal assistance (1 a minute), basic by self-service."""
    import numpy as np

    from crmkit.relationships.inventory import TYPES
    from crmkit.relationships.scenarios import ScenarioModel

    minutes = np.zeros((2, len(TYPES)))
    interactions = np.zeros((2, len(TYPES)))
    pa, ss = TYPES.index("personal_assistance"), TYPES.index("self_service")
    minutes[0, pa], interactions[0, pa] = 100.0, 10.0
    minutes[1, ss], interactions[1, ss] = 50.0, 10.0
    rate = np.zeros(len(TYPES))
    rate[pa], rate[ss] = 1.0, 0.2
    mpi = np.full(len(TYPES), 5.0)
    variable = minutes * rate
    return ScenarioModel(segments=["gold", "basic"], names=["Gold", "Basic"], customers=[2, 3],
                         minutes=minutes, interactions=interactions, variable_cost=variable,
                         rate=rate, fixed=np.zeros(len(TYPES)), minutes_per_interaction=mpi,
                         margin=[300.0, 40.0], revenue=[600.0, 100.0], clv=[750.0, 60.0],
                         retention=[0.8, 0.5], discount_rate=0.1, horizon_years=3.0)


def _lifetime(r, d=0.1, years=3):
    return sum((r / (1 + d)) ** k for k in range(years))


def test_a_cheaper_relationship_is_a_yearly_saving_with_no_retention_effect():
    from crmkit.relationships.scenarios import Scenario

    model = _scenario_model()
    cheaper = Scenario(name="Cheaper calls", changes=[
        {"kind": "cost", "type": "personal_assistance", "change": -0.25}])
    frame = plan.scenario_benefits(model, [cheaper])
    row = frame.iloc[0]
    assert row["cost_change"] == pytest.approx(-25.0)  # 100 minutes a year at 1 → 0.75
    assert row["profit_change"] == pytest.approx(25.0)
    assert row["retention_effect"] == 0.0
    assert row["yearly_benefit"] == pytest.approx(25.0) and row["counted"]
    [benefit] = plan.benefits_from_scenarios(model, [cheaper])
    assert benefit == plan.Benefit("Cheaper calls", pytest.approx(25.0), None, "launch")


def test_retention_counts_as_profit_kept_longer_and_a_discount_rate_is_no_cash():
    from crmkit.relationships.scenarios import Scenario

    model = _scenario_model()
    keep = Scenario(name="Keep gold", changes=[{"retention": {"segment": "gold", "change": 0.05}},
                                               {"discount_rate": {"rate": 0.3}}])
    row = plan.scenario_benefits(model, [keep]).iloc[0]
    gold_profit = 300.0 - 100.0  # margin − cost to serve, a year
    expected = gold_profit * (_lifetime(0.85) / _lifetime(0.8) - 1)
    assert row["profit_change"] == 0.0
    assert row["retention_effect"] == pytest.approx(expected, rel=1e-12)
    assert row["yearly_benefit"] == pytest.approx(expected, rel=1e-12)
    # A segment that loses money per customer loses more when it is kept longer.
    losing = Scenario(name="Keep basic", changes=[
        {"margin": {"segment": "basic", "change": -0.9}},
        {"retention": {"segment": "basic", "change": 0.2}}])
    row = plan.scenario_benefits(model, [losing]).iloc[0]
    basic_profit = 40.0 * 0.1 - 10.0
    assert row["profit_change"] == pytest.approx(-36.0)
    assert row["retention_effect"] == pytest.approx(
        basic_profit * (_lifetime(0.7) / _lifetime(0.5) - 1))
    assert row["yearly_benefit"] < row["profit_change"]


def test_a_scenario_repeating_smaller_ones_is_shown_but_not_counted():
    from crmkit.relationships.scenarios import Scenario

    model = _scenario_model()
    a = {"cost": {"type": "personal_assistance", "change": -0.1}}
    b = {"retention": {"segment": "basic", "change": 0.05}}
    listed = [Scenario(name="A", changes=[a]), Scenario(name="B", changes=[b]),
              Scenario(name="A and B", changes=[a, b])]
    frame = plan.scenario_benefits(model, listed, lang="es")
    assert list(frame["counted"]) == [True, True, False]
    assert list(frame["counted_name"]) == ["sí", "sí", "no: repite otros escenarios"]
    assert [b.name for b in plan.benefits_from_scenarios(model, listed)] == ["A", "B"]
    figures = plan.benefit_figures(frame)
    assert figures["counted"] == 2 and figures["not_counted"] == 1
    assert figures["yearly_total"] == pytest.approx(frame["yearly_benefit"].iloc[:2].sum())
    # Two scenarios that are alternatives of the same size are both counted.
    twins = [Scenario(name="A", changes=[a]), Scenario(name="A again", changes=[a])]
    assert list(plan.scenario_benefits(model, twins)["counted"]) == [True, True]


def test_client_yaml_benefits_are_added_with_their_own_ramp():
    from crmkit.planning import finance
    from crmkit.relationships.scenarios import Scenario

    model = _scenario_model()
    p = _plan({"benefits": {"ramp_months": 4, "items": [
        {"name": "Campaign sales", "yearly_amount": 12000, "ramp_months": 0}]}})
    cheaper = Scenario(name="Cheaper calls", changes=[
        {"cost": {"type": "personal_assistance", "change": -0.25}}])
    frame = plan.scenario_benefits(model, [cheaper], plan=p, lang="en")
    assert list(frame["origin"]) == ["scenario", "client.yaml"]
    assert list(frame["origin_name"]) == ["Scenario of chapter 4", "Agreed with the client"]
    benefits = plan.benefits_from_scenarios(model, [cheaper], plan=p)
    assert benefits[1] == plan.Benefit("Campaign sales", 12000.0, 0, "launch")
    flows = finance.cash_flows(p, benefits)
    live = flows.loc[p.go_live_month:, "benefits"].to_numpy()
    assert live[0] == pytest.approx(1000 + 25 / 12 / 4)  # the item at once, the scenario ramps
    assert live[5] == pytest.approx(1000 + 25 / 12)
    assert plan.benefit_figures(frame, p)["ramp_months"] == 4
    # Without any scenario or item there is nothing to count.
    empty = plan.scenario_benefits(model, [])
    assert empty.empty and plan.benefit_figures(empty)["largest"] is None
    assert plan.benefits_from_scenarios(model, []) == []


def test_plan_charts_show_themselves_as_plotly_json():
    import plotly.graph_objects as go
    import plotly.io as pio

    fig = charts.timeline(_plan(), Formatter("en"))
    from crmkit.delivery.charts import Chart

    assert isinstance(fig, Chart) and isinstance(fig, go.Figure)
    bundle = fig._repr_mimebundle_()
    assert list(bundle) == [charts.PLOTLY_MIME]
    spec, plain = bundle[charts.PLOTLY_MIME], json.loads(pio.to_json(fig))
    assert spec["data"] == plain["data"] and "config" in spec  # the toolbar's config is added
    assert go.Figure(fig).to_dict() == fig.to_dict()
