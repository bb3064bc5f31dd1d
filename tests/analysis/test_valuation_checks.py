"""crmkit check on the history the value models need (crmkit.inputs.history_checks)."""

import datetime as dt

import pandas as pd
import pytest

from crmkit.analysis import model_choice
from crmkit.inputs.history_checks import history_checks, longest_holdout_months
from crmkit.settings.client import ClientConfig

CONTEXT = {"internal": {k: {"score": 3} for k in ("financial", "operational", "technological",
                                                   "people")},
           "external": {k: {"impact": "low", "time_frame": "short", "direction": "threat"}
                        for k in ("competitors", "regulation", "disruptive_technology")}
           | {"industry_maturity": {"impact": "low", "time_frame": "short",
                                    "direction": "threat", "stage": "growth"}}}


def config(**settings) -> ClientConfig:
    return ClientConfig.model_validate({"name": "Test", "context": CONTEXT, **settings})


def log(first: str, as_of: str, repeat: int, once: int) -> pd.DataFrame:
    """``repeat`` customers who bought on the first and the last day, ``once`` who bought once."""
    rows = [(f"R{i}", first, 10.0) for i in range(repeat)]
    rows += [(f"R{i}", as_of, 10.0) for i in range(repeat)]
    rows += [(f"O{i}", first, 10.0) for i in range(once)]
    return pd.DataFrame(rows, columns=["customer_id", "date", "amount"]).assign(
        date=lambda f: pd.to_datetime(f["date"]))


@pytest.mark.parametrize("first", ["2025-01-01", "2024-06-15", "2023-03-01"])
def test_the_longest_holdout_is_the_one_model_choice_accepts(first):
    tx = log(first, "2026-06-30", repeat=3, once=0)
    longest = longest_holdout_months(dt.date.fromisoformat(first), dt.date(2026, 6, 30))
    assert model_choice.split(tx, "2026-06-30", longest) is not None
    assert model_choice.split(tx, "2026-06-30", longest + 1) is None


def test_a_holdout_longer_than_the_history_is_a_problem_naming_the_key():
    tx = log("2025-07-01", "2026-06-30", repeat=60, once=10)
    problems, _ = history_checks(config(value={"holdout_months": 9}), pd.DataFrame(
        {"customer_id": ["R0"]}), tx, dt.date(2026, 6, 30))
    assert len(problems) == 1
    assert "'value.holdout_months' has 9; expected at most 6" in problems[0].message
    problems, _ = history_checks(config(value={"holdout_months": 6}), pd.DataFrame(
        {"customer_id": ["R0"]}), tx, dt.date(2026, 6, 30))
    assert problems == []


def test_a_contractual_client_needs_start_dates():
    tx = log("2024-01-01", "2026-06-30", repeat=60, once=10)
    problems, _ = history_checks(config(business_model="contractual", language="es"),
                                 pd.DataFrame({"customer_id": ["R0"]}), tx, None, "clientes.csv")
    assert [p.file for p in problems] == ["clientes.csv"]
    assert "start_date" in problems[0].message and "business_model: contractual" in \
        problems[0].message
    problems, _ = history_checks(config(business_model="contractual"),
                                 pd.DataFrame({"customer_id": ["R0"], "start_date": ["x"]}), tx,
                                 None)
    assert problems == []


@pytest.mark.parametrize(("repeat", "once", "warned"),
                         [(49, 0, True), (60, 600, True), (60, 500, False), (0, 30, True)])
def test_few_repeat_buyers_are_a_warning(repeat, once, warned):
    tx = log("2024-01-01", "2026-06-30", repeat=repeat, once=once)
    problems, warnings = history_checks(config(), pd.DataFrame({"customer_id": []}), tx, None)
    assert problems == []
    assert bool(warnings) is warned
    if warned:
        key, values = warnings[0]
        assert key == "check_warning_few_repeat_buyers"
        assert values["repeat"] == f"{repeat:,}" and values["buyers"] == f"{repeat + once:,}"
