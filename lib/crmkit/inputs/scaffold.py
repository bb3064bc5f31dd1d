"""``crmkit new``: a fresh client workspace, and with ``--from`` a first guess at its inputs.

Without a source, the workspace is ``templates/client/<language>/`` with the client's name in
``client.yaml``. With ``--from EXPORTS_DIR``, the client's exports are copied into it (the
originals are only read), each file (each sheet of a workbook) is read with
:mod:`crmkit.inputs.tabular`'s own detection, and ``client.yaml`` gets ``files:``, ``columns:``,
``transactions:``, ``customers:`` and, for exports split into orders and payments, ``queries:``,
each guess with a comment saying what it was guessed from ("guessed from header
'CustomerID'"). Nothing is guessed silently: what ``crmkit new`` prints is the list of what the
consultant must confirm, and ``crmkit check`` says what is still missing.

The guesses are deliberately plain: a header names a canonical column when, separators and
accents ignored, it is one of a few English and Spanish names for it (``CustomerID``,
``Nº Cliente``, ``InvoiceDate``, ``Importe``), and holds values of the right type (numbers for
an amount, dates for a date); a file without a header line (``00001 19970101 1 11.77``) is read
by the shape of its values.
"""

from __future__ import annotations

import json
import re
import shutil
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from crmkit.core import paths
from crmkit.core.i18n import t
from crmkit.core.problems import ProblemList, UserError, WorkspaceError
from crmkit.inputs.tabular import RawTable, parse_dates, parse_numbers, read_table
from crmkit.settings.client import (
    OPTIONAL_COLUMNS,
    OPTIONAL_FILES,
    REQUIRED_COLUMNS,
    REQUIRED_FILES,
    SUPPORTED_SUFFIXES,
)

__all__ = ["Guess", "Layout", "guess_layout", "inspect_exports", "new_workspace"]

WORKBOOK_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".ods")
TABLE_NAMES = (*REQUIRED_FILES, *OPTIONAL_FILES)

#: Header names of each canonical column, folded (lower case, no accents, no separators):
#: first the exact names, in order of preference, then parts a longer header may contain.
EXACT = {
    "customer_id": ("customerid", "clientid", "customer", "client", "cliente", "idcliente",
                    "codcliente", "codigocliente", "ncliente", "nocliente", "numcliente",
                    "numerocliente", "customerno", "customernumber", "clientno", "socio",
                    "idsocio", "memberid", "member", "userid", "buyerid"),
    "date": ("date", "fecha", "invoicedate", "orderdate", "transactiondate", "purchasedate",
             "fechafactura", "fechapedido", "fechacompra", "fechaventa", "dia", "day"),
    "order_id": ("orderid", "invoiceno", "invoice", "invoicenumber", "invoiceid", "orderno",
                 "ordernumber", "factura", "nfactura", "numfactura", "numerofactura", "pedido",
                 "npedido", "idpedido", "numpedido", "ticket", "albaran"),
    "amount": ("amount", "importe", "total", "monto", "sales", "revenue", "ventas",
               "totalprice", "linetotal", "totalamount", "importetotal", "paymentvalue",
               "value", "valor"),
    "quantity": ("quantity", "qty", "cantidad", "unidades", "units", "uds", "quantityordered"),
    "unit_price": ("unitprice", "price", "precio", "preciounitario", "pvp", "priceeach"),
    "product": ("stockcode", "productcode", "productid", "sku", "itemcode", "product",
                "producto", "codproducto", "articulo", "codarticulo", "referencia", "item"),
    "category": ("category", "categoria", "family", "familia", "department", "seccion"),
    "margin": ("margin", "margen", "grossmargin", "profit", "beneficio"),
    "promotion": ("promotion", "promo", "promocion", "coupon", "cupon", "campaign", "campana",
                  "voucher"),
    "channel": ("channel", "canal"),
    "relationship_type": ("relationshiptype", "relationship", "relacion", "tiporelacion"),
    "minutes": ("minutes", "minutos", "duration", "duracion", "durationmin"),
    "satisfaction": ("satisfaction", "satisfaccion", "csat", "reviewscore", "score", "rating",
                     "valoracion", "puntuacion"),
    "nps": ("nps", "npsscore", "recomendacion"),
}
PARTS = {
    "customer_id": ("customer", "cliente", "client", "socio", "member"),
    "date": ("purchase", "date", "fecha", "timestamp"),
    "order_id": ("invoice", "factura", "pedido", "ticket"),
    "amount": ("amount", "importe", "total", "value", "valor", "monto"),
    "quantity": ("quantity", "cantidad", "qty"),
    "unit_price": ("unitprice", "preciounit", "price", "precio"),
    "product": ("stockcode", "sku", "product", "producto", "articulo"),
    "category": ("category", "categoria"),
    "margin": ("margin", "margen"),
    "promotion": ("promo", "coupon", "cupon", "campaign"),
    "satisfaction": ("satisf", "score", "rating"),
    "minutes": ("minut", "duration", "duracion"),
}
NUMERIC = {"amount", "quantity", "unit_price", "margin", "minutes", "satisfaction", "nps"}
DATES = {"date"}
#: The order columns are guessed in: each header names one column at most.
ORDER = ("customer_id", "date", "order_id", "amount", "quantity", "unit_price", "product",
         "category", "margin", "promotion", "channel", "relationship_type", "minutes",
         "satisfaction", "nps")
#: Words in a file or sheet name that say which table it holds.
NAME_HINTS = {
    "customers": ("customer", "client", "cliente", "socio", "member"),
    "transactions": ("transaction", "sales", "venta", "invoice", "factura", "retail", "purchase",
                     "compra", "log", "ticket"),
    "interactions": ("interaction", "contact", "contacto", "call", "llamada"),
    "survey": ("survey", "encuesta", "review", "resena", "satisf", "nps"),
}
#: Values a line's customer id may hold when a guest bought (the cell is then blank).
_COMPACT_DATE = re.compile(r"^(19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$")
_NUMBERISH = re.compile(r"^[-+]?[\d\s.,/:]+$")
_PREFIXED = re.compile(r"^([A-Za-z]+)\d+$")


def fold(header: str) -> str:
    """A header as compared: lower case, without accents, separators or signs (``Nº``)."""
    text = unicodedata.normalize("NFKD", str(header)).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "", text.casefold())


@dataclass
class Export:
    """One file, or one sheet of a workbook, of the client's exports, as read."""

    source: str  # the name in files: ("book.xlsx#Sheet" for a sheet other than the first)
    table: RawTable
    header: bool = True
    names: list[str] | None = None  # without a header: the guessed name of each column
    columns: dict[str, tuple[str, str]] = field(default_factory=dict)  # canonical -> (header, why)
    compact_dates: bool = False

    def values(self, header: str) -> pd.Series:
        """The column's text values (with the first line, when it is not a header)."""
        column = self.table.data[header].astype(str).str.strip()
        if not self.header:
            column = pd.concat([pd.Series([header]), column], ignore_index=True)
        return column


@dataclass
class Guess:
    """Where one canonical table comes from, as guessed."""

    table: str
    export: Export | None = None
    query: str | None = None
    query_why: str = ""


@dataclass
class Layout:
    """The guessed ``client.yaml`` sections, and what the consultant must confirm."""

    guesses: dict[str, Guess] = field(default_factory=dict)
    transactions: list[tuple[str, str, str]] = field(default_factory=list)  # key, value, why
    suggestions: list[str] = field(default_factory=list)  # commented lines to decide on
    derived_customers: bool = False
    review: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# Reading the exports


def _sheet_names(path: Path) -> list[str]:
    from python_calamine import CalamineWorkbook

    return list(CalamineWorkbook.from_path(str(path)).sheet_names)


def inspect_exports(files: list[Path], lang: str = "en") -> tuple[list[Export], list[str]]:
    """Read every supported file (every sheet of a workbook) of ``files``, read-only.

    Returns
    -------
    exports : list of Export
    unreadable : list of str
        One line per file or sheet that could not be read, or that crmkit does not read.
    """
    exports: list[Export] = []
    unreadable: list[str] = []
    for path in sorted(files):
        suffix = path.suffix.lower()
        if suffix not in SUPPORTED_SUFFIXES:
            unreadable.append(t("new_skipped_file", lang, file=path.name))
            continue
        sheets: list[str | None] = [None]
        if suffix in WORKBOOK_SUFFIXES:
            try:
                sheets = _sheet_names(path) or [None]
            except Exception as exc:  # noqa: BLE001 - calamine raises unrelated types
                unreadable.append(t("new_unreadable", lang, file=path.name, error=str(exc)))
                continue
        for index, sheet in enumerate(sheets):
            source = path.name if index == 0 or sheet is None else f"{path.name}#{sheet}"
            try:
                table = read_table(path, file=source, sheet=sheet)
            except UserError as error:
                unreadable.append(t("new_unreadable", lang, file=source,
                                    error=str(error).strip().splitlines()[-1]))
                continue
            if not table.header or table.data.empty:
                unreadable.append(t("new_empty_table", lang, file=source))
                continue
            exports.append(_guess_columns(Export(source=source, table=table), lang))
    return exports, unreadable


def _is_numeric(values: pd.Series) -> bool:
    filled = values[values != ""]
    if not len(filled):
        return False
    _, bad = parse_numbers(filled.head(2000).reset_index(drop=True), _decimal(filled))
    return float(np.mean(~np.asarray(bad))) >= 0.95


def _decimal(values: pd.Series) -> str:
    sample = values.head(2000)
    commas = sample.str.contains(r"\d,\d{1,2}$", regex=True).sum()
    points = sample.str.contains(r"\d\.\d+$", regex=True).sum()
    return "," if commas > points else "."


def _is_date(values: pd.Series) -> bool:
    filled = values[values != ""].head(2000).reset_index(drop=True)
    if not len(filled):
        return False
    if filled.str.match(_COMPACT_DATE).mean() >= 0.95:
        return True
    if filled.str.match(r"^\d+([.,]\d+)?$").mean() > 0.5:
        return False  # plain numbers are not dates
    try:
        _, bad, _ = parse_dates(filled)
    except Exception:  # noqa: BLE001 - a column that is not a date is simply not one
        return False
    return float(np.mean(~np.asarray(bad))) >= 0.95


def _fits(export: Export, canonical: str, header: str) -> bool:
    values = export.values(header)
    if canonical in NUMERIC:
        return _is_numeric(values)
    if canonical in DATES:
        return _is_date(values)
    return True


def _guess_columns(export: Export, lang: str) -> Export:
    headers = list(export.table.data.columns)
    if all(_NUMBERISH.match(str(h).strip() or "x") for h in export.table.header):
        return _guess_headerless(export, lang)
    folded = {h: fold(h) for h in headers}
    used: set[str] = set()
    for canonical in ORDER:
        found = None
        for name in EXACT.get(canonical, ()):
            found = next((h for h in headers if h not in used and folded[h] == name
                          and _fits(export, canonical, h)), None)
            if found:
                break
        if found is None:
            for part in PARTS.get(canonical, ()):
                found = next((h for h in headers if h not in used and part in folded[h]
                              and _fits(export, canonical, h)), None)
                if found:
                    break
        if found is not None:
            used.add(found)
            export.columns[canonical] = (found, t("new_why_header", lang, header=found))
    if "date" in export.columns:
        values = export.values(export.columns["date"][0])
        export.compact_dates = bool(values[values != ""].head(2000).str.match(
            _COMPACT_DATE).mean() >= 0.95)
    return export


def _guess_headerless(export: Export, lang: str) -> Export:
    """A file whose first line is data (``00001 19970101 1 11.77``): columns by their values."""
    export.header = False
    headers = list(export.table.data.columns)
    names: list[str | None] = [None] * len(headers)
    for i, header in enumerate(headers):
        values = export.values(header)
        if "date" not in names and values.str.match(_COMPACT_DATE).mean() >= 0.95:
            names[i], export.compact_dates = "date", True
        elif "date" not in names and _is_date(values):
            names[i] = "date"
    whole = [i for i, h in enumerate(headers) if names[i] is None
             and export.values(h).str.match(r"^\d+$").mean() >= 0.99]
    decimals = [i for i, h in enumerate(headers) if names[i] is None and i not in whole
                and _is_numeric(export.values(h))]
    if whole:
        names[whole[0]] = "customer_id"  # logs put the customer first
    if decimals:
        names[decimals[-1]] = "amount"
    for i in whole[1:]:
        if "quantity" not in names:
            names[i] = "quantity"
    final = [name or f"column_{i + 1}" for i, name in enumerate(names)]
    export.names = final
    for i, name in enumerate(final):
        if name in ORDER:  # the column's own (first-line) name, as for a header
            export.columns[name] = (headers[i], t("new_why_position", lang, position=i + 1,
                                                  example=headers[i]))
    return export


# --------------------------------------------------------------------------------------------
# Which export holds which table


def _name_score(export: Export, table: str) -> int:
    name = fold(export.source)
    return int(any(word in name for word in NAME_HINTS[table]))


def _has_money(export: Export) -> bool:
    return "amount" in export.columns or {"quantity", "unit_price"} <= set(export.columns)


def guess_layout(exports: list[Export], lang: str = "en") -> Layout:
    """Decide which export holds which table, and the settings the lines call for."""
    layout = Layout()
    free = list(exports)

    def take(table: str, candidates: list[Export]) -> Export | None:
        if not candidates:
            return None
        best = max(candidates, key=lambda e: (_name_score(e, table), len(e.columns),
                                              len(e.table.data)))
        free.remove(best)
        layout.guesses[table] = Guess(table, export=best)
        return best

    cols = lambda e: set(e.columns)  # noqa: E731 - a short local reading aid
    transactions = take("transactions", [e for e in free if {"customer_id", "date"} <= cols(e)
                                         and _has_money(e)])
    take("interactions", [e for e in free if set(REQUIRED_COLUMNS["interactions"]) <= cols(e)])
    take("survey", [e for e in free if {"customer_id", "satisfaction"} <= cols(e)
                    and not _has_money(e)])
    orders = next((e for e in free if {"customer_id", "date", "order_id"} <= cols(e)
                   and not _has_money(e)), None)
    customers = take("customers", [e for e in free if "customer_id" in cols(e)
                                   and e is not orders
                                   and (_name_score(e, "customers") or "date" not in cols(e))])
    if transactions is None and orders is not None:
        payments = next((e for e in free if e is not orders and "order_id" in cols(e)
                         and "amount" in cols(e) and "customer_id" not in cols(e)), None)
        if payments is not None:
            layout.guesses["transactions"] = _order_query(orders, payments, customers, lang)
            if customers is not None and _person(orders, customers)[1]:
                layout.guesses["customers"] = _people_query(orders, customers, lang)
            status = next((h for h in orders.table.data.columns
                           if "status" in fold(h) or "estado" in fold(h)), None)
            if status is not None:
                kinds = orders.values(status).value_counts().index[:4].tolist()
                layout.review.append(t("new_review_status", lang, source=orders.source,
                                       column=status, values=", ".join(kinds)))
            free = [e for e in free if e not in (orders, payments)]
            reviews = next((e for e in free if {"order_id", "satisfaction"} <= cols(e)), None)
            if reviews is not None and "survey" not in layout.guesses:
                layout.guesses["survey"] = _review_query(orders, reviews, customers, lang)
                free.remove(reviews)
    layout.unused = [e.source for e in free]
    if "customers" not in layout.guesses and "transactions" in layout.guesses:
        layout.derived_customers = True
    if transactions is not None:
        _line_settings(transactions, layout, lang)
    _review(layout, lang)
    return layout


def _q(name: str) -> str:
    """A column name as DuckDB quotes it."""
    return '"' + name.replace('"', '""') + '"'


def _file(export: Export) -> str:
    return "'" + export.source.replace("'", "''") + "'"


def _person(orders: Export, customers: Export | None) -> tuple[str, str]:
    """The expression for the customer of an order, and the join it needs.

    A marketplace's orders often carry an id per order *and* customer (``customer_id``), the
    person being another column of the customers file (``customer_unique_id``)."""
    order_customer = orders.columns["customer_id"][0]
    if customers is not None:
        person = next((h for h in customers.table.data.columns
                       if "unique" in fold(h) or "persona" in fold(h)), None)
        key = customers.columns.get("customer_id", (None,))[0]
        if person and key:
            return (f"c.{_q(person)}", f"\n  JOIN {_file(customers)} c ON c.{_q(key)} = "
                                       f"o.{_q(order_customer)}")
    return f"o.{_q(order_customer)}", ""


def _people_query(orders: Export, customers: Export, lang: str) -> Guess:
    """One row per person when the customers file has a row per order's customer id."""
    person = _person(orders, customers)[0].removeprefix("c.")
    key = customers.columns["customer_id"][0]
    others = [h for h in customers.table.data.columns
              if h not in (key, person.strip('"')) and not fold(h).endswith("id")]
    picked = "".join(f",\n  ANY_VALUE({_q(h)}) AS {_q(h)}" for h in others)
    sql = (f"SELECT {person} AS customer_id{picked}\nFROM {_file(customers)}\nGROUP BY ALL")
    return Guess("customers", query=sql, query_why=t(
        "new_why_people_query", lang, source=customers.source, column=person.strip('"')))


def _order_query(orders: Export, payments: Export, customers: Export | None,
                 lang: str) -> Guess:
    person, join = _person(orders, customers)
    order, pay_order = orders.columns["order_id"][0], payments.columns["order_id"][0]
    sql = (f"SELECT {person} AS customer_id, o.{_q(order)} AS order_id,\n"
           f"  CAST(o.{_q(orders.columns['date'][0])} AS DATE) AS date,\n"
           f"  SUM(p.{_q(payments.columns['amount'][0])}) AS amount\n"
           f"FROM {_file(orders)} o JOIN {_file(payments)} p ON p.{_q(pay_order)} = "
           f"o.{_q(order)}{join}\nGROUP BY ALL")
    return Guess("transactions", query=sql, query_why=t(
        "new_why_query", lang, orders=orders.source, payments=payments.source))


def _review_query(orders: Export, reviews: Export, customers: Export | None,
                  lang: str) -> Guess:
    person, join = _person(orders, customers)
    order, review_order = orders.columns["order_id"][0], reviews.columns["order_id"][0]
    sql = (f"SELECT {person} AS customer_id,\n"
           f"  r.{_q(reviews.columns['satisfaction'][0])} AS satisfaction\n"
           f"FROM {_file(reviews)} r JOIN {_file(orders)} o ON o.{_q(order)} = "
           f"r.{_q(review_order)}{join}")
    return Guess("survey", query=sql, query_why=t(
        "new_why_review_query", lang, reviews=reviews.source, orders=orders.source))


def _line_settings(export: Export, layout: Layout, lang: str) -> None:
    """Cancellations, guest lines and products that may not be purchases, from the lines."""
    lines = len(export.values(export.columns["customer_id"][0]))
    customer = export.values(export.columns["customer_id"][0])
    guests = int((customer == "").sum())
    if guests:
        layout.transactions.append(("missing_customer", "skip", t(
            "new_why_guests", lang, lines=f"{guests:,}", share=f"{guests / lines:.0%}")))
    if "order_id" in export.columns:
        orders = export.values(export.columns["order_id"][0])
        digits = orders.str.match(r"^\d+$")
        prefixes = orders.str.extract(_PREFIXED)[0].dropna()
        if digits.mean() >= 0.5 and len(prefixes):
            prefix = prefixes.value_counts().index[0]
            example = orders[orders.str.startswith(prefix)].iloc[0]
            count = int(orders.str.startswith(prefix).sum())
            layout.transactions.append(("cancellation_prefix", prefix, t(
                "new_why_cancellations", lang, count=f"{count:,}", prefix=prefix,
                example=example)))
    if "product" in export.columns:
        codes = export.values(export.columns["product"][0])
        codes = codes[codes != ""]
        distinct = pd.Series(codes.unique())
        with_digits = distinct.str.contains(r"\d")
        # Shops code products with digits (85123A); POST, M or BANK CHARGES stand out.
        if len(distinct) >= 5 and with_digits.mean() >= 0.6:
            lines_ = codes[~codes.str.contains(r"\d")]
            odd = lines_.value_counts().index[:8].tolist()
            if odd:
                layout.suggestions.append(
                    "exclude_products: " + json.dumps(odd, ensure_ascii=False)
                    + "   # " + t("new_why_exclude", lang))


def _review(layout: Layout, lang: str) -> None:
    """What the consultant must confirm, or decide, before ``crmkit check``."""
    out = layout.review
    for table in TABLE_NAMES:
        guess = layout.guesses.get(table)
        if guess is None:
            if table in ("customers", "transactions") and not (
                    table == "customers" and layout.derived_customers):
                out.append(t(f"new_review_no_{table}", lang))
            continue
        if guess.query:
            out.append(t("new_review_query", lang, table=table, why=guess.query_why))
            continue
        export = guess.export
        if not export.header:
            out.append(t("new_review_headerless", lang, source=export.source,
                         names=", ".join(export.names or [])))
            continue
        mapped = ", ".join(f"{c} = '{h}'" for c, (h, _) in export.columns.items()
                           if c in REQUIRED_COLUMNS[table] + OPTIONAL_COLUMNS[table])
        out.append(t("new_review_table", lang, table=table, source=export.source,
                     columns=mapped or "-"))
    if layout.derived_customers:
        out.append(t("new_review_derived", lang))
    for key, value, why in layout.transactions:
        out.append(t("new_review_setting", lang, setting=f"transactions.{key}", value=value,
                     why=why))
    if layout.suggestions:
        out.append(t("new_review_exclude", lang))
    if layout.unused:
        out.append(t("new_review_unused", lang, files=", ".join(layout.unused)))
    out.append(t("new_review_currency", lang))


# --------------------------------------------------------------------------------------------
# Writing client.yaml


def _scalar(value: str) -> str:
    # A JSON string is a valid YAML double-quoted scalar.
    return json.dumps(value, ensure_ascii=False)


def render(layout: Layout, lang: str) -> str:
    """The guessed sections of ``client.yaml``, with a comment on each guess."""
    out = [f"# {t('new_yaml_intro', lang)}"]
    files, columns, queries = [], [], []
    for table in TABLE_NAMES:
        guess = layout.guesses.get(table)
        if guess is None:
            continue
        if guess.query:
            queries.append(f"  {table}: |   # {guess.query_why}")
            queries += ["    " + line for line in guess.query.splitlines()]
            continue
        export = guess.export
        allowed = REQUIRED_COLUMNS[table] + OPTIONAL_COLUMNS[table]
        if export.header:
            csv = {"date_format": "yyyymmdd"} if export.compact_dates else {}
            if export.table.dialect.separator == "whitespace" and not export.table.dialect.typed:
                csv["separator"] = "whitespace"
            if csv:
                files.append(f"  {table}:")
                files.append(f"    path: {_scalar(export.source)}")
                files.append("    csv: " + json.dumps(csv))
            else:
                files.append(f"  {table}: {_scalar(export.source)}")
            mapped = [(c, h, why) for c, (h, why) in export.columns.items() if c in allowed]
            if mapped:
                columns.append(f"  {table}:")
                columns += [f"    {c}: {_scalar(h)}   # {why}" for c, h, why in mapped]
        else:
            csv = {"header": False, "names": export.names}
            if export.table.dialect.separator == "whitespace":
                csv["separator"] = "whitespace"
            if export.compact_dates:
                csv["date_format"] = "yyyymmdd"
            files.append(f"  {table}:   # {t('new_why_headerless', lang)}")
            files.append(f"    path: {_scalar(export.source)}")
            files.append("    csv: " + json.dumps(csv))
            for c, (_, why) in export.columns.items():
                if c in allowed:
                    files.append(f"    # {c}: {why}")
    if files:
        out += ["files:", *files]
    if columns:
        out += ["columns:", *columns]
    if queries:
        out += ["queries:", *queries]
    if layout.transactions or layout.suggestions:
        out.append("transactions:")
        out += [f"  {key}: {_scalar(value)}   # {why}" for key, value, why in layout.transactions]
        out += [f"  # {line}" for line in layout.suggestions]
    if layout.derived_customers:
        out.append(f"customers: {{from_transactions: true}}   # {t('new_why_derived', lang)}")
    return "\n".join(out) + "\n\n"


# --------------------------------------------------------------------------------------------
# crmkit new


def _refuse(where: str, code: str, message: str) -> WorkspaceError:
    problems = ProblemList()
    problems.add(where, code, message)
    return WorkspaceError(problems)


def new_workspace(client_dir: str | Path, *, name: str | None = None, language: str = "en",
                  source: str | Path | None = None,
                  echo: Callable[[str], None] | None = print) -> Path:
    """Create a client workspace with a commented ``client.yaml`` and a README of the files.

    Parameters
    ----------
    client_dir : path
        Must not exist yet, or be an empty folder: nothing of a client's is ever overwritten.
    name : str, optional
        The client's name; default: the folder name, title-cased.
    language : {"en", "es"}
        Language of the template, the comments and the report.
    source : path, optional
        A folder of the client's exports (or one export file). Its supported files are copied
        into the workspace (the originals are only read), and ``client.yaml`` gets the guessed
        ``files:``, ``columns:`` and settings, each with a comment.
    echo : callable, optional
        Receives the list of what to review after ``source`` was read (default: printed).

    Raises
    ------
    WorkspaceError
        When the folder already holds files, or ``source`` is missing or holds no export;
        nothing is written then.
    """
    client_dir = Path(client_dir)
    if client_dir.exists() and (not client_dir.is_dir() or any(client_dir.iterdir())):
        raise _refuse(str(client_dir), "exists", t("new_exists", language))
    exports: list[Path] = []
    if source is not None:  # everything is read and guessed before anything is written
        source = Path(source)
        if not source.exists():
            raise _refuse(str(source), "missing_file", t("new_no_source", language))
        exports = sorted(p for p in source.iterdir() if p.is_file()) if source.is_dir() \
            else [source]
        readable = [p for p in exports if p.suffix.lower() in SUPPORTED_SUFFIXES]
        if not readable:
            found = ", ".join(p.name for p in exports[:8]) or "-"
            raise _refuse(str(source), "no_exports", t(
                "new_no_exports", language, found=found,
                expected=", ".join(SUPPORTED_SUFFIXES)))
    template = paths.TEMPLATES / "client" / language
    name = name or client_dir.resolve().name.replace("-", " ").replace("_", " ").title()
    text = (template / "client.yaml").read_text(encoding="utf-8")
    # A JSON string is a valid YAML double-quoted scalar: quotes or colons in a name are safe.
    text = text.replace('"{name}"', json.dumps(name))
    readable = [p for p in exports if p.suffix.lower() in SUPPORTED_SUFFIXES]
    review = ""
    if readable:
        # The originals are read where they are (read-only), then copied as they are.
        found, unreadable = inspect_exports(readable, language)
        unreadable += [t("new_skipped_file", language, file=p.name) for p in exports
                       if p.suffix.lower() not in SUPPORTED_SUFFIXES]
        layout = guess_layout(found, language)
        marker = "\nassumptions:"
        cut = text.index(marker) + 1 if marker in text else len(text)
        text = text[:cut] + render(layout, language) + text[cut:]
        lines = [t("new_review_intro", language, path=str(client_dir))]
        lines += [f"  - {line}" for line in unreadable + layout.review]
        lines.append(t("new_review_next", language, path=str(client_dir)))
        review = "\n".join(lines)
    client_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(template / "README.md", client_dir / "README.md")
    for path in readable:
        shutil.copyfile(path, client_dir / path.name)
    (client_dir / "client.yaml").write_text(text, encoding="utf-8")
    if review and echo is not None:
        echo(review)
    return client_dir
