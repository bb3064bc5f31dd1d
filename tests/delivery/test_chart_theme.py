"""The shared chart theme: toolbar config, locale, label room, legends, percent and log ticks."""

import re

import nbformat
import plotly.graph_objects as go
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from crmkit.core.i18n import Formatter
from crmkit.delivery import charts
from crmkit.delivery.charts import PLOTLY_MIME, finish, log_axis, plotly_config
from crmkit.delivery.report import render_report
from crmkit.settings.client import ClientConfig


@pytest.mark.parametrize("lang", ["en", "es"])
def test_config_has_no_cloud_button_and_no_logo_but_keeps_zoom_and_png(lang):
    config = plotly_config(lang)
    assert config["displaylogo"] is False and config["showSendToCloud"] is False
    assert "sendChartToCloud" in config["modeBarButtonsToRemove"]
    assert "sendDataToCloud" in config["modeBarButtonsToRemove"]
    assert config.get("displayModeBar", "hover") is not False  # zoom and PNG download stay
    assert not {"toImage", "zoom2d", "pan2d", "resetScale2d"} & set(
        config["modeBarButtonsToRemove"])
    assert config["locale"] == lang


def test_a_chart_shown_in_a_kernel_carries_the_config_in_its_language():
    fig = charts.figure(Formatter("es", "EUR"), "Título")
    fig.add_bar(x=["a"], y=[1])
    bundle = fig._repr_mimebundle_()[PLOTLY_MIME]
    assert bundle["config"] == plotly_config("es")
    assert bundle["data"][0]["type"] == "bar"


def test_outside_bar_labels_get_room_past_the_longest_bar():
    fmt = Formatter("en", "EUR")
    fig = charts.figure(fmt, "Shares")
    charts.share_bars(fig, ["A", "B"], [([0.2, 0.8], "share", "#000000")], fmt)
    layout = finish(fig.to_plotly_json())["layout"]
    low, high = layout["xaxis"]["range"]
    assert low == 0 and high > 0.8 * 1.1


def test_negative_bars_labelled_outside_get_room_below_too():
    spec = {"data": [{"type": "bar", "x": ["a", "b"], "y": [-50, 100], "text": ["-50", "100"],
                      "textposition": "outside"}], "layout": {}}
    low, high = finish(spec)["layout"]["yaxis"]["range"]
    assert low < -50 and high > 100
    assert "range" not in spec["layout"].get("yaxis", {})  # the input is left as it was


def test_a_legend_under_the_plot_reserves_its_own_space():
    spec = {"data": [], "layout": {"legend": {"orientation": "h", "y": -0.2}}}
    legend = finish(spec)["layout"]["legend"]
    assert legend["yref"] == "container" and legend["y"] >= 0
    fig = charts.figure(Formatter("en", "EUR"), "x")
    assert fig.layout.legend.yref == "container"


def test_finish_is_idempotent():
    fmt = Formatter("es", "EUR")
    fig = charts.figure(fmt, "Shares")
    charts.share_bars(fig, ["A"], [([0.5], "share", "#000000")], fmt)
    once = finish(fig.to_plotly_json(), "es")
    assert finish(once, "es") == once


def test_spanish_percent_ticks_read_like_spanish_percentages():
    spec = {"data": [], "layout": {"xaxis": {"tickformat": ".0%"}}}
    alias = finish(spec, "es")["layout"]["xaxis"]["labelalias"]
    assert alias["50%"] == "50\u00a0%" and alias["\u221210%"] == "\u221210\u00a0%"
    assert alias["1.000%"] == "1.000\u00a0%"
    assert "labelalias" not in finish(spec, "en")["layout"]["xaxis"]


@pytest.mark.parametrize(("lang", "expected"), [("en", ["€5", "€10", "€20", "€50", "€100"]),
                                                ("es", ["5\xa0€", "10\xa0€", "20\xa0€",
                                                        "50\xa0€", "100\xa0€"])])
def test_every_tick_of_a_log_money_axis_is_formatted_alike(lang, expected):
    fmt = Formatter(lang, "EUR")
    fig = log_axis(charts.figure(fmt, "x"), 4, 150, fmt.money)
    assert list(fig.layout.xaxis.ticktext) == expected
    assert fig.layout.xaxis.type == "log"


def test_a_wide_log_range_keeps_to_powers_of_ten():
    fmt = Formatter("en", "EUR")
    fig = log_axis(charts.figure(fmt, "x"), 1, 1e6, fmt.number)
    assert list(fig.layout.xaxis.tickvals) == [10.0 ** k for k in range(7)]


def _report(tmp_path, lang):
    fig = charts.figure(Formatter(lang, "EUR"), "t")
    fig.add_scatter(x=["2024-01-01", "2024-07-01"], y=[1, 2])
    cell = new_code_cell("chart()", outputs=[new_output(
        "display_data", data={PLOTLY_MIME: fig._repr_mimebundle_()[PLOTLY_MIME]})])
    path = tmp_path / "01_x.ipynb"
    nbformat.write(new_notebook(cells=[new_markdown_cell("# 1. X"), cell]), path)
    return path


def _config(currency="EUR"):
    from conftest import MINIMAL_CONFIG

    return ClientConfig.model_validate({**MINIMAL_CONFIG, "currency": currency})


def test_the_spanish_report_embeds_plotlys_spanish_locale_once(tmp_path):
    html = render_report([_report(tmp_path, "es")], {}, _config(), "es")
    assert html.count("moduleType: 'locale'") == 1 and "'Ene', 'Feb'" in html
    call = re.search(r"Plotly\.newPlot\(\"chart-1\",.*?,(\{[^{}]*\"displaylogo\".*?\})\);", html)
    assert call and '"locale":"es"' in call.group(1) and '"showSendToCloud":false' in call.group(1)
    assert '"displayModeBar":false' not in html


def test_the_english_report_has_no_locale_script(tmp_path):
    html = render_report([_report(tmp_path, "en")], {}, _config(), "en")
    assert "moduleType: 'locale'" not in html and '"locale":"en"' in html


@pytest.mark.parametrize(("currency", "paper"), [("EUR", "A4"), ("GBP", "A4"), ("USD", "Letter"),
                                                 ("MXN", "Letter")])
def test_paper_follows_the_clients_territory(tmp_path, currency, paper):
    html = render_report([_report(tmp_path, "en")], {}, _config(currency), "en")
    assert f"@page {{ size: {paper} portrait" in html and f'data-paper="{paper}"' in html


def test_paper_can_be_chosen(tmp_path):
    html = render_report([_report(tmp_path, "en")], {}, _config("USD"), "en", paper="A4")
    assert "size: A4 portrait" in html
    with pytest.raises(ValueError, match="paper"):
        render_report([_report(tmp_path, "en")], {}, _config(), "en", paper="A3")


def test_go_figures_without_the_theme_are_finished_in_the_report(tmp_path):
    plain = go.Figure(go.Bar(x=["a"], y=[1], text=["1"], textposition="outside"))
    cell = new_code_cell("chart()", outputs=[new_output(
        "display_data", data={PLOTLY_MIME: plain.to_plotly_json()})])
    path = tmp_path / "01_x.ipynb"
    nbformat.write(new_notebook(cells=[new_markdown_cell("# 1. X"), cell]), path)
    html = render_report([path], {}, _config(), "en")
    assert '"range":[0.0,1.16]' in html


def test_offer_roi_keeps_the_segment_maps_order_top_to_bottom():
    import pandas as pd

    from crmkit.core.i18n import Formatter
    from crmkit.delivery.charts.plan import offer_roi

    segments = pd.DataFrame({"segment_name": ["Champions", "Loyal", "At risk"],
                             "roi": [0.1, 2.5, -0.3], "expected_cost": [10.0, 20.0, 30.0],
                             "incremental_margin": [11.0, 70.0, 21.0]})
    fig = offer_roi(segments, Formatter("en", "EUR"))
    spec = fig.to_plotly_json() if hasattr(fig, "to_plotly_json") else fig.figure.to_plotly_json()
    assert list(spec["data"][0]["y"]) == ["Champions", "Loyal", "At risk"]
    assert spec["layout"]["yaxis"]["autorange"] == "reversed"
