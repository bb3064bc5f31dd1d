"""Tables built by SQL over the workspace's files: ``queries:`` in ``client.yaml``.

A marketplace exports orders, payments, customers and reviews as separate files joined by keys;
rather than pandas written by hand, the consultant states the join in SQL and DuckDB runs it::

    queries:
      transactions: >
        SELECT o.customer_id, CAST(o.order_purchase_timestamp AS DATE) AS date,
               SUM(p.payment_value) AS amount
        FROM 'orders.csv' o JOIN 'payments.csv' p USING (order_id) GROUP BY ALL

File names are string literals relative to the workspace folder, as DuckDB reads them (CSV and
Parquet by DuckDB itself, ``read_csv('x.csv', delim=';')`` too). A workbook's sheet
(``'book.xlsx'``, ``'book.xlsx#Sheet'``) is read by :func:`crmkit.inputs.tabular.read_sheet`
and registered as a view, its columns typed as crmkit types a column nobody declared.

Why the sandbox: ``client.yaml`` travels between consultants and a query is code. DuckDB runs
with external access disabled except for the workspace folder (``allowed_directories``), no
extension installed or loaded, and the configuration locked, so a query cannot read
``/etc/passwd``, a sibling client's folder, a URL, nor write anything. Before DuckDB sees the
query every file literal is also resolved here (symbolic links included) and refused when it
leaves the workspace, so the message names the literal rather than DuckDB's permission error.

The result is turned into text columns like a Parquet file's (:func:`crmkit.inputs.tabular.
read_parquet`), and goes through the same validation as a file.
"""

from __future__ import annotations

import glob
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from crmkit.core.problems import Problem, problem_text
from crmkit.inputs.tabular import (
    Dialect,
    RawTable,
    ReadError,
    _arrow_text,
    _finish,
    infer_column,
    read_sheet,
)
from crmkit.settings.client import SHEET_SUFFIXES, SUPPORTED_SUFFIXES, split_sheet

#: Suffixes that make a string literal a file name (DuckDB reads these itself, or crmkit's
#: sheet reader does); compressed CSV too.
_FILE_SUFFIXES = (*SUPPORTED_SUFFIXES, ".json", ".ndjson", ".jsonl", ".gz", ".zst")
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.\-]*://")


@dataclass
class QueryResult:
    """A query's result as text columns, and the files it read.

    Attributes
    ----------
    table : RawTable
        ``file`` is ``"queries.<table>"``; rows are numbered from 1.
    files : dict
        Workspace-relative file name -> sha256 of the bytes, for every file the query names.
    """

    table: RawTable
    files: dict[str, str] = field(default_factory=dict)


def where(table: str) -> str:
    """How problems name a query: ``"client.yaml (queries.transactions)"``."""
    return f"client.yaml (queries.{table})"


def run_query(root: str | Path, table: str, sql: str) -> QueryResult:
    """Run one query of ``queries:`` on the workspace's files, sandboxed to its folder.

    Parameters
    ----------
    root : str or Path
        The workspace folder.
    table : str
        The canonical table the query builds (``"transactions"``...), for messages.
    sql : str
        One DuckDB ``SELECT`` (or ``WITH ... SELECT``) statement.

    Returns
    -------
    QueryResult

    Raises
    ------
    ReadError
        When the query names a file outside the workspace, a URL or an absolute path, a file
        or sheet that does not exist, is not one SELECT statement, has a syntax error, names a
        missing table or column, or fails in DuckDB; the problem quotes DuckDB's own words.
    """
    import duckdb

    root = Path(root).resolve()
    name = where(table)
    rewritten, files, sheets = _resolve_files(root, name, sql)
    con = _sandbox(root)
    try:
        for view, frame in sheets.items():
            con.register(view, frame)
        statements = con.extract_statements(rewritten)
        if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
            kinds = ", ".join(s.type.name for s in statements) or "none"
            raise ReadError(Problem(name, "invalid_query",
                                    problem_text("query_not_one_select",
                                                 count=len(statements), kinds=kinds)))
        result = con.sql(rewritten).to_arrow_table()
    except ReadError:
        raise
    except duckdb.Error as exc:
        raise ReadError(Problem(name, "invalid_query", _explain(exc, root))) from None
    finally:
        con.close()
    header = [str(c) for c in result.column_names]
    data = pd.DataFrame({i: _arrow_text(result.column(i)) for i in range(len(header))},
                        index=pd.RangeIndex(result.num_rows))
    lines = np.arange(1, result.num_rows + 1, dtype=np.int64)
    header, data, lines = _finish(header, data, lines)
    digest = hashlib.sha256(sql.encode("utf-8")).hexdigest()
    dialect = Dialect(encoding="", separator="", format="query")
    return QueryResult(RawTable(file=name, header=header, data=data, lines=lines,
                                dialect=dialect, sha256=digest), files)


def _sandbox(root: Path):
    """A DuckDB connection that may read the workspace folder and nothing else."""
    import duckdb

    con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False,
                                             "autoload_known_extensions": False})
    # Order matters: the allowed folder is set while external access is still on, then access
    # is switched off and the configuration locked (a query cannot switch it back on).
    con.execute("SET allowed_directories = ?", [[str(root) + "/"]])
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def _resolve_files(root: Path, name: str, sql: str
                   ) -> tuple[str, dict[str, str], dict[str, pd.DataFrame]]:
    """Turn the query's file literals into absolute paths inside the workspace.

    Returns the rewritten SQL, the files read (name -> sha256) and the sheets to register as
    views (view name -> typed frame), whose literals are replaced by the view's name.
    """
    import duckdb

    pieces: list[str] = []
    files: dict[str, str] = {}
    sheets: dict[str, pd.DataFrame] = {}
    position = 0
    try:
        tokens = duckdb.tokenize(sql)
    except duckdb.Error as exc:  # pragma: no cover - the tokenizer accepts any text
        raise ReadError(Problem(name, "invalid_query",
                                problem_text("check_invalid_sql", error=exc))) from None
    for start, kind in tokens:
        if kind != duckdb.token_type.string_const or sql[start] != "'":
            continue
        end = _literal_end(sql, start)
        value = sql[start + 1:end - 1].replace("''", "'")
        if not _is_file(value):
            continue
        replacement = _file_literal(root, name, value, files, sheets)
        pieces.append(sql[position:start])
        pieces.append(replacement)
        position = end
    pieces.append(sql[position:])
    return "".join(pieces), files, sheets


def _literal_end(sql: str, start: int) -> int:
    """The position just after the string literal opening at ``start`` ('' is a quote)."""
    i = start + 1
    while i < len(sql):
        if sql[i] == "'":
            if i + 1 < len(sql) and sql[i + 1] == "'":
                i += 2
                continue
            return i + 1
        i += 1
    return len(sql)


def _is_file(value: str) -> bool:
    text = value.strip()
    if _URL.match(text) or text.startswith(("/", "~", "\\")) or re.match(r"^[A-Za-z]:[\\/]",
                                                                          text):
        return True
    file, _ = split_sheet(text)
    return file.lower().endswith(_FILE_SUFFIXES) or ".." in Path(file).parts


def _file_literal(root: Path, name: str, value: str, files: dict[str, str],
                  sheets: dict[str, pd.DataFrame]) -> str:
    text = value.strip()
    expected = problem_text("query_expected_file")
    if _URL.match(text):
        raise ReadError(Problem(name, "query_outside_workspace",
                                problem_text("query_reads_url", value=repr(value),
                                             expected=expected)))
    if text.startswith(("/", "~", "\\")) or re.match(r"^[A-Za-z]:[\\/]", text):
        raise ReadError(Problem(name, "query_outside_workspace",
                                problem_text("query_reads_absolute", value=repr(value),
                                             expected=expected)))
    file, sheet = split_sheet(text)
    target = (root / file).resolve()
    if target != root and root not in target.parents:
        raise ReadError(Problem(name, "query_outside_workspace",
                                problem_text("query_reads_outside", value=repr(value),
                                             expected=expected)))
    matches = [Path(p) for p in sorted(glob.glob(str(root / file)))] if glob.has_magic(file) \
        else ([target] if target.is_file() else [])
    for path in matches:
        real = path.resolve()
        if real != root and root not in real.parents:
            raise ReadError(Problem(name, "query_outside_workspace",
                                    problem_text("query_reads_link", value=repr(value),
                                                 file=repr(path.name), expected=expected)))
        files[str(path.relative_to(root))] = _sha256(path)
    if not matches:
        present = sorted(p.name for p in root.iterdir() if not p.name.startswith("."))
        raise ReadError(Problem(name, "missing_file",
                                problem_text("query_reads_missing", value=repr(value),
                                             found=", ".join(map(repr, present[:12]))
                                             or problem_text("query_no_files"),
                                             expected=expected)))
    if target.suffix.lower() in SHEET_SUFFIXES:
        view = f"sheet_{len(sheets) + 1}"
        raw = read_sheet(target, sheet, file)
        sheets[view] = pd.DataFrame({column: infer_column(raw.data[column], ".", "iso")
                                     for column in raw.data.columns})
        return f'"{view}"'
    absolute = str(root / file)  # not resolved: DuckDB checks it against the allowed folder
    return "'" + absolute.replace("'", "''") + "'"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _explain(exc: Exception, root: Path) -> str:
    """DuckDB's message, shorter, with the workspace folder written as '.'; what to do."""
    text = str(exc).replace(str(root) + "/", "").strip()
    text = re.sub(r"\s*\n\s*", " ", text)
    kind = type(exc).__name__
    hint = {"ParserException": "query_hint_parser", "BinderException": "query_hint_binder",
            "CatalogException": "query_hint_catalog",
            "PermissionException": "query_hint_permission"}.get(kind, "query_hint_other")
    return problem_text("query_fails", error=text, hint=problem_text(hint))
