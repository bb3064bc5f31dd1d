"""The README's three input recipes, as written there, load the exports they describe.

The YAML blocks are read from README.md itself (English section), so a recipe that stops
working, or a README edited into one that does not, fails here.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import openpyxl
import pytest
import yaml
from test_line_items import HEADER, KEPT_REVENUE, LINES
from test_readers import CDNOW

from crmkit.inputs.workspace import load_workspace

README = Path(__file__).resolve().parents[2] / "README.md"


def recipes() -> list[dict]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("#### Three recipes"):text.index("## En español")]
    blocks = re.findall(r"```yaml\n(.*?)```", section, flags=re.S)
    return [yaml.safe_load(block) for block in blocks[:3]]


def test_recipe_excel_invoice_lines(make_workspace):
    root = make_workspace({"customers.csv": None, "transactions.csv": None},
                          {**recipes()[0], "currency": "GBP"})
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(HEADER)
    for line in LINES:
        values = list(line)
        values[4] = dt.datetime.fromisoformat(values[4])
        sheet.append(values)
    book.save(root / "Online Retail.xlsx")
    ws = load_workspace(root)
    assert round(ws.transactions["amount"].sum(), 6) == round(KEPT_REVENUE, 6)
    assert ws.transactions["order_id"].nunique() == 4
    assert len(ws.customers) == 2


@pytest.mark.skipif(not CDNOW.exists(), reason="lifetimes' CDNOW_master.txt is not installed")
def test_recipe_transaction_log_only(make_workspace):
    root = make_workspace({"customers.csv": None, "transactions.csv": None}, recipes()[1])
    # The file as CDNOW published it, without the header line lifetimes' copy adds.
    body = CDNOW.read_bytes().split(b"\n", 1)[1]
    (root / "CDNOW_master.txt").write_bytes(body)
    ws = load_workspace(root)
    # The CDNOW master file: 69,659 lines of 23,570 customers, 1997-01-01 to 1998-06-30.
    assert len(ws.transactions) == 69_659
    assert ws.customers["customer_id"].nunique() == 23_570
    assert ws.transactions["date"].min() == dt.datetime(1997, 1, 1)
    assert ws.transactions["date"].max() == dt.datetime(1998, 6, 30)
    assert "no customers file: 23,570 customers taken from CDNOW_master.txt" in ws.describe()


def test_recipe_orders_payments_customers_by_query(make_workspace):
    files = {
        "customers.csv": ("customer_id,customer_unique_id,customer_state\n"
                          "c1,U1,SP\nc2,U2,RJ\nc3,U1,SP\n"),
        "orders.csv": ("order_id,customer_id,order_status,order_purchase_timestamp\n"
                       "o1,c1,delivered,2018-01-05 10:00:00\no2,c2,delivered,2018-02-10 11:00:00\n"
                       "o3,c3,delivered,2018-03-01 09:30:00\no4,c2,canceled,2018-03-05 12:00:00\n"),
        "payments.csv": ("order_id,payment_value\no1,100.50\no1,20.00\no2,55.25\no3,80.00\n"
                         "o4,30.00\n"),
        "reviews.csv": "review_id,order_id,review_score\nr1,o1,5\nr2,o2,2\nr3,o3,4\n",
        "transactions.csv": None,
    }
    ws = load_workspace(make_workspace(files, recipes()[2]))
    assert sorted(ws.customers["customer_id"]) == ["U1", "U2"]
    assert ws.customers.set_index("customer_id")["region"].to_dict() == {"U1": "SP", "U2": "RJ"}
    assert round(ws.transactions["amount"].sum(), 6) == 255.75
    assert len(ws.transactions) == 3
    assert sorted(ws.survey["satisfaction"]) == [2, 4, 5]
