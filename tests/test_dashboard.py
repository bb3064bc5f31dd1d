"""The client's dashboard: its data, section builders, what-if adapter, CSV exports, serving setup.

The browser tests (tests/test_dashboard_browser.py) check the served page itself; these check
the pieces without a server or a browser.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import stat
import sys

import ipywidgets as widgets
import nbformat
import pandas as pd
import pytest

from crmkit import cli, dashboard, paths, runner
from crmkit.i18n import catalogue
from crmkit.workspace import load_workspace

RETAIL = paths.DEMO_CLIENTS / "retail"


@pytest.fixture(scope="module")
def retail():
    """The retail demo client without a run (fallback segments)."""
    return dashboard.load(RETAIL)


def _all_widgets(widget):
    """A widget and every widget inside it."""
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _all_widgets(child)


def _html(widget) -> str:
    return " ".join(w.value for w in _all_widgets(widget) if isinstance(w, widgets.HTML))


# --- data ---------------------------------------------------------------------------------

def test_fallback_segments_follow_their_rules():
    table = pd.DataFrame({
        "frequency": [0, 5, 6, 1, 2],
        "recency_days": [float("nan"), 400.0, 10.0, 20.0, 100.0],
        "tenure_days": [float("nan"), 900.0, 700.0, 20.0, 600.0],
    })
    segments = dashboard.fallback_segments(table, lapse_days=180)
    assert list(segments) == ["never_bought", "lapsed", "loyal", "new", "occasional"]


def test_load_without_run_computes_everything_on_the_spot(make_workspace):
    data = dashboard.load(make_workspace())
    assert data.fallback and data.run_dir is None and data.results == {}
    assert set(data.customers["customer_id"]) == {"C1", "C2", "C3"}
    assert data.segments["customers"].sum() == 3
    assert data.indicators["customers"] == 3
    assert data.lang == "en" and data.fmt.currency == "EUR"


def test_load_reads_the_run_folder(make_workspace, tmp_path):
    ws_path = make_workspace()
    ws = load_workspace(ws_path)
    run = tmp_path / "reports" / "acme" / "2026-01-02T101500"
    (run / "tables").mkdir(parents=True)
    (run / "results.json").write_text(json.dumps(
        {"context": {"indicators": {"customers": 99, "repeat_rate": 0.5}}}), encoding="utf-8")
    (run / "run.json").write_text(json.dumps({"inputs": ws.checksums}), encoding="utf-8")
    pd.DataFrame({
        "customer_id": ["C1", "C2", "C3"], "segment": ["champions", "other", "other"],
        "segment_name": ["Champions", "Other", "Other"], "recency_days": [5.0, 40.0, 30.0],
        "frequency": [2, 1, 1], "monetary": [100.5, 80.0, 45.25],
        "revenue_window": [100.5, 80.0, 45.25], "margin": [60.0, 24.0, 13.0],
        "margin_window": [60.0, 24.0, 13.0], "probability_alive": [0.9, 0.5, 0.6],
        "clv": [120.0, 40.0, 30.0],
    }).to_parquet(run / "tables" / "customers.parquet")

    data = dashboard.load(ws_path, run, "es")
    assert not data.fallback and not data.stale
    assert data.indicators["customers"] == 99
    assert list(data.segments.index) == ["champions", "other"]
    assert data.segments.loc["other", "retention"] == pytest.approx(0.55)
    assert "Valor de vida" in dashboard.key_figure_cards(data)

    (run / "run.json").write_text(json.dumps({"inputs": {"customers.csv": "changed"}}))
    assert dashboard.load(ws_path, run).stale


def test_latest_run_skips_failed_hidden_and_incomplete_runs(tmp_path):
    client = tmp_path / "acme"
    for name, complete in [("2026-01-01T100000", True), ("2026-02-01T100000", True),
                           ("2026-02-01T100000-2", True), ("2026-03-01T100000-failed", True),
                           (".2026-04-01T100000.partial-1", True), ("2026-05-01T100000", False)]:
        (client / name).mkdir(parents=True)
        if complete:
            (client / name / "results.json").write_text("{}")
    assert dashboard.latest_run(tmp_path, "acme").name == "2026-02-01T100000-2"
    assert dashboard.latest_run(tmp_path, "nobody") is None


def test_load_takes_the_client_from_the_serving_process(monkeypatch, make_workspace):
    monkeypatch.setenv(dashboard.ENV_CLIENT, str(make_workspace()))
    monkeypatch.setenv(dashboard.ENV_RUN, "")
    monkeypatch.setenv(dashboard.ENV_LANGUAGE, "es")
    data = dashboard.load()
    assert data.ws.slug == "acme" and data.lang == "es"


# --- what-if ------------------------------------------------------------------------------

def test_what_if_adapter_without_change_keeps_todays_figures(retail):
    model = dashboard.what_if_model(retail)
    for segment in model.segments():
        figures = model(segment, model.current_type(segment), 0.0, 0.0)
        for name in dashboard.WHAT_IF_FIGURES:
            assert figures[f"{name}_after"] == pytest.approx(figures[f"{name}_before"])


def test_what_if_adapter_moves_costs_and_retention(retail):
    model = dashboard.what_if_model(retail)
    segment = next(iter(model.segments()))
    today = model.current_type(segment)
    assert today == "dedicated_personal_assistance"
    cheaper = model(segment, "automated_services", 0.0, 0.0)
    assert cheaper["cost_after"] < cheaper["cost_before"]
    assert cheaper["profit_after"] > cheaper["profit_before"]
    halved = model(segment, today, -0.5, 0.0)
    assert halved["cost_after"] == pytest.approx(halved["cost_before"] / 2)
    kept = model(segment, today, 0.0, 0.05)
    assert kept["retention_after"] == pytest.approx(
        min(1.0, kept["retention_before"] + 0.05))
    assert kept["value_after"] > kept["value_before"]
    assert kept["npv_after"] > kept["npv_before"]


def test_what_if_adapter_is_fast_enough_for_a_slider(retail):
    import time

    model = dashboard.what_if_model(retail)
    segment = next(iter(model.segments()))
    started = time.perf_counter()
    for step in range(200):
        model(segment, "self_service", step / 1000, step / 2000)
    assert (time.perf_counter() - started) / 200 < 0.005


class RecordingModel:
    """A stand-in scenario model: what the what-if section must work with."""

    def __init__(self):
        self.calls = []

    def segments(self):
        return {"a": "Segment <A>", "b": "Segment B"}

    def relationship_types(self):
        return {"self_service": "Self-service", "personal_assistance": "Personal assistance"}

    def current_type(self, segment):
        return "personal_assistance" if segment == "a" else "self_service"

    def __call__(self, segment, relationship_type, cost_rate_change, retention_change):
        self.calls.append((segment, relationship_type, cost_rate_change, retention_change))
        out = {}
        for name in dashboard.WHAT_IF_FIGURES:
            out[f"{name}_before"] = 100.0
            out[f"{name}_after"] = 100.0 + 1000 * retention_change - 10 * cost_rate_change
        out.update(retention_before=0.5, retention_after=0.5 + retention_change)
        return out


def test_what_if_section_calls_the_interface_on_every_control(retail):
    model = RecordingModel()
    section = dashboard.what_if(retail, model)
    controls = {type(w).__name__ + ":" + ",".join(w._dom_classes): w
                for w in _all_widgets(section) if isinstance(w, widgets.ValueWidget)}
    retention = next(w for k, w in controls.items() if "crm-whatif-retention" in k)
    cost = next(w for k, w in controls.items() if "crm-whatif-cost" in k)
    target = next(w for k, w in controls.items() if "crm-whatif-type" in k)
    segment = next(w for k, w in controls.items() if "crm-whatif-segment" in k)

    assert model.calls[-1] == ("a", "personal_assistance", 0.0, 0.0)
    retention.value = 5
    assert model.calls[-1] == ("a", "personal_assistance", 0.0, 0.05)
    assert "€150" in _html(section)
    cost.value = -0.2
    target.value = "self_service"
    assert model.calls[-1] == ("a", "self_service", -0.2, 0.05)
    segment.value = "b"
    assert model.calls[-1][0] == "b"
    assert "Segment &lt;A&gt;" not in _html(section)  # option labels are text, not HTML


# --- sections -----------------------------------------------------------------------------

@pytest.mark.parametrize("lang", ["en", "es"])
def test_every_section_builds_in_both_languages(lang):
    data = dashboard.load(RETAIL, language=lang)
    for build in (dashboard.header, dashboard.overview,
                  dashboard.segment_explorer, dashboard.what_if, dashboard.plan,
                  dashboard.downloads):
        assert isinstance(build(data), widgets.Widget)
    text = _html(dashboard.overview(data))
    assert ("Revenue in the period" if lang == "en" else "Ingresos del periodo") in text


def test_charts_are_plotly_outputs_of_the_widgets(retail):
    outputs = [w for w in _all_widgets(dashboard.overview(retail))
               if isinstance(w, widgets.Output)]
    assert outputs and dashboard.PLOTLY_MIME in outputs[0].outputs[0]["data"]


def test_segment_explorer_shows_the_chosen_segment(retail):
    section = dashboard.segment_explorer(retail)
    choice = next(w for w in _all_widgets(section) if isinstance(w, widgets.Dropdown))
    choice.value = "lapsed"
    row = retail.segments.loc["lapsed"]
    assert retail.fmt.number(row["customers"]) in _html(section)
    assert "provisional" in _html(section)  # the fallback says so


def test_client_text_is_escaped(make_workspace):
    ws = make_workspace(config_overrides={"name": "<script>alert(1)</script> Ltd"})
    html = _html(dashboard.header(dashboard.load(ws)))
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_plan_is_a_placeholder_until_the_plan_library_exists(retail, monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert "implementation plan" in _html(dashboard.plan(retail))


def test_messages_exist_in_both_languages():
    keys = [k for k in catalogue() if k.startswith("dash_")]
    assert len(keys) > 40
    assert all(catalogue()[k]["en"] and catalogue()[k]["es"] for k in keys)


# --- downloads ----------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["=HYPERLINK(\"x\")", "+1", "-1+2", "@SUM(A1)", "\tx", "\rx"])
def test_formula_prefixes_are_neutralised(value):
    assert dashboard.neutralise(value) == "'" + value


def test_csv_keeps_numbers_and_neutralises_text():
    frame = pd.DataFrame({"name": ["=1+1", "plain", "-minus"], "amount": [-20.5, 3.0, 1.25],
                          "=header": ["a", "b", "c"]})
    text = dashboard.csv_bytes(frame, "en").decode("utf-8-sig")
    parsed = pd.read_csv(io.StringIO(text))
    assert list(parsed["name"]) == ["'=1+1", "plain", "'-minus"]
    assert list(parsed["amount"]) == [-20.5, 3.0, 1.25]
    assert "'=header" in parsed.columns
    spanish = dashboard.csv_bytes(frame, "es").decode("utf-8-sig")
    assert spanish.splitlines()[1] == "'=1+1;-20,5;a"


def test_download_link_carries_the_file_itself():
    link = dashboard.download_link(b"a,b\n1,2\n", 'x"><script>.csv', "Get <it>")
    assert 'href="data:text/csv;charset=utf-8;base64,YSxiCjEsMgo="' in link
    assert "<script>" not in link and "&lt;it&gt;" in link


def test_customer_file_is_built_on_request(retail):
    section = dashboard.downloads(retail)
    button = next(w for w in _all_widgets(section) if isinstance(w, widgets.Button))
    assert "customers.csv" not in _html(section)
    button.click()
    assert "retail-customers.csv" in _html(section) and "retail-segments.csv" in _html(section)


# --- the notebook -------------------------------------------------------------------------

def test_notebook_is_short_has_no_outputs_and_is_not_a_workbook():
    nb = nbformat.read(dashboard.NOTEBOOK, as_version=4)
    assert dashboard.NOTEBOOK not in runner.workbooks()
    assert all(c.cell_type == "code" for c in nb.cells)  # markdown would show on the page
    assert all(not c.outputs and c.execution_count is None for c in nb.cells)
    assert all(len(c.source.splitlines()) <= 8 for c in nb.cells)


# --- serving ------------------------------------------------------------------------------

def test_voila_configuration_is_locked_down(tmp_path):
    config = dashboard.voila_config(port=9999, host="127.0.0.1", token="t0k", root_dir=tmp_path)
    voila, options = config["Voila"], config["VoilaConfiguration"]
    assert voila["ip"] == "127.0.0.1" and voila["port"] == 9999 and voila["token"] == "t0k"
    assert voila["port_retries"] == 0 and voila["open_browser"] is False
    assert voila["root_dir"] == str(tmp_path)
    assert options["strip_sources"] is True and options["show_tracebacks"] is False
    assert options["allow_template_override"] == "NO"
    assert options["allow_theme_override"] == "NO"
    assert options["file_allowlist"] == [] and options["file_denylist"] == [".*"]
    assert options["template"] == dashboard.TEMPLATE_NAME


@pytest.fixture
def setup(make_workspace, tmp_path):
    ws = load_workspace(make_workspace())
    run = tmp_path / "reports" / "acme" / "2026-01-01T000000"
    run.mkdir(parents=True)
    return dashboard.prepare(ws, port=8899, language="es", run_dir=run,
                             workdir=tmp_path / "serve")


def test_prepare_lays_out_a_private_folder(setup, make_workspace):
    workdir = setup.workdir
    assert stat.S_IMODE(workdir.stat().st_mode) == 0o700
    assert [p.name for p in setup.cwd.iterdir()] == ["dashboard.ipynb"]
    config_file = workdir / "config" / "voila.json"
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    assert json.loads(config_file.read_text())["Voila"]["token"] == setup.token
    assert (workdir / "share" / "voila" / "templates" / "crmkit" / "index.html.j2").is_file()
    assert setup.url == f"http://127.0.0.1:8899/?token={setup.token}"
    assert len(setup.token) >= 40
    assert not any(setup.token in arg for arg in setup.argv)  # not visible in `ps`
    env = setup.env
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_PATH",
                 "IPYTHONDIR"):
        assert env[name].startswith(str(workdir))
    assert env[dashboard.ENV_CLIENT] == str(make_workspace().resolve())
    assert env[dashboard.ENV_RUN].endswith("2026-01-01T000000")
    assert env[dashboard.ENV_LANGUAGE] == "es"
    assert "JUPYTER_TOKEN" not in env


def test_voila_reads_the_prepared_configuration(setup, monkeypatch):
    from voila.app import Voila

    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_PATH", "IPYTHONDIR"):
        monkeypatch.setenv(name, setup.env[name])
    previous = signal.getsignal(signal.SIGTERM)
    app = Voila()
    try:
        app.initialize(setup.argv[3:])
    finally:
        signal.signal(signal.SIGTERM, previous)
    options = app.voila_configuration
    assert app.ip == "127.0.0.1" and app.port == 8899 and app.token == setup.token
    assert app.port_retries == 0 and not app.open_browser
    assert os.path.samefile(app.root_dir, setup.cwd)
    assert os.path.samefile(app.notebook_path, setup.cwd / "dashboard.ipynb")
    assert options.strip_sources and not options.show_tracebacks
    assert options.allow_template_override == "NO" and options.allow_theme_override == "NO"
    assert options.file_allowlist == [] and options.file_denylist == [".*"]
    assert options.template == "crmkit"
    assert str(setup.workdir / "share" / "voila" / "templates" / "crmkit") in app.template_paths


def test_dashboard_command_refuses_an_invalid_workspace(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert cli.main(["dashboard", str(tmp_path / "empty"), "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "client.yaml" in err and "Traceback" not in err


def test_dashboard_command_refuses_a_busy_port(make_workspace, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert cli.main(["dashboard", str(make_workspace()), "--port", str(port)]) == 2
    assert f"port {port}" in capsys.readouterr().err


def test_dashboard_command_passes_its_options(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr(dashboard, "serve", lambda client_dir, **kw: seen.update(kw) or 0)
    assert cli.main(["dashboard", str(tmp_path), "--port", "9000", "--host", "0.0.0.0",
                     "--language", "es", "--reports", str(tmp_path)]) == 0
    assert seen == {"port": 9000, "host": "0.0.0.0", "language": "es",
                    "reports_dir": tmp_path}
    seen.clear()
    cli.main(["dashboard", str(tmp_path)])
    assert seen["host"] == "127.0.0.1"


def test_serve_python_is_this_one(setup):
    assert setup.argv[:3] == [sys.executable, "-m", "voila"]
