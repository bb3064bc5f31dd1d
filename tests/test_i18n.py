"""Both languages: every message exists in English and Spanish; numbers read as each expects."""

import datetime as dt

import pytest

from crmkit.core.i18n import LANGUAGES, Formatter, catalogue, t


def test_every_message_has_english_and_spanish_text():
    messages = catalogue()
    assert len(messages) > 50
    for key, texts in messages.items():
        assert set(LANGUAGES) <= set(texts), key
        assert texts["en"].strip() and texts["es"].strip(), key


def test_placeholders_are_the_same_in_both_languages():
    import string

    for key, texts in catalogue().items():
        fields = [{f for _, f, _, _ in string.Formatter().parse(texts[lang]) if f}
                  for lang in LANGUAGES]
        assert fields[0] == fields[1], key


@pytest.mark.parametrize(("lang", "currency", "money", "pct", "date"), [
    ("en", "EUR", "€1,235", "12.3%", "5 March 2026"),
    ("es", "EUR", "1.235\xa0€", "12,3\xa0%", "5 de marzo de 2026"),
    ("en", "USD", "$1,235", "12.3%", "March 5, 2026"),
])
def test_formats_follow_the_language(lang, currency, money, pct, date):
    fmt = Formatter(lang, currency)
    assert fmt.money(1234.6) == money
    assert fmt.pct(0.1234, 1) == pct
    assert fmt.date(dt.date(2026, 3, 5)) == date


def test_spanish_groups_thousands_with_a_point():
    fmt = Formatter("es", "EUR")
    assert fmt.number(1234567.891, 1) == "1.234.567,9"
    assert fmt.money(-98765.4, 2) == "-98.765,40\xa0€"


def test_missing_values_show_a_dash_not_nan():
    fmt = Formatter("en", "EUR")
    assert fmt.money(float("nan")) == "–"
    assert fmt.pct(None) == "–"


def test_translation_fills_placeholders_and_rejects_unknown_languages():
    assert t("generated_by", "es", version="1.0") == "Generado con crmkit 1.0"
    with pytest.raises(ValueError, match="language 'fr'"):
        t("generated_by", "fr")
