"""``crmkit check`` on broken workspaces, through the real command line.

Every case must exit with code 2, print no traceback, name the file, the column (or settings
key) and the value as found, and write nothing into the workspace. Forty processes would each pay
pandas' import time (about 35 s of the test run), so one process runs ``crmkit check`` on every
workspace in turn through the same entry point as ``python -m crmkit`` (each with its own HOME and
working folder, its output captured, an escaped exception printed as Python prints one), and one
real ``python -m crmkit check`` proves that process says exactly what the command line says.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

FUTURE = (dt.date.today() + dt.timedelta(days=20)).isoformat()
TX = "customer_id,date,amount\n"
INTERACTIONS = "customer_id,date,channel,relationship_type,minutes\n"


def segment_map(*rules: tuple[str, str]) -> str:
    """A client's own two-axis R x F map: one segment per (key, rule) pair."""
    segments = "".join(f"  - key: {key}\n    name: {{en: {key}, es: {key}}}\n"
                       f"    description: {{en: x, es: x}}\n    rule: {rule}\n"
                       for key, rule in rules)
    return ("key: ours\nkind: scores\ntitle: {en: Our segments, es: Nuestros segmentos}\n"
            "segments:\n" + segments)


CUSTOM_MAP = {"segmentation": {"map": "our_map.yaml"}}


@dataclass
class Case:
    id: str
    files: dict = field(default_factory=dict)
    config: dict | None = None
    file: str = ""  # the file the message must name
    column: str | None = None  # e.g. "column 'amount'" or "key 'csv.encoding'"
    found: tuple[str, ...] = ()  # the value(s) as found, as printed
    yaml_tail: str = ""  # text appended to client.yaml as is


CASES = [
    Case("missing_required_file", {"customers.csv": None, "clientes.csv": "customer_id\nC1\n"},
         file="customers.csv", found=("file not found", "'clientes.csv'")),
    Case("empty_file", {"transactions.csv": ""}, file="transactions.csv", found=("is empty",)),
    Case("header_but_no_rows", {"survey.csv": "customer_id,satisfaction\n"}, file="survey.csv",
         found=("no data rows", "'satisfaction'")),
    Case("missing_column_unmapped",
         {"transactions.csv": "Nº Cliente;Fecha;Importe\nC1;05/03/2024;12,5\n"},
         file="transactions.csv", column="column 'customer_id'",
         found=("'Nº Cliente'", "'Fecha'", "columns: transactions: customer_id")),
    Case("mapped_column_not_found", {"transactions.csv": "customer_id,date,Total\n"
                                                         "C1,2024-01-05,3\n"},
         {"columns": {"transactions": {"amount": "Importe"}}},
         file="transactions.csv", column="column 'Importe'", found=("'Total'",)),
    Case("unparseable_number", {"transactions.csv": TX + "C1,2024-01-05,12.5\n"
                                                         "C2,2024-01-06,twelve\n"},
         file="transactions.csv", column="column 'amount'", found=("line 3: 'twelve'",)),
    Case("unparseable_date", {"transactions.csv": TX + "C1,2024-13-45,3\n"},
         file="transactions.csv", column="column 'date'", found=("line 2: '2024-13-45'",)),
    Case("month_first_dates", {"transactions.csv": TX + "C1,03/25/2024,3\nC2,04/26/2024,3\n"},
         file="transactions.csv", column="column 'date'",
         found=("line 2: '03/25/2024'", "csv.date_format: monthfirst")),
    Case("duplicate_customer_ids", {"customers.csv": "customer_id\nC1\nC2\nC2\nC3\n"},
         file="customers.csv", column="column 'customer_id'", found=("line 4: 'C2",)),
    Case("unknown_customer", {"transactions.csv": TX + "C1,2024-01-05,3\nC99,2024-01-06,4\n"},
         file="transactions.csv", column="column 'customer_id'", found=("line 3: 'C99'",)),
    Case("unknown_customer_in_survey", {"survey.csv": "customer_id,satisfaction\nC1,4\nC77,3\n"},
         file="survey.csv", column="column 'customer_id'", found=("line 3: 'C77'",)),
    Case("blank_customer_id", {"transactions.csv": TX + "C1,2024-01-05,3\n ,2024-01-06,4\n"},
         file="transactions.csv", column="column 'customer_id'", found=("line 3: ' '",)),
    Case("future_date", {"transactions.csv": TX + f"C1,{FUTURE},3\n"},
         file="transactions.csv", column="column 'date'", found=(f"'{FUTURE}'", "future")),
    Case("after_as_of", {}, {"as_of": "2024-02-01"}, file="transactions.csv",
         column="column 'date'", found=("line 3: '2024-02-10'", "as_of 2024-02-01")),
    Case("before_1970", {"transactions.csv": TX + "C1,1969-12-31,3\n"},
         file="transactions.csv", column="column 'date'", found=("'1969-12-31'",)),
    Case("absurd_amount", {"transactions.csv": TX + "C1,2024-01-05,25000000\n"},
         file="transactions.csv", column="column 'amount'", found=("'25000000'",)),
    Case("margin_over_amount", {"transactions.csv": "customer_id,date,amount,margin\n"
                                                    "C1,2024-01-05,100,150\n"},
         file="transactions.csv", column="column 'margin'", found=("'150'",)),
    Case("satisfaction_out_of_range", {"survey.csv": "customer_id,satisfaction\nC1,7\nC2,3.5\n"},
         file="survey.csv", column="column 'satisfaction'", found=("'7'", "'3.5'")),
    Case("nps_out_of_range", {"survey.csv": "customer_id,satisfaction,nps\nC1,4,11\n"},
         file="survey.csv", column="column 'nps'", found=("'11'",)),
    Case("implausible_minutes", {"interactions.csv": INTERACTIONS
                                 + "C1,2024-01-05,phone,personal_assistance,-5\n"
                                 + "C2,2024-01-05,phone,personal_assistance,2000\n"},
         file="interactions.csv", column="column 'minutes'", found=("'-5'", "'2000'")),
    Case("unknown_relationship_type", {"interactions.csv": INTERACTIONS
                                       + "C1,2024-01-05,phone,telepathy,5\n"},
         file="interactions.csv", column="column 'relationship_type'",
         found=("'telepathy'", "self_service")),
    Case("unknown_preferred_relationship",
         {"survey.csv": "customer_id,satisfaction,preferred_relationship\nC1,4,vip lounge\n"},
         file="survey.csv", column="column 'preferred_relationship'", found=("'vip lounge'",)),
    Case("negative_category_spend", {"customers.csv": "customer_id,category_spend\nC1,-5\n"
                                                      "C2,3\nC3,4\n"},
         file="customers.csv", column="column 'category_spend'", found=("'-5'",)),
    Case("binary_file", {"transactions.csv": b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00"},
         file="transactions.csv", found=("Excel",)),
    Case("wrong_configured_encoding",
         {"transactions.csv": (TX.replace("customer_id", "Nº") + "C1,2024-01-05,3\n")
          .encode("cp1252")},
         {"csv": {"encoding": "utf-8"}}, file="transactions.csv", column="csv.encoding",
         found=("0xba", "line 1")),
    Case("too_many_fields", {"transactions.csv": TX + "C1,2024-01-05,12,50\n"},
         file="transactions.csv", found=("line 2: 'C1,2024-01-05,12,50'", "4 fields")),
    Case("unclosed_quote", {"transactions.csv": TX + 'C1,"2024-01-05,3\nC2,2024-01-06,4\n'},
         file="transactions.csv", found=("line 2", "never closed")),
    Case("separator_setting_does_not_fit", {}, {"csv": {"separator": ";"}},
         file="transactions.csv", column="csv.separator",
         found=("'customer_id,date,amount,product'",)),
    Case("invalid_setting", {}, {"assumptions": {"gross_margin": 1.5}}, file="client.yaml",
         column="key 'assumptions.gross_margin'", found=("1.5",)),
    Case("unknown_encoding_setting", {}, {"csv": {"encoding": "latin-15"}}, file="client.yaml",
         column="key 'csv.encoding'", found=("'latin-15'",)),
    Case("invalid_yaml_date", yaml_tail="as_of: 2024-02-30\n",
         file="client.yaml", column="key 'as_of'", found=("'2024-02-30'",)),
    Case("segment_map_overlap",
         {"our_map.yaml": segment_map(("recent", "{r: [3, 5]}"), ("lapsed", "{r: [1, 3]}"))},
         CUSTOM_MAP, file="our_map.yaml",
         found=("R=3,F=1; R=3,F=2; R=3,F=3; R=3,F=4; R=3,F=5 are each claimed by 'lapsed' "
                "and 'recent'",)),
    Case("segment_map_gap",
         {"our_map.yaml": segment_map(("recent", "{r: [4, 5]}"),
                                      ("lapsed", "[{r: [1, 2]}, {r: 3, f: [1, 4]}]"))},
         CUSTOM_MAP, file="our_map.yaml",
         found=("R=3,F=5 is claimed by no segment",)),
    Case("segment_map_missing", {}, {"segmentation": {"map": "maps/our_map.yaml"}},
         file="maps/our_map.yaml", found=("segment map not found",)),
]

MANY = Case(
    "many_problems",
    {"customers.csv": "customer_id\nC1\nC2\nC2\nC3\n",
     "transactions.csv": TX + "C1,2024-01-05,abc\nC2,05/13/2024,3\n",
     "survey.csv": "customer_id,satisfaction\nC1,9\n",
     "interactions.csv": INTERACTIONS + "C1,2024-01-05,phone,telepathy,5\n"},
    {"currency": "euros"},
)
#: A bad map and bad data: one check lists both.
MAP_AND_DATA = Case(
    "segment_map_and_data",
    {"our_map.yaml": segment_map(("recent", "{r: [4, 5]}"), ("lapsed", "{r: [1, 2]}")),
     "transactions.csv": TX + "C1,2024-01-05,abc\n"},
    {**CUSTOM_MAP, "currency": "euros"},
)
VALID = Case("valid", {})


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


#: Runs ``crmkit check`` on each (workspace, home) of argv[1] (JSON) in turn, in this one process,
#: as ``python -m crmkit check WORKSPACE`` would from ``home``; writes [code, stdout, stderr] each.
CHECK_EACH = """
import contextlib, io, json, os, sys, traceback
from crmkit.delivery.cli import main
said = []
for root, home in json.loads(sys.argv[1]):
    os.environ["HOME"] = home
    os.chdir(home)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["check", root])
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
        except BaseException:
            traceback.print_exc()
            code = 1
    said.append([code, out.getvalue(), err.getvalue()])
print(json.dumps(said))
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory, workspace_writer):
    """Every workspace built and checked: case id -> (result, files before, after, home).

    The result is a :class:`subprocess.CompletedProcess` as the command line would have given.
    """
    cases = [*CASES, MANY, MAP_AND_DATA, VALID]
    homes, roots, before = [], [], []
    for case in cases:
        home = tmp_path_factory.mktemp(case.id)
        root = workspace_writer(home, case.files, case.config)
        if case.yaml_tail:
            with (root / "client.yaml").open("a", encoding="utf-8") as handle:
                handle.write(case.yaml_tail)
        homes.append(home)
        roots.append(root)
        before.append(snapshot(root))
    pairs = [[str(root), str(home)] for root, home in zip(roots, homes, strict=True)]
    done = subprocess.run([sys.executable, "-c", CHECK_EACH, json.dumps(pairs)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout)
    return {case.id: (subprocess.CompletedProcess(["crmkit", "check", str(root)], *told),
                      was, snapshot(root), sorted(p.name for p in home.iterdir()))
            for case, root, home, was, told in zip(cases, roots, homes, before, said, strict=True)}


def test_one_process_says_what_the_command_line_says(runs, tmp_path, workspace_writer):
    """The shared process's output for the six-problem case is the real command line's."""
    root = workspace_writer(tmp_path, MANY.files, MANY.config)
    done = subprocess.run([sys.executable, "-m", "crmkit", "check", str(root)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          env={**os.environ, "HOME": str(tmp_path)})
    shared = runs[MANY.id][0]
    assert done.returncode == shared.returncode == 2
    assert done.stdout == shared.stdout
    assert done.stderr.replace(str(root), "ROOT") == shared.stderr.replace(
        str(runs[MANY.id][0].args[-1]), "ROOT")


def assert_nothing_written(result):
    _, before, after, home = result
    assert after == before  # same files, same bytes, same modification times
    assert home == ["acme"]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_workspace_is_explained(runs, case):
    done = runs[case.id][0]
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "Traceback" not in output
    assert "nothing was written" in done.stderr
    assert f"{case.file}:" in done.stderr, done.stderr
    if case.column:
        assert case.column in done.stderr, done.stderr
    for found in case.found:
        assert found in done.stderr, done.stderr
    assert_nothing_written(runs[case.id])


def test_enough_distinct_cases():
    assert len({c.id for c in CASES}) == len(CASES) >= 14


def test_all_problems_are_reported_at_once(runs):
    done = runs[MANY.id][0]
    assert done.returncode == 2 and "Traceback" not in done.stderr
    stderr = done.stderr
    for expected in ("client.yaml:", "key 'currency'", "'euros'",
                     "customers.csv:", "line 4: 'C2", "transactions.csv:", "line 2: 'abc'",
                     "line 3: '05/13/2024'", "survey.csv:", "line 2: '9'",
                     "interactions.csv:", "'telepathy'"):
        assert expected in stderr, stderr
    first_line = stderr.splitlines()[0]
    assert first_line.startswith("crmkit check: 6 problems in"), first_line
    assert_nothing_written(runs[MANY.id])


def test_segment_map_problems_are_listed_with_the_others(runs):
    done = runs[MAP_AND_DATA.id][0]
    assert done.returncode == 2 and "Traceback" not in done.stderr
    stderr = done.stderr
    # The map's problems are listed under the map's name, with those of client.yaml and the data.
    for expected in ("client.yaml:", "'euros'", "our_map.yaml:",
                     "R=3,F=1; R=3,F=2; R=3,F=3; R=3,F=4; R=3,F=5 are claimed by no segment",
                     "transactions.csv:", "line 2: 'abc'"):
        assert expected in stderr, stderr
    assert stderr.splitlines()[0].startswith("crmkit check: 3 problems in"), stderr
    assert_nothing_written(runs[MAP_AND_DATA.id])


def test_valid_workspace_passes_check(runs):
    done = runs[VALID.id][0]
    assert done.returncode == 0, done.stderr
    assert "Acme Retail" in done.stdout and "No problems found" in done.stdout
    assert "Traceback" not in done.stderr
    assert_nothing_written(runs[VALID.id])
