"""End to end: `crmkit run` on each demo client as a consultant runs it, checked on figures."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from conftest import crmkit_cli
from nbformat.v4 import new_code_cell, new_notebook

from crmkit.core import paths
from crmkit.delivery import pdf
from crmkit.inputs.workspace import load_workspace

pytestmark = pytest.mark.slow
DEMOS = ["retail", "bank", "telecom"]


#: For the runs made here to check something else than the PDF: the shared runs print theirs, and
#: a print is about 5 s of Chromium's CPU (tests/delivery/test_pdf.py covers the setting).
NO_PDF = {pdf.BROWSER_ENV: "none"}


def crmkit(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return crmkit_cli(*args, env=env, timeout=600)


@pytest.fixture
def runs(shared_runs):
    """Each demo client run once, in its own language (the session's shared runs)."""

    class Folders(dict):
        def __missing__(self, demo):
            return self.setdefault(demo, shared_runs.demo(demo).folder)

    return Folders()


def small_home(root: Path) -> Path:
    """A ``CRMKIT_HOME`` with the real templates and reference data and no workbooks yet."""
    home = root / "crmkit-home"
    (home / "workbooks").mkdir(parents=True)
    shutil.copytree(paths.TEMPLATES, home / "templates")
    shutil.copytree(paths.DATA, home / "data", ignore=shutil.ignore_patterns("demo"))
    return home


def add_workbook(home: Path, name: str, source: str) -> None:
    """A workbook of one cell (``source``, run after the parameters) in ``home``."""
    notebook = new_notebook(cells=[
        new_code_cell("client_dir = run_dir = language = None", metadata={"tags": ["parameters"]}),
        new_code_cell(source)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    nbformat.write(notebook, home / "workbooks" / name)


#: A workbook that runs: it saves the context section of the run, and nothing else.
TINY_WORKBOOK = ("from crmkit.delivery.workbook import open_workbook\n"
                 "open_workbook(client_dir, run_dir, language, section='context').save()")


@pytest.mark.parametrize("demo", DEMOS)
def test_run_folder_holds_everything_the_contract_promises(runs, demo):
    folder = runs[demo]
    assert folder.parent.name == demo
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d{6}", folder.name)
    for name in ("report.html", "results.json", "run.json", "01_context.ipynb", "tables.xlsx"):
        assert (folder / name).is_file(), name
    # The PDF needs a Chromium to print it; without one the run says so and goes on.
    assert (folder / "report.pdf").is_file() == (pdf.chromium_path() is not None)
    run = json.loads((folder / "run.json").read_text())
    ws = load_workspace(paths.DEMO_CLIENTS / demo)
    assert run["inputs"] == ws.checksums
    # what `crmkit check` warned about (and the run accepted) stays on record, in the run's words
    assert run["warnings"] == ws.warning_records(run["language"])
    assert set(run["timings_seconds"]) >= {"01_context", "xlsx", "report", "pdf"}
    assert run["versions"]["crmkit"] and run["versions"]["pandas"]
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("demo", DEMOS)
def test_results_json_figures_match_an_independent_count(runs, demo):
    results = json.loads((runs[demo] / "results.json").read_text())
    ind = results["context"]["indicators"]
    ws = load_workspace(paths.DEMO_CLIENTS / demo)
    tx = ws.transactions[ws.transactions["date"] <= pd.Timestamp(ws.as_of)]
    window = tx[tx["date"] > pd.Timestamp(ws.as_of) - pd.DateOffset(months=12)]
    assert ind["customers"] == len(ws.customers)
    assert ind["buyers"] == tx["customer_id"].nunique()
    assert ind["active_customers"] == window["customer_id"].nunique()
    assert ind["revenue_window"] == pytest.approx(window["amount"].sum())
    days = tx.groupby("customer_id")["date"].nunique()
    assert ind["repeat_rate"] == pytest.approx((days >= 2).mean())
    objective = results["context"]["objective"]
    assert objective["recommended"] in ("attract", "retain", "grow")
    evidence = pd.DataFrame(objective["evidence"])
    assert objective["points"] == {o: int(evidence[o].sum()) for o in ("attract", "retain", "grow")}


def test_english_report_reads_in_english_with_its_figures(runs):
    html = (runs["retail"] / "report.html").read_text()
    results = json.loads((runs["retail"] / "results.json").read_text())
    assert "Northwind Living" in html and "Context analysis" in html
    assert "Análisis del contexto" not in html
    active = results["context"]["indicators"]["active_customers"]
    assert f"Of the {active:,} customers who bought in the period" in re.sub(r"\s+", " ", html)
    assert html.count("Plotly.newPlot(") >= 5
    prose = re.sub(r"<script>.*?</script>", "", html, flags=re.S)
    assert "{{" not in prose and "{%" not in prose


def test_spanish_client_gets_a_spanish_report(runs):
    html = (runs["bank"] / "report.html").read_text()
    html = re.sub(r"<script>.*?</script>", "", html, flags=re.S)  # plotly.js has English words
    assert re.search(r"<html lang=\"es\"[ >]", html)
    assert "Análisis del contexto" in html and "Índice" in html
    for english in ("Context analysis", "What the customer data says", "Contents"):
        assert english not in html
    assert re.search(r"\d{1,3}(\.\d{3})+\xa0€", html), "Spanish thousands and euro sign"


@pytest.mark.parametrize("demo", DEMOS)
def test_report_shows_no_code(runs, demo):
    html = (runs[demo] / "report.html").read_text()
    body = re.sub(r"<script>.*?</script>", "", html, flags=re.S)
    for code in ("open_workbook", "import ", "client_dir", "wb.record", "Traceback"):
        assert code not in body


def test_language_flag_overrides_the_clients_language(tmp_path):
    # workbook 01 alone (the other four read the language the same way, from the run's
    # parameters): the Spanish bank client's report in English
    home = small_home(tmp_path)
    shutil.copy(paths.WORKBOOKS / "01_context.ipynb", home / "workbooks")
    result = crmkit("run", str(paths.DEMO_CLIENTS / "bank"), "--out", str(tmp_path / "out"),
                    "--language", "en", "--quiet", env={"CRMKIT_HOME": str(home), **NO_PDF})
    assert result.returncode == 0, result.stderr
    folder = Path(result.stdout.strip()).parent
    assert json.loads((folder / "run.json").read_text())["language"] == "en"
    html = (folder / "report.html").read_text()
    assert "Context analysis" in html and "Análisis del contexto" not in html


def test_client_text_is_escaped_in_the_report(hostile_run):
    """The hostile retail copy of conftest: a script in the client's name, markup and a
    javascript: link in a note (test_workbook_05 checks its formula customer id)."""
    html = (hostile_run.folder / "report.html").read_text()
    outside_scripts = re.sub(r"<script>.*?</script>", "", html, flags=re.S)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Evil" in outside_scripts
    assert "<img src=x" not in outside_scripts and "&lt;img src=x" in outside_scripts
    assert 'href="javascript' not in outside_scripts


def test_invalid_workspace_writes_nothing(tmp_path):
    client = tmp_path / "broken"
    shutil.copytree(paths.DEMO_CLIENTS / "retail", client)
    (client / "transactions.csv").write_text("customer_id,date,amount\nNW010001,yesterday,12\n")
    out = tmp_path / "out"
    result = crmkit("run", str(client), "--out", str(out))
    assert result.returncode == 2
    assert "transactions.csv" in result.stderr and "yesterday" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists() or not any(out.rglob("*"))


def test_a_failing_workbook_exits_1_keeps_its_notebook_and_spares_earlier_runs(
        tmp_path, make_workspace):
    # the smallest run that shows it: the small test client and a one-cell workbook, which a
    # broken workbook then follows
    home = small_home(tmp_path)
    add_workbook(home, "01_tiny.ipynb", TINY_WORKBOOK)
    client = make_workspace()
    out = tmp_path / "out"
    good = crmkit("run", str(client), "--out", str(out), "--quiet",
                  env={"CRMKIT_HOME": str(home), **NO_PDF})
    assert good.returncode == 0, good.stderr
    earlier = Path(good.stdout.strip()).parent
    before = {p: p.read_bytes() for p in earlier.rglob("*") if p.is_file()}

    add_workbook(home, "99_broken.ipynb", "raise RuntimeError('the margin table is empty')")
    result = crmkit("run", str(client), "--out", str(out), "--quiet",
                    env={"CRMKIT_HOME": str(home), **NO_PDF})
    assert result.returncode == 1
    assert "99_broken.ipynb" in result.stderr and "cell [3]" in result.stderr
    assert "RuntimeError: the margin table is empty" in result.stderr
    failed = [p for p in (out / "acme").iterdir() if p.name.endswith("-failed")]
    assert len(failed) == 1
    assert (failed[0] / "01_tiny.ipynb").is_file()  # the workbooks before it are kept too
    kept = nbformat.read(failed[0] / "99_broken.ipynb", as_version=4)
    assert any(o.get("ename") == "RuntimeError" for c in kept.cells for o in c.get("outputs", []))
    assert {p: p.read_bytes() for p in earlier.rglob("*") if p.is_file()} == before
    complete = [p for p in (out / "acme").iterdir() if not p.name.endswith("-failed")]
    assert complete == [earlier]


def test_new_scaffolds_a_workspace_that_check_explains(tmp_path):
    client = tmp_path / "acme"
    result = crmkit("new", str(client), "--name", 'Acme "Best": Ltd', "--language", "es")
    assert result.returncode == 0, result.stderr
    assert "Nº Cliente" in (client / "client.yaml").read_text()
    check = crmkit("check", str(client))
    assert check.returncode == 2
    assert "customers.csv" in check.stderr and "transactions.csv" in check.stderr
    again = crmkit("new", str(client))
    assert again.returncode == 2 and "not empty" in again.stderr


def test_a_client_whose_customers_all_bought_once_still_gets_a_report(tmp_path):
    """Many e-shops have nobody who bought twice: no repeat-purchase model can be fitted, so
    customers are valued by their historical margin, the report says why, and the run succeeds."""
    client = tmp_path / "once"
    shutil.copytree(paths.DEMO_CLIENTS / "retail", client)
    raw = pd.read_csv(client / "transactions.csv", dtype=str)
    first_day = raw.groupby("customer_id")["date"].transform("min")
    raw[raw["date"] == first_day].to_csv(client / "transactions.csv", index=False)
    for optional in ("interactions.csv", "survey.csv"):
        (client / optional).unlink()
    done = crmkit_cli("run", client, "--out", tmp_path / "reports", "--quiet", env=NO_PDF)
    assert done.returncode == 0, done.stderr
    folder = Path(done.stdout.strip().splitlines()[-1]).parent
    assert not (folder / "report.pdf").exists() and "CRMKIT_CHROMIUM=none" in done.stderr
    results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    model = results["segments"]["value_model"]
    assert model["model"] == "historical" and model["fallback"] == "no_repeat_buyers"
    assert model["validation"] is None and model["repeat_buyers"] == 0
    table = pd.read_parquet(folder / "tables" / "customers.parquet")
    assert (table["frequency"] <= 1).all()
    assert set(table["probability_alive"].unique()) <= {0.0, 1.0}
    report = (folder / "report.html").read_text(encoding="utf-8")
    assert "No customer has bought twice yet" in report
    checked = crmkit_cli("check", client)
    assert checked.returncode == 0 and "bought on more than one day" in checked.stdout
