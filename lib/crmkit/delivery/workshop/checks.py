"""The self-checks: what each exercise asks for, and feedback in words, never the answer.

An exercise notebook opens with ``ex = checks.Exercise("01", case_dir, language)`` and, after
each cell the participant completes, calls ``ex.check("repeat_rate", repeat_rate)``. The check
compares the answer with the key (:mod:`crmkit.delivery.workshop.key`) and prints a sentence: it
passed, or what the usual mistake behind this answer is ("your repeat rate counts purchases, not
customers: recount"). The expected figure is never printed.

Each call also leaves the answer in the notebook's outputs, as a JSON output of its own MIME type
(:data:`ANSWER_MIME`). The grader reads those recorded answers from the executed notebook and
evaluates them itself, with :func:`evaluate` and its own key: nothing the participant's kernel
says about passing is trusted.

Judgement checks (the objective, the four questions, the verdicts, the go/no-go) have no single
answer: they accept a range or a justified choice, and their feedback says so.

Why not nbgrader's or otter-grader's tests: their tests are Python assertions run in the
participant's kernel, so a test's expected values live where the participant's code runs, and a
failed assertion can only say "wrong". Here a check is data plus a diagnosis of the usual
mistakes, evaluated again by the grader outside the participant's kernel.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crmkit.core.catalogue import TYPES as RELATIONSHIP_TYPES
from crmkit.core.i18n import t
from crmkit.delivery.workbook import to_jsonable

__all__ = ["ANSWER_MIME", "CHECKS", "Exercise", "Result", "evaluate"]

#: The MIME type of a recorded answer in a notebook's outputs.
ANSWER_MIME = "application/vnd.crmkit.workshop-answer+json"

OBJECTIVES = ("attract", "retain", "grow")
DECISIONS = ("no_go", "go_with_conditions", "go")
VERDICTS = ("invest", "maintain", "move_cheaper", "win_back", "stop")
#: Judgement thresholds, said in the feedback.
MIN_EVIDENCE = 2
MIN_WORDS = 6
VERDICT_AGREEMENT = 0.7


@dataclass
class Result:
    """The outcome of one check: passed or not, and the feedback key with its values."""

    check: str
    passed: bool
    key: str
    values: dict

    def text(self, lang: str) -> str:
        return t(self.key, lang, **self.values)


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) or math.isinf(number) else number


def _close(a: float | None, b: float | None, rel: float = 0.01, abs_: float = 0.0) -> bool:
    if a is None or b is None:
        return False
    return abs(a - b) <= max(abs_, rel * abs(b))


def _words(text: Any) -> int:
    return len(str(text).split()) if isinstance(text, str) else 0


def _figure(value, key, name, *, rel=0.01, abs_=0.0, share=False,
            mistakes: tuple[tuple[str, str], ...] = ()) -> tuple[bool, str, dict]:
    """A figure: right within a tolerance, else the first usual mistake it matches."""
    number = _number(value)
    if number is None:
        return False, "ws_fb_not_a_number", {}
    if share and not 0 <= number <= 1:
        return False, "ws_fb_share_range", {}
    if _close(number, _number(key[name]), rel, abs_):
        return True, "ws_fb_ok", {}
    for mistake, message in mistakes:
        if _close(number, _number(key.get(mistake)), rel, abs_):
            return False, message, {}
    return False, f"ws_fb_{name}_off", {}


# --- exercise 01 ----------------------------------------------------------------------------

def _active_customers(value, key):
    return _figure(value, key, "active_customers", rel=0.0, abs_=0.5,
                   mistakes=(("all_customers", "ws_fb_active_all"),))


def _repeat_rate(value, key):
    return _figure(value, key, "repeat_rate", rel=0.0, abs_=0.005, share=True,
                   mistakes=(("repeat_rate_purchases", "ws_fb_repeat_purchases"),
                             ("repeat_rate_rows", "ws_fb_repeat_rows")))


def _objective(value, key):
    if not isinstance(value, dict) or value.get("objective") not in OBJECTIVES:
        return False, "ws_fb_objective_shape", {}
    cited = [str(e) for e in value.get("evidence") or []]
    unknown = [e for e in cited if e not in key["evidence_keys"]]
    if unknown:
        return False, "ws_fb_objective_unknown", {"found": ", ".join(unknown)}
    backing = set(cited) & set(key["supports"].get(value["objective"], []))
    if len(backing) < MIN_EVIDENCE:
        return False, "ws_fb_objective_evidence", {"count": len(backing), "needed": MIN_EVIDENCE}
    return True, "ws_fb_objective_ok", {"needed": MIN_EVIDENCE}


# --- exercise 02 ----------------------------------------------------------------------------

def _mean_spend(value, key):
    return _figure(value, key, "mean_spend", mistakes=(("mean_order", "ws_fb_mean_orders"),))


def _share_near_average(value, key):
    return _figure(value, key, "share_near_average", rel=0.0, abs_=0.005, share=True,
                   mistakes=(("share_below_average", "ws_fb_near_below"),))


def _top20(value, key):
    return _figure(value, key, "top20_revenue_share", rel=0.0, abs_=0.005, share=True,
                   mistakes=(("top20_transactions_share", "ws_fb_top20_transactions"),))


def _leading_segment(value, key):
    if value not in key["segments"]:
        return False, "ws_fb_unknown_segment", {"found": str(value)}
    if value == key["leading_segment"]:
        return True, "ws_fb_ok", {}
    if value == key["largest_segment"]:
        return False, "ws_fb_leading_headcount", {}
    return False, "ws_fb_leading_off", {}


# --- exercise 03 ----------------------------------------------------------------------------

def _cost_per_customer(value, key):
    return _figure(value, key, "cost_per_customer",
                   mistakes=(("variable_cost_per_customer", "ws_fb_cost_variable_only"),))


def _expected_relationship(value, key):
    if value not in RELATIONSHIP_TYPES:
        return False, "ws_fb_unknown_type", {"found": str(value)}
    if key["expected_relationship"] is None:
        return True, "ws_fb_expected_unknown", {}
    if value == key["expected_relationship"]:
        return True, "ws_fb_ok", {}
    if value in key["current_relationships"]:
        return False, "ws_fb_expected_current", {}
    return False, "ws_fb_expected_off", {}


QUESTIONS = ("expects", "has", "cost", "fit")


def _four_questions(value, key):
    if not isinstance(value, dict):
        return False, "ws_fb_questions_shape", {}
    missing = [q for q in QUESTIONS if _words(value.get(q)) < MIN_WORDS]
    if missing:
        return False, "ws_fb_questions_missing", {"questions": ", ".join(missing),
                                                  "words": MIN_WORDS}
    return True, "ws_fb_questions_ok", {"words": MIN_WORDS}


# --- exercise 04 ----------------------------------------------------------------------------

def _cost_share(value, key):
    return _figure(value, key, "cost_share_of_margin", rel=0.0, abs_=0.005, share=True,
                   mistakes=(("cost_share_with_fixed", "ws_fb_cost_share_fixed"),
                             ("cost_share_of_revenue", "ws_fb_cost_share_revenue")))


def _unprofitable(value, key):
    if not isinstance(value, list | tuple | set):
        return False, "ws_fb_list_shape", {}
    given, expected = {str(v) for v in value}, set(key["unprofitable_segments"])
    if given == expected:
        return True, "ws_fb_ok", {}
    return False, "ws_fb_unprofitable_off", {"missing": len(expected - given),
                                             "extra": len(given - expected)}


def _verdicts(value, key):
    if not isinstance(value, dict) or set(value) != set(key["verdicts"]):
        return False, "ws_fb_verdicts_shape", {"count": len(key["verdicts"])}
    wrong = [s for s, v in value.items() if v not in VERDICTS]
    if wrong:
        return False, "ws_fb_verdicts_unknown", {"segments": ", ".join(sorted(wrong))}
    if key["objective"] == "retain":
        dropped = [s for s, v in value.items() if v == "stop" and key["verdicts"][s] == "win_back"]
        if dropped:
            return False, "ws_fb_verdicts_dropped", {"segments": ", ".join(sorted(dropped))}
    agree = sum(value[s] == v for s, v in key["verdicts"].items()) / len(key["verdicts"])
    needed = round(100 * VERDICT_AGREEMENT)
    if agree < VERDICT_AGREEMENT:
        return False, "ws_fb_verdicts_few", {"needed": needed}
    return True, "ws_fb_verdicts_ok", {"needed": needed}


# --- exercise 05 ----------------------------------------------------------------------------

def _phases(value, key):
    if not isinstance(value, list | tuple) or set(value) != set(key["phases"]):
        return False, "ws_fb_phases_names", {}
    if list(value) != key["phases"]:
        return False, "ws_fb_phases_order", {}
    return True, "ws_fb_ok", {}


def _human_costs(value, key):
    if not isinstance(value, list | tuple | set):
        return False, "ws_fb_list_shape", {}
    given, expected = {str(v) for v in value}, set(key["human_costs"])
    if given == expected:
        return True, "ws_fb_ok", {}
    if given & set(key["project_costs"]):
        return False, "ws_fb_human_project", {}
    return False, "ws_fb_human_missing", {"missing": len(expected - given)}


def _npv(value, key):
    return _figure(value, key, "npv", rel=0.01, abs_=1.0)


def _decision(value, key):
    if not isinstance(value, dict) or value.get("decision") not in DECISIONS:
        return False, "ws_fb_decision_shape", {}
    step = abs(DECISIONS.index(value["decision"]) - DECISIONS.index(key["decision"]))
    if step == 0:
        return True, "ws_fb_decision_ok", {"words": MIN_WORDS}
    if step == 1 and _words(value.get("reason")) >= MIN_WORDS:
        return True, "ws_fb_decision_ok", {"words": MIN_WORDS}
    if step == 1:
        return False, "ws_fb_decision_reason", {"words": MIN_WORDS}
    return False, "ws_fb_decision_off", {}


@dataclass(frozen=True)
class Check:
    """One check: its name, its evaluation, and whether the notebook gives feedback on it.

    A ``hidden`` check is recorded in the notebook but evaluated only by the grader.
    """

    name: str
    evaluate: Callable[[Any, dict], tuple[bool, str, dict]]
    judgement: bool = False
    hidden: bool = False


#: Exercise number -> its checks, in the notebook's order.
CHECKS: dict[str, tuple[Check, ...]] = {
    "01": (Check("active_customers", _active_customers), Check("repeat_rate", _repeat_rate),
           Check("objective", _objective, judgement=True)),
    "02": (Check("mean_spend", _mean_spend), Check("share_near_average", _share_near_average),
           Check("top20_revenue_share", _top20, hidden=True),
           Check("leading_segment", _leading_segment)),
    "03": (Check("cost_per_customer", _cost_per_customer),
           Check("expected_relationship", _expected_relationship),
           Check("four_questions", _four_questions, judgement=True)),
    "04": (Check("cost_share_of_margin", _cost_share),
           Check("unprofitable_segments", _unprofitable, hidden=True),
           Check("verdicts", _verdicts, judgement=True)),
    "05": (Check("phases", _phases), Check("human_costs", _human_costs),
           Check("npv", _npv, hidden=True), Check("decision", _decision, judgement=True)),
}


def check_of(exercise: str, name: str) -> Check:
    """The check ``name`` of an exercise (KeyError when there is none)."""
    for check in CHECKS[exercise]:
        if check.name == name:
            return check
    raise KeyError(name)


def evaluate(exercise: str, name: str, value: Any, key: dict) -> Result:
    """Evaluate one answer against the exercise's key; the feedback never holds the key.

    Parameters
    ----------
    exercise : str
        ``"01"`` to ``"05"``.
    name : str
        The check's name.
    value : Any
        The participant's answer (plain JSON value).
    key : dict
        The exercise's key (:func:`crmkit.delivery.workshop.key.exercise_key`).
    """
    check = check_of(exercise, name)
    try:
        passed, message, values = check.evaluate(value, key)
    except (TypeError, ValueError, KeyError, AttributeError):
        # an answer of a shape no check foresaw: the participant's mistake, said plainly
        passed, message, values = False, "ws_fb_shape", {}
    return Result(name, bool(passed), message, values)


def plain(value: Any) -> Any:
    """An answer as plain JSON: numpy and pandas values converted, sets as sorted lists, and
    anything else (``...`` left in a cell, an object) as None, i.e. "not answered"."""
    if isinstance(value, set | frozenset):
        value = sorted(value, key=str)
    return json.loads(json.dumps(to_jsonable(value), default=lambda _: None))


class Exercise:
    """The self-checks of one exercise notebook, on the participant's copy of the case.

    Parameters
    ----------
    number : str
        ``"01"`` to ``"05"``.
    case_dir : path
        The case workspace (``../cases/<case>`` from the exercises folder).
    language : {"en", "es"}

    Attributes
    ----------
    case : crmkit.delivery.workshop.key.Case
        The case: ``ex.case.ws`` (its data), ``ex.case.steps`` (crmkit's steps on it).
    """

    def __init__(self, number: str, case_dir: str | Path, language: str = "en"):
        from crmkit.delivery.workshop.key import Case

        self.number = number
        self.lang = language
        self.case = Case(case_dir, language)
        self.case_name = Path(case_dir).name
        self._key: dict | None = None

    @property
    def ws(self):
        return self.case.ws

    @property
    def steps(self):
        return self.case.steps

    def _the_key(self) -> dict:
        if self._key is None:
            from crmkit.delivery.workshop.key import exercise_key

            self._key = exercise_key(self.case, self.number)
        return self._key

    def check(self, name: str, value: Any) -> None:
        """Record the answer for the trainer and say, in words, whether it holds."""
        from IPython.display import display

        check = check_of(self.number, name)
        answer = plain(value)
        display({ANSWER_MIME: {"exercise": self.number, "case": self.case_name,
                               "check": name, "value": answer},
                 "text/plain": t("ws_recorded", self.lang, check=name)}, raw=True)
        if check.hidden:
            print(t("ws_fb_hidden", self.lang))
            return
        result = evaluate(self.number, name, answer, self._the_key())
        mark = "✔" if result.passed else "✘"
        print(f"{mark} {result.text(self.lang)}")
