"""Grading a class: every submitted notebook run in isolation, then checked against the key.

``crmkit workshop grade DIR SUBMISSIONS_DIR`` takes ``SUBMISSIONS_DIR/<participant>/NN_*.ipynb``
and, for each notebook, in two steps that never share a process:

1. **Run, in a sandbox.** The notebook is executed by nbclient in a kernel of its own (a separate
   process), whose working folder is a fresh temporary folder holding only a copy of the pack's
   ``cases/`` — never ``answers/``, never other participants' notebooks. A first cell, added by
   the grader, installs a Python audit hook (which code cannot remove) that refuses to open or
   list anything under the pack or the submissions folder and refuses to start processes; an
   attempt is reported as "tried to read the answer key". Each cell has a time limit, the
   notebook a total, the whole class a budget; a cell past its limit stops the kernel.
2. **Check, in the grader.** From the executed notebook the grader reads only the answers that
   the self-checks recorded (:data:`crmkit.delivery.workshop.checks.ANSWER_MIME` outputs) and
   evaluates them with :func:`crmkit.delivery.workshop.checks.evaluate` against the key that it
   computes itself, with crmkit, on the pack's own copy of the case. Whatever the participant's
   kernel printed about passing is ignored; the key's values never leave the grader (the
   feedback is the checks' sentences, which name mistakes, not figures).

nbgrader and otter-grader are not used: both evaluate their hidden tests inside the
participant's kernel, where the participant's code can read or patch them; their feedback is an
assertion's traceback; and nbgrader needs a gradebook database and a course layout for what is
here a folder of notebooks.

A notebook that is not a notebook, is empty, raises, runs past its limit, or tries to read the
key is reported in that participant's row; the other notebooks are graded.
"""

from __future__ import annotations

import csv
import html
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from crmkit.core.i18n import t
from crmkit.delivery.exports import neutralise
from crmkit.delivery.workshop import checks
from crmkit.delivery.workshop.key import Case, exercise_key
from crmkit.delivery.workshop.pack import exercise_names

__all__ = ["Limits", "Submission", "grade_class", "run_submission", "write_overview"]

#: The word in every refusal of the sandbox's guard, to recognise it in a notebook's errors.
GUARD_MARK = "crmkit-workshop-guard"
#: The file the guard leaves in the sandbox when it refused something.
GUARD_FILE = ".crmkit-guard-tripped"
#: How much of a participant's error message is kept for the overview.
ERROR_CHARS = 200
NOTEBOOK_CHECK = "notebook"

GUARD_CELL = '''\
def _crmkit_guard(blocked, marker):
    import os, sys
    blocked = tuple(os.path.realpath(p) for p in blocked)
    paths = {"open", "os.listdir", "os.scandir", "os.chdir", "shutil.copyfile", "shutil.copytree",
             "os.rename", "os.remove", "glob.glob", "os.walk"}
    spawn = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "pty.spawn"}

    def refuse(what):
        try:
            with open(marker, "w") as f:
                f.write(what)
        except OSError:
            pass
        raise PermissionError(__MARK__ + ": " + what + " is not allowed in a graded notebook")

    def hook(event, args):
        if event in spawn:
            refuse(event)
        if event in paths and args:
            path = args[0]
            if isinstance(path, int) or path is None:
                return
            try:
                real = os.path.realpath(os.fsdecode(path))
            except (TypeError, ValueError):
                return
            if any(real == b or real.startswith(b + os.sep) for b in blocked):
                refuse(event)

    sys.addaudithook(hook)


_crmkit_guard(__BLOCKED__, __MARKER_FILE__)
del _crmkit_guard
'''


@dataclass
class Limits:
    """Time limits of a grading, in seconds.

    Parameters
    ----------
    cell : float
        One cell (an endless loop is stopped here).
    notebook : float
        One notebook, all its cells.
    total : float
        The whole class; notebooks not started in time are reported, not run.
    """

    cell: float = 120
    notebook: float = 300
    total: float = 3600


@dataclass
class Submission:
    """One participant's notebook: how it ran and what its checks gave."""

    participant: str
    file: str
    exercise: str | None
    status: str = "ws_status_ok"
    status_values: dict = field(default_factory=dict)
    results: list[checks.Result] = field(default_factory=list)

    @property
    def ran(self) -> bool:
        return self.status == "ws_status_ok"


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"


def recorded_answers(nb: nbformat.NotebookNode) -> dict[str, dict]:
    """The answers the self-checks recorded in a notebook's outputs: ``{check: record}``.

    The last record of a check wins (a participant may run a cell again)."""
    found: dict[str, dict] = {}
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            record = output.get("data", {}).get(checks.ANSWER_MIME)
            if isinstance(record, dict) and isinstance(record.get("check"), str):
                found[record["check"]] = record
    return found


def _guard_cell(blocked: list[Path], marker: Path) -> nbformat.NotebookNode:
    source = (GUARD_CELL.replace("__MARK__", repr(GUARD_MARK))
              .replace("__BLOCKED__", repr([str(p) for p in blocked]))
              .replace("__MARKER_FILE__", repr(str(marker))))
    return nbformat.v4.new_code_cell(source)


def execute_in_sandbox(nb: nbformat.NotebookNode, pack_dir: Path, blocked: list[Path],
                       limits: Limits, deadline: float) -> tuple[nbformat.NotebookNode, str, dict]:
    """Run a notebook in a kernel of its own, in a temporary copy of the cases.

    Returns the executed notebook (without the guard cell), a status key and its values.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    with tempfile.TemporaryDirectory(prefix="crmkit-grade-") as tmp:
        sandbox = Path(tmp)
        shutil.copytree(pack_dir / "cases", sandbox / "cases")
        (sandbox / "exercises").mkdir()
        marker = sandbox / GUARD_FILE
        run = nbformat.from_dict(nb)
        run.cells.insert(0, _guard_cell(blocked, marker))
        ends = min(deadline, time.monotonic() + limits.notebook)

        def cell_timeout(cell) -> int:
            return max(1, int(min(limits.cell, ends - time.monotonic())))

        client = NotebookClient(run, timeout=int(limits.cell), timeout_func=cell_timeout,
                                kernel_name="python3", allow_errors=False,
                                interrupt_on_timeout=False, startup_timeout=60,
                                resources={"metadata": {"path": str(sandbox / "exercises")}})
        status, values = "ws_status_ok", {}
        try:
            client.execute()
        except CellTimeoutError:
            status, values = "ws_status_timeout", {"seconds": int(round(limits.cell))}
        except CellExecutionError as error:
            status, values = "ws_status_error", {
                "error": _short(f"{error.ename}: {error.evalue}")}
        except DeadKernelError as error:
            status, values = "ws_status_error", {"error": _short(str(error))}
        except TimeoutError:
            status, values = "ws_status_timeout", {"seconds": int(round(limits.notebook))}
        if marker.exists() or GUARD_MARK in str(values.get("error", "")):
            status, values = "ws_status_read_key", {}
        run.cells.pop(0)
    return run, status, values


def run_submission(path: Path, participant: str, pack_dir: Path, blocked: list[Path],
                   limits: Limits, deadline: float, keys: dict) -> Submission:
    """Run and check one submitted notebook; any failure is reported in the result."""
    names = exercise_names()
    exercise = next((n for n, name in names.items() if path.name == name), None)
    sub = Submission(participant, path.name, exercise)
    if exercise is None:
        sub.status, sub.status_values = "ws_status_unknown_exercise", {
            "expected": ", ".join(names.values())}
        return sub
    if time.monotonic() >= deadline:
        sub.status = "ws_status_budget"
        return _unanswered(sub)
    try:
        nb = nbformat.read(path, as_version=4)
        if not isinstance(nb.get("cells"), list):
            raise ValueError("no cells")
    except Exception as error:  # noqa: BLE001 - anything unreadable is "not a notebook"
        sub.status, sub.status_values = "ws_status_not_notebook", {
            "error": _short(f"{type(error).__name__}: {error}")}
        return _unanswered(sub)
    code = [c for c in nb.cells if c.get("cell_type") == "code" and str(c.get("source")).strip()]
    if not code:
        sub.status = "ws_status_empty"
        return _unanswered(sub)
    for cell in nb.cells:  # what the participant saw when they ran it is not what we grade
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
    executed, sub.status, sub.status_values = execute_in_sandbox(nb, pack_dir, blocked, limits,
                                                                 deadline)
    if sub.status == "ws_status_read_key":
        return _unanswered(sub)
    answers = recorded_answers(executed)
    cases = {r.get("case") for r in answers.values()}
    case = next(iter(cases)) if len(cases) == 1 else None
    if answers and (case is None or not (pack_dir / "cases" / str(case)).is_dir()):
        sub.status, sub.status_values = "ws_status_unknown_case", {"case": _short(str(cases))}
        return _unanswered(sub)
    for check in checks.CHECKS[exercise]:
        if check.name not in answers:
            sub.results.append(checks.Result(check.name, False, "ws_fb_not_answered", {}))
            continue
        key = _key(keys, pack_dir, str(case), exercise)
        sub.results.append(checks.evaluate(exercise, check.name, answers[check.name]["value"],
                                           key))
    return sub


def _key(keys: dict, pack_dir: Path, case: str, exercise: str) -> dict:
    """The exercise's key on the pack's copy of the case, computed once per grading."""
    if case not in keys:
        keys[case] = {"case": Case(pack_dir / "cases" / case)}
    if exercise not in keys[case]:
        keys[case][exercise] = exercise_key(keys[case]["case"], exercise)
    return keys[case][exercise]


def _unanswered(sub: Submission) -> Submission:
    if sub.exercise is not None:
        sub.results = [checks.Result(c.name, False, "ws_fb_not_answered", {})
                       for c in checks.CHECKS[sub.exercise]]
    return sub


def submissions(submissions_dir: Path) -> Iterator[tuple[str, Path]]:
    """``(participant, notebook file)`` in a stable order; the overview files are skipped."""
    for folder in sorted(p for p in submissions_dir.iterdir() if p.is_dir()):
        if folder.name.startswith("."):
            continue
        for path in sorted(p for p in folder.iterdir() if p.is_file()):
            if not path.name.startswith("."):
                yield folder.name, path


def grade_class(pack_dir: str | Path, submissions_dir: str | Path,
                limits: Limits | None = None) -> list[Submission]:
    """Run and check every submission of a class.

    Parameters
    ----------
    pack_dir : path
        The workshop pack (``crmkit workshop new``).
    submissions_dir : path
        ``<participant>/NN_*.ipynb``.
    limits : Limits, optional
    """
    pack_dir, submissions_dir = Path(pack_dir).resolve(), Path(submissions_dir).resolve()
    limits = limits or Limits()
    deadline = time.monotonic() + limits.total
    blocked = [pack_dir, submissions_dir]
    keys: dict = {}
    return [run_submission(path, participant, pack_dir, blocked, limits, deadline, keys)
            for participant, path in submissions(submissions_dir)]


# --------------------------------------------------------------------------------------------
# The class overview
# --------------------------------------------------------------------------------------------

def overview_rows(graded: list[Submission]) -> list[dict]:
    """One row per participant, exercise and check (``notebook``: whether it ran)."""
    rows = []
    for sub in graded:
        exercise = sub.exercise or Path(sub.file).stem
        rows.append({"participant": sub.participant, "exercise": exercise,
                     "check": NOTEBOOK_CHECK, "passed": sub.ran})
        rows += [{"participant": sub.participant, "exercise": exercise, "check": r.check,
                  "passed": r.passed} for r in sub.results]
    return rows


def write_overview(graded: list[Submission], submissions_dir: str | Path,
                   lang: str = "en") -> tuple[Path, Path]:
    """Write ``overview.csv`` and ``overview.html`` into the submissions folder."""
    folder = Path(submissions_dir)
    rows = overview_rows(graded)
    csv_path = folder / "overview.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["participant", "exercise", "check", "passed"])
        writer.writeheader()
        for row in rows:
            writer.writerow({k: neutralise(str(v).lower() if isinstance(v, bool) else v)
                             for k, v in row.items()})
    html_path = folder / "overview.html"
    html_path.write_text(_html(graded, rows, lang), encoding="utf-8")
    return csv_path, html_path


def _html(graded: list[Submission], rows: list[dict], lang: str) -> str:
    e = html.escape
    yes, no = t("ws_ov_yes", lang), t("ws_ov_no", lang)
    parts = [f"<!DOCTYPE html><html lang='{lang}'><head><meta charset='utf-8'>"
             f"<title>{e(t('ws_ov_title', lang))}</title><style>"
             "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;"
             "margin-bottom:2em}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}"
             ".ok{color:#1a7f37}.ko{color:#b42318}</style></head><body>",
             f"<h1>{e(t('ws_ov_title', lang))}</h1>",
             f"<h2>{e(t('ws_ov_checks', lang))}</h2><table><tr>"
             f"<th>{e(t('ws_ov_exercise', lang))}</th><th>{e(t('ws_ov_check', lang))}</th>"
             f"<th>{e(t('ws_ov_got_it', lang))}</th></tr>"]
    tally: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        count = tally.setdefault((row["exercise"], row["check"]), [0, 0])
        count[0] += bool(row["passed"])
        count[1] += 1
    for (exercise, check), (passed, total) in sorted(tally.items()):
        parts.append(f"<tr><td>{e(exercise)}</td><td>{e(check)}</td>"
                     f"<td>{passed} / {total}</td></tr>")
    parts.append(f"</table><h2>{e(t('ws_ov_participants', lang))}</h2><table><tr>"
                 f"<th>{e(t('ws_ov_participant', lang))}</th>"
                 f"<th>{e(t('ws_ov_exercise', lang))}</th><th>{e(t('ws_ov_status', lang))}</th>"
                 f"<th>{e(t('ws_ov_check', lang))}</th><th>{e(t('ws_ov_passed', lang))}</th>"
                 f"<th>{e(t('ws_ov_feedback', lang))}</th></tr>")
    for sub in graded:
        status = t(sub.status, lang, **sub.status_values)
        results = sub.results or [None]
        for i, result in enumerate(results):
            head = (f"<td rowspan='{len(results)}'>{e(sub.participant)}</td>"
                    f"<td rowspan='{len(results)}'>{e(sub.file)}</td>"
                    f"<td rowspan='{len(results)}' class='{'ok' if sub.ran else 'ko'}'>"
                    f"{e(status)}</td>") if i == 0 else ""
            if result is None:
                parts.append(f"<tr>{head}<td></td><td></td><td></td></tr>")
                continue
            mark = (f"<span class='ok'>{e(yes)}</span>" if result.passed
                    else f"<span class='ko'>{e(no)}</span>")
            parts.append(f"<tr>{head}<td>{e(result.check)}</td><td>{mark}</td>"
                         f"<td>{e(result.text(lang))}</td></tr>")
    parts.append("</table></body></html>")
    return "".join(parts)
