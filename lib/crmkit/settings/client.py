"""The client's ``client.yaml``: who the client is, its assumptions and the consultant's judgements.

The schema is a set of pydantic models so that a typo in a key or a score out of range is caught
by ``crmkit check`` with the path of the offending key, before any workbook runs. Unknown keys
are rejected (``extra="forbid"``): a misspelt ``discount_rte`` silently falling back to a default
would put a wrong number in front of a paying client.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from crmkit.core.i18n import t
from crmkit.core.problems import (
    LANGUAGE,
    Problem,
    ProblemList,
    WorkspaceError,
    problem_text,
)
from crmkit.settings.project import CrmProject
from crmkit.settings.relationships import RelationshipsConfig
from crmkit.settings.scenarios import Scenario

CONFIG_FILE = "client.yaml"

Language = Literal["en", "es"]
Objective = Literal["attract", "retain", "grow"]
Level = Literal["low", "medium", "high"]
TimeFrame = Literal["short", "medium", "long"]
Direction = Literal["opportunity", "threat"]
Stage = Literal["introduction", "growth", "maturity", "decline"]

#: The files of a workspace, with the canonical columns each must (or may) have.
REQUIRED_COLUMNS: dict[str, list[str]] = {
    "customers": ["customer_id"],
    "transactions": ["customer_id", "date", "amount"],
    "interactions": ["customer_id", "date", "channel", "relationship_type", "minutes"],
    "survey": ["customer_id", "satisfaction"],
}
OPTIONAL_COLUMNS: dict[str, list[str]] = {
    "customers": ["category_spend", "start_date", "end_date"],
    # quantity x unit_price gives the amount of an invoice line when there is no amount;
    # order_id makes the lines of one order one purchase occasion.
    "transactions": ["product", "category", "margin", "promotion", "quantity", "unit_price",
                     "order_id"],
    "interactions": [],
    "survey": ["nps", "preferred_relationship"],
}
REQUIRED_FILES = ("customers", "transactions")
OPTIONAL_FILES = ("interactions", "survey")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Branding(_Strict):
    """Colours (hex) used by the report and the dashboard."""

    primary_color: str = "#1b4965"
    accent_color: str = "#e07a5f"

    @field_validator("primary_color", "accent_color")
    @classmethod
    def _hex(cls, value: str) -> str:
        if not re.fullmatch(r"#[0-9a-fA-F]{6}", value):
            raise ValueError(problem_text("settings_colour"))
        return value


#: File types a table can be read from, by (lower-case) suffix.
TEXT_SUFFIXES = (".csv", ".txt", ".tsv")
SHEET_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".ods")
PARQUET_SUFFIXES = (".parquet",)
SUPPORTED_SUFFIXES = TEXT_SUFFIXES + SHEET_SUFFIXES + PARQUET_SUFFIXES


def split_sheet(spec: str) -> tuple[str, str | None]:
    """``"book.xlsx#Sheet 1"`` -> ``("book.xlsx", "Sheet 1")``; anything else -> ``(spec, None)``.

    The part after the last ``#`` is a sheet only when the part before it names a workbook, so
    that ``"Report #3.xlsx"`` stays a file name.
    """
    if "#" in spec:
        file, sheet = spec.rsplit("#", 1)
        if Path(file.strip()).suffix.lower() in SHEET_SUFFIXES:
            return file.strip(), sheet.strip() or None
    return spec.strip(), None


class CsvOptions(_Strict):
    """How the client's CSV exports are written; everything is detected when left out.

    ``separator: whitespace`` splits on runs of spaces or tabs (fixed-width looking logs such as
    ``00001 19970101  1   11.77``); ``date_format: yyyymmdd`` reads compact dates like
    ``19970101``. ``header: false`` says the file has no header line; ``names`` then gives the
    column names, in order (usually under ``files: <table>: csv:``, for that file only).
    """

    separator: Literal[",", ";", "\t", "|", "whitespace"] | None = None
    decimal: Literal[".", ","] | None = None
    encoding: str | None = None
    date_format: Literal["iso", "dayfirst", "monthfirst", "yyyymmdd"] | None = None
    header: bool = True
    names: list[str] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _names_need_no_header(self) -> CsvOptions:
        if not self.header and not self.names:
            raise ValueError(problem_text("settings_csv_names_needed"))
        if self.names and self.header:
            raise ValueError(problem_text("settings_csv_names_with_header"))
        if self.names and len({n.strip() for n in self.names}) != len(self.names):
            raise ValueError(problem_text("settings_csv_distinct_names", found=repr(self.names)))
        return self

    def merged(self, override: CsvOptions | None) -> CsvOptions:
        """These options with the ones set in ``override`` (a file's own ``csv:``) on top."""
        if override is None:
            return self
        return self.model_copy(update=override.model_dump(exclude_unset=True))


class FileSource(_Strict):
    """Where one table is read from: ``files: <table>:`` in ``client.yaml``.

    Either a path (relative to the workspace), ``"Online Retail.xlsx"``, ``"book.xlsx#Sheet"``
    (a sheet; default the first one), ``"export.parquet"``, ``"log.txt"``; or a mapping with
    ``path`` and the file's own ``csv:`` options (on top of the top-level ``csv:``).
    """

    path: str = Field(min_length=1)
    csv: CsvOptions | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: object) -> object:
        if isinstance(value, str):
            value = {"path": value}
        if isinstance(value, dict) and isinstance(value.get("path"), str):
            path = value["path"]
            file, _ = split_sheet(path)
            suffix = Path(file).suffix.lower()
            if suffix not in SUPPORTED_SUFFIXES:
                raise ValueError(
                    problem_text("settings_file_suffix", suffixes=", ".join(SUPPORTED_SUFFIXES))
                    + (problem_text("settings_file_suffix_unreadable", suffix=suffix)
                       if suffix else ""))
            if value.get("csv") is not None and suffix not in TEXT_SUFFIXES:
                raise ValueError(problem_text("settings_csv_only_text", path=repr(path)))
        return value

    @property
    def file(self) -> str:
        """The file, without the sheet."""
        return split_sheet(self.path)[0]

    @property
    def sheet(self) -> str | None:
        """The sheet named after ``#``, if any."""
        return split_sheet(self.path)[1]


#: The table names a query or a file can give.
Table = Literal["customers", "transactions", "interactions", "survey"]


class TransactionSettings(_Strict):
    """How invoice lines become purchases: the ``transactions`` section of client.yaml.

    ``cancellation_prefix``: an order id starting with it (``C536379``) is a cancellation; its
    amount is counted negative. ``exclude_products``: product codes (``POST``, ``BANK CHARGES``;
    ``*`` and ``?`` as wildcards, case ignored) of lines that are not purchases (postage, fees,
    manual adjustments): they are left out and counted. ``missing_customer: skip`` leaves out
    the lines without a customer id (guest checkouts) and counts them; ``error`` (the default)
    reports them.
    """

    cancellation_prefix: str | None = Field(None, min_length=1)
    exclude_products: list[str] = []
    missing_customer: Literal["error", "skip"] = "error"

    @field_validator("exclude_products")
    @classmethod
    def _codes(cls, value: list[str]) -> list[str]:
        codes = [str(v).strip() for v in value]
        if any(not c for c in codes):
            raise ValueError(problem_text("settings_empty_product_code"))
        return codes


class CustomerSettings(_Strict):
    """The ``customers`` section of client.yaml.

    ``from_transactions: true``: there is no customers file; the customer list is the distinct
    customer ids of the transactions, with their first purchase date (no typological
    attributes).
    """

    from_transactions: bool = False


class Assumptions(_Strict):
    """Economic assumptions; every one is shown in the report as an assumption."""

    gross_margin: float = Field(0.30, ge=0, le=1, description="margin rate when no margin column")
    discount_rate: float = Field(0.10, ge=0, le=1, description="yearly discount rate")
    horizon_months: int = Field(36, ge=1, le=240)
    lapse_days: int = Field(180, ge=7, le=3650, description="no purchase for this long = lapsed")
    window_months: int = Field(12, ge=1, le=60, description="period the indicators look at")


class ValueSettings(_Strict):
    """How customers are valued (workbook 02), the ``value`` section of client.yaml.

    ``model: auto`` fits every candidate customer-base model on a calibration period, compares
    its predictions with the purchases of the holdout (the last ``holdout_months``) and keeps the
    best sound one; a model key forces that model (it is still compared and still named when its
    fit is degenerate). ``holdout_months`` defaults to a quarter of the history, 3 to 12 months.
    """

    model: Literal["auto", "bg_nbd", "mbg_nbd", "pareto_nbd"] = Field(
        "auto", description="auto (chosen by holdout), bg_nbd, mbg_nbd or pareto_nbd")
    holdout_months: int | None = Field(None, ge=1, le=60,
                                       description="months held out to check the model")


class SegmentationSettings(_Strict):
    """How customers are segmented (workbook 02), the ``segmentation`` section of client.yaml.

    ``map`` is a bundled segment map (``rfm_ten``: the ten-segment recency x frequency grid;
    ``managerial``: active / warm / cold / inactive by days since last purchase, split by value
    and newness) or the path of the client's own map, relative to the workspace, e.g.
    ``maps/our_segments.yaml`` (copy a bundled one from ``data/segment_maps/`` to start).
    ``method: clustering`` segments by k-means on behaviour instead; the map is then still used
    for the RFM grid shown beside it.
    """

    method: Literal["map", "clustering"] = "map"
    map: str = Field("rfm_ten", min_length=1,
                     description="rfm_ten, managerial, or a .yaml path in the workspace")
    frequency: Literal["days", "lines"] = Field(
        "days", description="count purchase days (several lines on a day are one purchase) "
                            "or transaction lines (one line per order)")
    k: int | None = Field(None, ge=2, le=12, description="fixed number of clusters; "
                                                          "default: best silhouette")
    k_min: int = Field(2, ge=2, le=12)
    k_max: int = Field(8, ge=2, le=12)
    seed: int = Field(0, ge=0, description="random seed of the clustering (reproducible runs)")
    attribute: str | None = Field(None, description="customers.csv column for the typological mix")
    top_share: float = Field(0.2, gt=0, lt=1, description="share of customers flagged most "
                                                          "valuable")
    decline: float = Field(0.3, gt=0, le=1, description="spend drop, window on window, that "
                                                        "flags a customer as declining")

    @field_validator("map")
    @classmethod
    def _map_name(cls, value: str) -> str:
        value = value.strip()
        if not (re.fullmatch(r"[a-z][a-z0-9_]*", value)
                or value.lower().endswith((".yaml", ".yml"))):
            raise ValueError(problem_text("settings_map_name"))
        return value

    @model_validator(mode="after")
    def _k_range(self) -> SegmentationSettings:
        if self.k_min > self.k_max:
            raise ValueError(problem_text("settings_k_range", k_min=self.k_min, k_max=self.k_max))
        return self


class Capability(_Strict):
    """An internal capability scored 1 (a hard limit) to 5 (a real strength)."""

    score: int = Field(ge=1, le=5)
    note: str = ""


class InternalContext(_Strict):
    financial: Capability
    operational: Capability
    technological: Capability
    people: Capability


class ExternalFactor(_Strict):
    """An external factor: how strongly it bears, when, and for better or worse."""

    impact: Level
    time_frame: TimeFrame
    direction: Direction
    note: str = ""


class IndustryMaturity(ExternalFactor):
    stage: Stage


class ExternalContext(_Strict):
    competitors: ExternalFactor
    industry_maturity: IndustryMaturity
    regulation: ExternalFactor
    disruptive_technology: ExternalFactor


class Context(_Strict):
    internal: InternalContext
    external: ExternalContext


class ReportSettings(_Strict):
    """How the client's report is printed and worded.

    ``paper``: ``A4`` or ``Letter``; default the paper of the client's territory (from the
    currency: :func:`crmkit.core.i18n.paper_size`). ``vocabulary``: the industry's words
    (``retail``: purchases and orders; ``banking``: products and operations; ``subscription``:
    contracts and bills); default guessed from ``industry`` (:mod:`crmkit.delivery.vocabulary`).
    """

    paper: Literal["A4", "Letter"] | None = None
    vocabulary: Literal["retail", "banking", "subscription"] | None = None


class ClientConfig(_Strict):
    """Everything in ``client.yaml``.

    ``columns`` maps, per file, the canonical column name to the client's own header, e.g.
    ``{"transactions": {"customer_id": "Nº Cliente", "date": "Fecha", "amount": "Importe"}}``.
    ``files`` says which file holds a table when it is not ``<table>.csv``, e.g.
    ``{"transactions": "Online Retail.xlsx#Year 2010-2011"}`` (see :class:`FileSource`).
    """

    name: str = Field(min_length=1)
    industry: str = ""
    language: Language = "en"
    currency: str = Field("EUR", pattern=r"^[A-Z]{3}$")
    as_of: dt.date | None = Field(None, description="analysis date; default: last transaction")
    objective: Objective | None = Field(None, description="set to override the recommendation")
    business_model: Literal["non_contractual", "contractual"] = Field(
        "non_contractual", description="non_contractual (customers buy when they like) or "
                                       "contractual (subscriptions, contracts, accounts: "
                                       "customers.csv has start_date and end_date)")
    branding: Branding = Branding()
    report: ReportSettings = ReportSettings()
    csv: CsvOptions = CsvOptions()
    columns: dict[Literal["customers", "transactions", "interactions", "survey"],
                  dict[str, str]] = {}
    files: dict[Literal["customers", "transactions", "interactions", "survey"],
                FileSource] = {}
    queries: dict[Table, str] = Field({}, description="table -> DuckDB SQL over the "
                                                      "workspace's files")
    transactions: TransactionSettings = TransactionSettings()
    customers: CustomerSettings = CustomerSettings()
    assumptions: Assumptions = Assumptions()
    context: Context
    # Sections owned by later workbooks; validated by their own modules.
    segmentation: SegmentationSettings = SegmentationSettings()
    value: ValueSettings = ValueSettings()
    relationships: RelationshipsConfig = RelationshipsConfig()
    scenarios: list[Scenario] = []
    crm_project: CrmProject = CrmProject()

    @field_validator("queries")
    @classmethod
    def _sql_given(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        for table, sql in value.items():
            if not str(sql).strip():
                raise ValueError(problem_text("settings_empty_query", table=table))
            if table in (info.data.get("files") or {}):
                raise ValueError(problem_text("settings_files_or_queries", table=table))
        return value

    @field_validator("customers")
    @classmethod
    def _customers_once(cls, value: CustomerSettings, info: ValidationInfo) -> CustomerSettings:
        named = [key for key in ("files", "queries") if "customers" in (info.data.get(key) or {})]
        if value.from_transactions and named:
            raise ValueError(problem_text("settings_from_transactions_or", named=named[0]))
        return value

    @field_validator("columns")
    @classmethod
    def _known_columns(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for file, mapping in value.items():
            known = REQUIRED_COLUMNS[file] + OPTIONAL_COLUMNS[file]
            for canonical in mapping:
                if canonical not in known:
                    raise ValueError(problem_text("settings_unknown_column", column=canonical,
                                                  file=file, known=", ".join(known)))
        return value


def load_config(workspace: str | Path) -> ClientConfig:
    """Read and validate ``client.yaml`` of a workspace.

    Raises
    ------
    WorkspaceError
        With one problem per invalid key, naming the key path, what was found and expected.
    """
    path = Path(workspace) / CONFIG_FILE
    problems = ProblemList()
    if not path.is_file():
        problems.add(CONFIG_FILE, "missing_file",
                     problem_text("config_missing", folder=Path(workspace)))
        raise WorkspaceError(problems)
    try:
        data = path.read_bytes()
    except OSError as exc:
        problems.add(CONFIG_FILE, "unreadable_file",
                     problem_text("config_unreadable", reason=exc.strerror or exc))
        raise WorkspaceError(problems) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    try:
        raw = yaml.safe_load(text)
    except ValueError as exc:  # YAML's own date reading, e.g. "as_of: 2024-02-30"
        where = ""
        for number, line in enumerate(text.splitlines(), start=1):
            found = re.match(r"\s*([\w.-]+)\s*:\s*(\d{4})-(\d\d?)-(\d\d?)\s*(#.*)?$", line)
            if found:
                try:
                    dt.date(*(int(found.group(i)) for i in (2, 3, 4)))
                except ValueError:
                    where = problem_text(
                        "config_bad_date_where", name=found.group(1), line=number,
                        found=f"{found.group(2)}-{found.group(3)}-{found.group(4)}")
                    break
        problems.add(CONFIG_FILE, "invalid_yaml",
                     problem_text("config_bad_date", where=where, reason=exc))
        raise WorkspaceError(problems) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = [mark.line + 1] if mark is not None else []
        problems.add(CONFIG_FILE, "invalid_yaml",
                     problem_text("config_not_yaml", reason=getattr(exc, "problem", exc)),
                     rows=line)
        raise WorkspaceError(problems) from None
    if not isinstance(raw, dict):
        problems.add(CONFIG_FILE, "invalid_yaml",
                     t("edit_not_a_mapping", LANGUAGE.get(), found=type(raw).__name__))
        raise WorkspaceError(problems)
    try:
        return ClientConfig.model_validate(raw)
    except ValidationError as exc:
        problems.extend(problems_from_validation(exc, LANGUAGE.get()))
        raise WorkspaceError(problems) from None


def problems_from_validation(exc: ValidationError, lang: str) -> list[Problem]:
    """One problem per pydantic error, worded in ``lang``: the key path, what was found and what
    the schema expects (the schema's own rules word themselves, :func:`problem_text`)."""
    problems = []
    for error in exc.errors():
        key = ".".join(str(p) for p in error["loc"])
        if error["type"] == "missing":
            text = t("edit_missing_key", lang, path=key)
        elif error["type"] == "extra_forbidden":
            text = t("edit_unknown_key", lang, path=key)
        elif error["type"] == "value_error" and isinstance(error.get("input"), (dict, list)):
            # a rule across a whole section: its text says what is wrong, and repeating the
            # section as "found" would bury it
            text = t("edit_section_problem", lang, path=key, problem=_expected(error, lang))
        else:
            text = t("edit_invalid_key", lang, path=key, found=repr(error.get("input")),
                     expected=_expected(error, lang))
        problems.append(Problem(CONFIG_FILE, "invalid_setting", text))
    return problems


def _expected(error: dict, lang: str) -> str:
    """What a pydantic error expected, in ``lang`` (the limits and allowed values as found)."""
    ctx = error.get("ctx") or {}
    kind = error["type"]
    if kind == "literal_error":
        return t("edit_expected_one_of", lang, values=ctx.get("expected", ""))
    for name, key in (("ge", "edit_expected_at_least"), ("le", "edit_expected_at_most"),
                      ("gt", "edit_expected_above"), ("lt", "edit_expected_below")):
        if name in ctx:
            limit = ctx[name]  # 50.0 reads 50
            if isinstance(limit, float) and limit.is_integer():
                limit = int(limit)
            return t(key, lang, limit=limit)
    if kind.startswith("int_"):
        return t("edit_expected_integer", lang)
    if kind.startswith("float_"):
        return t("edit_expected_number", lang)
    if kind.startswith("string_"):
        return t("edit_expected_text", lang)
    return error["msg"].removeprefix("Value error, ").replace("Input should be", "").strip()
