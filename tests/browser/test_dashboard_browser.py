"""The client's dashboard in a real browser: it renders, it reacts, and it shows nothing else.

``crmkit dashboard`` is started on a copy of the retail demo client (with the bank demo client
beside it, as another client's data that must stay out of reach), on 127.0.0.1 and a free port,
and Debian's Chromium is driven through Playwright. The tests are skipped when no Chromium is
installed; CI installs it (.ci/run), so there they run.

Issue 13: every page is opened once and must be whole (no reload); thirty loads in a row must
not lose a section to "Error displaying widget: model not found"; the link is printed only once
the server answers; a load test checks the kernel cap and the memory.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

import psutil
import pytest

from crmkit.core import paths
from crmkit.delivery import dashboard

CHROMIUM = next((c for c in ("/usr/bin/chromium", shutil.which("chromium"),
                             shutil.which("chromium-browser")) if c and os.path.exists(c)), None)
pytestmark = [pytest.mark.slow,  # a dashboard server, its kernels and a browser
              pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed "
                                 "(/usr/bin/chromium or chromium on PATH); CI installs it")]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
#: Generous: CI machines are slow, and a page needs a kernel that imports pandas and plotly.
PAGE_TIMEOUT_MS = 60_000
#: Text that only the notebook's source has (Voila must strip it).
SOURCE_MARKERS = ("import crmkit", "from crmkit", "open_workbook", "dashboard.load",
                  "dashboard.what_if(", "def ")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _first_customer_id(csv_path: Path) -> str:
    """The first customer id of a customers.csv as exported (any separator or encoding)."""
    line = csv_path.read_bytes().splitlines()[1].decode("latin-1")
    return line.replace(";", ",").split(",")[0].strip()


def _get(url: str, *, follow: bool = True) -> tuple[int, str, dict]:
    """GET without a browser: (status, body, headers); redirects not followed on request."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = (urllib.request.build_opener() if follow
              else urllib.request.build_opener(NoRedirect))
    try:
        with opener.open(url, timeout=120) as response:
            return response.status, response.read().decode("utf-8", "replace"), response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace"), error.headers


@pytest.fixture(scope="module")
def clients(tmp_path_factory):
    """Two clients' workspaces side by side: the one served, and another."""
    root = tmp_path_factory.mktemp("clients")
    for slug in ("retail", "bank"):
        shutil.copytree(paths.DEMO_CLIENTS / slug, root / slug)
    return root


#: The shared server's kernel cap: roomy, because the tests below that fetch the page without
#: a browser leave a kernel each (shut down after two idle minutes); the cap itself is tested
#: on a server of its own (test_load_is_bounded_in_kernels_and_memory).
SERVER_MAX_KERNELS = 8


@pytest.fixture(scope="module")
def server(clients, tmp_path_factory):
    """``crmkit dashboard`` serving the retail client; stopped (whole process group) at the end.

    Yields a dict with ``base`` (``http://127.0.0.1:PORT``), ``url`` (the printed link with the
    token), ``token`` and ``port``.
    """
    port = _free_port()
    logs = tmp_path_factory.mktemp("dashboard-logs")
    private = Path(tempfile.gettempdir())
    before = set(private.glob("crmkit-dashboard-retail-*"))
    stdout = open(logs / "stdout.txt", "w")
    stderr = open(logs / "stderr.txt", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "crmkit", "dashboard", str(clients / "retail"),
         "--port", str(port), "--reports", str(clients / "no-reports"),
         "--max-kernels", str(SERVER_MAX_KERNELS)],
        stdout=stdout, stderr=stderr, env=os.environ.copy(), cwd=clients,
        start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        links: list[str] = []
        while time.monotonic() < deadline and not links:
            assert process.poll() is None, (logs / "stderr.txt").read_text()
            links = [line for line in (logs / "stdout.txt").read_text().splitlines()
                     if line.startswith("http")]
            time.sleep(0.2)
        assert len(links) == 1, "the command prints one link: " + (
            logs / "stderr.txt").read_text()[-2000:]
        url = links[0]
        base = f"http://127.0.0.1:{port}"
        # The link is printed only once the server answers: no waiting here.
        assert dashboard.answering("127.0.0.1", port), "link printed before the server answers"
        yield {"base": base, "url": url, "token": url.split("token=", 1)[1], "port": port,
               "process": process, "max_kernels": SERVER_MAX_KERNELS}
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        stdout.close()
        stderr.close()
    # The server's private folder (token, Jupyter's files, the notebook's copy) is gone.
    assert set(private.glob("crmkit-dashboard-retail-*")) <= before
    assert (logs / "stdout.txt").read_text().rstrip().endswith("Dashboard stopped.")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


#: The page's sections (the one-page decision holds key figures too: the overview's are named
#: by their section).
SECTIONS = (".crm-decision", ".crm-overview .crm-kpis", ".crm-explorer", ".crm-whatif",
            ".crm-plan", ".crm-downloads-section")


LOST = "model not found"


def _missing_sections(page, timeout_ms: float = PAGE_TIMEOUT_MS) -> list[str]:
    """The sections that did not become visible (waiting for each in turn), and lost widgets.

    Every widget section is drawn once the widget manager holds all the models (the page
    template sets ``data-crmkit-widgets`` on ``<body>`` then); a section replaced by "Error
    displaying widget: model not found" counts as missing.
    """
    missing = []
    for section in SECTIONS:
        try:
            page.locator(section).wait_for(state="visible", timeout=timeout_ms)
        except Exception:  # noqa: BLE001 - playwright's TimeoutError: the section did not come
            missing.append(section)
    if LOST in page.inner_text("body"):
        missing.append(LOST)
    return missing


def _open(browser, url: str):
    """Open the dashboard once, as a client would; every section must come, with no reload."""
    page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    page.goto(url, wait_until="commit")
    missing = _missing_sections(page)
    assert not missing, f"dashboard sections missing: {missing}"
    return page


def _kernel_ids(server) -> list[str]:
    """The kernels the server runs now, from its kernel processes' connection files.

    (Voila answers Jupyter's /api/kernels with 403 even with the token.)
    """
    ids = []
    for proc in _tree(psutil.Process(server["process"].pid)):
        try:
            found = re.search(r"kernel-([0-9a-f-]{36})\.json", " ".join(proc.cmdline()))
        except psutil.NoSuchProcess:
            continue
        if found:
            ids.append(found.group(1))
    return ids


def _wait_for(condition, timeout: float, step: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


@pytest.fixture(scope="module")
def page(browser, server):
    """The dashboard, opened once with the printed link; closed as a tab would be."""
    page = _open(browser, server["url"])
    yield page
    page.close(run_before_unload=True)


# --- what the client sees -----------------------------------------------------------------

def test_link_points_to_this_machine(server):
    assert server["url"] == f"http://127.0.0.1:{server['port']}/?token={server['token']}"
    assert len(server["token"]) >= 40


def test_dashboard_renders_figures_and_charts(page):
    # the page renders section by section (no pre-computed kernel): wait for the second chart
    page.locator(".js-plotly-plot").nth(1).wait_for(state="visible")
    assert page.locator(".js-plotly-plot").count() >= 2
    text = page.inner_text("body")
    assert "Northwind Living" in text
    assert "Customers on file" in text
    for section in ("crm-explorer", "crm-whatif", "crm-plan", "crm-downloads-section"):
        assert page.locator(f".{section}").is_visible(), section


def test_moving_a_control_changes_the_figures(page):
    figures = page.locator(".crm-whatif-figures")
    before = figures.inner_text()
    page.locator(".crm-whatif-type select").select_option(label="Automated services")
    page.wait_for_function("b => document.querySelector('.crm-whatif-figures').innerText != b",
                           arg=before)
    after_move = figures.inner_text()
    assert after_move != before

    # one point less (the first segment may be at the highest retention the model allows)
    handle = page.locator(".crm-whatif-retention .noUi-handle")
    handle.focus()
    handle.press("ArrowLeft")
    page.wait_for_function("b => document.querySelector('.crm-whatif-figures').innerText != b",
                           arg=after_move)
    # d3's format writes a true minus sign
    assert "\u22121" in page.locator(".crm-whatif-retention").inner_text()
    after_retention = figures.inner_text()

    handle = page.locator(".crm-whatif-cost .noUi-handle")
    handle.focus()
    handle.press("ArrowLeft")
    page.wait_for_function("b => document.querySelector('.crm-whatif-figures').innerText != b",
                           arg=after_retention)
    assert "\u22125%" in page.locator(".crm-whatif-cost").inner_text()


def test_moving_the_budget_changes_the_returns(page):
    returns = page.locator(".crm-plan-figures")
    before = returns.inner_text()
    assert "Net present value" in before and "Payback" in before
    handle = page.locator(".crm-plan-budget .noUi-handle")
    handle.focus()
    handle.press("ArrowLeft")
    page.wait_for_function("b => document.querySelector('.crm-plan-figures').innerText != b",
                           arg=before)
    assert "95%" in page.locator(".crm-plan-budget").inner_text()


def test_segment_explorer_follows_the_dropdown(page):
    profile = page.locator(".crm-segment-profile")
    before = profile.inner_text()
    choice = page.locator(".crm-segment-choice select")
    labels = choice.locator("option").all_inner_texts()
    choice.select_option(label=labels[-1])
    page.wait_for_function("b => document.querySelector('.crm-segment-profile').innerText != b",
                           arg=before)


def test_page_contains_no_source_code(page, server):
    html = page.content()
    text = page.inner_text("body")
    status, raw, _ = _get(server["url"])
    assert status == 200
    for marker in SOURCE_MARKERS:
        assert marker not in html and marker not in text and marker not in raw, marker
    assert "Traceback" not in raw and "Traceback" not in text


def test_customers_file_downloads_as_csv(page, tmp_path):
    page.locator(".crm-downloads-section").wait_for(state="visible")
    page.locator(".crm-prepare-customers").click()
    link = page.locator(".crm-customers-link a")
    link.wait_for(state="visible")
    assert link.get_attribute("href").startswith("data:text/csv")
    with page.expect_download() as info:
        link.click()
    saved = tmp_path / "customers.csv"
    info.value.save_as(saved)
    text = saved.read_text(encoding="utf-8-sig")
    assert text.splitlines()[0].startswith("Customer,Segment,")
    assert len(text.splitlines()) == 4001


# --- what the client cannot reach ---------------------------------------------------------

def test_request_without_token_is_refused(server, browser):
    status, body, headers = _get(server["base"] + "/", follow=False)
    assert status in (302, 403)
    if status == 302:
        assert "/login" in headers["Location"]
    assert "Northwind" not in body
    context = browser.new_context()
    try:
        anonymous = context.new_page()
        anonymous.goto(server["base"] + "/", wait_until="load")
        assert "/login" in anonymous.url
        assert "Northwind" not in anonymous.content()
        assert anonymous.locator(".crm-kpis").count() == 0
    finally:
        context.close()
    for path in ("/api/kernels", f"/?token={server['token']}x"):
        status, body, _ = _get(server["base"] + path, follow=False)
        assert status in (302, 403), path
        assert "Northwind" not in body


def test_no_file_of_either_client_can_be_fetched(server, clients):
    token = server["token"]
    retail_id = _first_customer_id(clients / "retail" / "customers.csv")
    bank_id = _first_customer_id(clients / "bank" / "customers.csv")
    bank_csv = quote(str(clients / "bank" / "customers.csv"))
    names = ["customers.csv", "transactions.csv", "client.yaml", "dashboard.ipynb"]
    paths_tried = [f"/files/{n}" for n in names] + [f"/voila/files/{n}" for n in names] + [
        "/voila/files/..%2fcustomers.csv", "/voila/files/%2e%2e/%2e%2e/retail/customers.csv",
        "/voila/files/../../bank/customers.csv", f"/voila/files/{bank_csv}",
        f"/files/{bank_csv}", f"/voila/files//{bank_csv}",
        "/voila/render/other.ipynb", "/voila/render/dashboard.ipynb", "/voila/tree",
        "/voila/tree/", "/tree", "/voila/api/contents/", "/api/contents/customers.csv",
        "/voila/templates/lab/static/..%2f..%2f..%2f..%2fcustomers.csv",
        "/voila/templates/lab/static/..%2f..%2f..%2f..%2f..%2f..%2fretail%2fcustomers.csv",
        "/voila/static/..%2f..%2fcustomers.csv", "/voila/labextensions/..%2fcustomers.csv",
    ]
    for path in paths_tried:
        sep = "&" if "?" in path else "?"
        status, body, _ = _get(f"{server['base']}{path}{sep}token={token}")
        assert status != 200 or not body.strip() or "crmkit-dashboard" in body, path
        for secret in (retail_id, bank_id, "customer_id", "Banco Meridiano", "Nº Cliente"):
            assert secret not in body, (path, secret)
    assert _get(f"{server['base']}/voila/render/other.ipynb?token={token}")[0] in (403, 404)


def test_the_client_is_not_chosen_by_the_url(server, clients):
    other = quote(str(clients / "bank"))
    status, body, _ = _get(f"{server['url']}&client_dir={other}&client={other}"
                           f"&CRMKIT_DASHBOARD_CLIENT={other}")
    assert status == 200
    assert "Banco Meridiano" not in body


def test_template_and_theme_cannot_be_changed_from_the_url(server, browser):
    for query in ("&template=lab&theme=dark", "&template=../../../etc&voila-template=reveal"):
        status, body, _ = _get(server["url"] + query)
        assert status == 200, query
        assert '<meta name="generator" content="crmkit-dashboard">' in body, query
        assert 'id="crmkit-template"' in body and "theme-dark" not in body
        assert "Traceback" not in body and "Error" not in body.split("</head>")[1][:2000]
    page = _open(browser, server["url"] + "&template=classic")
    try:
        assert page.locator('meta[name="generator"][content="crmkit-dashboard"]').count() == 1
        assert page.locator(".js-plotly-plot").first.is_visible()
    finally:
        page.close(run_before_unload=True)


def test_kernel_runs_no_code_sent_by_the_browser(page, tmp_path):
    marker = tmp_path / "executed.txt"
    outcome = page.evaluate(
        """async (marker) => {
          const config = JSON.parse(document.getElementById('jupyter-config-data').textContent);
          const url = `ws://${location.host}/api/kernels/${config.kernelId}/channels`;
          const ws = new WebSocket(url);
          const seen = [];
          const session = 'crmkit-test-' + Math.random();
          const message = (msg_type, content) => ({
            header: {msg_id: msg_type + Math.random(), msg_type, session, username: 'test',
                     date: new Date().toISOString(), version: '5.3'},
            parent_header: {}, metadata: {}, content, channel: 'shell', buffers: []});
          await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
          ws.onmessage = (event) => {
            if (typeof event.data === 'string') {
              const msg = JSON.parse(event.data);
              if (msg.parent_header && msg.parent_header.session === session) {
                seen.push(msg.header.msg_type);
              }
            }
          };
          ws.send(JSON.stringify(message('execute_request', {
            code: `open(${JSON.stringify(marker)}, 'w').write('ran')`, silent: false,
            store_history: false, user_expressions: {}, allow_stdin: false,
            stop_on_error: true})));
          ws.send(JSON.stringify(message('kernel_info_request', {})));
          await new Promise((resolve) => setTimeout(resolve, 3000));
          ws.close();
          return seen;
        }""", str(marker))
    assert "kernel_info_reply" in outcome, "the channel works for allowed messages"
    assert "execute_reply" not in outcome and "execute_input" not in outcome
    time.sleep(1)
    assert not marker.exists()


# --- reliability (issue 13) ------------------------------------------------------------------

#: Consecutive loads that must all be whole (issue 13: about 5 in 13 lost a section).
LOADS_IN_A_ROW = 30


def test_thirty_loads_in_a_row_lose_no_section(browser, server):
    """Thirty fresh loads, one after the other, each whole at the first try (no reload)."""
    started = time.monotonic()
    for load in range(LOADS_IN_A_ROW):
        # One load at a time is the point; the kernel cap is another test's. A closed tab's
        # kernel is shut down some seconds after it disconnects, so wait for a free slot.
        assert _wait_for(lambda: len(_kernel_ids(server)) < server["max_kernels"], 150), \
            "no kernel slot freed up"
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        try:
            page.goto(server["url"], wait_until="commit", timeout=PAGE_TIMEOUT_MS)
            missing = _missing_sections(page)
            assert not missing, f"load {load + 1} of {LOADS_IN_A_ROW}: missing {missing}"
            assert page.locator("body[data-crmkit-widgets=rendered]").count() == 1
        finally:
            page.close(run_before_unload=True)
    # Bounded: a whole load takes some 10-30 s on two busy cores.
    assert time.monotonic() - started < LOADS_IN_A_ROW * 90


def test_closing_the_tab_shuts_its_kernel_down(browser, server):
    page = _open(browser, server["url"])
    config = json.loads(page.locator("#jupyter-config-data").text_content())
    kernel = config["kernelId"]
    assert kernel in _kernel_ids(server)
    page.close(run_before_unload=True)
    # Voila's unload beacon, or else the server once the page's websocket has been gone for
    # BoundedKernelManager.disconnect_grace (15 s).
    assert _wait_for(lambda: kernel not in _kernel_ids(server), 45), "the kernel outlived its tab"


def _tree(process: psutil.Process) -> list[psutil.Process]:
    try:
        return [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _kernels_and_rss(pid: int) -> tuple[int, int]:
    """(kernel processes, resident memory in bytes of the whole server tree)."""
    kernels, rss = 0, 0
    for proc in _tree(psutil.Process(pid)):
        try:
            rss += proc.memory_info().rss
            kernels += any("ipykernel" in part for part in proc.cmdline())
        except psutil.NoSuchProcess:
            pass
    return kernels, rss


#: Loads of the load test, and how many are sent at once.
LOAD_TEST_LOADS, LOAD_TEST_AT_ONCE = 20, 5
#: Resident memory allowed per kernel (the retail demo's kernel is ~250-350 MB), and for the
#: server itself with its helpers.
KERNEL_RSS_BOUND, SERVER_RSS_BOUND = 600 * 2**20, 400 * 2**20


def test_load_is_bounded_in_kernels_and_memory(clients, tmp_path):
    """Twenty loads, five at a time, with no browser to connect them (the issue's worst case).

    At most ``--max-kernels`` (2 here, to keep the test short) kernels ever run; the loads
    beyond get the busy page, in the client's language (Spanish here), at once; the server's
    memory stays within the bound for that many kernels.
    """
    from concurrent.futures import ThreadPoolExecutor

    max_kernels = 2
    port = _free_port()
    out = open(tmp_path / "stdout.txt", "w")
    err = open(tmp_path / "stderr.txt", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "crmkit", "dashboard", str(clients / "retail"), "--port",
         str(port), "--reports", str(clients / "no-reports"), "--language", "es",
         "--max-kernels", str(max_kernels)],
        stdout=out, stderr=err, env=os.environ.copy(), cwd=clients, start_new_session=True)
    samples: list[tuple[int, int]] = []
    try:
        assert _wait_for(lambda: "token=" in (tmp_path / "stdout.txt").read_text()
                         or process.poll() is not None, 120)
        link = next(line for line in (tmp_path / "stdout.txt").read_text().splitlines()
                    if line.startswith("http"))
        sampling = {"on": True}

        def sample():
            while sampling["on"]:
                samples.append(_kernels_and_rss(process.pid))
                time.sleep(0.25)

        def load(_):
            started = time.monotonic()
            status, body, _ = _get(link)
            return status, body, time.monotonic() - started

        with ThreadPoolExecutor(1) as sampler, ThreadPoolExecutor(LOAD_TEST_AT_ONCE) as pool:
            sampler.submit(sample)
            results = list(pool.map(load, range(LOAD_TEST_LOADS)))
            sampling["on"] = False
        statuses = [status for status, _, _ in results]
        assert set(statuses) <= {200, 503}, statuses
        assert max_kernels <= statuses.count(200) < LOAD_TEST_LOADS, statuses
        pages = [body for status, body, _ in results if status == 200]
        busy = [(body, took) for status, body, took in results if status == 503]
        assert all('lang="es"' in body and "Preparando su panel" in body for body in pages)
        for body, took in busy:
            assert "El panel está ocupado" in body and "dentro de un minuto" in body
            assert "Traceback" not in body and "Northwind" not in body
            assert took < 10, "the busy page is immediate"
        peak_kernels = max(k for k, _ in samples)
        peak_rss = max(r for _, r in samples)
        assert peak_kernels <= max_kernels, samples
        assert peak_rss < SERVER_RSS_BOUND + max_kernels * KERNEL_RSS_BOUND, peak_rss
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        out.close()
        err.close()


# --- issue 11 item 6 and issue 13 item 7: the plan's levers, actions, the run's downloads --------

#: The run's files of the served run below (stand-ins: the bytes must arrive unchanged).
RUN_FILE_BYTES = {"report.pdf": b"%PDF-1.7\n% crmkit test report\n",
                  "report.html": b"<!doctype html><title>crmkit test report</title>",
                  "tables.xlsx": b"PK\x03\x04 crmkit test tables"}


@pytest.fixture(scope="module")
def run_server(clients, tmp_path_factory):
    """``crmkit dashboard`` on the retail client with a run folder holding the three files (and
    one more, which must stay out of reach)."""
    reports = tmp_path_factory.mktemp("reports")
    run = reports / "retail" / "2026-01-02T101500"
    run.mkdir(parents=True)
    (run / "results.json").write_text("{}", encoding="utf-8")
    (run / "run.json").write_text("{}", encoding="utf-8")
    (run / "secret.txt").write_text("not to be served", encoding="utf-8")
    for name, content in RUN_FILE_BYTES.items():
        (run / name).write_bytes(content)
    port = _free_port()
    logs = tmp_path_factory.mktemp("run-dashboard-logs")
    stdout = open(logs / "stdout.txt", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "crmkit", "dashboard", str(clients / "retail"), "--port",
         str(port), "--reports", str(reports), "--max-kernels", "2"],
        stdout=stdout, stderr=subprocess.STDOUT, env=os.environ.copy(), cwd=clients,
        start_new_session=True)
    try:
        assert _wait_for(lambda: any(line.startswith("http") for line in
                                     (logs / "stdout.txt").read_text().splitlines()), 90)
        url = next(line for line in (logs / "stdout.txt").read_text().splitlines()
                   if line.startswith("http"))
        yield {"base": f"http://127.0.0.1:{port}", "url": url, "run": run}
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        stdout.close()


@pytest.fixture(scope="module")
def run_page(browser, run_server):
    page = _open(browser, run_server["url"])
    for css in (".crm-decision", ".crm-segment-actions", ".crm-whatif-plan", ".crm-levers",
                ".crm-run-files"):
        page.locator(css).first.wait_for(state="visible")
    yield page
    page.close()


def _changed(page, css: str, before: str) -> None:
    page.wait_for_function("([c, b]) => document.querySelector(c).innerText != b",
                           arg=[css, before], timeout=PAGE_TIMEOUT_MS)


def test_levers_and_the_what_if_move_the_plans_decision_and_npv(run_page):
    page = run_page
    assert "decision" in page.locator(".crm-decision").inner_text().lower()
    figures = page.locator(".crm-plan-figures").inner_text()
    assert "What you must believe" in figures and "Decision" in figures
    handle = page.locator(".crm-lever-retention-points .noUi-handle")
    handle.focus()
    for _ in range(4):
        handle.press("ArrowLeft")
    _changed(page, ".crm-plan-figures", figures)
    line = page.locator(".crm-whatif-plan").inner_text()
    assert "Net present value of the plan" in line
    page.locator(".crm-whatif-segment select").select_option(label="Champions")
    page.locator(".crm-whatif-type select").select_option(label="Self-service")
    _changed(page, ".crm-whatif-plan", line)
    # the plan section redraws after the what-if's own line: wait for it, do not race it
    page.wait_for_function("([c, s]) => document.querySelector(c).innerText.includes(s)",
                           arg=[".crm-plan", "what-if on Champions"],
                           timeout=PAGE_TIMEOUT_MS)


def test_a_segment_says_what_to_do(run_page):
    page = run_page
    actions = page.locator(".crm-segment-actions").inner_text()
    assert "What to do" in actions and "Rule" in actions
    page.locator(".crm-segment-choice select").select_option(label="Can't lose them")
    _changed(page, ".crm-segment-actions", actions)
    assert "Win back" in page.locator(".crm-segment-actions").inner_text()


def test_the_runs_files_download_and_nothing_else(run_page, run_server, tmp_path):
    page = run_page
    links = page.locator(".crm-run-files a")
    assert links.count() == 3
    for name, content in RUN_FILE_BYTES.items():
        link = page.locator(f".crm-download-{name.replace('.', '-')}")
        with page.expect_download() as info:
            link.click()  # the download attribute saves it (same origin)
        saved = tmp_path / name
        info.value.save_as(saved)
        assert saved.read_bytes() == content, name
    href = page.locator(".crm-download-report-pdf").get_attribute("href")
    folder = href.split("/")[2]
    base = run_server["base"]
    for path in (f"{folder}/secret.txt", f"{folder}/results.json", f"{folder}/../dashboard.ipynb",
                 "dashboard.ipynb", "report.pdf", f"{folder}x/report.pdf",
                 f"{folder}/%2e%2e/dashboard.ipynb"):
        status, body, _ = _get(f"{base}/voila/files/{path}")
        assert status in (403, 404), path
        assert "not to be served" not in body and "nbformat" not in body, path
