"""A portfolio of demo-sized clients: ``crmkit batch --workers 2`` against one run after another.

Usage::

    .venv/bin/python benchmarks/batch.py [--clients 12] [--workers 2] [--root /tmp/crmkit-batch]
        [--keep]

The portfolio is ``--clients`` copies of the bundled demo clients (``data/demo/retail``,
``bank`` and ``telecom`` in turn, or those ``--demos`` names; each copy its own workspace, so
its own slug and run folder), written under ``--root``. In the same run, on the same copies and
the same machine:

1. **one after another**: ``crmkit run CLIENT --out ROOT/sequential --quiet`` for each client, as
   a consultant does by hand today;
2. **batch**: ``crmkit batch CLIENTS --out ROOT/batch --workers N --quiet`` (a local Dask cluster
   of N workers, its start-up included).

It prints the wall time of each, the ratio, every client's status in the batch, and the load
average before, between and after: the machine is shared, and a batch can only be as fast as the
cores that are free. Figures only: this script asserts nothing; it exits 1 when a run failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
DEMOS = ("retail", "bank", "telecom")
CLI = [sys.executable, "-m", "crmkit"]


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def build(root: Path, count: int, demos: tuple[str, ...] = DEMOS) -> Path:
    """``count`` demo-sized workspaces under ``root/clients`` (demo clients copied in turn)."""
    clients = root / "clients"
    if clients.exists():
        shutil.rmtree(clients)
    clients.mkdir(parents=True)
    for i in range(count):
        demo = demos[i % len(demos)]
        shutil.copytree(REPOSITORY / "data" / "demo" / demo, clients / f"{demo}-{i + 1:02d}")
    return clients


def sequential(clients: Path, out: Path) -> tuple[float, dict[str, int]]:
    started = time.perf_counter()
    codes = {}
    for client in sorted(clients.iterdir()):
        one = time.perf_counter()
        codes[client.name] = subprocess.run(
            [*CLI, "run", str(client), "--out", str(out), "--quiet"],
            capture_output=True, check=False).returncode
        print(f"  {client.name}: exit {codes[client.name]}, "
              f"{time.perf_counter() - one:.1f} s", flush=True)
    return time.perf_counter() - started, codes


def batch(clients: Path, out: Path, workers: int) -> tuple[float, int]:
    started = time.perf_counter()
    code = subprocess.run([*CLI, "batch", str(clients), "--out", str(out), "--workers",
                           str(workers), "--quiet"], check=False).returncode
    return time.perf_counter() - started, code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--root", type=Path, default=Path("/tmp/crmkit-batch"))
    parser.add_argument("--demos", default=",".join(DEMOS),
                        help="the demo clients copied in turn (default: retail,bank,telecom)")
    parser.add_argument("--keep", action="store_true", help="keep the workspaces and runs")
    args = parser.parse_args(argv)

    demos = tuple(d.strip() for d in args.demos.split(",") if d.strip())
    if not demos or any(d not in DEMOS for d in demos):
        parser.error(f"--demos {args.demos!r}; expected some of {', '.join(DEMOS)}")
    root = args.root
    for folder in ("sequential", "batch"):
        shutil.rmtree(root / folder, ignore_errors=True)
    clients = build(root, args.clients, demos)
    print(f"{args.clients} demo-sized clients in {clients}; {os.cpu_count()} cores; "
          f"load average {_load()}", flush=True)

    print("one after another (crmkit run):", flush=True)
    one_by_one, codes = sequential(clients, root / "sequential")
    load_between = _load()
    print(f"batch (crmkit batch --workers {args.workers}):", flush=True)
    together, code = batch(clients, root / "batch", args.workers)
    overview = json.loads((root / "batch" / "portfolio.json").read_text(encoding="utf-8"))
    statuses = {c["slug"]: c["status"] for c in overview["clients"]}

    print()
    print(f"one after another: {one_by_one:7.1f} s  ({one_by_one / args.clients:.1f} s a client;"
          f" exits {sorted(set(codes.values()))})")
    print(f"crmkit batch:      {together:7.1f} s  ({together / args.clients:.1f} s a client;"
          f" exit {code}; {overview['counts']})")
    print(f"ratio (one after another / batch): {one_by_one / together:.2f}")
    print(f"load average: between {load_between}, after {_load()}")
    if any(s != "done" for s in statuses.values()):
        print("not done:", {k: v for k, v in statuses.items() if v != "done"})
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if code == 0 and not any(codes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
