"""Problems found in a client's input, collected and reported all at once.

A consultant who fixes one error only to meet the next wastes a day; so validation never stops
at the first problem. Every check appends a :class:`Problem` to a :class:`ProblemList`, and the
command line prints the whole list grouped by file and kind, a few examples per kind, then exits
with code 2. No traceback ever reaches the user for a mistake in their files.
"""

from __future__ import annotations

import contextvars
import difflib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from crmkit.core.i18n import t

#: The client's language while its files are checked: problems are found deep in the loaders
#: and the settings' validators, and each is written (and printed) in the language the consultant
#: and the client read (client.yaml's). The workspace loader sets it once per load.
LANGUAGE: contextvars.ContextVar[str] = contextvars.ContextVar("problem_language", default="en")


def problem_text(key: str, /, **values: object) -> str:
    """A problem's text in the language of the workspace being checked (:data:`LANGUAGE`)."""
    return t(key, LANGUAGE.get(), **values)

#: How many example rows or values are shown per kind of problem.
EXAMPLES_SHOWN = 5


@dataclass
class Problem:
    """One kind of problem in one file (and column), with a few examples.

    Parameters
    ----------
    file : str
        File name relative to the workspace, e.g. ``"transactions.csv"``.
    kind : str
        Short machine-readable kind, e.g. ``"unparseable_date"``, ``"missing_column"``.
    message : str
        What was found and what was expected, in plain English.
    column : str, optional
        Column (as named in the client's file) the problem is in.
    rows : list of int
        Line numbers in the file (1-based, header is line 1) of some examples.
    examples : list of str
        The offending values, as found, for the first few rows.
    count : int
        How many rows or values have this problem in total.
    """

    file: str
    kind: str
    message: str
    column: str | None = None
    rows: list[int] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)
    count: int = 1

    def render(self, with_file: bool = True) -> str:
        """Return the problem as one or two human-readable lines."""
        where = (self.file + ", " if with_file else "") + (
            problem_text("problem_column", column=self.column) if self.column else "")
        where = where.rstrip(", ")
        text = f"{where}: {self.message}" if where else self.message
        if self.count > 1:
            text += problem_text("problem_rows", count=self.count)
        details = []
        for i, row in enumerate(self.rows[:EXAMPLES_SHOWN]):
            value = self.examples[i] if i < len(self.examples) else None
            details.append(problem_text("problem_line", line=row)
                           + (f": {value!r}" if value is not None else ""))
        if not self.rows and self.examples:
            details = [repr(v) for v in self.examples[:EXAMPLES_SHOWN]]
        if details:
            more = self.count - len(details)
            text += ("\n    " + problem_text("problem_eg") + " " + "; ".join(details)
                     + (problem_text("problem_more", more=more) if more > 0 else ""))
        return text


class ProblemList:
    """An ordered collection of problems; truthy when any problem was found."""

    def __init__(self, problems: Iterable[Problem] = ()):
        self._problems: list[Problem] = list(problems)

    def add(self, file: str, kind: str, message: str, **details) -> Problem:
        """Record a problem and return it."""
        problem = Problem(file=file, kind=kind, message=message, **details)
        self._problems.append(problem)
        return problem

    def extend(self, other: Iterable[Problem]) -> None:
        self._problems.extend(other)

    def __iter__(self) -> Iterator[Problem]:
        return iter(self._problems)

    def __len__(self) -> int:
        return len(self._problems)

    def __bool__(self) -> bool:
        return bool(self._problems)

    def kinds(self) -> set[str]:
        return {p.kind for p in self._problems}

    def render(self) -> str:
        """All problems, grouped by file, as text for the terminal."""
        lines: list[str] = []
        by_file: dict[str, list[Problem]] = {}
        for p in self._problems:
            by_file.setdefault(p.file, []).append(p)
        for file, problems in by_file.items():
            lines.append(f"{file}:")
            for p in problems:
                lines.append("  - " + p.render(with_file=False).replace("\n", "\n  "))
        return "\n".join(lines)


class CrmkitError(Exception):
    """Base of every error crmkit raises on purpose.

    A :class:`UserError` is the user's mistake (exit 2, a message, no traceback); any other
    exception is a bug in crmkit (exit 1, the traceback kept in the failed notebook).
    """


class UserError(CrmkitError, ValueError):
    """A mistake in the client's files or settings; carries every problem found.

    The command line turns it into exit code 2 and a grouped message, never a traceback. It is a
    ``ValueError`` too, so code that guarded the library's former bare ``ValueError`` still works.

    Parameters
    ----------
    problems : ProblemList, iterable of Problem, or str
        The problems; a plain message becomes one problem in ``client.yaml``.
    file, kind : str
        For a plain message: the file it is about and the kind of problem.
    """

    def __init__(self, problems: ProblemList | Iterable[Problem] | str, *,
                 file: str = "client.yaml", kind: str = "invalid_setting"):
        if isinstance(problems, str):
            problems = [Problem(file=file, kind=kind, message=problems)]
        self.problems = problems if isinstance(problems, ProblemList) else ProblemList(problems)
        super().__init__(self.problems.render())


class WorkspaceError(UserError):
    """Raised when a client workspace cannot be used; carries every problem found."""


def closest(name: str, valid: Iterable[str]) -> str | None:
    """The valid name closest to a misspelt one ("champs" -> "champions"), or None."""
    valid = [str(v) for v in valid]
    folded = {v.lower(): v for v in valid}
    match = difflib.get_close_matches(str(name).lower(), list(folded), n=1, cutoff=0.6)
    if match:
        return folded[match[0]]
    starts = [v for v in valid if v.lower().startswith(str(name).lower()[:4])] if name else []
    return starts[0] if len(starts) == 1 else None
