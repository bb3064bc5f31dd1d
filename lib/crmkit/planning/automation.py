"""Marketing automation roadmap: level 1 (messages by interest) and level 2 (offer management).

The CRM texts describe marketing automation in two levels. **Level 1** sends each customer a
message personalised by the interest it declared — here the interest is a customers.csv column
(``crm_project.automation.interest_attribute``) or, when the client collects none, the product
category the customer spent most on; each interest gets its message from a small catalogue in both
languages. **Level 2** adds offer management: a coupon of a given value with a deadline, sent per
segment, with its expected redemption and the extra margin it brings, so that the return of the
offer can be judged segment by segment before it is sent.

The arithmetic of level 2 is the automation lever's of the business case
(:mod:`crmkit.planning.levers`): the response an offer adds over what a control group would have
bought anyway, taken from the segment's own promotion history, made explicit per customer
(:func:`level2`) so that a consultant can redo it by hand. Target lists (:func:`target_list`)
come out as plain DataFrames ready for :func:`crmkit.delivery.exports.write_csv` — which
neutralises any spreadsheet formula hidden in client data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from crmkit.core.i18n import Formatter, t
from crmkit.core.problems import UserError
from crmkit.inputs import occasions
from crmkit.planning.levers import DEFAULT_COUPON_SHARE, LeverModel
from crmkit.planning.schedule import Plan
from crmkit.settings.project import AutomationSettings, project_settings

if TYPE_CHECKING:
    from crmkit.settings.client import ClientConfig

__all__ = [
    "DEFAULT_COUPON_SHARE",
    "LEVEL1_COLUMNS",
    "LEVEL1_TARGET_COLUMNS",
    "LEVEL2_COLUMNS",
    "LEVEL2_TARGET_COLUMNS",
    "ROADMAP_COLUMNS",
    "TARGET_COLUMNS",
    "Level1",
    "Level2",
    "automation_settings",
    "interests",
    "level1",
    "level2",
    "roadmap",
    "target_list",
]


# Columns of the frames below for a :class:`~crmkit.delivery.tables.Table`.
#: For ``level1(...).counts``.
LEVEL1_COLUMNS = {"interest_name": ("auto_col_interest", "text"),
                  "customers": ("auto_col_customers", "integer"),
                  "share": ("auto_col_share", "pct"), "message": ("auto_col_message", "text")}
#: For ``level2(...).segments``.
LEVEL2_COLUMNS = {"segment_name": ("auto_col_segment", "text"),
                  "targeted": ("auto_col_targeted", "integer"),
                  "coupon_value": ("auto_col_coupon_value", "money:2"),
                  "response_control": ("auto_col_response_control", "pct"),
                  "response_added": ("auto_col_response_added", "pct"),
                  "redemption_rate": ("auto_col_redemption_rate", "pct"),
                  "deadline": ("auto_col_deadline", "date"),
                  "expected_redemptions": ("auto_col_expected_redemptions", "number:1"),
                  "expected_cost": ("auto_col_expected_cost", "money"),
                  "incremental_margin": ("auto_col_incremental_margin", "money"),
                  "net_return": ("auto_col_net_return", "money"),
                  "roi": ("auto_col_roi", "pct:0")}
#: For :func:`target_list` (with level 2).
TARGET_COLUMNS = {"customer_id": ("auto_col_customer_id", "text"),
                  "segment": ("auto_col_segment", "text"),
                  "interest": ("auto_col_interest", "text"),
                  "message": ("auto_col_message", "text"), "offer": ("auto_col_offer", "text"),
                  "deadline": ("auto_col_deadline", "date")}
#: For ``level1(...).targets`` (``target_lists/level1.csv``).
LEVEL1_TARGET_COLUMNS = {"customer_id": ("auto_col_customer_id", "text"),
                         "segment": ("auto_col_segment", "text"),
                         "interest": ("auto_col_interest", "text"),
                         "message": ("auto_col_message", "text")}
#: For ``level2(...).targets`` (``target_lists/level2.csv``).
LEVEL2_TARGET_COLUMNS = {"customer_id": ("auto_col_customer_id", "text"),
                         "segment": ("auto_col_segment", "text"),
                         "offer": ("auto_col_offer", "text"),
                         "coupon_value": ("auto_col_coupon_value", "money:2"),
                         "deadline": ("auto_col_deadline", "date"),
                         "probability_alive": ("auto_col_probability_alive", "pct"),
                         "expected_cost": ("auto_col_expected_cost", "money:2"),
                         "expected_margin": ("auto_col_incremental_margin", "money:2")}
#: For :func:`roadmap`.
ROADMAP_COLUMNS = {"name": ("auto_col_level", "text"), "what": ("auto_col_what", "text"),
                   "needs": ("auto_col_needs", "text"), "starts": ("auto_col_starts", "date")}


def automation_settings(config: ClientConfig | AutomationSettings | Mapping | None
                        ) -> AutomationSettings:
    """``crm_project.automation`` of a ClientConfig (or the settings themselves, or defaults)."""
    if isinstance(config, AutomationSettings):
        return config
    if isinstance(config, Mapping) and "automation" not in config:
        return AutomationSettings.model_validate(config)
    return project_settings(config).automation


# --------------------------------------------------------------------------------------------
# Level 1: messages by interest
# --------------------------------------------------------------------------------------------

def interests(customers: pd.DataFrame, *, attributes: pd.DataFrame | None = None,
              transactions: pd.DataFrame | None = None,
              attribute: str | None = None) -> pd.DataFrame:
    """Each customer's interest: declared in an attribute, else the top purchase category.

    Parameters
    ----------
    customers : DataFrame
        One row per customer with ``customer_id`` (the per-customer table or customers.csv).
    attributes : DataFrame, optional
        customers.csv (canonical), when ``attribute`` is not a column of ``customers``.
    transactions : DataFrame, optional
        Canonical transactions; the top category is the ``category`` (else ``product``) with the
        largest net spend of the customer (ties: alphabetical).
    attribute : str, optional
        The column holding the declared interest.

    Returns
    -------
    DataFrame
        ``customer_id``, ``interest`` (string, NA when unknown), ``interest_source``
        (``declared``, ``top_category``, ``top_product`` or ``none``).

    Raises
    ------
    ValueError
        When ``attribute`` is in neither frame.
    """
    out = pd.DataFrame({"customer_id": customers["customer_id"].astype(str).to_numpy()})
    out["interest"] = pd.Series(pd.NA, index=out.index, dtype="string")
    out["interest_source"] = "none"
    if attribute is not None:
        if attribute in customers.columns:
            declared = customers[attribute]
        elif attributes is not None and attribute in attributes.columns:
            lookup = attributes.assign(customer_id=attributes["customer_id"].astype(str)
                                       ).set_index("customer_id")[attribute]
            declared = out["customer_id"].map(lookup)
        else:
            raise UserError(f"interest attribute '{attribute}' is not a column of "
                             "customers.csv; set crm_project.automation.interest_attribute to "
                             "one of its columns, or leave it out to use the top category")
        values = pd.Series(np.asarray(declared, dtype=object), index=out.index)
        values = values.map(lambda v: None if v is None or (isinstance(v, float) and v != v)
                            or str(v).strip() == "" else str(v).strip())
        known = values.notna()
        out.loc[known, "interest"] = values[known].astype(str)
        out.loc[known, "interest_source"] = "declared"
    if transactions is not None and out["interest"].isna().any():
        column = "category" if "category" in transactions.columns else (
            "product" if "product" in transactions.columns else None)
        if column is not None:
            top = _top_items(transactions, column)
            missing = out["interest"].isna()
            found = out.loc[missing, "customer_id"].map(top)
            fill = found.notna()
            index = found[fill].index
            out.loc[index, "interest"] = found[fill].astype(str)
            out.loc[index, "interest_source"] = f"top_{column}"
    return out


def _top_items(transactions: pd.DataFrame, column: str) -> pd.Series:
    """Each customer's item (of ``column``) with the largest positive net spend, ties going to
    the first alphabetically; indexed by customer id as text.

    Grouped on integer codes of customers and items rather than on their text: the sums are
    pandas' own, in the lines' order, so they are the same to the last bit, in a fraction of
    the time on ten million lines. The items are cleaned (padding spaces, empty text) once per
    distinct value, not once per line, so no line-long copy of the text is made.
    """
    item_code, items = _item_codes(transactions[column])
    keep = item_code >= 0
    customer, ids = occasions.customer_codes(transactions, keep)
    item_code = item_code[keep]
    amount = transactions["amount"].to_numpy(dtype=float)[keep]
    del keep
    width = max(len(items), 1)        # one int64 key per customer and item
    key = customer * width + item_code
    del customer, item_code
    spend = pd.Series(amount).groupby(key, sort=False).sum()  # the lexsort below orders
    del amount, key
    spend = spend[spend.to_numpy() > 0]
    who, what = np.divmod(spend.index.to_numpy(), width)
    best = np.lexsort((what, -spend.to_numpy(), who))      # by customer, most spent, item
    first = best[np.r_[True, who[best][1:] != who[best][:-1]]] if len(best) else best
    return pd.Series(np.asarray(items, dtype=object)[what[first]],
                     index=pd.Index(ids.astype(str)[who[first]], name="customer_id"),
                     name="_item")


def _item_codes(values: pd.Series) -> tuple[np.ndarray, Any]:
    """Each line's item as a position in the sorted distinct items, -1 when it has none (missing,
    or only spaces); and those items: ``pd.factorize`` of the stripped text of the lines that
    have one, with ``sort=True``, computed on the distinct values."""
    raw, distinct = pd.factorize(values)                   # -1 for a missing value
    cleaned = pd.Series(distinct).astype("string").str.strip()
    valid = (cleaned.notna() & (cleaned != "")).to_numpy(dtype=bool)
    codes, items = pd.factorize(cleaned[valid], sort=True)
    position = np.full(len(distinct) + 1, -1, dtype=np.int64)  # the last one for raw's -1
    position[np.flatnonzero(valid)] = codes
    return position[raw], items


@dataclass
class Level1:
    """Level 1: who gets which message.

    Attributes
    ----------
    counts : DataFrame
        One row per interest, most customers first: ``interest``, ``interest_name`` (the
        interest, or "no known interest"), ``customers``, ``share``, ``message``,
        ``message_source`` (``client.yaml`` or ``default``).
    targets : DataFrame
        One row per customer: ``customer_id``, ``segment`` (when the customers had one),
        ``interest``, ``interest_source``, ``message``.
    """

    counts: pd.DataFrame
    targets: pd.DataFrame

    def as_dict(self) -> dict:
        """Key figures for ``results.json`` and the prose.

        ``customers``; ``interests`` (known interests); ``no_interest`` (customers without one);
        ``source`` (how most interests were found: ``declared``, ``top_category``,
        ``top_product`` or ``none``); ``client_messages`` (interests whose message client.yaml
        gives); ``top`` (the interest with most customers: ``interest``, ``customers``,
        ``share``; None without any known interest).
        """
        known = self.counts[self.counts["interest"].notna()]
        sources = self.targets["interest_source"].value_counts()
        top = None if known.empty else {"interest": str(known["interest"].iloc[0]),
                                        "customers": int(known["customers"].iloc[0]),
                                        "share": float(known["share"].iloc[0])}
        return {"customers": int(len(self.targets)), "interests": int(len(known)),
                "no_interest": int(self.counts.loc[self.counts["interest"].isna(),
                                                   "customers"].sum()),
                "source": str(sources.index[0]) if len(sources) else "none",
                "client_messages": int((known["message_source"] == "client.yaml").sum()),
                "top": top}


def _message(interest: Any, settings: AutomationSettings, lang: str) -> tuple[str, str]:
    if interest is None or interest is pd.NA or (isinstance(interest, float)
                                                 and interest != interest):
        return t("auto_message_general", lang), "default"
    own = settings.messages.get(str(interest))
    if own is not None:
        return own.text(lang), "client.yaml"
    return t("auto_message_default", lang, interest=interest), "default"


def level1(customers: pd.DataFrame, lang: str, *, config: Any = None,
           attributes: pd.DataFrame | None = None,
           transactions: pd.DataFrame | None = None) -> Level1:
    """Level 1 of marketing automation: one message per customer, chosen by interest.

    Parameters
    ----------
    customers : DataFrame
        The per-customer table (``customer_id``, optionally ``segment``) or customers.csv.
    lang : {"en", "es"}
    config : ClientConfig or AutomationSettings, optional
        ``crm_project.automation``: ``interest_attribute`` and the ``messages`` catalogue.
    attributes : DataFrame, optional
        customers.csv, when the declared interest is one of its columns.
    transactions : DataFrame, optional
        For the top purchase category (when no interest is declared).
    """
    settings = automation_settings(config)
    found = interests(customers, attributes=attributes, transactions=transactions,
                      attribute=settings.interest_attribute)
    targets = found.copy()
    if "segment" in customers.columns:
        targets.insert(1, "segment", customers["segment"].astype(str).to_numpy())
    texts = {}
    for interest in targets["interest"].dropna().unique():
        texts[interest] = _message(interest, settings, lang)
    general = _message(None, settings, lang)
    targets["message"] = [texts[i][0] if not pd.isna(i) else general[0]
                          for i in targets["interest"]]
    counts = (targets.assign(_key=targets["interest"].fillna("\x00"))
              .groupby("_key", sort=False).agg(customers=("customer_id", "size"))
              .reset_index())
    counts["interest"] = counts["_key"].replace("\x00", pd.NA)
    counts = counts.drop(columns="_key").sort_values(["customers", "interest"],
                                                     ascending=[False, True], kind="stable")
    counts["interest_name"] = [str(i) if not pd.isna(i) else t("auto_no_interest", lang)
                               for i in counts["interest"]]
    counts["share"] = counts["customers"] / max(len(targets), 1)
    messages = [texts[i] if not pd.isna(i) else general for i in counts["interest"]]
    counts["message"] = [m for m, _ in messages]
    counts["message_source"] = [s for _, s in messages]
    counts = counts[["interest", "interest_name", "customers", "share", "message",
                     "message_source"]].reset_index(drop=True)
    return Level1(counts=counts, targets=targets)


# --------------------------------------------------------------------------------------------
# Level 2: offers
# --------------------------------------------------------------------------------------------

@dataclass
class Level2:
    """Level 2: the offer to each segment and its expected return.

    Attributes
    ----------
    segments : DataFrame
        One row per segment: ``segment``, ``segment_name``, ``customers``, ``targeted``,
        ``coupon_value``, ``response_control``, ``response_added``, ``redemption_rate`` (the
        treated response, their sum), ``margin_per_order``, ``deadline_days``, ``deadline``
        (date), ``expected_redemptions``, ``expected_cost``, ``incremental_margin``,
        ``net_return`` (margin − cost) and ``roi`` (net return / cost; NaN without cost).
        ``frame.attrs["total"]`` holds the same sums for all segments.
    targets : DataFrame
        One row per targeted customer: ``customer_id``, ``segment``, ``probability_alive``,
        ``coupon_value``, ``deadline``, ``offer`` (text), ``expected_cost``,
        ``expected_margin``.
    """

    segments: pd.DataFrame
    targets: pd.DataFrame

    def as_dict(self) -> dict:
        """Key figures for ``results.json`` and the prose.

        The totals of ``segments.attrs["total"]`` (``targeted``, ``expected_cost``,
        ``incremental_margin``, ``net_return``, ``roi``), ``segments`` (how many get an offer),
        ``paying`` (how many of them have a positive net return) and ``best`` (the segment whose
        offer returns most money — not the highest ratio, which a handful of redemptions can
        give: ``segment``, ``segment_name``, ``roi``, ``net_return``; None when no offer has a
        cost).
        """
        frame = self.segments
        ranked = frame[frame["roi"].notna()].sort_values("net_return", ascending=False,
                                                         kind="stable")
        best = None if ranked.empty else {
            "segment": str(ranked["segment"].iloc[0]),
            "segment_name": str(ranked["segment_name"].iloc[0]),
            "roi": float(ranked["roi"].iloc[0]), "net_return": float(ranked["net_return"].iloc[0])}
        return {**frame.attrs.get("total", {}), "segments": int(len(frame)),
                "paying": int((frame["net_return"] > 0).sum()), "best": best}


def level2(customers: pd.DataFrame, fmt: Formatter, *, send_date: dt.date, config: Any = None,
           window_months: int | None = None,
           promotions: pd.DataFrame | None = None) -> Level2:
    """Level 2 of marketing automation: a coupon per segment, its cost and its return.

    One campaign, sent to every targeted customer; the arithmetic is the automation lever's
    (:meth:`crmkit.planning.levers.LeverModel.offer_terms`), so the table and the business case
    agree. For a segment with coupon ``v``, and customer ``i`` with probability ``p_i`` of being
    still active:

    - the **control response** ``r_c``: the chance an active customer orders within the deadline
      ``D`` anyway, ``1 − exp(−λ D / 365)``, ``λ`` the segment's expected orders a year per active
      customer (``expected_purchases`` of the customer-base model);
    - the **added response** ``a = redemption_rate × π_s / π × (1 − r_c)``: the offer converts a
      share of the others, scaled by how often the segment bought on promotion (``π_s``, chapter
      2's promotion history, against the base's ``π``; 1 without a history);
    - expected redemptions ``p_i (r_c + a)`` — those who would have bought anyway use the coupon
      too — and expected cost ``p_i (r_c + a) v``;
    - incremental margin ``p_i × a × margin per order`` (the segment's margin over its orders);
    - return ``margin − cost`` and ROI ``(margin − cost) / cost``.

    The default coupon is 10 % of the segment's average order (two significant figures).
    Customers below the segment's ``min_probability_alive`` are not targeted. A control group and
    the number of campaigns a year are the lever's (``crm_project.levers.automation``).

    Parameters
    ----------
    customers : DataFrame
        The per-customer table: ``customer_id``, ``segment``, ``margin_window``,
        ``probability_alive``; and ``segment_name``, ``expected_purchases``, ``margin``,
        ``monetary``, ``frequency`` (else ``revenue_window``) when present.
    fmt : Formatter
        For the offer text (coupon value and deadline in the language).
    send_date : date
        When the offer is sent; the deadline is ``send_date + deadline_days``.
    config : ClientConfig or AutomationSettings, optional
        ``crm_project.automation.offer_defaults`` and ``offers`` (per segment).
    window_months : int, optional
        Months ``margin_window`` covers; default ``assumptions.window_months``, else 12.
    promotions : DataFrame, optional
        :func:`crmkit.analysis.profiles.promotion_history` per segment.

    Raises
    ------
    ValueError
        When the per-customer table lacks a column, or client.yaml names a segment it has not.
    """
    missing = [c for c in ("customer_id", "segment", "margin_window", "probability_alive")
               if c not in customers.columns]
    if missing:
        raise ValueError("the per-customer table needs " + ", ".join(missing)
                         + " (tables/customers.parquet of workbook 02)")
    settings = automation_settings(config)
    table = customers.assign(segment=customers["segment"].astype(str))
    unknown = sorted(set(settings.offers) - set(table["segment"]))
    if unknown:
        raise UserError("client.yaml crm_project.automation.offers names segment "
                         + ", ".join(repr(u) for u in unknown) + " that the customer table "
                         "does not have; its segments are "
                         + ", ".join(sorted(table["segment"].unique())))
    client = config if hasattr(config, "assumptions") else None
    model = LeverModel.from_tables(table, None, client, promotions=promotions,
                                   automation=settings, window_months=window_months)
    rows, targets = [], []
    for segment, group in table.groupby("segment", sort=False):
        offer = settings.offer(segment)
        if not offer.include:
            continue
        name = str(group["segment_name"].iloc[0]) if "segment_name" in group else segment
        terms = model.offer_terms(segment)
        coupon = terms["coupon"]
        deadline = send_date + dt.timedelta(days=offer.deadline_days)
        alive = group["probability_alive"].astype(float).fillna(0.0).clip(0, 1)
        chosen = group[alive >= offer.min_probability_alive]
        p = alive[chosen.index]
        redemptions = p * terms["response_treated"]
        cost = redemptions * coupon
        margin = p * terms["response_added"] * terms["margin_per_order"]
        total_cost, total_margin = float(cost.sum()), float(margin.sum())
        rows.append({
            "segment": segment, "segment_name": name, "customers": len(group),
            "targeted": len(chosen), "coupon_value": coupon,
            "response_control": terms["response_control"],
            "response_added": terms["response_added"],
            "redemption_rate": terms["response_treated"],
            "margin_per_order": terms["margin_per_order"],
            "deadline_days": offer.deadline_days, "deadline": deadline,
            "expected_redemptions": float(redemptions.sum()), "expected_cost": total_cost,
            "incremental_margin": total_margin, "net_return": total_margin - total_cost,
            "roi": (total_margin - total_cost) / total_cost if total_cost > 0 else np.nan})
        text = t("auto_offer_text", fmt.lang, value=fmt.money(coupon, 0 if coupon >= 10 else 2),
                 deadline=fmt.date(deadline, style="medium"))
        targets.append(pd.DataFrame({
            "customer_id": chosen["customer_id"].astype(str).to_numpy(), "segment": segment,
            "probability_alive": p.to_numpy(), "coupon_value": coupon, "deadline": deadline,
            "offer": text, "expected_cost": cost.to_numpy(),
            "expected_margin": margin.to_numpy()}))
    columns = ["segment", "segment_name", "customers", "targeted", "coupon_value",
               "response_control", "response_added", "redemption_rate", "margin_per_order",
               "deadline_days", "deadline", "expected_redemptions", "expected_cost",
               "incremental_margin", "net_return", "roi"]
    segments = pd.DataFrame(rows, columns=columns)
    cost, margin = segments["expected_cost"].sum(), segments["incremental_margin"].sum()
    segments.attrs["total"] = {
        "targeted": int(segments["targeted"].sum()), "expected_cost": float(cost),
        "incremental_margin": float(margin), "net_return": float(margin - cost),
        "roi": float((margin - cost) / cost) if cost > 0 else None}
    target_columns = ["customer_id", "segment", "probability_alive", "coupon_value", "deadline",
                      "offer", "expected_cost", "expected_margin"]
    target_frame = (pd.concat(targets, ignore_index=True) if targets
                    else pd.DataFrame(columns=target_columns))
    return Level2(segments=segments, targets=target_frame)


def target_list(level_1: Level1, level_2: Level2 | None = None) -> pd.DataFrame:
    """The list to load into the e-mail or campaign tool, one row per customer.

    Returns
    -------
    DataFrame
        ``customer_id``, ``segment``, ``interest``, ``message`` and, with level 2, ``offer``,
        ``coupon_value`` and ``deadline`` (empty for customers without an offer). Export it with
        :func:`crmkit.delivery.exports.write_csv`, which neutralises formulas in client text.
    """
    out = level_1.targets.drop(columns=["interest_source"])
    if "segment" not in out.columns:
        out.insert(1, "segment", pd.NA)
    if level_2 is not None:
        offers = level_2.targets[["customer_id", "offer", "coupon_value", "deadline"]]
        out = out.merge(offers, on="customer_id", how="left")
    return out.reset_index(drop=True)


def roadmap(lang: str, plan: Plan | None = None, *, level2_delay_months: int = 3
            ) -> pd.DataFrame:
    """The automation roadmap: what each level does, what it needs and when it starts.

    Level 1 starts at go-live; level 2 ``level2_delay_months`` later, once level 1 has run long
    enough to show who responds (offers without that history are guesses).

    Returns
    -------
    DataFrame
        ``level`` (1, 2), ``name``, ``what``, ``needs``, ``starts`` (date; None without a plan).
    """
    starts = [None, None]
    if plan is not None:
        starts = [plan.go_live_date, plan.month_date(plan.go_live_month + level2_delay_months)]
    return pd.DataFrame({
        "level": [1, 2],
        "name": [t("auto_level1_name", lang), t("auto_level2_name", lang)],
        "what": [t("auto_level1_what", lang), t("auto_level2_what", lang)],
        "needs": [t("auto_level1_needs", lang), t("auto_level2_needs", lang)],
        "starts": starts})
