"""``crmkit workshop new`` and ``crmkit workshop grade``: the trainer's two commands.

Exit codes as the rest of the command line: 0 done; 2 the trainer's mistake (an unknown case, a
folder that is not empty or not a pack), with a message and nothing written; 1 a failure.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from crmkit.core.i18n import t
from crmkit.core.problems import UserError

EXIT_OK, EXIT_FAILED, EXIT_INVALID_INPUT = 0, 1, 2


def _report(error: UserError) -> int:
    print(error.problems.render(), file=sys.stderr)
    return EXIT_INVALID_INPUT


def new(args: argparse.Namespace) -> int:
    """Write a workshop pack (``args``: ``pack_dir``, ``language``, ``case`` or None)."""
    from crmkit.delivery.workshop.pack import write_pack

    language = getattr(args, "language", None) or "en"
    try:
        path = write_pack(args.pack_dir, language, getattr(args, "case", None))
    except UserError as error:
        return _report(error)
    print(t("ws_new_done", language, path=path))
    return EXIT_OK


def pack_language(pack_dir: Path) -> str:
    """The participants' language of a pack, from its first exercise notebook."""
    for path in sorted((pack_dir / "exercises").glob("*.ipynb")):
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))["metadata"]["crmkit_workshop"]
            return meta.get("language", "en")
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return "en"


def grade(args: argparse.Namespace, limits=None) -> int:
    """Grade ``args.submissions_dir`` against the pack ``args.pack_dir``; write the overview."""
    from crmkit.delivery.workshop import grading

    pack_dir, submissions_dir = Path(args.pack_dir), Path(args.submissions_dir)
    lang = pack_language(pack_dir) if pack_dir.is_dir() else "en"
    try:
        if not ((pack_dir / "cases").is_dir() and (pack_dir / "exercises").is_dir()):
            raise UserError(t("ws_err_not_pack", lang), file=str(pack_dir), kind="not_a_pack")
        if not submissions_dir.is_dir():
            raise UserError(t("ws_err_no_submissions", lang), file=str(submissions_dir),
                            kind="no_submissions")
    except UserError as error:
        return _report(error)
    graded = grading.grade_class(pack_dir, submissions_dir, limits)
    _, page = grading.write_overview(graded, submissions_dir, lang)
    print(t("ws_grade_done", lang, notebooks=len(graded),
            participants=len({g.participant for g in graded}), path=page))
    return EXIT_OK
