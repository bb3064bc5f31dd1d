"""Grading a class: isolation, time limits, bad notebooks reported per participant, overview."""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import nbformat
import pytest

from crmkit.delivery.workshop import checks, commands, grading
from crmkit.delivery.workshop.pack import write_pack

EXERCISE = "01_context.ipynb"


@pytest.fixture(scope="module")
def pack(tmp_path_factory):
    return write_pack(tmp_path_factory.mktemp("ws") / "pack", "en", "retail", pdf=False)


def _rows(folder: Path) -> list[dict]:
    with (folder / "overview.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _replace(nb, old: str, new: str):
    cell = next(c for c in nb.cells if old in c.source)
    cell.source = cell.source.replace(old, new)
    return nb


def test_bad_files_are_reported_without_running_anything(pack, tmp_path):
    subs = tmp_path / "subs"
    (subs / "=HYPERLINK(1)").mkdir(parents=True)
    (subs / "=HYPERLINK(1)" / EXERCISE).write_text("this is not JSON", encoding="utf-8")
    (subs / "<i>ana").mkdir()
    nbformat.write(nbformat.v4.new_notebook(), subs / "<i>ana" / EXERCISE)
    (subs / "<i>ana" / "notes.ipynb").write_text("{}", encoding="utf-8")
    start = time.monotonic()
    assert commands.grade(argparse.Namespace(pack_dir=pack, submissions_dir=subs)) == 0
    assert time.monotonic() - start < 30  # no kernel was started
    graded = {(r["participant"], r["exercise"], r["check"]): r["passed"] for r in _rows(subs)}
    # a cell that a spreadsheet would read as a formula is neutralised
    assert graded[("'=HYPERLINK(1)", "01", "notebook")] == "false"
    assert graded[("<i>ana", "01", "notebook")] == "false"
    assert graded[("<i>ana", "notes", "notebook")] == "false"
    assert all(v == "false" for v in graded.values())
    page = (subs / "overview.html").read_text(encoding="utf-8")
    assert "<i>ana" not in page and "&lt;i&gt;ana" in page
    assert "not a notebook" in page and "empty notebook" in page
    assert "not an exercise of the pack" in page


def test_grade_refuses_a_folder_that_is_not_a_pack(tmp_path, capsys):
    args = argparse.Namespace(pack_dir=tmp_path, submissions_dir=tmp_path / "none")
    assert commands.grade(args) == 2
    assert "not a workshop pack" in capsys.readouterr().err


def test_recorded_answers_keep_the_last_record():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    for value in (1, 2):
        cell.outputs.append(nbformat.v4.new_output(
            "display_data", data={checks.ANSWER_MIME: {"check": "x", "value": value,
                                                       "case": "retail"}}))
    nb.cells = [cell, nbformat.v4.new_markdown_cell("no outputs")]
    assert grading.recorded_answers(nb)["x"]["value"] == 2


@pytest.mark.slow
def test_a_class_with_good_wrong_broken_endless_and_curious_notebooks(pack, tmp_path):
    answer = nbformat.read(pack / "answers" / EXERCISE, as_version=4)
    subs = tmp_path / "subs"
    for name in ("ana", "ben", "carla"):
        (subs / name).mkdir(parents=True)
        nbformat.write(answer, subs / name / EXERCISE)
    wrong = nbformat.read(pack / "answers" / EXERCISE, as_version=4)
    _replace(wrong, "active_customers = ex.steps.indicators.active_customers",
             "active_customers = tx['customer_id'].nunique()")
    _replace(wrong, "repeat_rate = ex.steps.indicators.repeat_rate",
             "repeat_rate = 1 - tx['customer_id'].nunique() / len(tx.groupby(['customer_id', "
             "'date']))")
    _replace(wrong, 'evidence.loc[evidence[chosen] > 0, "key"].tolist()',
             'evidence.loc[evidence[chosen] > 0, "key"].tolist()[:1]')
    broken = nbformat.read(pack / "exercises" / EXERCISE, as_version=4)
    broken.cells.insert(3, nbformat.v4.new_code_cell("raise RuntimeError('my own mistake')"))
    endless = nbformat.read(pack / "exercises" / EXERCISE, as_version=4)
    # endless as a loop whose condition never changes; it sleeps rather than spins, since the
    # grader stops a cell by its wall time alone and a spinning one would take a core from the
    # tests beside it for the whole limit
    endless.cells.insert(2, nbformat.v4.new_code_cell(
        "import time\nwhile True:\n    time.sleep(0.5)"))
    curious = nbformat.read(pack / "exercises" / EXERCISE, as_version=4)
    curious.cells.insert(2, nbformat.v4.new_code_cell(
        f"print(open({str(pack.resolve() / 'answers' / EXERCISE)!r}).read())"))
    for name, nb in (("dan", wrong), ("eva", broken), ("fil", endless), ("gus", curious)):
        (subs / name).mkdir()
        nbformat.write(nb, subs / name / EXERCISE)

    # a cell of the exercise takes 2 s at most on this machine class; the endless one runs until
    # the cell limit stops it, so the limit is kept short
    limits = grading.Limits(cell=12, notebook=90, total=420)
    start = time.monotonic()
    args = argparse.Namespace(pack_dir=pack, submissions_dir=subs)
    assert commands.grade(args, limits) == 0
    assert time.monotonic() - start < limits.total

    rows = _rows(subs)
    passed = {(r["participant"], r["check"]): r["passed"] == "true" for r in rows}
    for good in ("ana", "ben", "carla"):
        assert all(passed[(good, c)] for c in ("notebook", "active_customers", "repeat_rate",
                                               "objective"))
    assert passed[("dan", "notebook")]
    assert not any(passed[("dan", c)] for c in ("active_customers", "repeat_rate", "objective"))
    for bad in ("eva", "fil", "gus"):
        assert not passed[(bad, "notebook")]
        assert not any(passed[(bad, c)] for c in ("active_customers", "repeat_rate"))
    assert len(rows) == 7 * 4

    page = (subs / "overview.html").read_text(encoding="utf-8")
    assert "counted every customer who ever bought" in page  # dan's feedback, in words
    assert "counts purchases, not customers" in page
    assert "RuntimeError: my own mistake" in page
    assert "did not finish within 12 seconds" in page
    assert "tried to read the answer key" in page
    assert "3 / 7" in page  # per check: how many got it
    # the key never leaks: the expected figures are nowhere in the overview
    from crmkit.delivery.workshop.key import Case, exercise_key

    key = exercise_key(Case(pack / "cases" / "retail"), "01")
    for figure in (key["active_customers"], key["repeat_rate"]):
        assert str(figure) not in page and f"{figure:.3f}" not in page
