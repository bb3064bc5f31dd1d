"""Tables built by DuckDB SQL over the workspace's files, and the sandbox around it.

A marketplace export in four tables, built by hand: customers (a person has one
``customer_unique_id`` but a new ``customer_id`` per order), orders, payments (an order can be
paid in several parts) and reviews keyed by order. The queries turn them into the canonical
tables: 2 customers (U1, U2), 3 delivered orders worth 120.50 (o1: 100.50 + 20.00 in two
payments), 55.25 and 80.00, so 255.75 in all (the cancelled o4 is left out by the query), and
3 survey answers (5, 2, 4).
"""

from __future__ import annotations

import os
import subprocess
import sys

import openpyxl
import pytest

from crmkit.inputs.queries import run_query
from crmkit.inputs.tabular import ReadError
from crmkit.inputs.workspace import check_workspace, load_workspace

FILES = {
    "customers.csv": ("customer_id,customer_unique_id,customer_city\n"
                      "c1,U1,sao paulo\nc2,U2,rio de janeiro\nc3,U1,sao paulo\n"),
    "orders.csv": ("order_id,customer_id,order_status,order_purchase_timestamp\n"
                   "o1,c1,delivered,2018-01-05 10:00:00\n"
                   "o2,c2,delivered,2018-02-10 11:00:00\n"
                   "o3,c3,delivered,2018-03-01 09:30:00\n"
                   "o4,c2,canceled,2018-03-05 12:00:00\n"),
    "payments.csv": ("order_id,payment_sequential,payment_type,payment_value\n"
                     "o1,1,credit_card,100.50\no1,2,voucher,20.00\no2,1,boleto,55.25\n"
                     "o3,1,credit_card,80.00\no4,1,credit_card,30.00\n"),
    "reviews.csv": "review_id,order_id,review_score\nr1,o1,5\nr2,o2,2\nr3,o3,4\n",
    "transactions.csv": None,
}
QUERIES = {
    "customers": ("SELECT DISTINCT customer_unique_id AS customer_id, customer_city AS city "
                  "FROM 'customers.csv'"),
    "transactions": """
        SELECT c.customer_unique_id AS customer_id,
               CAST(o.order_purchase_timestamp AS DATE) AS date, o.order_id,
               SUM(p.payment_value) AS amount
        FROM 'orders.csv' o
        JOIN 'payments.csv' p USING (order_id)
        JOIN 'customers.csv' c USING (customer_id)
        WHERE o.order_status = 'delivered'
        GROUP BY ALL ORDER BY date""",
    "survey": """
        SELECT c.customer_unique_id AS customer_id, r.review_score AS satisfaction
        FROM 'reviews.csv' r JOIN 'orders.csv' o USING (order_id)
        JOIN 'customers.csv' c USING (customer_id)""",
}


def marketplace(make_workspace, queries=None, files=None):
    return make_workspace({**FILES, **(files or {})}, {"queries": queries or QUERIES})


def test_three_tables_joined_by_queries(make_workspace):
    ws = load_workspace(marketplace(make_workspace))
    assert sorted(ws.customers["customer_id"]) == ["U1", "U2"]
    assert ws.customers.set_index("customer_id")["city"].to_dict() == {
        "U1": "sao paulo", "U2": "rio de janeiro"}
    tx = ws.transactions
    assert tx["customer_id"].tolist() == ["U1", "U2", "U1"]
    assert tx["amount"].tolist() == [120.5, 55.25, 80.0]
    assert round(tx["amount"].sum(), 6) == 255.75
    assert tx["date"].dtype == "datetime64[ns]"
    assert str(tx["date"].iloc[0].date()) == "2018-01-05"
    assert tx["order_id"].tolist() == ["o1", "o2", "o3"]
    assert ws.survey["satisfaction"].tolist() == [5, 2, 4]
    # The files the queries read are in the run record, as files are.
    assert {"orders.csv", "payments.csv", "customers.csv", "reviews.csv"} <= set(ws.checksums)
    reading = ws.readings["transactions"]
    assert reading.origin == "query" and reading.source == "client.yaml (queries.transactions)"
    assert reading.files == ["customers.csv", "orders.csv", "payments.csv"]
    text = ws.describe()
    assert "built by the query client.yaml (queries.transactions) on customers.csv, " \
           "orders.csv, payments.csv" in text
    assert "3 orders" in text
    assert "construido por la consulta" in ws.describe("es")


def test_a_sheet_is_read_through_crmkit_and_joined(make_workspace):
    root = marketplace(make_workspace, {**QUERIES, "transactions": QUERIES["transactions"]
                                        .replace("'payments.csv'", "'book.xlsx#Payments'")},
                       {"payments.csv": None})
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Payments"
    sheet.append(["order_id", "payment_sequential", "payment_type", "payment_value"])
    for row in [["o1", 1, "credit_card", 100.5], ["o1", 2, "voucher", 20],
                ["o2", 1, "boleto", 55.25], ["o3", 1, "credit_card", 80]]:
        sheet.append(row)
    book.save(root / "book.xlsx")
    ws = load_workspace(root)
    assert ws.transactions["amount"].tolist() == [120.5, 55.25, 80.0]
    assert "book.xlsx" in ws.checksums


def test_query_results_are_validated_like_files(make_workspace):
    queries = {**QUERIES, "transactions": (
        "SELECT c.customer_unique_id AS customer_id, 'not a date' AS date, 1.5 AS amount "
        "FROM 'customers.csv' c")}
    problems = check_workspace(marketplace(make_workspace, queries))
    (problem,) = list(problems)
    assert problem.file == "client.yaml (queries.transactions)"
    assert problem.kind == "unparseable_date" and problem.column == "date"
    assert problem.count == 3 and problem.examples[0] == "not a date"


def test_query_with_a_missing_canonical_column(make_workspace):
    queries = {**QUERIES, "transactions": "SELECT customer_unique_id AS customer_id "
                                          "FROM 'customers.csv'"}
    problems = check_workspace(marketplace(make_workspace, queries))
    kinds = {(p.file, p.kind, p.column) for p in problems}
    assert ("client.yaml (queries.transactions)", "missing_column", "date") in kinds


@pytest.mark.parametrize(("sql", "found"), [
    ("SELECT * FROM '/etc/passwd'", "an absolute path"),
    ("SELECT * FROM read_csv('/etc/passwd')", "an absolute path"),
    ("SELECT * FROM '../outside.csv'", "outside the workspace folder"),
    ("SELECT * FROM 'sub/../../outside.csv'", "outside the workspace folder"),
    ("SELECT * FROM 'https://example.com/x.csv'", "not a file of the workspace"),
    # Built at run time, so only DuckDB's own sandbox can stop it.
    ("SELECT * FROM read_csv(chr(47) || 'etc' || chr(47) || 'passwd')", "Permission Error"),
    ("SELECT * FROM read_text(chr(46) || chr(46) || chr(47) || 'outside' || chr(46) || 'csv')",
     "Permission Error"),
    ("COPY (SELECT 1) TO 'written.csv'", "not in the workspace"),
    ("SELECT 1; SELECT 2", "expected one SELECT statement"),
    ("SELEC customer_id FROM 'orders.csv'", "syntax error"),
    ("SELECT no_such_column FROM 'orders.csv'", 'Referenced column "no_such_column" not found'),
    ("SELECT * FROM 'missing.csv'", "'missing.csv', which is not in the workspace"),
])
def test_queries_read_only_the_workspace(make_workspace, tmp_path, sql, found):
    (tmp_path / "outside.csv").write_text("customer_id,date,amount\nX,2018-01-01,1\n")
    root = marketplace(make_workspace, {**QUERIES, "transactions": sql})
    problems = [p for p in check_workspace(root) if p.file.startswith("client.yaml (queries")]
    assert len(problems) == 1, problems
    assert found in problems[0].message, problems[0].message
    assert not (root / "written.csv").exists()


def test_a_link_out_of_the_workspace_is_refused(make_workspace, tmp_path):
    (tmp_path / "secret.csv").write_text("customer_id,date,amount\nX,2018-01-01,1\n")
    root = marketplace(make_workspace, {**QUERIES, "transactions": "SELECT * FROM 'link.csv'"})
    (root / "link.csv").symlink_to(tmp_path / "secret.csv")
    with pytest.raises(ReadError) as caught:
        run_query(root, "transactions", "SELECT * FROM 'link.csv'")
    assert "'link.csv', which is outside the workspace folder" in caught.value.problem.message


def test_a_query_and_a_file_for_one_table_is_refused(make_workspace):
    root = make_workspace(config_overrides={"queries": {"transactions": "SELECT 1"},
                                            "files": {"transactions": "transactions.csv"}})
    (problem,) = [p for p in check_workspace(root) if p.file == "client.yaml"]
    assert "either files: transactions or queries: transactions; found both" in problem.message


def test_check_refuses_a_query_reading_outside_with_exit_2(make_workspace, tmp_path):
    root = marketplace(make_workspace, {**QUERIES,
                                        "transactions": "SELECT * FROM read_csv('/etc/passwd')"})
    before = sorted(p.name for p in root.iterdir())
    env = {**os.environ, "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "crmkit", "check", str(root)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "client.yaml (queries.transactions):" in done.stderr
    assert "'/etc/passwd', an absolute path" in done.stderr
    assert sorted(p.name for p in root.iterdir()) == before


def test_run_cache_follows_the_files_a_query_read(make_workspace, tmp_path):
    from crmkit.inputs import cache

    root = marketplace(make_workspace)
    ws = load_workspace(root)
    run_dir = tmp_path / "run"
    cache.save(ws, run_dir)
    again = cache.load(root, run_dir)
    assert again is not None
    assert again.transactions["amount"].tolist() == ws.transactions["amount"].tolist()
    # A file read only by a query changes: the cache is no longer the truth.
    (root / "payments.csv").write_text(FILES["payments.csv"].replace("55.25", "56.25"))
    assert cache.load(root, run_dir) is None
