"""The segmentation step: one row per customer, segments that recover real customer types."""

import numpy as np
import pandas as pd
import pytest

from crmkit.analysis import segmentation, valuation
from crmkit.demo.synthetic import generate, write_workspace
from crmkit.inputs.workspace import load_workspace

CONTRACT = ["customer_id", "segment", "segment_name", "recency_days", "frequency", "monetary",
            "revenue_window", "margin", "margin_window", "r_score", "f_score", "m_score",
            "tenure_days", "probability_alive", "retention", "expected_purchases", "clv"]


@pytest.fixture(scope="module")
def company(tmp_path_factory):
    client = generate("retail", n_customers=1500, seed=3)
    path = tmp_path_factory.mktemp("ws") / "retail"
    write_workspace(client, path)
    return client, load_workspace(path)


@pytest.fixture(scope="module")
def seg(company):
    return segmentation.segment_customers(company[1], "en")


def test_table_follows_the_contract_one_row_per_customer(company, seg):
    client, ws = company
    table = seg.table
    assert list(table.columns) == CONTRACT
    assert len(table) == len(ws.customers) and table["customer_id"].is_unique
    tx = ws.transactions[ws.transactions["date"] <= pd.Timestamp(ws.as_of)]
    assert table["monetary"].sum() == pytest.approx(tx["amount"].sum())
    assert table["margin"].sum() == pytest.approx(tx["margin"].sum())
    assert table["clv"].ge(0).all() and table["probability_alive"].between(0, 1).all()


def test_segments_recover_the_customer_types(company, seg):
    client, _ = company
    table = seg.table.set_index("customer_id")
    archetype = client.archetype.reindex(table.index)
    loyal = table.loc[archetype == "loyal", "segment"]
    one_off = table.loc[archetype == "one_off", "segment"]
    assert loyal.isin(["champions", "loyal", "potential_loyalists"]).mean() > 0.6
    assert not one_off.isin(["champions", "loyal"]).any()
    # The most valuable type is worth more than one-off buyers, by a wide margin.
    assert (table.loc[archetype == "big_spender", "clv"].mean()
            > 5 * table.loc[archetype == "one_off", "clv"].mean())


def test_value_by_segment_adds_up_and_has_intervals(seg):
    result = segmentation.value_by_segment(seg, n_boot=200, seed=1)
    buyers = seg.table[seg.table["frequency"] > 0]
    assert result["total_clv"].sum() == pytest.approx(buyers["clv"].sum())
    assert result["customers"].sum() == len(buyers)
    assert (result["mean_clv_low"] <= result["mean_clv"]).all()
    assert (result["mean_clv"] <= result["mean_clv_high"]).all()
    assert list(result.index) == [k for k in seg.segment_order() if k in result.index]


def test_clustering_method_names_segments_in_plain_language(company):
    _, ws = company
    config = ws.config.model_copy(update={
        "segmentation": ws.config.segmentation.model_copy(update={"method": "clustering"})})
    seg = segmentation.segment_customers(ws, "es", config)
    assert seg.table["segment"].str.startswith("cluster_").all() or (
        seg.table.loc[seg.table["frequency"] == 0, "segment"] == "other").all()
    assert seg.table["segment_name"].notna().all()
    assert seg.clusters.k == seg.table.loc[seg.table["frequency"] > 0, "segment"].nunique()


def test_a_degenerate_dropout_process_is_fitted_with_a_light_penalty():
    rng = np.random.default_rng(0)
    n = 400
    # Everyone buys every 30 days and nobody ever drops out: a and b run to infinity.
    frequency = rng.integers(1, 20, n)
    T = np.full(n, 700.0)
    recency = np.minimum(frequency * 30.0, 690.0)
    bg = valuation.fit_with_fallback(segmentation.value.BetaGeo(), frequency, recency, T)
    assert bg.penalizer_ in (0.0, valuation.FALLBACK_PENALIZER)
    assert np.isfinite(bg.params).all()


def test_saved_table_orders_segments_as_the_map(seg, tmp_path):
    """The parquet later workbooks read carries the map's order, not the customers' order."""
    from crmkit.relationships.inventory import segment_order

    path = tmp_path / "tables" / "customers.parquet"
    segmentation.save_table(seg, path)
    saved = pd.read_parquet(path)
    assert isinstance(saved["segment"].dtype, pd.CategoricalDtype)
    assert list(saved["segment"].cat.categories) == list(seg.names)  # every key, map's order
    # the rows and the keys are unchanged: only the dtype carries the order
    assert saved["segment"].astype(str).tolist() == seg.table["segment"].astype(str).tolist()
    assert saved.drop(columns="segment").equals(seg.table.drop(columns="segment"))
    present = set(seg.table["segment"])
    assert segment_order(saved) == [k for k in seg.names if k in present]


def test_keys_the_map_does_not_list_are_kept_at_the_end():
    table = pd.DataFrame({"segment": ["b", "stray", "a", None, "b"]})
    out = segmentation.ordered_segments(table, {"a": "A", "b": "B", "c": "C"})
    assert list(out["segment"].cat.categories) == ["a", "b", "c", "stray"]
    assert out["segment"].tolist()[:3] == ["b", "stray", "a"]
    assert out["segment"].isna().tolist() == [False, False, False, True, False]
    assert not isinstance(table["segment"].dtype, pd.CategoricalDtype)  # the input is unchanged
