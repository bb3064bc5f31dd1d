"""Reading CSV files in every dialect clients export (crmkit.inputs.tabular)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from crmkit.core.problems import WorkspaceError
from crmkit.inputs.tabular import (
    DateParts,
    ReadError,
    decode,
    detect_decimal,
    detect_separator,
    infer_column,
    parse_dates,
    parse_numbers,
    read_csv,
    read_table,
)
from crmkit.settings.client import CsvOptions


def write(tmp_path, content: str | bytes, name: str = "data.csv"):
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def text_series(values) -> pd.Series:
    return pd.Series(values, dtype=str)


def day(text: str) -> pd.Timestamp:
    return pd.Timestamp(text)


# --- whole files, one dialect each -----------------------------------------------------------


def test_comma_separated_decimal_point_utf8(tmp_path):
    path = write(tmp_path, "customer_id,date,amount,note\n"
                           "C1,2024-03-05,1234.56,café\n"
                           "C2,2024-03-06,-20.5,\n")
    frame, dialect = read_csv(path, numbers=["amount"], dates=["date"])
    assert frame["amount"].tolist() == [1234.56, -20.5]
    assert frame["amount"].dtype == np.float64
    assert frame["date"].tolist() == [day("2024-03-05"), day("2024-03-06")]
    assert frame["date"].dtype == "datetime64[ns]"
    assert frame["note"].iloc[0] == "café" and pd.isna(frame["note"].iloc[1])
    assert (dialect.encoding, dialect.separator, dialect.decimal, dialect.date_format) == (
        "utf-8", ",", ".", "iso")


def test_semicolon_decimal_comma_latin1_spanish_headers(tmp_path):
    raw = ("Nº Cliente;Fecha;Importe\r\n"
           "C1;05/03/2024;1.234,56\r\n"
           "C2;31/12/2023;-12,5\r\n").encode("cp1252")
    assert b"\xba" in raw  # the Latin-1 masculine ordinal, not UTF-8
    path = write(tmp_path, raw)
    frame, dialect = read_csv(path, numbers=["Importe"], dates=["Fecha"])
    assert list(frame.columns) == ["Nº Cliente", "Fecha", "Importe"]
    assert frame["Nº Cliente"].tolist() == ["C1", "C2"]
    assert frame["Importe"].tolist() == [1234.56, -12.5]
    assert frame["Fecha"].tolist() == [day("2024-03-05"), day("2023-12-31")]
    assert dialect.encoding == "cp1252"
    assert (dialect.separator, dialect.decimal, dialect.date_format) == (";", ",", "dayfirst")
    assert "Latin-1" in dialect.describe() and "decimal comma" in dialect.describe()


def test_utf8_with_bom(tmp_path):
    path = write(tmp_path, "\ufeffcustomer_id;amount\nC1;3,5\n")
    table = read_table(path)
    assert table.header == ["customer_id", "amount"]
    assert table.dialect.encoding == "utf-8-sig"
    frame, _ = read_csv(path, numbers=["amount"])
    assert frame["amount"].tolist() == [3.5]


def test_utf16_with_bom(tmp_path):
    path = write(tmp_path, "customer_id\tamount\nC1\t7,25\n".encode("utf-16"))
    frame, dialect = read_csv(path, numbers=["amount"])
    assert dialect.encoding == "utf-16" and dialect.separator == "\t"
    assert frame["amount"].tolist() == [7.25]


def test_tab_separated(tmp_path):
    path = write(tmp_path, "customer_id\tdate\tamount\nC1\t05.03.2024\t1.234,56\n"
                           "C2\t06.03.2024\t10\n")
    frame, dialect = read_csv(path, numbers=["amount"], dates=["date"])
    assert dialect.separator == "\t" and dialect.decimal == ","
    assert frame["amount"].tolist() == [1234.56, 10.0]
    assert frame["date"].tolist() == [day("2024-03-05"), day("2024-03-06")]


def test_quoted_thousands_in_comma_file(tmp_path):
    path = write(tmp_path, 'customer_id,amount\nC1,"1,234.56"\nC2,"12,345,678.9"\nC3,7\n')
    frame, dialect = read_csv(path, numbers=["amount"])
    assert dialect.decimal == "."
    assert frame["amount"].tolist() == [1234.56, 12345678.9, 7.0]


def test_quoted_fields_with_separators_and_line_breaks(tmp_path):
    path = write(tmp_path, 'customer_id;name;amount\n'
                           'C1;"García; Hijos S.L.";"12,5"\n'
                           'C2;"two\nlines";3\n'
                           'C3;"say ""hi""";oops\n')
    table = read_table(path)
    assert table.data["name"].tolist() == ["García; Hijos S.L.", "two\nlines", 'say "hi"']
    assert table.lines.tolist() == [2, 3, 5]  # the quoted line break shifts later lines
    with pytest.raises(WorkspaceError) as error:
        read_csv(path, numbers=["amount"])
    problem = next(iter(error.value.problems))
    assert problem.rows == [5] and problem.examples == ["oops"]


def test_configured_options_override_detection(tmp_path):
    path = write(tmp_path, "customer_id|date|amount\nC1|03/05/2024|1.5\n")
    options = CsvOptions(separator="|", decimal=".", date_format="monthfirst")
    frame, dialect = read_csv(path, numbers=["amount"], dates=["date"], options=options)
    assert frame["date"].tolist() == [day("2024-03-05")]
    assert frame["amount"].tolist() == [1.5]
    assert dialect.configured == {"separator", "decimal", "date_format"}


def test_excel_sep_line_crlf_and_blank_lines(tmp_path):
    path = write(tmp_path, "sep=;\r\ncustomer_id;amount\r\n\r\nC1;1,5\r\n;;\r\nC2;2\r\n\r\n")
    table = read_table(path)
    assert table.dialect.separator == ";"
    assert table.header == ["customer_id", "amount"]
    assert table.data["customer_id"].tolist() == ["C1", "C2"]
    assert table.lines.tolist() == [4, 6]


def test_whitespace_lines_are_skipped_and_counted(tmp_path):
    table = read_table(write(tmp_path, "a;b\n  \n1;2\n\t\n\n3;4\n"))
    assert table.data["a"].tolist() == ["1", "3"]
    assert table.lines.tolist() == [3, 6]


def test_rows_with_too_many_fields_are_reported_with_line(tmp_path):
    path = write(tmp_path, "customer_id,date,amount\nC1,2024-01-05,12,50\nC2,2024-01-06,3\n")
    table = read_table(path)
    problem = next(iter(table.problems))
    assert problem.kind == "too_many_fields"
    assert problem.rows == [2] and problem.examples == ["C1,2024-01-05,12,50"]
    assert table.data["customer_id"].tolist() == ["C2"]


def test_short_rows_are_padded(tmp_path):
    table = read_table(write(tmp_path, "a;b;c\n1;2\n3;4;5\n"))
    assert table.data["c"].tolist() == ["", "5"]
    assert not table.problems


@pytest.mark.parametrize("content, kind", [
    (b"", "empty_file"),
    (b"  \r\n\n", "empty_file"),
    (b"PK\x03\x04\x14\x00\x06\x00binary", "binary_file"),
    (b"a,b\n\x00\x01\x02\x03", "binary_file"),
    (b'a;b\n1;"never closed\n2;3\n', "malformed_csv"),
])
def test_unreadable_files_raise_read_error(tmp_path, content, kind):
    with pytest.raises(ReadError) as error:
        read_table(write(tmp_path, content))
    assert error.value.problem.kind == kind


def test_configured_encoding_that_does_not_fit(tmp_path):
    path = write(tmp_path, "Nº Cliente;Importe\nC1;1\n".encode("cp1252"))
    with pytest.raises(ReadError) as error:
        read_table(path, CsvOptions(encoding="utf-8"))
    problem = error.value.problem
    assert problem.kind == "undecodable_file"
    assert "0xba" in problem.message and problem.rows == [1]


def test_undecodable_without_configuration(tmp_path):
    # 0x81 is undefined in Windows-1252 and invalid in UTF-8: not text we know.
    with pytest.raises(ReadError) as error:
        read_table(write(tmp_path, b"a;b\n1;\x81\x81\n"))
    assert error.value.problem.kind == "undecodable_file"
    assert error.value.problem.rows == [2]


def test_decode_detects_encodings():
    assert decode("Nº".encode("cp1252")) == ("Nº", "cp1252")
    assert decode("Nº".encode()) == ("Nº", "utf-8")
    assert decode(b"\xef\xbb\xbfN\xc2\xba") == ("Nº", "utf-8-sig")
    assert decode(b"\xef\xbb\xbfabc", "utf-8") == ("abc", "utf-8-sig")


# --- detection ------------------------------------------------------------------------------


@pytest.mark.parametrize("text, separator", [
    ("a,b,c\n1,2,3\n", ","),
    ("a;b;c\n1;2,5;3\n", ";"),
    ("a\tb\n1\t2,5\n", "\t"),
    ("a|b\n1|2\n", "|"),
    ('a,b\n"x;y",2\n', ","),
    ("customer_id\nC1\n", ","),
    ("Nº Cliente;Fecha;Importe\nC1;05/03/2024;1.234,56\n", ";"),
])
def test_detect_separator(text, separator):
    assert detect_separator(text) == separator


@pytest.mark.parametrize("values, separator, decimal", [
    (["12,5", "3"], ";", ","),
    (["1.234,56"], ",", ","),
    (["12.5", "3"], ";", "."),
    (["1,234.56"], ";", "."),
    (["3", "4"], ";", ","),  # no evidence: the semicolon convention
    (["3", "4"], ",", "."),
    (["1.234", "2.500"], ";", ","),  # ambiguous thousands
    (["1,234"], ",", "."),
])
def test_detect_decimal(values, separator, decimal):
    assert detect_decimal([text_series(values)], separator) == decimal


# --- numbers --------------------------------------------------------------------------------


@pytest.mark.parametrize("text, decimal, expected", [
    ("1234.56", ".", 1234.56),
    ("1,234.56", ".", 1234.56),
    ("1,234,567.5", ".", 1234567.5),
    ("1.234,56", ",", 1234.56),
    ("1234,56", ",", 1234.56),
    ("1 234,56", ",", 1234.56),
    ("1\u00a0234,56", ",", 1234.56),
    ("-1.234", ",", -1234.0),
    ("-20", ".", -20.0),
    ("+3.5", ".", 3.5),
    (" 7 ", ".", 7.0),
    (".5", ".", 0.5),
    ("12.", ".", 12.0),
    ("1.5e3", ".", 1500.0),
    ("€ 12,50", ",", 12.5),
    ("12,50 €", ",", 12.5),
    ("$1,200.00", ".", 1200.0),
])
def test_parse_numbers_accepts(text, decimal, expected):
    values, bad = parse_numbers(text_series([text]), decimal)
    assert not bad[0]
    assert values[0] == pytest.approx(expected)


@pytest.mark.parametrize("text, decimal", [
    ("abc", "."), ("1,5", "."), ("12,34,5", "."), ("1.2.3", "."), ("1.234.5", ","),
    ("nan", "."), ("inf", "."), ("1e999", "."), ("--1", "."), ("1-", "."), ("12 34", "."),
])
def test_parse_numbers_rejects(text, decimal):
    values, bad = parse_numbers(text_series([text]), decimal)
    assert bad[0] and np.isnan(values[0])


def test_parse_numbers_blank_is_missing_not_bad():
    values, bad = parse_numbers(text_series(["", "  ", "1"]), ".")
    assert bad.tolist() == [False, False, False]
    assert np.isnan(values[0]) and np.isnan(values[1]) and values[2] == 1


# --- dates ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text, date_format, expected", [
    ("2024-03-05", None, "2024-03-05"),
    ("2024-3-5", None, "2024-03-05"),
    ("2024/03/05", None, "2024-03-05"),
    ("2024-03-05 14:30:00", None, "2024-03-05"),
    ("2024-03-05T14:30:00.123Z", None, "2024-03-05"),
    ("2024-03-05T14:30+01:00", None, "2024-03-05"),
    ("05/03/2024", None, "2024-03-05"),
    ("5-3-2024", None, "2024-03-05"),
    ("05.03.2024", None, "2024-03-05"),
    ("05/03/24", None, "2024-03-05"),
    ("05/03/2024 23:59", None, "2024-03-05"),
    ("05/03/2024 08:15:00", "dayfirst", "2024-03-05"),
    ("03/05/2024", "monthfirst", "2024-03-05"),
    ("3/5/2024 2:30 PM", "monthfirst", "2024-03-05"),
    ("2024-03-05", "monthfirst", "2024-03-05"),
    ("29/02/2024", None, "2024-02-29"),
])
def test_parse_dates_accepts(text, date_format, expected):
    dates, bad, _ = parse_dates(text_series([text]), date_format)
    assert not bad[0]
    assert dates.iloc[0] == day(expected)
    assert dates.dtype == "datetime64[ns]"


@pytest.mark.parametrize("text, date_format", [
    ("31/02/2024", None), ("2024-13-01", None), ("29/02/2023", None), ("yesterday", None),
    ("05/03/2024 25:00", None), ("05/13/2024", None), ("05/03/2024", "iso"), ("2024", None),
    ("05/03/1500", None),
])
def test_parse_dates_rejects(text, date_format):
    dates, bad, _ = parse_dates(text_series([text]), date_format)
    assert bad[0] and pd.isna(dates.iloc[0])


def test_date_evidence():
    evidence = DateParts.of(text_series(["01/02/2024", "13/02/2024", "02/14/2024", ""]))
    found = evidence.evidence()
    assert found.numeric == 3 and found.iso == 0
    assert found.dayfirst.tolist() == [1] and found.monthfirst.tolist() == [2]
    assert found.guess() == "dayfirst"
    assert DateParts.of(text_series(["2024-01-02", ""])).evidence().guess() == "iso"


def test_ambiguous_dates_are_day_first_unless_configured():
    dates, _, used = parse_dates(text_series(["01/02/2024", "03/04/2024"]))
    assert used == "dayfirst"
    assert dates.tolist() == [day("2024-02-01"), day("2024-04-03")]
    dates, _, used = parse_dates(text_series(["01/02/2024"]), "monthfirst")
    assert dates.tolist() == [day("2024-01-02")]


# --- other columns --------------------------------------------------------------------------


def test_infer_column_types():
    assert infer_column(text_series(["34", "", "51"]), ".", None).dtype == "Int64"
    assert infer_column(text_series(["1,5", "2"]), ",", None).tolist() == [1.5, 2.0]
    postcodes = infer_column(text_series(["08001", "28001"]), ".", None)
    assert postcodes.tolist() == ["08001", "28001"]
    signup = infer_column(text_series(["05/03/2024", "2024-03-06"]), ".", "dayfirst")
    assert signup.tolist() == [day("2024-03-05"), day("2024-03-06")]
    mixed = infer_column(text_series([" North ", "12"]), ".", None)
    assert mixed.tolist() == ["North", "12"]


def test_big_file_keeps_line_numbers(tmp_path):
    rows = [f"C{i},{(dt.date(2024, 1, 1) + dt.timedelta(days=i % 300)):%d/%m/%Y},{i}.5"
            for i in range(5000)]
    rows[4321] = "C4321,not a date,1"
    path = write(tmp_path, "customer_id,date,amount\n" + "\n".join(rows) + "\n")
    with pytest.raises(WorkspaceError) as error:
        read_csv(path, numbers=["amount"], dates=["date"])
    problem = next(iter(error.value.problems))
    assert problem.kind == "unparseable_date"
    assert problem.rows == [4323] and problem.examples == ["not a date"]
