"""Tables a client reads: translated headers, numbers in the language, client text escaped.

A :class:`Table` wraps a DataFrame with a kind per column (money, pct, number, integer, date,
text). In a notebook it renders as HTML; the report keeps that HTML; the raw frame stays available
for exports. Every cell is escaped here, so a customer called ``<script>`` is shown as text.

A table with more columns than fit a page (:data:`MAX_COLUMNS`) is shown as several tables of
the same rows, each starting with the table's first column (the segment, the year …), so no
column is ever cut off at the edge of a card or a printed page; the export keeps it whole.
"""

from __future__ import annotations

import html
from collections.abc import Mapping

import pandas as pd

from crmkit.core.i18n import Formatter, t, value_label

KINDS = ("text", "label", "figure", "money", "pct", "number", "integer", "date", "score")
NUMERIC_KINDS = frozenset({"figure", "money", "pct", "number", "integer", "score"})
#: The most columns one table shows (its first column included): seven columns of figures fit
#: an A4 page in portrait and a report card; a wider table is split (see the module docstring).
MAX_COLUMNS = 7


class Table:
    """A DataFrame dressed for the client.

    Parameters
    ----------
    frame : DataFrame
        The data; its index is not shown unless ``index=True``.
    fmt : Formatter
        Language and currency.
    columns : mapping of column -> (message key, kind)
        Which columns to show, in order, with the message key of their header and their kind.
        Kind is one of ``text, label, figure, money, pct, number, integer, date, score``;
        ``number:1`` asks for one decimal; ``figure`` is text already formatted as a number
        (right-aligned); ``label`` is a code from the client's data (a channel, a category)
        shown through :func:`crmkit.core.i18n.value_label`.
    caption : str, optional
        Already translated.
    """

    def __init__(self, frame: pd.DataFrame, fmt: Formatter,
                 columns: Mapping[str, tuple[str, str]], *, caption: str | None = None,
                 index: bool = False):
        self.frame = frame
        self.fmt = fmt
        self.columns = dict(columns)
        self.caption = caption
        self.index = index

    def header(self, column: str) -> str:
        return t(self.columns[column][0], self.fmt.lang)

    def cell(self, value, kind: str) -> str:
        """Format one value as display text (not yet escaped)."""
        name, _, decimals = kind.partition(":")
        places = int(decimals) if decimals else None
        if value is None or (isinstance(value, float) and value != value):
            return "–"
        if name == "money":
            return self.fmt.money(value, places or 0)
        if name == "pct":
            return self.fmt.pct(value, 1 if places is None else places)
        if name == "number":
            return self.fmt.number(value, 1 if places is None else places)
        if name in ("integer", "score"):
            return self.fmt.number(value, 0)
        if name == "date":
            return self.fmt.date(value, style="medium")
        if name == "label":
            return value_label(value, self.fmt.lang)
        return str(value)

    def display_frame(self) -> pd.DataFrame:
        """The table as strings with translated headers (what a client sees; also for exports)."""
        out = pd.DataFrame(index=self.frame.index)
        for column, (_, kind) in self.columns.items():
            out[self.header(column)] = [self.cell(v, kind) for v in self.frame[column]]
        return out

    def column_groups(self) -> list[list[str]]:
        """The columns of each table shown: one group, or several when the table is too wide.

        Every group after the first starts again with the first column (unless the row labels
        come from the index, which every part shows), and the groups are as even as they can
        be, so that no part is a lone column.
        """
        columns = list(self.columns)
        room = MAX_COLUMNS - (1 if self.index else 0)
        if len(columns) <= room:
            return [columns]
        key, rest = ([], columns) if self.index else ([columns[0]], columns[1:])
        per = room - len(key)
        parts = -(-len(rest) // per)
        size = -(-len(rest) // parts)
        return [key + rest[i:i + size] for i in range(0, len(rest), size)]

    def to_html(self) -> str:
        groups = self.column_groups()
        parts = [self._html_part(columns, first=n == 0, wide=len(columns) >= 6)
                 for n, columns in enumerate(groups)]
        if len(parts) == 1:
            return parts[0]
        return f'<div class="crm-table-parts">{"".join(parts)}</div>'

    def _html_part(self, columns: list[str], *, first: bool, wide: bool) -> str:
        def css(kind: str) -> str:
            return "num" if kind.partition(":")[0] in NUMERIC_KINDS else "txt"

        heads = "".join(f'<th class="{css(self.columns[col][1])}" scope="col">'
                        f"{html.escape(self.header(col))}</th>" for col in columns)
        rows = []
        for label, row in self.frame.iterrows():
            cells = []
            if self.index:
                cells.append(f'<th class="txt" scope="row">{html.escape(str(label))}</th>')
            for col in columns:
                kind = self.columns[col][1]
                cells.append(f'<td class="{css(kind)}">'
                             f"{html.escape(self.cell(row[col], kind))}</td>")
            rows.append("<tr>" + "".join(cells) + "</tr>")
        caption = ""
        if self.caption:
            text = self.caption if first else t("table_continued", self.fmt.lang,
                                                caption=self.caption)
            caption = f"<caption>{html.escape(text)}</caption>"
        corner = "<th></th>" if self.index else ""
        classes = "crm-table crm-table-wide" if wide else "crm-table"
        return (f'<table class="{classes}">{caption}<thead><tr>{corner}{heads}</tr></thead>'
                f"<tbody>{''.join(rows)}</tbody></table>")

    def _repr_html_(self) -> str:
        return self.to_html()

    def __repr__(self) -> str:
        return self.display_frame().to_string(index=False)


def key_figures(items: list[tuple[str, str]]) -> KeyFigures:
    """A row of headline figures: ``[(label, formatted value), …]``."""
    return KeyFigures(items)


def present(frame: pd.DataFrame, columns: Mapping[str, tuple[str, str]]
            ) -> dict[str, tuple[str, str]]:
    """The subset of ``columns`` that ``frame`` has (optional columns such as NPS)."""
    return {c: spec for c, spec in columns.items() if c in frame.columns}


class Notice:
    """A short note in place of a table or chart the client's data cannot give."""

    def __init__(self, text: str):
        self.text = text

    def _repr_html_(self) -> str:
        return f'<p class="crm-notice">{html.escape(self.text)}</p>'

    def __repr__(self) -> str:
        return self.text


class KeyFigures:
    """Headline figures shown as cards at the top of a section."""

    def __init__(self, items: list[tuple[str, str]]):
        self.items = items

    def _repr_html_(self) -> str:
        cards = "".join(
            f'<div class="crm-kpi"><div class="crm-kpi-value">{html.escape(value)}</div>'
            f'<div class="crm-kpi-label">{html.escape(label)}</div></div>'
            for label, value in self.items)
        return f'<div class="crm-kpis">{cards}</div>'

    def __repr__(self) -> str:
        return "\n".join(f"{label}: {value}" for label, value in self.items)


class Quadrants:
    """Four labelled lists in a 2×2 grid (a SWOT)."""

    def __init__(self, quadrants: list[tuple[str, list[str]]], empty: str = "–"):
        self.quadrants = quadrants
        self.empty = empty

    def _repr_html_(self) -> str:
        boxes = []
        for i, (title, items) in enumerate(self.quadrants):
            lis = "".join(f"<li>{html.escape(x)}</li>" for x in items) or (
                f"<li class='crm-empty'>{html.escape(self.empty)}</li>")
            boxes.append(f'<div class="crm-quad crm-quad-{i}"><h4>{html.escape(title)}</h4>'
                         f"<ul>{lis}</ul></div>")
        return f'<div class="crm-quads">{"".join(boxes)}</div>'

    def __repr__(self) -> str:
        return "\n".join(f"{title}: " + "; ".join(items) for title, items in self.quadrants)
