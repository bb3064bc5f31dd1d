"""Both languages: translated words and numbers, money and dates formatted for the language.

Every word a client reads comes from a message catalogue in ``lib/crmkit/messages/*.yaml``, where
each key carries its English and Spanish text side by side (a test fails when one is missing).
Numbers, currency and dates are formatted with Babel's CLDR data, so Spanish reports read
``1.234,50 €`` and ``5 de marzo de 2026`` and English ones ``€1,234.50`` and ``5 March 2026``.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Mapping
from pathlib import Path

import yaml
from babel import Locale
from babel import dates as babel_dates
from babel import numbers as babel_numbers

LANGUAGES = ("en", "es")
#: CLDR locale used to format each language.
LOCALES = {"en": "en_GB", "es": "es_ES"}
MESSAGES_DIR = Path(__file__).parent / "messages"
# LibYAML's loader reads the catalogues about ten times faster than the pure-Python one; every
# workbook's kernel loads them once.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def catalogue() -> dict[str, dict[str, str]]:
    """All messages, ``key -> {"en": text, "es": text}``, merged from every catalogue file.

    Raises
    ------
    ValueError
        When two files define the same key or a message lacks a language.
    """
    merged: dict[str, dict[str, str]] = {}
    for path in sorted(MESSAGES_DIR.glob("*.yaml")):
        entries = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER) or {}
        for key, texts in entries.items():
            if key in merged:
                raise ValueError(f"message '{key}' is defined twice (again in {path.name})")
            missing = [lang for lang in LANGUAGES if not (texts or {}).get(lang)]
            if missing:
                raise ValueError(f"message '{key}' in {path.name} lacks {', '.join(missing)}")
            merged[key] = texts
    return merged


def t(key: str, lang: str, **values) -> str:
    """Translate ``key`` into ``lang``, filling ``{placeholders}`` with ``values``."""
    try:
        text = catalogue()[key][lang]
    except KeyError:
        if lang not in LANGUAGES:
            raise ValueError(f"language {lang!r}; expected one of {LANGUAGES}") from None
        raise KeyError(f"no message '{key}' in lib/crmkit/messages/") from None
    return text.format(**values) if values else text


def translate_labels(labels: Mapping[str, str] | list[str], lang: str) -> dict[str, str]:
    """Map message keys to their text in ``lang`` (for renaming table columns)."""
    return {key: t(key, lang) for key in labels}


class Formatter:
    """Format numbers, money, percentages and dates for one language and currency.

    Parameters
    ----------
    lang : {"en", "es"}
    currency : str
        ISO 4217 code, e.g. ``"EUR"``.
    """

    def __init__(self, lang: str = "en", currency: str = "EUR"):
        if lang not in LANGUAGES:
            raise ValueError(f"language {lang!r}; expected one of {LANGUAGES}")
        self.lang = lang
        # A US client reads "$1,235", not the British "US$1,235".
        self.locale = "en_US" if (lang, currency) == ("en", "USD") else LOCALES[lang]
        self.currency = currency

    def __repr__(self) -> str:
        return f"Formatter(lang={self.lang!r}, currency={self.currency!r})"

    @staticmethod
    def _missing(value) -> bool:
        return value is None or (isinstance(value, float) and math.isnan(value))

    def number(self, value, decimals: int = 0) -> str:
        """``1234.5 -> "1,234.5"`` (en) or ``"1234,5"`` / ``"1.234,5"`` (es)."""
        if self._missing(value):
            return "–"
        pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
        return babel_numbers.format_decimal(value, format=pattern, locale=self.locale)

    def money(self, value, decimals: int = 0) -> str:
        """Amount in the client's currency: ``€1,235`` (en), ``1235 €`` (es)."""
        if self._missing(value):
            return "–"
        pattern = Locale.parse(self.locale).currency_formats["standard"].pattern
        if ";" in pattern:  # keep the positive pattern; Babel adds the minus sign itself
            pattern = pattern.split(";")[0]
        pattern = pattern.replace("#,##0.00", "#,##0" + ("." + "0" * decimals if decimals else ""))
        return babel_numbers.format_currency(value, self.currency, format=pattern,
                                             locale=self.locale, currency_digits=False)

    def pct(self, value, decimals: int = 0) -> str:
        """A share ``0.123 -> "12%"`` (en) or ``"12 %"`` (es)."""
        if self._missing(value):
            return "–"
        pattern = "#,##0" + ("." + "0" * decimals if decimals else "") + "%"
        text = babel_numbers.format_percent(value, format=pattern, locale=self.locale)
        return text.replace("%", "\u00a0%") if self.lang == "es" else text

    def date(self, value, style: str = "long") -> str:
        """``5 March 2026`` (en) or ``5 de marzo de 2026`` (es)."""
        if self._missing(value):
            return "–"
        if hasattr(value, "date") and not isinstance(value, dt.date | str):
            value = value.date()
        return babel_dates.format_date(value, format=style, locale=self.locale)

    def month(self, value) -> str:
        """``March 2026`` / ``marzo de 2026``."""
        if hasattr(value, "date") and not isinstance(value, dt.date):
            value = value.date()
        return babel_dates.format_skeleton("yMMMM", value, locale=self.locale)

    def currency_symbol(self) -> str:
        return babel_numbers.get_currency_symbol(self.currency, locale=self.locale)

    def plotly_separators(self) -> str:
        """Plotly's ``layout.separators``: decimal mark then thousands mark."""
        return ",." if self.lang == "es" else ".,"

    def money_axis(self) -> dict:
        """Tick settings for a plotly axis in this currency (prefix in en, suffix in es)."""
        symbol = self.currency_symbol()
        if self.lang == "es":
            return {"ticksuffix": "\u00a0" + symbol, "tickformat": ",.0f"}
        return {"tickprefix": symbol, "tickformat": ",.0f"}
