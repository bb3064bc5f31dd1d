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
import contextvars
import datetime as dt
import hashlib
import os
import re
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from crmkit.core.catalogue import RELATIONSHIP_ALIASES, RELATIONSHIP_TYPES
from crmkit.core.i18n import Formatter, t, tn
from crmkit.core.problems import EXAMPLES_SHOWN, LANGUAGE, ProblemList, WorkspaceError
from crmkit.inputs import line_items, occasions
from crmkit.inputs.history_checks import history_checks
from crmkit.inputs.line_items import LeftOut, Reading
from crmkit.inputs.queries import run_query
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
    CustomerSettings,
    FileSource,
    SegmentationSettings,
    TransactionSettings,
    load_config,
)
from crmkit.settings.crosscheck import cross_check

NUMBER_COLUMNS = ("amount", "margin", "minutes", "category_spend", "satisfaction", "nps",
                  "quantity", "unit_price")
DATE_COLUMNS = ("date", "start_date", "end_date")
KEY_COLUMNS = ("relationship_type", "preferred_relationship")

TABLES = (*REQUIRED_FILES, *OPTIONAL_FILES)
#: Share of the revenue read that, left out, deserves a warning.
LEFT_OUT_WARNING = 0.10

#: Plausibility limits.
MAX_ABS_AMOUNT = 1e7
MAX_MINUTES = 24 * 60
EARLIEST_DATE = dt.date(1970, 1, 1)
SATISFACTION_RANGE = (1, 5)
NPS_RANGE = (0, 10)

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
    "quantity": ("cantidad", "quantity", "qty", "unidades", "units"),
    "unit_price": ("precio", "price", "pvp"),
    "order_id": ("invoice", "factura", "pedido", "order", "ticket", "albaran"),
}
#: The client's language while a workspace is loaded: problems are found deep in the loader, and
#: each is written in the language the consultant and the client read (client.yaml's).
#: (One variable for the whole check, in ``core.problems``: the readers and the settings'
#: validators below this layer read it too.)
_LANGUAGE = LANGUAGE


def _t(key: str, /, **values: object) -> str:
    """A problem's text in the client's language (``check.yaml``)."""
    return t(key, _LANGUAGE.get(), **values)


def _tn(key: str, count: int, /, **values: object) -> str:
    return tn(key, count, _LANGUAGE.get(), **values)


#: Placeholders a template or a colleague leaves in client.yaml, which must not reach a client.
PLACEHOLDER = re.compile(r"\b(REVIEW|TODO|TBD|FIXME|XXX)\b")


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
    readings : dict
        Table -> :class:`~crmkit.inputs.line_items.Reading`: where it came from, lines read,
        kept and left out (and why), for ``crmkit check``.
    warnings : list of Notice
        What ``crmkit check`` points out without blocking the run.
    customer_numbering : pandas.Categorical or None
        Each transaction line's customer id over the sorted distinct ids
        (:func:`crmkit.inputs.occasions.customer_numbering`), made once while the file is
        checked; ``crmkit run`` keeps it with the run's inputs (:mod:`crmkit.inputs.cache`), so
        that no workbook numbers ten million lines again. Not a column: whoever reads the
        transactions (a workshop participant's ``tx.head()``) sees the client's columns only.
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
    readings: dict[str, Reading] = field(default_factory=dict)
    warnings: list[Notice] = field(default_factory=list)
    customer_numbering: pd.Categorical | None = field(default=None, repr=False, compare=False)

    @property
    def occasion_lines(self) -> pd.DataFrame:
        """The transactions' columns that purchase occasions are made of
        (:data:`crmkit.inputs.occasions.LINE_COLUMNS`), for what reads nothing else of the lines;
        a run's kernel reads only those from the run folder (:mod:`crmkit.inputs.cache`)."""
        return self.transactions[[c for c in occasions.LINE_COLUMNS
                                  if c in self.transactions.columns]]

    def warning_records(self, lang: str | None = None) -> list[dict[str, object]]:
        """The check's warnings as plain JSON, for ``run.json`` (``warnings: [...]``): what the
        consultant accepted by running anyway.

        Parameters
        ----------
        lang : {"en", "es"}, optional
            Language of each ``message``; default the client's.
        """
        lang = lang or self.config.language
        return [notice.record(lang) for notice in self.warnings]

    def describe(self, lang: str = "en") -> str:
        """What ``crmkit check`` prints: each table, where it came from, what was kept, why.

        Parameters
        ----------
        lang : {"en", "es"}
            The language of the text (the client's, in ``crmkit check``).
        """
        fmt = Formatter(lang, self.config.currency)
        lines = [t("check_client", lang, name=self.config.name, slug=self.slug,
                   language=self.config.language, currency=self.config.currency)]
        names = {kind: self.files.get(kind, f"{kind}.csv") for kind in TABLES}
        for kind in TABLES:
            if kind in self.readings and self.readings[kind].origin in ("query", "derived"):
                names[kind] = kind
        width = max(len(name) for name in names.values())
        for kind in TABLES:
            name = names[kind]
            frame = getattr(self, kind)
            reading = self.readings.get(kind)
            if frame is None:
                lines.append(f"  {name:<{width}}  {t('check_not_provided', lang)}")
                continue
            if kind == "customers":
                text = _noun("customer", frame["customer_id"].nunique(), lang, fmt)
            else:
                text = _noun(kind.rstrip("s"), len(frame), lang, fmt)
                if "date" in frame and len(frame):
                    text = t("check_dates_range", lang, what=text,
                             first=f"{frame['date'].min():%Y-%m-%d}",
                             last=f"{frame['date'].max():%Y-%m-%d}")
                text = t("check_of_customers", lang, what=text, customers=_noun(
                    "customer", frame["customer_id"].nunique(), lang, fmt))
            if reading is not None and reading.origin == "derived":
                text = t("check_customers_derived", lang, customers=text, file=reading.source)
            lines.append(f"  {name:<{width}}  {text}")
            pad = f"  {'':<{width}}  "
            if reading is not None and reading.origin == "query":
                lines.append(pad + t("check_from_query", lang, query=reading.source,
                                     files=", ".join(reading.files) or "–"))
            elif name in self.sources and (reading is None or reading.origin == "file"):
                lines.append(pad + t("check_read_as", lang,
                                     dialect=self.sources[name].describe(lang)))
            if reading is not None and reading.origin != "derived":
                lines.extend(pad + line for line in _reading_lines(reading, lang, fmt))
        key = "check_as_of_config" if self.config.as_of else "check_as_of_last"
        lines.append(t(key, lang, date=f"{self.as_of:%Y-%m-%d}"))
        if self.warnings:
            lines.append(t("check_warnings", lang))
            lines.extend("  - " + notice.render(lang) for notice in self.warnings)
        lines.append(t("check_no_problems", lang))
        return "\n".join(lines)


@dataclass(frozen=True)
class Notice:
    """A warning of ``crmkit check``: a message key of ``check.yaml`` and its values."""

    key: str
    values: tuple[tuple[str, str], ...] = ()

    def render(self, lang: str = "en") -> str:
        """The warning in ``lang``."""
        return t(self.key, lang, **dict(self.values))

    def record(self, lang: str = "en") -> dict[str, object]:
        """The warning as plain JSON: ``key``, ``values`` and the ``message`` in ``lang``."""
        return {"key": self.key, "values": dict(self.values), "message": self.render(lang)}


def _notice(message_key: str, /, **values: object) -> Notice:
    return Notice(message_key, tuple((k, str(v)) for k, v in values.items()))


def _noun(noun: str, count: int, lang: str, fmt: Formatter) -> str:
    return t(f"check_noun_{noun}_{'one' if count == 1 else 'many'}", lang, n=fmt.number(count))


def _reading_lines(reading: Reading, lang: str, fmt: Formatter) -> list[str]:
    """The lines of ``crmkit check`` on what was kept and left out of one table."""
    out = []
    if reading.left_out:
        out.append(t("check_lines_kept", lang,
                     read=_noun("line", reading.lines_read, lang, fmt),
                     kept=fmt.number(reading.lines_kept)))
    if reading.amount_from:
        quantity, unit_price = reading.amount_from
        out.append(t("check_amount_from", lang, quantity=quantity, unit_price=unit_price))
    if reading.orders is not None:
        out.append(t("check_orders", lang, orders=_noun("order", reading.orders, lang, fmt)))
    if reading.cancellations is not None and reading.cancellations.lines:
        out.append(t("check_cancellations", lang, prefix=reading.prefix,
                     lines=_noun("line", reading.cancellations.lines, lang, fmt),
                     amount=fmt.money(reading.cancellations.amount, 2)))
    gross = reading.revenue + reading.left_out_amount
    for item in reading.left_out:
        share = fmt.pct(item.amount / gross, 1) if gross else "–"
        out.append(t(f"check_left_out_{item.reason}", lang,
                     lines=_noun("line", item.lines, lang, fmt),
                     amount=fmt.money(item.amount, 2), share=share,
                     codes=", ".join(item.codes) or "–"))
    if reading.table == "transactions" and (reading.left_out or reading.amount_from
                                            or reading.cancellations is not None):
        out.append(t("check_revenue", lang, revenue=fmt.money(reading.revenue, 2)))
    return out


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
    reading: Reading | None = None


@dataclass
class _Inputs:
    """The settings of ``client.yaml`` that say how to read the files (lenient when invalid)."""

    options: CsvOptions
    columns: dict[str, dict[str, str]]
    as_of: dt.date | None
    files: dict[str, FileSource]
    queries: dict[str, str]
    transactions: TransactionSettings
    customers: CustomerSettings


def _load(root: Path, problems: ProblemList) -> Workspace | None:
    _LANGUAGE.set("en")  # until client.yaml says otherwise
    if not root.is_dir():
        problems.add(str(root), "missing_workspace",
                     _t("check_missing_workspace", config=CONFIG_FILE))
        return None
    checksums: dict[str, str] = {}
    config: ClientConfig | None = None
    config_path = root / CONFIG_FILE
    # The language is known before the settings are validated, so that the validators' own
    # messages are written in it too.
    raw_language = client_language(root)
    _LANGUAGE.set(raw_language)
    try:
        config = load_config(root)
    except WorkspaceError as error:
        problems.extend(error.problems)
        if "invalid_yaml" in error.problems.kinds():
            # without its settings (separator, column names) every file would be misread and
            # the real problem buried under them: the syntax is fixed first
            return None
    language = config.language if config is not None else raw_language
    _LANGUAGE.set(language if language in ("en", "es") else "en")
    if config_path.is_file():
        with contextlib.suppress(OSError):  # an unreadable file is reported by load_config
            checksums[CONFIG_FILE] = _sha256_file(config_path)
    if config is not None:
        inputs = _Inputs(config.csv, config.columns, config.as_of, dict(config.files),
                         dict(config.queries), config.transactions, config.customers)
    else:
        options, columns, as_of = _lenient_settings(config_path)
        inputs = _Inputs(options, columns, as_of, _lenient_files(config_path),
                         _lenient_queries(config_path),
                         _lenient_section(config_path, "transactions", TransactionSettings),
                         _lenient_section(config_path, "customers", CustomerSettings))
    options, columns, as_of, files = inputs.options, inputs.columns, inputs.as_of, inputs.files
    segmentation = config.segmentation if config is not None \
        else _lenient_segmentation(config_path)
    segment_map = None
    if segmentation is not None:
        segment_map = _check_segment_map(root, segmentation, problems)
    if options.encoding:
        try:
            codecs.lookup(options.encoding)
        except LookupError:
            problems.add(CONFIG_FILE, "invalid_setting", _t(
                "check_bad_encoding", setting="csv.encoding", found=repr(options.encoding)))
            options = options.model_copy(update={"encoding": None})
    for kind, source in list(files.items()):
        if source.csv is not None and source.csv.encoding:
            try:
                codecs.lookup(source.csv.encoding)
            except LookupError:
                problems.add(CONFIG_FILE, "invalid_setting", _t(
                    "check_bad_encoding", setting=f"files.{kind}.csv.encoding",
                    found=repr(source.csv.encoding)))
                files[kind] = source.model_copy(
                    update={"csv": source.csv.model_copy(update={"encoding": None})})

    today = dt.date.today()
    limit = min(today, as_of) if as_of else today
    def open_one(kind: str, found: ProblemList, sums: dict[str, str], _notes) -> _Opened | None:
        return _open_file(root, kind, options, columns.get(kind, {}), found, sums,
                          files.get(kind), inputs)

    opened = _each_file(open_one, TABLES, problems, checksums, [])
    # A file without decimals (whole numbers only) is written like the client's other files.
    comma = sum(o.evidence[0] for o in opened.values() if o is not None)
    point = sum(o.evidence[1] for o in opened.values() if o is not None)
    default_decimal = ("," if comma > point else ".") if comma or point else None
    warnings: list[Notice] = []

    def load_one(kind: str, found: ProblemList, _sums, notes: list[Notice]) -> _Loaded | None:
        one = _load_file(opened[kind], options, default_decimal, found, limit, as_of, today,
                         inputs.transactions, notes)
        if kind == "customers" and "customer_id" in one.frame:
            _check_duplicates(one, found)
        return one

    loaded = dict.fromkeys(TABLES) | _each_file(
        load_one, [kind for kind in TABLES if opened.get(kind) is not None], problems,
        checksums, warnings)

    if inputs.customers.from_transactions and loaded["customers"] is None:
        loaded["customers"] = _customers_from(loaded["transactions"])

    # the transactions' customers numbered once, for the checks below and the run's workbooks
    numbering = (occasions.customer_numbering(loaded["transactions"].frame)
                 if loaded["transactions"] is not None else None)
    customers = loaded["customers"]
    if customers is not None and "customer_id" in customers.frame:
        known = pa.array(customers.frame["customer_id"].dropna().unique(), type=pa.large_string())
        for kind in ("transactions", "interactions", "survey"):
            other = loaded[kind]
            if other is not None and "customer_id" in other.frame:
                _check_known(other, known, problems, customers.file,
                             numbering if kind == "transactions" else None)

    if config is not None:
        interactions = loaded["interactions"]
        channels = () if interactions is None or "channel" not in interactions.frame \
            else interactions.frame["channel"].dropna().astype(str).unique()
        by_map = segment_map if config.segmentation.method == "map" else None
        problems.extend(cross_check(config, by_map, channels))
        _check_line_settings(config.transactions, opened.get("transactions"), problems)
        tx, cu = loaded["transactions"], loaded["customers"]
        if tx is not None and tx.complete and cu is not None and not problems:
            with _never_a_traceback("transactions", problems):
                lines = tx.frame if numbering is None else \
                    tx.frame.assign(**{occasions.CUSTOMER_CODES: numbering})
                found, notes = history_checks(config, cu.frame, lines, as_of, cu.file)
                problems.extend(found)
                warnings.extend(Notice(key, tuple((k, str(v)) for k, v in values.items()))
                                for key, values in notes)
    if problems or config is None:
        return None
    if any(loaded[kind] is None or not loaded[kind].complete for kind in REQUIRED_FILES):
        return None  # pragma: no cover - always comes with a problem
    transactions = loaded["transactions"].frame
    if as_of is None:
        as_of = transactions["date"].max().date()
    warnings.extend(_placeholders(config_path))
    warnings.extend(_history_warnings(loaded["transactions"], config, as_of, numbering))
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
        sources={item.file: item.dialect for item in loaded.values()
                 if item is not None and (item.reading is None or item.reading.origin == "file")},
        files={kind: item.file for kind, item in loaded.items() if item is not None},
        readings={kind: item.reading for kind, item in loaded.items()
                  if item is not None and item.reading is not None},
        warnings=warnings,
        customer_numbering=numbering,
    )


def _customers_from(transactions: _Loaded | None) -> _Loaded | None:
    """The customer list of a client without a customers file: the transactions' distinct ids.

    One row per customer id, in the order of the ids, with ``first_purchase`` (the date of the
    first line); no typological attributes.
    """
    if transactions is None or "customer_id" not in transactions.frame:
        return None
    frame = transactions.frame
    ids = frame["customer_id"]
    present = ids.notna()
    if "date" in frame:
        first = frame.loc[present].groupby("customer_id", sort=True)["date"].min()
        customers = pd.DataFrame({"customer_id": first.index.astype(str).to_numpy(dtype=object),
                                  "first_purchase": first.to_numpy()})
    else:  # pragma: no cover - a transactions file without dates is already a problem
        customers = pd.DataFrame({"customer_id": sorted(ids[present].unique())})
    customers["customer_id"] = customers["customer_id"].astype(ids.dtype)
    reading = Reading("customers", transactions.file, origin="derived",
                      lines_read=len(frame), lines_kept=len(customers))
    return _Loaded("customers", transactions.file, customers,
                   np.arange(2, len(customers) + 2, dtype=np.int64), {},
                   {"customer_id": transactions.headers.get("customer_id", "customer_id")},
                   transactions.dialect, True, reading)


def _check_line_settings(settings: TransactionSettings, opened: _Opened | None,
                         problems: ProblemList) -> None:
    """The settings of ``transactions:`` name columns the transactions have."""
    if opened is None:
        return
    file = opened.file
    for key, column, needed in (("cancellation_prefix", "order_id", settings.cancellation_prefix),
                                ("exclude_products", "product", settings.exclude_products)):
        if needed and column not in opened.headers:
            problems.add(CONFIG_FILE, "invalid_setting", _t(
                "check_setting_needs_column", setting=key, file=file, column=column))


def _placeholders(config_path: Path) -> list[Notice]:
    """Values of client.yaml that still hold REVIEW, TODO, TBD... (comments are not values)."""
    try:
        raw = yaml.safe_load(config_path.read_bytes().decode("utf-8-sig", errors="replace"))
    except Exception:  # noqa: BLE001 - a client.yaml that loaded reads again
        return []
    found: list[Notice] = []

    def walk(value: object, path: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{path}[{i}]")
        elif isinstance(value, str):
            match = PLACEHOLDER.search(value)
            if match:
                found.append(_notice("check_warning_placeholder", setting=path,
                                   value=match.group(1)))

    walk(raw, "")
    return found


def _history_warnings(transactions: _Loaded, config: ClientConfig, as_of: dt.date,
                      numbering: pd.Categorical | None = None) -> list[Notice]:
    """A history shorter than the indicators' window; customers who only returned goods
    (``numbering``: the lines' customers numbered, :func:`occasions.customer_numbering`)."""
    out: list[Notice] = []
    frame = transactions.frame
    first = frame["date"].min()
    window = config.assumptions.window_months
    if pd.notna(first):
        months = (as_of.year - first.year) * 12 + as_of.month - first.month
        if months < window:
            out.append(_notice("check_warning_short_history", file=transactions.file,
                               months=months, window=window))
    if numbering is not None and len(numbering) == len(frame):
        # Customers none of whose lines is a purchase, by their numbers, in the order they
        # first appear (as below)
        codes = np.asarray(numbering.codes)
        bought = frame["amount"].to_numpy(dtype=float, na_value=np.nan) >= 0
        buyer = np.bincount(codes[bought], minlength=len(numbering.categories)) > 0
        seen = pd.unique(codes)
        only_returns = numbering.categories[seen[~buyer[seen]]].tolist()
    else:
        # with pyarrow's hash sets: pandas' groupby on arrow strings takes a second on a
        # million lines
        ids = pa.array(frame["customer_id"], from_pandas=True)
        bought = pc.greater_equal(pa.array(frame["amount"], from_pandas=True), 0)
        buyers = pc.unique(pc.filter(ids, pc.fill_null(bought, False)))
        everyone = pc.unique(pc.drop_null(ids))
        only_returns = pc.filter(everyone, pc.invert(pc.is_in(everyone, value_set=buyers)))
        only_returns = only_returns.to_pylist()
    if len(only_returns):
        out.append(_notice("check_warning_only_returns", file=transactions.file,
                           count=f"{len(only_returns):,}",
                           examples=", ".join(map(str, only_returns[:EXAMPLES_SHOWN]))))
    return out


def _each_file(work, kinds, problems: ProblemList, checksums: dict[str, str],
               warnings: list[Notice]) -> dict:
    """``{kind: work(kind, problems, checksums, warnings)}``, the files side by side.

    Reading a file is mostly pyarrow's splitting and parsing, which run outside the GIL, so two
    files read in two threads take about the time of the longer (the transactions) on a
    two-core machine, where one after the other they took the sum. Each file collects its
    problems, checksums and warnings apart; they are added in ``kinds``' order, so what
    ``crmkit check`` prints is the same as one file after the other. Each thread works in a copy
    of this context: the messages are written in the client's language
    (:data:`~crmkit.core.problems.LANGUAGE`).
    """
    def one(kind: str):
        found, sums, notes = ProblemList(), {}, []
        result = None
        with _never_a_traceback(kind, found):
            result = work(kind, found, sums, notes)
        return result, found, sums, notes

    with ThreadPoolExecutor(max_workers=min(len(kinds), os.cpu_count() or 1) or 1) as pool:
        futures = [pool.submit(contextvars.copy_context().run, one, kind) for kind in kinds]
        done = [future.result() for future in futures]
    out = {}
    for kind, (result, found, sums, notes) in zip(kinds, done, strict=True):
        out[kind] = result
        problems.extend(found)
        checksums.update(sums)
        warnings.extend(notes)
    return out


@contextlib.contextmanager
def _never_a_traceback(kind: str, problems: ProblemList):
    """Turn an unexpected error while reading a file into a problem about that file."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - a user's file must never cause a traceback
        problems.add(f"{kind}.csv", "unreadable_file",
                     _t("check_crash_file", error=f"{type(exc).__name__}: {exc}"))


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


def client_language(root: str | Path) -> str:
    """The language a workspace's messages are told in: its ``client.yaml``'s ``language``, read
    even from a file that is not valid YAML (so that the syntax error itself is told in it), else
    English."""
    try:
        text = (Path(root) / CONFIG_FILE).read_bytes().decode("utf-8-sig", errors="replace")
    except OSError:
        return "en"
    found = re.search(r"(?m)^language:\s*[\"']?(en|es)[\"']?\s*(#.*)?$", text)
    return found.group(1) if found else "en"


def _raw_section(config_path: Path, key: str):
    """The raw ``key:`` of a ``client.yaml`` that failed validation (None when unreadable)."""
    try:
        raw = yaml.safe_load(config_path.read_bytes().decode("utf-8-sig", errors="replace"))
        return raw.get(key) or {}
    except Exception:  # noqa: BLE001 - absent or already reported by load_config
        return None


def _lenient_files(config_path: Path) -> dict[str, FileSource]:
    """The valid entries of ``files:`` in a ``client.yaml`` that failed validation."""
    entries = _raw_section(config_path, "files")
    if entries is None:
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


def _lenient_queries(config_path: Path) -> dict[str, str]:
    """The ``queries:`` of a ``client.yaml`` that failed validation, when they are text."""
    entries = _raw_section(config_path, "queries")
    if not isinstance(entries, dict):
        return {}
    return {str(k): v for k, v in entries.items()
            if k in REQUIRED_COLUMNS and isinstance(v, str) and v.strip()}


def _lenient_section(config_path: Path, key: str, model: type):
    """One section of a ``client.yaml`` that failed validation; its defaults when invalid."""
    try:
        return model.model_validate(_raw_section(config_path, key) or {})
    except Exception:  # noqa: BLE001 - already reported by load_config
        return model()


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
                     _t("check_crash_map", error=f"{type(exc).__name__}: {exc}"))
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
    files: list[str] | None = None  # for a query: the files it read


def _open_file(root: Path, kind: str, options: CsvOptions, mapping: dict[str, str],
               problems: ProblemList, checksums: dict[str, str],
               source: FileSource | None = None, inputs: _Inputs | None = None
               ) -> _Opened | None:
    sheet = None
    query = inputs.queries.get(kind) if inputs is not None else None
    derived = kind == "customers" and inputs is not None and inputs.customers.from_transactions
    if query is not None:  # queries: <kind>: in client.yaml
        try:
            result = run_query(root, kind, query)
        except ReadError as error:
            problems.extend([error.problem])
            return None
        checksums.update(result.files)
        table = result.table
        if table.data.empty:
            problems.add(table.file, "empty_file", _t(
                "check_query_no_rows", columns=", ".join(map(repr, table.header[:8])),
                row=_t(f"check_row_{kind}")))
            return None
        headers = _match_columns(kind, table, mapping, options, problems)
        return _Opened(kind, table.file, table, headers, (0, 0), options, sorted(result.files))
    if derived and source is None:
        present = sorted(p.name for p in root.iterdir()
                         if p.stem == kind and p.suffix.lower() in SUPPORTED_SUFFIXES)
        if present:
            problems.add(present[0], "ambiguous_file", _t("check_file_and_derived"))
        return None
    if source is not None:  # files: <kind>: in client.yaml
        name, sheet = source.file, source.sheet
        options = options.merged(source.csv)
        path = root / name
        if path.suffix.lower() not in SUPPORTED_SUFFIXES:
            return None  # reported against client.yaml by load_config
        if path.is_dir():
            problems.add(name, "missing_file", _t("check_named_folder", kind=kind))
            return None
        if not path.is_file():
            folder = path.parent
            present = sorted(p.name for p in folder.iterdir()
                             if not p.name.startswith(".")) if folder.is_dir() else []
            found = (_t("check_found_files", files=", ".join(map(repr, present[:12])))
                     if present else _t("check_folder_empty") if folder.is_dir()
                     else _t("check_folder_missing"))
            problems.add(name, "missing_file", _t(
                "check_named_not_found", kind=kind, path=repr(source.path), found=found))
            return None
    else:
        name = f"{kind}.csv"
        path = root / name
        if not path.exists():
            others = sorted(p.name for p in root.iterdir()
                            if p.stem == kind and p.suffix.lower() in SUPPORTED_SUFFIXES
                            and p.is_file())
            if len(others) > 1:
                problems.add(name, "ambiguous_file", _t(
                    "check_several_candidates", kind=kind, files=", ".join(map(repr, others)),
                    first=repr(others[0])))
                return None
            if others:
                name = others[0]
                path = root / name
        if path.exists() and not path.is_file():
            problems.add(name, "missing_file", _t("check_is_folder"))
            return None
        if not path.is_file():
            if kind in REQUIRED_FILES:
                present = sorted(p.name for p in root.iterdir() if not p.name.startswith("."))
                near = [p for p in present if p.casefold().startswith(kind[:5])]
                found = (_t("check_found_files", files=", ".join(map(repr, present[:12])))
                         if present else _t("check_folder_empty"))
                hint = _t("check_name_it_hint", kind=kind, file=repr(near[0])) if near else ""
                derive = _t("check_derive_hint") if kind == "customers" else ""
                problems.add(name, "missing_file", _t(
                    "check_file_not_found", found=found, hint=hint, kind=kind, name=name,
                    derive=derive))
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
            problems.add(name, "empty_file", _t(
                "check_header_no_rows", header=", ".join(map(repr, table.header[:8])),
                row=_t(f"check_row_{kind}")))
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
               today: dt.date, settings: TransactionSettings | None = None,
               warnings: list[Notice] | None = None) -> _Loaded:
    kind, name, table, headers = opened.kind, opened.file, opened.table, dict(opened.headers)
    options = opened.options or options
    warnings = [] if warnings is None else warnings
    # Invoice lines: no amount, but quantity and unit price (amount = their product).
    line_mode = (kind == "transactions" and "amount" not in headers
                 and "quantity" in headers and "unit_price" in headers)
    complete = all(c in headers or (c == "amount" and line_mode) for c in REQUIRED_COLUMNS[kind])
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
        # Even evidence (one column of each, per-column marks below): the separator's custom.
        decimal = "," if comma > point or (comma == point and table.dialect.separator == ";") \
            else "."
    else:
        decimal = default_decimal or ("," if table.dialect.separator == ";" else ".")
    # A column whose own values show the other decimal mark is read with it (a ';' file with
    # the amount in decimal comma and the margin in decimal point).
    column_decimal: dict[str, str] = {}
    if not table.dialect.typed and not options.decimal:
        for canonical in NUMBER_COLUMNS:
            if canonical in raw:
                own_comma, own_point = decimal_evidence([raw[canonical]])
                mark = "," if own_comma > own_point else "." if own_point else decimal
                if mark != decimal:
                    column_decimal[canonical] = mark

    reading = Reading(kind, name, origin="query" if table.dialect.format == "query" else "file",
                      lines_read=len(data), files=list(opened.files or []))
    if line_mode:
        reading.amount_from = (headers["quantity"], headers["unit_price"])
    if kind == "transactions" and settings is not None:
        keep = _leave_out(raw, settings, decimal, column_decimal, line_mode, reading)
        if not keep.all():
            data = data.loc[keep].reset_index(drop=True)
            lines = lines[keep]
            raw = {canonical: data[header] for canonical, header in headers.items()}
    order = [c for c in REQUIRED_COLUMNS[kind] + OPTIONAL_COLUMNS[kind] if c in raw]

    def parse(canonical: str) -> tuple[np.ndarray, tuple | pd.Series | None]:
        """A column's blank cells and its values (a date column's wait for the date order)."""
        text = raw[canonical]
        blank = text.str.strip().eq("").to_numpy()
        if canonical in NUMBER_COLUMNS:
            return blank, parse_numbers(text, column_decimal.get(canonical, decimal))
        if canonical in DATE_COLUMNS:
            return blank, None
        if canonical in KEY_COLUMNS:
            return blank, _relationship_keys(text, blank)
        return blank, parse_text(text)

    # The columns are parsed side by side (pyarrow's kernels run outside the GIL: at a million
    # customers the transactions' columns take half the time); the problems are reported below,
    # column after column, as before.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        splitting = {c: pool.submit(DateParts.of, raw[c]) for c in DATE_COLUMNS if c in raw}
        parsing = {c: pool.submit(parse, c) for c in order}
        date_parts = {c: future.result() for c, future in splitting.items()}
        date_format, excused = _settle_date_format(name, headers, date_parts, options, lines,
                                                   raw, problems)
        assembling = {c: pool.submit(parts.assemble, date_format)
                      for c, parts in date_parts.items()}
        parsed = {c: future.result() for c, future in parsing.items()}
        assembled = {c: future.result() for c, future in assembling.items()}
    if options.date_format:
        configured.add("date_format")
    dialect = replace(table.dialect, decimal=decimal, date_format=date_format,
                      configured=frozenset(configured),
                      decimals=tuple((headers[c], m) for c, m in column_decimal.items()))

    def report(kind_: str, canonical: str, mask: np.ndarray, message: str,
               values: pd.Series | None = None) -> None:
        _report(problems, name, kind_, headers[canonical], mapped(canonical), mask, lines,
                raw[canonical] if values is None else values, message)

    def mapped(canonical: str) -> str:
        return "" if headers[canonical] == canonical else f" ({canonical})"

    columns: dict[str, pd.Series] = {}
    required = set(REQUIRED_COLUMNS[kind])
    for canonical in order:
        blank, values = parsed[canonical]
        if canonical in required and blank.any():
            report("missing_value", canonical, blank,
                   _t("check_empty_value", what=canonical.replace("_", " ")))
        if canonical in NUMBER_COLUMNS:
            mark = column_decimal.get(canonical, decimal)
            values, bad = values
            if bad.any():
                example = _t("check_number_like_comma" if mark == "," else
                             "check_number_like_point")
                report("unparseable_number", canonical, bad, _t(
                    "check_not_number", example=example,
                    note=_decimal_note(mark, "decimal" in configured)))
            columns[canonical] = pd.Series(values, index=data.index)
        elif canonical in DATE_COLUMNS:
            dates, bad = assembled[canonical]
            bad = bad & ~excused
            if bad.any():
                report("unparseable_date", canonical, bad, _t(
                    "check_not_date", note=_date_note(date_format, options.date_format)))
            columns[canonical] = dates
        elif canonical in KEY_COLUMNS:
            keys, unknown = values
            if unknown.any():
                report("unknown_relationship_type", canonical, unknown, _t(
                    "check_unknown_relationship_type", valid=", ".join(RELATIONSHIP_TYPES)))
            columns[canonical] = keys
        else:
            columns[canonical] = values

    if line_mode:
        columns = _line_amounts(columns, headers, raw)
    if kind == "transactions" and settings is not None and settings.cancellation_prefix \
            and "order_id" in raw and "amount" in columns:
        _cancel(columns, raw["order_id"], settings.cancellation_prefix, reading)

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
    if line_mode and "amount" in frame:
        # A line of quantity or price 0 holds no money and no purchase (free samples,
        # adjustments); counted, not kept.
        zero = (frame["amount"] == 0).to_numpy()
        if zero.any():
            reading.left_out.append(LeftOut("zero_amount", int(zero.sum()), 0.0))
            frame, lines = frame.loc[~zero], lines[~zero]
            raw = {canonical: values[~zero].reset_index(drop=True)
                   for canonical, values in raw.items()}
    frame = frame.reset_index(drop=True)
    reading.lines_kept = len(frame)
    if "amount" in frame:
        reading.revenue = float(np.nansum(frame["amount"].to_numpy(dtype=float)))
    if "order_id" in frame:
        reading.orders = int(frame["order_id"].nunique())
    warnings.extend(_file_warnings(kind, name, data, table.data, headers, raw, settings,
                                   reading))
    return _Loaded(kind, name, frame, lines, raw, headers, dialect, complete, reading)


def _leave_out(raw: dict[str, pd.Series], settings: TransactionSettings, decimal: str,
               column_decimal: dict[str, str], line_mode: bool, reading: Reading) -> np.ndarray:
    """The lines to keep: without those of no customer (when skipped) and excluded products.

    Each reason is counted in ``reading`` with the money its lines held; a line counts under
    the first reason that applies.
    """
    n = len(next(iter(raw.values()))) if raw else 0
    keep = np.ones(n, dtype=bool)

    def number(canonical: str, mask: np.ndarray) -> np.ndarray:
        return parse_numbers(raw[canonical][mask], column_decimal.get(canonical, decimal))[0]

    def money(mask: np.ndarray) -> float:
        if line_mode:
            values = number("quantity", mask) * number("unit_price", mask)
        elif "amount" in raw:
            values = number("amount", mask)
        else:
            return 0.0
        return float(np.nansum(values))

    if settings.missing_customer == "skip" and "customer_id" in raw:
        mask = raw["customer_id"].str.strip().eq("").to_numpy()
        if mask.any():
            reading.left_out.append(LeftOut("missing_customer", int(mask.sum()), money(mask)))
            keep &= ~mask
    if settings.exclude_products and "product" in raw:
        mask = line_items.excluded(raw["product"], settings.exclude_products) & keep
        if mask.any():
            reading.left_out.append(LeftOut("excluded_product", int(mask.sum()), money(mask),
                                            line_items.top_codes(raw["product"][mask])))
            keep &= ~mask
    return keep


def _line_amounts(columns: dict[str, pd.Series], headers: dict[str, str],
                  raw: dict[str, pd.Series]) -> dict[str, pd.Series]:
    """Add amount = quantity × unit_price, after the date (the canonical order)."""
    if "quantity" not in columns or "unit_price" not in columns:
        return columns  # pragma: no cover - both are parsed whenever line_mode holds
    amount = columns["quantity"] * columns["unit_price"]
    headers["amount"] = f"{headers['quantity']} × {headers['unit_price']}"
    raw["amount"] = raw["quantity"].str.strip() + " × " + raw["unit_price"].str.strip()
    out: dict[str, pd.Series] = {}
    for canonical, values in columns.items():
        out[canonical] = values
        if canonical == "date":
            out["amount"] = amount
    out.setdefault("amount", amount)
    return out


def _cancel(columns: dict[str, pd.Series], order_ids: pd.Series, prefix: str,
            reading: Reading) -> None:
    """Lines of cancelled orders count negative (some exports write them positive)."""
    mask = line_items.cancelled(order_ids, prefix)
    reading.prefix = prefix
    amount = columns["amount"].to_numpy(dtype=float)
    amount = np.where(mask, -np.abs(amount), amount)
    columns["amount"] = pd.Series(amount, index=columns["amount"].index)
    if "margin" in columns:
        margin = columns["margin"].to_numpy(dtype=float)
        columns["margin"] = pd.Series(np.where(mask, -np.abs(margin), margin),
                                      index=columns["margin"].index)
    reading.cancellations = LeftOut("cancellation", int(mask.sum()),
                                    float(np.nansum(amount[mask])))


def _file_warnings(kind: str, name: str, data: pd.DataFrame, original: pd.DataFrame,
                   headers: dict[str, str], raw: dict[str, pd.Series],
                   settings: TransactionSettings | None, reading: Reading) -> list[Notice]:
    """What check points out about one file without blocking the run."""
    out: list[Notice] = []
    if len(data):
        empty = [headers[c] for c in OPTIONAL_COLUMNS[kind]
                 if c in raw and headers[c] in data.columns and raw[c].str.strip().eq("").all()]
        if kind == "customers":
            used = set(headers.values())
            empty += [c for c in data.columns
                      if c not in used and data[c].str.strip().eq("").all()]
        out.extend(_notice("check_warning_empty_column", file=name, column=c)
                   for c in dict.fromkeys(empty))
    if kind != "transactions":
        return out
    amount = headers.get("amount", "")
    if "quantity" in headers and reading.amount_from is None \
            and any(hint in _fold(amount) for hint in ("price", "precio")):
        out.append(_notice("check_warning_amount_is_price", file=name, amount=amount,
                           quantity=headers["quantity"]))
    if settings is not None and settings.exclude_products and "product" in headers:
        products = original[headers["product"]]  # before the excluded lines were left out
        for code in line_items.unmatched_patterns(products, settings.exclude_products):
            out.append(_notice("check_warning_unmatched_product", file=name, code=code))
    gross = reading.revenue + reading.left_out_amount
    if gross > 0 and reading.left_out_amount / gross > LEFT_OUT_WARNING:
        out.append(_notice("check_warning_left_out_share", file=name,
                           share=f"{reading.left_out_amount / gross:.1%}",
                           limit=f"{LEFT_OUT_WARNING:.0%}"))
    return out


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
    deferred = False
    name = table.file
    hint = _separator_hint(table, options)
    if hint:
        problems.add(name, "wrong_separator",
                     _t("check_one_column_header", found=found_list) + hint,
                     column=table.header[0])
        return headers
    for canonical in REQUIRED_COLUMNS[kind] + OPTIONAL_COLUMNS[kind]:
        if canonical in mapping:
            wanted = clean_header(str(mapping[canonical]))
            found = wanted if wanted in available else by_key.get(_header_key(wanted))
            if found is None:
                problems.add(name, "missing_column", _t(
                    "check_mapped_not_found", canonical=canonical, kind=kind, found=found_list),
                    column=wanted)
                continue
        else:
            found = canonical if canonical in available else by_key.get(_header_key(canonical))
            if found is None:
                if canonical == "amount" and kind == "transactions":
                    deferred = True  # invoice lines may give quantity and unit_price instead
                    continue
                if canonical in REQUIRED_COLUMNS[kind]:
                    suggestion = _suggest(canonical, table.header)
                    problems.add(name, "missing_column", _t(
                        "check_required_missing", found=found_list, canonical=canonical,
                        kind=kind) + (_t("check_perhaps", suggestion=repr(suggestion))
                                      if suggestion else ""), column=canonical)
                continue
        repeats = table.header.count(found)
        if repeats > 1:
            problems.add(name, "duplicate_column", _t(
                "check_duplicate_column", repeats=repeats, canonical=canonical), column=found)
        headers[canonical] = found
    if kind == "transactions" and "amount" not in headers:
        _check_line_items(name, table, mapping, headers, found_list, deferred, problems)
    return headers


def _check_line_items(name: str, table: RawTable, mapping: dict[str, str],
                      headers: dict[str, str], found_list: str, deferred: bool,
                      problems: ProblemList) -> None:
    """Without an amount, both quantity and unit_price are needed (amount = their product)."""
    given = [c for c in ("quantity", "unit_price") if c in headers]
    if len(given) == 2:
        return
    if len(given) == 1:
        other = "unit_price" if given == ["quantity"] else "quantity"
        how = _t("check_how_mapped") if given[0] in mapping else _t("check_how_file")
        suggestion = _suggest(other, [h for h in table.header if h not in headers.values()])
        hint = (_t("check_perhaps_other", other=other, suggestion=repr(suggestion))
                if suggestion else "")
        problems.add(name, "missing_column", _t(
            "check_line_items_half", how=how, given=given[0], header=repr(headers[given[0]]),
            other=other, found=found_list, hint=hint), column=other)
        return
    if not deferred:
        return
    quantity = _suggest("quantity", table.header)
    price = _suggest("unit_price", [h for h in table.header if h != quantity])
    if quantity and price:
        hint = _t("check_invoice_hint", quantity=repr(quantity), price=repr(price))
    else:
        suggestion = _suggest("amount", table.header)
        hint = _t("check_perhaps", suggestion=repr(suggestion)) if suggestion else ""
    problems.add(name, "missing_column", _t("check_amount_missing", found=found_list, hint=hint),
                 column="amount")


def _header_key(header: str) -> str:
    # Separators are ignored so that UnitPrice, Unit Price and unit_price are one header.
    return re.sub(r"[\s_\-]+", "", header.strip().casefold())


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
    sep = _t("check_tab") if others[0] == "\t" else repr(others[0])
    if table.dialect.typed:
        return _t("check_separator_typed", sep=sep)
    if options.separator:
        return _t("check_separator_configured", configured=repr(options.separator), sep=sep)
    return _t("check_separator_detected", sep=sep)


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
            message = _t("check_day_first_configured")
        elif chosen in ("dayfirst", None) and len(ev.monthfirst) and not len(ev.dayfirst):
            rows = ev.monthfirst
            if configured:
                message = _t("check_month_first_configured")
            else:
                message = _t("check_month_first_detected")
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
                   _t("check_amount_beyond", limit=f"{MAX_ABS_AMOUNT:,.0f}"))
            if "margin" in columns:
                margin = values("margin")
                report("implausible_value", "margin", np.abs(margin) > np.abs(amount),
                       _t("check_margin_over_amount"))
        if "minutes" in columns:
            minutes = values("minutes")
            report("implausible_value", "minutes", (minutes < 0) | (minutes > MAX_MINUTES),
                   _t("check_minutes_range", limit=MAX_MINUTES))
        if "category_spend" in columns:
            report("implausible_value", "category_spend", values("category_spend") < 0,
                   _t("check_spend_negative"))
        for canonical, (low, high), label in (("satisfaction", SATISFACTION_RANGE,
                                               _t("check_satisfaction_scale")),
                                              ("nps", NPS_RANGE, _t("check_nps_scale"))):
            if canonical in columns:
                score = values(canonical)
                bad = np.isfinite(score) & ((score < low) | (score > high)
                                            | (score != np.round(score)))
                report("implausible_value", canonical, bad,
                       _t("check_score_range", scale=label))
    if "date" in columns:
        dates = columns["date"]
        too_early = (dates < pd.Timestamp(EARLIEST_DATE)).to_numpy()
        report("implausible_date", "date", too_early,
               _t("check_date_too_early", earliest=f"{EARLIEST_DATE:%Y-%m-%d}"))
        future = (dates > pd.Timestamp(limit)).to_numpy()
        if as_of is not None and as_of <= today:
            message = _t("check_date_after_as_of", as_of=f"{as_of:%Y-%m-%d}")
        else:
            message = _t("check_date_future", today=f"{today:%Y-%m-%d}")
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
    examples = [_t("check_first_at_line", id=ids.iloc[i],
                   line=first_line.get(ids.iloc[i], "?")) for i in idx[:EXAMPLES_SHOWN]]
    repeated = int(ids[duplicated].nunique())
    problems.add(customers.file, "duplicate_customer",
                 _tn("check_duplicate_customer", repeated, note=note, ids=f"{repeated:,}"),
                 column=header, rows=customers.lines[idx[:EXAMPLES_SHOWN]].tolist(),
                 examples=examples, count=len(idx))


def _check_known(item: _Loaded, known: pa.Array, problems: ProblemList,
                 customers_file: str = "customers.csv",
                 numbering: pd.Categorical | None = None) -> None:
    ids = item.frame["customer_id"]
    if numbering is not None and len(numbering) == len(ids):  # each distinct id once
        found = pc.is_in(pa.array(numbering.categories, from_pandas=True,
                                  type=pa.large_string()), value_set=known)
        unknown = ~found.to_numpy(zero_copy_only=False)[np.asarray(numbering.codes)]
    else:
        # pyarrow's hash lookup: pandas' isin on arrow strings goes through Python objects.
        found = pc.is_in(pa.array(ids, from_pandas=True, type=pa.large_string()),
                         value_set=known)
        unknown = ~pc.fill_null(found, True).to_numpy(zero_copy_only=False) & \
            ids.notna().to_numpy()
    if not unknown.any():
        return
    header = item.headers["customer_id"]
    note = "" if header == "customer_id" else " (customer_id)"
    distinct = ids[unknown].nunique()
    _report(problems, item.file, "unknown_customer", header, note, unknown, item.lines,
            item.raw["customer_id"],
            _tn("check_unknown_customer", int(distinct), file=customers_file,
                ids=f"{distinct:,}", what=_t(f"check_every_{item.kind}")))


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
    mark = _t("check_decimal_comma") if decimal == "," else _t("check_decimal_point")
    if configured:
        return _t("check_decimal_set", mark=mark)
    return _t("check_decimal_detected", mark=mark)


def _date_note(date_format: str | None, configured: str | None) -> str:
    if date_format == "iso" and configured:
        return _t("check_date_iso_set")
    if date_format == "yyyymmdd":
        return _t("check_date_compact_set" if configured else "check_date_compact_detected")
    if date_format == "monthfirst":
        return _t("check_date_monthfirst")
    return _t("check_date_dayfirst")
