"""The client's industry words: a bank's customers operate, they do not shop.

The catalogues (``lib/crmkit/core/messages/*.yaml``) are written in a shop's words ("purchase",
"average order", "coupon codes at the till"). A message whose words depend on the industry has a
variant per vocabulary, ``<key>__<vocabulary>`` (``seg_col_avg_order_value__banking``: "Average
operation" / "Importe medio por operación"), with the same placeholders, in both languages.

Three vocabularies: ``retail`` (the catalogue's own words), ``banking`` (customers hold products
and make operations) and ``subscription`` (customers hold contracts and pay bills). The client's
is ``report.vocabulary`` in client.yaml, else guessed from ``industry`` and ``business_model``
(:func:`vocabulary_of`).

Two ways in: :func:`word` translates a key with the vocabulary (the report's prose filter
``t``), and :func:`rewrite` turns the retail wording of every varied message found in a rendered
text (a table's header, an indicator's label, a chart's title, filled placeholders and all) into
the vocabulary's — the report applies it to every chapter, so the tables the workbooks' kernels
drew speak the client's words without each table knowing the industry. Whole messages are
replaced, never single words, so the grammar of each variant is the catalogue's.
"""

from __future__ import annotations

import functools
import html
import re
import string
from collections.abc import Callable
from typing import Any

from crmkit.core.i18n import LANGUAGES, catalogue, t

__all__ = ["DEFAULT", "SEPARATOR", "VOCABULARIES", "WORD_PREFIX", "rewrite", "rewrite_figure",
           "vocabulary_of", "word"]

VOCABULARIES = ("retail", "banking", "subscription")
DEFAULT = "retail"
#: Between a message's key and its vocabulary: ``seg_col_frequency__banking``.
SEPARATOR = "__"
#: Prefix of the single words the workbooks' prose takes through ``t`` (``vw_purchase``): too
#: short to be recognised in rendered text, so :func:`rewrite` leaves them alone.
WORD_PREFIX = "vw_"
#: Words of client.yaml's free-text ``industry`` that name a vocabulary (English and Spanish).
_HINTS = (("banking", ("bank", "banca", "banco", "bancario", "financ", "credit", "crédit",
                       "insur", "segur", "caja de ahorros", "savings")),
          ("subscription", ("telecom", "subscri", "suscrip", "utilit", "energ", "mobile",
                            "móvil", "fibre", "fibra", "broadband", "gym", "gimnas",
                            "streaming")))


def vocabulary_of(config: Any) -> str:
    """The client's vocabulary: ``report.vocabulary``, else guessed from the industry.

    A contract business with no recognisable industry gets ``subscription``; anything else
    ``retail``.
    """
    chosen = getattr(getattr(config, "report", None), "vocabulary", None)
    if chosen:
        return chosen
    industry = (getattr(config, "industry", "") or "").lower()
    for vocabulary, hints in _HINTS:
        if any(h in industry for h in hints):
            return vocabulary
    if getattr(config, "business_model", "") == "contractual":
        return "subscription"
    return DEFAULT


def word(key: str, lang: str, vocabulary: str = DEFAULT, **values) -> str:
    """``t(key)`` in the vocabulary's words: the ``key__vocabulary`` variant when there is one."""
    if vocabulary != DEFAULT and f"{key}{SEPARATOR}{vocabulary}" in catalogue():
        key = f"{key}{SEPARATOR}{vocabulary}"
    return t(key, lang, **values)


def _needle(template: str, escape: Callable[[str], str]) -> str:
    """The longest literal run of ``template``: text without it cannot hold the message."""
    literals = [escape(literal) for literal, _, _, _ in string.Formatter().parse(template)]
    return max(literals, key=len, default="")


def _pattern(template: str, escape: Callable[[str], str]) -> re.Pattern | None:
    parts, fields = [], []
    for literal, name, _, _ in string.Formatter().parse(template):
        parts.append(re.escape(escape(literal)))
        if name is not None:
            if name in fields:  # the same placeholder twice: match it again as text
                parts.append(f"(?P={name})")
            else:
                fields.append(name)
                parts.append(f"(?P<{name}>[^<>\n]+?)")
    if not "".join(parts).strip():
        return None
    # whole words only: "Compra media" is not rewritten inside "Compra mediana"
    return re.compile(r"(?<!\w)" + "".join(parts) + r"(?!\w)")


@functools.cache
def _rules(lang: str, vocabulary: str, escaped: bool) -> tuple:
    """(pattern, variant template) for every varied message, the longest retail text first."""
    if lang not in LANGUAGES:
        raise ValueError(f"language {lang!r}; expected one of {LANGUAGES}")
    messages = catalogue()
    suffix = SEPARATOR + vocabulary
    escape = (lambda s: html.escape(s, quote=True)) if escaped else (lambda s: s)
    rules = []
    for key, texts in messages.items():
        if not key.endswith(suffix) or key[:-len(suffix)] not in messages:
            continue
        if key.startswith(WORD_PREFIX):  # single words: for the prose's `t` filter only
            continue
        base = messages[key[:-len(suffix)]][lang]
        pattern = _pattern(base, escape)
        if pattern is not None:
            rules.append((len(base), pattern, texts[lang], _needle(base, escape)))
    rules.sort(key=lambda rule: -rule[0])
    return tuple((pattern, variant, needle) for _, pattern, variant, needle in rules)


def rewrite(text: str, lang: str, vocabulary: str, *, escaped: bool = True) -> str:
    """``text`` with every varied message in the vocabulary's words.

    Parameters
    ----------
    text : str
        Rendered text: HTML (``escaped=True``, the catalogue's text is matched HTML-escaped) or
        plain strings (``escaped=False``).
    lang : {"en", "es"}
    vocabulary : one of :data:`VOCABULARIES`
    """
    if vocabulary == DEFAULT or not text:
        return text
    for pattern, variant, needle in _rules(lang, vocabulary, escaped):
        # a plain substring test first: a regular expression over a whole chapter (or plotly.js)
        # for every message made the telecom report take 30 s to render instead of 1
        if needle not in text:
            continue
        text = pattern.sub(lambda m, v=variant: v.format(**m.groupdict()), text)
    return text


def rewrite_figure(figure: dict, lang: str, vocabulary: str) -> dict:
    """A plotly figure (as a dict) with its titles, trace names and labels in the vocabulary.

    Only strings are touched (numbers and arrays of numbers pass as they are); the figure is
    copied, never changed in place.
    """
    if vocabulary == DEFAULT:
        return figure

    def walk(value):
        if isinstance(value, str):
            return rewrite(value, lang, vocabulary, escaped=False)
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list) and value and not isinstance(value[0], int | float):
            return [walk(v) for v in value]
        return value

    return walk(figure)
