"""Marketing automation: level 1 (messages by interest) and level 2 (offers per segment)."""

import datetime as dt
import math

import pandas as pd
import pytest
from conftest import MINIMAL_CONFIG

from crmkit.core.i18n import Formatter
from crmkit.delivery import exports
from crmkit.inputs import occasions
from crmkit.planning import automation, plan
from crmkit.settings.client import ClientConfig

SEND = dt.date(2027, 6, 1)


def _config(automation_section=None):
    return ClientConfig.model_validate({**MINIMAL_CONFIG, "as_of": "2026-10-31", "crm_project": {
        "automation": automation_section or {}}})


CUSTOMERS = pd.DataFrame({
    "customer_id": ["C1", "C2", "C3", "C4", "C5"],
    "segment": ["loyal", "loyal", "at_risk", "at_risk", "at_risk"],
    "segment_name": ["Loyal", "Loyal", "At risk", "At risk", "At risk"],
    "margin_window": [240.0, 120.0, 60.0, -10.0, 0.0],
    "revenue_window": [800.0, 400.0, 200.0, 0.0, 0.0],
    "probability_alive": [0.9, 0.5, 0.4, 0.1, 0.0],
})
ATTRIBUTES = pd.DataFrame({"customer_id": ["C1", "C2", "C3", "C4", "C5"],
                           "hobby": ["garden", " ", "kitchen", None, "garden"]})
TRANSACTIONS = pd.DataFrame({
    "customer_id": ["C2", "C2", "C2", "C4", "C4"],
    "date": pd.to_datetime(["2026-01-01"] * 5),
    "amount": [50.0, 30.0, 40.0, 10.0, -10.0],
    "category": ["shoes", "socks", "socks", "hats", "hats"]})


def test_interest_declared_then_top_category_then_none():
    found = automation.interests(CUSTOMERS, attributes=ATTRIBUTES, transactions=TRANSACTIONS,
                                 attribute="hobby").set_index("customer_id")
    assert found.loc["C1", "interest"] == "garden"
    assert found.loc["C1", "interest_source"] == "declared"
    # C2 declared nothing (a blank): the category it spent most on (socks 70 > shoes 50).
    assert found.loc["C2", "interest"] == "socks"
    assert found.loc["C2", "interest_source"] == "top_category"
    # C4's hats net to zero: no positive spend, no interest.
    assert pd.isna(found.loc["C4", "interest"]) and found.loc["C4", "interest_source"] == "none"
    with pytest.raises(ValueError, match="interest attribute 'age'"):
        automation.interests(CUSTOMERS, attributes=ATTRIBUTES, attribute="age")


def test_top_category_ties_go_to_the_first_alphabetically_with_or_without_numbering():
    """C1 spent 40 on "toys" and 40 on "books" (after a return and padding spaces): a tie, so
    "books"; C3 spent on "hats" only, C2 only a blank and a missing category: no interest."""
    lines = pd.DataFrame({
        "customer_id": ["C1", "C1", "C1", "C1", "C2", "C2", "C3"],
        "date": pd.to_datetime(["2026-01-01"] * 7),
        "amount": [50.0, -10.0, 25.0, 15.0, 30.0, 20.0, 5.0],
        "category": ["toys", "toys ", " books", "books", "", None, "hats"]})
    customers = pd.DataFrame({"customer_id": ["C1", "C2", "C3"]})
    for frame in (lines, occasions.with_customer_codes(lines.copy())):
        found = automation.interests(customers, transactions=frame).set_index("customer_id")
        assert found["interest"].tolist()[0] == "books"
        assert pd.isna(found.loc["C2", "interest"])
        assert found.loc["C3", "interest"] == "hats"
        assert found["interest_source"].tolist() == ["top_category", "none", "top_category"]


@pytest.mark.parametrize("dtype", ["str", "string", object])
def test_items_are_numbered_as_the_stripped_text_of_each_line_would_be(dtype):
    """The items are cleaned once per distinct value (a big client's memory): the codes are
    those of factorizing every line's stripped text, lines without an item being -1."""
    values = pd.Series(["toys", " toys", "books ", "", "  ", None, "Toys", "books", "hats",
                        "toys"], dtype=dtype)
    codes, items = automation._item_codes(values)
    text = values.astype("string").str.strip()
    keep = (text.notna() & (text != "")).to_numpy(dtype=bool)
    expected, expected_items = pd.factorize(text[keep], sort=True)
    assert list(items) == list(expected_items) == ["Toys", "books", "hats", "toys"]
    assert (codes[~keep] == -1).all() and codes[keep].tolist() == expected.tolist()


def test_level1_counts_and_messages_in_both_languages():
    config = _config({"interest_attribute": "hobby", "messages": {
        "garden": {"en": "Spring is here: seeds and tools for your garden",
                   "es": "Llega la primavera: semillas y herramientas para su jardín"},
        "kitchen": {"en": "New pans in store"}}})
    en = automation.level1(CUSTOMERS, "en", config=config, attributes=ATTRIBUTES,
                           transactions=TRANSACTIONS)
    counts = en.counts.set_index("interest_name")
    assert counts.loc["garden", "customers"] == 2 and counts.loc["garden", "share"] == 0.4
    assert counts.loc["garden", "message"].startswith("Spring is here")
    assert counts.loc["garden", "message_source"] == "client.yaml"
    assert counts.loc["socks", "message"] == "socks: new arrivals and ideas selected for you"
    assert counts.loc["no known interest", "customers"] == 1
    assert en.counts["customers"].sum() == len(CUSTOMERS)
    es = automation.level1(CUSTOMERS, "es", config=config, attributes=ATTRIBUTES,
                           transactions=TRANSACTIONS)
    by_id = es.targets.set_index("customer_id")
    assert by_id.loc["C1", "message"].startswith("Llega la primavera")
    assert by_id.loc["C3", "message"] == "New pans in store"  # only English given: used for both
    assert by_id.loc["C4", "message"].startswith("Nuestras novedades")
    assert list(es.targets.columns) == ["customer_id", "segment", "interest", "interest_source",
                                        "message"]


#: The per-customer table with what the model and the history say of each customer.
MODELLED = CUSTOMERS.assign(expected_purchases=[2.1, 2.1, 0.6, 0.0, 0.0],
                            margin=[1000.0, 600.0, 300.0, 200.0, 100.0],
                            monetary=[2000.0, 1200.0, 600.0, 400.0, 200.0],
                            frequency=[10, 6, 3, 2, 1])
#: Chapter 2's promotion history: loyal bought 2 of 16 orders on promotion, at risk 3 of 6.
PROMOTIONS = pd.DataFrame({"orders": [16, 6], "promo_orders": [2, 3]},
                          index=pd.Index(["loyal", "at_risk"], name="segment"))


def test_level2_return_per_segment_by_hand():
    config = _config({"offer_defaults": {"redemption_rate": 0.2},
                      "offers": {"loyal": {"coupon_value": 10, "deadline_days": 14},
                                 "at_risk": {"min_probability_alive": 0.3}}})
    result = automation.level2(MODELLED, Formatter("en", "EUR"), send_date=SEND, config=config,
                               promotions=PROMOTIONS)
    loyal = result.segments.set_index("segment").loc["loyal"]
    # Loyal: 4.2 expected orders over the 3-year horizon for 1.4 customers alive → 1 a year;
    # within a 14-day deadline 1 − e^(−14/365) would order anyway. Its promotion share
    # (2/16) against the base's (5/22) scales the 20 % the offer converts of the others.
    control = 1 - math.exp(-14 / 365)
    added = 0.2 * (2 / 16) / (5 / 22) * (1 - control)
    assert loyal["response_control"] == pytest.approx(control)
    assert loyal["response_added"] == pytest.approx(added)
    assert loyal["redemption_rate"] == pytest.approx(control + added)
    assert loyal["margin_per_order"] == pytest.approx(1600 / 16)
    assert loyal["expected_redemptions"] == pytest.approx(1.4 * (control + added))
    assert loyal["expected_cost"] == pytest.approx(1.4 * (control + added) * 10)
    assert loyal["incremental_margin"] == pytest.approx(1.4 * added * 100)
    assert loyal["net_return"] == pytest.approx(1.4 * added * 100 - 14 * (control + added))
    assert loyal["roi"] == pytest.approx(loyal["net_return"] / loyal["expected_cost"])
    assert loyal["deadline"] == dt.date(2027, 6, 15)
    at_risk = result.segments.set_index("segment").loc["at_risk"]
    # Only C3 reaches P(alive) 0.3; the default coupon is 10 % of an average order (1200 / 6).
    assert at_risk["customers"] == 3 and at_risk["targeted"] == 1
    assert at_risk["coupon_value"] == pytest.approx(20.0)
    control = 1 - math.exp(-0.6 / 0.5 / 3 * 30 / 365)
    added = min(0.2 * 0.5 / (5 / 22), 1) * (1 - control)
    assert at_risk["response_added"] == pytest.approx(added)
    assert at_risk["incremental_margin"] == pytest.approx(0.4 * added * 100)
    targets = result.targets.set_index("customer_id")
    assert set(targets.index) == {"C1", "C2", "C3"}
    assert targets.loc["C1", "offer"] == "€10 coupon, valid until 15 Jun 2027"
    total = result.segments.attrs["total"]
    assert total["expected_cost"] == pytest.approx(result.segments["expected_cost"].sum())


def test_level2_agrees_with_the_automation_lever_of_the_business_case():
    from crmkit.planning import levers

    config = _config({"offers": {"loyal": {"coupon_value": 10}}})
    result = automation.level2(MODELLED, Formatter("en"), send_date=SEND, config=config,
                               promotions=PROMOTIONS)
    model = levers.LeverModel.from_tables(MODELLED, None, config, promotions=PROMOTIONS)
    lever = model.evaluate().query("lever == 'automation'").set_index("segment")
    settings = model.settings.automation
    for segment, row in result.segments.set_index("segment").iterrows():
        # The lever: the same campaign, on the consenting customers not held out, 4 times a
        # year, with the cost of sending it.
        share = (1 - settings.control_share) * model.settings.consent
        contacts = share * len(MODELLED[MODELLED["segment"] == segment]) * settings.contact_cost
        expected = settings.campaigns_per_year * (share * row["net_return"] - contacts)
        assert lever.at[segment, "yearly_benefit"] == pytest.approx(expected)


def test_level2_window_and_spanish_offer_text():
    config = _config({"offer_defaults": {"coupon_value": 5, "redemption_rate": 1.0}})
    result = automation.level2(CUSTOMERS, Formatter("es", "EUR"), send_date=SEND, config=config,
                               window_months=6)
    loyal = result.segments.set_index("segment").loc["loyal"]
    # An older table (no orders): each customer's window margin is one order; no model, no
    # control response, so the offer converts every active customer.
    assert loyal["response_control"] == 0.0 and loyal["response_added"] == 1.0
    assert loyal["incremental_margin"] == pytest.approx(1.4 * (240 + 120) / 2)
    assert result.targets["offer"].iloc[0] == "Cupón de 5,00\xa0€, válido hasta el 1 jul 2027"


def test_level2_rejects_unknown_segments_and_missing_columns():
    config = _config({"offers": {"champions": {"coupon_value": 5}}})
    with pytest.raises(ValueError, match="'champions'.*segments are at_risk, loyal"):
        automation.level2(CUSTOMERS, Formatter("en"), send_date=SEND, config=config)
    with pytest.raises(ValueError, match="probability_alive"):
        automation.level2(CUSTOMERS.drop(columns="probability_alive"), Formatter("en"),
                          send_date=SEND)


def test_a_segment_can_be_left_out_of_level2():
    config = _config({"offers": {"at_risk": {"include": False}}})
    result = automation.level2(CUSTOMERS, Formatter("en"), send_date=SEND, config=config)
    assert list(result.segments["segment"]) == ["loyal"]


def test_target_list_is_exportable(tmp_path):
    from crmkit.delivery.exports import write_csv

    hostile = CUSTOMERS.assign(customer_id=["=cmd|' /C calc'!A0", "C2", "C3", "C4", "C5"])
    attrs = ATTRIBUTES.assign(customer_id=hostile["customer_id"],
                              hobby=["+1+1", "-2+3", "@SUM(A1)", None, "garden"])
    config = _config({"interest_attribute": "hobby"})
    level_1 = automation.level1(hostile, "en", config=config, attributes=attrs)
    level_2 = automation.level2(hostile, Formatter("en"), send_date=SEND, config=config)
    targets = automation.target_list(level_1, level_2)
    assert list(targets.columns) == ["customer_id", "segment", "interest", "message", "offer",
                                     "coupon_value", "deadline"]
    assert len(targets) == len(hostile)
    text = write_csv(tmp_path / "targets.csv", targets).read_text(encoding="utf-8-sig")
    assert "'=cmd|' /C calc'!A0" in text and "'+1+1" in text and "'@SUM(A1)" in text
    for line in text.splitlines()[1:]:
        assert not line.startswith(("=", "+", "-", "@"))


def test_roadmap_starts_level1_at_go_live_and_level2_later():
    config = ClientConfig.model_validate({**MINIMAL_CONFIG, "as_of": "2026-10-31"})
    p = plan.build(config, plan.Scale(1e6, 4e5))
    road = automation.roadmap("es", p)
    assert list(road["level"]) == [1, 2]
    assert road["starts"].iloc[0] == p.go_live_date
    assert road["starts"].iloc[1] == dt.date(2027, 9, 1)
    assert road["name"].iloc[1] == "Nivel 2: gestión de ofertas"


def test_a_lapsed_segment_gets_a_coupon_and_a_margin_worth_something():
    lapsed = MODELLED.assign(revenue_window=[800.0, 400.0, 0.0, 0.0, 0.0],
                             margin_window=[240.0, 120.0, 0.0, 0.0, 0.0])
    result = automation.level2(lapsed, Formatter("en"), send_date=SEND)
    at_risk = result.segments.set_index("segment").loc["at_risk"]
    # Nothing bought in the window, but the history prices an order: 10 % of 1200 / 6.
    assert at_risk["coupon_value"] == pytest.approx(20.0)
    assert at_risk["margin_per_order"] == pytest.approx(100.0)
    assert at_risk["incremental_margin"] > 0
    loyal = result.segments.set_index("segment").loc["loyal"]
    assert loyal["coupon_value"] == pytest.approx(20.0)  # 10 % of 3200 / 16


def test_key_figures_of_both_levels():
    config = _config({"messages": {"socks": {"en": "Socks for you"}}})
    level_1 = automation.level1(CUSTOMERS, "en", config=config, transactions=TRANSACTIONS)
    figures = level_1.as_dict()
    # Only C2 has a top category (socks, 70 against shoes 50); C4's hats net to nothing.
    assert figures["customers"] == 5 and figures["interests"] == 1
    assert figures["no_interest"] == 4 and figures["source"] == "none"
    assert figures["client_messages"] == 1
    assert figures["top"] == {"interest": "socks", "customers": 1, "share": pytest.approx(0.2)}
    level_2 = automation.level2(CUSTOMERS, Formatter("en"), send_date=SEND)
    figures = level_2.as_dict()
    assert figures["segments"] == 2
    assert figures["targeted"] == 5
    best = level_2.segments.sort_values("net_return", ascending=False).iloc[0]
    assert figures["best"]["segment"] == best["segment"]
    assert figures["paying"] == int((level_2.segments["net_return"] > 0).sum())


def test_target_lists_are_written_neutralised_in_the_language(tmp_path):
    hostile = CUSTOMERS.assign(customer_id=['=HYPERLINK("http://x","y")', "C2", "C3", "C4",
                                            "C5"])
    level_1 = automation.level1(hostile, "es", transactions=TRANSACTIONS)
    level_2 = automation.level2(hostile, Formatter("es", "EUR"), send_date=SEND)
    assert exports.save_target_lists(None, level_1, level_2, Formatter("es")) == {}
    written = exports.save_target_lists(tmp_path / "lists", level_1, level_2,
                                           Formatter("es", "EUR"))
    assert set(written) == {"level1", "level2"}
    first = written["level1"].read_text(encoding="utf-8-sig").splitlines()
    assert first[0] == "Cliente;Segmento;Interés;Mensaje"
    assert first[1].startswith('"\'=HYPERLINK(""http://x"",""y"")";Loyal;')  # names
    second = pd.read_csv(written["level2"], sep=";", decimal=",", encoding="utf-8-sig")
    assert second["Cliente"].iloc[0] == "'=HYPERLINK(\"http://x\",\"y\")"
    assert second["Probabilidad de seguir activo"].iloc[0] == pytest.approx(0.9)
