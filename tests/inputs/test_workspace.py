"""Loading a valid workspace into canonical frames (crmkit.inputs.workspace)."""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pandas as pd
import pytest

from crmkit.core.problems import WorkspaceError
from crmkit.inputs.workspace import RELATIONSHIP_TYPES, Workspace, check_workspace, load_workspace

SPANISH_FILES = {
    "customers.csv": "Nº Cliente;Región;Gasto anual\nC1;Norte;1.500,00\nC2;Sur;800\n"
    .encode("cp1252"),
    "transactions.csv": ("Nº Cliente;Fecha;Importe;Margen;Producto;Promoción\r\n"
                         "C1;05/03/2024;1.234,56;300,10;Café;\r\n"
                         "C2;31/12/2023 18:45;-12,50;-3;Té;VERANO10\r\n"
                         "C1;1-4-2024;20;5;Café;\r\n").encode("cp1252"),
}
SPANISH_COLUMNS = {
    "customers": {"customer_id": "Nº Cliente", "category_spend": "Gasto anual"},
    "transactions": {"customer_id": "Nº Cliente", "date": "Fecha", "amount": "Importe",
                     "margin": "Margen", "product": "Producto", "promotion": "Promoción"},
}
OPTIONAL_FILES = {
    "interactions.csv": ("customer_id,date,channel,relationship_type,minutes\n"
                         "C1,2024-01-10,phone,personal_assistance,12.5\n"
                         "C2,2024-01-11,web,Self-service,0\n"
                         "C3,2024-02-01 09:00,shop,Asistencia personal dedicada,45\n"),
    "survey.csv": ("customer_id,satisfaction,nps,preferred_relationship\n"
                   "C1,5,9,communities\n"
                   "C2,2,,\n"
                   "C3,4.0,10,co-creation\n"),
}


def snapshot(root):
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(root.iterdir())}


def test_valid_workspace_loads_canonical_frames(make_workspace):
    ws = load_workspace(make_workspace())
    assert isinstance(ws, Workspace)
    assert ws.slug == "acme" and ws.config.name == "Acme Retail"
    customers, transactions = ws.customers, ws.transactions
    assert customers["customer_id"].tolist() == ["C1", "C2", "C3"]
    assert pd.api.types.is_string_dtype(customers["customer_id"])
    assert customers["age"].dtype == "Int64"  # extra columns are typed as parsed
    assert list(transactions.columns[:3]) == ["customer_id", "date", "amount"]
    assert transactions["date"].dtype == "datetime64[ns]"
    assert transactions["amount"].dtype == np.float64
    assert transactions["amount"].tolist() == [120.5, 80.0, -20.0, 45.25]
    assert transactions["date"].iloc[0] == pd.Timestamp("2024-01-05")
    assert pd.api.types.is_string_dtype(transactions["product"])
    assert isinstance(transactions.index, pd.RangeIndex)
    assert ws.as_of == dt.date(2024, 3, 2)  # the last transaction
    assert ws.interactions is None and ws.survey is None
    assert set(ws.sources) == {"customers.csv", "transactions.csv"}
    assert ws.sources["transactions.csv"].date_format == "iso"


def test_returns_are_accepted(make_workspace):
    ws = load_workspace(make_workspace())
    returns = ws.transactions[ws.transactions["amount"] < 0]
    assert returns["amount"].tolist() == [-20.0]


def test_checksums_match_and_raw_files_are_untouched(make_workspace):
    root = make_workspace({"interactions.csv": OPTIONAL_FILES["interactions.csv"]})
    before = snapshot(root)
    ws = load_workspace(root)
    assert snapshot(root) == before  # same files, same bytes, same modification times
    for name in ("client.yaml", "customers.csv", "transactions.csv", "interactions.csv"):
        assert ws.checksums[name] == hashlib.sha256((root / name).read_bytes()).hexdigest()


def test_latin1_semicolon_workspace_with_mapped_headers(make_workspace):
    root = make_workspace(SPANISH_FILES, {"columns": SPANISH_COLUMNS, "as_of": "2024-06-30"})
    ws = load_workspace(root)
    tx = ws.transactions
    assert list(tx.columns) == ["customer_id", "date", "amount", "product", "margin",
                                "promotion"]
    assert tx["customer_id"].tolist() == ["C1", "C2", "C1"]
    assert tx["amount"].tolist() == [1234.56, -12.5, 20.0]
    assert tx["margin"].tolist() == [300.1, -3.0, 5.0]
    assert tx["date"].tolist() == [pd.Timestamp("2024-03-05"), pd.Timestamp("2023-12-31"),
                                   pd.Timestamp("2024-04-01")]
    assert tx["product"].tolist() == ["Café", "Té", "Café"]
    assert tx["promotion"].isna().tolist() == [True, False, True]
    assert ws.customers["category_spend"].tolist() == [1500.0, 800.0]
    assert ws.customers["Región"].tolist() == ["Norte", "Sur"]
    assert ws.as_of == dt.date(2024, 6, 30)
    source = ws.sources["transactions.csv"]
    assert (source.encoding, source.separator, source.decimal, source.date_format) == (
        "cp1252", ";", ",", "dayfirst")


def test_optional_files_are_typed(make_workspace):
    ws = load_workspace(make_workspace(OPTIONAL_FILES))
    interactions, survey = ws.interactions, ws.survey
    assert interactions["relationship_type"].tolist() == [
        "personal_assistance", "self_service", "dedicated_personal_assistance"]
    assert set(interactions["relationship_type"]) <= set(RELATIONSHIP_TYPES)
    assert interactions["minutes"].dtype == np.float64
    assert interactions["minutes"].tolist() == [12.5, 0.0, 45.0]
    assert interactions["date"].dtype == "datetime64[ns]"
    assert survey["satisfaction"].dtype == np.int64
    assert survey["satisfaction"].tolist() == [5, 2, 4]
    assert survey["nps"].dtype == "Int64"
    assert survey["nps"].isna().tolist() == [False, True, False]
    assert survey["preferred_relationship"].iloc[0] == "communities"
    assert pd.isna(survey["preferred_relationship"].iloc[1])
    assert survey["preferred_relationship"].iloc[2] == "co_creation"


def test_headers_match_case_and_spacing_insensitively(make_workspace):
    root = make_workspace({"transactions.csv": " Customer ID ,DATE,Amount\nC1,2024-01-05,3\n"})
    ws = load_workspace(root)
    assert list(ws.transactions.columns) == ["customer_id", "date", "amount"]


def test_configured_month_first(make_workspace):
    root = make_workspace({"transactions.csv": "customer_id,date,amount\nC1,03/05/2024,3\n"
                                               "C2,12/31/2023,4\n"},
                          {"csv": {"date_format": "monthfirst"}})
    ws = load_workspace(root)
    assert ws.transactions["date"].tolist() == [pd.Timestamp("2024-03-05"),
                                                pd.Timestamp("2023-12-31")]
    assert "date_format" in ws.sources["transactions.csv"].configured


def test_describe_summarises(make_workspace):
    text = load_workspace(make_workspace(OPTIONAL_FILES)).describe()
    assert "Acme Retail" in text
    assert "3 customers" in text
    assert "4 transactions from 2024-01-05 to 2024-03-02" in text
    assert "3 interactions" in text and "3 survey responses" in text
    assert "','-separated" in text and "2024-03-02" in text


def test_check_workspace_returns_problems_without_raising(make_workspace, tmp_path):
    assert not check_workspace(make_workspace())
    bad = make_workspace({"transactions.csv": "customer_id,date,amount\nC1,2024-01-05,x\n"},
                         {"context": None}, slug="bad")
    problems = check_workspace(bad)
    assert {"invalid_setting", "unparseable_number"} <= problems.kinds()
    with pytest.raises(WorkspaceError):
        load_workspace(bad)
    assert "missing_workspace" in check_workspace(tmp_path / "nowhere").kinds()


def test_broken_config_still_uses_its_column_mapping(make_workspace):
    root = make_workspace(SPANISH_FILES, {"columns": SPANISH_COLUMNS, "currency": "euro"})
    problems = check_workspace(root)
    assert problems.kinds() == {"invalid_setting"}  # no spurious missing columns


def test_unexpected_errors_become_problems(make_workspace, monkeypatch):
    import crmkit.inputs.workspace as workspace

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(workspace, "parse_numbers", broken)
    problems = check_workspace(make_workspace())
    assert [p.file for p in problems] == ["transactions.csv"]
    assert "RuntimeError: boom" in next(iter(problems)).message


@pytest.mark.parametrize("content", [
    "name: Café\ncontext: [\n".encode("latin-1"),  # not UTF-8 and not valid YAML
    b"name: X\nas_of: 2024-02-30\n",  # a date YAML itself cannot build
])
def test_unreadable_config_is_a_problem_not_a_traceback(make_workspace, content):
    problems = check_workspace(make_workspace({"client.yaml": content}))
    assert [p.kind for p in problems] == ["invalid_yaml"]


def test_decimal_mark_detected_per_column(make_workspace):
    # A ';' export with the amount in decimal comma and the margin in decimal point.
    root = make_workspace({"transactions.csv": "customer_id;date;amount;margin\n"
                                               "C1;2024-01-05;1.234,56;300.10\n"
                                               "C2;2024-02-10;80,5;20.25\n"
                                               "C3;2024-03-02;12,00;3.5\n"})
    ws = load_workspace(root)
    assert ws.transactions["amount"].tolist() == [1234.56, 80.5, 12.0]
    assert ws.transactions["margin"].tolist() == [300.10, 20.25, 3.5]
    dialect = ws.sources["transactions.csv"]
    assert dialect.decimal == "," and dialect.decimals == (("margin", "."),)
    assert "decimal mark per column: margin decimal point" in ws.describe()
    assert "separador decimal por columna: margin punto decimal" in ws.describe("es")


def test_check_warns_of_placeholders_and_empty_columns(make_workspace):
    root = make_workspace({"customers.csv": "customer_id,region,segment\nC1,North,\nC2,South,\n"
                                            "C3,North,\n"},
                          {"industry": "REVIEW: confirm with the client",
                           "context": {"internal": {"people": {"score": 4, "note": "TBD"}}}})
    ws = load_workspace(root)
    text = ws.describe()
    assert "client.yaml, key 'industry': still holds the placeholder 'REVIEW'" in text
    assert "client.yaml, key 'context.internal.people.note': still holds the placeholder 'TBD'" \
        in text
    assert "customers.csv, column 'segment': empty in every row" in text
    assert "column 'region'" not in text
    assert "clave 'industry': aún contiene el marcador 'REVIEW'" in ws.describe("es")


def test_contract_dates_of_customers_are_dates(make_workspace):
    root = make_workspace({"customers.csv": "customer_id,start_date,end_date\n"
                                            "C1,2023-01-01,\nC2,2023-02-01,2024-01-31\n"
                                            "C3,2023-03-15,\n"})
    customers = load_workspace(root).customers
    assert customers["start_date"].dtype == "datetime64[ns]"
    assert customers["end_date"].isna().tolist() == [True, False, True]


def test_warning_records_are_plain_json_for_run_json(make_workspace):
    """What the runner writes into run.json (warnings: [...]): key, values and the message."""
    import json

    root = make_workspace(None, {"industry": "TODO", "language": "es"})
    records = load_workspace(root).warning_records()
    placeholder = next(r for r in records if r["values"].get("setting") == "industry")
    assert placeholder["key"] == "check_warning_placeholder"
    assert "aún contiene el marcador 'TODO'" in placeholder["message"]
    assert json.loads(json.dumps(records)) == records
    english = load_workspace(root).warning_records("en")
    assert any("still holds the placeholder 'TODO'" in r["message"] for r in english)


def test_problems_are_in_the_clients_language(make_workspace):
    """A Spanish client's check reads in Spanish: missing file, bad numbers and dates, unknown
    customers, with the file, column, rows and values as found."""
    root = make_workspace({
        "customers.csv": "customer_id\nC1\nC1\n",
        "transactions.csv": ("customer_id,date,amount\nC1,2024-01-05,abc\nC9,2024-13-45,5\n"),
        "survey.csv": None,
    }, {"language": "es", "files": {"survey": "encuesta.xlsx"}})
    problems = check_workspace(root)
    text = "\n".join(p.message for p in problems)
    assert "no es un número; se esperaba un número como 1234.56 o 1,234.56" in text
    assert "no es una fecha; se esperaba" in text
    assert "identificador de cliente repetido; se esperaba una fila por cliente " \
           "(1 identificador repetido)" in text
    assert "archivo no encontrado, aunque client.yaml lo nombra (files: survey: " \
           "'encuesta.xlsx')" in text
    assert "no está en customers.csv" in text
    by_kind = {p.kind: p for p in problems}
    assert by_kind["unparseable_number"].examples == ["abc"]
    assert by_kind["unparseable_number"].rows == [2]
    english = check_workspace(make_workspace({"customers.csv": "customer_id\nC1\nC1\n"},
                                             slug="english"))
    assert any("customer id repeated; expected one row per customer (1 id repeated)"
               in p.message for p in english)
