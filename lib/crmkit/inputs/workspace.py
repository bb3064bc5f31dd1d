"""A client workspace, loaded and validated: ``client.yaml`` plus the client's exports.

Each table is read from ``<table>.csv``, or from the one ``<table>.<ext>`` found with another
supported extension (``.txt``, ``.tsv``, ``.xlsx``, ``.xlsm``, ``.xls``, ``.ods``,
``.parquet``), or from the file ``client.yaml`` names under ``files:`` (``files: {transactions:
"Online Retail.xlsx#Year 2010-2011"}``). Workbooks and Parquet files are turned into the same
text columns as a CSV (:func:`~crmkit.inputs.tabular.read_sheet`), so everything below is shared.

:func:`load_workspace` is the one door through which client data enters crmkit. It reads the
files as exported (dialects are detected by :mod:`crmkit.inputs.tabular`), maps the client's
headers to
the canonical columns of ``docs/data-contract.md`` (``columns:`` in ``client.yaml``), types every
column, and checks everything a consultant could get wrong: missing files and columns, values
that are not numbers or dates, duplicate customers, transactions of unknown customers, future
or implausible dates and values, unknown relationship types, the settings themselves and the
client's own segment map, if ``client.yaml`` names one (a gap or an overlap in its grid).

Every problem is collected into one :class:`~crmkit.core.problems.ProblemList` (with line numbers as
in the file and the values as found) before :class:`~crmkit.core.problems.WorkspaceError` is raised,
so that one ``crmkit check`` shows all there is to fix. Raw files are only ever opened for
reading; their sha256 checksums are kept for the run record.
"""

from __future__ import annotations

import codecs
import contextlib
import datetime as dt
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from crmkit.core.catalogue import RELATIONSHIP_ALIASES, RELATIONSHIP_TYPES
from crmkit.core.problems import EXAMPLES_SHOWN, ProblemList, WorkspaceError
from crmkit.inputs.tabular import (
    SEPARATORS,
    DateEvidence,
    DateParts,
    Dialect,
    RawTable,
    ReadError,
    clean_header,
    decimal_evidence,
    infer_column,
    parse_numbers,
    parse_text,
    read_table,
)
from crmkit.settings import segment_maps
from crmkit.settings.client import (
    CONFIG_FILE,
    OPTIONAL_COLUMNS,
    OPTIONAL_FILES,
    REQUIRED_COLUMNS,
    REQUIRED_FILES,
    SUPPORTED_SUFFIXES,
    ClientConfig,
    CsvOptions,
    FileSource,
    SegmentationSettings,
    load_config,
)
from crmkit.settings.crosscheck import cross_check

NUMBER_COLUMNS = ("amount", "margin", "minutes", "category_spend", "satisfaction", "nps")
DATE_COLUMNS = ("date",)
KEY_COLUMNS = ("relationship_type", "preferred_relationship")

#: Plausibility limits.
MAX_ABS_AMOUNT = 1e7
MAX_MINUTES = 24 * 60
EARLIEST_DATE = dt.date(1970, 1, 1)
SATISFACTION_RANGE = (1, 5)
NPS_RANGE = (0, 10)

_ROW_NOUNS = {"customers": "customer", "transactions": "transaction",
              "interactions": "interaction", "survey": "survey response"}

#: Headers that probably mean a canonical column, to suggest a mapping (never applied silently).
_HINTS = {
    "customer_id": ("cliente", "customer", "client", "socio", "member"),
    "date": ("fecha", "date", "dia", "day"),
    "amount": ("importe", "amount", "total", "monto", "valor", "value", "precio", "price"),
    "margin": ("margen", "margin", "beneficio", "profit"),
    "minutes": ("minutos", "minutes", "duracion", "duration"),
    "channel": ("canal", "channel"),
    "relationship_type": ("relacion", "relationship"),
    "satisfaction": ("satisfaccion", "satisfaction", "csat"),
    "category_spend": ("gasto", "spend"),
}


@dataclass
class Workspace:
    """A loaded, validated client workspace (see ``docs/data-contract.md``).

    Attributes
    ----------
    path : Path
        The workspace folder.
    slug : str
        The folder name.
    config : ClientConfig
        ``client.yaml``.
    customers, transactions : pandas.DataFrame
        Canonical frames.
    interactions, survey : pandas.DataFrame or None
        Canonical frames, None when the file is absent.
    as_of : datetime.date
        Analysis date: ``config.as_of`` or the last transaction date.
    checksums : dict
        File name -> sha256 of the raw bytes (``client.yaml`` and every CSV read).
    sources : dict
        File name -> :class:`~crmkit.inputs.tabular.Dialect` detected (or configured); a
        workbook's sheet is named ``"book.xlsx#Sheet"``.
    files : dict
        Table (``"transactions"``...) -> the file name it was read from, as in ``sources``.
    """

    path: Path
    slug: str
    config: ClientConfig
    customers: pd.DataFrame
    transactions: pd.DataFrame
    interactions: pd.DataFrame | None
    survey: pd.DataFrame | None
    as_of: dt.date
    checksums: dict[str, str] = field(default_factory=dict)
    sources: dict[str, Dialect] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """A short multi-line summary in English, as printed by ``crmkit check``."""
        lines = [f"Client: {self.config.name} (workspace '{self.slug}', "
                 f"language {self.config.language}, currency {self.config.currency})"]
        names = {kind: self.files.get(kind, f"{kind}.csv")
                 for kind in (*REQUIRED_FILES, *OPTIONAL_FILES)}
        width = max(len(name) for name in names.values())
        for kind in (*REQUIRED_FILES, *OPTIONAL_FILES):
            name = names[kind]
            frame = getattr(self, kind)
            if frame is None:
                lines.append(f"  {name:<{width}}  not provided (optional)")
                continue
            what = _ROW_NOUNS[kind]
            text = _plural(len(frame), what)
            if kind == "customers":
                text = _plural(frame["customer_id"].nunique(), "customer")
            elif "date" in frame and len(frame):
                text += (f" from {frame['date'].min():%Y-%m-%d} "
                         f"to {frame['date'].max():%Y-%m-%d}")
            if kind != "customers":
                text += " of " + _plural(frame["customer_id"].nunique(), "customer")
            lines.append(f"  {name:<{width}}  {text}")
            if name in self.sources:
                lines.append(f"  {'':<{width}}  read as: {self.sources[name].describe()}")
        source = "client.yaml" if self.config.as_of else "last transaction"
        lines.append(f"Analysis date (as_of): {self.as_of:%Y-%m-%d} ({source})")
        lines.append("No problems found.")
        return "\n".join(lines)


def load_workspace(path: str | Path) -> Workspace:
    """Load and validate a client workspace.

    Parameters
    ----------
    path : str or Path
        The workspace folder (``clients/<slug>/``).

    Returns
    -------
    Workspace

    Raises
    ------
    WorkspaceError
        With every problem found in ``client.yaml`` and the CSV files, grouped by file.
    """
    problems = ProblemList()
    workspace = _load(Path(path), problems)
    if problems or workspace is None:
        raise WorkspaceError(problems)
    return workspace


def check_workspace(path: str | Path) -> ProblemList:
    """Validate a workspace and return its problems (empty when it loads); never raises them.

    Parameters
    ----------
    path : str or Path
        The workspace folder.

    Returns
    -------
    ProblemList
    """
    problems = ProblemList()
    _load(Path(path), problems)
    return problems


# --------------------------------------------------------------------------------------------


@dataclass
class _Loaded:
    """One CSV file after typing: canonical frame plus what is needed to report on it."""

    kind: str
    file: str
    frame: pd.DataFrame
    lines: np.ndarray
    raw: dict[str, pd.Series]  # canonical column -> text as found
    headers: dict[str, str]  # canonical column -> header in the file
    dialect: Dialect
    complete: bool  # every required column is present


def _load(root: Path, problems: ProblemList) -> Workspace | None:
    if not root.is_dir():
        problems.add(str(root), "missing_workspace",
                     "folder not found; expected a client workspace folder holding "
                     f"{CONFIG_FILE}, customers.csv and transactions.csv")
        return None
    checksums: dict[str, str] = {}
    config: ClientConfig | None = None
    try:
        config = load_config(root)
    except WorkspaceError as error:
        problems.extend(error.problems)
    config_path = root / CONFIG_FILE
    if config_path.is_file():
        with contextlib.suppress(OSError):  # an unreadable file is reported by load_config
            checksums[CONFIG_FILE] = _sha256_file(config_path)
    if config is not None:
        options, columns, as_of = config.csv, config.columns, config.as_of
        files = dict(config.files)
    else:
        options, columns, as_of = _lenient_settings(config_path)
        files = _lenient_files(config_path)
    segmentation = config.segmentation if config is not None \
        else _lenient_segmentation(config_path)
    segment_map = None
    if segmentation is not None:
        segment_map = _check_segment_map(root, segmentation, problems)
    if options.encoding:
        try:
            codecs.lookup(options.encoding)
        except LookupError:
            problems.add(CONFIG_FILE, "invalid_setting",
                         f"key 'csv.encoding' has {options.encoding!r}; expected an encoding "
                         "name such as utf-8, cp1252 or latin-1 (or no setting, to detect it)")
            options = options.model_copy(update={"encoding": None})
    for kind, source in list(files.items()):
        if source.csv is not None and source.csv.encoding:
            try:
                codecs.lookup(source.csv.encoding)
            except LookupError:
                problems.add(CONFIG_FILE, "invalid_setting",
                             f"key 'files.{kind}.csv.encoding' has {source.csv.encoding!r}; "
                             "expected an encoding name such as utf-8, cp1252 or latin-1 (or "
                             "no setting, to detect it)")
                files[kind] = source.model_copy(
                    update={"csv": source.csv.model_copy(update={"encoding": None})})

    today = dt.date.today()
    limit = min(today, as_of) if as_of else today
    kinds = (*REQUIRED_FILES, *OPTIONAL_FILES)
    opened: dict[str, _Opened | None] = {}
    for kind in kinds:
        with _never_a_traceback(kind, problems):
            opened[kind] = _open_file(root, kind, options, columns.get(kind, {}), problems,
                                      checksums, files.get(kind))
    # A file without decimals (whole numbers only) is written like the client's other files.
    comma = sum(o.evidence[0] for o in opened.values() if o is not None)
    point = sum(o.evidence[1] for o in opened.values() if o is not None)
    default_decimal = ("," if comma > point else ".") if comma or point else None
    loaded: dict[str, _Loaded | None] = dict.fromkeys(kinds)
    for kind in kinds:
        if opened.get(kind) is None:
            continue
        with _never_a_traceback(kind, problems):
            loaded[kind] = _load_file(opened[kind], options, default_decimal, problems, limit,
                                      as_of, today)
        if kind == "customers" and loaded[kind] and "customer_id" in loaded[kind].frame:
            _check_duplicates(loaded[kind], problems)

    customers = loaded["customers"]
    if customers is not None and "customer_id" in customers.frame:
        known = pa.array(customers.frame["customer_id"].dropna().unique(), type=pa.large_string())
        for kind in ("transactions", "interactions", "survey"):
            other = loaded[kind]
            if other is not None and "customer_id" in other.frame:
                _check_known(other, known, problems, customers.file)

    if config is not None:
        interactions = loaded["interactions"]
        channels = () if interactions is None or "channel" not in interactions.frame \
            else interactions.frame["channel"].dropna().astype(str).unique()
        by_map = segment_map if config.segmentation.method == "map" else None
        problems.extend(cross_check(config, by_map, channels))
    if problems or config is None:
        return None
    if any(loaded[kind] is None or not loaded[kind].complete for kind in REQUIRED_FILES):
        return None  # pragma: no cover - always comes with a problem
    transactions = loaded["transactions"].frame
    if as_of is None:
        as_of = transactions["date"].max().date()
    return Workspace(
        path=root,
        slug=root.resolve().name,
        config=config,
        customers=loaded["customers"].frame,
        transactions=transactions,
        interactions=loaded["interactions"].frame if loaded["interactions"] else None,
        survey=loaded["survey"].frame if loaded["survey"] else None,
        as_of=as_of,
        checksums=checksums,
        sources={item.file: item.dialect for item in loaded.values() if item is not None},
        files={kind: item.file for kind, item in loaded.items() if item is not None},
    )


@contextlib.contextmanager
def _never_a_traceback(kind: str, problems: ProblemList):
    """Turn an unexpected error while reading a file into a problem about that file."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - a user's file must never cause a traceback
        problems.add(f"{kind}.csv", "unreadable_file",
                     f"could not be read ({type(exc).__name__}: {exc}); expected a CSV export. "
                     "If the file looks right, this is a crmkit bug: please report it with this "
                     "message")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _lenient_settings(config_path: Path
                      ) -> tuple[CsvOptions, dict[str, dict[str, str]], dt.date | None]:
    """The parts of a ``client.yaml`` that failed validation which still help to read files."""
    options, columns, as_of = CsvOptions(), {}, None
    try:
        raw = yaml.safe_load(config_path.read_bytes().decode("utf-8-sig", errors="replace"))
    except Exception:  # noqa: BLE001 - already reported by load_config
        return options, columns, as_of
    if not isinstance(raw, dict):
        return options, columns, as_of
    try:
        options = CsvOptions.model_validate(raw.get("csv") or {})
    except Exception:  # noqa: BLE001 - already reported by load_config
        options = CsvOptions()
    mapping = raw.get("columns")
    if isinstance(mapping, dict):
        for kind, spec in mapping.items():
            if kind in REQUIRED_COLUMNS and isinstance(spec, dict):
                known = REQUIRED_COLUMNS[kind] + OPTIONAL_COLUMNS[kind]
                columns[kind] = {str(k): str(v) for k, v in spec.items()
                                 if k in known and isinstance(v, str | int | float)}
    value = raw.get("as_of")
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        as_of = value
    return options, columns, as_of


def _lenient_files(config_path: Path) -> dict[str, FileSource]:
    """The valid entries of ``files:`` in a ``client.yaml`` that failed validation."""
    try:
        raw = yaml.safe_load(config_path.read_bytes().decode("utf-8-sig", errors="replace"))
        entries = raw.get("files") or {}
    except Exception:  # noqa: BLE001 - absent or already reported by load_config
        return {}
    files: dict[str, FileSource] = {}
    if isinstance(entries, dict):
        for kind, spec in entries.items():
            if kind not in REQUIRED_COLUMNS:
                continue
            try:
                files[kind] = FileSource.model_validate(spec)
            except Exception:  # noqa: BLE001 - already reported; read the path alone if valid
                path = spec.get("path") if isinstance(spec, dict) else spec
                try:
                    files[kind] = FileSource.model_validate(path)
                except Exception:  # noqa: BLE001 - not read at all (no second problem)
                    files[kind] = FileSource.model_construct(path=str(path or ""), csv=None)
    return files


def _lenient_segmentation(config_path: Path) -> SegmentationSettings | None:
    """The segment map setting of a ``client.yaml`` that failed validation, when it is valid."""
    try:
        raw = yaml.safe_load(config_path.read_bytes().decode("utf-8-sig", errors="replace"))
        return SegmentationSettings.model_validate({"map": raw["segmentation"]["map"]})
    except Exception:  # noqa: BLE001 - absent (the default map) or already reported
        return None


def _check_segment_map(root: Path, settings: SegmentationSettings,
                       problems: ProblemList) -> segment_maps.SegmentMap | None:
    """The map of ``segmentation.map`` loads: found, valid YAML, every cell claimed once.

    Returns the map, or None when it does not load (its problems are then in ``problems``).

    A custom map's problems name the map file as written in ``client.yaml`` and the cells
    claimed twice or by no segment, so ``crmkit check`` lists them with the others.
    """
    try:
        return segment_maps.from_settings(settings, workspace=root)
    except WorkspaceError as error:
        problems.extend(error.problems)
    except Exception as exc:  # noqa: BLE001 - a user's map must never cause a traceback
        problems.add(settings.map, "invalid_segment_map",
                     f"could not be read ({type(exc).__name__}: {exc}); expected a segment map "
                     "like data/segment_maps/rfm_ten.yaml. If the map looks right, this is a "
                     "crmkit bug: please report it with this message")
    return None


# --------------------------------------------------------------------------------------------
# One file


@dataclass
class _Opened:
    """One file split into text columns, its headers matched to canonical columns."""

    kind: str
    file: str
    table: RawTable
    headers: dict[str, str]  # canonical column -> header in the file
    evidence: tuple[int, int]  # values showing a decimal comma, a decimal point
    options: CsvOptions | None = None  # csv: with the file's own csv: on top


def _open_file(root: Path, kind: str, options: CsvOptions, mapping: dict[str, str],
               problems: ProblemList, checksums: dict[str, str],
               source: FileSource | None = None) -> _Opened | None:
    sheet = None
    if source is not None:  # files: <kind>: in client.yaml
        name, sheet = source.file, source.sheet
        options = options.merged(source.csv)
        path = root / name
        if path.suffix.lower() not in SUPPORTED_SUFFIXES:
            return None  # reported against client.yaml by load_config
        if path.is_dir():
            problems.add(name, "missing_file",
                         f"is a folder, although client.yaml names it as the {kind} file "
                         f"(files: {kind}); expected the client's {kind} export")
            return None
        if not path.is_file():
            folder = path.parent
            present = sorted(p.name for p in folder.iterdir()
                             if not p.name.startswith(".")) if folder.is_dir() else []
            found = (f"found {', '.join(map(repr, present[:12]))}" if present
                     else "the folder is empty" if folder.is_dir() else "its folder is missing")
            problems.add(name, "missing_file",
                         f"file not found, although client.yaml names it (files: {kind}: "
                         f"{source.path!r}); {found}; expected the client's {kind} export at "
                         "that path, relative to the workspace folder")
            return None
    else:
        name = f"{kind}.csv"
        path = root / name
        if not path.exists():
            others = sorted(p.name for p in root.iterdir()
                            if p.stem == kind and p.suffix.lower() in SUPPORTED_SUFFIXES
                            and p.is_file())
            if len(others) > 1:
                problems.add(name, "ambiguous_file",
                             f"not found, but several files could hold the {kind}: "
                             f"{', '.join(map(repr, others))}; expected one, or the one to read "
                             f"named in client.yaml (files: {kind}: {others[0]!r})")
                return None
            if others:
                name = others[0]
                path = root / name
        if path.exists() and not path.is_file():
            problems.add(name, "missing_file", "is a folder; expected the client's CSV export")
            return None
        if not path.is_file():
            if kind in REQUIRED_FILES:
                present = sorted(p.name for p in root.iterdir() if not p.name.startswith("."))
                near = [p for p in present if p.casefold().startswith(kind[:5])]
                found = (f"found {', '.join(map(repr, present[:12]))}" if present
                         else "the folder is empty")
                hint = f" (rename {near[0]!r}?)" if near else ""
                problems.add(name, "missing_file",
                             f"file not found; {found}{hint}; expected the client's {kind} "
                             f"export named {name} (or {kind}.xlsx, .ods, .parquet...), or "
                             f"its name in client.yaml (files: {kind}: <file>)")
            return None
    try:
        table = read_table(path, options, file=name, sheet=sheet)
    except ReadError as error:
        problems.extend([error.problem])
        return None
    checksums[name] = table.sha256
    name = table.file  # a workbook's sheet: "book.xlsx#Sheet"
    problems.extend(table.problems)
    if table.data.empty:
        if not table.problems:  # rather than rows that could not be read
            problems.add(name, "empty_file",
                         f"has a header ({', '.join(map(repr, table.header[:8]))}) but no data "
                         f"rows; expected one line per {_ROW_NOUNS[kind]} after the header")
        return None

    headers = _match_columns(kind, table, mapping, options, problems)
    evidence = (0, 0)
    if not options.decimal and not table.dialect.typed:
        numeric = [table.data[headers[c]] for c in NUMBER_COLUMNS if c in headers]
        extras = [table.data[c] for c in table.data.columns if c not in headers.values()]
        evidence = decimal_evidence(numeric or extras)
    return _Opened(kind, name, table, headers, evidence, options)


def _load_file(opened: _Opened, options: CsvOptions, default_decimal: str | None,
               problems: ProblemList, limit: dt.date, as_of: dt.date | None,
               today: dt.date) -> _Loaded:
    kind, name, table, headers = opened.kind, opened.file, opened.table, opened.headers
    options = opened.options or options
    complete = all(c in headers for c in REQUIRED_COLUMNS[kind])
    data = table.data
    lines = table.lines
    raw = {canonical: data[header] for canonical, header in headers.items()}

    configured = set(table.dialect.configured)
    comma, point = opened.evidence
    if table.dialect.typed:  # numbers written by crmkit from typed cells
        decimal = "."
    elif options.decimal:
        decimal = options.decimal
        configured.add("decimal")
    elif comma or point:
        decimal = "," if comma > point else "."
    else:
        decimal = default_decimal or ("," if table.dialect.separator == ";" else ".")
    date_parts = {c: DateParts.of(raw[c]) for c in DATE_COLUMNS if c in raw}
    date_format, excused = _settle_date_format(name, headers, date_parts, options, lines, raw,
                                               problems)
    if options.date_format:
        configured.add("date_format")
    dialect = replace(table.dialect, decimal=decimal, date_format=date_format,
                      configured=frozenset(configured))

    def report(kind_: str, canonical: str, mask: np.ndarray, message: str,
               values: pd.Series | None = None) -> None:
        _report(problems, name, kind_, headers[canonical], mapped(canonical), mask, lines,
                raw[canonical] if values is None else values, message)

    def mapped(canonical: str) -> str:
        return "" if headers[canonical] == canonical else f" ({canonical})"

    columns: dict[str, pd.Series] = {}
    required = set(REQUIRED_COLUMNS[kind])
    for canonical in REQUIRED_COLUMNS[kind] + OPTIONAL_COLUMNS[kind]:
        if canonical not in raw:
            continue
        text = raw[canonical]
        blank = text.str.strip().eq("").to_numpy()
        if canonical in required and blank.any():
            report("missing_value", canonical, blank,
                   f"empty value; expected a {canonical.replace('_', ' ')} in every row")
        if canonical in NUMBER_COLUMNS:
            values, bad = parse_numbers(text, decimal)
            if bad.any():
                example = "1234,56 or 1.234,56" if decimal == "," else "1234.56 or 1,234.56"
                report("unparseable_number", canonical, bad,
                       f"not a number; expected a number like {example} "
                       f"({_decimal_note(decimal, 'decimal' in configured)})")
            columns[canonical] = pd.Series(values, index=data.index)
        elif canonical in DATE_COLUMNS:
            dates, bad = date_parts[canonical].assemble(date_format)
            bad &= ~excused
            if bad.any():
                report("unparseable_date", canonical, bad,
                       f"not a date; expected {_date_note(date_format, options.date_format)}")
            columns[canonical] = dates
        elif canonical in KEY_COLUMNS:
            keys, unknown = _relationship_keys(text, blank)
            if unknown.any():
                report("unknown_relationship_type", canonical, unknown,
                       "unknown relationship type; expected one of "
                       + ", ".join(RELATIONSHIP_TYPES))
            columns[canonical] = keys
        else:
            columns[canonical] = parse_text(text)

    _check_plausible(kind, columns, report, limit, as_of, today)

    frame = pd.DataFrame(columns, index=data.index)
    if "satisfaction" in frame and complete:
        frame["satisfaction"] = _integers(frame["satisfaction"], nullable=False)
    if "nps" in frame:
        frame["nps"] = _integers(frame["nps"], nullable=True)
    used = set(headers.values())
    for column in data.columns:
        if column in used:
            continue
        target = column if column not in frame else f"{column} (in file)"
        frame[target] = infer_column(data[column], decimal, date_format)
    frame = frame.reset_index(drop=True)
    return _Loaded(kind, name, frame, lines, raw, headers, dialect, complete)


def _integers(values: pd.Series, nullable: bool) -> pd.Series:
    whole = values.where(values == values.round())
    if not nullable and not whole.isna().any():
        return whole.astype("int64")
    return whole.astype("Int64")


def _match_columns(kind: str, table: RawTable, mapping: dict[str, str], options: CsvOptions,
                   problems: ProblemList) -> dict[str, str]:
    """Canonical column -> header in the file, reporting missing and repeated columns."""
    available = list(table.data.columns)
    by_key: dict[str, str] = {}
    for header in available:
        by_key.setdefault(_header_key(header), header)
    found_list = ", ".join(repr(h) for h in table.header[:15]) + (
        ", …" if len(table.header) > 15 else "")
    headers: dict[str, str] = {}
    name = table.file
    hint = _separator_hint(table, options)
    if hint:
        problems.add(name, "wrong_separator",
                     f"the whole header is one column ({found_list}){hint}",
                     column=table.header[0])
        return headers
    for canonical in REQUIRED_COLUMNS[kind] + OPTIONAL_COLUMNS[kind]:
        if canonical in mapping:
            wanted = clean_header(str(mapping[canonical]))
            found = wanted if wanted in available else by_key.get(_header_key(wanted))
            if found is None:
                problems.add(name, "missing_column",
                             f"not found, although client.yaml maps {canonical} to it "
                             f"(columns: {kind}: {canonical}); found columns: {found_list}; "
                             "expected the header exactly as written in the file",
                             column=wanted)
                continue
        else:
            found = canonical if canonical in available else by_key.get(_header_key(canonical))
            if found is None:
                if canonical in REQUIRED_COLUMNS[kind]:
                    suggestion = _suggest(canonical, table.header)
                    problems.add(name, "missing_column",
                                 f"required column not found; found columns: {found_list}; "
                                 f"expected a column named {canonical}, or map the client's "
                                 f"header to it in client.yaml under 'columns: {kind}: "
                                 f"{canonical}: <header>'"
                                 + (f" (perhaps {suggestion!r}?)" if suggestion else ""),
                                 column=canonical)
                continue
        repeats = table.header.count(found)
        if repeats > 1:
            problems.add(name, "duplicate_column",
                         f"appears {repeats} times in the header; expected each column once "
                         f"(the first is used as {canonical})", column=found)
        headers[canonical] = found
    return headers


def _header_key(header: str) -> str:
    return re.sub(r"[\s_\-]+", "_", header.strip().casefold())


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", text.casefold()).strip("_")


def _suggest(canonical: str, headers: list[str]) -> str | None:
    for header in headers:
        folded = _fold(header)
        if any(hint in folded for hint in _HINTS.get(canonical, ())):
            return header
    return None


def _separator_hint(table: RawTable, options: CsvOptions) -> str:
    if len(table.header) != 1:
        return ""
    others = [s for s in SEPARATORS if s != table.dialect.separator and s in table.header[0]]
    if not others:
        return ""
    sep = "tab" if others[0] == "\t" else repr(others[0])
    if table.dialect.typed:
        return (f"; it holds {sep}-separated text in one column: split it into columns "
                "(in Excel: Data > Text to Columns) or give crmkit the CSV export itself")
    if options.separator:
        return (f"; expected columns separated by {options.separator!r} as client.yaml says "
                f"(csv.separator), but the header looks {sep}-separated")
    return f"; the header looks {sep}-separated: set csv.separator in client.yaml"


def _settle_date_format(name: str, headers: dict[str, str], parts: dict[str, DateParts],
                        options: CsvOptions, lines: np.ndarray, raw: dict[str, pd.Series],
                        problems: ProblemList) -> tuple[str | None, np.ndarray]:
    """Choose the file's date order; report evidence that contradicts it.

    Returns the format and a mask of rows already reported (not to report twice).
    """
    n = len(lines)
    excused = np.zeros(n, dtype=bool)
    if not parts:
        return options.date_format, excused
    evidence = {c: p.evidence() for c, p in parts.items()}
    total = DateEvidence(iso=sum(e.iso for e in evidence.values()),
                         numeric=sum(e.numeric for e in evidence.values()),
                         compact=sum(e.compact for e in evidence.values()))
    configured = options.date_format
    chosen = configured or total.guess()
    for canonical, ev in evidence.items():
        header = headers[canonical]
        column_note = "" if header == canonical else f" ({canonical})"
        if chosen == "monthfirst" and len(ev.dayfirst):
            rows = ev.dayfirst
            message = ("day first (the first part is over 12) although client.yaml says "
                       "csv.date_format: monthfirst; expected month/day/year, or remove the "
                       "setting")
        elif chosen in ("dayfirst", None) and len(ev.monthfirst) and not len(ev.dayfirst):
            rows = ev.monthfirst
            if configured:
                message = ("month first (the second part is over 12) although client.yaml says "
                           "csv.date_format: dayfirst; expected day/month/year, or set "
                           "csv.date_format: monthfirst")
            else:
                message = ("month first (the second part is over 12); expected day/month/year, "
                           "or set csv.date_format: monthfirst in client.yaml if the export is "
                           "month/day/year")
        else:
            continue
        mask = np.zeros(n, dtype=bool)
        mask[rows] = True
        excused |= mask
        _report(problems, name, "date_format", header, column_note, mask, lines, raw[canonical],
                "dates written " + message)
    return chosen, excused


def _relationship_keys(text: pd.Series, blank: np.ndarray) -> tuple[pd.Series, np.ndarray]:
    uniques = pd.unique(text.to_numpy(dtype=object))
    lookup = {value: RELATIONSHIP_ALIASES.get(_fold(str(value))) for value in uniques}
    keys = text.map(lookup).astype("str")
    unknown = keys.isna().to_numpy() & ~blank
    return keys, unknown


def _check_plausible(kind: str, columns: dict[str, pd.Series], report, limit: dt.date,
                     as_of: dt.date | None, today: dt.date) -> None:
    def values(canonical: str) -> np.ndarray:
        return columns[canonical].to_numpy(dtype=float, na_value=np.nan)

    with np.errstate(invalid="ignore"):
        if "amount" in columns:
            amount = values("amount")
            report("implausible_value", "amount", np.abs(amount) > MAX_ABS_AMOUNT,
                   f"amount beyond ±{MAX_ABS_AMOUNT:,.0f}; expected the amount of one "
                   "transaction line (check the decimal mark and the column mapping)")
            if "margin" in columns:
                margin = values("margin")
                report("implausible_value", "margin", np.abs(margin) > np.abs(amount),
                       "margin larger than the amount of the line; expected the gross margin "
                       "AMOUNT of the line (not a rate), at most the amount in absolute value")
        if "minutes" in columns:
            minutes = values("minutes")
            report("implausible_value", "minutes", (minutes < 0) | (minutes > MAX_MINUTES),
                   f"outside 0 to {MAX_MINUTES} minutes; expected the duration of one "
                   "interaction in minutes")
        if "category_spend" in columns:
            report("implausible_value", "category_spend", values("category_spend") < 0,
                   "negative; expected the customer's estimated yearly spend in the category")
        for canonical, (low, high), label in (("satisfaction", SATISFACTION_RANGE,
                                               "1 (completely dissatisfied) to 5 (completely "
                                               "satisfied)"),
                                              ("nps", NPS_RANGE, "0 to 10")):
            if canonical in columns:
                score = values(canonical)
                bad = np.isfinite(score) & ((score < low) | (score > high)
                                            | (score != np.round(score)))
                report("implausible_value", canonical, bad,
                       f"out of range or not whole; expected a whole number from {label}")
    if "date" in columns:
        dates = columns["date"]
        too_early = (dates < pd.Timestamp(EARLIEST_DATE)).to_numpy()
        report("implausible_date", "date", too_early,
               f"before {EARLIEST_DATE:%Y-%m-%d}; expected a date of the client's activity "
               "(check the year)")
        future = (dates > pd.Timestamp(limit)).to_numpy()
        if as_of is not None and as_of <= today:
            message = (f"after the analysis date as_of {as_of:%Y-%m-%d} set in client.yaml; "
                       "expected dates up to that day (or a later as_of)")
        else:
            message = f"in the future (today is {today:%Y-%m-%d}); expected dates up to today"
        report("future_date", "date", future, message)


def _check_duplicates(customers: _Loaded, problems: ProblemList) -> None:
    ids = customers.frame["customer_id"]
    duplicated = (ids.duplicated(keep="first") & ids.notna()).to_numpy()
    if not duplicated.any():
        return
    header = customers.headers["customer_id"]
    note = "" if header == "customer_id" else " (customer_id)"
    first_line = dict(zip(ids[~duplicated].to_numpy(), customers.lines[~duplicated],
                          strict=True))
    idx = np.flatnonzero(duplicated)
    examples = [f"{ids.iloc[i]} (first at line {first_line.get(ids.iloc[i], '?')})"
                for i in idx[:EXAMPLES_SHOWN]]
    problems.add(customers.file, "duplicate_customer",
                 f"customer id{note} repeated; expected one row per customer "
                 f"({_plural(ids[duplicated].nunique(), 'id')} repeated)",
                 column=header, rows=customers.lines[idx[:EXAMPLES_SHOWN]].tolist(),
                 examples=examples, count=len(idx))


def _check_known(item: _Loaded, known: pa.Array, problems: ProblemList,
                 customers_file: str = "customers.csv") -> None:
    ids = item.frame["customer_id"]
    # pyarrow's hash lookup: pandas' isin on arrow strings goes through Python objects.
    found = pc.is_in(pa.array(ids, from_pandas=True, type=pa.large_string()), value_set=known)
    unknown = ~pc.fill_null(found, True).to_numpy(zero_copy_only=False) & ids.notna().to_numpy()
    if not unknown.any():
        return
    header = item.headers["customer_id"]
    note = "" if header == "customer_id" else " (customer_id)"
    distinct = ids[unknown].nunique()
    what = {"transactions": "every transaction", "interactions": "every interaction",
            "survey": "every survey response"}[item.kind]
    _report(problems, item.file, "unknown_customer", header, note, unknown, item.lines,
            item.raw["customer_id"],
            f"customer id not in {customers_file} ({_plural(distinct, 'unknown id')}); "
            f"expected {what} "
            f"to belong to a customer listed in {customers_file}")


def _report(problems: ProblemList, file: str, kind: str, column: str, note: str,
            mask: np.ndarray, lines: np.ndarray, values: pd.Series, message: str) -> None:
    """Add one problem with the first rows of ``mask`` as examples (values as found)."""
    idx = np.flatnonzero(mask)
    if not len(idx):
        return
    take = idx[:EXAMPLES_SHOWN]
    problems.add(file, kind, (note.strip() + " " if note else "") + message, column=column,
                 rows=[int(v) for v in lines[take]],
                 examples=[str(v) for v in values.iloc[take]], count=int(len(idx)))


def _decimal_note(decimal: str, configured: bool) -> str:
    mark = "decimal comma" if decimal == "," else "decimal point"
    if configured:
        return f"{mark} as set in client.yaml csv.decimal"
    return f"{mark} detected; set csv.decimal in client.yaml if that is wrong"


def _date_note(date_format: str | None, configured: str | None) -> str:
    if date_format == "iso" and configured:
        return "a date like 2024-03-05 (csv.date_format: iso in client.yaml)"
    if date_format == "yyyymmdd":
        return ("a date like 20240305 (yyyymmdd"
                + (" as set in client.yaml)" if configured else ", as the file's other dates)")
                + " or 2024-03-05")
    if date_format == "monthfirst":
        return "a date like 03/05/2024 (month/day/year as set in client.yaml) or 2024-03-05"
    return "a date like 05/03/2024 (day/month/year) or 2024-03-05"


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")
