"""Exports a client opens in a spreadsheet: ``tables.xlsx`` and CSV files, safe from formulas.

``tables.xlsx`` holds the key tables of a run, one per sheet, formatted the way the report shows
them: headers in the report's language, bold on the client's colour and frozen, sensible column
widths, and number formats per column kind — money with the client's currency symbol where the
language puts it (``"€"#,##0`` in English, ``#,##0 "€"`` in Spanish), percentages, integers,
dates. The cells keep their numeric values, so the client can compute with them.

**Formula injection** (CSV/"spreadsheet" injection, OWASP): a customer called
``=HYPERLINK("http://x","y")`` would become a live formula when a spreadsheet opens the export.
Every string cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is
prefixed with a single quote ``'`` (:func:`neutralise`), and in the workbook it is written as a
string cell, never as a formula. Numbers stay numbers: ``-2.5`` is a negative amount, not text.

Written with openpyxl directly rather than ``DataFrame.to_excel``, because pandas writes any
string starting with ``=`` as a formula and offers no per-column number formats.

**How a run collects the tables.** A workbook cell ends with ``wb.export("xlsx_sheet_costs",
Table(...))`` (:meth:`crmkit.delivery.workbook.Workbook.export`): the table is shown as usual and,
in a run,
kept under ``RUN_DIR/exports/`` by :func:`stage_table` — its frame (only the columns shown) as
parquet, its column spec (message keys and kinds) and sheet title as JSON. After the last
workbook, the runner rebuilds the tables with :func:`staged_tables` and writes ``tables.xlsx``
with :func:`write_workbook`, in the report's language.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import json
import math
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crmkit.core.i18n import Formatter, catalogue, t, value_label
from crmkit.delivery import SECTIONS
from crmkit.delivery.tables import Table
from crmkit.planning import automation

__all__ = [
    "FORMULA_PREFIXES",
    "column_kind",
    "csv_dialect",
    "excel_number_format",
    "neutralise",
    "readable_targets",
    "sheet_names",
    "stage_table",
    "staged_tables",
    "write_csv",
    "write_workbook",
]

#: A string cell starting with one of these is read as a formula by spreadsheets (OWASP).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
SHEET_NAME_MAX = 31
#: Rows of a table written to a sheet of ``tables.xlsx`` at most. A longer one (a customer-level
#: list of a big client; Excel itself holds 1,048,576 rows) is written whole to a CSV beside the
#: workbook, and its sheet keeps the first rows with a line saying so.
SHEET_ROWS_MAX = 50_000


def neutralise(value: Any) -> Any:
    """Prefix ``'`` to a string that a spreadsheet would read as a formula; others unchanged.

    >>> neutralise("=1+1"), neutralise("-2+3"), neutralise(-2.5), neutralise("Ana")
    ("'=1+1", "'-2+3", -2.5, 'Ana')
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def sheet_names(keys: list[str], lang: str | None = None) -> list[str]:
    """Valid, unique sheet names for ``keys``.

    A key that is a message key (e.g. ``xlsx_sheet_costs``) is translated; characters Excel
    forbids (``[]:*?/\\``) become ``_``; names are cut to 31 characters and made unique with a
    ``~2``, ``~3`` … suffix (case-insensitively, as Excel compares them).
    """
    out: list[str] = []
    used: set[str] = set()
    for key in keys:
        name = t(key, lang) if lang and key in catalogue() else str(key)
        name = _SHEET_FORBIDDEN.sub("_", name).strip().strip("'") or "Sheet"
        name = name[:SHEET_NAME_MAX]
        candidate, n = name, 2
        while candidate.lower() in used:
            suffix = f"~{n}"
            candidate = name[:SHEET_NAME_MAX - len(suffix)] + suffix
            n += 1
        used.add(candidate.lower())
        out.append(candidate)
    return out


def excel_number_format(kind: str, fmt: Formatter) -> str | None:
    """The Excel number format of a :class:`~crmkit.delivery.tables.Table` column kind.

    Excel stores formats with ``,`` for thousands and ``.`` for decimals whatever the reader's
    locale (Excel shows them in the reader's own separators); the currency symbol's position
    follows the report's language.
    """
    name, _, decimals = kind.partition(":")
    places = int(decimals) if decimals else None

    def digits(default: int) -> str:
        n = default if places is None else places
        return "#,##0" + ("." + "0" * n if n else "")

    if name == "money":
        symbol = fmt.currency_symbol().replace('"', "")
        if fmt.lang == "es":
            body = f'{digits(0)} "{symbol}"'
        else:
            body = f'"{symbol}"{digits(0)}'
        return f"{body};-{body}"
    if name == "pct":
        n = 1 if places is None else places
        return "0" + ("." + "0" * n if n else "") + "%"
    if name == "number":
        return digits(1)
    if name in ("integer", "score"):
        return "#,##0"
    if name == "date":
        if fmt.locale == "en_US":
            return "mm/dd/yyyy"
        return "dd/mm/yyyy"
    return None


def column_kind(series: pd.Series) -> str:
    """A column kind inferred from a dtype (for plain DataFrames): integer, number, date, text."""
    if pd.api.types.is_bool_dtype(series):
        return "text"
    if pd.api.types.is_integer_dtype(series):
        return "integer"
    if pd.api.types.is_float_dtype(series):
        return "number:2"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "date"
    sample = series.dropna()
    if len(sample) and all(isinstance(v, dt.date) for v in sample.head(20)):
        return "date"
    return "text"


def _cell_value(value: Any) -> Any:
    """A Python value openpyxl can write: numbers, dates, strings (neutralised) or None."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime().replace(tzinfo=None)
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, dt.date):
        return value
    if isinstance(value, list | tuple | set | np.ndarray):
        return neutralise(", ".join(str(v) for v in value))
    return neutralise(str(value))


#: Columns :func:`_map_distinct` maps once per distinct value: all text, or all ``datetime.date``
#: (a date never equals a datetime, nor a number, so no two kinds of value share a key).
_DISTINCT_KINDS = ("string", "date")


def _map_distinct(values: pd.Series, fn) -> list:
    """``[fn(v) for v in values]``, with ``fn`` called once per distinct value when all are text.

    A customer-level column (a million target-list rows) holds a few distinct segment names or
    interests: translating or neutralising each distinct one and spreading the results is the
    same list in a fraction of the time; so is a column of calendar dates (a list's deadline,
    one date for a million rows: 3 s value by value). Columns of other values (numbers mixed
    with text, where ``1`` and ``True`` would share a key) are mapped value by value, as before;
    missing values are always passed to ``fn`` as they are.
    """
    if isinstance(values.dtype, pd.CategoricalDtype) and \
            pd.api.types.infer_dtype(values.cat.categories, skipna=True) in _DISTINCT_KINDS:
        codes, uniques = values.cat.codes.to_numpy(), list(values.cat.categories)
    elif pd.api.types.infer_dtype(values, skipna=True) in _DISTINCT_KINDS:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
    else:
        return [fn(v) for v in values.astype(object)]
    mapped = np.empty(len(uniques) + 1, dtype=object)
    mapped[:-1] = [fn(u) for u in uniques]
    out = mapped[codes]
    missing = np.flatnonzero(codes < 0)
    if len(missing):
        originals = values.astype(object).to_numpy()
        out[missing] = [fn(v) for v in originals[missing]]
    return out.tolist()


def _columns(item: Table | pd.DataFrame, lang: str) -> tuple[pd.DataFrame, list[str], list[str]]:
    """The frame to write, its headers and its column kinds."""
    if isinstance(item, Table):
        frame = item.frame.copy()
        columns = list(item.columns)
        headers = [item.header(c) for c in columns]
        kinds = [item.columns[c][1] for c in columns]
        for column, kind in zip(columns, kinds, strict=True):
            if kind.partition(":")[0] == "label":  # codes from the data, in the language
                frame[column] = _map_distinct(
                    frame[column], lambda v: None if v is None or (isinstance(v, float) and v != v)
                    else value_label(v, item.fmt.lang))
        if item.index:
            frame = frame.reset_index()
            first = frame.columns[0]
            columns = [first, *columns]
            headers = [str(first) if first != "index" else "", *headers]
            kinds = ["text", *kinds]
        return frame[columns], headers, kinds
    frame = item
    if not isinstance(frame.index, pd.RangeIndex) or frame.index.name is not None:
        frame = frame.reset_index()
    frame = frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    messages = catalogue()
    headers = [t(c, lang) if c in messages else c for c in frame.columns]
    kinds = [column_kind(frame[c]) for c in frame.columns]
    return frame, headers, kinds


def _hex(colour: str) -> str:
    return colour.lstrip("#").upper()


def write_workbook(path: str | Path, tables: Mapping[str, Table | pd.DataFrame], fmt: Formatter,
                   *, title: str | None = None, header_color: str = "#1b4965") -> Path:
    """Write ``tables.xlsx``: one formatted sheet per table.

    Parameters
    ----------
    path : path
        The ``.xlsx`` file to write (replaced if it exists).
    tables : mapping of name -> Table or DataFrame
        Sheet name (a message key is translated, see :func:`sheet_names`) to its table. A
        :class:`~crmkit.delivery.tables.Table` gives translated headers and column kinds; a plain
        DataFrame keeps its column names (translated when they are message keys) and gets its
        kinds from its dtypes.
    fmt : Formatter
        Language (headers, currency position, date format) and currency.
    title : str, optional
        The workbook's title (document properties and the printed page header).
    header_color : str
        Fill of the header row, e.g. the client's ``branding.primary_color``.

    Returns
    -------
    Path
    """
    from openpyxl import Workbook
    from openpyxl.cell.cell import TYPE_STRING
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    path = Path(path)
    workbook = Workbook()
    workbook.remove(workbook.active)
    if title:
        workbook.properties.title = title
    names = sheet_names(list(tables), fmt.lang)
    fill = PatternFill("solid", fgColor=_hex(header_color))
    bold = Font(bold=True, color="FFFFFF")
    for name, item in zip(names, tables.values(), strict=True):
        sheet = workbook.create_sheet(name)
        frame, headers, kinds = _columns(item, fmt.lang)
        total = len(frame)
        if total > SHEET_ROWS_MAX:
            # A customer-level table of a big client (a target list of a million customers):
            # the whole of it goes to a CSV beside the workbook, exactly, and the sheet keeps
            # the first rows and says so, rather than taking minutes to write and to open.
            whole = path.with_name(f"{path.stem}-{_STEM_UNSAFE.sub('_', name)}.csv")
            sep, decimal = csv_dialect(fmt.lang)  # as the target lists: a Spanish Excel's
            write_csv(whole, item if isinstance(item, Table) else frame, sep=sep,
                      decimal=decimal)
            frame = frame.iloc[:SHEET_ROWS_MAX]
        widths = []
        for j, header in enumerate(headers, start=1):
            cell = sheet.cell(row=1, column=j, value=neutralise(str(header)))
            cell.data_type = TYPE_STRING
            cell.font, cell.fill = bold, fill
            cell.alignment = Alignment(vertical="center", wrap_text=True)
            widths.append(len(str(header)))
        number_formats = [excel_number_format(k, fmt) for k in kinds]
        shown_widths: dict[tuple[int, type, Any], int] = {}
        for i, row in enumerate(frame.itertuples(index=False, name=None), start=2):
            for j, raw in enumerate(row, start=1):
                value = _cell_value(raw)
                cell = sheet.cell(row=i, column=j, value=value)
                if isinstance(value, str):
                    # Never a formula, whatever openpyxl would infer from the text.
                    cell.data_type = TYPE_STRING
                    widths[j - 1] = max(widths[j - 1], min(len(value), 60))
                elif value is not None:
                    if number_formats[j - 1]:
                        cell.number_format = number_formats[j - 1]
                    shown = shown_widths.get((j, type(value), value))
                    if shown is None:  # formatting is the slow part: once per distinct value
                        shown = _display_width(value, kinds[j - 1], fmt)
                        shown_widths[j, type(value), value] = shown
                    widths[j - 1] = max(widths[j - 1], shown)
        if total > len(frame):
            note = sheet.cell(row=len(frame) + 3, column=1, value=neutralise(t(
                "scale_sheet_rows", fmt.lang, shown=fmt.number(len(frame), 0),
                total=fmt.number(total, 0), file=whole.name)))
            note.data_type = TYPE_STRING
            note.font = Font(italic=True)
        for j, width in enumerate(widths, start=1):
            sheet.column_dimensions[get_column_letter(j)].width = max(8, min(width + 2, 62))
        sheet.freeze_panes = "A2"
        if title:
            sheet.oddHeader.center.text = title.replace("&", "&&")
    if not names:
        workbook.create_sheet("-")
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(path)
    return path


def _display_width(value: Any, kind: str, fmt: Formatter) -> int:
    name = kind.partition(":")[0]
    try:
        if name == "money":
            return len(fmt.money(value))
        if name == "pct":
            return len(fmt.pct(value, 1))
        if name == "date":
            return 10
        if isinstance(value, int | float):
            return len(fmt.number(value, 2 if isinstance(value, float) else 0))
    except (TypeError, ValueError):
        pass
    return len(str(value))


def write_csv(path: str | Path, frame: pd.DataFrame | Table, *, sep: str = ",",
              decimal: str = ".", encoding: str = "utf-8-sig", index: bool = False) -> Path:
    """Write a CSV a spreadsheet can open safely.

    Every string cell (and header) starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
    return is prefixed with ``'`` (:func:`neutralise`); numbers are written as numbers. The
    default encoding writes a UTF-8 byte-order mark so that Excel reads accents correctly; pass
    ``sep=";", decimal=","`` for a Spanish Excel.

    Parameters
    ----------
    path : path
    frame : DataFrame or Table
        A Table is written with translated headers, and its numbers rounded to the decimals it
        shows (money to cents), so that a spreadsheet reads 0.108, not 0.1082008748955516.
    sep, decimal, encoding : str
    index : bool
        Write the index as a first column.
    """
    if isinstance(frame, Table):
        data, headers, kinds = _columns(frame, frame.fmt.lang)
        data = data.copy()
        for column, kind in zip(data.columns, kinds, strict=True):
            places = _csv_places(kind)
            if places is not None and pd.api.types.is_numeric_dtype(data[column]) \
                    and not pd.api.types.is_bool_dtype(data[column]):
                data[column] = data[column].round(places)
        frame = data.set_axis(headers, axis=1)
        index = False
    out = frame.reset_index() if index else frame.copy()
    out.columns = [neutralise(str(c)) for c in out.columns]
    for column in out.columns:
        series = out[column]
        if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_datetime64_any_dtype(series):
            continue
        out[column] = _csv_column(series)
    if decimal != ".":
        for column in out.columns:
            if out[column].dtype == np.float64:  # a float32's str is not its float's
                out[column] = _decimal_text(out[column].to_numpy(), decimal)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # RFC 4180 line ends: the csv writer then quotes any field holding a CR or LF, so a stray
    # carriage return in client text cannot split a row.
    codec = codecs.lookup(encoding).name
    fields = _arrow_fields(out, sep) if codec in ("utf-8", "utf-8-sig") else None
    if fields is not None:
        with path.open("wb") as handle:
            if codec == "utf-8-sig":
                handle.write(codecs.BOM_UTF8)
            handle.write(_csv_header(out.columns, sep).encode("utf-8"))
            for chunk in _csv_rows(fields, sep):
                handle.write(chunk)
    elif codec == "utf-8-sig":
        # The same bytes as encoding="utf-8-sig", but Python's utf-8-sig codec encodes row by
        # row in Python (seconds on a million-row target list); the utf-8 one in C.
        with path.open("w", encoding="utf-8", newline="") as handle:
            handle.write("\ufeff")
            out.to_csv(handle, sep=sep, decimal=decimal, index=False, lineterminator="\r\n")
    else:
        out.to_csv(path, sep=sep, decimal=decimal, encoding=encoding, index=False,
                   lineterminator="\r\n")
    return path


#: Rows :func:`_csv_rows` joins at a time (memory: a few times a chunk's text).
_CSV_CHUNK_ROWS = 200_000


def _arrow_fields(out: pd.DataFrame, sep: str) -> list | None:
    """Each column of ``out`` as the text ``DataFrame.to_csv`` writes for it, or None.

    Why by hand: pandas hands every cell to Python's csv module, 5 s for each of a million-row
    target list's three CSVs; the same text made by pyarrow's string kernels takes a tenth of
    it. The rules are the csv module's (``QUOTE_MINIMAL``): a field holding the separator, a
    double quote, a CR or an LF is quoted, its quotes doubled; a missing value is empty. Only
    the columns whose text is certain are taken: text, whole numbers, and floats when written
    with a decimal point (numpy's ``str``, as pandas); anything else (a lone column, whose
    empty field the csv module quotes; dates, booleans, mixed objects) leaves the whole
    table to pandas. ``tests/inputs/test_big_client.py`` compares both byte for byte.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pa.large_string()
    if out.shape[1] < 2 or not len(out):
        return None
    fields = []
    for column in out.columns:
        series = out[column]
        kind = series.dtype.kind if isinstance(series.dtype, np.dtype) else None
        try:
            if kind in ("i", "u"):
                arr = pc.cast(pa.array(series.to_numpy()), text)
            elif kind == "f" and series.dtype == np.float64:
                arr = pa.array(_decimal_text(series.to_numpy(), "."), type=text)
            elif kind == "O":
                arr = pa.array(series.to_numpy(), type=text, from_pandas=True)
            elif kind is None and pd.api.types.is_string_dtype(series.dtype):
                arr = pa.array(series.array, from_pandas=True)
                arr = pc.cast(arr.combine_chunks() if isinstance(arr, pa.ChunkedArray)
                              else arr, text)
            else:
                return None
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # not all text: pandas writes it
            return None
        arr = pc.fill_null(arr, pa.scalar("", text))
        special = None
        for char in dict.fromkeys((sep, '"', "\r", "\n")):
            found = pc.match_substring(arr, char)
            special = found if special is None else pc.or_(special, found)
        if pc.any(special).as_py():
            quote = pa.scalar('"', text)
            quoted = pc.binary_join_element_wise(
                quote, pc.replace_substring(arr, '"', '""'), quote, pa.scalar("", text))
            arr = pc.if_else(special, quoted, arr)
        fields.append(arr)
    return fields


def _csv_header(columns, sep: str) -> str:
    """The header line as pandas writes it (through the csv module itself)."""
    text = io.StringIO()
    csv.writer(text, delimiter=sep, lineterminator="\r\n").writerow([str(c) for c in columns])
    return text.getvalue()


def _csv_rows(fields: list, sep: str):
    """The bytes of the rows, ``_CSV_CHUNK_ROWS`` at a time: fields joined, CRLF ended."""
    import pyarrow as pa
    import pyarrow.compute as pc

    separator, end, empty = (pa.scalar(v, pa.large_string()) for v in (sep, "\r\n", ""))
    rows = len(fields[0])
    for start in range(0, rows, _CSV_CHUNK_ROWS):
        part = [f.slice(start, _CSV_CHUNK_ROWS) for f in fields]
        lines = pc.binary_join_element_wise(
            pc.binary_join_element_wise(*part, separator), empty, end)
        offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64,
                                count=len(lines) + 1, offset=8 * lines.offset)
        yield memoryview(lines.buffers()[2])[offsets[0]:offsets[-1]]


def csv_dialect(lang: str) -> tuple[str, str]:
    """``(sep, decimal)`` of a CSV for a spreadsheet in ``lang``: a Spanish Excel reads ``;``
    and a decimal comma, an English one ``,`` and a point."""
    return (";", ",") if lang == "es" else (",", ".")


def _decimal_text(values: np.ndarray, decimal: str) -> np.ndarray:
    """A float column as ``to_csv(decimal=...)`` writes it: each value's ``str`` with its point
    made ``decimal``, a missing value empty. pandas does the same through a formatter called
    once per value (9 s for the two target lists of a million customers; this, under half a
    second a million values)."""
    missing = np.isnan(values)
    text = np.array([str(v).replace(".", decimal, 1) for v in values.tolist()], dtype=object)
    text[missing] = ""
    return text


def _csv_places(kind: str) -> int | None:
    """Decimals a Table column keeps in a CSV: those it shows (a share keeps two more, being a
    fraction: 0.108 is the "10.8 %" shown); None leaves the value as it is."""
    name, _, decimals = kind.partition(":")
    places = int(decimals) if decimals else None
    if name == "money":
        return 2 if places is None else places
    if name == "pct":
        return (1 if places is None else places) + 2
    if name == "number":
        return 1 if places is None else places
    if name in ("integer", "score"):
        return 0
    return None


def _csv_column(series: pd.Series) -> list | pd.Series:
    """:func:`_csv_text` of every value of a column; vectorised for a column of text alone."""
    if isinstance(series.dtype, pd.CategoricalDtype) or \
            pd.api.types.infer_dtype(series, skipna=True) != "string":
        return _map_distinct(series, _csv_text)
    # kept as pandas' text (Arrow strings): the CSV is written from them without a copy
    text = series.astype("str")
    risky = text.str.startswith(FORMULA_PREFIXES).fillna(False)
    return text.where(~risky, "'" + text) if risky.any() else text


def _csv_text(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool):
        return value
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple | set | np.ndarray):
        value = ", ".join(str(v) for v in value)
    return neutralise(str(value))


# --------------------------------------------------------------------------------------------
# Tables kept by the workbooks of a run for tables.xlsx
# --------------------------------------------------------------------------------------------

#: Where a run keeps the exported tables, inside the run folder.
STAGED_DIR = "exports"
_STEM_UNSAFE = re.compile(r"[^A-Za-z0-9_]+")


def _parquet_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with text columns that pyarrow cannot type (mixed objects) made strings."""
    import pyarrow as pa

    out = frame.copy()
    for column in out.columns:
        if out[column].dtype != object:
            continue
        try:
            pa.array(out[column], from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            out[column] = [None if v is None or v is pd.NA or (isinstance(v, float) and v != v)
                           else str(v) for v in out[column]]
    return out


def stage_table(table: Table, folder: str | Path, *, sheet: str, section: str,
                number: int) -> Path:
    """Keep one table of a workbook for ``tables.xlsx``.

    Writes ``<section>-<number>-<sheet>.parquet`` (the frame's shown columns, renamed ``c0``,
    ``c1`` … so that any column label survives, and the index first when the table shows it) and
    a ``.json`` beside it: the sheet's message key and title, the section, the order of staging,
    and per column its label, message key and kind.

    Parameters
    ----------
    table : Table
    folder : path
        ``RUN_DIR/exports``.
    sheet : str
        The sheet's message key (e.g. ``xlsx_sheet_costs``), or a title of its own.
    section : str
        The workbook's section in ``results.json``.
    number : int
        The table's number within its workbook.

    Returns
    -------
    Path
        The JSON file.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    frame = table.frame
    columns = list(table.columns)
    data = pd.DataFrame({f"c{i}": frame[c].reset_index(drop=True)
                         for i, c in enumerate(columns)}, index=pd.RangeIndex(len(frame)))
    index_name = None
    if table.index:
        index_name = "" if frame.index.name is None else str(frame.index.name)
        data.insert(0, "index", frame.index.to_numpy())
    stem = f"{section}-{number:02d}-{_STEM_UNSAFE.sub('_', sheet)[:40]}"
    _parquet_ready(data).to_parquet(folder / f"{stem}.parquet", index=False)
    title = t(sheet, table.fmt.lang) if sheet in catalogue() else sheet
    spec = {"sheet": sheet, "title": title, "section": section, "number": number,
            "order": time.time_ns(), "index": index_name, "caption": table.caption,
            "columns": [{"column": f"c{i}", "label": str(c), "key": table.columns[c][0],
                         "kind": table.columns[c][1]} for i, c in enumerate(columns)]}
    path = folder / f"{stem}.json"
    path.write_text(json.dumps(spec, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def staged_tables(folder: str | Path, fmt: Formatter) -> dict[str, Table]:
    """The tables the workbooks of a run kept with :func:`stage_table`, in the order they did.

    Parameters
    ----------
    folder : path
        ``RUN_DIR/exports`` (missing: no tables).
    fmt : Formatter
        The report's language and currency: headers and sheet titles are translated into it.

    Returns
    -------
    dict of sheet title -> Table
        Ready for :func:`write_workbook`; a title used twice gets `` (2)``, `` (3)`` ….
    """
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    specs = [json.loads(p.read_text(encoding="utf-8")) | {"_stem": p.stem}
             for p in folder.glob("*.json")]
    # workbooks may run side by side: their own order, then each one's order of export
    specs.sort(key=lambda s: (SECTIONS.index(s["section"]) if s["section"] in SECTIONS
                              else len(SECTIONS), s["order"], s["number"]))
    messages = catalogue()
    out: dict[str, Table] = {}
    for spec in specs:
        data = pd.read_parquet(folder / f"{spec['_stem']}.parquet")
        if spec["index"] is not None:
            data = data.set_index("index").rename_axis(spec["index"] or None)
        columns = {c["column"]: (c["key"], c["kind"]) for c in spec["columns"]}
        sheet = spec["sheet"]
        title = t(sheet, fmt.lang) if sheet in messages else spec["title"]
        name, n = title, 2
        while name in out:
            name, n = f"{title} ({n})", n + 1
        out[name] = Table(data, fmt, columns, caption=spec.get("caption"),
                          index=spec["index"] is not None)
    return out


def readable_targets(frame: pd.DataFrame, fmt: Formatter,
                     level_2: automation.Level2 | None = None, *,
                     names: Mapping[str, str] | None = None) -> pd.DataFrame:
    """A target list as the client reads it: segment names, not keys (``Loyal``, not
    ``loyal``), and interests in the language (:func:`crmkit.core.i18n.value_label`).

    Parameters
    ----------
    frame : DataFrame
        ``level1(...).targets``, ``level2(...).targets`` or :func:`~crmkit.planning.automation.
        target_list` (not changed).
    fmt : Formatter
    level_2 : Level2, optional
        Its ``segments`` give the names of the segments; ``names`` (segment key -> name) adds
        to them, and a key without a name is kept as it is.
    """
    known = {}
    if level_2 is not None and {"segment", "segment_name"} <= set(level_2.segments.columns):
        known = dict(zip(level_2.segments["segment"].astype(str),
                         level_2.segments["segment_name"].astype(str), strict=True))
    known.update({str(k): str(v) for k, v in (names or {}).items()})
    frame = frame.copy()
    if "segment_name" in frame.columns and "segment" in frame.columns:
        frame["segment"] = frame["segment_name"].where(frame["segment_name"].notna(),
                                                       frame["segment"])
    elif "segment" in frame.columns:
        frame["segment"] = _map_distinct(
            frame["segment"], lambda v: known.get(str(v), v) if v is not None else v)
    if "interest" in frame.columns:
        frame["interest"] = _map_distinct(
            frame["interest"], lambda v: v if v is None or (isinstance(v, float) and v != v)
            else value_label(v, fmt.lang))
    return frame


def save_target_lists(folder: str | Path | None, level_1: automation.Level1,
                      level_2: automation.Level2 | None,
                      fmt: Formatter, *, names: Mapping[str, str] | None = None
                      ) -> dict[str, Path]:
    """Write the target lists as CSV files a spreadsheet or campaign tool opens safely.

    ``level1.csv`` (who gets which message) and, with level 2, ``level2.csv`` (who gets which
    coupon), headers in ``fmt``'s language, through :func:`write_csv`: any
    client
    text a spreadsheet would read as a formula (a customer id ``=HYPERLINK(…)``) is neutralised.
    Spanish lists use ``;`` and a decimal comma, as a Spanish Excel expects. The client reads
    segment names, not keys, and interests in the language (:func:`readable_targets`).

    Parameters
    ----------
    folder : path or None
        Where to write (``RUN_DIR/target_lists``); None writes nothing (no run folder).
    level_1, level_2 : Level1, Level2
    fmt : Formatter
    names : mapping of segment key -> name, optional
        The segments' names in the report's language; by default those level 2 gives, and a
        key without a name is written as it is.

    Returns
    -------
    dict of name -> Path
    """
    if folder is None:
        return {}
    folder = Path(folder)
    sep, decimal = csv_dialect(fmt.lang)

    def table(frame: pd.DataFrame, columns: dict) -> Table:
        frame = readable_targets(frame, fmt, level_2, names=names)
        return Table(frame, fmt, {c: v for c, v in columns.items() if c in frame.columns})

    lists = {"level1": table(level_1.targets, automation.LEVEL1_TARGET_COLUMNS)}
    if level_2 is not None:
        lists["level2"] = table(level_2.targets, automation.LEVEL2_TARGET_COLUMNS)
    return {name: write_csv(folder / f"{name}.csv", table, sep=sep, decimal=decimal)
            for name, table in lists.items()}
