"""A big client through ``crmkit run``: per-stage timings and the peak memory of the whole run.

Usage::

    .venv/bin/python benchmarks/big_client.py [--customers 1000000] [--years 3]
        [--profile bank] [--seed 1] [--workspace /tmp/crmkit-big] [--out REPORTS_DIR]
        [--baselines]

The workspace is written by the synthetic generator (:mod:`crmkit.demo.synthetic`, the profiles
of ``data/demo/profiles/``), outside git, under
``--workspace/<profile>-<customers>-<years>y-s<seed>``; a workspace already there with the same
parameters is reused (writing ten million lines takes minutes, and is not what is measured).
The bank profile (a non-contractual client) brings about 11.7 revenue lines per customer over
three years, so the default of 1,000,000 customers is about 11.7 million transaction lines
(retail: about 6.3 lines per customer).

Then ``crmkit run WORKSPACE --out OUT`` runs as a child process while this script samples, every
0.2 s, the resident memory of the run's whole process tree (the CLI, the workbook kernels, the
PDF printer), two ways: the sum of each process's resident set (an upper bound: pages the
processes share, the libraries every kernel maps and Chromium's shared memory, are counted once
per process), and the sum of each process's proportional set size (PSS, from
``/proc/PID/smaps_rollup``: a shared page is split between the processes sharing it, so the sum
is the memory the run takes from the machine). Both peaks are printed against the 6 GB target
(6 GB = 5.59 GiB). The per-stage timings come from the
run folder's ``run.json``; the loading stage (validate the workspace, write ``RUN_DIR/inputs/``)
is the time before the first kernel starts.

The machine is shared, so every figure is printed beside baselines measured in the same run
(``--baselines``): ``pandas.read_csv`` of the same transactions file, and an empty notebook under
papermill (the cost of a kernel), and the load average before and after. Figures only: this
script asserts nothing; it exits with the run's exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
CRMKIT = Path(sys.executable).with_name("crmkit")


def make_workspace(folder: Path, profile: str, customers: int, years: float, seed: int) -> Path:
    """The synthetic workspace under ``folder`` (generated once per set of parameters)."""
    path = folder / f"{profile}-{customers}-{years:g}y-s{seed}"
    if (path / "client.yaml").is_file():
        print(f"workspace: {path} (reused)")
        return path
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "crmkit.demo.synthetic", profile, str(path),
                    "--customers", str(customers), "--seed", str(seed), "--years", str(years)],
                   check=True)
    print(f"workspace: {path} (generated in {time.perf_counter() - started:.1f} s)")
    return path


def tree_memory(process: psutil.Process) -> tuple[int, int]:
    """(resident bytes, proportional bytes) of a process and all its descendants, summed."""
    rss = pss = 0
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0, 0
    for member in members:
        try:
            info = member.memory_full_info()
        except psutil.Error:
            continue
        rss += info.rss
        pss += getattr(info, "pss", info.rss)  # no PSS outside Linux: the upper bound
    return rss, pss


def run_measured(workspace: Path, out: Path) -> tuple[int, float, tuple[int, int], float | None]:
    """Run ``crmkit run`` and sample its process tree.

    Returns (exit code, seconds, (peak RSS sum, peak PSS sum) in bytes, t_kernel): ``t_kernel``
    is when the first workbook kernel appeared (seconds after the start): the loading stage
    before it is not in ``run.json``.
    """
    started = time.perf_counter()
    child = subprocess.Popen([str(CRMKIT), "run", str(workspace), "--out", str(out)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    process = psutil.Process(child.pid)
    peak, peak_pss, first_kernel = 0, 0, None
    while child.poll() is None:
        rss, pss = tree_memory(process)
        peak, peak_pss = max(peak, rss), max(peak_pss, pss)
        if first_kernel is None:
            try:
                names = [" ".join(p.cmdline()) for p in process.children(recursive=True)]
            except psutil.Error:
                names = []
            if any("ipykernel" in n for n in names):
                first_kernel = time.perf_counter() - started
        time.sleep(0.2)
    seconds = time.perf_counter() - started
    output = child.stdout.read() if child.stdout else ""
    if child.returncode:
        print(output[-4000:])
    return child.returncode, seconds, (peak, peak_pss), first_kernel


def baselines(workspace: Path) -> dict[str, float]:
    """The machine's speed now: pandas reading the same file, and an empty notebook's kernel."""
    import nbformat
    import pandas as pd
    import papermill
    from nbformat.v4 import new_code_cell, new_notebook

    figures: dict[str, float] = {}
    started = time.perf_counter()
    frame = pd.read_csv(workspace / "transactions.csv")
    figures["pandas.read_csv(transactions.csv)"] = time.perf_counter() - started
    figures["lines"] = float(len(frame))
    del frame
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "empty.ipynb"
        notebook = new_notebook(cells=[new_code_cell("1 + 1")])
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                           "language": "python"}
        nbformat.write(notebook, source)
        started = time.perf_counter()
        papermill.execute_notebook(str(source), str(Path(tmp) / "out.ipynb"),
                                   kernel_name="python3", progress_bar=False)
        figures["empty notebook (papermill)"] = time.perf_counter() - started
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="bank")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--years", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workspace", type=Path, default=Path(tempfile.gettempdir())
                        / "crmkit-big")
    parser.add_argument("--out", type=Path, default=None,
                        help="reports folder (default: a temporary one, removed at the end)")
    parser.add_argument("--baselines", action="store_true",
                        help="also time pandas.read_csv of the file and an empty notebook")
    args = parser.parse_args()

    workspace = make_workspace(args.workspace, args.profile, args.customers, args.years,
                               args.seed)
    sizes = {p.name: p.stat().st_size for p in sorted(workspace.glob("*.csv"))}
    print("files: " + ", ".join(f"{n} {s / 1e6:,.0f} MB" for n, s in sizes.items()))
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    base = baselines(workspace) if args.baselines else {}

    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "reports"
        code, seconds, peak, first_kernel = run_measured(workspace, out)
        load_after = os.getloadavg()
        runs = sorted(out.glob("*/*/run.json"), key=lambda p: p.stat().st_mtime)
        info = json.loads(runs[-1].read_text()) if runs and not code else {}
        results = runs[-1].with_name("results.json") if runs and not code else None
        segments = json.loads(results.read_text()).get("segments", {}) if results else {}

    print(f"\ncrmkit run: exit {code}, {seconds:.1f} s wall, peak memory of the process tree "
          f"{peak[1] / 2**30:.2f} GiB PSS, {peak[0] / 2**30:.2f} GiB summing each process's RSS "
          "(target: 90 s, 6 GB = 5.59 GiB)")
    if first_kernel is not None:
        print(f"  {'inputs (load, validate, cache)':<34} {first_kernel:7.1f} s  (until the first "
              "kernel; includes starting it)")
    for stage, value in (info.get("timings_seconds") or {}).items():
        print(f"  {stage:<34} {value:7.1f} s")
    if segments.get("clusters"):
        clusters = segments["clusters"]
        customers = sum(c["customers"] for c in clusters.get("clusters", {}).values())
        print(f"  customers segmented: {customers:,} (silhouette on a sample of "
              f"{clusters.get('sample_size', 0):,})")
    for name, value in base.items():
        print(f"  baseline {name:<40} {value:9,.1f}" + ("" if name == "lines" else " s"))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in load_after)}")
    return code


if __name__ == "__main__":
    sys.exit(main())
