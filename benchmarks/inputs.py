"""Time loading transactions from a CSV and from an .xlsx, crmkit against plain pandas.

Run it by hand::

    .venv/bin/python benchmarks/inputs.py [--csv-lines 1000000] [--xlsx-lines 100000]
        [--customers 50000] [--repeat 1]

A random log (customer id, ISO date, amount with two decimals, product) is written to a
temporary workspace as ``transactions.csv`` and, in a second workspace, as ``transactions.xlsx``
(openpyxl, write-only mode). Each is loaded through :func:`crmkit.inputs.workspace.load_workspace`
(detection, typing, every validation, the customers file too) and, in the same run, by the
baselines ``pandas.read_csv`` (dates parsed) and ``pandas.read_excel(engine="openpyxl")`` (and,
for reference, ``engine="calamine"``), which only read. Ratios are crmkit / baseline (below 1:
crmkit is faster). Figures only: this script asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import MINIMAL_CONFIG  # noqa: E402

from crmkit.inputs.workspace import load_workspace  # noqa: E402


def make_log(lines: int, customers: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = np.datetime64("2021-01-01")
    return pd.DataFrame({
        "customer_id": np.char.add("C", rng.integers(1, customers + 1, lines).astype(str)),
        "date": (start + rng.integers(0, 3 * 365, lines).astype("timedelta64[D]")),
        "amount": np.round(rng.gamma(2.0, 30.0, lines), 2),
        "product": rng.choice(["shoes", "shirt", "socks", "hat"], lines),
    })


def workspace(folder: Path, log: pd.DataFrame, kind: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "client.yaml").write_text(yaml.safe_dump(MINIMAL_CONFIG))
    ids = pd.Series(log["customer_id"].unique())
    (folder / "customers.csv").write_text("customer_id\n" + "\n".join(ids) + "\n")
    if kind == "csv":
        log.to_csv(folder / "transactions.csv", index=False, date_format="%Y-%m-%d")
    else:
        book = openpyxl.Workbook(write_only=True)
        sheet = book.create_sheet("Sales")
        sheet.append(list(log.columns))
        for cid, when, amount, product in zip(log["customer_id"], log["date"].dt.date,
                                              log["amount"], log["product"], strict=True):
            sheet.append([cid, when, float(amount), product])
        book.save(folder / "transactions.xlsx")
    return folder


def best_of(repeat: int, run) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv-lines", type=int, default=1_000_000)
    parser.add_argument("--xlsx-lines", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="crmkit-bench-inputs-") as tmp:
        tmp = Path(tmp)
        for kind, lines in (("csv", args.csv_lines), ("xlsx", args.xlsx_lines)):
            log = make_log(lines, args.customers)
            start = time.perf_counter()
            root = workspace(tmp / kind, log, kind)
            written = time.perf_counter() - start
            path = root / f"transactions.{kind}"
            ours, ws = best_of(args.repeat, lambda root=root: load_workspace(root))
            assert len(ws.transactions) == lines
            revenue = float(ws.transactions["amount"].sum())
            if kind == "csv":
                baselines = {"pandas.read_csv": lambda p=path: pd.read_csv(
                    p, parse_dates=["date"], dtype={"customer_id": str})}
            else:
                baselines = {
                    "pandas.read_excel(openpyxl)": lambda p=path: pd.read_excel(
                        p, engine="openpyxl"),
                    "pandas.read_excel(calamine)": lambda p=path: pd.read_excel(
                        p, engine="calamine"),
                }
            print(f"{kind}: {lines:,} lines, {path.stat().st_size / 1e6:.1f} MB "
                  f"(written in {written:.1f} s); revenue {revenue:,.2f}")
            print(f"  crmkit load_workspace          {ours:7.2f} s")
            for label, run in baselines.items():
                seconds, frame = best_of(args.repeat, run)
                assert len(frame) == lines
                print(f"  {label:<30} {seconds:7.2f} s   ratio crmkit/baseline "
                      f"{ours / seconds:5.2f}")


if __name__ == "__main__":
    main()
