"""Reading tables from workbooks (.xlsx, .ods), Parquet and whitespace-separated logs.

Every export is built here, in a temporary workspace, and loaded through
:func:`crmkit.inputs.workspace.load_workspace`; the canonical figures (customers, transactions,
revenue) must come out as from the equivalent CSV. An .xls cannot be written with crmkit's own
packages (openpyxl writes .xlsx only), so the .xls case reads a committed fixture,
``tests/fixtures/invoice_lines.xls``, made with xlwt (``tests/fixtures/make_invoice_lines_xls.py``).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import openpyxl
import pandas as pd
import pytest

from crmkit.core.problems import WorkspaceError
from crmkit.inputs.tabular import WHITESPACE, detect_separator, parse_numbers, read_table
from crmkit.inputs.workspace import check_workspace, load_workspace

CDNOW = (Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
         / "site-packages" / "lifetimes" / "datasets" / "CDNOW_master.txt")

#: The transactions of the tests, as (customer id, date, amount): 3 customers, 5 lines.
ROWS = [
    (1001, dt.datetime(2010, 12, 1, 8, 26), 15.30),
    (1002, dt.datetime(2010, 12, 1, 9, 2), 22.00),
    (1001, dt.datetime(2011, 1, 15, 12, 0), -4.25),
    (1003, dt.datetime(2011, 3, 2, 17, 45), 100.0),
    (1002, dt.datetime(2011, 6, 30, 10, 30), 7.5),
]
REVENUE = sum(r[2] for r in ROWS)
CUSTOMERS_CSV = "customer_id\n1001\n1002\n1003\n"


def figures(ws):
    tx = ws.transactions
    return ws.customers["customer_id"].nunique(), len(tx), round(float(tx["amount"].sum()), 6)


def write_xlsx(path: Path, sheets: dict[str, list[list]]) -> None:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    book.save(path)


def write_ods(path: Path, sheets: dict[str, list[list]]) -> None:
    """A minimal OpenDocument spreadsheet, written by hand (no odf writer is installed)."""

    def cell(value) -> str:
        if value is None:
            return "<table:table-cell/>"
        if isinstance(value, dt.datetime):
            return (f'<table:table-cell office:value-type="date" '
                    f'office:date-value="{value:%Y-%m-%dT%H:%M:%S}"><text:p>{value}</text:p>'
                    "</table:table-cell>")
        if isinstance(value, int | float):
            return (f'<table:table-cell office:value-type="float" office:value="{value}">'
                    f"<text:p>{value}</text:p></table:table-cell>")
        return (f'<table:table-cell office:value-type="string"><text:p>{escape(str(value))}'
                "</text:p></table:table-cell>")

    tables = "".join(
        f'<table:table table:name="{escape(name)}">'
        + "".join("<table:table-row>" + "".join(cell(v) for v in row) + "</table:table-row>"
                  for row in rows)
        + "</table:table>" for name, rows in sheets.items())
    content = (
        '<?xml version="1.0" encoding="UTF-8"?><office:document-content '
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
        f"<office:body><office:spreadsheet>{tables}</office:spreadsheet></office:body>"
        "</office:document-content>")
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
        'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" '
        'manifest:version="1.2"><manifest:file-entry manifest:full-path="/" '
        'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"),
                         "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("META-INF/manifest.xml", manifest, compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr("content.xml", content, compress_type=zipfile.ZIP_DEFLATED)


RETAIL_HEADER = ["InvoiceNo", "CustomerID", "InvoiceDate", "Total", "Country"]
RETAIL_ROWS = [[f"53636{i}", cid, when, amount, "United Kingdom"]
               for i, (cid, when, amount) in enumerate(ROWS)]
RETAIL_COLUMNS = {"columns": {"transactions": {"customer_id": "CustomerID",
                                               "date": "InvoiceDate", "amount": "Total"}}}


# --------------------------------------------------------------------------------------------
# Workbooks


def test_xlsx_sheets_named_in_files(make_workspace):
    root = make_workspace({"customers.csv": None, "transactions.csv": None}, {
        **RETAIL_COLUMNS,
        "files": {"customers": "Online Retail.xlsx#Customers",
                  "transactions": "Online Retail.xlsx#Online Retail"},
    })
    write_xlsx(root / "Online Retail.xlsx", {
        "Customers": [["customer_id", "Segment"], [1001, "A"], [1002, "B"], [1003, "A"]],
        "Online Retail": [RETAIL_HEADER, *RETAIL_ROWS],
    })
    ws = load_workspace(root)
    assert figures(ws) == (3, 5, round(REVENUE, 6))
    tx = ws.transactions
    # Excel's numbers come as floats: ids stay text without ".0", dates keep day precision.
    assert ws.customers["customer_id"].tolist() == ["1001", "1002", "1003"]
    assert tx["customer_id"].tolist() == ["1001", "1002", "1001", "1003", "1002"]
    assert tx["date"].dtype == "datetime64[ns]"
    assert tx["date"].iloc[0] == pd.Timestamp("2010-12-01")
    assert tx["InvoiceNo"].dtype == "Int64" and tx["Country"].iloc[0] == "United Kingdom"
    assert ws.as_of == dt.date(2011, 6, 30)
    assert set(ws.sources) == {"Online Retail.xlsx#Customers", "Online Retail.xlsx#Online Retail"}
    assert ws.files["transactions"] == "Online Retail.xlsx#Online Retail"
    assert ws.sources["Online Retail.xlsx#Online Retail"].describe() == \
        "Excel workbook (.xlsx), sheet 'Online Retail'"
    assert set(ws.checksums) == {"client.yaml", "Online Retail.xlsx"}
    assert "Online Retail.xlsx#Online Retail" in ws.describe()


def test_xlsx_found_by_name_first_sheet_by_default(make_workspace):
    root = make_workspace({"transactions.csv": None, "customers.csv": CUSTOMERS_CSV},
                          RETAIL_COLUMNS)
    write_xlsx(root / "transactions.xlsx", {"Sales": [RETAIL_HEADER, *RETAIL_ROWS],
                                            "Other": [["x"], [1]]})
    ws = load_workspace(root)
    assert figures(ws) == (3, 5, round(REVENUE, 6))
    assert ws.files == {"customers": "customers.csv", "transactions": "transactions.xlsx#Sales"}


def test_xlsx_values_are_validated_with_spreadsheet_row_numbers(make_workspace):
    rows = [list(r) for r in RETAIL_ROWS]
    rows[2][3] = "n/a"  # spreadsheet row 4 (header in row 1)
    rows[3][1] = 9999  # unknown customer, row 5
    root = make_workspace({"transactions.csv": None, "customers.csv": CUSTOMERS_CSV},
                          {**RETAIL_COLUMNS, "csv": {"decimal": ","}})  # csv: does not apply
    write_xlsx(root / "transactions.xlsx", {"Sales": [RETAIL_HEADER, *rows]})
    problems = {p.kind: p for p in check_workspace(root)}
    assert set(problems) == {"unparseable_number", "unknown_customer"}
    bad = problems["unparseable_number"]
    assert bad.file == "transactions.xlsx#Sales" and bad.column == "Total"
    assert bad.rows == [4] and bad.examples == ["n/a"]
    assert problems["unknown_customer"].rows == [5]
    assert problems["unknown_customer"].examples == ["9999"]


def test_ods_workbook(make_workspace):
    root = make_workspace({"transactions.csv": None, "customers.csv": CUSTOMERS_CSV},
                          RETAIL_COLUMNS)
    write_ods(root / "transactions.ods", {"Ventas": [RETAIL_HEADER, *RETAIL_ROWS]})
    ws = load_workspace(root)
    assert figures(ws) == (3, 5, round(REVENUE, 6))
    assert ws.transactions["date"].iloc[-1] == pd.Timestamp("2011-06-30")
    assert ws.sources["transactions.ods#Ventas"].format == "ods"


# --------------------------------------------------------------------------------------------
# Parquet


def test_parquet_file(make_workspace):
    root = make_workspace({"transactions.csv": None, "customers.csv": CUSTOMERS_CSV},
                          {"files": {"transactions": "exports/sales.parquet"}})
    (root / "exports").mkdir()
    frame = pd.DataFrame({"customer_id": [r[0] for r in ROWS],
                          "date": pd.to_datetime([r[1] for r in ROWS]),
                          "amount": [r[2] for r in ROWS],
                          "category": pd.Categorical(["a", "b", "a", "c", "b"])})
    frame.to_parquet(root / "exports" / "sales.parquet")
    ws = load_workspace(root)
    assert figures(ws) == (3, 5, round(REVENUE, 6))
    assert ws.transactions["customer_id"].iloc[0] == "1001"
    assert ws.transactions["category"].tolist() == ["a", "b", "a", "c", "b"]
    assert ws.sources["exports/sales.parquet"].describe() == "Parquet file"


# --------------------------------------------------------------------------------------------
# Whitespace-separated logs with compact dates

LOG = (" customer_id  date      quantity  amount\r\n"
       + "".join(f" {cid:05d} {when:%Y%m%d}  {i + 1}\t {amount:.2f}\r\n"
                 for i, (cid, when, amount) in enumerate(ROWS)))
LOG_CUSTOMERS = "customer_id\n01001\n01002\n01003\n"


def test_whitespace_log_with_yyyymmdd_dates_is_detected(make_workspace):
    root = make_workspace({"transactions.csv": None, "transactions.txt": LOG,
                           "customers.csv": LOG_CUSTOMERS})
    ws = load_workspace(root)
    assert figures(ws) == (3, 5, round(REVENUE, 6))
    tx = ws.transactions
    assert tx["customer_id"].iloc[0] == "01001"  # leading zeros kept
    assert tx["date"].tolist()[:2] == [pd.Timestamp("2010-12-01")] * 2
    dialect = ws.sources["transactions.txt"]
    assert (dialect.separator, dialect.date_format) == (WHITESPACE, "yyyymmdd")
    assert "whitespace-separated" in dialect.describe()


def test_whitespace_log_without_header(make_workspace):
    body = "".join(LOG.splitlines(keepends=True)[1:])
    names = ["customer_id", "date", "quantity", "amount"]
    root = make_workspace({"transactions.csv": None, "log.dat.txt": body,
                           "customers.csv": LOG_CUSTOMERS},
                          {"files": {"transactions": {
                              "path": "log.dat.txt",
                              "csv": {"header": False, "names": names,
                                      "separator": "whitespace", "date_format": "yyyymmdd"}}}})
    ws = load_workspace(root)
    assert figures(ws) == (3, 5, round(REVENUE, 6))
    assert ws.transactions["quantity"].tolist() == [1, 2, 3, 4, 5]


def test_bad_compact_date_is_reported_with_its_line(make_workspace):
    log = LOG.replace("20110115", "20111315")  # month 13, line 4
    root = make_workspace({"transactions.csv": None, "transactions.txt": log,
                           "customers.csv": LOG_CUSTOMERS})
    problems = list(check_workspace(root))
    assert [p.kind for p in problems] == ["unparseable_date"]
    assert problems[0].rows == [4] and problems[0].examples == ["20111315"]
    assert "20240305" in problems[0].message


def test_whitespace_detection_only_without_other_separators():
    assert detect_separator("a  b\tc\n1 2  3\n4 5 6\n") == WHITESPACE
    assert detect_separator("a,b c\n1,2 3\n") == ","
    assert detect_separator("customer_id\nC1\n") == ","


@pytest.mark.skipif(not CDNOW.is_file(), reason="lifetimes' CDNOW master file not installed")
def test_cdnow_master_file(tmp_path, make_workspace):
    expected = pd.read_csv(CDNOW, sep=r"\s+", dtype={"customer_id": str})
    ids = expected["customer_id"].drop_duplicates()
    root = make_workspace({"transactions.csv": None,
                           "customers.csv": "customer_id\n" + "\n".join(ids) + "\n"},
                          {"columns": {"transactions": {"amount": "dollar_value"}}})
    shutil.copy(CDNOW, root / "transactions.txt")
    ws = load_workspace(root)
    n, lines, revenue = figures(ws)
    assert (n, lines) == (expected["customer_id"].nunique(), len(expected)) == (23570, 69659)
    assert revenue == pytest.approx(expected["dollar_value"].sum(), rel=1e-12)
    assert ws.transactions["date"].min() == pd.Timestamp("1997-01-01")
    assert ws.transactions["date"].max() == pd.Timestamp("1998-06-30")
    assert ws.transactions["number_of_cds"].sum() == expected["number_of_cds"].sum()


# --------------------------------------------------------------------------------------------
# Bad inputs


def test_missing_file_named_in_files(make_workspace):
    root = make_workspace({"transactions.csv": None}, {"files": {"transactions": "Sales.xlsx"}})
    problems = list(check_workspace(root))
    assert [(p.file, p.kind) for p in problems] == [("Sales.xlsx", "missing_file")]
    message = problems[0].message
    assert "files: transactions: 'Sales.xlsx'" in message and "'customers.csv'" in message
    assert "expected the client's transactions export" in message


def test_missing_sheet_names_the_sheets_there_are(make_workspace):
    root = make_workspace({"transactions.csv": None},
                          {**RETAIL_COLUMNS, "files": {"transactions": "book.xlsx#Ventas 2011"}})
    write_xlsx(root / "book.xlsx", {"Sales": [RETAIL_HEADER, *RETAIL_ROWS], "Notes": [["x"]]})
    problems = list(check_workspace(root))
    assert [(p.file, p.kind) for p in problems] == [("book.xlsx", "missing_sheet")]
    assert "no sheet 'Ventas 2011'" in problems[0].message
    assert "found sheets: 'Sales', 'Notes'" in problems[0].message


def test_sheet_names_match_ignoring_case(make_workspace):
    root = make_workspace({"transactions.csv": None, "customers.csv": CUSTOMERS_CSV},
                          {**RETAIL_COLUMNS, "files": {"transactions": "book.xlsx# sales "}})
    write_xlsx(root / "book.xlsx", {"Notes": [["x"]], "Sales": [RETAIL_HEADER, *RETAIL_ROWS]})
    assert figures(load_workspace(root)) == (3, 5, round(REVENUE, 6))


def test_unsupported_file_type(make_workspace):
    root = make_workspace({}, {"files": {"transactions": "sales.json"}})
    (root / "sales.json").write_text("[]")
    problems = list(check_workspace(root))
    assert [(p.file, p.kind) for p in problems] == [("client.yaml", "invalid_setting")]
    assert "key 'files.transactions'" in problems[0].message
    assert ".json files cannot be read" in problems[0].message
    assert ".xlsx" in problems[0].message


def test_two_candidate_files_are_ambiguous(make_workspace):
    root = make_workspace({"transactions.csv": None}, RETAIL_COLUMNS)
    write_xlsx(root / "transactions.xlsx", {"Sales": [RETAIL_HEADER, *RETAIL_ROWS]})
    pd.DataFrame({"a": [1]}).to_parquet(root / "transactions.parquet")
    problems = list(check_workspace(root))
    assert [p.kind for p in problems] == ["ambiguous_file"]
    assert "'transactions.parquet', 'transactions.xlsx'" in problems[0].message


def test_a_csv_named_xlsx_is_explained(make_workspace):
    root = make_workspace({"transactions.csv": None, "transactions.xlsx": "a,b\n1,2\n"})
    problems = list(check_workspace(root))
    assert [(p.file, p.kind) for p in problems] == [("transactions.xlsx", "unreadable_workbook")]
    assert "not a workbook" in problems[0].message


def test_load_workspace_raises_with_every_problem(make_workspace):
    root = make_workspace({"transactions.csv": None, "customers.csv": None},
                          {"files": {"transactions": "book.xlsx#Nope", "customers": "c.ods"}})
    write_xlsx(root / "book.xlsx", {"Sales": [["a"], [1]]})
    with pytest.raises(WorkspaceError) as caught:
        load_workspace(root)
    assert {(p.file, p.kind) for p in caught.value.problems} == {
        ("book.xlsx", "missing_sheet"), ("c.ods", "missing_file")}


def test_check_command_exits_2_on_a_missing_sheet(make_workspace, tmp_path):
    root = make_workspace({"transactions.csv": None}, {"files": {"transactions": "b.xlsx#X"}})
    write_xlsx(root / "b.xlsx", {"Y": [["a"], [1]]})
    env = {**os.environ, "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "crmkit", "check", str(root)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "b.xlsx:" in done.stderr and "no sheet 'X'" in done.stderr and "'Y'" in done.stderr


def test_read_table_on_typed_cells(tmp_path):
    path = tmp_path / "mixed.xlsx"
    write_xlsx(path, {"S": [["id", "v", "flag"], [1001, 2.5, True], ["C2", 3, False],
                            [None, 1e-7, None]]})
    table = read_table(path)
    assert table.file == "mixed.xlsx#S"
    assert table.data.to_dict("list") == {"id": ["1001", "C2", ""], "v": ["2.5", "3", "1e-7"],
                                          "flag": ["TRUE", "FALSE", ""]}
    assert np.array_equal(table.lines, [2, 3, 4])
    numbers, bad = parse_numbers(table.data["v"])
    assert numbers.tolist() == [2.5, 3.0, 1e-7] and not bad.any()


XLS = Path(__file__).parents[1] / "fixtures" / "invoice_lines.xls"


def test_xls_invoice_lines_from_a_second_sheet(make_workspace):
    """A real BIFF8 .xls (two sheets, date cells): the invoice lines of test_line_items load
    from the sheet named in files:, with the same figures as their CSV."""
    from test_line_items import KEPT_REVENUE, SETTINGS

    assert XLS.read_bytes()[:8] == bytes.fromhex("d0cf11e0a1b11ae1")  # an OLE2 file, not xlsx
    root = make_workspace({"customers.csv": None, "transactions.csv": None},
                          {**SETTINGS, "files": {"transactions": "lines.xls#Invoice lines"}})
    shutil.copyfile(XLS, root / "lines.xls")
    ws = load_workspace(root)
    tx = ws.transactions
    assert round(tx["amount"].sum(), 6) == round(KEPT_REVENUE, 6)
    assert tx["order_id"].nunique() == 4
    # 12583's only line is a free gift (amount 0, left out): two customers remain.
    assert sorted(ws.customers["customer_id"]) == ["13047", "17850"]
    assert tx["date"].min() == pd.Timestamp("2010-12-01")
    assert ws.sources["lines.xls#Invoice lines"].format == "xls"
    reading = ws.readings["transactions"]
    assert (reading.lines_read, reading.lines_kept) == (9, 5)
