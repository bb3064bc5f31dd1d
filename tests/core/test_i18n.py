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


@pytest.mark.parametrize(("lang", "one", "two"), [("en", "1 month", "2 months"),
                                                  ("es", "1 mes", "2 meses")])
def test_counted_words_agree_with_their_number(lang, one, two):
    from crmkit.core.i18n import tn

    assert t("sum_months", lang, months=1) == one
    assert t("sum_months", lang, months=2) == two
    assert tn("unit_months", 1, lang, n="1") == one
    assert tn("unit_months", 2.5, lang, n="2.5").endswith(two.split()[1])
    assert tn("unit_months", 0, lang, n="0").endswith(two.split()[1])


def test_every_singular_has_its_plural_with_the_same_placeholders():
    import string

    from crmkit.core.i18n import tn

    messages = catalogue()
    for key in messages:
        if key.endswith("_one"):
            base = key[:-4]
            plural = base if base in messages else base + "_many"
            assert plural in messages, key
            for lang in LANGUAGES:
                fields = [{f for _, f, _, _ in string.Formatter().parse(messages[k][lang]) if f}
                          for k in (key, plural)]
                assert fields[0] == fields[1], key
            values = dict.fromkeys(fields[0], "x")
            assert tn(base, 2, "en", **values) == messages[plural]["en"].format(**values)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_figure_that_rounds_to_zero_has_no_sign(lang):
    fmt = Formatter(lang, "EUR")
    for text in (fmt.money(-0.4), fmt.number(-0.2), fmt.pct(-0.001), fmt.number(-0.04, 1)):
        assert not text.startswith(("-", "\u2212")), text
    assert fmt.money(-1).startswith("-")
    assert fmt.pct(-0.01).startswith("-")


def test_one_percent_style_per_language():
    assert Formatter("es", "EUR").pct(0) == "0\xa0%"
    assert Formatter("es", "EUR").pct(0.52) == "52\xa0%"
    assert Formatter("en", "EUR").pct(0.52) == "52%"


def test_data_codes_read_in_the_language_and_client_words_stay():
    from crmkit.core.i18n import value_label

    assert value_label("phone", "es") == "teléfono"
    assert value_label("Branch", "es") == "oficina"
    assert value_label("face-to-face", "es") == "en persona"
    assert value_label("Galicia", "es") == "Galicia"
    assert value_label(None, "es") == "–"


def test_paper_size_follows_the_currency():
    from crmkit.core.i18n import paper_size

    assert paper_size("EUR") == "A4" and paper_size("USD") == "Letter"
    assert Formatter("es", "MXN").paper == "Letter"


def test_a_message_may_have_placeholders_named_like_the_arguments_of_t(monkeypatch):
    from crmkit.core import i18n

    entries = {**i18n.catalogue(), "probe": {"en": "{key} in {lang}", "es": "{key} en {lang}"}}
    monkeypatch.setattr(i18n, "catalogue", lambda: entries)
    assert i18n.t("probe", "es", key="segments", lang="yaml") == "segments en yaml"
