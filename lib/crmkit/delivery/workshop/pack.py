"""The workshop pack: case workspaces, exercise notebooks, their answer key and the guide.

``crmkit workshop new DIR`` writes::

    DIR/cases/<case>/       client workspaces (the three demo clients, CDNOW), each with brief.md
    DIR/exercises/NN_*.ipynb   one notebook per step, in the participant's language
    DIR/answers/NN_*.ipynb     the same notebooks solved (same names), with discussion notes
    DIR/guide.md, guide.pdf    the facilitator guide; DIR/setup.md the laptops' setup note

Exercises and answers come from one source, ``templates/workshop/exercises.yaml``, with
nbgrader's solution markers (``### BEGIN SOLUTION`` / ``### END SOLUTION``): the solution is
kept in the answer key and stripped from the exercise. The stripping is these few lines rather
than nbgrader itself because nbgrader's ``generate_assignment`` needs a course folder, a
gradebook database and its own notebook metadata, and its hidden tests would run inside the
participant's kernel (see :mod:`crmkit.delivery.workshop.grading` for why grading does not).

The answer key's figures are never typed in: its solution cells call crmkit on the case, and the
grader computes the same figures with :mod:`crmkit.delivery.workshop.key`. Answers are written
unexecuted (running crmkit on a case takes seconds to a minute per notebook); the guide tells the
trainer to run them once before the session.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import nbformat
import yaml

from crmkit.core import paths
from crmkit.core.i18n import t
from crmkit.core.problems import UserError

__all__ = ["CASES", "case_sources", "exercise_names", "write_pack"]

#: The cases, in the order a trainer meets them: name -> workspace folder under data/.
CASES = {"retail": ("demo", "retail"), "bank": ("demo", "bank"), "telecom": ("demo", "telecom"),
         "cdnow": ("cases", "cdnow")}
#: Files of a workspace folder that are not the client's (the demo generator).
NOT_COPIED = ("make_demo.py", "__pycache__", "brief.*.md")

BEGIN, END, STUB = "### BEGIN SOLUTION", "### END SOLUTION", "### STUB"
SOURCE = "exercises.yaml"


def _templates() -> Path:
    return paths.TEMPLATES / "workshop"


def load_source() -> dict:
    """The exercises' source (``templates/workshop/exercises.yaml``)."""
    return yaml.safe_load((_templates() / SOURCE).read_text(encoding="utf-8"))


def exercise_names() -> dict[str, str]:
    """``{"01": "01_context.ipynb", ...}``: the exercises' notebook names."""
    return {e["number"]: f"{e['number']}_{e['slug']}.ipynb" for e in load_source()["exercises"]}


def case_sources() -> dict[str, Path]:
    """Each case's workspace folder in crmkit's data."""
    return {name: paths.DATA / top / sub for name, (top, sub) in CASES.items()}


def brief_path(case: str, lang: str) -> Path:
    return paths.DATA / "cases" / "briefs" / f"{case}.{lang}.md"


def split_solution(code: str, answer: bool, lang: str) -> str:
    """The code of a cell for the exercise (``answer=False``) or for the answer key."""
    out, inside = [], False
    for line in code.rstrip("\n").splitlines():
        stripped = line.strip()
        if stripped == BEGIN:
            inside = True
        elif stripped == END:
            inside = False
        elif line.rstrip().endswith(STUB):
            if not answer:
                stub = line.rstrip()[: -len(STUB)].rstrip()
                out.append(f"{stub}  # {t('ws_your_answer', lang)}")
        elif answer or not inside:
            out.append(line)
    return "\n".join(out)


def notebook(exercise: dict, lang: str, case: str, answer: bool,
             parameters: str | dict) -> nbformat.NotebookNode:
    """One exercise notebook (or its answer), in ``lang``, opening on ``case``."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["crmkit_workshop"] = {"exercise": exercise["number"], "language": lang,
                                      "answer_key": answer}
    cells = []
    for cell in exercise["cells"]:
        if "md" in cell or ("answer_md" in cell and answer):
            text = (cell.get("md") or cell["answer_md"])[lang]
            cells.append(nbformat.v4.new_markdown_cell(text.replace("{case}", case).rstrip()))
        elif "code" in cell:
            code = cell["code"][lang] if isinstance(cell["code"], dict) else cell["code"]
            cells.append(nbformat.v4.new_code_cell(split_solution(code, answer, lang)))
        if len(cells) == 1:  # the parameters right under the title
            text = parameters[lang] if isinstance(parameters, dict) else parameters
            source = text.replace("{case}", case).replace("{language}", lang).rstrip()
            cells.append(nbformat.v4.new_code_cell(source, metadata={"tags": ["parameters"]}))
    nb.cells = cells
    return nb


def _copy_case(source: Path, target: Path, case: str, lang: str) -> None:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*NOT_COPIED))
    brief = brief_path(case, lang)
    if brief.is_file():
        shutil.copyfile(brief, target / "brief.md")


def write_pack(pack_dir: str | Path, language: str = "en", case: str | None = None, *,
               pdf: bool = True) -> Path:
    """Write a workshop pack; it appears whole or not at all.

    Parameters
    ----------
    pack_dir : path
        A new or empty folder.
    language : {"en", "es"}
        The participants' language (exercises, answers, guide, briefs).
    case : str, optional
        Only this case (default: every case; the exercises open on the first).
    pdf : bool
        Print the guide to PDF too (needs Chromium; skipped with a note when there is none).

    Raises
    ------
    UserError
        An unknown case, or a folder that is not empty.
    """
    from crmkit.delivery.workshop import guide

    pack_dir = Path(pack_dir)
    if case is not None and case not in CASES:
        raise UserError(t("ws_err_unknown_case", language, case=case, cases=", ".join(CASES)),
                        file="--case", kind="unknown_case")
    if pack_dir.exists() and (not pack_dir.is_dir() or any(pack_dir.iterdir())):
        raise UserError(t("ws_err_pack_exists", language), file=str(pack_dir),
                        kind="pack_exists")
    cases = [case] if case else list(CASES)
    source = load_source()
    pack_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{pack_dir.name}.", dir=pack_dir.parent))
    try:
        sources = case_sources()
        for name in cases:
            _copy_case(sources[name], staging / "cases" / name, name, language)
        for folder, answer in (("exercises", False), ("answers", True)):
            (staging / folder).mkdir()
            for exercise in source["exercises"]:
                nb = notebook(exercise, language, cases[0], answer, source["parameters"])
                name = f"{exercise['number']}_{exercise['slug']}.ipynb"
                nbformat.write(nb, staging / folder / name)
        guide.write_guide(staging, language, cases, source["exercises"], pdf=pdf)
        if pack_dir.exists():
            pack_dir.rmdir()
        os.replace(staging, pack_dir)
        pack_dir.chmod(0o755)  # mkdtemp made the staging folder private to its owner
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return pack_dir
