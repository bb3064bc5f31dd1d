"""Behavioural clustering: let the data propose the customer types, and name them in plain words.

A segment map (:mod:`crmkit.analysis.segment_maps`) imposes types decided in advance; clustering
finds
the groups the customers actually form on five behaviours: recency, frequency, monetary value,
average order and tenure. It is k-means (scikit-learn) on features made comparable:

- ``log1p``, because spend and frequency are heavily skewed (a few customers spend a hundred
  times the median) and k-means on raw values would only separate those few from the rest;
  negative values (net returns) are clipped to zero first;
- ``StandardScaler``, so that days and currency weigh the same.

The number of clusters ``k`` is chosen among 2..8 by the silhouette score (how much closer each
customer is to their own cluster than to the next one), computed on a fixed-seed sample of at
most 10,000 customers so that it takes seconds on any base; the table of scores per ``k`` is
returned to be shown as the justification of the choice. The k-means runs themselves (``n_init``
restarts for each ``k``) are done on that sample too; on a larger base the chosen one's centroids
are then refined by k-means on every customer, which converges in a few passes, so a base of a
million customers costs little more than one of ten thousand. Everything is seeded and ``n_init``
is fixed, so the same data gives the same clusters on every run.

Each cluster is named from its centroid against the population: a feature half a standard
deviation (of the scaled feature) or more above or below the mean becomes a word, e.g.
"frequent, high spend, recent" / "frecuentes, gasto alto, recientes".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from crmkit.core.i18n import LANGUAGES, t

#: Features clustered on, columns of :func:`crmkit.analysis.rfm.rfm_table`.
FEATURES = ("recency", "frequency", "monetary", "avg_order", "tenure")
#: Order in which traits are listed in a cluster's name.
TRAIT_ORDER = ("frequency", "monetary", "recency", "avg_order", "tenure")
#: A centroid this many standard deviations from the mean makes a trait.
TRAIT_THRESHOLD = 0.5
#: At most this many traits in a name, the most marked ones.
MAX_TRAITS = 3
SAMPLE_SIZE = 10_000
N_INIT = 10


@dataclass
class Clustering:
    """The result of :func:`cluster`.

    Attributes
    ----------
    labels : Series
        Cluster key per customer (``cluster_1`` …), categorical; clusters are numbered by
        decreasing mean spend, so ``cluster_1`` is always the most valuable.
    k : int
        The number of clusters used.
    silhouette : DataFrame
        One row per ``k`` tried: ``silhouette`` (higher is better), ``inertia`` (within-cluster
        sum of squares, on the sample) and ``chosen``.
    profiles : DataFrame
        One row per cluster: ``customers``, ``share``, ``name_en``, ``name_es``, the mean of each
        feature in its own unit, and ``z_<feature>``, the centroid in standard deviations from
        the population mean (the basis of the name).
    seed : int
    sample_size : int
        Customers in the sample the silhouette was computed on.
    """

    labels: pd.Series
    k: int
    silhouette: pd.DataFrame
    profiles: pd.DataFrame
    seed: int
    sample_size: int

    def names(self, lang: str) -> dict[str, str]:
        """``cluster key -> plain-language name`` in ``lang``."""
        return self.profiles[f"name_{lang}"].to_dict()

    def label(self, key: str, lang: str) -> str:
        return self.profiles.loc[key, f"name_{lang}"]

    def as_dict(self) -> dict:
        return {"k": self.k, "seed": self.seed, "sample_size": self.sample_size,
                "silhouette": {int(k): float(s) for k, s in self.silhouette["silhouette"].items()},
                "clusters": {key: {"customers": int(row.customers), "share": float(row.share),
                                   "name_en": row.name_en, "name_es": row.name_es}
                             for key, row in self.profiles.iterrows()}}


def scaled_features(rfm: pd.DataFrame) -> tuple[np.ndarray, StandardScaler]:
    """The clustering features: ``log1p`` of each (negatives clipped to 0), standardised."""
    missing = [f for f in FEATURES if f not in rfm.columns]
    if missing:
        raise ValueError("clustering needs the RFM table of crmkit.analysis.rfm.rfm_table; "
                         f"missing "
                         f"{', '.join(missing)}")
    raw = rfm.loc[:, list(FEATURES)].to_numpy(dtype=np.float64)
    scaler = StandardScaler()
    return scaler.fit_transform(np.log1p(np.clip(raw, 0, None))), scaler


def cluster(rfm: pd.DataFrame, *, k: int | None = None, k_range: tuple[int, int] = (2, 8),
            seed: int = 0, sample_size: int = SAMPLE_SIZE, n_init: int = N_INIT) -> Clustering:
    """Cluster customers by behaviour with k-means and name the clusters.

    Parameters
    ----------
    rfm : DataFrame
        :func:`crmkit.analysis.rfm.rfm_table` (columns recency, frequency, monetary, avg_order,
        tenure).
    k : int, optional
        Use this number of clusters; the silhouette table is still computed for reference.
        By default the ``k`` with the best silhouette in ``k_range`` (the smaller on a tie).
    k_range : (int, int)
        Smallest and largest ``k`` tried, both included.
    seed : int
        Seeds the sample, the k-means initialisations and so the whole result.
    sample_size : int
        The k-means restarts and the silhouette (quadratic in the number of customers) are
        computed on a random sample of at most this many customers; when there are more, the
        chosen clustering's centroids are refined by k-means on all of them.
    n_init : int
        k-means restarts per ``k`` on the sample; the best one is kept.

    Returns
    -------
    Clustering

    Notes
    -----
    Rows are sorted by customer id first, so the result does not depend on the order of the
    input rows either. Everything runs on one thread: k-means' OpenMP threads and the BLAS
    threads, which wait for each other at every pass, made it up to thirty times slower on a
    machine whose cores were busy with other work; on one thread it takes a second or two for
    any base.
    """
    rfm = rfm.sort_index()
    n = len(rfm)
    if n < 3:
        raise ValueError(f"clustering needs at least 3 customers; found {n}")
    X, _ = scaled_features(rfm)
    rng = np.random.default_rng(seed)
    size = min(n, sample_size)
    sample = np.sort(rng.choice(n, size=size, replace=False)) if size < n else np.arange(n)
    Xs = X[sample]
    distinct = len(np.unique(Xs, axis=0))
    low, high = k_range
    ks = [c for c in range(max(2, low), high + 1) if c < distinct]
    if k is not None and k not in ks and k >= distinct:
        raise ValueError(f"k={k} clusters but only {distinct} distinct customers in the sample")
    with threadpool_limits(limits=1):
        models = {c: KMeans(n_clusters=c, n_init=n_init, random_state=seed).fit(Xs) for c in ks}
        scores = silhouettes(Xs, [m.labels_ for m in models.values()])
    table = pd.DataFrame({"k": ks, "silhouette": scores,
                          "inertia": [float(m.inertia_) for m in models.values()]},
                         columns=["k", "silhouette", "inertia"]).set_index("k")
    if k is None:
        if table.empty:
            raise ValueError("no k in k_range can be tried: too few distinct customers")
        # idxmax returns the first maximum: the smaller k wins a tie.
        k = int(table["silhouette"].idxmax())
    table["chosen"] = table.index == k
    # The silhouettes are scored on the sample: the chart of them says on how many customers.
    table.attrs.update(sample_size=size, customers=n)

    with threadpool_limits(limits=1):
        model = models[k] if k in models else KMeans(n_clusters=k, n_init=n_init,
                                                     random_state=seed).fit(Xs)
        if size < n:
            # The sample's best centroids are an excellent start: a few passes over every
            # customer settle them (measured: the same inertia as ten restarts on all of them,
            # within 0.5 %, in a twentieth of the time).
            model = KMeans(n_clusters=k, init=model.cluster_centers_, n_init=1,
                           random_state=seed).fit(X)
    raw_labels = model.labels_
    # Number clusters by decreasing mean spend: cluster_1 is the most valuable on every run.
    spend = rfm["monetary"].to_numpy(dtype=np.float64)
    means = np.bincount(raw_labels, weights=spend, minlength=k) / np.bincount(raw_labels,
                                                                             minlength=k)
    order = np.argsort(-means, kind="stable")
    rank = np.empty(k, dtype=np.int64)
    rank[order] = np.arange(k)
    keys = [f"cluster_{i + 1}" for i in range(k)]
    labels = pd.Series(pd.Categorical.from_codes(rank[raw_labels], categories=keys),
                       index=rfm.index, name="segment")
    profiles = _profiles(rfm, X, rank[raw_labels], keys)
    return Clustering(labels=labels, k=k, silhouette=table, profiles=profiles, seed=seed,
                      sample_size=size)


def silhouettes(X: np.ndarray, labellings: list[np.ndarray], chunk: int = 1024) -> list[float]:
    """Mean silhouette of several labellings of the same points, sharing one distance pass.

    Same definition as :func:`sklearn.metrics.silhouette_score` (Euclidean; a point alone in
    its cluster scores 0), but the pairwise distances, which are most of the cost, are
    computed once for all the ``k`` tried instead of once per ``k``, block by block of
    ``chunk`` points, and each block pair only once (the matrix is symmetric): on 10,000
    customers and seven values of ``k`` this takes half a second instead of ten.
    """
    n = len(X)
    if not labellings:
        return []
    # One block of indicator columns per labelling: distances @ indicators = the sum of the
    # distances from each point to every cluster of every labelling, in one product.
    blocks, offsets = [], [0]
    for labels in labellings:
        k = int(labels.max()) + 1
        blocks.append(np.eye(k)[labels])
        offsets.append(offsets[-1] + k)
    indicators = np.hstack(blocks)
    sizes = indicators.sum(axis=0)
    totals = np.zeros((n, indicators.shape[1]))
    X = np.asarray(X, dtype=np.float64)
    norms = np.einsum("ij,ij->i", X, X)
    starts = range(0, n, chunk)
    for i in starts:
        for j in starts[i // chunk:]:
            # |x - y| = sqrt(|x|^2 + |y|^2 - 2 x.y), as scikit-learn computes it, in place.
            d = X[i:i + chunk] @ X[j:j + chunk].T
            d *= -2.0
            d += norms[i:i + chunk, None]
            d += norms[None, j:j + chunk]
            np.maximum(d, 0.0, out=d)
            np.sqrt(d, out=d)
            if i == j:
                np.fill_diagonal(d, 0.0)
            totals[i:i + chunk] += d @ indicators[j:j + chunk]
            if j != i:
                totals[j:j + chunk] += d.T @ indicators[i:i + chunk]
    scores = []
    rows = np.arange(n)
    for j, labels in enumerate(labellings):
        sums = totals[:, offsets[j]:offsets[j + 1]]
        size = sizes[offsets[j]:offsets[j + 1]]
        own = size[labels]
        a = sums[rows, labels] / np.maximum(own - 1, 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(size > 0, sums / np.maximum(size, 1), np.inf)
            means[rows, labels] = np.inf
            b = means.min(axis=1)
            s = np.where(own > 1, (b - a) / np.maximum(a, b), 0.0)
        scores.append(float(np.nan_to_num(s).mean()))
    return scores


def _profiles(rfm: pd.DataFrame, X: np.ndarray, codes: np.ndarray, keys: list[str]
              ) -> pd.DataFrame:
    k = len(keys)
    counts = np.bincount(codes, minlength=k)
    frame = pd.DataFrame({"customers": counts, "share": counts / counts.sum()},
                         index=pd.Index(keys, name="segment"))
    for j, feature in enumerate(FEATURES):
        values = rfm[feature].to_numpy(dtype=np.float64)
        frame[feature] = np.bincount(codes, weights=values, minlength=k) / counts
        # X is standardised: the centroid's mean is already in standard deviations.
        frame[f"z_{feature}"] = np.bincount(codes, weights=X[:, j], minlength=k) / counts
    for lang in LANGUAGES:
        frame[f"name_{lang}"] = [cluster_name(row, lang) for _, row in frame.iterrows()]
        duplicated = frame[f"name_{lang}"].duplicated(keep=False)
        frame.loc[duplicated, f"name_{lang}"] = [
            f"{name} ({t('seg_cluster_group', lang, n=key.split('_')[1])})"
            for key, name in frame.loc[duplicated, f"name_{lang}"].items()]
    return frame


def cluster_name(centroid: pd.Series | dict, lang: str,
                 threshold: float = TRAIT_THRESHOLD) -> str:
    """Name a cluster from its centroid in standard deviations (``z_<feature>``).

    The (at most three) most marked features beyond ``threshold`` become words, listed in the
    order frequency, spend, recency, order size, tenure. Recency is days since the last
    purchase, so a low value reads "recent".
    """
    z = {f: float(centroid[f"z_{f}"]) for f in FEATURES}
    marked = sorted((f for f in FEATURES if abs(z[f]) >= threshold), key=lambda f: -abs(z[f]))
    chosen = set(marked[:MAX_TRAITS])
    words = [t(f"seg_trait_{f}_{'high' if z[f] > 0 else 'low'}", lang)
             for f in TRAIT_ORDER if f in chosen]
    return ", ".join(words) if words else t("seg_trait_typical", lang)
