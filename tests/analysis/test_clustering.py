"""Behavioural clustering: reproducible, recovers obvious groups, names them in both languages."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

from crmkit.analysis.clustering import cluster, cluster_name, silhouettes
from crmkit.core.i18n import Formatter
from crmkit.delivery.charts import segments as charts


def two_groups(n: int = 150, seed: int = 1) -> tuple[pd.DataFrame, pd.Series]:
    """Regulars (recent, frequent, high spend, long-standing) and one-off buyers, far apart."""
    rng = np.random.default_rng(seed)
    regular = pd.DataFrame({
        "recency": rng.integers(1, 15, n), "frequency": rng.integers(30, 60, n),
        "monetary": rng.uniform(3000, 6000, n), "tenure": rng.integers(900, 1200, n)})
    one_off = pd.DataFrame({
        "recency": rng.integers(400, 700, n), "frequency": np.ones(n, dtype=int),
        "monetary": rng.uniform(10, 40, n), "tenure": rng.integers(400, 700, n)})
    frame = pd.concat([regular, one_off], ignore_index=True)
    frame["avg_order"] = frame["monetary"] / frame["frequency"]
    frame.index = pd.Index([f"C{i:04d}" for i in range(2 * n)], name="customer_id")
    truth = pd.Series(["regular"] * n + ["one_off"] * n, index=frame.index)
    return frame, truth


def test_two_obvious_groups_are_found_and_named():
    rfm, truth = two_groups()
    result = cluster(rfm, seed=0)
    assert result.k == 2
    assert result.silhouette["chosen"].sum() == 1
    assert result.silhouette.loc[2, "silhouette"] == result.silhouette["silhouette"].max()
    assert list(result.silhouette.index) == list(range(2, 9))
    # Perfect recovery; cluster_1 is the higher-spending group.
    assert (result.labels[truth == "regular"] == "cluster_1").all()
    assert (result.labels[truth == "one_off"] == "cluster_2").all()
    profiles = result.profiles
    assert profiles["customers"].tolist() == [150, 150]
    assert profiles["share"].tolist() == [0.5, 0.5]
    assert profiles.loc["cluster_1", "name_en"] == "frequent, high spend, recent"
    assert profiles.loc["cluster_1", "name_es"] == "frecuentes, gasto alto, recientes"
    assert profiles.loc["cluster_2", "name_en"] == "infrequent, low spend, not seen for a while"
    assert result.label("cluster_2", "es") == "poco frecuentes, gasto bajo, sin comprar hace tiempo"
    assert result.names("en")["cluster_1"] == "frequent, high spend, recent"
    assert profiles.loc["cluster_1", "frequency"] == pytest.approx(
        rfm.loc[truth == "regular", "frequency"].mean())
    assert result.as_dict()["k"] == 2


def test_same_seed_same_clusters_whatever_the_row_order():
    rng = np.random.default_rng(5)
    n = 400
    rfm = pd.DataFrame({"recency": rng.integers(0, 700, n), "frequency": rng.integers(1, 20, n),
                        "monetary": rng.lognormal(5, 1, n), "tenure": rng.integers(0, 1500, n)},
                       index=pd.Index([f"C{i:04d}" for i in range(n)], name="customer_id"))
    rfm["avg_order"] = rfm["monetary"] / rfm["frequency"]
    first = cluster(rfm, seed=42, sample_size=300)
    again = cluster(rfm, seed=42, sample_size=300)
    shuffled = cluster(rfm.sample(frac=1.0, random_state=3), seed=42, sample_size=300)
    pd.testing.assert_series_equal(first.labels, again.labels)
    pd.testing.assert_frame_equal(first.silhouette, again.silhouette)
    pd.testing.assert_series_equal(first.labels, shuffled.labels.loc[first.labels.index])
    assert first.sample_size == 300


def test_fixed_k_and_range():
    rfm, _ = two_groups(60)
    result = cluster(rfm, k=3, k_range=(2, 4), seed=0)
    assert result.k == 3
    assert list(result.silhouette.index) == [2, 3, 4]
    assert result.silhouette["chosen"].tolist() == [False, True, False]
    assert result.labels.cat.categories.tolist() == ["cluster_1", "cluster_2", "cluster_3"]
    with pytest.raises(ValueError, match="at least 3 customers"):
        cluster(rfm.iloc[:2])
    with pytest.raises(ValueError, match="missing avg_order"):
        cluster(rfm.drop(columns="avg_order"))


def test_silhouettes_match_scikit_learn():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 5))
    X[:200] += 4
    labellings = [KMeans(k, n_init=2, random_state=0).fit(X).labels_ for k in (2, 3, 6)]
    labellings.append(np.r_[np.zeros(599, dtype=int), 1])   # a cluster of one scores 0
    ours = silhouettes(X, labellings, chunk=128)
    theirs = [silhouette_score(X, labels) for labels in labellings]
    assert ours == pytest.approx(theirs, abs=1e-9)


def test_cluster_names_from_centroids():
    typical = {f"z_{f}": 0.1 for f in ("recency", "frequency", "monetary", "avg_order",
                                        "tenure")}
    assert cluster_name(typical, "en") == "close to the average on every measure"
    assert cluster_name(typical, "es") == "cerca de la media en todo"
    # Only the three most marked traits, listed frequency, spend, recency, order, tenure.
    marked = {**typical, "z_tenure": -2.0, "z_avg_order": 1.5, "z_recency": -0.6,
              "z_frequency": 0.9}
    assert cluster_name(marked, "en") == "frequent, large baskets, newly acquired"
    assert cluster_name(marked, "es") == "frecuentes, tickets altos, recién captados"


def test_silhouette_chart_highlights_the_chosen_k():
    rfm, _ = two_groups(60)
    result = cluster(rfm, seed=0)
    fig = charts.silhouette_chart(result.silhouette, Formatter("es", "EUR"),
                                  primary="#111111", accent="#ff0000")
    bar = fig.data[0]
    assert list(bar.x) == [str(k) for k in range(2, 9)]
    assert bar.marker.color[0] == "#ff0000"
    assert "(elegido)" in bar.text[0]
    assert fig.layout.xaxis.title.text == "Número de grupos (k)"
    heat = charts.cluster_profiles(result.profiles, Formatter("en", "EUR"))
    assert heat.data[0].y[0].startswith("frequent, high spend, recent")
