"""``crmkit new CLIENT_DIR --from EXPORTS_DIR``: the README recipes' export shapes, guessed.

Each export is built here as a client sends it; after ``new --from`` the workspace must pass
``crmkit check`` (load_workspace) with the figures computed by hand, or say what is left to
decide; the originals must be left byte for byte as they were.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
from pathlib import Path

import openpyxl
import pytest
import yaml
from conftest import crmkit_cli
from test_line_items import HEADER, KEPT_REVENUE, LINES

from crmkit.core.problems import WorkspaceError
from crmkit.inputs.scaffold import fold, new_workspace
from crmkit.inputs.workspace import load_workspace

XLS = Path(__file__).parents[1] / "fixtures" / "invoice_lines.xls"


def digests(source: Path) -> dict[str, str]:
    files = source.iterdir() if source.is_dir() else [source]
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def scaffold(exports: Path, target: Path, language: str = "en") -> tuple[dict, str, list[str]]:
    """Run ``new --from``; return client.yaml (parsed and as text) and what was printed."""
    before = digests(exports)
    said: list[str] = []
    new_workspace(target, language=language, source=exports, echo=said.append)
    assert digests(exports) == before  # the originals are only read
    for name, digest in before.items():
        if (target / name).exists():
            assert hashlib.sha256((target / name).read_bytes()).hexdigest() == digest
    text = (target / "client.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text), text, said


@pytest.fixture
def invoice_export(tmp_path) -> Path:
    folder = tmp_path / "exports"
    folder.mkdir()
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Online Retail"
    sheet.append(HEADER)
    for line in LINES:
        values = list(line)
        values[4] = dt.datetime.fromisoformat(values[4])
        sheet.append(values)
    book.save(folder / "Online Retail.xlsx")
    (folder / "notes.pdf").write_bytes(b"%PDF-1.4 not an export")
    return folder


def test_excel_invoice_lines(invoice_export, tmp_path):
    config, text, said = scaffold(invoice_export, tmp_path / "acme")
    assert config["files"] == {"transactions": "Online Retail.xlsx"}
    assert config["columns"]["transactions"] == {
        "customer_id": "CustomerID", "date": "InvoiceDate", "order_id": "InvoiceNo",
        "quantity": "Quantity", "unit_price": "UnitPrice", "product": "StockCode"}
    assert "customer_id: \"CustomerID\"   # guessed from header 'CustomerID'" in text
    assert config["transactions"] == {"missing_customer": "skip", "cancellation_prefix": "C"}
    assert config["customers"] == {"from_transactions": True}
    # The product codes without digits are offered, commented out, for the consultant to decide.
    assert '# exclude_products: ["POST", "M"]' in text
    assert not (tmp_path / "acme" / "notes.pdf").exists()
    printed = said[0]
    assert "notes.pdf: not copied" in printed and "exclude_products" in printed
    assert "transactions.cancellation_prefix: C" in printed

    ws = load_workspace(tmp_path / "acme")
    # Left out: the guest line (21.00) and the free gift (0); POST (18.00) and M (0.50) stay
    # until exclude_products is uncommented.
    assert round(ws.transactions["amount"].sum(), 6) == round(KEPT_REVENUE + 18.00 + 0.50, 6)
    assert ws.transactions["order_id"].nunique() == 4
    assert sorted(ws.customers["customer_id"]) == ["13047", "17850"]


def test_uncommenting_the_suggestion_gives_the_recipe_figures(invoice_export, tmp_path):
    _, text, _ = scaffold(invoice_export, tmp_path / "acme")
    text = text.replace("  # exclude_products:", "  exclude_products:")
    (tmp_path / "acme" / "client.yaml").write_text(text, encoding="utf-8")
    ws = load_workspace(tmp_path / "acme")
    assert round(ws.transactions["amount"].sum(), 6) == round(KEPT_REVENUE, 6)


def test_xls_with_a_notes_sheet_first(tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    shutil.copyfile(XLS, folder / "lines.xls")
    config, _, said = scaffold(folder, tmp_path / "acme")
    assert config["files"] == {"transactions": "lines.xls#Invoice lines"}
    assert "lines.xls: copied, but holds no rows" in said[0]  # the Notes sheet
    ws = load_workspace(tmp_path / "acme")
    assert ws.readings["transactions"].lines_read == 9


def test_whitespace_log_without_header(tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "CDNOW_master.txt").write_text(
        "00001 19970101 1 11.77\n00002 19970112 1 12.00\n00001 19970201  2   24.50\n"
        "00003 19970315 3 40.10\n00002 19970402 1 9.99\n", encoding="utf-8")
    config, text, said = scaffold(folder, tmp_path / "log")
    assert config["files"]["transactions"] == {"path": "CDNOW_master.txt", "csv": {
        "header": False, "names": ["customer_id", "date", "quantity", "amount"],
        "separator": "whitespace", "date_format": "yyyymmdd"}}
    assert "# date: guessed from column 2's values (e.g. '19970101')" in text
    assert "guessed as customer_id, date, quantity, amount" in said[0]
    ws = load_workspace(tmp_path / "log")
    assert len(ws.transactions) == 5
    assert sorted(ws.customers["customer_id"]) == ["00001", "00002", "00003"]
    assert round(ws.transactions["amount"].sum(), 2) == 98.36
    assert ws.transactions["date"].max() == dt.datetime(1997, 4, 2)


def marketplace(folder: Path) -> Path:
    folder.mkdir()
    files = {
        "customers.csv": ("customer_id,customer_unique_id,customer_state\n"
                          "c1,U1,SP\nc2,U2,RJ\nc3,U1,SP\n"),
        "orders.csv": ("order_id,customer_id,order_status,order_purchase_timestamp,"
                       "order_delivered_customer_date\n"
                       "o1,c1,delivered,2018-01-05 10:00:00,2018-01-09 10:00:00\n"
                       "o2,c2,delivered,2018-02-10 11:00:00,2018-02-12 10:00:00\n"
                       "o3,c3,delivered,2018-03-01 09:30:00,2018-03-04 10:00:00\n"
                       "o4,c2,canceled,2018-03-05 12:00:00,\n"),
        "payments.csv": ("order_id,payment_sequential,payment_type,payment_value\n"
                         "o1,1,credit_card,100.50\no1,2,voucher,20.00\no2,1,boleto,55.25\n"
                         "o3,1,credit_card,80.00\no4,1,credit_card,30.00\n"),
        "reviews.csv": "review_id,order_id,review_score\nr1,o1,5\nr2,o2,2\nr3,o3,4\n",
    }
    for name, body in files.items():
        (folder / name).write_text(body, encoding="utf-8")
    return folder


def test_multi_table_export_becomes_queries(tmp_path):
    config, _, said = scaffold(marketplace(tmp_path / "exports"), tmp_path / "shop")
    assert set(config["queries"]) == {"customers", "transactions", "survey"}
    assert "'orders.csv' o JOIN 'payments.csv' p" in config["queries"]["transactions"]
    assert "order_status" in said[0] and "'delivered'" in said[0]
    ws = load_workspace(tmp_path / "shop")
    # One customer per person (U1 placed two orders under two order-customer ids).
    assert sorted(ws.customers["customer_id"]) == ["U1", "U2"]
    assert ws.customers.set_index("customer_id")["customer_state"].to_dict() == \
        {"U1": "SP", "U2": "RJ"}
    # Every order, the canceled o4 too, until the consultant adds the WHERE offered.
    assert round(ws.transactions["amount"].sum(), 2) == 285.75
    assert ws.transactions["order_id"].nunique() == 4
    assert sorted(ws.survey["satisfaction"]) == [2, 4, 5]


def test_spanish_headers_and_comments(tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "ventas.csv").write_bytes(
        "Nº Cliente;Fecha;Importe;Familia\nC01;05/03/2024;12,50;moda\nC02;06/03/2024;7,25;hogar\n"
        "C01;20/04/2024;30,00;moda\n".encode("cp1252"))
    (folder / "clientes.csv").write_text("Nº Cliente;Provincia\nC01;Madrid\nC02;Sevilla\n",
                                         encoding="utf-8")
    config, text, said = scaffold(folder, tmp_path / "tienda", language="es")
    assert config["files"] == {"customers": "clientes.csv", "transactions": "ventas.csv"}
    assert config["columns"]["transactions"] == {
        "customer_id": "Nº Cliente", "date": "Fecha", "amount": "Importe", "category": "Familia"}
    assert "# deducido de la cabecera 'Importe'" in text
    assert said[0].startswith("Creado ")
    ws = load_workspace(tmp_path / "tienda")
    assert round(ws.transactions["amount"].sum(), 2) == 49.75
    assert ws.transactions["date"].min() == dt.datetime(2024, 3, 5)


def test_nothing_left_to_guess_is_said(tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "orders.csv").write_text("order_id,customer_id,order_purchase_timestamp\n"
                                       "o1,c1,2018-01-05\n", encoding="utf-8")
    config, _, said = scaffold(folder, tmp_path / "acme")
    assert "files" not in config
    assert "transactions: no export holds a customer id, a date and an amount" in said[0]
    with pytest.raises(WorkspaceError) as error:
        load_workspace(tmp_path / "acme")
    assert "transactions" in str(error.value)


@pytest.mark.parametrize("case", ["missing", "no_exports", "not_empty"])
def test_bad_sources_write_nothing(tmp_path, case):
    source, target = tmp_path / "exports", tmp_path / "acme"
    if case == "no_exports":
        source.mkdir()
        (source / "readme.pdf").write_bytes(b"%PDF")
    if case == "not_empty":
        marketplace(source)
        target.mkdir()
        (target / "keep.txt").write_text("the client's", encoding="utf-8")
    with pytest.raises(WorkspaceError) as error:
        new_workspace(target, source=source, echo=None)
    expected = {"missing": "not found", "no_exports": "holds no file crmkit reads",
                "not_empty": "already exists and is not empty"}[case]
    assert expected in str(error.value)
    assert not target.exists() or [p.name for p in target.iterdir()] == ["keep.txt"]


def test_command_line_exit_2_without_traceback(tmp_path):
    done = crmkit_cli("new", tmp_path / "acme", "--from", tmp_path / "nowhere")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr + done.stdout
    assert "nowhere" in done.stderr + done.stdout and not (tmp_path / "acme").exists()


def test_fold_ignores_case_accents_and_signs():
    assert fold("Nº Cliente") == "nocliente" and fold("Customer_ID") == "customerid"


def test_one_export_file_and_no_source(invoice_export, tmp_path):
    config, _, _ = scaffold(invoice_export / "Online Retail.xlsx", tmp_path / "one")
    assert config["files"] == {"transactions": "Online Retail.xlsx"}
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == \
        ["Online Retail.xlsx", "README.md", "client.yaml"]
    said: list[str] = []
    new_workspace(tmp_path / "plain", name="Plain", echo=said.append)
    assert said == [] and "files:" not in (tmp_path / "plain" / "client.yaml").read_text()
    assert yaml.safe_load((tmp_path / "plain" / "client.yaml").read_text())["name"] == "Plain"
