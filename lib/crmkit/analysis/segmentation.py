"""The segmentation step: from a workspace to one row per customer with segment and value.

Workbook 02 calls :func:`segment_customers` once; it scores RFM, places customers in the segments
of the client's map (or behavioural clusters), chooses and fits the customer-base model on a
holdout (:mod:`crmkit.analysis.valuation`) and computes each customer's lifetime value. The
result's :attr:`Segmentation.table` is the per-customer table of docs/data-contract.md, saved as
``tables/customers.parquet`` for the later workbooks and the dashboard.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crmkit.analysis import clustering as clustering_mod
from crmkit.analysis import retention, segment_maps, valuation, value
from crmkit.analysis import rfm as rfm_mod
from crmkit.analysis.segment_maps import OTHER
from crmkit.core.i18n import catalogue, t
from crmkit.inputs import occasions
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
    method : {"map", "clustering", "contractual"}
        Which gives ``table.segment``: the map, the clusters, or (``business_model:
        contractual``) tenure, value and churn signal (:mod:`crmkit.analysis.contractual`).
    names : dict
        Segment key -> name in the report's language, in display order.
    valuation : valuation.Valuation
        The customer-base model chosen on the holdout (or the historical fallback), its
        comparison and guards, and every customer's P(alive), retention and CLV.
    margin_rate : float
        Gross margin over net revenue, all time: applied to expected spend for the CLV.
    contract_fits : DataFrame or None
        A contractual client's retention fits per start-year cohort (see
        :func:`crmkit.analysis.valuation.value_contracts`); None otherwise.
    """

    table: pd.DataFrame
    rfm: pd.DataFrame
    scores: pd.DataFrame
    assignment: segment_maps.Assignment
    clusters: clustering_mod.Clustering
    method: str
    names: dict[str, str]
    valuation: valuation.Valuation
    margin_rate: float
    contract_fits: pd.DataFrame | None = None

    @property
    def independence(self) -> float:
        """Frequency-spend correlation of repeat buyers: Gamma-Gamma assumes it near zero."""
        return self.valuation.independence

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
        v = self.valuation
        prefix = "sbg_" if v.model == valuation.CONTRACTUAL else ""
        rows = ([(prefix + k, x) for k, x in v.purchases.params.items()]
                if v.purchases is not None else [])
        if v.spend is not None:
            rows += list(v.spend.params.items())
            rows += [("independence", self.independence)]
        rows += [("margin_rate", self.margin_rate)]
        return pd.DataFrame([{"key": k, "name": t(f"val_param_{k}", lang), "estimate": v}
                             for k, v in rows])

    def model_check(self, lang: str) -> pd.DataFrame:
        """The candidate models compared on the holdout, with what became of each, for a table.

        Empty when there was no holdout (history too short, or nobody bought twice).
        """
        v = self.valuation
        if v.comparison is None:
            return pd.DataFrame(columns=["name", "predicted", "actual", "mae", "verdict"])
        rows = []
        for c in v.comparison.candidates:
            if c.model == v.model:
                verdict = t("val_candidate_chosen", lang)
            elif c.model in v.passed_over:
                verdict = t("val_candidate_unsound", lang,
                            reasons=self.reasons(v.passed_over[c.model], lang))
            else:
                verdict = t("val_candidate_sound", lang)
            rows.append({"name": t(f"val_model_{c.model}", lang), "predicted": c.predicted,
                         "actual": c.actual, "mae": c.mae, "verdict": verdict})
        return pd.DataFrame(rows)

    @staticmethod
    def reasons(keys, lang: str) -> str:
        """Diagnostic keys in words, joined (a key with no words of its own gets the generic
        "its fit cannot be trusted", so a new diagnostic never breaks a report)."""
        known = catalogue()
        return "; ".join(t(f"val_issue_{k}" if f"val_issue_{k}" in known else "val_issue_other",
                           lang) for k in keys)

    def value_model(self, lang: str, lapse_days: int) -> dict:
        """``results.json`` ``segments.value_model``, with the words the prose needs."""
        v = self.valuation
        out = v.as_dict()
        out["name"] = t(f"val_model_{v.model}", lang)
        out["passed_over_text"] = [
            {"name": t(f"val_model_{k}", lang), "reasons": self.reasons(r, lang)}
            for k, r in v.passed_over.items() if k != v.model and not v.fallback]
        out["fallback_text"] = None
        out["contract_fits"] = (self.contract_fits.to_dict("records")
                                if self.contract_fits is not None else [])
        if v.fallback:
            reasons = "; ".join(f"{t(f'val_model_{k}', lang)}: {self.reasons(r, lang)}"
                                for k, r in v.passed_over.items())
            out["fallback_text"] = t(f"val_fallback_{v.fallback}", lang, days=lapse_days,
                                     reasons=reasons)
        return out

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
    tx = occasions.up_to(ws.transactions, pd.Timestamp(ws.as_of))

    # the RFM table, the value models' summary and the holdout's tracking group the same log
    with occasions.shared(tx):
        return _segment(ws, lang, config, tx)


def _segment(ws: Workspace, lang: str, config: ClientConfig, tx: pd.DataFrame) -> Segmentation:
    settings = config.segmentation
    assumptions = config.assumptions
    margin = rfm_mod.line_margin(tx, assumptions.gross_margin)
    rfm = rfm_mod.rfm_table(tx, ws.as_of, frequency=settings.frequency,
                            gross_margin=assumptions.gross_margin)
    scores = rfm_mod.rfm_scores(rfm)
    segment_map = segment_maps.from_settings(settings, workspace=ws.path)
    assignment = segment_maps.assign(scores if segment_map.kind == "scores" else rfm,
                                     segment_map)
    k_range = (settings.k_min, settings.k_max)
    clusters = clustering_mod.cluster(rfm, k=settings.k, k_range=k_range, seed=settings.seed)

    contract_fits = None
    if config.business_model == "contractual":
        valued, segment, names, contract_fits = valuation.value_contracts(
            ws.customers, tx, ws.as_of, gross_margin=assumptions.gross_margin,
            discount_rate=assumptions.discount_rate, horizon_months=assumptions.horizon_months,
            lang=lang)
        names = {**names, OTHER: segment_maps.label(segment_map, OTHER, lang)}
    elif settings.method == "clustering":
        segment = clusters.labels.astype(str)
        names = {**clusters.names(lang), OTHER: segment_maps.label(segment_map, OTHER, lang)}
    else:
        segment = assignment.segments.astype(str)
        names = segment_maps.names(segment_map, lang)

    revenue = float(tx["amount"].sum())
    margin_rate = float(margin.sum() / revenue) if revenue > 0 else assumptions.gross_margin
    if contract_fits is None:
        valued = valuation.value_customers(
            tx, ws.as_of, margin_rate=margin_rate, horizon_months=assumptions.horizon_months,
            discount_rate=assumptions.discount_rate, lapse_days=assumptions.lapse_days,
            model=config.value.model, holdout_months=config.value.holdout_months)

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
    for column in ("probability_alive", "retention", "expected_purchases", "clv"):
        table[column] = valued.frame[column].reindex(ids).fillna(0.0)
    return Segmentation(table=table.reset_index(), rfm=rfm, scores=scores,
                        assignment=assignment, clusters=clusters,
                        method="contractual" if contract_fits is not None else settings.method,
                        names=names, valuation=valued, margin_rate=margin_rate,
                        contract_fits=contract_fits)


def value_by_segment(seg: Segmentation, *, n_boot: int = 1000, seed: int = 0,
                     confidence: float = 0.9) -> pd.DataFrame:
    """Mean and total CLV per segment with bootstrap intervals, and the segment's yearly
    retention (:func:`crmkit.analysis.retention.yearly_retention`), in display order.

    Customers who never bought are left out (they have no value model).
    """
    buyers = seg.table[seg.table["frequency"] > 0].set_index("customer_id")
    result = value.segment_value(buyers["clv"], buyers["probability_alive"], buyers["segment"],
                                 n_boot=n_boot, seed=seed, confidence=confidence)
    result["retention"] = retention.yearly_retention(buyers).reindex(result.index)
    order = [k for k in seg.segment_order() if k in result.index]
    return seg.named(result.loc[order])


def contract_segments(seg: Segmentation, lang: str) -> pd.DataFrame:
    """A contractual client's segments: name, what puts a customer there, how many there are."""
    from crmkit.analysis.contractual import segment_descriptions

    descriptions = segment_descriptions(lang)
    counts = seg.table["segment"].value_counts()
    rows = [{"name": seg.names[k], "description": descriptions.get(k, ""),
             "customers": int(counts.get(k, 0))} for k in seg.segment_order()]
    return pd.DataFrame(rows)


#: Fewest customers a year ago for the migration table to be worth showing.
MIN_MIGRATION_CUSTOMERS = 50


def year_on_year_migration(ws: Workspace, seg: Segmentation,
                           config: ClientConfig | None = None) -> pd.DataFrame | None:
    """Where the customers of each segment a year ago are now: the check beside the model.

    The same map is applied to the history as it stood twelve months before the analysis date;
    each row gives the shares of that segment's customers in today's segments (rows add up to
    1, ``customers`` is the row's size), in display order with a ``name`` column. None when the
    segments come from clustering (a year-old clustering has other clusters) or when fewer than
    :data:`MIN_MIGRATION_CUSTOMERS` customers had bought a year ago.
    """
    config = config or ws.config
    settings = config.segmentation
    if seg.method != "map":
        return None
    earlier = (pd.Timestamp(ws.as_of) - pd.DateOffset(years=1)).date()
    # rfm_table leaves out the lines after its date itself: no copy of the history as it was
    before = (ws.transactions["date"] <= pd.Timestamp(earlier)).to_numpy(dtype=bool)
    if len(occasions.customer_codes(ws.transactions, before)[1]) < MIN_MIGRATION_CUSTOMERS:
        return None
    rfm = rfm_mod.rfm_table(ws.transactions, earlier, frequency=settings.frequency,
                            gross_margin=config.assumptions.gross_margin)
    segment_map = segment_maps.from_settings(settings, workspace=ws.path)
    table = rfm_mod.rfm_scores(rfm) if segment_map.kind == "scores" else rfm
    then = segment_maps.assign(table, segment_map).segments.astype(str)
    matrix = retention.migration_matrix(then, seg.segments.astype(str))
    columns = [k for k in seg.names if k in matrix.columns]
    return seg.named(matrix[columns + ["customers"]])


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


def ordered_segments(table: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """``table`` with ``segment`` as a categorical in display order, so every later reader
    shows the segments in one order (issue 13): the map's.

    Parameters
    ----------
    table : DataFrame
        A per-customer table with a ``segment`` column of keys.
    names : dict
        Segment key -> name, in display order (:attr:`Segmentation.names`): every key becomes
        a category, in that order, whether or not it has customers.

    Returns
    -------
    DataFrame
        A copy; keys the names do not list (none, normally) are appended in order of first
        appearance rather than lost. Rows and every other column are unchanged.
    """
    column = table["segment"]
    found = [str(s) for s in pd.unique(column.dropna().astype(str))]
    categories = list(dict.fromkeys([*map(str, names), *found]))
    out = table.copy()
    out["segment"] = pd.Categorical(column.astype(str).where(column.notna()),
                                    categories=categories)
    return out


def save_table(seg: Segmentation, path) -> None:
    """Write the per-customer table as parquet for later workbooks (no-op without a run).

    ``segment`` is written as a categorical in the map's order (:func:`ordered_segments`):
    the readers' :func:`crmkit.relationships.inventory.segment_order` takes the categories'
    order, where plain strings would give the order in which customers happen to appear.
    """
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    ordered_segments(seg.table, seg.names).to_parquet(path, index=False)


