"""Choosing the customer-base model on the client's own data: calibrate, hold out, compare.

The first question a reviewer asks of a CLV figure is how well the model predicts on this
client's data. So the history is split into a calibration period and a holdout of the last
``holdout_months`` (default: a quarter of the history, at most 12 months, at least 3); each
candidate (BG/NBD, MBG/NBD, Pareto/NBD) is fitted on the calibration period and asked how many
purchases each customer would make in the holdout; the predictions are compared with what
happened (in total, per calibration frequency, per customer: mean absolute error). The best
sound model wins — a degenerate fit (parameters at a bound, shapes beyond 1e3, a flat
likelihood: :meth:`crmkit.analysis.value.BetaGeo.diagnostics`) is named and passed over — and is
then refitted on the whole history by the caller.

Purchases are counted as :func:`crmkit.analysis.value.summarise` counts them, by the one rule of
:mod:`crmkit.inputs.occasions`: one purchase per order when the export has order ids, else per
customer and day, when it holds a purchase line (an amount of 0 or more: a free item counts, a
return does not).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from crmkit.analysis import value
from crmkit.inputs import occasions

__all__ = ["CANDIDATES", "Candidate", "Comparison", "Split", "compare", "split"]

#: The candidate models, key -> class, in the order ties are broken.
CANDIDATES: dict[str, type] = {"bg_nbd": value.BetaGeo, "mbg_nbd": value.ModifiedBetaGeo,
                               "pareto_nbd": value.ParetoNBD}
#: Holdout length limits in months (the default is a quarter of the history within them).
MIN_HOLDOUT_MONTHS, MAX_HOLDOUT_MONTHS = 3, 12
#: The calibration period must be at least this share of the holdout (CDNOW: 39 and 39 weeks).
MIN_CALIBRATION_RATIO = 0.9
#: Calibration frequencies shown one by one; higher ones are grouped.
FREQUENCY_BINS = 7


@dataclass(frozen=True)
class Split:
    """The calibration period and the holdout of a history.

    Attributes
    ----------
    start, calibration_end, holdout_end : datetime.date
        The first purchase date, the last day of calibration, the last day of the holdout.
    holdout_months : int
    """

    start: dt.date
    calibration_end: dt.date
    holdout_end: dt.date
    holdout_months: int

    @property
    def holdout_days(self) -> int:
        return (self.holdout_end - self.calibration_end).days


def default_holdout_months(history_days: int) -> int:
    """A quarter of the history in whole months, at least 3 and at most 12."""
    months = round(history_days / 30.4375 / 4)
    return max(MIN_HOLDOUT_MONTHS, min(MAX_HOLDOUT_MONTHS, months))


def split(transactions: pd.DataFrame, as_of, holdout_months: int | None = None) -> Split | None:
    """Split the history at ``as_of − holdout_months``; None when it is too short for a holdout.

    Parameters
    ----------
    transactions : DataFrame
        ``customer_id``, ``date``, ``amount``.
    as_of : date
        The analysis date (end of the holdout).
    holdout_months : int, optional
        Default :func:`default_holdout_months` of the history.
    """
    dates = pd.to_datetime(transactions["date"])
    if dates.empty:
        return None
    start = dates.min().date()
    end = pd.Timestamp(as_of).date()
    history = (end - start).days
    months = holdout_months or default_holdout_months(history)
    calibration_end = (pd.Timestamp(end) - pd.DateOffset(months=months)).date()
    if (calibration_end - start).days < MIN_CALIBRATION_RATIO * (end - calibration_end).days:
        return None
    return Split(start=start, calibration_end=calibration_end, holdout_end=end,
                 holdout_months=months)


@dataclass
class Candidate:
    """One model fitted on the calibration period and judged on the holdout.

    Attributes
    ----------
    model : str
        Key in :data:`CANDIDATES`.
    fitted : value model or None
        None when the fit failed (``issues`` says why).
    predicted, actual : float
        Purchases in the holdout by the calibration customers.
    mae : float
        Mean absolute error per customer.
    issues : dict
        Why the fit is degenerate (empty when sound).
    """

    model: str
    fitted: object | None
    predicted: float
    actual: float
    mae: float
    issues: dict[str, str] = field(default_factory=dict)

    @property
    def sound(self) -> bool:
        return self.fitted is not None and not self.issues

    def as_dict(self) -> dict:
        return {"model": self.model, "predicted_purchases": self.predicted,
                "actual_purchases": self.actual, "mae": self.mae, "sound": self.sound,
                "issues": sorted(self.issues)}


@dataclass
class Comparison:
    """The candidates compared on the holdout, and the chosen one.

    Attributes
    ----------
    split : Split
    candidates : list of Candidate
    chosen : str or None
        The sound candidate with the lowest error (or the one asked for); None when none is.
    customers : int
        Customers in the calibration period (the ones predicted for).
    by_frequency : DataFrame
        Per calibration frequency (0 … 7+): customers, actual and predicted holdout purchases
        per customer, for the chosen model.
    tracking : DataFrame
        Week by week over the holdout: cumulative actual and predicted purchases.
    """

    split: Split
    candidates: list[Candidate]
    chosen: str | None
    customers: int
    by_frequency: pd.DataFrame
    tracking: pd.DataFrame

    def candidate(self, key: str) -> Candidate:
        return next(c for c in self.candidates if c.model == key)

    def validation(self) -> dict | None:
        """The chosen model's figures for ``results.json`` (``segments.value_model.validation``)."""
        if self.chosen is None:
            return None
        best = self.candidate(self.chosen)
        return {"calibration_end": self.split.calibration_end.isoformat(),
                "holdout_end": self.split.holdout_end.isoformat(),
                "holdout_months": self.split.holdout_months, "customers": self.customers,
                "actual_purchases": best.actual, "predicted_purchases": best.predicted,
                "mae": best.mae}


def _fit(cls, summary: pd.DataFrame):
    model = cls()
    try:
        model.fit(summary["frequency"], summary["recency"], summary["T"])
    except value.ConvergenceError:
        model = cls()
        model.fit(summary["frequency"], summary["recency"], summary["T"], penalizer_coef=0.001)
    return model


def holdout_purchases(transactions: pd.DataFrame, customers: pd.Index, the_split: Split
                      ) -> pd.Series:
    """Purchase occasions in the holdout, per customer (:mod:`crmkit.inputs.occasions`)."""
    dates = pd.to_datetime(transactions["date"]).dt.normalize()
    inside = (dates > pd.Timestamp(the_split.calibration_end)) & \
        (dates <= pd.Timestamp(the_split.holdout_end))
    counts = occasions.purchase_counts(transactions.loc[inside])
    return counts.reindex(customers, fill_value=0).astype(float)


def compare(transactions: pd.DataFrame, as_of, *, holdout_months: int | None = None,
            model: str = "auto") -> Comparison | None:
    """Fit every candidate on the calibration period and judge it on the holdout.

    Parameters
    ----------
    transactions : DataFrame
    as_of : date
    holdout_months : int, optional
    model : {"auto", "bg_nbd", "mbg_nbd", "pareto_nbd"}
        ``auto`` chooses the sound candidate with the lowest mean absolute error; a model key
        forces that model (still compared with the others, and still named when degenerate).

    Returns
    -------
    Comparison or None
        None when the history is too short for a holdout (:func:`split`).
    """
    the_split = split(transactions, as_of, holdout_months)
    if the_split is None:
        return None
    calibration = transactions[pd.to_datetime(transactions["date"])
                               <= pd.Timestamp(the_split.calibration_end)]
    summary = value.summarise(calibration,
                              observation_period_end=pd.Timestamp(the_split.calibration_end),
                              order_id_col=occasions.ORDER_COLUMN)
    actual = holdout_purchases(transactions, summary.index, the_split)
    horizon = float(the_split.holdout_days)
    candidates, predictions = [], {}
    # once per distinct history, then per customer (value.history_codes)
    x, tx, age, codes = value.history_codes(summary["frequency"], summary["recency"],
                                            summary["T"])
    for key, cls in CANDIDATES.items():
        try:
            fitted = _fit(cls, summary)
        except (value.ConvergenceError, ValueError, FloatingPointError) as error:
            candidates.append(Candidate(key, None, float("nan"), float(actual.sum()),
                                        float("nan"), {"fit_failed": str(error)}))
            continue
        predicted = np.asarray(fitted.expected_purchases(horizon, x, tx, age),
                               dtype=float)[codes]
        issues = fitted.diagnostics()
        if not np.all(np.isfinite(predicted)):
            issues["no_prediction"] = "no finite prediction for some customers"
        else:
            predictions[key] = (fitted, predicted)
        candidates.append(Candidate(key, fitted, float(predicted.sum()), float(actual.sum()),
                                    float(np.mean(np.abs(predicted - actual.to_numpy()))),
                                    issues))
    sound = [c for c in candidates if c.sound]
    if model != "auto":
        chosen = model if model in predictions else None
    else:
        chosen = min(sound, key=lambda c: c.mae).model if sound else None
    by_frequency = pd.DataFrame()
    tracking = pd.DataFrame()
    if chosen is not None:
        fitted, predicted = predictions[chosen]
        bins = np.minimum(summary["frequency"].to_numpy(), FREQUENCY_BINS).astype(int)
        frame = pd.DataFrame({"frequency": bins, "actual": actual.to_numpy(),
                              "predicted": predicted})
        by_frequency = frame.groupby("frequency").agg(
            customers=("actual", "size"), actual=("actual", "mean"),
            predicted=("predicted", "mean")).reset_index()
        tracking = _tracking(transactions, summary, fitted, the_split)
    return Comparison(split=the_split, candidates=candidates, chosen=chosen,
                      customers=len(summary), by_frequency=by_frequency, tracking=tracking)


def _tracking(transactions, summary, fitted, the_split: Split) -> pd.DataFrame:
    """Cumulative purchases week by week over the holdout: actual and predicted."""
    weeks = max(1, the_split.holdout_days // 7)
    ends = [min(7 * (w + 1), the_split.holdout_days) for w in range(weeks)]
    # The calibration's customers' purchase occasions, as days after the calibration's end. A
    # customer's occasions are made of their own lines only, so the occasions of the whole log
    # restricted to those customers are theirs; the ids are looked up once per customer, not
    # once per line.
    found, ids = occasions.find(transactions)
    known = summary.index.get_indexer(ids) >= 0
    calibration_end = (pd.Timestamp(the_split.calibration_end) - pd.Timestamp(0)).days
    counted = found.purchase & known[found.customer]
    offset = np.sort(found.time[counted] - calibration_end)
    after_end = np.searchsorted(offset, 0, side="right")
    # one prediction per distinct history and week, weighted by how many customers share it
    x, tx, age, counts = value.distinct_histories(summary["frequency"], summary["recency"],
                                                  summary["T"])
    rows = []
    expected = fitted.expected_purchases_each([float(end) for end in ends], x, tx, age)
    for end, purchases in zip(ends, expected, strict=True):
        actual = int(np.searchsorted(offset, end, side="right") - after_end)
        predicted = float(np.dot(np.asarray(purchases, dtype=float), counts))
        rows.append({"day": end, "date": the_split.calibration_end + dt.timedelta(days=end),
                     "actual": actual, "predicted": predicted})
    return pd.DataFrame(rows)
