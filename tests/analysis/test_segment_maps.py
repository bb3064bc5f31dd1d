"""Segment maps: the bundled maps are partitions, broken maps name their cells, assignment."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import write_workspace

from crmkit.analysis import segment_maps as sm
from crmkit.core.i18n import Formatter
from crmkit.core.problems import WorkspaceError
from crmkit.delivery.charts import segments as charts
from crmkit.settings.client import ClientConfig, SegmentationSettings, load_config

TEN = {"champions": 2, "loyal": 4, "potential_loyalists": 4, "new_customers": 1, "promising": 1,
       "need_attention": 1, "about_to_sleep": 2, "at_risk": 4, "cant_lose": 2,
       "hibernating": 4}


def raw(name: str) -> dict:
    return yaml.safe_load((sm.MAPS_DIR / f"{name}.yaml").read_text(encoding="utf-8"))


def scores(pairs) -> pd.DataFrame:
    r, f = zip(*pairs, strict=True)
    return pd.DataFrame({"r_score": r, "f_score": f, "m_score": 3},
                        index=pd.Index([f"C{i}" for i in range(len(r))], name="customer_id"))


def test_bundled_maps_are_listed_and_load():
    assert {"rfm_ten", "managerial"} <= set(sm.bundled_maps())
    for name in sm.bundled_maps():
        segment_map = sm.load_map(name)
        assert segment_map.key == name
        for segment in segment_map.segments:
            for lang in ("en", "es"):
                assert segment.name[lang] and segment.description[lang]


def test_ten_segment_map_covers_the_25_cells_exactly_once():
    ten = sm.load_map("rfm_ten")
    assert ten.kind == "scores" and ten.scale == 5
    assert ten.lookup.shape == (5, 5)
    assert (ten.lookup >= 0).all()
    cells = {key: int((ten.lookup == i).sum()) for i, key in enumerate(ten.keys)}
    assert cells == TEN
    assert sum(cells.values()) == 25

    def at(r, f):
        return ten.keys[ten.lookup[r - 1, f - 1]]

    assert at(5, 5) == at(5, 4) == "champions"
    assert at(4, 4) == at(3, 5) == "loyal"
    assert at(5, 1) == "new_customers"
    assert at(4, 1) == "promising"
    assert at(3, 3) == "need_attention"
    assert at(3, 2) == "about_to_sleep"
    assert at(2, 4) == at(1, 3) == "at_risk"
    assert at(1, 5) == "cant_lose"
    assert at(1, 1) == at(2, 2) == "hibernating"
    assert at(4, 2) == at(5, 3) == "potential_loyalists"


def test_an_overlap_names_the_cell_and_both_segments():
    data = raw("rfm_ten")
    for segment in data["segments"]:
        if segment["key"] == "need_attention":
            segment["rule"] = {"r": [2, 3], "f": [3, 3]}
    with pytest.raises(ValueError) as info:
        sm.parse_map(data)
    assert "R=2,F=3 is claimed by 'at_risk' and 'need_attention'" in str(info.value)


def test_a_gap_names_every_uncovered_cell():
    data = raw("rfm_ten")
    for segment in data["segments"]:
        if segment["key"] == "champions":
            segment["rule"] = {"r": 5, "f": 5}
        if segment["key"] == "hibernating":
            segment["rule"] = {"r": [1, 2], "f": [1, 1]}
    with pytest.raises(ValueError) as info:
        sm.parse_map(data)
    message = str(info.value)
    assert "R=1,F=2; R=2,F=2; R=5,F=4 are claimed by no segment" in message


def test_other_map_mistakes_are_all_reported():
    data = raw("rfm_ten")
    data["segments"][0]["name"] = {"en": "Champions"}
    data["segments"][1]["rule"] = {"r": [4, 6], "f": [4, 5]}
    data["segments"].append(copy.deepcopy(data["segments"][2]))
    data["segments"].append({"key": "other", "name": {"en": "x", "es": "x"},
                             "description": {"en": "x", "es": "x"}, "rule": {"r": 1}})
    with pytest.raises(ValueError) as info:
        sm.parse_map(data)
    message = str(info.value)
    assert "segment 'champions' 'name' has no 'es' text" in message
    assert "segment 'loyal': r must be a score range [low, high] within 1-5; found [4, 6]" \
        in message
    assert "segment 'potential_loyalists': the key is used by two segments" in message
    assert "the key 'other' is reserved" in message


def test_a_custom_map_in_a_workspace_raises_a_workspace_error(tmp_path):
    workspace = write_workspace(tmp_path)
    data = raw("rfm_ten")
    for segment in data["segments"]:
        if segment["key"] == "need_attention":
            segment["rule"] = {"r": [2, 3], "f": [3, 3]}
    (workspace / "maps").mkdir()
    (workspace / "maps" / "ours.yaml").write_text(yaml.safe_dump(data, allow_unicode=True),
                                                  encoding="utf-8")
    with pytest.raises(WorkspaceError) as info:
        sm.load_map("maps/ours.yaml", workspace=workspace)
    problems = list(info.value.problems)
    assert problems[0].file == "maps/ours.yaml"
    assert problems[0].kind == "invalid_segment_map"
    assert "R=2,F=3 is claimed by 'at_risk' and 'need_attention'" in problems[0].message

    (workspace / "maps" / "broken.yaml").write_bytes("key: [ours\nname: Año".encode("latin-1"))
    with pytest.raises(WorkspaceError) as info:
        sm.load_map("maps/broken.yaml", workspace=workspace)
    assert list(info.value.problems)[0].kind == "invalid_yaml"
    with pytest.raises(WorkspaceError, match="segment map not found"):
        sm.load_map("maps/missing.yaml", workspace=workspace)
    with pytest.raises(WorkspaceError, match="'segmentation.map'.*rfm_tne"):
        sm.load_map("rfm_tne", workspace=workspace)
    with pytest.raises(ValueError, match="not a bundled map"):
        sm.load_map("rfm_tne")


def test_a_valid_custom_map_is_chosen_in_client_yaml(tmp_path):
    data = raw("rfm_ten")
    data["key"] = "ours"
    workspace = write_workspace(
        tmp_path, config_overrides={"segmentation": {"map": "maps/ours.yaml", "seed": 7}})
    (workspace / "maps").mkdir()
    (workspace / "maps" / "ours.yaml").write_text(yaml.safe_dump(data, allow_unicode=True),
                                                  encoding="utf-8")
    config = load_config(workspace)
    assert config.segmentation.map == "maps/ours.yaml"
    assert config.segmentation.method == "map" and config.segmentation.seed == 7
    assert sm.from_settings(config.segmentation, workspace).key == "ours"


def test_segmentation_settings_defaults_and_validation(tmp_path):
    settings = SegmentationSettings()
    assert (settings.method, settings.map, settings.frequency) == ("map", "rfm_ten", "days")
    assert (settings.k, settings.k_min, settings.k_max) == (None, 2, 8)
    config = ClientConfig.model_validate({**yaml.safe_load(
        (write_workspace(tmp_path) / "client.yaml").read_text()), "segmentation":
        {"method": "clustering", "map": "managerial"}})
    assert config.segmentation.method == "clustering"
    workspace = write_workspace(tmp_path, slug="bad", config_overrides={
        "segmentation": {"method": "kmeans", "map": "our map", "k_min": 6, "k_max": 3}})
    with pytest.raises(WorkspaceError) as info:
        load_config(workspace)
    text = str(info.value)
    assert "segmentation.method" in text and "segmentation.map" in text


def test_assign_scores_to_the_ten_segments():
    ten = sm.load_map("rfm_ten")
    result = sm.assign(scores([(5, 5), (5, 1), (3, 3), (1, 5), (1, 1), (4, 2)]), ten)
    assert result.segments.tolist() == ["champions", "new_customers", "need_attention",
                                        "cant_lose", "hibernating", "potential_loyalists"]
    assert result.other_count == 0 and result.other_share == 0.0
    assert list(result.segments.cat.categories) == [*TEN, "other"]
    assert result.counts()["champions"] == 1
    assert "other" not in result.counts().index


def test_unmatched_scores_go_to_other_and_are_counted():
    frame = scores([(5, 5), (6, 1), (0, 3), (3, 3)])
    frame.loc["C3", "f_score"] = np.nan
    result = sm.assign(frame, "rfm_ten")
    assert result.segments.tolist() == ["champions", "other", "other", "other"]
    assert result.other_count == 3 and result.other_share == pytest.approx(0.75)
    assert result.counts()["other"] == 3


def test_assign_scores_an_rfm_table_itself():
    rfm = pd.DataFrame({"recency": [1, 2, 3, 400, 500], "frequency": [9, 8, 1, 9, 1],
                        "monetary": [5.0, 5.0, 5.0, 5.0, 5.0]},
                       index=pd.Index(list("abcde"), name="customer_id"))
    # R: 5 4 3 2 1; F (ties kept): 9,9 -> 1 + 5·3//5 = 4, 8 -> 3, 1,1 -> 1
    result = sm.assign(rfm, "rfm_ten")
    assert result.segments.tolist() == ["champions", "potential_loyalists", "about_to_sleep",
                                        "at_risk", "hibernating"]
    with pytest.raises(ValueError, match="r_score"):
        sm.assign(rfm[["recency"]], "rfm_ten")


def managerial_table() -> pd.DataFrame:
    return pd.DataFrame({
        #           new act.  act.hi  act.lo  warm hi warm lo  cold   inactive  boundary 180
        "recency": [10,       20,     30,     200,    300,     500,   900,      180],
        "tenure": [100,       900,    800,    700,    600,     900,   1000,     181],
        "avg_order": [10.0,   80.0,   20.0,   90.0,   5.0,     70.0,  60.0,     50.0],
        "monetary": [10.0,    800.0,  200.0,  900.0,  5.0,     70.0,  60.0,     50.0],
    }, index=pd.Index([f"M{i}" for i in range(8)], name="customer_id"))


def test_managerial_segments_by_days_value_and_newness():
    managerial = sm.load_map("managerial")
    assert managerial.kind == "managerial"
    assert managerial.bands == [("active", 180), ("warm", 365), ("cold", 730),
                                ("inactive", None)]
    assert (managerial.lookup >= 0).all()
    result = sm.assign(managerial_table(), managerial)
    # Median avg_order of the eight customers: (50 + 60) / 2 = 55.
    assert result.details == {"value_measure": "avg_order", "value_threshold": 55.0}
    assert result.segments.tolist() == ["new_active", "active_high_value", "active_low_value",
                                        "warm_high_value", "warm_low_value", "cold",
                                        "inactive", "active_low_value"]


def test_managerial_fixed_amount_and_validation():
    data = raw("managerial")
    data["value"] = {"measure": "monetary", "amount": 100}
    result = sm.assign(managerial_table(), sm.parse_map(data))
    assert result.details["value_threshold"] == 100.0
    assert result.segments["M2"] == "active_high_value"   # 200 >= 100
    data["value"] = {"measure": "monetary", "amount": 100, "quantile": 0.5}
    data["recency_bands"][1]["max_days"] = 100            # not above the previous band's 180
    data["segments"] = [s for s in data["segments"] if s["key"] != "cold"]
    with pytest.raises(ValueError) as info:
        sm.parse_map(data)
    message = str(info.value)
    assert "'value' must be" in message and "recency band 'warm' needs max_days" in message
    data = raw("managerial")
    data["segments"] = [s for s in data["segments"] if s["key"] != "cold"]
    with pytest.raises(ValueError, match="status=cold,new=yes,value=high; "):
        sm.parse_map(data)
    with pytest.raises(ValueError, match="missing recency"):
        sm.assign(pd.DataFrame({"tenure": [1], "avg_order": [2.0]}), "managerial")


def test_labels_in_both_languages():
    ten = sm.load_map("rfm_ten")
    assert sm.label(ten, "champions", "en") == "Champions"
    assert sm.label("rfm_ten", "champions", "es") == "Campeones"
    assert sm.label(ten, "cant_lose", "es") == "No podemos perderlos"
    assert sm.label(ten, "other", "es") == "Otros"
    assert sm.label("managerial", "warm_high_value", "es") == "Templados de alto valor"
    assert sm.names(ten, "en")["hibernating"] == "Hibernating"
    with pytest.raises(KeyError, match="no segment 'vip'"):
        sm.label(ten, "vip", "en")
    with pytest.raises(ValueError, match="language 'fr'"):
        sm.label(ten, "champions", "fr")


def test_describe_gives_rules_in_words():
    ten = sm.describe("rfm_ten", "en").set_index("key")
    assert ten.loc["champions", "rule"] == "R 5 · F 4-5"
    assert ten.loc["hibernating", "rule"] == "R 1-2 · F 1-2"
    managerial = sm.describe("managerial", "es").set_index("key")
    assert managerial.loc["cold", "rule"] == "fríos (última compra hace entre 366 y 730 días)"
    assert "primera compra reciente" in managerial.loc["new_active", "rule"]
    en = sm.describe("managerial", "en").set_index("key")
    assert en.loc["inactive", "rule"] == "inactive (last purchase more than 730 days ago)"


def test_rfm_heatmap_labels_cells_with_segment_names():
    ten = sm.load_map("rfm_ten")
    frame = scores([(5, 5), (5, 4), (1, 1)])
    fig = charts.rfm_heatmap(frame, ten, Formatter("es", "EUR"), primary="#112233")
    heat = fig.data[0]
    assert np.asarray(heat.z).sum() == 3
    assert heat.text[0][4] == "Campeones<br>1"      # row R=5, column F=5
    assert heat.text[4][0] == "Hibernando<br>1"
    assert fig.layout.xaxis.title.text.startswith("Puntuación de frecuencia")
