"""The client's dashboard: its data, section builders, what-if model, plan, CSV exports, serving.

The browser tests (tests/browser/test_dashboard_browser.py) check the served page itself; these
check the pieces without a server or a browser.
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

from crmkit.core import paths
from crmkit.core.i18n import catalogue
from crmkit.delivery import cli, dashboard, runner
from crmkit.inputs.workspace import load_workspace
from crmkit.planning import finance
from crmkit.relationships import cost_benefit, scenarios

RETAIL = paths.DEMO_CLIENTS / "retail"


@pytest.fixture(scope="module")
def retail():
    """The retail demo client without a run (segmented on the spot)."""
    return dashboard.load(RETAIL)


def write_run(ws_path, tmp_path, results=None):
    """A run folder of the small test client, with its per-customer table."""
    ws = load_workspace(ws_path)
    run = tmp_path / "reports" / "acme" / "2026-01-02T101500"
    (run / "tables").mkdir(parents=True)
    (run / "results.json").write_text(json.dumps(results or {}), encoding="utf-8")
    (run / "run.json").write_text(json.dumps({"inputs": ws.checksums}), encoding="utf-8")
    pd.DataFrame({
        "customer_id": ["C1", "C2", "C3"], "segment": ["champions", "other", "other"],
        "segment_name": ["Champions", "Other", "Other"], "recency_days": [5.0, 40.0, 30.0],
        "frequency": [2, 1, 1], "monetary": [100.5, 80.0, 45.25],
        "revenue_window": [100.5, 80.0, 45.25], "margin": [60.0, 24.0, 13.0],
        "margin_window": [60.0, 24.0, 13.0], "tenure_days": [400.0, 400.0, 30.0],
        "probability_alive": [0.9, 0.5, 0.6], "clv": [120.0, 40.0, 30.0],
    }).to_parquet(run / "tables" / "customers.parquet")
    return run


def _all_widgets(widget):
    """A widget and every widget inside it."""
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _all_widgets(child)


def _html(widget) -> str:
    return " ".join(w.value for w in _all_widgets(widget) if isinstance(w, widgets.HTML))


# --- data ---------------------------------------------------------------------------------

def test_load_without_run_segments_the_customers_as_the_analysis_does(retail):
    from crmkit.analysis.segmentation import segment_customers

    assert retail.run_dir is None and retail.results == {}
    table = segment_customers(retail.ws, retail.lang).table
    assert list(retail.customers["segment"]) == list(table["segment"].astype(str))
    assert retail.customers["clv"].sum() == pytest.approx(table["clv"].sum())
    assert set(retail.segments.index) == set(table["segment"])
    assert retail.segments["customers"].sum() == len(retail.ws.customers)
    assert retail.indicators["customers"] == len(retail.ws.customers)


def test_load_without_run_values_a_base_with_no_repeat_buyer_by_its_history(make_workspace):
    # Nobody in the minimal workspace bought twice: no repeat-purchase model can be fitted, and
    # the dashboard values customers as workbook 02 does, by their historical margin.
    data = dashboard.load(make_workspace())
    assert data.customers["clv"].ge(0).all()
    assert set(data.customers["probability_alive"].unique()) <= {0.0, 1.0}


def test_load_reads_the_run_folder(make_workspace, tmp_path):
    ws_path = make_workspace()
    run = write_run(ws_path, tmp_path,
                    {"context": {"indicators": {"customers": 99, "repeat_rate": 0.5}}})
    data = dashboard.load(ws_path, run, "es")
    assert not data.stale and data.run_dir == run
    assert data.indicators["customers"] == 99
    assert list(data.segments.index) == ["champions", "other"]
    table = pd.read_parquet(run / "tables" / "customers.parquet")
    expected = cost_benefit.retention_by_segment(table, data.ws.config)
    assert data.segments["retention"].to_dict() == pytest.approx(expected.to_dict())
    assert list(data.model.segments) == ["champions", "other"]
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


def test_load_takes_the_client_from_the_serving_process(monkeypatch, make_workspace,
                                                          tmp_path):
    ws_path = make_workspace()
    monkeypatch.setenv(dashboard.ENV_CLIENT, str(ws_path))
    monkeypatch.setenv(dashboard.ENV_RUN, str(write_run(ws_path, tmp_path)))
    monkeypatch.setenv(dashboard.ENV_LANGUAGE, "es")
    data = dashboard.load()
    assert data.ws.slug == "acme" and data.lang == "es"


# --- what-if ------------------------------------------------------------------------------

def _library_model(data):
    """The scenario model built with the library alone, from the same per-customer table."""
    table = data.customers.drop(columns="relationship_today")
    return scenarios.ScenarioModel.from_tables(table, data.ws.interactions, data.ws.config)


@pytest.mark.parametrize("segment, target, cost_rate, retention", [
    ("champions", "dedicated_personal_assistance", 0.0, 0.0),
    ("hibernating", "automated_services", 0.0, 0.0),
    ("loyal", "self_service", -0.2, 0.05),
    ("at_risk", "dedicated_personal_assistance", 0.3, -0.1),
])
def test_what_if_figures_are_the_scenario_models(retail, segment, target, cost_rate,
                                                 retention):
    figures = dashboard.what_if_model(retail)(segment, target, cost_rate, retention)
    library = _library_model(retail)
    result = library.what_if(segment, target, cost_rate_change=cost_rate,
                             retention_change=retention)
    i = library.segments.index(segment)
    for name in dashboard.WHAT_IF_FIGURES:
        assert figures[f"{name}_before"] == pytest.approx(result.base[name][i])
        assert figures[f"{name}_after"] == pytest.approx(result.scenario[name][i])
        assert figures[f"total_{name}_before"] == pytest.approx(result.totals[f"{name}_base"])
        assert figures[f"total_{name}_after"] == pytest.approx(result.totals[name])
    assert figures["retention_after"] == pytest.approx(result.scenario["retention"][i])


def test_what_if_without_change_keeps_todays_figures(retail):
    model = dashboard.what_if_model(retail)
    for segment in model.segments():
        figures = model(segment, model.current_type(segment), 0.0, 0.0)
        for name in dashboard.WHAT_IF_FIGURES:
            assert figures[f"{name}_after"] == figures[f"{name}_before"]
            assert figures[f"total_{name}_after"] == figures[f"total_{name}_before"]


def test_what_if_moves_costs_rates_and_retention(retail):
    model = dashboard.what_if_model(retail)
    segment = "hibernating"
    today = model.current_type(segment)
    assert today == retail.model.main_type(segment) == "dedicated_personal_assistance"
    cheaper = model(segment, "automated_services", 0.0, 0.0)
    assert cheaper["cost_after"] < cheaper["cost_before"]
    assert cheaper["profit_after"] > cheaper["profit_before"]
    assert cheaper["total_cost_after"] < cheaper["total_cost_before"]
    # a cost rate is the team's: every segment served by that type gets it
    rate = model(segment, today, -0.5, 0.0)
    saved = rate["cost_before"] - rate["cost_after"]
    assert saved > 0
    assert rate["total_cost_before"] - rate["total_cost_after"] > saved
    kept = model(segment, today, 0.0, 0.05)
    assert kept["retention_after"] == pytest.approx(kept["retention_before"] + 0.05)
    assert kept["value_after"] > kept["value_before"]
    assert kept["profit_after"] == kept["profit_before"]  # a year's profit: no retention in it
    assert kept["net_value_after"] != kept["net_value_before"]


def test_what_if_is_fast_enough_for_a_slider(retail):
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
            for prefix in ("", "total_"):
                out[f"{prefix}{name}_before"] = 100.0
                out[f"{prefix}{name}_after"] = (100.0 + 1000 * retention_change
                                                - 10 * cost_rate_change)
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
    choice.value = "hibernating"
    row = retail.segments.loc["hibernating"]
    assert retail.fmt.number(row["customers"]) in _html(section)


def test_client_text_is_escaped(make_workspace, tmp_path):
    ws = make_workspace(config_overrides={"name": "<script>alert(1)</script> Ltd"})
    html = _html(dashboard.header(dashboard.load(ws, write_run(ws, tmp_path))))
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_plan_view_is_workbook_05s_plan_and_benefits(retail):
    from crmkit.planning import plan as plan_lib

    view = dashboard.plan_view(retail)
    ws = retail.ws
    project = plan_lib.build(ws.config, plan_lib.Scale.from_workspace(ws), as_of=ws.as_of)
    # Workbook 05's business case, computed here from the same steps: its levers are the
    # dashboard's benefits, and the NPV the dashboard shows is the report's.
    steps = retail.steps
    case = plan_lib.business_case(project, steps.customers, steps.cost, ws.config, retail.fmt,
                                  scenario_model=steps.model, scenarios=steps.scenarios,
                                  objective=steps.objective.chosen, transactions=ws.transactions,
                                  attributes=ws.customers, as_of=ws.as_of,
                                  suggested=steps.suggested)
    assert [b.name for b in view.benefits] == [b.name for b in case.benefits]
    assert [b.yearly_amount for b in view.benefits] == pytest.approx(
        [b.yearly_amount for b in case.benefits])
    assert finance.returns(view.flows()).npv == pytest.approx(case.returns.npv)


def test_plan_shows_timeline_and_returns_and_the_budget_moves_them(retail):
    import time

    retail.cache.pop("plan_state", None)  # one page: only this plan section listens
    section = dashboard.plan(retail)
    charts = [w for w in _all_widgets(section) if isinstance(w, widgets.Output)]
    assert len(charts) == 2
    assert all(dashboard.PLOTLY_MIME in c.outputs[0]["data"] for c in charts)
    budget = next(w for w in _all_widgets(section) if "crm-plan-budget" in w._dom_classes)
    view = dashboard.plan_view(retail)
    full = finance.returns(view.flows(1.0))
    assert retail.fmt.money(full.npv) in _html(section)
    assert "Net present value" in _html(section) and "Payback" in _html(section)
    before = charts[1].outputs
    started = time.perf_counter()
    budget.value = 0.5
    # the case again (~0.1 s) and the cash-flow chart (~0.1 s), on a shared 2-core machine
    assert time.perf_counter() - started < 0.6
    half = finance.returns(view.flows(0.5))
    assert half.npv > full.npv and half.total_costs < full.total_costs
    assert retail.fmt.money(half.npv) in _html(section)
    assert charts[1].outputs != before


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
                    "reports_dir": tmp_path, "max_kernels": dashboard.MAX_KERNELS}
    seen.clear()
    cli.main(["dashboard", str(tmp_path), "--max-kernels", "2"])
    assert seen["host"] == "127.0.0.1" and seen["max_kernels"] == 2


def test_serve_python_is_this_one(setup):
    assert setup.argv[:3] == [sys.executable, "-m", "voila"]


# --- reliability: kernels, the busy page, the link, the loading texts (issue 13) ------------

def test_voila_configuration_bounds_and_culls_kernels(tmp_path):
    config = dashboard.voila_config(port=9999, host="127.0.0.1", token="t", root_dir=tmp_path,
                                    lang="es", max_kernels=3)
    assert config["VoilaConfiguration"]["multi_kernel_manager_class"] == (
        "crmkit.delivery.dashboard_kernels.BoundedKernelManager")
    bounded = config["BoundedKernelManager"]
    assert bounded["max_kernels"] == 3 and bounded["busy_language"] == "es"
    assert bounded["busy_title"] == "El panel está ocupado"
    culling = config["MappingKernelManager"]
    assert culling["cull_idle_timeout"] == dashboard.IDLE_TIMEOUT
    assert 0 < culling["cull_interval"] <= culling["cull_idle_timeout"]
    assert culling["cull_connected"] is False  # an open page keeps its kernel
    with pytest.raises(ValueError):
        dashboard.voila_config(port=1, host="127.0.0.1", token="t", root_dir=tmp_path,
                               max_kernels=0)


@pytest.mark.parametrize("lang", ["en", "es"])
def test_loading_texts_are_the_clients_language(tmp_path, lang):
    config = dashboard.voila_config(port=9999, host="127.0.0.1", token="t", root_dir=tmp_path,
                                    lang=lang)
    texts = config["VoilaConfiguration"]["resources"]["crmkit_texts"]
    assert texts == dashboard.page_texts(lang)
    assert "{index}" in texts["executing"] and "{count}" in texts["executing"]
    english = {"Executing", "Loading widget", "Running"}
    if lang == "es":
        assert not any(word in text for word in english for text in texts.values())
        assert config["VoilaExecutor"]["cell_error_instruction"].startswith("Esta parte")


def test_kernel_manager_refuses_beyond_its_limit(monkeypatch):
    """Six loads at once with room for four: four kernels, two busy pages, nothing more."""
    import asyncio

    from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager

    from crmkit.delivery.dashboard_kernels import BoundedKernelManager, BusyError

    async def fake_start(self, *, kernel_id=None, **kwargs):
        await asyncio.sleep(0.05)  # starting takes a while: loads overlap
        self._kernels[kernel_id] = object()
        return kernel_id

    monkeypatch.setattr(AsyncMappingKernelManager, "start_kernel", fake_start)
    manager = BoundedKernelManager(max_kernels=4, busy_title="Busy", busy_text="Later",
                                   busy_retry="Retry", busy_language="en")

    async def six_loads():
        return await asyncio.gather(*(manager.start_kernel(path="") for _ in range(6)),
                                    return_exceptions=True)

    results = asyncio.run(six_loads())
    busy = [r for r in results if isinstance(r, BusyError)]
    assert len(busy) == 2 and len(manager.list_kernel_ids()) == 4
    assert busy[0].status_code == 503 and busy[0].title == "Busy" and busy[0].lang == "en"
    manager._kernels.pop(manager.list_kernel_ids()[0])  # a page closed
    assert asyncio.run(manager.start_kernel(path="")) in manager.list_kernel_ids()


def test_busy_page_is_friendly_and_in_the_clients_language():
    import jinja2

    from crmkit.delivery.dashboard_kernels import BusyError

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(dashboard.TEMPLATE_DIR)),
                             autoescape=True)
    error = BusyError(catalogue()["dash_busy_title"]["es"], catalogue()["dash_busy_text"]["es"],
                      catalogue()["dash_busy_retry"]["es"], "es")
    html = env.get_template("503.html").render(status_code=503, status_message=error.reason,
                                               message="", exception=error)
    assert '<html lang="es">' in html and "El panel está ocupado" in html
    assert "dentro de un minuto" in html and 'http-equiv="refresh"' in html
    assert "http://" not in html and "https://" not in html  # nothing from another server


FAKE_SERVER = """
import http.server, sys, time
time.sleep(float(sys.argv[2]))  # Voila takes a few seconds before it listens
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
server.timeout = 0.2
deadline = time.monotonic() + 3
while time.monotonic() < deadline:
    server.handle_request()
"""


def test_link_is_printed_only_once_the_port_answers(make_workspace, monkeypatch, tmp_path):
    """Each write of ``serve`` is checked against the port: the link must find it answering."""
    import contextlib
    import time

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = tmp_path / "fake_voila.py"
    script.write_text(FAKE_SERVER)
    real_prepare = dashboard.prepare

    def prepare(ws, **kwargs):
        setup = real_prepare(ws, workdir=tmp_path / "serve", **kwargs)
        setup.argv = [sys.executable, str(script), str(port), "1.5"]
        return setup

    monkeypatch.setattr(dashboard, "prepare", prepare)

    class Watch(io.StringIO):
        def __init__(self):
            super().__init__()
            self.link_answered = []

        def write(self, text):
            if "token=" in text:
                self.link_answered.append(dashboard.answering("127.0.0.1", port))
            return super().write(text)

    watch = Watch()
    started = time.monotonic()
    with contextlib.redirect_stdout(watch):
        code = dashboard.serve(make_workspace(), port=port, reports_dir=tmp_path / "none")
    assert code == 0
    assert watch.link_answered == [True], watch.getvalue()
    assert time.monotonic() - started >= 1.5
    lines = watch.getvalue().splitlines()
    assert lines.index(next(x for x in lines if "token=" in x)) > 0
    assert lines[-1] == "Dashboard stopped."


def test_dashboard_command_reports_a_server_that_never_answers(make_workspace, monkeypatch,
                                                                tmp_path, capsys):
    real_prepare = dashboard.prepare

    def prepare(ws, **kwargs):
        setup = real_prepare(ws, workdir=tmp_path / "serve", **kwargs)
        setup.argv = [sys.executable, "-c", "import sys; sys.exit(3)"]
        return setup

    monkeypatch.setattr(dashboard, "prepare", prepare)
    assert dashboard.serve(make_workspace(), port=1, reports_dir=tmp_path) in (1, 2)
    captured = capsys.readouterr()
    assert "token=" not in captured.out
