"""Time the client's dashboard in a real browser: loads, memory, and each what-if update.

Usage: .venv/bin/python benchmarks/dashboard.py [--client data/demo/retail] [--loads 20]
       [--at-once 5] [--max-kernels 4] [--updates 10] [--reports reports]
       [--screenshot docs/dashboard.png]

Starts ``crmkit dashboard`` on a copy of the client (127.0.0.1, a free port) and drives Debian's
Chromium through Playwright. It prints

- **loads**: ``--loads`` page loads, ``--at-once`` at a time (each batch opened together, then
  closed as tabs are, the next opened once their kernels are shut down): per load, the seconds
  from navigating to the link to every section being visible, or "busy" when the server refused
  it (more pages at once than ``--max-kernels``); lost sections ("model not found") are counted;
- **after the loads**: the kernels running and the resident memory of the server and its
  kernels with the last batch open, and again 20 s after its tabs closed;
- **what-if update**: from a key press on the retention slider (or a change of the relationship
  type) to the what-if figures' text changing, over ``--updates`` moves: median and worst;
- **plan update**: the same for the plan's budget slider (cash flows and returns recomputed).

Without ``--reports`` the client has no run, so the kernel segments and values the customers
itself (the slower case); ``--reports reports`` after ``crmkit run data/demo/retail --out
reports`` serves that run, as a consultant would (and gives the README's screenshot).

Nothing is asserted; the figures depend on the machine
(tests/browser/test_dashboard_browser.py asserts the kernel cap and a memory bound).
``--screenshot`` saves the whole page (for the README).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from crmkit.core import paths

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SECTIONS = (".crm-decision", ".crm-overview .crm-kpis", ".crm-explorer", ".crm-whatif", ".crm-plan",
            ".crm-downloads-section")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(client: Path, folder: Path, reports: Path | None = None, max_kernels: int = 4
          ) -> tuple[subprocess.Popen, str]:
    """Start ``crmkit dashboard`` and return the process and the link it prints."""
    port = free_port()
    out = folder / "stdout.txt"
    process = subprocess.Popen(
        [sys.executable, "-m", "crmkit", "dashboard", str(client), "--port", str(port),
         "--reports", str((reports or folder / "reports").resolve()),
         "--max-kernels", str(max_kernels)],
        stdout=out.open("w"), stderr=(folder / "stderr.txt").open("w"), cwd=folder,
        start_new_session=True)
    # The command prints the link once the server answers.
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        links = [line for line in out.read_text().splitlines() if line.startswith("http")]
        if links:
            return process, links[0]
        if process.poll() is not None:
            break
        time.sleep(0.2)
    raise RuntimeError((folder / "stderr.txt").read_text())


def kernels_and_memory(pid: int) -> tuple[int, float]:
    """Kernel processes under the server, and the resident memory (MB) of the whole tree."""
    import psutil

    root = psutil.Process(pid)
    kernels, rss = 0, 0
    for proc in [root, *root.children(recursive=True)]:
        try:
            rss += proc.memory_info().rss
            kernels += any("ipykernel" in part for part in proc.cmdline())
        except psutil.NoSuchProcess:
            pass
    return kernels, rss / 2**20


def load_batches(browser, url: str, loads: int, at_once: int, pid: int
                 ) -> tuple[list[tuple[str, float]], tuple[int, float]]:
    """``loads`` loads, ``at_once`` pages opened together; (outcome, seconds) per load, and
    (kernels, MB) measured once the last batch has loaded, before its tabs close.

    The outcome is "whole" (every section visible), "busy" (the server's busy page) or "lost"
    (a section replaced by "model not found", or missing after 180 s); the seconds run from
    the page's navigation to its outcome. Between batches, the closed tabs' kernels are given
    time to shut down (a person would not reopen five tabs the same second).
    """
    results = []
    for first in range(0, loads, at_once):
        pending = {}
        for _ in range(min(at_once, loads - first)):
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            pending[page] = time.perf_counter()
            page.goto(url, wait_until="commit", timeout=120_000)
        opened = list(pending)
        measured = (0, 0.0)
        while pending:
            for page, started in list(pending.items()):
                took = time.perf_counter() - started
                if page.locator("#crm-busy").count():
                    outcome = "busy"
                elif "model not found" in page.locator("body").inner_text():
                    outcome = "lost"
                elif all(page.locator(s).is_visible() for s in SECTIONS):
                    outcome = "whole"
                elif took > 180:
                    outcome = "lost"
                else:
                    continue
                results.append((outcome, took))
                del pending[page]
            time.sleep(0.1)
        measured = kernels_and_memory(pid)
        for page in opened:
            page.close(run_before_unload=True)
        if first + at_once < loads:
            deadline = time.monotonic() + 60
            while kernels_and_memory(pid)[0] and time.monotonic() < deadline:
                time.sleep(0.5)
    return results, measured


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def first_render(browser, url: str) -> tuple[float, float, object]:
    """Seconds to the key figures, and to the first chart, visible; and the open page."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(90_000)
    started = time.perf_counter()
    page.goto(url, wait_until="commit")
    page.locator(".crm-overview .crm-kpis").wait_for(state="visible")
    figures = time.perf_counter() - started
    page.locator(".js-plotly-plot").first.wait_for(state="visible")
    return figures, time.perf_counter() - started, page


def changed(page, before: str) -> None:
    page.wait_for_function(
        "b => document.querySelector('.crm-whatif-figures').innerText != b", arg=before,
        polling="raf")


def updates(page, count: int) -> tuple[list[float], list[float]]:
    """Milliseconds from a slider key press, and from a dropdown change, to new figures."""
    figures = page.locator(".crm-whatif-figures")
    handle = page.locator(".crm-whatif-retention .noUi-handle")
    slider = []
    for step in range(count):
        before = figures.inner_text()
        handle.focus()
        started = time.perf_counter()
        # down first: the first segment may be at the highest retention the model allows
        handle.press("ArrowLeft" if step % 2 == 0 else "ArrowRight")
        changed(page, before)
        slider.append((time.perf_counter() - started) * 1000)
    select = page.locator(".crm-whatif-type select")
    labels = select.locator("option").all_inner_texts()
    dropdown = []
    for step in range(count):
        before = figures.inner_text()
        started = time.perf_counter()
        select.select_option(label=labels[step % len(labels)])
        try:
            changed(page, before)
        except Exception:  # the same type as before: nothing to change
            continue
        dropdown.append((time.perf_counter() - started) * 1000)
    return slider, dropdown


def budget_updates(page, count: int) -> list[float]:
    """Milliseconds from a key press on the plan's budget slider to new returns."""
    figures = page.locator(".crm-plan-figures")
    handle = page.locator(".crm-plan-budget .noUi-handle")
    out = []
    for step in range(count):
        before = figures.inner_text()
        handle.focus()
        started = time.perf_counter()
        handle.press("ArrowLeft" if step % 2 == 0 else "ArrowRight")
        page.wait_for_function(
            "b => document.querySelector('.crm-plan-figures').innerText != b", arg=before,
            polling="raf")
        out.append((time.perf_counter() - started) * 1000)
    return out


def screenshot(page, path: Path) -> None:
    """The whole page: the dashboard scrolls inside its own container, so grow the window."""
    height = page.evaluate("document.getElementById('rendered_cells').scrollHeight")
    page.set_viewport_size({"width": 1280, "height": int(height) + 40})
    page.wait_for_timeout(1500)  # plotly redraws at the new size
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", type=Path, default=paths.DEMO_CLIENTS / "retail")
    parser.add_argument("--updates", type=int, default=10)
    parser.add_argument("--loads", type=int, default=20)
    parser.add_argument("--at-once", type=int, default=5)
    parser.add_argument("--max-kernels", type=int, default=4)
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--screenshot", type=Path, default=None)
    parser.add_argument("--reports", type=Path, default=None,
                        help="serve the client's latest run from this reports folder")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="crmkit-bench-dashboard-") as tmp:
        folder = Path(tmp)
        client = folder / args.client.name
        shutil.copytree(args.client, client)
        process, url = start(client, folder, args.reports, args.max_kernels)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=args.chromium,
                                                     headless=True, args=CHROMIUM_ARGS)
                results, after = load_batches(browser, url, args.loads, args.at_once,
                                              process.pid)
                time.sleep(20)  # closed tabs' kernels are shut down 15 s after they disconnect
                settled = kernels_and_memory(process.pid)
                figures, chart, page = first_render(browser, url)
                slider, dropdown = updates(page, args.updates)
                budget = budget_updates(page, args.updates)
                if args.screenshot:
                    choice = page.locator(".crm-whatif-type select")
                    choice.select_option(label="Automated services")
                    screenshot(page, args.screenshot)
                page.close(run_before_unload=True)
                browser.close()
        finally:
            stop(process)

    source = f"runs in {args.reports}" if args.reports else "no run"
    print(f"client: {args.client}, {source}  (machine: {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}); at most {args.max_kernels} kernels")
    whole = [took for outcome, took in results if outcome == "whole"]
    print(f"loads: {len(results)}, {args.at_once} at a time: {len(whole)} whole, "
          f"{sum(o == 'busy' for o, _ in results)} busy, "
          f"{sum(o == 'lost' for o, _ in results)} lost a section")
    if whole:
        print(f"  seconds to every section: median {statistics.median(whole):.1f}, "
              f"fastest {min(whole):.1f}, slowest {max(whole):.1f}")
    print("  per load: " + ", ".join(f"{o} {t:.1f}" for o, t in results))
    print(f"after the loads (last batch still open): {after[0]} kernels, {after[1]:.0f} MB "
          f"resident (server and kernels); 20 s after its tabs closed: {settled[0]} kernels, "
          f"{settled[1]:.0f} MB")
    print(f"one more visit: key figures {figures:.2f} s, first chart {chart:.2f} s")
    print(f"what-if update, slider:   median {statistics.median(slider):.0f} ms, "
          f"worst {max(slider):.0f} ms over {len(slider)} moves")
    if dropdown:
        print(f"what-if update, dropdown: median {statistics.median(dropdown):.0f} ms, "
              f"worst {max(dropdown):.0f} ms over {len(dropdown)} changes")
    print(f"plan update, budget:      median {statistics.median(budget):.0f} ms, "
          f"worst {max(budget):.0f} ms over {len(budget)} moves")
    if args.screenshot:
        print(f"screenshot: {args.screenshot}")


if __name__ == "__main__":
    main()
