"""tables.xlsx and CSV exports: formatted, translated, and never a live formula from client data."""

import datetime as dt

import numpy as np
import openpyxl
import pandas as pd
import pytest

from crmkit.core.i18n import Formatter, t
from crmkit.delivery import exports
from crmkit.delivery.tables import Table

HOSTILE = ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "=cmd|' /C calc'!A0",
           "\tTab", "\rReturn"]


def _customers() -> pd.DataFrame:
    n = len(HOSTILE) + 1
    return pd.DataFrame({
        "customer_id": [f"C{i}" for i in range(n)],
        "name": [*HOSTILE, "Ana"],
        "revenue": [-2.5, 1234.5, -99.0, 0.0, 10.0, 20.0, 30.0, 40.0],
        "share": [0.125] * n,
        "orders": list(range(n)),
        "since": [dt.date(2024, 1, i + 1) for i in range(n)],
    })


COLUMNS = {"name": ("customers", "text"), "revenue": ("revenue", "money"),
           "share": ("share", "pct"), "orders": ("plan_col_months", "integer"),
           "since": ("plan_col_start", "date")}


def _write(tmp_path, lang="en", currency="EUR", **extra):
    fmt = Formatter(lang, currency)
    table = Table(_customers(), fmt, COLUMNS)
    path = exports.write_workbook(tmp_path / "tables.xlsx",
                                  {"xlsx_sheet_targets": table, "raw": _customers(), **extra},
                                  fmt, title="Acme — CRM plan")
    return openpyxl.load_workbook(path)


def test_hostile_client_text_never_becomes_a_formula_in_xlsx(tmp_path):
    book = _write(tmp_path)
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
    for sheet, column in ((book["Target list"], 1), (book["raw"], 2)):
        names = [sheet.cell(row=r, column=column).value for r in range(2, 2 + len(HOSTILE))]
        # (XML turns a carriage return into a line feed on reading: still text after the quote.)
        assert [n.replace("\n", "\r") for n in names] == ["'" + h for h in HOSTILE]
        assert all(sheet.cell(row=r, column=column).data_type == "s"
                   for r in range(2, 2 + len(HOSTILE)))
        assert sheet.cell(row=2 + len(HOSTILE), column=column).value == "Ana"


def test_negative_numbers_stay_numbers(tmp_path):
    book = _write(tmp_path)
    sheet = book["Target list"]
    assert sheet["B2"].value == -2.5 and sheet["B2"].data_type == "n"
    assert sheet["B4"].value == -99.0
    raw = book["raw"]
    assert raw["C2"].value == -2.5 and raw["C2"].data_type == "n"


def test_xlsx_formats_headers_and_values_in_english(tmp_path):
    book = _write(tmp_path)
    assert book.sheetnames == ["Target list", "raw"]
    assert book.properties.title == "Acme — CRM plan"
    sheet = book["Target list"]
    assert [c.value for c in sheet[1]] == ["Customers", "Revenue", "Share", "Months", "Start"]
    assert sheet.freeze_panes == "A2"
    assert sheet["A1"].font.bold and sheet["A1"].fill.fgColor.rgb.endswith("1B4965")
    assert sheet["B3"].number_format == '"€"#,##0;-"€"#,##0'
    assert sheet["C3"].number_format == "0.0%" and sheet["C3"].value == 0.125
    assert sheet["D3"].number_format == "#,##0" and sheet["D3"].value == 1
    assert sheet["E3"].number_format == "dd/mm/yyyy"
    assert sheet["E3"].value == dt.datetime(2024, 1, 2)
    assert sheet.column_dimensions["A"].width >= len('=HYPERLINK("http://x","y")')
    # A plain DataFrame: kinds from dtypes, headers as given (or translated message keys).
    raw = book["raw"]
    assert [c.value for c in raw[1]][:3] == ["customer_id", "name", "Revenue"]
    assert raw["C2"].number_format == "#,##0.00" and raw["E2"].number_format == "#,##0"


def test_xlsx_in_spanish_puts_the_currency_after_the_number(tmp_path):
    book = _write(tmp_path, lang="es")
    assert book.sheetnames == ["Lista de destinatarios", "raw"]
    sheet = book["Lista de destinatarios"]
    assert [c.value for c in sheet[1]] == ["Clientes", "Ingresos", "Proporción", "Meses",
                                           "Inicio"]
    assert sheet["B3"].number_format == '#,##0 "€";-#,##0 "€"'
    usd = exports.excel_number_format("money:2", Formatter("en", "USD"))
    assert usd == '"$"#,##0.00;-"$"#,##0.00'
    assert exports.excel_number_format("date", Formatter("en", "USD")) == "mm/dd/yyyy"


def test_sheet_names_are_valid_and_unique():
    names = exports.sheet_names(["a" * 40, "a" * 40, "what? [x]/y:z*", "Costs", "costs",
                                 "xlsx_sheet_costs"], "en")
    assert all(len(n) <= 31 for n in names)
    assert len({n.lower() for n in names}) == len(names)
    assert names[0] == "a" * 31 and names[1] == "a" * 29 + "~2"
    assert names[2] == "what_ _x__y_z_"
    assert names[3:] == ["Costs", "costs~2", "Costs~3"]


def test_csv_neutralises_text_and_keeps_numbers(tmp_path):
    path = exports.write_csv(tmp_path / "customers.csv", _customers())
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # a BOM, so Excel reads UTF-8
    text = raw.decode("utf-8-sig")
    lines = text.split("\r\n")  # RFC 4180 line ends
    assert lines[0] == "customer_id,name,revenue,share,orders,since"
    assert lines[1] == "C0,\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",-2.5,0.125,0,2024-01-01"
    assert "C1,'+1+1,1234.5," in text and "C2,'-2+3,-99.0," in text
    assert "C3,'@SUM(A1),0.0," in text and "'=cmd|' /C calc'!A0" in text
    assert "'\tTab" in text and "\"'\rReturn\"" in text
    # No field of any line starts a formula.
    for line in lines[1:]:
        for field in line.split(","):
            if field and field[0] in "=+@":
                pytest.fail(f"formula-like field {field!r}")


def test_csv_for_a_spanish_excel(tmp_path):
    frame = pd.DataFrame({"Nombre": ["-Ana"], "Importe": [-1234.5]})
    text = exports.write_csv(tmp_path / "x.csv", frame, sep=";", decimal=",").read_bytes(
        ).decode("utf-8-sig")
    assert text == "Nombre;Importe\r\n'-Ana;-1234,5\r\n"


def test_spanish_numbers_are_what_pandas_writes_with_a_decimal_comma(tmp_path):
    # write_csv formats float columns itself when the decimal is not a point (pandas' own
    # formatter is called per value): the bytes must stay pandas' own
    values = [-1234.5, 0.0, -0.0, 0.1 + 0.2, 1e16, 1e-05, 0.00012, 123456789012.34, np.nan,
              float("inf"), 5e-324, 100.0, -7.0]
    frame = pd.DataFrame({"Importe": values, "Cuota": np.float32(0.1), "Pedidos": 3,
                          "Cliente": [f"C{i}" for i in range(len(values))]})
    ours = exports.write_csv(tmp_path / "x.csv", frame, sep=";", decimal=",").read_bytes()
    theirs = "\ufeff" + frame.to_csv(sep=";", decimal=",", index=False, lineterminator="\r\n")
    assert ours.decode("utf-8") == theirs
    # a negative number stays a number (no quote that makes it text), as the client reads it
    assert ours.decode("utf-8-sig").split("\r\n")[1] == "-1234,5;0,1;3;C0"


def test_hostile_headers_are_neutralised_too(tmp_path):
    frame = pd.DataFrame({"=1+1": ["x"], "ok": [1]})
    text = exports.write_csv(tmp_path / "h.csv", frame).read_text(encoding="utf-8-sig")
    assert text.splitlines()[0] == "'=1+1,ok"
    fmt = Formatter("en")
    path = exports.write_workbook(tmp_path / "h.xlsx", {"s": frame}, fmt)
    cell = openpyxl.load_workbook(path)["s"]["A1"]
    assert cell.value == "'=1+1" and cell.data_type == "s"


def test_neutralise():
    assert exports.neutralise("=1") == "'=1"
    assert exports.neutralise("Ana") == "Ana"
    assert exports.neutralise(-3.0) == -3.0
    assert exports.neutralise("") == ""


# --- tables kept by the workbooks of a run (wb.export) -----------------------------------------

def test_workbook_export_keeps_tables_in_order_and_returns_them(make_workspace, tmp_path):
    from crmkit.delivery.workbook import open_workbook

    run = tmp_path / "run"
    wb = open_workbook(make_workspace(), run, "en", section="segments")
    frame = _customers()
    first = Table(frame, wb.fmt, COLUMNS)
    assert wb.export("xlsx_sheet_segments", first) is first
    years = pd.DataFrame({1: [10.0, 20.0], 2: [30.0, None], "name": ["=x", "y"]},
                         index=pd.Index(["a", "b"], name="segment"))
    second = Table(years, wb.fmt, {2: ("plan_col_year", "money"), "name": ("customers", "text")},
                   index=True, caption="By year")
    wb.export("my own sheet", second)
    other = open_workbook(make_workspace(), run, "en", section="cost_benefit")  # a later workbook
    other.export("xlsx_sheet_segments", Table(frame.head(2), wb.fmt, COLUMNS))

    tables = exports.staged_tables(run / exports.STAGED_DIR, Formatter("es", "EUR"))
    assert list(tables) == ["Segmentos", "my own sheet", "Segmentos (2)"]
    back = tables["Segmentos"]
    # headers are translated into the report's language
    assert back.header("c0") == t("customers", "es") != t("customers", "en")
    assert back.frame["c0"].tolist() == frame["name"].tolist()
    assert back.frame["c1"].tolist() == frame["revenue"].tolist()
    assert back.frame["c4"].tolist() == frame["since"].tolist()
    kept = tables["my own sheet"]
    assert kept.index and kept.caption == "By year" and kept.frame.index.name == "segment"
    assert kept.frame.index.tolist() == ["a", "b"] and kept.frame["c1"].tolist() == ["=x", "y"]
    path = exports.write_workbook(tmp_path / "tables.xlsx", tables, Formatter("es", "EUR"))
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["Segmentos", "my own sheet", "Segmentos (2)"]
    sheet = book["my own sheet"]
    assert [c.value for c in sheet[1]] == ["segment", "Año", "Clientes"]
    assert sheet["C2"].value == "'=x" and sheet["C2"].data_type == "s"
    assert all(c.data_type != "f" for ws in book.worksheets for row in ws.iter_rows()
               for c in row)


def test_workbook_export_without_a_run_writes_nothing(make_workspace, tmp_path):
    from crmkit.delivery.workbook import open_workbook

    wb = open_workbook(make_workspace(), None, "en", section="segments")
    table = Table(_customers(), wb.fmt, COLUMNS)
    assert wb.export("xlsx_sheet_segments", table) is table
    assert wb.output_path("target_lists") is None
    assert exports.staged_tables(tmp_path / "nowhere", wb.fmt) == {}


def test_staging_survives_columns_pyarrow_cannot_type(tmp_path):
    frame = pd.DataFrame({"mixed": ["a", 1, None, 2.5], "lists": [["x", "y"], [], ["z"], None]})
    table = Table(frame, Formatter("en", "EUR"),
                  {"mixed": ("customers", "text"), "lists": ("revenue", "text")})
    exports.stage_table(table, tmp_path, sheet="xlsx_sheet_costs", section="x", number=1)
    back = exports.staged_tables(tmp_path, Formatter("en", "EUR"))["Costs"]
    assert back.frame["c0"].fillna("missing").tolist() == ["a", "1", "missing", "2.5"]
    path = exports.write_workbook(tmp_path / "t.xlsx", {"Costs": back}, Formatter("en", "EUR"))
    sheet = openpyxl.load_workbook(path)["Costs"]
    assert [sheet.cell(row=r, column=2).value for r in range(2, 6)] == ["x, y", None, "z", None]


def test_target_lists_name_segments_and_interests_in_the_clients_language(tmp_path):
    from crmkit.planning import automation

    targets = pd.DataFrame({"customer_id": ["=1+1", "C2"], "segment": ["cant_lose", "loyal"],
                            "interest": ["home", "Galicia"], "interest_source": ["x", "x"],
                            "message": ["a", "b"]})
    level_1 = automation.Level1(counts=pd.DataFrame(), targets=targets)
    paths = exports.save_target_lists(tmp_path, level_1, None, Formatter("es", "EUR"),
                                      names={"cant_lose": "No se puede perder"})
    text = paths["level1"].read_text(encoding="utf-8-sig")
    rows = [line.split(";") for line in text.strip().splitlines()]
    assert rows[0][:3] == [t("auto_col_customer_id", "es"), t("auto_col_segment", "es"),
                           t("auto_col_interest", "es")]
    assert rows[1][:3] == ["'=1+1", "No se puede perder", "hogar"]
    assert rows[2][1:3] == ["loyal", "Galicia"]  # no name given: the key, as the data has it


def test_label_columns_are_written_in_the_language(tmp_path):
    fmt = Formatter("es", "EUR")
    frame = pd.DataFrame({"channel": ["phone", "branch", "=cmd"], "n": [1, 2, 3]})
    table = Table(frame, fmt, {"channel": ("customers", "label"), "n": ("revenue", "integer")})
    assert list(table.display_frame().iloc[:, 0]) == ["teléfono", "oficina", "=cmd"]
    book = openpyxl.load_workbook(exports.write_workbook(tmp_path / "t.xlsx", {"x": table}, fmt))
    sheet = book.worksheets[0]
    assert [sheet.cell(row=r, column=1).value for r in (2, 3, 4)] == ["teléfono", "oficina",
                                                                     "'=cmd"]
    csv = exports.write_csv(tmp_path / "t.csv", table).read_text(encoding="utf-8-sig")
    assert "teléfono" in csv and "'=cmd" in csv


def test_csv_numbers_keep_the_decimals_the_table_shows(tmp_path):
    fmt = Formatter("en", "EUR")
    frame = pd.DataFrame({"who": ["-x"], "p": [0.1082008748955516], "m": [1.3848790249065894],
                          "n": [-2.54]})
    table = Table(frame, fmt, {"who": ("customers", "text"), "p": ("share", "pct"),
                               "m": ("revenue", "money:2"), "n": ("value", "number:1")})
    lines = exports.write_csv(tmp_path / "t.csv", table).read_text(encoding="utf-8-sig")
    assert lines.splitlines()[1] == "'-x,0.108,1.38,-2.5"
