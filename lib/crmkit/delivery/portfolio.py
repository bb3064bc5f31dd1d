"""The portfolio overview of a batch: every client's decision and figures on one page.

``crmkit batch`` ends by writing ``REPORTS_DIR/portfolio.json`` (machine-readable) and
``REPORTS_DIR/portfolio.html`` (the consultant's page: static, opens offline, no CDN, a small
inline script to sort it by any column). Per client: the objective, the decision, the net present
value of its CRM project and the value of its customer base (each in the client's currency), its
top segments by value, how its run went and a link to its report. Everything is read from the run
folders (``results.json`` and ``run.json``, see docs/data-contract.md), never recomputed here.

The page is in the consultant's language; the segment names are the client's own (as its report
names them). Client names and messages come from the clients' files and are escaped.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from urllib.parse import quote

import jinja2
import yaml

from crmkit.core import paths
from crmkit.core.i18n import Formatter, t

__all__ = ["STATUSES", "TOP_SEGMENTS", "client_row", "render_html", "write_overview"]

#: How a client's run went: a new run (done), its last run still matches its inputs (unchanged),
#: a workbook failed or the run crashed (failed), its workspace is invalid (invalid).
STATUSES = ("done", "unchanged", "failed", "invalid")
#: Segments shown per client, by total customer value.
TOP_SEGMENTS = 3
#: Shown first: the clients that need the consultant's attention.
_ORDER = {"invalid": 0, "failed": 1, "done": 2, "unchanged": 3}


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _settings(client_dir: Path) -> dict:
    """The few settings the overview shows, read leniently (an invalid client.yaml is shown too)."""
    try:
        raw = yaml.safe_load((client_dir / "client.yaml").read_text(encoding="utf-8-sig"))
    except Exception:  # noqa: BLE001 - an unreadable client.yaml is the client's reported problem
        return {}
    return raw if isinstance(raw, dict) else {}


def _link(path: Path | None, reports_dir: Path) -> str | None:
    """A link relative to REPORTS_DIR (the page is opened from there), URL-quoted."""
    if path is None:
        return None
    try:
        relative = Path(path).resolve().relative_to(reports_dir.resolve())
    except ValueError:
        return Path(path).resolve().as_uri()
    return "/".join(quote(part) for part in relative.parts)


def client_row(outcome: dict, reports_dir: str | Path) -> dict:
    """One client's line of the overview, from its batch outcome and its run folder.

    Parameters
    ----------
    outcome : dict
        What the batch found for the client: ``slug``, ``client_dir``, ``status`` (one of
        :data:`STATUSES`), ``run`` (its run folder, or None), ``message``, ``seconds``.
    reports_dir : path
        REPORTS_DIR (links are made relative to it).

    Returns
    -------
    dict
        ``slug``, ``name``, ``status``, ``message``, ``seconds``, ``run``, ``report`` (links
        relative to REPORTS_DIR, or None), ``language``, ``currency``, ``objective``,
        ``decision``, ``npv``, ``customer_value``, ``customers`` and ``top_segments`` (up to
        :data:`TOP_SEGMENTS` of ``segment``, ``name``, ``value``, ``share``); a figure the run did
        not produce is None.
    """
    reports_dir = Path(reports_dir)
    client_dir = Path(outcome["client_dir"])
    run = Path(outcome["run"]) if outcome.get("run") else None
    settings = _settings(client_dir)
    info = _read_json(run / "run.json") if run else {}
    finished = run is not None and outcome["status"] in ("done", "unchanged")
    results = _read_json(run / "results.json") if finished else {}
    segments = results.get("segments") or {}
    implementation = results.get("implementation") or {}
    total = segments.get("total_clv")
    ranked = sorted((s for s in segments.get("value") or [] if s.get("total_clv") is not None),
                    key=lambda s: s["total_clv"], reverse=True)[:TOP_SEGMENTS]
    currency = settings.get("currency")
    name = info.get("client") or settings.get("name") or outcome["slug"]
    return {
        "slug": outcome["slug"],
        "name": str(name),
        "client_dir": str(client_dir),
        "status": outcome["status"],
        "message": outcome.get("message") or "",
        "seconds": outcome.get("seconds"),
        "run": _link(run, reports_dir),
        "report": _link(run / "report.html", reports_dir) if finished else None,
        "language": info.get("language") or settings.get("language"),
        "currency": currency if isinstance(currency, str) and len(currency) == 3 else "EUR",
        "objective": ((results.get("context") or {}).get("objective") or {}).get("chosen"),
        "decision": implementation.get("decision"),
        "npv": implementation.get("npv"),
        "customer_value": total,
        "customers": (segments.get("average") or {}).get("customers"),
        "top_segments": [{"segment": s.get("segment"), "name": s.get("name") or s.get("segment"),
                          "value": s["total_clv"],
                          "share": s["total_clv"] / total if total else None}
                         for s in ranked],
    }


def _counts(rows: list[dict]) -> dict[str, int]:
    return {status: sum(r["status"] == status for r in rows) for status in STATUSES}


def _label(prefix: str, value: str | None, lang: str) -> str:
    if value is None:
        return "–"
    try:
        return t(f"{prefix}{value}", lang)
    except KeyError:  # a value a newer workbook writes: shown as written
        return str(value)


def render_html(rows: list[dict], lang: str, generated: dt.datetime) -> str:
    """The overview page (one table, sortable by any column) in ``lang``."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(paths.TEMPLATES / "portfolio"),
                             autoescape=jinja2.select_autoescape(default=True),
                             undefined=jinja2.StrictUndefined)
    counts = _counts(rows)
    shown = []
    for row in sorted(rows, key=lambda r: (_ORDER.get(r["status"], 9), r["name"].casefold())):
        fmt = Formatter(lang, row["currency"])
        shown.append({
            **row,
            "status_text": t(f"portfolio_status_{row['status']}", lang),
            "status_rank": _ORDER.get(row["status"], 9),
            "objective_text": _label("objective_", row["objective"], lang),
            "decision_text": _label("decision_", row["decision"], lang),
            "npv_text": fmt.money(row["npv"]),
            "value_text": fmt.money(row["customer_value"]),
            "segments_text": [t("portfolio_segment_share", lang, name=s["name"],
                                share=fmt.pct(s["share"])) for s in row["top_segments"]],
            "message_head": row["message"].strip().splitlines()[0] if row["message"].strip()
            else "",
        })
    generated_text = Formatter(lang).date(generated.date())
    return env.get_template("portfolio.html.j2").render(
        lang=lang, rows=shown, t=lambda key, **values: t(key, lang, **values),
        intro=t("portfolio_intro", lang, total=len(rows), generated=generated_text, **counts),
        generated=generated.isoformat(timespec="seconds"))


def _write(path: Path, text: str) -> None:
    """Write beside, then rename: a reader never finds half a page."""
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def write_overview(outcomes: list[dict], reports_dir: str | Path, lang: str, *,
                   generated: dt.datetime | None = None,
                   clients_dir: str | Path | None = None) -> tuple[Path, Path]:
    """Write ``portfolio.html`` and ``portfolio.json`` into REPORTS_DIR.

    Parameters
    ----------
    outcomes : list of dict
        One per client, as :func:`client_row` takes them.
    reports_dir : path
        REPORTS_DIR.
    lang : {"en", "es"}
        The consultant's language.
    generated : datetime, optional
        When the batch ran (default: now).
    clients_dir : path, optional
        CLIENTS_DIR, recorded in the JSON.

    Returns
    -------
    (Path, Path)
        The HTML page and the JSON file.
    """
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    generated = generated or dt.datetime.now()
    rows = [client_row(outcome, reports_dir) for outcome in outcomes]
    document = {"generated": generated.isoformat(timespec="seconds"), "language": lang,
                "clients_dir": str(Path(clients_dir).resolve()) if clients_dir else None,
                "reports_dir": str(reports_dir.resolve()), "counts": _counts(rows),
                "clients": sorted(rows, key=lambda r: r["slug"])}
    html_path, json_path = reports_dir / "portfolio.html", reports_dir / "portfolio.json"
    _write(json_path, json.dumps(document, indent=2, ensure_ascii=False))
    _write(html_path, render_html(rows, lang, generated))
    return html_path, json_path
