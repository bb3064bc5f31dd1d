"""Reading CSV files the way clients really export them.

A client's export comes out of an ERP, a spreadsheet or a web shop, in the locale of whoever ran
it: comma or semicolon (sometimes tab) separated, decimal point or decimal comma with thousands
separators (``1.234,56``), UTF-8 with or without a byte-order mark or Windows-1252/Latin-1
(``Nº Cliente``), dates as ``2024-03-05``, ``05/03/2024``, ``5-3-2024`` or ``05.03.2024``,
sometimes with a time of day. Everything that ``client.yaml`` does not state under ``csv:`` is
detected per file and recorded as a :class:`Dialect`.

Why detection is written by hand rather than left to pandas: ``pandas.read_csv`` can sniff a
separator (python engine only, slowly), but it guesses neither the encoding, nor a decimal comma,
nor whether ``05/03/2024`` is the 5th of March; its ``dayfirst`` parsing silently swaps day and
month when a value does not fit, and its numeric inference silently turns a malformed amount into
text or NaN. We need the opposite: every cell read as the text found in the file, a decision per
file that can be explained and overridden in ``client.yaml``, and every value that does not fit
reported with its line number and the value as found. So the file is decoded here, split by the
fast C parser into text columns, and numbers and dates are parsed with explicit, vectorised
(pyarrow regular expression) rules.

The functions here know nothing of the workspace: :mod:`crmkit.inputs.workspace` maps the client's
headers to canonical columns and turns what fails here into :class:`~crmkit.core.problems.Problem`s.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crmkit.core.problems import (
    EXAMPLES_SHOWN,
    LANGUAGE,
    Problem,
    ProblemList,
    WorkspaceError,
    problem_text,
)
from crmkit.settings.client import PARQUET_SUFFIXES, SHEET_SUFFIXES, CsvOptions

#: Separators tried, in order of preference when the evidence is even.
SEPARATORS = (";", ",", "\t", "|")
#: The separator setting for runs of spaces or tabs (``csv.separator: whitespace``).
WHITESPACE = "whitespace"
#: Lines looked at to detect the separator.
SNIFF_LINES = 50
#: Values per column looked at to detect the decimal mark.
SNIFF_VALUES = 20_000

_ENCODING_NAMES = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 with BOM",
    "cp1252": "Windows-1252/Latin-1",
    "iso8859-1": "Latin-1",
    "utf-16": "UTF-16",
}
_SEPARATOR_NAMES = {";": "';'", ",": "','", "\t": "tab", "|": "'|'", WHITESPACE: "whitespace"}
_FORMAT_NAMES = {
    "xlsx": "Excel workbook (.xlsx)",
    "xlsm": "Excel workbook (.xlsm)",
    "xls": "old Excel workbook (.xls)",
    "ods": "OpenDocument spreadsheet (.ods)",
    "parquet": "Parquet file",
}


@dataclass(frozen=True)
class Dialect:
    """How one CSV file is written, as detected (or as set in ``client.yaml``).

    Attributes
    ----------
    encoding : str
        Codec the file was decoded with: ``"utf-8"``, ``"utf-8-sig"`` (UTF-8 with a byte-order
        mark), ``"cp1252"`` (Windows-1252, a superset of Latin-1 for text), ``"utf-16"`` or the
        codec named in ``client.yaml``.
    separator : str
        Field separator: ``";"``, ``","``, ``"\\t"``, ``"|"`` or ``"whitespace"`` (runs of
        spaces or tabs).
    decimal : str
        Decimal mark of numbers, ``"."`` or ``","``; the other one is accepted as a thousands
        separator (as are spaces).
    date_format : str or None
        ``"iso"``, ``"dayfirst"``, ``"monthfirst"`` or ``"yyyymmdd"``; None when the file has
        no dates.
    configured : frozenset of str
        Which of the above were set in ``client.yaml`` rather than detected.
    format : str
        ``"csv"`` for text; ``"xlsx"``, ``"xlsm"``, ``"xls"``, ``"ods"`` or ``"parquet"`` for
        typed cells, which are written as text by crmkit: numbers with a decimal point (whole
        ones without decimals), dates as ISO ``2024-03-05`` (so the encoding, separator and
        decimal settings of ``csv:`` do not apply).
    sheet : str or None
        The sheet read, for a workbook.
    decimals : tuple of (str, str)
        ``(header, mark)`` of the numeric columns written with the other decimal mark than
        ``decimal`` (a ``;`` file with the amount in decimal comma and the margin in decimal
        point): detected per column.
    """

    encoding: str
    separator: str
    decimal: str = "."
    date_format: str | None = None
    configured: frozenset[str] = field(default_factory=frozenset)
    format: str = "csv"
    sheet: str | None = None
    decimals: tuple[tuple[str, str], ...] = ()

    @property
    def typed(self) -> bool:
        """True when the values come from typed cells (a workbook or a Parquet file)."""
        return self.format != "csv"

    @property
    def thousands(self) -> str:
        """The thousands separator that goes with the decimal mark."""
        return "." if self.decimal == "," else ","

    def describe(self, lang: str = "en") -> str:
        """One line in the language, e.g. ``"UTF-8, ';'-separated, decimal comma"``."""
        from crmkit.core.i18n import t

        if self.typed:
            key = f"check_dialect_format_{self.format}"
            text = t(key, lang) if self.format in _FORMAT_NAMES or self.format == "query" \
                else self.format
            return text + (", " + t("check_dialect_sheet", lang, sheet=self.sheet)
                           if self.sheet else "")
        encoding = (t("check_dialect_utf8_bom", lang) if self.encoding == "utf-8-sig"
                    else _ENCODING_NAMES.get(self.encoding, self.encoding))
        separator = {WHITESPACE: t("check_dialect_whitespace", lang),
                     "\t": t("check_dialect_tab", lang)}.get(
            self.separator, _SEPARATOR_NAMES.get(self.separator, repr(self.separator)))
        parts = [
            encoding,
            t("check_dialect_separated", lang, separator=separator),
            t("check_dialect_decimal_comma" if self.decimal == "," else
              "check_dialect_decimal_point", lang),
        ]
        if self.decimals:
            marks = ", ".join(
                f"{column} " + t("check_dialect_decimal_comma" if mark == "," else
                                 "check_dialect_decimal_point", lang)
                for column, mark in self.decimals)
            parts.append(t("check_dialect_decimal_columns", lang, columns=marks))
        if self.date_format:
            parts.append(t(f"check_dialect_dates_{self.date_format}", lang))
        return ", ".join(parts)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form, for ``run.json``."""
        return {
            "encoding": self.encoding,
            "separator": self.separator,
            "decimal": self.decimal,
            "date_format": self.date_format,
            "configured": sorted(self.configured),
            "format": self.format,
            "sheet": self.sheet,
            "decimals": [list(pair) for pair in self.decimals],
        }


class ReadError(Exception):
    """A file cannot be read as a table at all (binary, undecodable, empty, malformed)."""

    def __init__(self, problem: Problem):
        self.problem = problem
        super().__init__(problem.render())


@dataclass
class RawTable:
    """A CSV file split into text columns, before any value is interpreted.

    Attributes
    ----------
    file : str
        File name, as used in problems.
    header : list of str
        Column names as found in the file, stripped of whitespace and byte-order mark.
    data : pandas.DataFrame
        One text column per header entry (every cell as found, unstripped), named like ``header``
        (a repeated or empty name gets a suffix). Rows that are entirely empty are dropped.
    lines : numpy.ndarray
        Line number in the file of each row of ``data`` (the header is line 1).
    dialect : Dialect
        Encoding and separator; the decimal mark and date format are settled by the caller.
    sha256 : str
        Hex digest of the raw bytes.
    problems : ProblemList
        Problems met while splitting (rows with more fields than the header).
    """

    file: str
    header: list[str]
    data: pd.DataFrame
    lines: np.ndarray
    dialect: Dialect
    sha256: str
    problems: ProblemList = field(default_factory=ProblemList)


# --------------------------------------------------------------------------------------------
# Bytes to text


def sha256_of(raw: bytes) -> str:
    """Hex sha256 digest of ``raw``."""
    return hashlib.sha256(raw).hexdigest()


def decode(raw: bytes, encoding: str | None = None) -> tuple[str, str]:
    """Decode a file's bytes, detecting the encoding when not given.

    Parameters
    ----------
    raw : bytes
        The file's content.
    encoding : str, optional
        Codec to use (from ``client.yaml``). When None: a UTF-16 byte-order mark means UTF-16;
        otherwise strict UTF-8 (with or without BOM) is tried, then strict Windows-1252.

    Returns
    -------
    text, encoding : str, str
        The text without byte-order mark, and the codec used.

    Raises
    ------
    UnicodeDecodeError
        When the bytes are not text in the given codec (or in any detected one).
    LookupError
        When ``encoding`` is not a known codec.
    """
    if encoding:
        name = codecs.lookup(encoding).name
        if name == "utf-8" and raw.startswith(codecs.BOM_UTF8):
            name = "utf-8-sig"
        return raw.decode(name).lstrip("\ufeff"), name
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16"), "utf-16"
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252"), "cp1252"
    return text, ("utf-8-sig" if raw.startswith(codecs.BOM_UTF8) else "utf-8")


def _binary_kind(raw: bytes) -> str | None:
    head = raw[:8192]
    if head.startswith(b"PK\x03\x04"):
        return problem_text("read_kind_zip")
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return problem_text("read_kind_xls")
    if head.startswith(b"%PDF"):
        return problem_text("read_kind_pdf")
    if b"\x00" in head and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return problem_text("read_kind_binary")
    return None


# --------------------------------------------------------------------------------------------
# Text to columns


def detect_separator(text: str) -> str:
    """Guess the field separator from the first lines of a CSV text.

    Each candidate (``;``, ``,``, tab, ``|``) splits the first :data:`SNIFF_LINES` lines with the
    csv module (so separators inside quotes do not count). The winner gives the header more
    than one field and the most rows with as many fields as the header; then the most fields.
    When none of them splits the header, or the text has no ``,;|`` and tabs split it
    unevenly, runs of whitespace (``"whitespace"``) are offered if they split every line into
    the same number of fields (more than one).

    Parameters
    ----------
    text : str
        The decoded file.

    Returns
    -------
    str
        The separator; ``","`` when nothing splits the header.
    """
    head = text[:200_000].splitlines()[:SNIFF_LINES]
    sample = [line for line in head if line.strip()]
    if not sample:
        return ","
    best, best_score = ",", (False, -1.0, 0)
    for sep in SEPARATORS:
        try:
            rows = list(csv.reader(sample, delimiter=sep))
        except csv.Error:
            continue
        width = len(rows[0])
        data = rows[1:]
        consistent = (sum(len(r) == width for r in data) / len(data)) if data else 1.0
        score = (width > 1, consistent, width)
        if score > best_score:
            best, best_score = sep, score
    if not best_score[0] or (best_score[1] < 1 and not any(c in "".join(sample) for c in ",;|")):
        widths = [len(_whitespace_fields(line)) for line in sample]
        if widths[0] > 1 and all(w == widths[0] for w in widths) and len(widths) > 1:
            return WHITESPACE
    return best if best_score[0] else ","


def _whitespace_fields(line: str) -> list[str]:
    """The fields of a whitespace-separated line (double quotes group a value with spaces)."""
    try:
        return next(csv.reader([re.sub(r"[ \t]+", " ", line.strip())], delimiter=" "))
    except (csv.Error, StopIteration):
        return line.split()


def read_table(path: str | Path, options: CsvOptions | None = None,
               file: str | None = None, sheet: str | None = None) -> RawTable:
    """Read a CSV file (or a workbook's sheet, or a Parquet file) into text columns.

    The file is opened read-only and never modified. Every cell stays text, exactly as found
    (after CSV unquoting), so that values that fail to parse later can be shown as found.
    Encoding and separator are detected unless ``options`` says. A file ending in ``.xlsx``,
    ``.xlsm``, ``.xls`` or ``.ods`` is read by :func:`read_sheet`, one ending in ``.parquet``
    by :func:`read_parquet` (``options`` do not apply to them); any other as text.

    Parameters
    ----------
    path : str or Path
        The file.
    options : CsvOptions, optional
        ``csv:`` of ``client.yaml``; what it leaves out is detected.
    file : str, optional
        Name used in problems (default: the file name).
    sheet : str, optional
        For a workbook: the sheet to read (default: the first one).

    Returns
    -------
    RawTable

    Raises
    ------
    ReadError
        When the file cannot be read, is binary, cannot be decoded, has no header, or is not
        valid CSV (an unclosed quote); for a workbook, also when the sheet does not exist.
    """
    path = Path(path)
    options = options or CsvOptions()
    name = file or path.name
    suffix = path.suffix.lower()
    if suffix in SHEET_SUFFIXES:
        return read_sheet(path, sheet, name)
    if suffix in PARQUET_SUFFIXES:
        return read_parquet(path, name)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ReadError(Problem(name, "unreadable_file",
                                problem_text("read_unreadable", error=exc.strerror or exc,
                                             expected=problem_text("read_expected_csv"))
                                )) from None
    digest = sha256_of(raw)
    kind = _binary_kind(raw)
    if kind:
        raise ReadError(Problem(name, "binary_file", problem_text("read_binary", kind=kind)))
    configured: set[str] = set()
    try:
        text, encoding = decode(raw, options.encoding)
    except LookupError:
        # An unknown codec name is reported against client.yaml by the caller; detect instead.
        text, encoding = decode(raw, None)
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        bad = raw[exc.start:exc.start + 1]
        expected = (problem_text("read_expected_encoding_set", encoding=options.encoding)
                    if options.encoding else problem_text("read_expected_encoding"))
        raise ReadError(Problem(name, "undecodable_file",
                                problem_text("read_undecodable", byte=bad.hex(), line=line,
                                             expected=expected), rows=[line],
                                examples=[bad.decode("latin-1")])) from None
    else:
        if options.encoding:
            configured.add("encoding")

    first_line = 1
    skipped = _bom_bytes(raw, text) if encoding in ("utf-8", "utf-8-sig") else None
    match = re.match(r"[ \t]*sep=(.)[ \t]*\r?\n", text)  # Excel's "sep=;" first line
    if match:
        text = text[match.end():]
        first_line = 2
        if skipped is not None:
            skipped += len(match.group(0).encode("utf-8"))
    if not text or text.isspace():  # (strip() would copy a gigabyte to say no)
        if not options.header:
            raise ReadError(Problem(name, "empty_file", problem_text("check_empty_file")))
        raise ReadError(Problem(name, "empty_file", problem_text("check_empty_no_header")))
    if options.separator:
        separator = options.separator
        configured.add("separator")
    elif match and match.group(1) in SEPARATORS:
        separator = match.group(1)
    else:
        separator = detect_separator(text)
    dialect = Dialect(encoding=encoding, separator=separator, configured=frozenset(configured))
    names = None if options.header else list(options.names or [])
    # UTF-8 text is its own bytes: the splitter reads the file's, rather than encoding anew
    encoded = None if skipped is None else _Bytes.trimmed(raw, skipped)
    header, data, lines, problems = _split(text, separator, name, first_line, names, encoded)
    return RawTable(file=name, header=header, data=data, lines=lines, dialect=dialect,
                    sha256=digest, problems=problems)


def _bom_bytes(raw: bytes, text: str) -> int:
    """How many bytes of byte-order marks lead ``raw`` but not ``text``, its UTF-8 decoding."""
    in_raw = 0
    while raw.startswith(codecs.BOM_UTF8, 3 * in_raw):
        in_raw += 1
    in_text = 0
    while text.startswith("\ufeff", in_text):
        in_text += 1
    return 3 * (in_raw - in_text)


@dataclass(frozen=True)
class _Bytes:
    """``raw[start:stop]`` without the copy: a file of a gigabyte is split where it was read."""

    raw: bytes
    start: int
    stop: int

    @classmethod
    def trimmed(cls, raw: bytes, start: int = 0) -> _Bytes:
        """``raw[start:]`` without its final line breaks (as ``rstrip(b"\r\n")``)."""
        stop = len(raw)
        while stop > start and raw[stop - 1] in b"\r\n":
            stop -= 1
        return cls(raw, start, stop)

    def count(self, sub: bytes) -> int:
        return self.raw.count(sub, self.start, self.stop)

    def buffer(self) -> pa.Buffer:
        return pa.py_buffer(self.raw).slice(self.start, self.stop - self.start)

    def array(self) -> np.ndarray:
        return np.frombuffer(self.raw, dtype=np.uint8, count=self.stop - self.start,
                             offset=self.start)

    def piece(self, start: int, stop: int) -> bytes:
        return self.raw[self.start + start:self.start + stop]


def _split(text: str, sep: str, name: str, first_line: int, names: list[str] | None = None,
           encoded: _Bytes | None = None
           ) -> tuple[list[str], pd.DataFrame, np.ndarray, ProblemList]:
    """Split text into a header and text columns, with the file line number of every row.

    ``names``: the column names of a file without a header line (its first line is data).
    ``encoded``: ``text.rstrip("\r\n")`` in UTF-8, when the caller has it.
    """
    if encoded is None:
        encoded = _Bytes.trimmed(text.rstrip("\r\n").encode("utf-8"))
    n_lines = encoded.count(b"\n") + 1
    frame = None
    record_lines = None
    carriage_returns = encoded.count(b"\r")
    if not carriage_returns or carriage_returns == encoded.count(b"\r\n"):
        # (lone CRs: the csv module counts the lines)
        if sep != WHITESPACE:
            frame = _split_by_arrow(encoded, sep, n_lines)
        if frame is None:
            try:
                frame = pd.read_csv(io.BytesIO(encoded.buffer()),
                                    sep=r"\s+" if sep == WHITESPACE else sep,
                                    header=None,
                                    dtype=str, keep_default_na=False, na_filter=False,
                                    index_col=False, engine="c", quotechar='"',
                                    skip_blank_lines=True, encoding="utf-8")
            except (pd.errors.ParserError, ValueError, UnicodeError):
                frame = None
    if frame is not None:
        if len(frame) == n_lines:  # one record per line: line numbers are positional
            record_lines = np.arange(1, n_lines + 1, dtype=np.int64)
        else:  # blank lines, which the C parser skips, or quoted line breaks
            record_lines = _non_blank_lines(encoded, sep)
            if len(record_lines) != len(frame):  # quoted line breaks: the csv module counts
                record_lines = None
    problems = ProblemList()
    if frame is not None and record_lines is not None and names is not None:
        header = list(names) + [""] * (frame.shape[1] - len(names))
        data = frame.set_axis(range(frame.shape[1]), axis=1)
        for i in range(frame.shape[1], len(names)):  # fewer fields than names: empty columns
            data[i] = ""
        lines = record_lines + (first_line - 1)
    elif frame is not None and record_lines is not None:
        header = [str(v) for v in frame.iloc[0].tolist()]
        data = frame.iloc[1:].reset_index(drop=True)
        lines = record_lines[1:] + (first_line - 1)
    else:
        header, rows, row_lines = _split_slowly(text.rstrip("\r\n"), sep, name, first_line,
                                                problems, names)
        data = pd.DataFrame(rows, columns=range(len(header)), dtype=str) if rows else \
            pd.DataFrame({i: pd.Series([], dtype=str) for i in range(len(header))})
        lines = np.asarray(row_lines, dtype=np.int64)
    header, data, lines = _finish(header, data, lines)
    return header, data, lines, problems


def _split_by_arrow(encoded: _Bytes, sep: str, n_lines: int) -> pd.DataFrame | None:
    """Text columns by pyarrow's multithreaded CSV reader; None when it is not the exact answer.

    pyarrow splits a big export several times faster than pandas' C parser (it uses every core
    and hands over Arrow strings, the storage of pandas' ``str`` columns, without a copy), with
    the same rules for the common case: double quotes, doubled quotes inside them, every cell
    kept as text, empty cells as "". It is taken only when it finds one record per line of the
    file, as many fields in each as in the first: blank lines, rows of another width or a bad
    quote leave it to pandas' parser and the csv module, whose handling (and line numbers) the
    problems report.
    """
    import pyarrow.csv as pacsv

    try:
        table = pacsv.read_csv(
            encoded.buffer(),
            read_options=pacsv.ReadOptions(autogenerate_column_names=True,
                                           block_size=16 << 20),
            parse_options=pacsv.ParseOptions(delimiter=sep, quote_char='"', double_quote=True,
                                             escape_char=False, newlines_in_values=True,
                                             ignore_empty_lines=True),
            convert_options=pacsv.ConvertOptions(
                column_types=_AllText(), strings_can_be_null=False,
                quoted_strings_can_be_null=False, null_values=[]))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
        return None
    if table.num_rows != n_lines:
        return None
    return pd.DataFrame({i: pd.Series(column, dtype="str", copy=False)
                         for i, column in enumerate(table.columns)})


class _AllText(dict):
    """``ConvertOptions.column_types`` that reads every column as text (names f0, f1, ...)."""

    def __init__(self, width: int = 4096):
        super().__init__({f"f{i}": pa.string() for i in range(width)})


def _finish(header: list[str], data: pd.DataFrame, lines: np.ndarray
            ) -> tuple[list[str], pd.DataFrame, np.ndarray]:
    """Drop empty rows and unnamed empty columns; clean and de-duplicate the column names."""
    # Rows without any value (";;;" lines some spreadsheets leave at the end) carry nothing.
    if len(data):
        # Column after column, only the rows still blank in every column before are looked at:
        # after the first column (a customer id, a date) there are few or none left.
        still = np.arange(len(data))
        for col in data.columns:
            if not len(still):
                break
            values = data[col] if len(still) == len(data) else data[col].iloc[still]
            still = still[_np_bool(pc.equal(pc.utf8_trim_whitespace(_arrow(values)), ""))]
        empty = np.zeros(len(data), dtype=bool)
        empty[still] = True
        if empty.any():
            data = data.loc[~empty].reset_index(drop=True)
            lines = lines[~empty]
    names = _column_names(header, data)
    keep = [i for i, n in enumerate(names) if n is not None]
    data = data.iloc[:, keep].set_axis([names[i] for i in keep], axis=1)
    header = [header[i] for i in keep]
    return header, data, lines


def _non_blank_lines(encoded: _Bytes, sep: str) -> np.ndarray:
    """1-based numbers of the lines holding more than whitespace.

    Only lines that start with whitespace (few, usually) are looked at one by one.
    """
    data = encoded.array()
    ends = np.flatnonzero(data == ord("\n"))
    starts = np.concatenate(([0], ends + 1))
    stops = np.concatenate((ends, [len(data)]))
    whitespace = b" \r" + (b"" if sep == "\t" else b"\t")
    first = np.full(len(starts), ord("\n"), dtype=np.uint8)  # an empty line
    filled = starts < stops
    first[filled] = data[starts[filled]]
    blank = np.zeros(len(starts), dtype=bool)
    for i in np.flatnonzero(np.isin(first, list(whitespace + b"\n"))):
        blank[i] = not encoded.piece(starts[i], stops[i]).strip(whitespace)
    return np.flatnonzero(~blank).astype(np.int64) + 1


def _split_slowly(body: str, sep: str, name: str, first_line: int, problems: ProblemList,
                  names: list[str] | None = None
                  ) -> tuple[list[str], list[list[str]], list[int]]:
    """The csv-module path: quoted line breaks, blank lines, rows with too many fields."""
    delimiter = sep
    if sep == WHITESPACE:  # runs of spaces or tabs become one space; line breaks are kept
        body = re.sub(r"[ \t]+", " ", re.sub(r"(?m)^[ \t]+|[ \t]+(?=\r?$)", "", body))
        delimiter = " "
    reader = csv.reader(io.StringIO(body, newline=""), delimiter=delimiter, quotechar='"',
                        strict=True)
    header: list[str] | None = list(names) if names is not None else None
    width = len(header) if header is not None else 0
    rows: list[list[str]] = []
    lines: list[int] = []
    long_rows: list[tuple[int, int, str]] = []
    previous = 0
    start = 1
    try:
        for record in reader:
            start, previous = previous + 1, reader.line_num
            if not record or not any(f.strip() for f in record):
                continue
            if header is None:
                header = [f for f in record]
                width = len(header)
                continue
            if len(record) > width and any(f.strip() for f in record[width:]):
                long_rows.append((start + first_line - 1, len(record), sep.join(record)))
                continue
            if len(record) != width:
                record = (record + [""] * width)[:width]
            rows.append(record)
            lines.append(start + first_line - 1)
    except csv.Error as exc:
        line = previous + first_line  # the record after the last one read
        what = (problem_text("check_unclosed_quote") if "end of data" in str(exc)
                else problem_text("check_malformed_detail", error=str(exc)))
        raise ReadError(Problem(name, "malformed_csv",
                                problem_text("check_malformed_csv", what=what, line=line),
                                rows=[line])) from None
    if header is None or (names is not None and not rows and not long_rows):
        raise ReadError(Problem(name, "empty_file", problem_text("check_empty_no_header")))
    if long_rows:
        sep_name = _SEPARATOR_NAMES.get(sep, repr(sep))
        counts = sorted({n for _, n, _ in long_rows})
        problems.add(name, "too_many_fields",
                     problem_text("check_too_many_fields", counts=", ".join(map(str, counts)),
                                  sep=sep_name, expected=str(len(header))),
                     rows=[r[0] for r in long_rows[:EXAMPLES_SHOWN]],
                     examples=[_clip(r[2]) for r in long_rows[:EXAMPLES_SHOWN]],
                     count=len(long_rows))
    return header, rows, lines


def _column_names(header: list[str], data: pd.DataFrame) -> list[str | None]:
    """Stripped, unique column names; None for empty-named columns without any value."""
    names: list[str | None] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(header):
        name = clean_header(raw)
        header[i] = name
        if not name:
            column = data.iloc[:, i]
            if not len(column) or not _np_bool(
                    pc.not_equal(pc.utf8_trim_whitespace(_arrow(column)), "")).any():
                names.append(None)
                continue
            name = f"column {i + 1}"
        if name in seen:
            seen[name] += 1
            name = f"{name} ({seen[name]})"
        else:
            seen[name] = 1
        names.append(name)
    return names


# --------------------------------------------------------------------------------------------
# Workbooks and Parquet files: typed cells, written as the text a CSV export would hold


def read_sheet(path: str | Path, sheet: str | None = None, file: str | None = None) -> RawTable:
    """Read one sheet of a workbook (.xlsx, .xlsm, .xls, .ods) into text columns.

    The workbook is read with python-calamine. The header is the first row holding any value;
    rows are numbered as in the spreadsheet (row 1 at the top), so problems point at the row a
    consultant sees. Cells become the text a CSV export would hold (see :func:`_cells_text`):
    numbers with a decimal point and whole ones without decimals (an id 1001 stays ``"1001"``),
    dates and times as ISO ``2024-03-05 14:30:00``, so the same parsing applies downstream.

    Parameters
    ----------
    path : str or Path
        The workbook.
    sheet : str, optional
        The sheet's name (default: the first sheet). Matched exactly, else ignoring case and
        surrounding spaces.
    file : str, optional
        Name used in problems (default: the file name).

    Returns
    -------
    RawTable
        With ``dialect.format`` the suffix (``"xlsx"``...), ``dialect.sheet`` the sheet read
        and ``file`` the name followed by ``#`` and the sheet (``"book.xlsx#Sales"``).

    Raises
    ------
    ReadError
        When the file cannot be read as a workbook, the sheet does not exist (the message names
        the sheets that do) or the sheet has no header row.
    """
    from python_calamine import CalamineWorkbook

    path = Path(path)
    name = file or path.name
    kind = path.suffix.lower().lstrip(".")
    what = (problem_text(f"check_dialect_format_{kind}") if kind in _FORMAT_NAMES
            else problem_text("read_a_workbook"))
    raw = _read_bytes(path, name, problem_text("read_expected_readable", what=what))
    try:
        book = CalamineWorkbook.from_filelike(io.BytesIO(raw))
    except Exception as exc:  # noqa: BLE001 - calamine raises several unrelated types
        hint = ("" if raw.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0"))
                else problem_text("read_not_a_workbook_hint"))
        raise ReadError(Problem(name, "unreadable_workbook",
                                problem_text("read_unreadable_workbook", what=what, error=exc,
                                             hint=hint))) from None
    sheets = list(book.sheet_names)
    found = ", ".join(repr(n) for n in sheets) if sheets else problem_text("read_no_sheets")
    if sheet is None:
        if not sheets:
            raise ReadError(Problem(name, "empty_file", problem_text("read_no_sheet")))
        chosen = sheets[0]
    else:
        folded = {n.strip().casefold(): n for n in sheets}
        chosen = sheet if sheet in sheets else folded.get(sheet.strip().casefold())
        if chosen is None:
            raise ReadError(Problem(name, "missing_sheet",
                                    problem_text("read_missing_sheet", sheet=repr(sheet),
                                                 found=found,
                                                 example=sheets[0] if sheets else "Sheet1")))
    rows = book.get_sheet_by_name(chosen).to_python(skip_empty_area=False)
    start = next((i for i, row in enumerate(rows)
                  if any(not _is_empty_cell(v) for v in row)), None)
    if start is None:
        raise ReadError(Problem(name, "empty_file",
                                problem_text("read_empty_sheet", sheet=repr(chosen))
                                + (problem_text("read_found_sheets", found=found)
                                   if len(sheets) > 1 else "")))
    width = max(len(row) for row in rows[start:])
    header = [_cell_text(v) for v in rows[start]] + [""] * (width - len(rows[start]))
    body = rows[start + 1:]
    data = pd.DataFrame({i: _cells_text([row[i] if i < len(row) else None for row in body])
                         for i in range(width)})
    lines = np.arange(start + 2, start + 2 + len(body), dtype=np.int64)
    header, data, lines = _finish(header, data, lines)
    dialect = Dialect(encoding="", separator="", format=kind, sheet=chosen)
    return RawTable(file=f"{name}#{chosen}", header=header, data=data, lines=lines, dialect=dialect,
                    sha256=sha256_of(raw))


def read_parquet(path: str | Path, file: str | None = None) -> RawTable:
    """Read a Parquet file into text columns (typed values written as by :func:`read_sheet`).

    Rows are numbered from 2 as in a CSV export (the header being line 1). A pandas index
    stored in the file (``__index_level_0__``) is left out.

    Raises
    ------
    ReadError
        When the file cannot be read as Parquet.
    """
    import pyarrow.parquet as pq

    path = Path(path)
    name = file or path.name
    raw = _read_bytes(path, name, problem_text("read_expected_readable",
                                               what=problem_text("check_dialect_format_parquet")))
    try:
        table = pq.read_table(pa.BufferReader(raw))
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types
        raise ReadError(Problem(name, "unreadable_file",
                                problem_text("read_unreadable_parquet", error=exc))) from None
    keep = [c for c in table.column_names if not c.startswith("__index_level_")]
    header = [str(c) for c in keep]
    data = pd.DataFrame({i: _arrow_text(table.column(c)) for i, c in enumerate(keep)},
                        index=pd.RangeIndex(table.num_rows))
    lines = np.arange(2, table.num_rows + 2, dtype=np.int64)
    header, data, lines = _finish(header, data, lines)
    dialect = Dialect(encoding="", separator="", format="parquet")
    return RawTable(file=name, header=header, data=data, lines=lines, dialect=dialect,
                    sha256=sha256_of(raw))


def _read_bytes(path: Path, name: str, expected: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ReadError(Problem(name, "unreadable_file",
                                problem_text("read_unreadable", error=exc.strerror or exc,
                                             expected=expected))) from None


def _is_empty_cell(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _cell_text(value: object) -> str:
    """One typed cell as a CSV export would write it."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if not np.isfinite(value):
            return ""
        if value == int(value) and abs(value) < 2**53:
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _cells_text(values: list) -> pd.Series:
    """A column of typed cells as text (vectorised by pyarrow when the column has one type)."""
    cleaned = [None if isinstance(v, str) and v == "" else v for v in values]
    try:
        arr = pa.array(cleaned, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):  # mixed types: cell by cell
        return pd.Series([_cell_text(v) for v in values], dtype=str)
    return _arrow_text(arr)


def _arrow_text(arr: pa.Array | pa.ChunkedArray) -> pd.Series:
    """Typed values as text: whole floats without decimals, timestamps ISO, nulls blank."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks else pa.array([], arr.type)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    kind = arr.type
    try:
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            text = arr
        elif pa.types.is_null(kind):
            text = pa.array([""] * len(arr), pa.large_string())
        elif pa.types.is_floating(kind):
            text = _float_text(arr)
        elif pa.types.is_boolean(kind):
            text = pc.if_else(arr, "TRUE", "FALSE")
        elif pa.types.is_timestamp(kind):
            if kind.tz is not None:
                arr = pc.local_timestamp(arr)
            text = pc.strftime(pc.cast(arr, pa.timestamp("s"), safe=False), "%Y-%m-%d %H:%M:%S")
        else:  # integers, dates, decimals, times...
            text = pc.cast(arr, pa.large_string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        text = pa.array([_cell_text(v) for v in arr.to_pylist()], pa.large_string())
    text = pc.fill_null(pc.cast(text, pa.large_string()), "")
    return pd.Series(text.to_pandas(), dtype=str)


def _float_text(arr: pa.Array) -> pa.Array:
    values = arr.to_numpy(zero_copy_only=False).astype(float)
    finite = np.isfinite(values)
    whole = finite & (values == np.round(values)) & (np.abs(values) < 2**53)
    text = pc.cast(arr, pa.large_string())
    if whole.any():
        ints = pc.cast(pa.array(np.where(whole, values, 0).astype(np.int64)), pa.large_string())
        text = pc.if_else(pa.array(whole), ints, text)
    return pc.if_else(pa.array(finite), text, pa.scalar(None, pa.large_string()))


def clean_header(name: str) -> str:
    """A header as matched: stripped of whitespace, byte-order marks and stray quotes."""
    return name.replace("\ufeff", "").replace("ï»¿", "").strip().strip('"').strip()


def _clip(text: str, width: int = 80) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


# --------------------------------------------------------------------------------------------
# Arrow helpers


def _arrow(values: pd.Series | Sequence) -> pa.Array:
    """A pyarrow string array of the values (nulls for missing)."""
    if isinstance(values, pd.Series):
        arr = pa.array(values, from_pandas=True)
    else:
        arr = pa.array(list(values), from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = pc.cast(arr, pa.large_string())
    return arr


def _np_bool(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return pc.fill_null(arr, False).to_numpy(zero_copy_only=False).astype(bool, copy=False)


def _np_float(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return np.array(pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False), dtype=float)


def _blank(arr: pa.Array) -> np.ndarray:
    return _np_bool(pc.or_kleene(pc.is_null(arr), pc.equal(pc.utf8_trim_whitespace(arr), "")))


# --------------------------------------------------------------------------------------------
# Numbers

_SPACES = " \u00a0\u202f"  # space, no-break space, narrow no-break space: thousands in fr/es
_CURRENCY = "€$£"


def _number_pattern(decimal: str) -> str:
    thousands = re.escape("." if decimal == "," else ",")
    dec = re.escape(decimal)
    integer = (rf"(?:\d{{1,3}}(?:{thousands}\d{{3}})+|\d{{1,3}}(?:[{_SPACES}]\d{{3}})+|\d+)")
    body = rf"(?:{integer}(?:{dec}\d*)?|{dec}\d+)(?:[eE][+-]?\d+)?"
    cur = f"[{_CURRENCY}]"
    return rf"^\s*(?:{cur}\s*)?[+-]?\s*(?:{cur}\s*)?{body}\s*(?:{cur})?\s*$"


def decimal_evidence(columns: Iterable[pd.Series]) -> tuple[int, int]:
    """Count the values that show a decimal comma and those that show a decimal point.

    ``12,5`` or ``1.234,56`` is evidence of a decimal comma, ``12.5`` or ``1,234.56`` of a
    decimal point; ``1.234``, ``1,234`` and whole numbers count for neither.

    Parameters
    ----------
    columns : iterable of pandas.Series
        Text columns meant to hold numbers; up to :data:`SNIFF_VALUES` values of each are used.

    Returns
    -------
    comma, point : int, int
    """
    comma = point = 0
    for column in columns:
        arr = pc.utf8_trim_whitespace(_arrow(column.iloc[:SNIFF_VALUES]))
        comma_like = pc.match_substring_regex(arr, r"^[+-]?(?:\d{1,3}(?:\.\d{3})*|\d+)?,\d+$")
        comma_thousands = pc.match_substring_regex(arr, r"^[+-]?\d{1,3}(?:,\d{3})+$")
        point_like = pc.match_substring_regex(arr, r"^[+-]?(?:\d{1,3}(?:,\d{3})*|\d+)?\.\d+$")
        point_thousands = pc.match_substring_regex(arr, r"^[+-]?\d{1,3}(?:\.\d{3})+$")
        comma += int((_np_bool(comma_like) & ~_np_bool(comma_thousands)).sum())
        point += int((_np_bool(point_like) & ~_np_bool(point_thousands)).sum())
    return comma, point


def detect_decimal(columns: Iterable[pd.Series], separator: str | None = None,
                   default: str | None = None) -> str:
    """Guess the decimal mark from the values of numeric columns.

    The mark with evidence (see :func:`decimal_evidence`; the majority if both have some) wins.
    Without evidence: ``default`` if given (e.g. what the client's other files show), else a
    semicolon-separated file is taken to use a decimal comma (the European spreadsheet
    convention) and any other a decimal point.

    Parameters
    ----------
    columns : iterable of pandas.Series
        Text columns meant to hold numbers.
    separator : str, optional
        The file's separator, for the default.
    default : str, optional
        The mark to use when the values show none.

    Returns
    -------
    str
        ``","`` or ``"."``.
    """
    comma, point = decimal_evidence(columns)
    if comma or point:
        return "," if comma > point else "."
    if default:
        return default
    return "," if separator == ";" else "."


def parse_numbers(values: pd.Series, decimal: str = ".") -> tuple[np.ndarray, np.ndarray]:
    """Parse text into floats, with a given decimal mark.

    Accepted: an optional sign, digits with the decimal mark, thousands grouped by the other mark
    or by spaces (``1.234,56`` / ``1,234.56`` / ``1 234,56``), an exponent, and a currency sign
    (€ $ £) before or after. Not accepted: anything else, including ``nan`` and ``inf``.

    Parameters
    ----------
    values : pandas.Series
        Text values.
    decimal : str
        ``"."`` or ``","``.

    Returns
    -------
    numbers, bad : numpy.ndarray, numpy.ndarray
        float64 values (NaN where blank or bad) and a boolean mask of the non-blank values that
        are not numbers.
    """
    arr = _arrow(values)
    blank = _blank(arr)
    ok = _np_bool(pc.match_substring_regex(arr, _number_pattern(decimal)))
    keep = r"[^0-9eE+\-" + re.escape(decimal) + "]"
    cleaned = pc.replace_substring_regex(arr, keep, "")
    if decimal == ",":
        cleaned = pc.replace_substring(cleaned, ",", ".")
    cleaned = pc.if_else(pa.array(ok), cleaned, pa.scalar(None, cleaned.type))
    try:
        numbers = _np_float(cleaned)
    except pa.ArrowInvalid:  # pragma: no cover - the pattern admits only castable text
        numbers = np.array([_float_or_nan(v) for v in cleaned.to_pylist()], dtype=float)
    finite = np.isfinite(numbers)
    bad = ~blank & ~(ok & finite)
    numbers = np.where(finite & ok, numbers, np.nan)
    return numbers, bad


def _float_or_nan(value: str | None) -> float:
    try:
        return float(value) if value is not None else np.nan
    except ValueError:
        return np.nan


# --------------------------------------------------------------------------------------------
# Dates

_TIME = (r"(?:[ T]\s*(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:[.,]\d+)?)?"
         r"(?:\s*[AaPp]\.?[Mm]\.?)?)?")
_ISO = (r"^\s*(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})" + _TIME
        + r"(?:Z|[+-]\d{2}:?\d{2})?\s*$")
_DMY = r"^\s*(?P<p>\d{1,2})[-/.](?P<q>\d{1,2})[-/.](?P<y>\d{4}|\d{2})" + _TIME + r"\s*$"
_COMPACT = r"^\s*(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})\s*$"

#: The range of years a day-precision datetime64[ns] can hold.
_MIN_YEAR, _MAX_YEAR = 1678, 2261


@dataclass
class DateEvidence:
    """What the values of date columns say about their format.

    Attributes
    ----------
    iso : int
        Values written year first (``2024-03-05``).
    numeric : int
        Values written ``05/03/2024``, ``5-3-24``, ``05.03.2024``...
    dayfirst : numpy.ndarray
        Positions of values whose first part is over 12 (so it must be the day).
    monthfirst : numpy.ndarray
        Positions of values whose second part is over 12 (so the month comes first).
    compact : int
        Values written as eight digits, year first (``20240305``).
    """

    iso: int = 0
    numeric: int = 0
    dayfirst: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    monthfirst: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    compact: int = 0

    def guess(self) -> str | None:
        """``"iso"`` when every date is year-first; else day-first unless only month-first fits.

        Month-first is never guessed when the evidence is ambiguous: that needs
        ``csv.date_format: monthfirst`` in ``client.yaml``. Eight-digit dates (``20240305``)
        with no day/month/year ones give ``"yyyymmdd"`` (which reads ISO dates as well).
        """
        if not self.iso and not self.numeric and not self.compact:
            return None
        if self.compact and not self.numeric:
            return "yyyymmdd"
        if not self.numeric:
            return "iso"
        return "dayfirst"


class DateParts:
    """A column of date text split into year, month and day candidates (vectorised).

    Build it once per column with :meth:`of`, look at :meth:`evidence`, then :meth:`assemble`
    with the chosen order. Times of day are accepted and dropped: dates have day precision.
    """

    def __init__(self, blank: np.ndarray, iso: tuple[np.ndarray, ...] | None,
                 numeric: tuple[np.ndarray, ...] | None,
                 compact: tuple[np.ndarray, ...] | None = None):
        self.blank = blank
        self._iso = iso
        self._numeric = numeric
        self._compact = compact

    @classmethod
    def of(cls, values: pd.Series) -> DateParts:
        """Split the text values of a column."""
        arr = _arrow(values)
        blank = _blank(arr)
        plain = _plain_iso(arr, blank)
        if plain is not None:
            return cls(blank, plain, None, None)
        if _np_bool(pc.match_substring_regex(arr, _ISO)).any():
            iso = _extract(arr, _ISO, ("y", "m", "d"))
        else:
            iso = tuple(np.full(len(arr), np.nan) for _ in range(3))
        numeric = compact = None
        if not (np.isfinite(iso[0]) | blank).all():
            numeric = _extract(arr, _DMY, ("p", "q", "y"))
            year = numeric[2]
            short = year < 100
            numeric[2][:] = np.where(short, np.where(year < 69, 2000 + year, 1900 + year), year)
            if not (np.isfinite(iso[0]) | np.isfinite(numeric[0]) | blank).all() and _np_bool(
                    pc.match_substring_regex(arr, _COMPACT)).any():
                compact = _extract(arr, _COMPACT, ("y", "m", "d"))
        return cls(blank, iso, numeric, compact)

    def evidence(self) -> DateEvidence:
        """Count the formats seen and locate day-first and month-first evidence."""
        iso = int(np.isfinite(self._iso[0]).sum()) if self._iso is not None else 0
        compact = int(np.isfinite(self._compact[0]).sum()) if self._compact is not None else 0
        if self._numeric is None:
            return DateEvidence(iso=iso, compact=compact)
        p, q, _ = self._numeric
        found = np.isfinite(p)
        with np.errstate(invalid="ignore"):
            return DateEvidence(iso=iso, numeric=int(found.sum()),
                                dayfirst=np.flatnonzero(found & (p > 12)),
                                monthfirst=np.flatnonzero(found & (q > 12)), compact=compact)

    def assemble(self, order: str | None) -> tuple[pd.Series, np.ndarray]:
        """Build the dates.

        Parameters
        ----------
        order : {"dayfirst", "monthfirst", "iso", "yyyymmdd", None}
            How to read ``05/03/2024``; with ``"iso"`` or None only year-first dates are read,
            with ``"yyyymmdd"`` year-first and eight-digit ones (``20240305``).

        Returns
        -------
        dates, bad : pandas.Series, numpy.ndarray
            datetime64[ns] at midnight (NaT where blank or bad), and a mask of the non-blank
            values that are not valid dates (including impossible ones like 31/02/2024).
        """
        y, m, d = (a.copy() for a in self._iso)
        if self._numeric is not None and order in ("dayfirst", "monthfirst"):
            p, q, ny = self._numeric
            take = ~np.isfinite(y) & np.isfinite(p)
            day, month = (p, q) if order == "dayfirst" else (q, p)
            y[take], m[take], d[take] = ny[take], month[take], day[take]
        if self._compact is not None and order == "yyyymmdd":
            cy, cm, cd = self._compact
            take = ~np.isfinite(y) & np.isfinite(cy)
            y[take], m[take], d[take] = cy[take], cm[take], cd[take]
        with np.errstate(invalid="ignore"):
            out_of_range = (y < _MIN_YEAR) | (y > _MAX_YEAR)
        y[out_of_range] = np.nan
        dates = pd.to_datetime(pd.DataFrame({"year": y, "month": m, "day": d}),
                               errors="coerce").astype("datetime64[ns]")
        bad = ~self.blank & dates.isna().to_numpy()
        return dates, bad


def _plain_iso(arr: pa.Array, blank: np.ndarray) -> tuple[np.ndarray, ...] | None:
    """Year, month and day of a column of plain ``YYYY-MM-DD`` dates (NaN where blank).

    What :data:`_ISO` would extract from such values, by slicing instead of a regular
    expression (several times faster on ten million lines); None when any non-blank value is
    written otherwise (a time of day, spaces, ``/``), for the regular expressions to read.
    """
    filled = pc.filter(arr, pa.array(~blank))
    if len(filled) == 0:
        return None
    lengths = pc.min_max(pc.utf8_length(filled)).as_py()
    if lengths != {"min": 10, "max": 10}:
        return None
    dashes = [pc.utf8_slice_codeunits(filled, a, a + 1) for a in (4, 7)]
    if not all(pc.all(pc.equal(dash, "-")).as_py() for dash in dashes):
        return None
    parts = [pc.utf8_slice_codeunits(filled, a, b) for a, b in ((0, 4), (5, 7), (8, 10))]
    if not all(pc.all(pc.ascii_is_decimal(p)).as_py() for p in parts):
        return None
    out = []
    for part in parts:
        column = np.full(len(arr), np.nan)
        column[~blank] = pc.cast(part, pa.int32()).to_numpy(zero_copy_only=False)
        out.append(column)
    return tuple(out)


def _extract(arr: pa.Array, pattern: str, names: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    struct = pc.extract_regex(arr, pattern)
    out = []
    for name in names:
        part = pc.struct_field(struct, name)
        part = pc.if_else(pc.equal(part, ""), pa.scalar(None, part.type), part)
        out.append(_np_float(part))
    return tuple(out)


def parse_dates(values: pd.Series, date_format: str | None = None
                ) -> tuple[pd.Series, np.ndarray, str | None]:
    """Parse text into dates, detecting the format when not given.

    Parameters
    ----------
    values : pandas.Series
        Text values: ``2024-03-05``, ``2024-03-05 14:30:00``, ``05/03/2024``, ``5-3-2024``,
        ``05.03.2024``, ``05/03/24`` ...
    date_format : {"iso", "dayfirst", "monthfirst", "yyyymmdd"}, optional
        From ``client.yaml``; when None it is detected (see :meth:`DateEvidence.guess`).
        Year-first values are always accepted, being unambiguous.

    Returns
    -------
    dates, bad, date_format : pandas.Series, numpy.ndarray, str or None
        datetime64[ns] dates, the mask of non-blank unparseable values, and the format used.
    """
    parts = DateParts.of(values)
    used = date_format or parts.evidence().guess()
    dates, bad = parts.assemble(used)
    return dates, bad, used


# --------------------------------------------------------------------------------------------
# Other columns


def parse_text(values: pd.Series) -> pd.Series:
    """Stripped text, with blank cells as missing (NaN)."""
    text = values.astype(str).str.strip()
    return text.mask(text == "")


def infer_column(values: pd.Series, decimal: str, date_format: str | None) -> pd.Series:
    """Type a column nobody declared: numbers, dates, or else text.

    A column becomes numeric (``Int64`` when every value is whole, else float64) when every
    non-blank value is a number and none has a leading zero (``08001`` is a post code, not a
    number); it becomes datetime64[ns] when every non-blank value is a date; otherwise it is
    stripped text.

    Parameters
    ----------
    values : pandas.Series
        Text values.
    decimal : str
        Decimal mark of the file.
    date_format : str or None
        Date order of the file (day-first when None).

    Returns
    -------
    pandas.Series
    """
    arr = _arrow(values)
    blank = _blank(arr)
    if blank.all():
        return parse_text(values)
    # A look at the first values spares the full parse of columns that are plainly text.
    head = arr.slice(0, 1000)
    head_blank = _blank(head)
    numbers = bad = None
    if (_np_bool(pc.match_substring_regex(head, _number_pattern(decimal))) | head_blank).all():
        numbers, bad = parse_numbers(values, decimal)
    if bad is not None and not bad.any():
        zero_led = _np_bool(pc.match_substring_regex(arr, r"^\s*[+-]?0\d"))
        if not zero_led.any():
            present = numbers[~blank]
            series = pd.Series(numbers, index=values.index)
            if np.all(present == np.round(present)) and np.all(np.abs(present) < 2**53):
                return series.astype("Int64")
            return series
    date_like = pc.or_(pc.match_substring_regex(head, _ISO), pc.match_substring_regex(head, _DMY))
    if not (_np_bool(date_like) | head_blank).all():
        return parse_text(values)
    parts = DateParts.of(values)
    ev = parts.evidence()
    if ev.iso + ev.numeric == int((~blank).sum()):
        dates, bad = parts.assemble(date_format or "dayfirst")
        if not bad.any():
            return dates.set_axis(values.index)
    return parse_text(values)


# --------------------------------------------------------------------------------------------
# A simple front door


def read_csv(path: str | Path, numbers: Sequence[str] = (), dates: Sequence[str] = (),
             options: CsvOptions | None = None) -> tuple[pd.DataFrame, Dialect]:
    """Read a CSV export into a typed frame, for files outside a workspace.

    Columns keep the file's (stripped) header names; ``numbers`` become float64, ``dates``
    datetime64[ns], every other column is stripped text. The decimal mark is detected from the
    ``numbers`` columns and the date order from the ``dates`` columns unless ``options`` says.

    Parameters
    ----------
    path : str or Path
        The CSV file.
    numbers, dates : sequence of str
        Headers of the numeric and date columns.
    options : CsvOptions, optional
        Known separator, decimal mark, encoding or date format.

    Returns
    -------
    frame, dialect : pandas.DataFrame, Dialect

    Raises
    ------
    WorkspaceError
        With every problem found (missing column, unparseable values with line numbers, ...).
    """
    options = options or CsvOptions()
    problems = ProblemList()
    try:
        table = read_table(path, options)
    except ReadError as error:
        raise WorkspaceError([error.problem]) from None
    problems.extend(table.problems)
    data = table.data
    for column in [*numbers, *dates]:
        if column not in data.columns:
            problems.add(table.file, "missing_column",
                         problem_text("check_missing_column_found",
                                      found=", ".join(map(repr, table.header))),
                         column=column)
    numbers = [c for c in numbers if c in data.columns]
    dates = [c for c in dates if c in data.columns]
    configured = set(table.dialect.configured)
    decimal = options.decimal or detect_decimal([data[c] for c in numbers],
                                                table.dialect.separator)
    if options.decimal:
        configured.add("decimal")
    parts = {c: DateParts.of(data[c]) for c in dates}
    date_format = options.date_format
    if date_format:
        configured.add("date_format")
    elif parts:
        ev = [p.evidence() for p in parts.values()]
        date_format = DateEvidence(iso=sum(e.iso for e in ev),
                                   numeric=sum(e.numeric for e in ev),
                                   compact=sum(e.compact for e in ev)).guess()
    dialect = replace(table.dialect, decimal=decimal, date_format=date_format,
                      configured=frozenset(configured))
    out = {}
    for column in data.columns:
        if column in numbers:
            values, bad = parse_numbers(data[column], decimal)
            out[column] = pd.Series(values, index=data.index)
            what = "a number"
        elif column in parts:
            out[column], bad = parts[column].assemble(date_format)
            what = "a date"
        else:
            out[column] = parse_text(data[column])
            continue
        if bad.any():
            idx = np.flatnonzero(bad)
            problems.add(table.file, f"unparseable_{'number' if what == 'a number' else 'date'}",
                         problem_text("check_not_a_number" if what == "a number"
                                      else "check_not_a_date",
                                      dialect=dialect.describe(LANGUAGE.get())),
                         column=column, rows=table.lines[idx[:EXAMPLES_SHOWN]].tolist(),
                         examples=data[column].iloc[idx[:EXAMPLES_SHOWN]].tolist(),
                         count=len(idx))
    if problems:
        raise WorkspaceError(problems)
    return pd.DataFrame(out, index=pd.RangeIndex(len(data))), dialect
