"""Both languages: translated words and numbers, money and dates formatted for the language.

Every word a client reads comes from a message catalogue in ``lib/crmkit/messages/*.yaml``, where
each key carries its English and Spanish text side by side (a test fails when one is missing).
Numbers, currency and dates are formatted with Babel's CLDR data, so Spanish reports read
``1.234,50 €`` and ``5 de marzo de 2026`` and English ones ``€1,234.50`` and ``5 March 2026``.

Counted words follow CLDR's plural rules: a message ``key`` may have a ``key_one`` sibling, the
singular, which :func:`t` (for a message with one numeric value) and :func:`tn` pick when the
count is one ("1 month", "1 mes"; "2 months", "2 meses"). A figure that rounds to zero is shown
without a sign ("0 €", never "-0 €").
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


#: Suffix of the singular form of a counted message (``sum_months`` / ``sum_months_one``).
ONE = "_one"
#: Suffix of the plural where a catalogue names both forms (``check_noun_line_one`` /
#: ``check_noun_line_many``); :func:`tn` takes either spelling.
MANY = "_many"


def plural_form(count, lang: str) -> str:
    """CLDR plural category of ``count`` in ``lang``: ``"one"`` or ``"other"``.

    Spanish has a third category (``many``, for a million and its multiples) that reads like
    ``other`` ("1.000.000 de meses" is beyond what a report counts), so it is folded into it.
    """
    if lang not in LANGUAGES:
        raise ValueError(f"language {lang!r}; expected one of {LANGUAGES}")
    return "one" if _locale(LOCALES[lang]).plural_form(abs(count)) == "one" else "other"


@functools.cache
def _locale(name: str) -> Locale:
    return Locale.parse(name)


def _is_count(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def tn(key: str, count, lang: str, /, **values) -> str:
    """Translate a counted message: ``key_one`` when ``count`` is one in ``lang``, else ``key``.

    Parameters
    ----------
    key : str
        The message of the plural (``"{months} months"``, or ``key + "_many"``); its singular
        is ``key + "_one"``.
    count : int or float
        What is counted (only chooses the form; pass the formatted figure in ``values``).
    lang : {"en", "es"}
    """
    messages = catalogue()
    if plural_form(count, lang) == "one" and key + ONE in messages:
        key = key + ONE
    elif key not in messages and key + MANY in messages:
        key = key + MANY
    return t(key, lang, **values)


def t(key: str, lang: str, /, **values) -> str:
    """Translate ``key`` into ``lang``, filling ``{placeholders}`` with ``values``.

    ``key`` and ``lang`` are positional only, so a message may have placeholders of those names.

    A message with a singular sibling (``key_one``) whose values hold exactly one number is
    counted by that number: ``t("sum_months", "en", months=1)`` reads "1 month". With the
    figure already formatted as text, use :func:`tn`.
    """
    if values and key + ONE in catalogue():
        counts = [v for v in values.values() if _is_count(v)]
        if len(counts) == 1 and plural_form(counts[0], lang) == "one":
            key = key + ONE
    try:
        text = catalogue()[key][lang]
    except KeyError:
        if lang not in LANGUAGES:
            raise ValueError(f"language {lang!r}; expected one of {LANGUAGES}") from None
        raise KeyError(f"no message '{key}' in lib/crmkit/messages/") from None
    return text.format(**values) if values else text


#: Prefix of the catalogue entries that name a value found in client data (a channel, a
#: category, a customer attribute): ``data_phone`` is "phone" / "teléfono".
DATA_PREFIX = "data_"


def data_key(value) -> str:
    """The catalogue key of a data value: ``"Face to face"`` -> ``"data_face_to_face"``."""
    return DATA_PREFIX + "_".join(str(value).strip().lower().replace("-", " ").split())


def value_label(value, lang: str) -> str:
    """A value from the client's data as the client reads it in ``lang``.

    Codes that exports commonly use (channels such as ``web``, ``phone``, ``branch``; product
    categories; attribute codes such as ``female``) are translated through the ``data_*``
    entries of the catalogue; anything else is the client's own word and is shown as written.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    key = data_key(value)
    if key in catalogue():
        return t(key, lang)
    return str(value)


#: Currencies of the territories whose paper is US Letter in CLDR's ``paperSize`` data (BZ, CA,
#: CL, CO, CR, GT, MX, NI, PA, PH, PR, SV, US, VE); a client's settings name a language and a
#: currency, not a territory, so the currency stands for it.
LETTER_CURRENCIES = frozenset({"BZD", "CAD", "CLP", "COP", "CRC", "GTQ", "MXN", "NIO", "PAB",
                               "PHP", "USD", "VES", "VEF"})


def paper_size(currency: str) -> str:
    """``"Letter"`` where the client's territory prints on US Letter, else ``"A4"``."""
    return "Letter" if str(currency).upper() in LETTER_CURRENCIES else "A4"


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

    @staticmethod
    def _unsigned_zero(value, decimals: int):
        """``value``, or a plain 0 when it rounds to zero at ``decimals`` places.

        -0.2 shown with no decimals would read "-0" (and -0.4 € "-0 €"): a sign on a figure that
        reads as nothing suggests a loss that is not there.
        """
        try:
            if round(float(value), decimals) == 0:
                return 0
        except (TypeError, ValueError):
            pass
        return value

    def number(self, value, decimals: int = 0) -> str:
        """``1234.5 -> "1,234.5"`` (en) or ``"1234,5"`` / ``"1.234,5"`` (es)."""
        if self._missing(value):
            return "–"
        value = self._unsigned_zero(value, decimals)
        pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
        return babel_numbers.format_decimal(value, format=pattern, locale=self.locale)

    def money(self, value, decimals: int = 0) -> str:
        """Amount in the client's currency: ``€1,235`` (en), ``1235 €`` (es)."""
        if self._missing(value):
            return "–"
        value = self._unsigned_zero(value, decimals)
        pattern = _locale(self.locale).currency_formats["standard"].pattern
        if ";" in pattern:  # keep the positive pattern; Babel adds the minus sign itself
            pattern = pattern.split(";")[0]
        pattern = pattern.replace("#,##0.00", "#,##0" + ("." + "0" * decimals if decimals else ""))
        return babel_numbers.format_currency(value, self.currency, format=pattern,
                                             locale=self.locale, currency_digits=False)

    def pct(self, value, decimals: int = 0) -> str:
        """A share ``0.123 -> "12%"`` (en) or ``"12 %"`` (es)."""
        if self._missing(value):
            return "–"
        value = self._unsigned_zero(value, decimals + 2)  # a share: 0.004 is "0%"
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

    @property
    def paper(self) -> str:
        """The client's paper size: :func:`paper_size` of the currency."""
        return paper_size(self.currency)

    def plotly_locale(self) -> str:
        """Plotly's ``config.locale`` for the language (month names, toolbar tooltips)."""
        return "es" if self.lang == "es" else "en"

    def plotly_separators(self) -> str:
        """Plotly's ``layout.separators``: decimal mark then thousands mark."""
        return ",." if self.lang == "es" else ".,"

    def money_axis(self) -> dict:
        """Tick settings for a plotly axis in this currency (prefix in en, suffix in es)."""
        symbol = self.currency_symbol()
        if self.lang == "es":
            return {"ticksuffix": "\u00a0" + symbol, "tickformat": ",.0f"}
        return {"tickprefix": symbol, "tickformat": ",.0f"}
