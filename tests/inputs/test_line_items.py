"""Invoice lines as purchases: quantity × unit price, orders, cancellations, lines left out.

One small export in the shape of a UK gift shop's "Online Retail" file, built by hand so that
every figure below can be checked on paper:

=========  =========  ====  ======  ========  ================================
invoice    product    qty   price   customer  what becomes of it
=========  =========  ====  ======  ========  ================================
536365     85123A       6    2.55    17850    kept, 15.30
536365     71053        6    3.39    17850    kept, 20.34
536365     POST         1   18.00    17850    left out: postage, 18.00
536366     22633       12    1.85    13047    kept, 22.20
536367     22745       10    2.10    (none)   left out: no customer id, 21.00
C536368    85123A      -2    2.55    17850    kept, a cancellation: -5.10
536369     22960        4    4.25    13047    kept, 17.00
536369     M            1    0.50    13047    left out: manual adjustment, 0.50
536370     21000        3    0       12583    left out: zero amount
=========  =========  ====  ======  ========  ================================

9 lines read, 5 kept, net revenue 69.74 in 4 orders of 2 customers.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import openpyxl
import pandas as pd
import pytest

from crmkit.core.problems import WorkspaceError
from crmkit.inputs.line_items import cancelled, excluded
from crmkit.inputs.workspace import check_workspace, load_workspace

HEADER = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
          "CustomerID", "Country"]
LINES = [
    ["536365", "85123A", "WHITE HANGING HEART", 6, "2010-12-01 08:26", 2.55, "17850", "UK"],
    ["536365", "71053", "WHITE METAL LANTERN", 6, "2010-12-01 08:26", 3.39, "17850", "UK"],
    ["536365", "POST", "POSTAGE", 1, "2010-12-01 08:26", 18.00, "17850", "UK"],
    ["536366", "22633", "HAND WARMER", 12, "2010-12-01 08:28", 1.85, "13047", "UK"],
    ["536367", "22745", "POPPY'S PLAYHOUSE", 10, "2010-12-02 09:00", 2.10, "", "UK"],
    ["C536368", "85123A", "WHITE HANGING HEART", -2, "2010-12-03 10:00", 2.55, "17850", "UK"],
    ["536369", "22960", "JAM MAKING SET", 4, "2010-12-03 11:00", 4.25, "13047", "UK"],
    ["536369", "M", "Manual", 1, "2010-12-03 11:00", 0.50, "13047", "UK"],
    ["536370", "21000", "FREE GIFT", 3, "2010-12-04 12:00", 0, "12583", "UK"],
]
KEPT_REVENUE = 15.30 + 20.34 + 22.20 - 5.10 + 17.00
SETTINGS = {
    "columns": {"transactions": {"order_id": "InvoiceNo", "product": "StockCode",
                                 "date": "InvoiceDate"}},
    "transactions": {"cancellation_prefix": "C", "exclude_products": ["POST", "m", "BANK*"],
                     "missing_customer": "skip"},
    "customers": {"from_transactions": True},
    "currency": "GBP",
}


def csv_text(lines=LINES) -> str:
    rows = [",".join(HEADER)]
    rows += [",".join(str(v) for v in line) for line in lines]
    return "\n".join(rows) + "\n"


def invoice_workspace(make_workspace, overrides=None, lines=LINES, **files):
    return make_workspace({"customers.csv": None, "transactions.csv": csv_text(lines), **files},
                          {**SETTINGS, **(overrides or {})})


def test_invoice_lines_become_purchases(make_workspace):
    ws = load_workspace(invoice_workspace(make_workspace))
    tx = ws.transactions
    assert len(tx) == 5
    assert round(tx["amount"].sum(), 6) == round(KEPT_REVENUE, 6)
    assert list(tx.columns[:3]) == ["customer_id", "date", "amount"]
    assert tx["amount"].round(2).tolist() == [15.30, 20.34, 22.20, -5.10, 17.00]
    assert tx["order_id"].nunique() == 4
    assert set(tx["product"]) == {"85123A", "71053", "22633", "22960"}
    # No customers file: the distinct ids of the lines kept, with their first purchase.
    assert ws.customers["customer_id"].tolist() == ["13047", "17850"]
    assert ws.customers["first_purchase"].tolist() == [pd.Timestamp("2010-12-01")] * 2
    assert ws.as_of == dt.date(2010, 12, 3)

    reading = ws.readings["transactions"]
    assert (reading.lines_read, reading.lines_kept, reading.orders) == (9, 5, 4)
    assert reading.amount_from == ("Quantity", "UnitPrice")
    assert round(reading.revenue, 6) == round(KEPT_REVENUE, 6)
    left = {item.reason: (item.lines, round(item.amount, 6)) for item in reading.left_out}
    assert left == {"missing_customer": (1, 21.0), "excluded_product": (2, 18.5),
                    "zero_amount": (1, 0.0)}
    assert (reading.cancellations.lines, round(reading.cancellations.amount, 6)) == (1, -5.1)
    assert ws.readings["customers"].origin == "derived"


def test_check_summary_says_what_was_kept_and_left_out(make_workspace):
    ws = load_workspace(invoice_workspace(make_workspace))
    text = ws.describe("en")
    for expected in ("9 lines read, 5 kept",
                     "amount = 'Quantity' × 'UnitPrice'",
                     "4 orders (the lines of one order are one purchase)",
                     "cancellations (order id starting with 'C'): 1 line, -£5.10",
                     "left out: 1 line without a customer id, holding £21.00 (19.2% of",
                     "left out: 2 lines of products that are not purchases (POST, M), "
                     "holding £18.50",
                     "left out: 1 line with a zero amount",
                     "net revenue of the lines kept: £69.74",
                     "no customers file: 2 customers taken from transactions.csv",
                     "No problems found."):
        assert expected in text, text
    # 'BANK*' matches no product of this export: a warning, not an error.
    assert "'BANK*' matches no product of transactions.csv" in text
    spanish = ws.describe("es")
    for expected in ("9 líneas leídas, 5 conservadas", "4 pedidos",
                     "anulaciones (número de pedido que empieza por 'C'): 1 línea",
                     "excluidas: 1 línea sin identificador de cliente",
                     "sin archivo de clientes: 2 clientes tomados de transactions.csv",
                     "Avisos", "No se han encontrado problemas."):
        assert expected in spanish, spanish


def test_shares_of_revenue_left_out(make_workspace):
    # Lines left out held 21.00 + 18.50 of 69.74 + 39.50: over 10 %, so check warns.
    ws = load_workspace(invoice_workspace(make_workspace))
    share = 39.5 / (KEPT_REVENUE + 39.5)
    assert f"held {share:.1%} of the revenue read" in ws.describe()


def test_same_export_as_an_excel_workbook(make_workspace):
    root = invoice_workspace(make_workspace, {"files": {"transactions": "Online Retail.xlsx"}},
                             **{"transactions.csv": None})
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Online Retail"
    sheet.append(HEADER)
    for line in LINES:
        values = list(line)
        values[4] = dt.datetime.fromisoformat(values[4])
        values[6] = int(values[6]) if values[6] else None  # Excel keeps ids as numbers
        sheet.append(values)
    book.save(root / "Online Retail.xlsx")
    ws = load_workspace(root)
    assert len(ws.transactions) == 5
    assert round(ws.transactions["amount"].sum(), 6) == round(KEPT_REVENUE, 6)
    assert ws.customers["customer_id"].tolist() == ["13047", "17850"]
    assert ws.files["transactions"] == "Online Retail.xlsx#Online Retail"


def test_cancellations_written_positive_count_negative(make_workspace):
    lines = [list(line) for line in LINES]
    lines[5][3] = 2  # the cancelled invoice's quantity written positive
    ws = load_workspace(invoice_workspace(make_workspace, lines=lines))
    assert round(ws.transactions["amount"].sum(), 6) == round(KEPT_REVENUE, 6)
    assert ws.transactions.loc[ws.transactions["order_id"] == "C536368", "amount"].tolist() \
        == [-5.1]


def test_customer_with_only_a_cancellation_is_pointed_out(make_workspace):
    lines = [*LINES, ["C536371", "22633", "HAND WARMER", -1, "2010-12-03 12:00", 1.85, "15100",
                      "UK"]]
    ws = load_workspace(invoice_workspace(make_workspace, lines=lines))
    assert "customers whose only lines are returns or cancellations: 1 (e.g. 15100)" \
        in ws.describe()


def test_missing_customer_is_an_error_by_default(make_workspace):
    overrides = {"transactions": {"cancellation_prefix": "C", "exclude_products": ["POST", "M"]}}
    problems = check_workspace(invoice_workspace(make_workspace, overrides))
    missing = [p for p in problems if p.kind == "missing_value"]
    assert len(missing) == 1 and missing[0].column == "CustomerID"
    assert missing[0].rows == [6]  # the line in the file (the header is line 1)


def test_excluded_lines_are_not_validated(make_workspace):
    # A postage line whose customer is unknown does not block the run: it is left out.
    lines = [*LINES, ["536371", "POST", "POSTAGE", 1, "2010-12-03 12:00", 15, "99999", "UK"]]
    root = invoice_workspace(make_workspace, {"customers": None}, lines=lines,
                             **{"customers.csv": "customer_id\n17850\n13047\n12583\n"})
    ws = load_workspace(root)
    assert len(ws.transactions) == 5
    assert "99999" not in set(ws.transactions["customer_id"])


def test_quantity_without_unit_price_is_refused(make_workspace):
    root = make_workspace({"transactions.csv": "customer_id,date,Qty,Total\nC1,2024-01-05,2,9\n"},
                          {"columns": {"transactions": {"quantity": "Qty"}}})
    problems = check_workspace(root)
    (problem,) = [p for p in problems if p.kind == "missing_column"]
    assert problem.column == "unit_price"
    assert "client.yaml maps quantity ('Qty') but no unit_price" in problem.message
    assert "expected both quantity and unit_price" in problem.message


def test_hint_offers_the_line_item_mapping_not_the_price(make_workspace):
    root = make_workspace({"transactions.csv": "customer_id,date,Qty,Price Each\n"
                                               "C1,2024-01-05,2,9.5\n"})
    (problem,) = [p for p in check_workspace(root) if p.kind == "missing_column"]
    assert problem.column == "amount"
    assert "{quantity: 'Qty', unit_price: 'Price Each'}" in problem.message
    assert "perhaps 'Price Each'" not in problem.message


def test_amount_mapped_to_a_unit_price_is_pointed_out(make_workspace):
    root = make_workspace({"transactions.csv": "customer_id,date,Quantity,UnitPrice\n"
                                               "C1,2024-01-05,2,9.5\nC2,2024-01-06,1,3\n"},
                          {"columns": {"transactions": {"amount": "UnitPrice"}}})
    ws = load_workspace(root)
    assert ws.transactions["amount"].tolist() == [9.5, 3.0]
    assert "amount is read from 'UnitPrice', which looks like a unit price" in ws.describe()


def test_line_items_found_by_their_headers(make_workspace):
    # 'Unit Price' and 'CustomerID' match unit_price and customer_id without a mapping.
    root = make_workspace({"customers.csv": "CustomerID\nC1\nC2\n",
                           "transactions.csv": "CustomerID,date,Quantity,Unit Price\n"
                                               "C1,2024-01-05,2,9.5\nC2,2024-01-06,3,1.25\n"})
    ws = load_workspace(root)
    assert ws.transactions["amount"].tolist() == [19.0, 3.75]


@pytest.mark.parametrize(("settings", "needs"), [
    ({"cancellation_prefix": "C"}, "order_id"),
    ({"exclude_products": ["POST"]}, "product"),
])
def test_line_settings_need_their_column(make_workspace, settings, needs):
    plain = {"transactions.csv": "customer_id,date,amount\nC1,2024-01-05,10\n"}
    problems = check_workspace(make_workspace(plain, {"transactions": settings}))
    (problem,) = list(problems)
    assert problem.file == "client.yaml" and problem.kind == "invalid_setting"
    assert f"has no {needs} column" in problem.message


def test_customers_file_and_from_transactions_conflict(make_workspace):
    problems = check_workspace(make_workspace(config_overrides={
        "customers": {"from_transactions": True}}))
    assert [(p.file, p.kind) for p in problems] == [("customers.csv", "ambiguous_file")]


def test_missing_customers_file_suggests_taking_them_from_transactions(make_workspace):
    problems = check_workspace(make_workspace({"customers.csv": None}))
    (problem,) = list(problems)
    assert "customers: {from_transactions: true}" in problem.message


def test_check_command_prints_the_reading(make_workspace, tmp_path):
    root = invoice_workspace(make_workspace, {"language": "es"})
    env = {**os.environ, "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "crmkit", "check", str(root)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "9 líneas leídas, 5 conservadas" in done.stdout
    assert "No se han encontrado problemas." in done.stdout


def test_excluded_and_cancelled_masks():
    products = pd.Series(["POST", " post ", "AMAZONFEE", "85123A", "", "M"])
    assert excluded(products, ["post", "AMAZON*"]).tolist() == [True, True, True, False, False,
                                                               False]
    assert cancelled(pd.Series(["C1", "c2", "536365", " C3"]), "C").tolist() == \
        [True, False, False, True]


def test_invalid_transactions_settings_are_reported(make_workspace):
    with pytest.raises(WorkspaceError) as caught:
        load_workspace(make_workspace(config_overrides={
            "transactions": {"missing_customer": "drop", "exclude_products": [""]}}))
    messages = " ".join(p.message for p in caught.value.problems)
    assert "transactions.missing_customer" in messages
    assert "transactions.exclude_products" in messages
