"""Time `crmkit run` on a demo client: each workbook, the report rendering, and the whole run.

Usage: .venv/bin/python benchmarks/run_report.py [--client data/demo/retail] [--repeat 3]

A workbook's time includes starting its kernel; so that the figures can be read on any machine,
the script also times an empty notebook under papermill in the same run (the baseline) and prints
each workbook's time as a multiple of it, and the floor of a run: five empty notebooks one after
another (five times the median empty notebook: now and then one waits 4 s, nbclient's default
``iopub_timeout``, for a status message that came too early, and a floor holding one such wait
would flatter the ratio). Target: the whole run (five workbooks, tables.xlsx, report, PDF) at
most 3x that floor. The runner starts a workbook as soon as what it needs is done, two computing
at once, runs 01 then 05 and 03 then 04 in one kernel each, starts the kernels of the ones that
wait ahead, gets the printer ready on a free core and prints the PDF beside tables.xlsx. A
workbook's time is its kernel's start and its cells when the kernel started with it, its cells
alone when its kernel was ready ahead: the whole run is the figure to compare.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import nbformat
import papermill
from nbformat.v4 import new_code_cell, new_notebook

from crmkit.core import paths
from crmkit.delivery.runner import run_client


def baseline_seconds(folder: Path) -> float:
    """Papermill executing a one-cell notebook: the cost of a kernel, nothing else."""
    source = folder / "empty.ipynb"
    notebook = new_notebook(cells=[new_code_cell("1 + 1")])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    nbformat.write(notebook, source)
    started = time.perf_counter()
    papermill.execute_notebook(str(source), str(folder / "empty-out.ipynb"),
                               kernel_name="python3", progress_bar=False)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", type=Path, default=paths.DEMO_CLIENTS / "retail")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")
        baseline_seconds(tmp)  # warm the disk cache
        baselines, runs = [], []
        for _ in range(args.repeat):
            baselines += [baseline_seconds(tmp) for _ in range(5)]
            started = time.perf_counter()
            run = run_client(args.client, tmp / "reports", progress=False)
            runs.append((run.timings, time.perf_counter() - started))
        base = statistics.median(baselines)
        print(f"client: {args.client}   repeats: {args.repeat}   (median seconds)")
        print(f"{'step':<22}{'seconds':>9}{'× empty notebook':>19}")
        print(f"{'empty notebook':<22}{base:>9.2f}{1:>19.2f}")
        for step in runs[0][0]:
            seconds = statistics.median(r[0][step] for r in runs)
            print(f"{step:<22}{seconds:>9.2f}{seconds / base:>19.2f}")
        total = statistics.median(r[1] for r in runs)
        floor = 5 * base
        print(f"{'whole run':<22}{total:>9.2f}{total / base:>19.2f}")
        print(f"{'5 empty notebooks':<22}{floor:>9.2f}{floor / base:>19.2f}")
        print(f"whole run / floor of five empty notebooks: {total / floor:.2f}x")


if __name__ == "__main__":
    main()
