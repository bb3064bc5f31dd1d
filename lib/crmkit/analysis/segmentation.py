"""The segmentation step: from a workspace to one row per customer with segment and value.

Workbook 02 calls :func:`segment_customers` once; it scores RFM, places customers in the segments
of the client's map (or behavioural clusters), fits the BG/NBD and Gamma-Gamma models and
computes each customer's lifetime value. The result's :attr:`Segmentation.table` is the
per-customer table of docs/data-contract.md, saved as ``tables/customers.parquet`` for the later
workbooks and the dashboard.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crmkit.analysis import clustering as clustering_mod
from crmkit.analysis import rfm as rfm_mod
from crmkit.analysis import segment_maps, value
from crmkit.analysis.segment_maps import OTHER
from crmkit.core.i18n import t
from crmkit.inputs.workspace import Workspace
from crmkit.settings.client import ClientConfig

DAYS_PER_MONTH = 365.25 / 12


@dataclass
class Segmentation:
    """Everything workbook 02 shows, and the per-customer table later steps read.

    Attributes
    ----------
    table : DataFrame
        One row per customer of customers.csv, the columns of docs/data-contract.md.
    rfm, scores : DataFrame
        RFM measures and 1-5 scores of the customers who bought.
    assignment : segment_maps.Assignment
        The map's segments (always computed: the R×F grid is shown whatever the method).
    clusters : clustering.Clustering
        The behavioural alternative.
    method : {"map", "clustering"}
        Which of the two gives ``table.segment``.
    names : dict
        Segment key -> name in the report's language, in display order.
    bg : value.BetaGeo
    gg : value.GammaGamma or None
        None when fewer than two customers bought twice (no spend model can be fitted).
    margin_rate : float
        Gross margin over net revenue, all time: applied to expected spend for the CLV.
    independence : float
        Correlation of frequency and average spend among repeat buyers: Gamma-Gamma assumes
        it is near zero.
    """

    table: pd.DataFrame
    rfm: pd.DataFrame
    scores: pd.DataFrame
    assignment: segment_maps.Assignment
    clusters: clustering_mod.Clustering
    method: str
    names: dict[str, str]
    bg: value.BetaGeo
    gg: value.GammaGamma | None
    margin_rate: float
    independence: float

    @property
    def segments(self) -> pd.Series:
        """Segment key per customer (index ``customer_id``), every customer of the file."""
        return self.table.set_index("customer_id")["segment"]

    def named(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` indexed by segment key, in display order, with a ``name`` column first."""
        order = [k for k in self.names if k in frame.index]
        out = frame.loc[order].copy()
        out.insert(0, "name", [self.names[k] for k in order])
        return out

    def models(self, lang: str) -> pd.DataFrame:
        """The fitted value models' parameters and checks, explained, for a table."""
        rows = [(k, v) for k, v in self.bg.params.items()]
        if self.gg is not None:
            rows += list(self.gg.params.items())
        rows += [("penalizer", max(self.bg.penalizer_, getattr(self.gg, "penalizer_", 0.0))),
                 ("independence", self.independence), ("margin_rate", self.margin_rate)]
        return pd.DataFrame([{"key": k, "name": t(f"val_param_{k}", lang), "estimate": v}
                             for k, v in rows])

    def segment_order(self) -> list[str]:
        """Segment keys in display order, only those with customers."""
        present = set(self.table["segment"])
        return [k for k in self.names if k in present]


def _window_sums(transactions: pd.DataFrame, as_of, months: int, margin: np.ndarray
                 ) -> pd.DataFrame:
    end = pd.Timestamp(as_of)
    start = end - pd.DateOffset(months=months)
    in_window = ((transactions["date"] > start) & (transactions["date"] <= end)).to_numpy()
    frame = pd.DataFrame({"customer_id": transactions["customer_id"].to_numpy()[in_window],
                          "revenue_window": transactions["amount"].to_numpy()[in_window],
                          "margin_window": margin[in_window]})
    return frame.groupby("customer_id", sort=False).sum()


#: Penalty used when the maximum-likelihood fit runs to a boundary (see :func:`_fit`).
FALLBACK_PENALIZER = 0.001


def _fit(model, *columns):
    """Fit by maximum likelihood; if the optimum lies on a boundary, with a light penalty.

    Real customer bases often have a dropout process with no heterogeneity (the Beta's a and b
    run to infinity together): the likelihood then has no interior maximum, and lifetimes fails
    the same way. A small L2 penalty, as lifetimes' documentation recommends, gives stable
    parameters with practically the same predictions. ``model.penalizer_`` records which.
    """
    try:
        model.fit(*columns)
        model.penalizer_ = 0.0
    except value.ConvergenceError:
        model.fit(*columns, penalizer_coef=FALLBACK_PENALIZER)
        model.penalizer_ = FALLBACK_PENALIZER
    return model


def customer_value(transactions: pd.DataFrame, as_of, *, margin_rate: float,
                   horizon_months: int, discount_rate: float
                   ) -> tuple[pd.DataFrame, value.BetaGeo, value.GammaGamma | None, float]:
    """Fit BG/NBD and Gamma-Gamma and value every customer who bought.

    Returns
    -------
    frame : DataFrame
        Indexed by customer: ``probability_alive``, ``expected_purchases`` (over the horizon)
        and ``clv`` (margin over the horizon, discounted yearly at ``discount_rate``).
    bg, gg : fitted models (gg None when it cannot be fitted)
    independence : float
        Frequency-value correlation among repeat buyers (NaN without a spend model).
    """
    summary = value.summarise(transactions, observation_period_end=pd.Timestamp(as_of))
    bg = _fit(value.BetaGeo(), summary["frequency"], summary["recency"], summary["T"])
    repeat = value.repeat_customers(summary)
    gg = None
    independence = float("nan")
    if len(repeat) >= 2:
        gg = _fit(value.GammaGamma(), repeat["frequency"], repeat["monetary_value"])
        independence = value.frequency_value_correlation(repeat["frequency"],
                                                         repeat["monetary_value"])
    horizon_days = horizon_months * DAYS_PER_MONTH
    frame = pd.DataFrame(index=summary.index)
    frame["probability_alive"] = np.asarray(
        bg.probability_alive(summary["frequency"], summary["recency"], summary["T"]))
    frame["expected_purchases"] = np.asarray(
        bg.expected_purchases(horizon_days, summary["frequency"], summary["recency"],
                              summary["T"]))
    if gg is not None:
        frame["clv"] = np.asarray(value.customer_lifetime_value(
            bg, gg, summary["frequency"], summary["recency"], summary["T"],
            summary["monetary_value"], time=horizon_months, margin=margin_rate,
            discount_rate=discount_rate, freq="D"))
    else:
        frame["clv"] = np.nan
    return frame, bg, gg, independence


def segment_customers(ws: Workspace, lang: str, config: ClientConfig | None = None
                      ) -> Segmentation:
    """Segment and value every customer of the workspace.

    Parameters
    ----------
    ws : Workspace
    lang : {"en", "es"}
        Language of the segment names in the table.
    config : ClientConfig, optional
        Defaults to the workspace's.
    """
    config = config or ws.config
    settings = config.segmentation
    assumptions = config.assumptions
    tx = ws.transactions[ws.transactions["date"] <= pd.Timestamp(ws.as_of)]

    margin = rfm_mod.line_margin(tx, assumptions.gross_margin)
    rfm = rfm_mod.rfm_table(tx, ws.as_of, frequency=settings.frequency,
                            gross_margin=assumptions.gross_margin)
    scores = rfm_mod.rfm_scores(rfm)
    segment_map = segment_maps.from_settings(settings, workspace=ws.path)
    assignment = segment_maps.assign(scores if segment_map.kind == "scores" else rfm,
                                     segment_map)
    k_range = (settings.k_min, settings.k_max)
    clusters = clustering_mod.cluster(rfm, k=settings.k, k_range=k_range, seed=settings.seed)

    if settings.method == "clustering":
        segment = clusters.labels.astype(str)
        names = {**clusters.names(lang), OTHER: segment_maps.label(segment_map, OTHER, lang)}
    else:
        segment = assignment.segments.astype(str)
        names = segment_maps.names(segment_map, lang)

    revenue = float(tx["amount"].sum())
    margin_rate = float(margin.sum() / revenue) if revenue > 0 else assumptions.gross_margin
    valued, bg, gg, independence = customer_value(
        tx, ws.as_of, margin_rate=margin_rate, horizon_months=assumptions.horizon_months,
        discount_rate=assumptions.discount_rate)

    ids = pd.Index(ws.customers["customer_id"], name="customer_id")
    table = pd.DataFrame(index=ids)
    table["segment"] = segment.reindex(ids).fillna(OTHER)
    table["segment_name"] = table["segment"].map(names)
    table["recency_days"] = rfm["recency"].reindex(ids).astype(float)
    table["frequency"] = rfm["frequency"].reindex(ids).fillna(0).astype(np.int64)
    table["monetary"] = rfm["monetary"].reindex(ids).fillna(0.0)
    windows = _window_sums(tx, ws.as_of, assumptions.window_months, margin)
    table["revenue_window"] = windows["revenue_window"].reindex(ids).fillna(0.0)
    table["margin"] = rfm["margin"].reindex(ids).fillna(0.0)
    table["margin_window"] = windows["margin_window"].reindex(ids).fillna(0.0)
    for column in ("r_score", "f_score", "m_score"):
        table[column] = scores[column].reindex(ids).astype("Int64")
    table["tenure_days"] = rfm["tenure"].reindex(ids).astype(float)
    for column in ("probability_alive", "expected_purchases", "clv"):
        table[column] = valued[column].reindex(ids).fillna(0.0)
    return Segmentation(table=table.reset_index(), rfm=rfm, scores=scores,
                        assignment=assignment, clusters=clusters, method=settings.method,
                        names=names, bg=bg, gg=gg, margin_rate=margin_rate,
                        independence=independence)


def value_by_segment(seg: Segmentation, *, n_boot: int = 1000, seed: int = 0,
                     confidence: float = 0.9) -> pd.DataFrame:
    """Mean and total CLV per segment with bootstrap intervals, in display order.

    Customers who never bought are left out (they have no value model).
    """
    buyers = seg.table[seg.table["frequency"] > 0].set_index("customer_id")
    result = value.segment_value(buyers["clv"], buyers["probability_alive"], buyers["segment"],
                                 n_boot=n_boot, seed=seed, confidence=confidence)
    order = [k for k in seg.segment_order() if k in result.index]
    return seg.named(result.loc[order])


def leading_segment(profiles: pd.DataFrame, names: dict[str, str]) -> dict:
    """The segment that brings the largest share of revenue, for the workbook's prose."""
    rows = profiles.drop(index="all", errors="ignore")
    key = rows["revenue_share"].idxmax()
    return {"key": key, "name": names.get(key, key),
            "customer_share": float(rows.loc[key, "customer_share"]),
            "revenue_share": float(rows.loc[key, "revenue_share"])}


def typology_attribute(customers: pd.DataFrame, configured: str | None = None) -> str | None:
    """The customers.csv attribute to show the typological mix of.

    The one set in ``segmentation.attribute``, else the first text column with 2 to 12 distinct
    values (a region, an age band, a customer type); None when the file has none.
    """
    if configured:
        return configured
    for column in customers.columns:
        if column in ("customer_id", "category_spend"):
            continue
        values = customers[column]
        if values.dtype.kind in "OSUT" or str(values.dtype) in ("string", "str", "category"):
            if 2 <= values.nunique() <= 12:
                return column
    return None


def satisfaction(seg: Segmentation, survey: pd.DataFrame | None) -> pd.DataFrame | None:
    """Satisfaction per segment (see :func:`crmkit.analysis.profiles.satisfaction`); None without
    survey."""
    if survey is None or survey.empty:
        return None
    from crmkit.analysis.profiles import satisfaction as per_segment

    return seg.named(per_segment(survey, seg.segments))


def save_table(seg: Segmentation, path) -> None:
    """Write the per-customer table as parquet for later workbooks (no-op without a run)."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    seg.table.to_parquet(path, index=False)


