"""What ``crmkit check`` can say about the history before workbook 02 models it.

The customer-base models of workbook 02 (:mod:`crmkit.analysis.valuation`) need repeat buyers
and a history long enough to hold part of it back; a contractual client needs the dates its
contracts start and end. Each of these used to surface half-way through ``crmkit run`` (or as a
silently poor figure); here they are found with the other input problems:

- ``value.holdout_months`` longer than the history can spare (the calibration period must be at
  least 90 % of the holdout, as :func:`crmkit.analysis.model_choice.split` requires) is a problem;
- ``business_model: contractual`` without a ``start_date`` column in the customers file is a
  problem;
- fewer than 10 % of the buyers (or fewer than 50) having bought twice is a warning: the report
  will then value customers by their historical margin or on a thin model.

The holdout rule is restated here rather than imported because inputs sit below analysis in the
package layers; tests/analysis/test_valuation_checks.py holds the two to the same answer.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from crmkit.core.i18n import t
from crmkit.core.problems import Problem
from crmkit.inputs import occasions
from crmkit.settings.client import CONFIG_FILE, ClientConfig

__all__ = ["history_checks", "MIN_REPEAT_SHARE", "MIN_REPEAT_BUYERS"]

#: Below this share of buyers with a second purchase (:mod:`crmkit.inputs.occasions`: a second
#: order, or a second purchase day), ``crmkit check`` warns.
MIN_REPEAT_SHARE = 0.10
#: … or below this many repeat buyers.
MIN_REPEAT_BUYERS = 50
#: The calibration period must be at least this share of the holdout (model_choice.split).
MIN_CALIBRATION_RATIO = 0.9


def longest_holdout_months(first: dt.date, as_of: dt.date) -> int:
    """The longest holdout, in whole months, that leaves a calibration period of at least
    :data:`MIN_CALIBRATION_RATIO` times its length."""
    months = 0
    while True:
        cut = (pd.Timestamp(as_of) - pd.DateOffset(months=months + 1)).date()
        if (cut - first).days < MIN_CALIBRATION_RATIO * (as_of - cut).days:
            return months
        months += 1


def history_checks(config: ClientConfig, customers: pd.DataFrame, transactions: pd.DataFrame,
                   as_of: dt.date | None, customers_file: str = "customers.csv"
                   ) -> tuple[list[Problem], list[tuple[str, dict]]]:
    """Problems and warnings about the history the value models will see.

    Returns
    -------
    problems : list of Problem
    warnings : list of (message key, values)
    """
    lang = config.language
    problems: list[Problem] = []
    warnings: list[tuple[str, dict]] = []
    if config.business_model == "contractual" and "start_date" not in customers.columns:
        problems.append(Problem(customers_file, "missing_column", t(
            "check_contractual_needs_dates", lang, file=customers_file)))
    if not {"customer_id", "date", "amount"} <= set(transactions.columns) or transactions.empty:
        return problems, warnings
    dates = pd.to_datetime(transactions["date"], errors="coerce")
    end = pd.Timestamp(as_of) if as_of is not None else dates.max()
    inside = dates <= end
    if not inside.any():
        return problems, warnings
    first = dates[inside].min().date()
    holdout = config.value.holdout_months
    if holdout is not None:
        longest = longest_holdout_months(first, end.date())
        if holdout > longest:
            months = (end.year - first.year) * 12 + end.month - first.month
            problems.append(Problem(CONFIG_FILE, "invalid_setting", t(
                "check_holdout_too_long", lang, found=holdout, longest=longest,
                months=months)))
    per_customer = occasions.purchase_counts(transactions.loc[inside].assign(
        date=dates[inside]))
    buyers = int((per_customer > 0).sum())
    repeat = int((per_customer > 1).sum())
    if buyers and (repeat < MIN_REPEAT_BUYERS or repeat / buyers < MIN_REPEAT_SHARE):
        warnings.append(("check_warning_few_repeat_buyers",
                         {"repeat": f"{repeat:,}", "buyers": f"{buyers:,}",
                          "share": f"{repeat / buyers:.0%}"}))
    return problems, warnings
