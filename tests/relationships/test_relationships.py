"""Relationship types: the catalogue, client.yaml's section, the inventory, expectations, gap,
the four questions, and their charts in both languages."""

import math

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from relationship_case import CONFIG as CASE_CONFIG
from relationship_case import customers_table, interactions_log

from crmkit.core.i18n import LANGUAGES, Formatter, catalogue
from crmkit.core.problems import WorkspaceError
from crmkit.delivery.charts import relationships as charts
from crmkit.inputs.workspace import RELATIONSHIP_TYPES
from crmkit.relationships import cost_to_serve, questions
from crmkit.relationships import inventory as relationships
from crmkit.relationships.inventory import TYPES, RelationshipsConfig
from crmkit.settings.client import ClientConfig, load_config

CONFIG = {**CASE_CONFIG,
          "expected": {"gold": "dedicated_personal_assistance"},
          "fit": {"gold": "Core of the business"}}


def survey_answers() -> pd.DataFrame:
    return pd.DataFrame({"customer_id": ["A", "B", "C"], "satisfaction": [5, 4, 2],
                         "preferred_relationship": ["personal_assistance",
                                                    "dedicated_personal_assistance",
                                                    "self_service"]})


# --- the catalogue -----------------------------------------------------------------------------

def test_catalogue_has_the_contract_types_in_both_languages():
    types = relationships.catalogue()
    assert tuple(types) == TYPES == RELATIONSHIP_TYPES
    for entry in types.values():
        for lang in LANGUAGES:
            assert entry.name[lang].strip() and entry.description[lang].strip()
        assert entry.channels
        assert set(entry.drivers) == set(relationships.DRIVER_FIELDS)
        assert all(v >= 0 for v in entry.drivers.values())


def test_service_ladder_ends_and_steps_down_in_cost():
    drivers = relationships.drivers()
    for key in TYPES:
        seen, step = {key}, drivers.loc[key, "step_down"]
        while step is not None:
            assert step not in seen
            seen.add(step)
            step = drivers.loc[step, "step_down"]
    for key in TYPES:
        step = drivers.loc[key, "step_down"]
        if step is not None:
            assert (drivers.loc[step, "variable_cost_per_customer"]
                    < drivers.loc[key, "variable_cost_per_customer"])


def test_type_names_follow_the_language():
    assert relationships.type_name("self_service", "es") == "Autoservicio"
    assert relationships.type_names("en")["co_creation"] == "Co-creation"


# --- client.yaml ---------------------------------------------------------------------------------

def test_drivers_apply_client_overrides():
    drivers = relationships.drivers(CONFIG)
    assert drivers.loc["personal_assistance", "cost_per_minute"] == 1.0
    assert drivers.loc["personal_assistance", "minutes_per_interaction"] == 8  # catalogue's
    assert drivers.loc["personal_assistance", "overridden"] == (
        "cost_per_minute, fixed_yearly_cost, channel_cost_per_minute")
    assert drivers.loc["co_creation", "overridden"] == ""
    assert drivers.loc["self_service", "variable_cost_per_customer"] == pytest.approx(4 * 6 * 0.1)
    assert relationships.channel_rates(CONFIG) == {("personal_assistance", "store"): 2.0}


@pytest.mark.parametrize("section", [
    {"cost_drivers": {"personal_asistance": {"cost_per_minute": 0.9}}},
    {"current": {"gold": ["personal_asistance"]}},
    {"expected": {"gold": "personal_asistance"}},
])
def test_unknown_type_key_is_named_with_the_valid_ones(section):
    with pytest.raises(ValidationError) as info:
        RelationshipsConfig.model_validate(section)
    message = str(info.value)
    assert "'personal_asistance'" in message
    assert ", ".join(TYPES) in message


def test_unknown_driver_and_negative_rate_are_rejected():
    with pytest.raises(ValidationError, match="cost_per_minit"):
        RelationshipsConfig.model_validate(
            {"cost_drivers": {"self_service": {"cost_per_minit": 1}}})
    with pytest.raises(ValidationError):
        RelationshipsConfig.model_validate(
            {"cost_drivers": {"self_service": {"cost_per_minute": -1}}})
    with pytest.raises(ValidationError, match="retention"):
        RelationshipsConfig.model_validate({"retention": {"gold": 1.2}})


def test_client_config_validates_the_section(make_workspace):
    from conftest import MINIMAL_CONFIG

    config = ClientConfig.model_validate({**MINIMAL_CONFIG, "relationships": CONFIG})
    assert isinstance(config.relationships, RelationshipsConfig)
    assert config.relationships.current == {"basic": ["automated_services"]}
    root = make_workspace(config_overrides={
        "relationships": {"cost_drivers": {"self_servise": {"cost_per_minute": 0.1}}}})
    with pytest.raises(WorkspaceError) as info:
        load_config(root)
    message = str(info.value)
    assert "relationships.cost_drivers" in message and "'self_servise'" in message
    assert "self_service" in message


def test_unknown_segment_in_config_is_named():
    with pytest.raises(ValueError, match="'golden'"):
        relationships.inventory(customers_table(), interactions_log(),
                                {"fit": {"golden": "typo"}})


# --- inventory ---------------------------------------------------------------------------------

def test_usage_per_segment_type_and_channel():
    usage = relationships.usage(customers_table(), interactions_log(), window_years=1.0)
    gold = usage[usage["segment"] == "gold"].set_index(["relationship_type", "channel"])
    assert gold.loc[("personal_assistance", "store"), "minutes"] == 20
    assert gold.loc[("personal_assistance", "phone"), "share_of_minutes"] == pytest.approx(10 / 35)
    assert gold.loc[("self_service", "web"), "share_of_interactions"] == pytest.approx(1 / 3)
    assert usage.groupby("segment")["share_of_minutes"].sum().tolist() == pytest.approx([1, 1])
    assert list(usage["segment"].unique()) == ["gold", "basic"]


def test_inventory_declared_against_observed():
    inv = relationships.inventory(customers_table(), interactions_log(), CONFIG)
    assert inv.status.loc["gold", "personal_assistance"] == "observed"
    assert inv.status.loc["basic", "automated_services"] == "declared"
    assert inv.status.loc["basic", "co_creation"] == ""
    assert inv.shares.loc["gold", "personal_assistance"] == pytest.approx(30 / 35)
    assert inv.shares.loc["basic", "co_creation"] == 0  # a type no customer uses
    summary = inv.summary.set_index("segment")
    assert summary.loc["gold", "observed"] == ["personal_assistance", "self_service"]
    assert summary.loc["gold", "not_declared"] == ["personal_assistance", "self_service"]
    assert summary.loc["basic", "not_observed"] == ["automated_services"]
    assert summary.loc["basic", "contacted"] == 1
    assert summary.loc["gold", "main_type"] == "personal_assistance"


def test_inventory_without_interactions():
    inv = relationships.inventory(customers_table(), None, CONFIG)
    assert inv.usage.empty
    assert (inv.shares == 0).all().all()
    assert inv.summary.set_index("segment").loc["basic", "main_type"] == "automated_services"
    assert inv.window_years is None


# --- expectations ------------------------------------------------------------------------------

def test_expectations_follow_the_rules():
    exp = relationships.expectations(customers_table(), survey_answers(), CONFIG)
    summary = exp.summary.set_index("segment")
    # gold: 2 answers < 5, the consultant's judgement decides
    assert summary.loc["gold", ["expected", "source"]].tolist() == [
        "dedicated_personal_assistance", "consultant"]
    assert exp.shares.loc["gold", "dedicated_personal_assistance"] == 1.0
    # basic: one answer and no judgement: the survey, however few answered
    assert summary.loc["basic", ["expected", "source", "respondents"]].tolist() == [
        "self_service", "survey", 1]


def test_survey_majority_with_enough_respondents_breaks_ties_by_catalogue_order():
    exp = relationships.expectations(customers_table(), survey_answers(), CONFIG,
                                     min_respondents=2)
    gold = exp.summary.set_index("segment").loc["gold"]
    assert gold["expected"] == "personal_assistance" and gold["source"] == "survey"
    assert gold["expected_share"] == 0.5
    assert exp.expected_type("gold") == "personal_assistance"


def test_missing_survey_leaves_unknown_expectations():
    exp = relationships.expectations(customers_table(), None, {})
    assert (exp.summary["source"] == "none").all()
    assert exp.shares.isna().all().all()
    no_preference = survey_answers().drop(columns="preferred_relationship")
    exp = relationships.expectations(customers_table(), no_preference, CONFIG)
    assert exp.summary.set_index("segment").loc["gold", "source"] == "consultant"


# --- gap and the four questions ----------------------------------------------------------------

@pytest.fixture
def cost():
    return cost_to_serve.compute(customers_table(), interactions_log(), CONFIG, window_years=1.0)


def test_gap_matrix(cost):
    exp = relationships.expectations(customers_table(), survey_answers(), CONFIG)
    gap = questions.gap(cost, exp)
    assert gap.current.loc["gold", "personal_assistance"] == pytest.approx(30 / 35)
    assert gap.gap.loc["gold", "dedicated_personal_assistance"] == pytest.approx(-1.0)
    # basic's current includes the assumed automated minutes (2 customers × 12)
    assert gap.current.loc["basic", "automated_services"] == pytest.approx(24 / 34)
    assert gap.gap.loc["basic", "self_service"] == pytest.approx(-1.0)
    assert gap.current.sum(axis=1).tolist() == pytest.approx([1, 1])


def test_four_questions(cost):
    exp = relationships.expectations(customers_table(), survey_answers(), CONFIG)
    table = questions.four_questions(customers_table(), cost, exp, CONFIG)
    gold = table.set_index("segment").loc["gold"]
    assert gold["expects"] == "dedicated_personal_assistance"
    assert gold["has"] == "personal_assistance"
    assert gold["has_share"] == pytest.approx(30 / 35)
    assert not gold["match"]
    assert gold["expects_minutes_share"] == 0
    assert gold["cost_per_customer"] == pytest.approx(75.25)
    assert gold["margin_per_customer"] == pytest.approx(150)
    assert gold["cost_share_of_margin"] == pytest.approx(150.5 / 300)
    assert gold["fit"] == "Core of the business"
    basic = table.set_index("segment").loc["basic"]
    assert basic["has"] == "automated_services"
    assert basic["fit"] == ""


def test_four_questions_with_zero_margin(cost):
    customers = customers_table().assign(margin_window=0.0)
    exp = relationships.expectations(customers, None, {})
    table = questions.four_questions(customers, cost, exp, {})
    assert table["cost_share_of_margin"].isna().all()
    assert table["match"].isna().all()


# --- charts and tables -------------------------------------------------------------------------

@pytest.mark.parametrize("lang", LANGUAGES)
def test_charts_and_tables_build_in_both_languages(lang, cost):
    fmt = Formatter(lang, "EUR")
    customers = customers_table().assign(segment_name=["<b>Gold</b>"] * 2 + ["Basic"] * 2)
    exp = relationships.expectations(customers, survey_answers(), CONFIG)
    inv = relationships.inventory(customers, interactions_log(), CONFIG)
    gap = questions.gap(cost, exp)
    figures = [
        charts.gap_heatmap(gap, fmt, names=relationships.segment_names(customers)),
        charts.usage_bars(inv.usage, fmt),
        charts.usage_bars(cost.activity, fmt, by="channel", value="share"),
        charts.usage_bars(inv.usage, fmt, value="interactions_year"),
        charts.cost_per_customer(cost, fmt),
    ]
    for fig in figures:
        fig.to_json()
        assert fig.layout.title.text
        assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text
    assert "&lt;b&gt;Gold&lt;/b&gt;" in figures[0].data[0].y
    assert fmt.currency_symbol() in figures[-1].layout.yaxis.title.text
    tables = [charts.assumptions_table(cost.drivers, fmt),
              charts.four_questions_table(
                  questions.four_questions(customers, cost, exp, CONFIG), fmt)]
    for table in tables:
        assert "<table" in table.to_html()


def test_every_relationships_message_has_both_languages():
    import yaml

    from crmkit.core.i18n import MESSAGES_DIR

    own = yaml.safe_load((MESSAGES_DIR / "relationships.yaml").read_text(encoding="utf-8"))
    merged = catalogue()
    for key in own:
        assert merged[key]["en"].strip() and merged[key]["es"].strip(), key


def test_expected_share_is_nan_when_unknown():
    exp = relationships.expectations(customers_table(), None, {})
    assert all(math.isnan(v) for v in exp.summary["expected_share"])
    assert np.isnan(exp.shares.to_numpy()).all()


@pytest.mark.parametrize("categorical", [True, False])
def test_segment_order_and_names_follow_the_map_and_the_first_row(categorical):
    keys = ["b", None, "a", "b", "d", "a"]
    segment = (pd.Categorical(keys, categories=["d", "c", "b", "a"]) if categorical
               else pd.Series(keys, dtype="str"))
    customers = pd.DataFrame({"segment": segment,
                              "segment_name": ["Bee", "none", "Ay", "Bee 2", "Dee", "Ay 2"]})
    order = ["d", "b", "a"] if categorical else ["b", "a", "d"]  # "c" has no customer
    assert relationships.segment_order(customers) == order
    assert relationships.segment_names(customers) == {
        key: {"b": "Bee", "a": "Ay", "d": "Dee"}[key] for key in order}
    assert relationships.segment_names(customers.drop(columns="segment_name")) == {
        key: key for key in order}
