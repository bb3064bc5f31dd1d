"""The ``crmkit`` command line: new, check, run, dashboard, demo, lab, workshop, batch.

Exit codes (DESIGN.md): 0 success; 2 invalid input, with a message that names the file, the row
or column, what was found and what was expected, and nothing written; 1 a workbook failed.
A user's mistake never prints a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from crmkit import __version__
from crmkit.core.i18n import t
from crmkit.core.problems import UserError

EXIT_OK = 0
EXIT_WORKBOOK_FAILED = 1
EXIT_INVALID_INPUT = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crmkit",
        description="CRM strategy workbook: from a client's customer data to a CRM strategy.")
    parser.add_argument("--version", action="version", version=f"crmkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("new", help="scaffold a client workspace from the template")
    p.add_argument("client_dir", type=Path, metavar="CLIENT_DIR")
    p.add_argument("--name", help="the client's name (default: from the folder name)")
    p.add_argument("--language", choices=["en", "es"], default="en")
    p.add_argument("--from", dest="source", type=Path, metavar="EXPORTS_DIR",
                   help="a folder of the client's exports: guess the mapping and the files: "
                        "section of client.yaml from them (the exports are copied, never changed)")

    p = sub.add_parser("check", help="validate a client workspace; write nothing")
    p.add_argument("client_dir", type=Path, metavar="CLIENT_DIR")

    p = sub.add_parser("run", help="run the workbooks and write a report")
    p.add_argument("client_dir", type=Path, metavar="CLIENT_DIR")
    p.add_argument("--out", type=Path, default=Path("reports"), metavar="REPORTS_DIR",
                   help="where run folders are written (default: ./reports)")
    p.add_argument("--language", choices=["en", "es"], help="default: the client's language")
    p.add_argument("--quiet", action="store_true", help="no progress display")

    p = sub.add_parser("dashboard", help="serve this client's dashboard, and only it")
    p.add_argument("client_dir", type=Path, metavar="CLIENT_DIR")
    p.add_argument("--port", type=int, default=8866)
    p.add_argument("--language", choices=["en", "es"])
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--reports", type=Path, default=Path("reports"), metavar="REPORTS_DIR",
                   help="where the client's runs are; the latest is shown (default: ./reports)")
    p.add_argument("--max-kernels", type=int, default=4, metavar="N",
                   help="the most pages served at once, one kernel each; beyond, a 'busy, try "
                        "again in a minute' page (default: 4)")

    p = sub.add_parser("demo", help="run the bundled demo client end to end")
    p.add_argument("--out", type=Path, default=Path("reports"), metavar="REPORTS_DIR")
    p.add_argument("--language", choices=["en", "es"])
    p.add_argument("--quiet", action="store_true")

    p = sub.add_parser("lab", help="open JupyterLab on this client's workbooks")
    p.add_argument("client_dir", type=Path, nargs="?", metavar="CLIENT_DIR",
                   help="the client workspace (default: the bundled demo client)")
    p.add_argument("--language", choices=["en", "es"], help="default: the client's language")
    p.add_argument("--port", type=int, default=8888)

    p = sub.add_parser("workshop", help="a CRM strategy workshop: the pack and its grading")
    workshop = p.add_subparsers(dest="workshop_command", required=True, metavar="ACTION")
    w = workshop.add_parser("new", help="write a workshop pack: cases, exercises, answers, guide")
    w.add_argument("pack_dir", type=Path, metavar="DIR")
    w.add_argument("--language", choices=["en", "es"], default="en")
    w.add_argument("--case", metavar="NAME", help="only this case (default: every case)")
    w = workshop.add_parser("grade", help="grade the participants' notebooks against the key")
    w.add_argument("pack_dir", type=Path, metavar="DIR")
    w.add_argument("submissions_dir", type=Path, metavar="SUBMISSIONS_DIR")

    p = sub.add_parser("batch", help="run every client workspace under a folder")
    p.add_argument("clients_dir", type=Path, metavar="CLIENTS_DIR")
    p.add_argument("--out", type=Path, default=Path("reports"), metavar="REPORTS_DIR")
    p.add_argument("--workers", type=int, metavar="N",
                   help="workers of a local Dask cluster (default: one per core)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="submit to this existing Dask scheduler instead of a local cluster")
    p.add_argument("--resume", action="store_true",
                   help="skip clients whose latest run matches their current inputs")
    p.add_argument("--language", choices=["en", "es"], default="en",
                   help="language of the portfolio overview")
    p.add_argument("--quiet", action="store_true")
    return parser


def _check(args: argparse.Namespace) -> int:
    from crmkit.inputs.workspace import load_workspace

    workspace = load_workspace(args.client_dir)
    print(workspace.describe(workspace.config.language))
    return EXIT_OK


def _new(args: argparse.Namespace) -> int:
    from crmkit.inputs.scaffold import new_workspace

    extra = {"source": args.source} if args.source is not None else {}
    path = new_workspace(args.client_dir, name=args.name, language=args.language, **extra)
    if args.source is None:
        print(f"Created {path}. Next: put the client's exports in it and run "
              f"'crmkit check {path}'.")
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    from crmkit.delivery.runner import WorkbookFailed, run_client

    try:
        run = run_client(args.client_dir, args.out, language=args.language,
                         progress=not args.quiet)
    except WorkbookFailed as failure:
        print(failure.explain(), file=sys.stderr)
        return EXIT_WORKBOOK_FAILED
    print(run.report_path)
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from crmkit.delivery.runner import demo_client_dir

    args.client_dir = demo_client_dir()
    return _run(args)


def _dashboard(args: argparse.Namespace) -> int:
    from crmkit.delivery.dashboard import serve

    return serve(args.client_dir, port=args.port, language=args.language, host=args.host,
                 reports_dir=args.reports, max_kernels=args.max_kernels)


def _lab(args: argparse.Namespace) -> int:
    from crmkit.delivery.lab import lab_command

    return lab_command(args)


def _workshop(args: argparse.Namespace) -> int:
    from crmkit.delivery.workshop import commands

    return {"new": commands.new, "grade": commands.grade}[args.workshop_command](args)


def _batch(args: argparse.Namespace) -> int:
    from crmkit.delivery.batch import batch_command

    return batch_command(args)


def _language_of(client_dir: Path | None) -> str:
    """The client's language for crmkit's own messages: client.yaml's ``language``, else en."""
    from crmkit.inputs.workspace import client_language  # as the commands: pandas loads late

    return client_language(client_dir) if client_dir else "en"


COMMANDS = {"new": _new, "check": _check, "run": _run, "demo": _demo, "dashboard": _dashboard,
            "lab": _lab, "workshop": _workshop, "batch": _batch}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``crmkit`` command; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except UserError as error:
        count = len(error.problems)
        where = getattr(args, "client_dir", None)
        key = "check_summary_one" if count == 1 else "check_summary_many"
        print(t(key, _language_of(where), command=args.command, count=count,
                where=where or "the workspace") + "\n", file=sys.stderr)
        print(error.problems.render(), file=sys.stderr)
        return EXIT_INVALID_INPUT
    except KeyboardInterrupt:
        print(t("check_interrupted", _language_of(getattr(args, "client_dir", None))),
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
