"""Regenerate the three committed demo client workspaces, deterministically.

    python data/demo/make_demo.py            # rewrite data/demo/{retail,bank,telecom}
    python data/demo/make_demo.py --check    # regenerate in a temporary folder and compare

Each workspace must stay under 3 MB on disk (they are committed); the sizes below were chosen
for that. The files are byte-identical from one run to the next (tests/demo/test_synthetic.py checks
it), so a diff in git means the generator changed.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

from crmkit.demo.synthetic import generate, write_workspace

HERE = Path(__file__).resolve().parent

#: name -> arguments of ``generate`` and the dialect the workspace is written in.
DEMOS: dict[str, dict] = {
    # Fashion and home retailer, English, comma-separated UTF-8.
    "retail": {"profile": "retail", "n_customers": 4000, "seed": 7, "years": 3,
               "dialect": "standard"},
    # Spanish retail bank: semicolon, decimal comma, Latin-1, dd/mm/yyyy, Spanish headers.
    "bank": {"profile": "bank", "n_customers": 2500, "seed": 11, "years": 3,
             "dialect": "spanish"},
    # Telecom operator, a contractual client (customers.csv has start_date and end_date), Excel
    # export: UTF-8 with BOM, semicolon. Two years of monthly bills keep it under 3 MB.
    "telecom": {"profile": "telecom", "n_customers": 2200, "seed": 5, "years": 2,
                "dialect": "excel_bom"},
}


def build(root: Path) -> dict[str, Path]:
    """Write every demo workspace under ``root`` (each folder must not exist or be empty)."""
    written = {}
    for name, spec in DEMOS.items():
        spec = dict(spec)
        dialect = spec.pop("dialect")
        client = generate(**spec)
        written[name] = write_workspace(client, Path(root) / name, dialect=dialect)
    return written


def differences(root: Path, reference: Path = HERE) -> list[str]:
    """Files that differ between two demo roots (empty list: identical)."""
    out = []
    for name in DEMOS:
        a, b = Path(root) / name, Path(reference) / name
        names = sorted({p.name for p in a.iterdir()} | {p.name for p in b.glob("*")})
        for file in names:
            if not (a / file).is_file() or not (b / file).is_file():
                out.append(f"{name}/{file}: missing on one side")
            elif not filecmp.cmp(a / file, b / file, shallow=False):
                out.append(f"{name}/{file}: differs")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="regenerate in a temporary folder and compare; write nothing here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        build(Path(tmp))
        if args.check:
            diff = differences(Path(tmp))
            print("\n".join(diff) if diff else "demo workspaces are up to date")
            return 1 if diff else 0
        for name in DEMOS:
            target = HERE / name
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(Path(tmp) / name, target)
            size = sum(p.stat().st_size for p in target.iterdir())
            print(f"{target}: {size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
