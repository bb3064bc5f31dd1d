"""Time the client's dashboard in a real browser: first render and each what-if update.

Usage: .venv/bin/python benchmarks/dashboard.py [--client data/demo/retail] [--updates 10]
       [--reports reports] [--screenshot docs/dashboard.png]

Starts ``crmkit dashboard`` on a copy of the client (127.0.0.1, a free port) and drives Debian's
Chromium through Playwright. It prints

- **first render, pre-heated**: from navigating to the link to the key figures being visible,
  once the server has had time to run the notebook ahead in its spare kernels (the usual case:
  the consultant starts the server, the client opens the link later); then for a second visit
  right after the first (served by the second spare kernel);
- **first render, cold**: the same for a third visit right after those, when no spare kernel
  is ready, so the page waits for a kernel to start and run the notebook;
- **what-if update**: from a key press on the retention slider (or a change of the relationship
  type) to the what-if figures' text changing, over ``--updates`` moves: median and worst;
- **plan update**: the same for the plan's budget slider (cash flows and returns recomputed).

Without ``--reports`` the client has no run, so the kernel segments and values the customers
itself (the slower case); ``--reports reports`` after ``crmkit run data/demo/retail --out
reports`` serves that run, as a consultant would (and gives the README's screenshot).

Targets (issue 6): first render at most 6 s, each update at most 300 ms. Nothing is asserted;
the figures depend on the machine. ``--screenshot`` saves the whole page (for the README).
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
import urllib.request
from pathlib import Path

from crmkit.core import paths

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
#: Seconds to leave the server after it starts, so its spare kernel has run the notebook.
HEAT_SECONDS = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(client: Path, folder: Path, reports: Path | None = None
          ) -> tuple[subprocess.Popen, str]:
    """Start ``crmkit dashboard`` and return the process and the link it prints."""
    port = free_port()
    out = folder / "stdout.txt"
    process = subprocess.Popen(
        [sys.executable, "-m", "crmkit", "dashboard", str(client), "--port", str(port),
         "--reports", str((reports or folder / "reports").resolve())],
        stdout=out.open("w"), stderr=(folder / "stderr.txt").open("w"), cwd=folder,
        start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        links = [line for line in out.read_text().splitlines() if line.startswith("http")]
        if links:
            break
        time.sleep(0.2)
    else:
        raise RuntimeError((folder / "stderr.txt").read_text())
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5)
            break
        except OSError:
            time.sleep(0.3)
    return process, links[0]


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
    page.locator(".crm-kpis").wait_for(state="visible")
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
        process, url = start(client, folder, args.reports)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=args.chromium,
                                                     headless=True, args=CHROMIUM_ARGS)
                time.sleep(HEAT_SECONDS)
                warm, warm_chart, page = first_render(browser, url)
                slider, dropdown = updates(page, args.updates)
                budget = budget_updates(page, args.updates)
                if args.screenshot:
                    choice = page.locator(".crm-whatif-type select")
                    choice.select_option(label="Automated services")
                    screenshot(page, args.screenshot)
                again, again_chart, second = first_render(browser, url)
                cold, cold_chart, third = first_render(browser, url)
                for opened in (third, second, page):
                    opened.close(run_before_unload=True)
                browser.close()
        finally:
            stop(process)

    source = f"runs in {args.reports}" if args.reports else "no run"
    print(f"client: {args.client}, {source}  (machine: {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f})")
    print(f"first render, pre-heated: key figures {warm:.2f} s, first chart {warm_chart:.2f} s")
    print(f"second visit, pre-heated: key figures {again:.2f} s, "
          f"first chart {again_chart:.2f} s")
    print(f"third visit, cold:        key figures {cold:.2f} s, first chart {cold_chart:.2f} s")
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
