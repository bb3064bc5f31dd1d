"""``crmkit batch``: every client under a folder on Dask, failure isolation, resume, portfolio.

The fast tests cover the bad input (exit 2, a clear message, nothing written), finding the
workspaces, telling an unchanged run from a changed one, and the overview's rendering on run
folders written here with hand-chosen figures. The slow ones run real batches on a LocalCluster
of two workers (four clients: two good, one invalid, one whose workbook fails; then --resume),
and one whose run kills its worker.

Two settings, read only in tests, make a failure cheap: ``CRMKIT_TEST_FAIL_CLIENT`` (a client's
first workbook fails, :data:`crmkit.delivery.runner.FAIL_ENV`) and ``CRMKIT_TEST_CRASH_WORKER``
(the task kills its Dask worker, :data:`crmkit.delivery.batch.CRASH_ENV`).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import shutil
import socket
import time
from pathlib import Path

import pytest
from conftest import BATCH_CLIENTS, HOSTILE_NAME, crmkit_cli, invalid_workspace

from crmkit.core import paths
from crmkit.core.i18n import Formatter, t
from crmkit.delivery import portfolio
from crmkit.delivery.batch import CRASH_ENV, _how, find_workspaces, run_one
from crmkit.delivery.cli import main
from crmkit.delivery.pdf import BROWSER_ENV
from crmkit.delivery.runner import FAIL_ENV, latest_run, unchanged_run
from crmkit.inputs.workspace import load_workspace

DEMO = paths.DEMO_CLIENTS


# ------------------------------------------------------------------------------------------
# bad input: exit 2, a clear message, nothing written


@pytest.mark.parametrize("case, expected", [
    ("missing", "folder not found"),
    ("file", "is a file, not a folder"),
    ("empty", "no client workspace in it (found nothing)"),
    ("no_workspace", "no client workspace in it (found 'archive/', 'notes.txt')"),
    ("workspace", "is itself a client workspace"),
])
def test_bad_clients_dir_exits_2_with_a_clear_message(tmp_path, capsys, case, expected):
    clients = tmp_path / "clients"
    if case == "file":
        clients.write_text("not a folder", encoding="utf-8")
    elif case == "empty":
        clients.mkdir()
    elif case == "no_workspace":
        (clients / "archive").mkdir(parents=True)
        (clients / "notes.txt").write_text("q3", encoding="utf-8")
    elif case == "workspace":
        clients.mkdir()
        (clients / "client.yaml").write_text("name: Acme\n", encoding="utf-8")
    out = tmp_path / "reports"
    assert main(["batch", str(clients), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"crmkit batch: {clients}: " in err and expected in err
    assert "expected" in err and "Traceback" not in err
    assert not out.exists()  # nothing written


def test_bad_input_messages_in_spanish(tmp_path, capsys):
    assert main(["batch", str(tmp_path / "nada"), "--language", "es", "--quiet"]) == 2
    assert "no se encuentra la carpeta" in capsys.readouterr().err


def test_workers_must_be_at_least_one(tmp_path, capsys):
    invalid_workspace(tmp_path / "clients" / "acme")
    assert main(["batch", str(tmp_path / "clients"), "--workers", "0",
                 "--out", str(tmp_path / "reports")]) == 2
    assert "--workers 0; expected a whole number of at least 1" in capsys.readouterr().err
    assert not (tmp_path / "reports").exists()


def test_workers_and_scheduler_together(tmp_path, capsys):
    invalid_workspace(tmp_path / "clients" / "acme")
    assert main(["batch", str(tmp_path / "clients"), "--workers", "2", "--scheduler",
                 "tcp://127.0.0.1:8786", "--out", str(tmp_path / "reports")]) == 2
    assert "expected one of them" in capsys.readouterr().err
    assert not (tmp_path / "reports").exists()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens on it once closed


def test_scheduler_that_does_not_answer_exits_2_within_10_seconds(tmp_path, capsys):
    invalid_workspace(tmp_path / "clients" / "acme")
    address = f"tcp://127.0.0.1:{_closed_port()}"
    started = time.perf_counter()
    code = main(["batch", str(tmp_path / "clients"), "--scheduler", address,
                 "--out", str(tmp_path / "reports")])
    assert code == 2 and time.perf_counter() - started < 10
    err = capsys.readouterr().err
    assert f"no Dask scheduler answered at {address}" in err and "dask scheduler" in err
    assert not (tmp_path / "reports").exists()


def test_scheduler_address_that_is_not_one(tmp_path, capsys):
    invalid_workspace(tmp_path / "clients" / "acme")
    started = time.perf_counter()
    assert main(["batch", str(tmp_path / "clients"), "--scheduler", "nonsense:::",
                 "--out", str(tmp_path / "reports")]) == 2
    assert time.perf_counter() - started < 10
    assert "invalid address 'nonsense:::'" in capsys.readouterr().err


def test_find_workspaces(tmp_path):
    root = tmp_path / "clients"
    for name in ("beta", "alpha"):
        (root / name).mkdir(parents=True)
        (root / name / "client.yaml").write_text("name: x\n", encoding="utf-8")
    (root / "no_yaml").mkdir()  # exports but no client.yaml: run, and reported invalid
    (root / "no_yaml" / "transactions.csv").write_text("customer_id,date,amount\n")
    (root / "archive").mkdir()  # neither: left out
    (root / "archive" / "old.zip").write_bytes(b"")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "client.yaml").write_text("name: x\n", encoding="utf-8")
    (root / "readme.txt").write_text("", encoding="utf-8")
    assert [p.name for p in find_workspaces(root)] == ["alpha", "beta", "no_yaml"]


# ------------------------------------------------------------------------------------------
# which run is the latest, and is it unchanged


def _run_folder(reports: Path, slug: str, name: str, inputs: dict | None = None) -> Path:
    folder = reports / slug / name
    folder.mkdir(parents=True)
    if inputs is not None:
        (folder / "run.json").write_text(json.dumps({"inputs": inputs}), encoding="utf-8")
    return folder


def test_latest_run_orders_by_start_then_counter(tmp_path):
    reports = tmp_path / "reports"
    assert latest_run(reports / "acme") is None
    _run_folder(reports, "acme", "2026-01-02T101500")
    _run_folder(reports, "acme", "2026-01-02T101500-failed")
    # started in the same second, after the failed one: the runner named it "-2"
    last = _run_folder(reports, "acme", "2026-01-02T101500-2")
    _run_folder(reports, "acme", ".2026-01-03T000000.partial-123")  # staging, not a run
    _run_folder(reports, "acme", "notes")
    assert latest_run(reports / "acme") == last
    later = _run_folder(reports, "acme", "2026-01-03T090000-failed")
    assert latest_run(reports / "acme") == later


def test_unchanged_run_compares_the_inputs_checksums(tmp_path):
    client = tmp_path / "clients" / "retail"
    shutil.copytree(DEMO / "retail", client)
    reports = tmp_path / "reports"
    checksums = load_workspace(client).checksums
    assert set(checksums) >= {"client.yaml", "customers.csv", "transactions.csv"}
    assert unchanged_run(client, reports) is None  # no run yet
    run = _run_folder(reports, "retail", "2026-01-02T101500", checksums)
    assert unchanged_run(client, reports) == run

    # a file the workspace reads that the run did not: a change
    _run_folder(reports, "retail", "2026-01-02T101501",
                {k: v for k, v in checksums.items() if k != "survey.csv"})
    assert unchanged_run(client, reports) is None
    # the latest run failed: run again, even with the same inputs
    _run_folder(reports, "retail", "2026-01-02T101502-failed", checksums)
    assert unchanged_run(client, reports) is None
    run = _run_folder(reports, "retail", "2026-01-02T101503", checksums)
    assert unchanged_run(client, reports) == run
    # a changed file (a comment in client.yaml is a change of input)
    with (client / "client.yaml").open("a", encoding="utf-8") as handle:
        handle.write("# reviewed with the client\n")
    assert unchanged_run(client, reports) is None


def test_run_one_reports_an_invalid_workspace(tmp_path):
    client = invalid_workspace(tmp_path / "clients" / "acme")
    outcome = run_one(str(client), str(tmp_path / "reports"))  # outside Dask: the same task
    assert (outcome["slug"], outcome["status"], outcome["exit_code"]) == ("acme", "invalid", 2)
    # a client.yaml that is not YAML is the one problem told: its files cannot be read without it
    assert outcome["message"].startswith(f"crmkit run: 1 problem in {client}")
    assert "client.yaml:\n  - not valid YAML" in outcome["message"] and outcome["run"] is None
    assert not (tmp_path / "reports" / "acme").exists()


def test_run_one_resume_skips_an_unchanged_client(tmp_path, monkeypatch):
    client = tmp_path / "clients" / "retail"
    shutil.copytree(DEMO / "retail", client)
    reports = tmp_path / "reports"
    run = _run_folder(reports, "retail", "2026-01-02T101500", load_workspace(client).checksums)
    monkeypatch.setenv(CRASH_ENV, "retail")  # were it run, this process would die
    outcome = run_one(str(client), str(reports), resume=True)
    assert (outcome["status"], outcome["run"]) == ("unchanged", str(run))


def test_exit_of_a_run_killed_by_a_signal():
    assert _how(-9) == "signal SIGKILL" and _how(70) == "exit code 70"


# ------------------------------------------------------------------------------------------
# the overview, on run folders with hand-chosen figures

RESULTS = {
    "context": {"objective": {"chosen": "retain"}},
    "segments": {
        "average": {"customers": 1000},
        "total_clv": 200000.0,
        "value": [{"segment": "small", "name": "Small & new", "total_clv": 20000.0},
                  {"segment": "top", "name": "Top <b>", "total_clv": 120000.0},
                  {"segment": "mid", "name": "Middle", "total_clv": 50000.0},
                  {"segment": "rest", "name": "Rest", "total_clv": 10000.0}],
    },
    "implementation": {"decision": "go_with_conditions", "npv": 12345.6},
}


def _client(root: Path, slug: str, name: str, currency: str) -> Path:
    folder = root / slug
    folder.mkdir(parents=True)
    (folder / "client.yaml").write_text(
        f"name: {json.dumps(name)}\ncurrency: {currency}\nlanguage: en\n", encoding="utf-8")
    return folder


@pytest.fixture
def outcomes(tmp_path):
    clients, reports = tmp_path / "clients", tmp_path / "reports"
    good = _client(clients, "acme", "Acme <script>alert(1)</script> & Co", "USD")
    run = _run_folder(reports, "acme", "2026-01-02T101500", {})
    (run / "run.json").write_text(json.dumps({"client": "Acme <script>alert(1)</script> & Co",
                                              "language": "en", "inputs": {}}))
    (run / "results.json").write_text(json.dumps(RESULTS), encoding="utf-8")
    (run / "report.html").write_text("<html></html>", encoding="utf-8")
    old = _client(clients, "beta", "Beta Banca", "EUR")
    run_b = _run_folder(reports, "beta", "2025-12-01T080000", {})
    (run_b / "results.json").write_text(json.dumps({
        **RESULTS, "implementation": {"decision": "no_go", "npv": -5000.0}}), encoding="utf-8")
    failing = _client(clients, "gamma", "Gamma", "GBP")
    kept = _run_folder(reports, "gamma", "2026-01-02T101500-failed")
    invalid = invalid_workspace(clients / "delta")
    return reports, [
        {"slug": "acme", "client_dir": str(good), "status": "done", "run": str(run),
         "message": "", "seconds": 61.0},
        {"slug": "beta", "client_dir": str(old), "status": "unchanged", "run": str(run_b),
         "message": "", "seconds": 3.0},
        {"slug": "gamma", "client_dir": str(failing), "status": "failed", "run": str(kept),
         "message": "crmkit run: workbook 02_segments.ipynb failed at cell [4]: <ValueError>",
         "seconds": 20.0},
        {"slug": "delta", "client_dir": str(invalid), "status": "invalid", "run": None,
         "message": "crmkit run: 1 problem in delta; nothing was written.", "seconds": 1.0},
    ]


def test_client_row_reads_the_run_folder(outcomes):
    reports, items = outcomes
    row = portfolio.client_row(items[0], reports)
    assert row["name"] == "Acme <script>alert(1)</script> & Co"
    assert (row["objective"], row["decision"], row["npv"]) == ("retain", "go_with_conditions",
                                                               12345.6)
    assert row["customer_value"] == 200000.0 and row["currency"] == "USD"
    # by total value: 120k of 200k, then 50k, then 20k; the fourth is left out
    assert [(s["segment"], s["share"]) for s in row["top_segments"]] == [
        ("top", 0.6), ("mid", 0.25), ("small", 0.1)]
    assert row["report"] == "acme/2026-01-02T101500/report.html"
    failed = portfolio.client_row(items[2], reports)
    assert failed["report"] is None and failed["run"] == "gamma/2026-01-02T101500-failed"
    assert failed["npv"] is None and failed["top_segments"] == []
    invalid = portfolio.client_row(items[3], reports)
    assert invalid["name"] == "delta" and invalid["run"] is None  # client.yaml unreadable


def test_overview_html_and_json(outcomes):
    reports, items = outcomes
    page, data = portfolio.write_overview(items, reports, "en",
                                          generated=dt.datetime(2026, 1, 2, 11, 0))
    document = json.loads(data.read_text(encoding="utf-8"))
    assert document["counts"] == {"done": 1, "unchanged": 1, "failed": 1, "invalid": 1}
    assert [c["slug"] for c in document["clients"]] == ["acme", "beta", "delta", "gamma"]
    text = page.read_text(encoding="utf-8")
    # names and messages are escaped; segment names too
    assert "<script>alert(1)</script>" not in text
    assert html.escape("Acme <script>alert(1)</script> & Co") in text
    assert "Top &lt;b&gt; (60%)" in text and "&lt;ValueError&gt;" in text
    # figures in each client's currency, as crmkit formats them
    assert "$12,346" in text and "$200,000" in text and "-€5,000" in text
    assert Formatter("en", "USD").money(12345.6) == "$12,346"
    assert "Go, with conditions" in text and "No go" in text
    assert "Retain current customers" in text
    assert 'href="acme/2026-01-02T101500/report.html"' in text
    assert 'href="gamma/2026-01-02T101500-failed/"' in text
    # raw figures to sort on, a script that sorts, nothing fetched from elsewhere
    assert 'data-sort="12345.6"' in text and "aria-sort" in text and "<script>" in text
    assert not re.search(r'(src|href)="(https?:)?//', text)
    # the clients that need attention come first
    order = re.findall(r'<tr data-slug="([^"]+)"', text)
    assert order == ["delta", "gamma", "acme", "beta"]
    assert t("portfolio_intro", "en", total=4, generated=Formatter("en").date(
        dt.date(2026, 1, 2)), done=1,
             unchanged=1, failed=1, invalid=1) in text


def test_overview_in_spanish(outcomes):
    reports, items = outcomes
    page, _ = portfolio.write_overview(items, reports, "es")
    text = page.read_text(encoding="utf-8")
    assert '<html lang="es">' in text and "Cartera de clientes" in text
    assert "12.346\xa0US$" in text or "12.346 US$" in text
    assert "Adelante, con condiciones" in text and "Sin cambios" in text
    assert "Entradas no válidas" in text and "Abrir el informe" in text


# ------------------------------------------------------------------------------------------
# real batches on a LocalCluster of two workers


def _statuses(reports: Path) -> dict[str, str]:
    document = json.loads((reports / "portfolio.json").read_text(encoding="utf-8"))
    return {c["slug"]: c["status"] for c in document["clients"]}


def _runs(reports: Path, slug: str) -> list[str]:
    return sorted(p.name for p in (reports / slug).iterdir() if not p.name.startswith("."))


@pytest.mark.slow
def test_batch_of_four_then_resume(shared_runs, tmp_path):
    # the session's batch (conftest.py): bank and the hostile retail copy good, "failing" whose
    # first workbook fails, "broken" invalid; its two good runs are other tests' shared runs
    batch = shared_runs.batch()
    clients, reports = batch.clients, batch.reports
    assert batch.returncode == 1, batch.stderr
    assert _statuses(reports) == {"hostile": "done", "bank": "done", "failing": "failed",
                                  "broken": "invalid"}
    for slug in ("hostile", "bank"):
        (run,) = _runs(reports, slug)
        folder = reports / slug / run
        assert (folder / "report.html").is_file() and (folder / "run.json").is_file()
        results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
        assert results["implementation"]["decision"] in ("go", "go_with_conditions", "no_go")
    (kept,) = _runs(reports, "failing")
    assert kept.endswith("-failed")  # the failed run is kept for diagnosis
    assert not (reports / "broken").exists()  # an invalid workspace writes nothing
    document = json.loads((reports / "portfolio.json").read_text(encoding="utf-8"))
    rows = {c["slug"]: c for c in document["clients"]}
    bank = json.loads((reports / "bank" / _runs(reports, "bank")[0] / "results.json"
                       ).read_text(encoding="utf-8"))
    assert rows["bank"]["npv"] == bank["implementation"]["npv"]
    assert rows["bank"]["customer_value"] == bank["segments"]["total_clv"]
    assert rows["bank"]["name"] == "Banco Meridiano"
    assert rows["hostile"]["name"] == HOSTILE_NAME  # as written; escaped on the page
    assert "client.yaml" in rows["broken"]["message"]
    assert FAIL_ENV in rows["failing"]["message"]  # the setting reached the workers' runs
    page = (reports / "portfolio.html").read_text(encoding="utf-8")
    assert len(re.findall(r'<tr data-slug="', page)) == 4
    for slug in BATCH_CLIENTS:
        assert f'data-slug="{slug}"' in page
    assert HOSTILE_NAME not in page and html.escape(HOSTILE_NAME) in page
    # the progress display's lines and the summary
    assert "done      hostile" in batch.stderr and "INVALID   broken" in batch.stderr
    assert "FAILED    failing" in batch.stderr
    assert "4 clients: 2 done, 0 unchanged, 1 failed, 1 invalid" in batch.stdout

    # --resume, on a copy of the batch's folders: bank's settings change, hostile's inputs do not
    clients = shutil.copytree(clients, tmp_path / "clients")
    reports = shutil.copytree(reports, tmp_path / "reports")
    first_hostile = _runs(reports, "hostile")
    with (clients / "bank" / "client.yaml").open("a", encoding="utf-8") as handle:
        handle.write("# revisado con el cliente\n")
    resumed = crmkit_cli("batch", clients, "--out", reports, "--workers", "2", "--resume",
                         "--quiet", env={FAIL_ENV: "failing", BROWSER_ENV: "none"})
    assert resumed.returncode == 1, resumed.stderr
    assert _statuses(reports) == {"hostile": "unchanged", "bank": "done", "failing": "failed",
                                  "broken": "invalid"}
    assert _runs(reports, "hostile") == first_hostile  # not run again
    assert len(_runs(reports, "bank")) == 2
    page = (reports / "portfolio.html").read_text(encoding="utf-8")
    assert "Unchanged" in page
    assert f'href="hostile/{first_hostile[0]}/report.html"' in page
    # what the rerun still said (no PDF: the browser is switched off) is in the overview
    bank_row = next(c for c in json.loads((reports / "portfolio.json").read_text(
        encoding="utf-8"))["clients"] if c["slug"] == "bank")
    assert BROWSER_ENV in bank_row["message"], bank_row
    assert f"{BROWSER_ENV}=none" in page  # under the client's status
    assert not (reports / "bank" / _runs(reports, "bank")[1] / "report.pdf").exists()


@pytest.mark.slow
def test_a_run_that_kills_its_worker_fails_that_client_only(tmp_path, monkeypatch, capsys):
    clients, reports = tmp_path / "clients", tmp_path / "reports"
    invalid_workspace(clients / "crash")
    invalid_workspace(clients / "other")
    monkeypatch.setenv(CRASH_ENV, "crash")
    assert main(["batch", str(clients), "--out", str(reports), "--workers", "1",
                 "--quiet"]) == 1
    # the worker died with "crash"; a new one took "other", which ran (and was invalid)
    assert _statuses(reports) == {"crash": "failed", "other": "invalid"}
    document = json.loads((reports / "portfolio.json").read_text(encoding="utf-8"))
    crash = next(c for c in document["clients"] if c["slug"] == "crash")
    assert "the Dask worker running it died (KilledWorker" in crash["message"]
    assert "2 clients: 0 done, 0 unchanged, 1 failed, 1 invalid" in capsys.readouterr().out


@pytest.mark.slow
def test_batch_on_an_existing_scheduler(tmp_path, capsys):
    from distributed import LocalCluster

    clients, reports = tmp_path / "clients", tmp_path / "reports"
    invalid_workspace(clients / "acme")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        assert main(["batch", str(clients), "--scheduler", address, "--out", str(reports),
                     "--language", "es"]) == 1
    captured = capsys.readouterr()
    assert f"1 cliente en el clúster de Dask en {address}" in captured.err
    assert "NO VÁLIDO acme" in captured.err
    assert _statuses(reports) == {"acme": "invalid"}
    assert "Entradas no válidas" in (reports / "portfolio.html").read_text(encoding="utf-8")
