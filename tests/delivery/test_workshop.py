"""The trainer's workshop pack: layout, languages, solution stripping, and the self-checks.

The checks' expected figures come from crmkit (the key); here a few of them are recomputed by
hand with pandas (an independent oracle), every check passes on the key's own answer and fails,
with the sentence that names the mistake, on a deliberately wrong one.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from crmkit.core import paths
from crmkit.core.i18n import Formatter
from crmkit.delivery.workshop import checks, commands
from crmkit.delivery.workshop.guide import LENGTH, timetable
from crmkit.delivery.workshop.key import Case, exercise_key
from crmkit.delivery.workshop.pack import (
    CASES,
    exercise_names,
    load_source,
    split_solution,
    write_pack,
)

RETAIL = paths.DEMO_CLIENTS / "retail"


@pytest.mark.parametrize("lang", ["en", "es"])
def test_pack_in_each_language(tmp_path, lang, monkeypatch, capsys):
    monkeypatch.setenv("CRMKIT_CHROMIUM", "none")  # the guide's PDF asked for, and turned off
    pack = write_pack(tmp_path / "pack", lang, pdf=True)
    assert not (pack / "guide.pdf").exists()
    assert {"en": "guide.pdf not written: CRMKIT_CHROMIUM=none turns the PDF off; guide.md is",
            "es": "No se ha generado guide.pdf: CRMKIT_CHROMIUM=none desactiva el PDF; guide.md"
            }[lang] in capsys.readouterr().out
    names = sorted(exercise_names().values())
    assert sorted(p.name for p in (pack / "exercises").iterdir()) == names
    assert sorted(p.name for p in (pack / "answers").iterdir()) == names
    assert sorted(p.name for p in (pack / "cases").iterdir()) == sorted(CASES)
    for case in CASES:
        assert (pack / "cases" / case / "client.yaml").is_file()
        brief = (pack / "cases" / case / "brief.md").read_text(encoding="utf-8")
        assert ("Case brief" in brief) == (lang == "en") and ("Caso" in brief) == (lang == "es")
    assert not (pack / "cases" / "retail" / "make_demo.py").exists()
    title = {"en": "# Exercise 1", "es": "# Ejercicio 1"}[lang]
    for name in names:
        exercise = nbformat.read(pack / "exercises" / name, as_version=4)
        answer = nbformat.read(pack / "answers" / name, as_version=4)
        text = "\n".join(c.source for c in exercise.cells)
        solved = "\n".join(c.source for c in answer.cells)
        assert "SOLUTION" not in text and "SOLUTION" not in solved and "### STUB" not in text
        assert exercise.metadata["crmkit_workshop"]["language"] == lang
        assert exercise.cells[1].metadata["tags"] == ["parameters"]
        assert 'case = "retail"' in exercise.cells[1].source
        # the exercise keeps the self-checks and drops the solution; the key keeps both
        assert text.count("ex.check(") == solved.count("ex.check(") > 0
        assert len(answer.cells) > len(exercise.cells)  # the notes for the discussion
        assert ({"en": "your answer", "es": "su respuesta"}[lang]) in text
    first = nbformat.read(pack / "exercises" / names[0], as_version=4)
    assert first.cells[0].source.startswith(title)
    guide = (pack / "guide.md").read_text(encoding="utf-8")
    assert ("Timetable" in guide) == (lang == "en") and ("Horario" in guide) == (lang == "es")
    assert "crmkit lab" in guide and "crmkit lab" in (pack / "setup.md").read_text()
    assert "{" not in guide.replace("{}", "")  # every placeholder filled


def test_timetable_fills_three_hours():
    for lang in ("en", "es"):
        rows = timetable(load_source()["exercises"], lang)
        assert sum(minutes for _, minutes, _ in rows) == LENGTH
        exercises = [m for _, m, w in rows if w[:1].isalpha() and "·" in w]
        assert len(exercises) == 5 and all(25 <= m <= 35 for m in exercises)


def test_solution_markers():
    code = ("x = ...  ### STUB\n### BEGIN SOLUTION\nx = 42\n### END SOLUTION\n"
            "ex.check('x', x)\n")
    assert split_solution(code, False, "es") == "x = ...  # su respuesta\nex.check('x', x)"
    assert split_solution(code, True, "en") == "x = 42\nex.check('x', x)"


def test_new_refuses_an_unknown_case_and_a_full_folder(tmp_path, capsys):
    args = argparse.Namespace(pack_dir=tmp_path / "p", language="en", case="nope")
    assert commands.new(args) == 2
    assert "nope" in capsys.readouterr().err and not (tmp_path / "p").exists()
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("mine")
    assert commands.new(argparse.Namespace(pack_dir=full, language="es", case=None)) == 2
    assert "vacía" in capsys.readouterr().err
    assert [p.name for p in full.iterdir()] == ["notes.txt"]


def test_cdnow_case_is_the_lifetimes_log_read_by_the_readme_recipe():
    case = paths.DATA / "cases" / "cdnow"
    source = Path(__import__("lifetimes").__file__).parent / "datasets" / "CDNOW_master.txt"
    original = source.read_text().splitlines()
    ours = (case / "CDNOW_master.txt").read_text().splitlines()
    assert ours == original[1:]  # the same lines, without lifetimes' header
    readme = (case / "README.md").read_text(encoding="utf-8")
    assert "brucehardie.com" in readme and "MIT" in readme
    from crmkit.inputs.workspace import load_workspace

    ws = load_workspace(case)
    assert ws.transactions["customer_id"].nunique() == 23570
    assert len(ws.transactions) == len(ours)
    assert round(ws.transactions["amount"].sum(), 2) == round(
        sum(float(line.split()[3]) for line in ours), 2)


# --------------------------------------------------------------------------------------------
# the self-checks, on the retail case
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def retail():
    case = Case(RETAIL)
    return case, {n: exercise_key(case, n) for n in checks.CHECKS}


def test_key_figures_match_a_hand_count(retail):
    case, key = retail
    tx = case.ws.transactions
    tx = tx[tx["date"] <= pd.Timestamp(case.ws.as_of)]
    start = pd.Timestamp(case.ws.as_of) - pd.DateOffset(
        months=case.ws.config.assumptions.window_months)
    assert key["01"]["active_customers"] == tx.loc[tx["date"] > start, "customer_id"].nunique()
    days = tx.groupby("customer_id")["date"].nunique()
    assert key["01"]["repeat_rate"] == pytest.approx((days >= 2).mean())
    spend = tx.groupby("customer_id")["amount"].sum()
    assert key["02"]["mean_spend"] == pytest.approx(spend.mean())
    near = ((spend - spend.mean()).abs() <= 0.2 * spend.mean()).mean()
    assert key["02"]["share_near_average"] == pytest.approx(near, abs=0.002)
    top = spend.sort_values(ascending=False).iloc[: int(-(-len(spend) * 0.2 // 1))]
    assert key["02"]["top20_revenue_share"] == pytest.approx(top.sum() / spend.sum())
    assert key["05"]["phases"] == ["analysis", "design", "implementation_strategy", "launch"]
    assert "training" not in key["05"]["human_costs"] and len(key["05"]["human_costs"]) == 4


def _right(exercise: str, name: str, key: dict):
    """The answer the key itself gives."""
    k = key[exercise]
    if name == "objective":
        return {"objective": k["recommended"], "evidence": k["supports"][k["recommended"]]}
    if name == "four_questions":
        return {q: "a full sentence of at least six words" for q in checks.QUESTIONS}
    if name == "decision":
        return {"decision": k["decision"], "reason": ""}
    return k[name]


def _wrong(exercise: str, name: str, key: dict):
    """A deliberately wrong answer and the feedback it must get."""
    k = key[exercise]
    verdicts = dict(k.get("verdicts", {}))
    stop = {s: ("stop" if v == "win_back" else v) for s, v in verdicts.items()}
    flipped = {s: ("stop" if v != "stop" else "invest") for s, v in verdicts.items()}
    return {
        "active_customers": (k.get("all_customers"), "ws_fb_active_all"),
        "repeat_rate": (k.get("repeat_rate_purchases"), "ws_fb_repeat_purchases"),
        "objective": ({"objective": k.get("recommended"), "evidence": k.get("evidence_keys",
                       [])[:0]}, "ws_fb_objective_evidence"),
        "mean_spend": (k.get("mean_order"), "ws_fb_mean_orders"),
        "share_near_average": (k.get("share_below_average"), "ws_fb_near_below"),
        "top20_revenue_share": (k.get("top20_transactions_share"), "ws_fb_top20_transactions"),
        "leading_segment": (k.get("largest_segment"), "ws_fb_leading_headcount"),
        "cost_per_customer": (k.get("variable_cost_per_customer"), "ws_fb_cost_variable_only"),
        "expected_relationship": ("co_creation", "ws_fb_expected_off"),
        "four_questions": ({"expects": "self service", "has": "", "cost": "", "fit": ""},
                           "ws_fb_questions_missing"),
        "cost_share_of_margin": (k.get("cost_share_with_fixed"), "ws_fb_cost_share_fixed"),
        "unprofitable_segments": ([], "ws_fb_unprofitable_off"),
        "verdicts": (stop if stop != verdicts else flipped,
                     "ws_fb_verdicts_dropped" if stop != verdicts else "ws_fb_verdicts_few"),
        "phases": (["design", "analysis", "implementation_strategy", "launch"],
                   "ws_fb_phases_order"),
        "human_costs": (["training", *k.get("human_costs", [])], "ws_fb_human_project"),
        "npv": ((k.get("npv") or 0) * 2 + 1000, "ws_fb_npv_off"),
        "decision": ({"decision": "no_go" if k.get("decision") == "go" else "go", "reason": "x"},
                     "ws_fb_decision_off"),
    }[name]


@pytest.mark.parametrize("exercise,name", [(n, c.name) for n, cs in checks.CHECKS.items()
                                           for c in cs])
def test_every_check_passes_on_the_key_and_names_the_mistake(retail, exercise, name):
    _, key = retail
    assert checks.evaluate(exercise, name, checks.plain(_right(exercise, name, key)),
                           key[exercise]).passed
    wrong, message = _wrong(exercise, name, key)
    result = checks.evaluate(exercise, name, checks.plain(wrong), key[exercise])
    assert not result.passed and result.key == message
    for lang in ("en", "es"):
        text = result.text(lang)
        assert text and "{" not in text
        expected = key[exercise].get(name)
        if isinstance(expected, float):  # the feedback never gives the figure away
            fmt = Formatter(lang)
            for shown in (fmt.number(expected, 2), fmt.pct(expected, 1), fmt.number(expected)):
                assert len(shown) < 3 or shown not in text


def test_judgement_checks_accept_a_justified_choice(retail):
    _, key = retail
    k = key["01"]
    for goal, supporting in k["supports"].items():
        result = checks.evaluate("01", "objective", {"objective": goal,
                                                     "evidence": supporting}, k)
        assert result.passed == (len(supporting) >= checks.MIN_EVIDENCE)
    assert "2" in checks.evaluate("01", "objective", {"objective": k["recommended"],
                                                      "evidence": k["supports"][
                                                          k["recommended"]]}, k).text("en")
    # one step from the analysis' decision is accepted with a reason, not without
    d = key["05"]
    near = "go_with_conditions" if d["decision"] != "go_with_conditions" else "go"
    assert not checks.evaluate("05", "decision", {"decision": near, "reason": "no"}, d).passed
    assert checks.evaluate("05", "decision", {"decision": near, "reason": (
        "the break-even needs a retention gain we have never seen")}, d).passed
    # verdicts: 70 % agreement is enough
    v = dict(key["04"]["verdicts"])
    changed = next(s for s, x in v.items() if x in ("maintain", "invest"))
    v[changed] = "move_cheaper"
    assert checks.evaluate("04", "verdicts", v, key["04"]).passed


def test_a_malformed_answer_is_a_message_not_a_crash(retail):
    _, key = retail
    for exercise, cs in checks.CHECKS.items():
        for check in cs:
            for junk in (None, "text", [1, 2], {"a": 1}, float("nan")):
                result = checks.evaluate(exercise, check.name, checks.plain(junk), key[exercise])
                assert not result.passed or check.name == "expected_relationship"
                assert result.text("es")


def test_a_self_check_records_the_answer_and_prints_words(retail, capsys, monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, raw=False: shown.append(obj))
    ex = checks.Exercise("01", RETAIL, "es")
    ex.case = retail[0]
    ex._key = retail[1]["01"]
    ex.check("repeat_rate", retail[1]["01"]["repeat_rate_purchases"])
    record = shown[0][checks.ANSWER_MIME]
    assert record == {"exercise": "01", "case": "retail", "check": "repeat_rate",
                      "value": retail[1]["01"]["repeat_rate_purchases"]}
    assert "cuenta compras, no clientes" in capsys.readouterr().out
    json.dumps(record)


@pytest.mark.slow
def test_the_answer_key_passes_its_own_self_checks(tmp_path):
    from nbclient import NotebookClient

    pack = write_pack(tmp_path / "pack", "en", "retail", pdf=True)
    if (pack / "guide.pdf").exists():
        assert (pack / "guide.pdf").read_bytes()[:4] == b"%PDF"
    for name in exercise_names().values():
        nb = nbformat.read(pack / "answers" / name, as_version=4)
        NotebookClient(nb, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(pack / "answers")}}).execute()
        printed = [o["text"] for c in nb.cells for o in c.get("outputs", [])
                   if o.get("output_type") == "stream" and o.get("name") == "stdout"]
        # An empty line is not a mark ("" is in every string).
        marks = [line[0] for text in printed for line in text.splitlines()
                 if line.startswith(("✔", "✘"))]
        assert marks and set(marks) == {"✔"}, (name, printed)


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_case_has_a_key_its_own_answers_pass(case, request):
    from crmkit.delivery.workshop.pack import case_sources

    if Path(case_sources()[case]) == RETAIL:  # the module's key of the very same case
        built, key = request.getfixturevalue("retail")
    else:
        built = Case(case_sources()[case])
        key = {n: exercise_key(built, n) for n in checks.CHECKS}
    for exercise, cs in checks.CHECKS.items():
        for check in cs:
            answer = checks.plain(_right(exercise, check.name, key))
            assert checks.evaluate(exercise, check.name, answer, key[exercise]).passed, (
                case, exercise, check.name)
