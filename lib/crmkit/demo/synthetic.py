"""Seeded generator of realistic demo companies: a retailer, a bank and a telecom operator.

The workbooks, the dashboard, the workshops and the benchmarks all need client data that looks
like a real company's export, is free to publish, and has a *known* structure underneath, so
that a test can check that a segmentation recovers the customer types that were put in. No
library generates CRM companies with customer archetypes, purchase processes, promotional
history, relationship types and satisfaction surveys that hang together, so this module
writes them by hand, vectorised with numpy (100,000 customers and about a million transaction
lines take a second or two; no Python loop runs per customer or per line).

The model
---------
Every customer belongs to one of five **archetypes** (the ground truth, returned separately as
:attr:`SyntheticClient.archetype` and never written to ``customers.csv``; whether each one is
still a customer at ``as_of`` is :attr:`SyntheticClient.alive`). The mixture proportions,
price levels, rates and lifetimes depend on the profile; the shape of each process is the same
in every profile.

**The purchase process is the Pareto/NBD story** (Schmittlein, Morrison & Colombo 1987), so
that the customer-base models of :mod:`crmkit.analysis.value` have something true to find:
while alive, a customer buys as a Poisson process at a rate of their own, gamma distributed
within the type (``rate``, ``rate_shape``); after their first purchase each one stays for an
exponential lifetime, at a dropout rate of their own, gamma distributed within the type with
mean ``1 / lifetime`` (``lifetime``, ``lifetime_shape``), and then never buys again. A customer
acquired before the data window opens is in the data because they were still alive then: by
the memoryless lifetime, their remaining lifetime runs from their first purchase in the window,
at a dropout rate drawn from the survivors' distribution (the gamma's rate grows by the years
already survived). Nobody's activity stops on a calendar day.

``loyal`` -- loyal regulars
    Acquired one to eight years before ``as_of`` (so most were already customers when the
    data window opens). Buy often (retail: about eight purchases a year), with steady
    individual rates, ordinary baskets, moderate response to promotions. Long lifetimes (about
    twelve years for the typical one): a few drop out within the window. Mostly satisfied;
    they value personal assistance and communities.
``big_spender`` -- big spenders
    Fewer purchases (about a third of a regular's rate) but large ones: a spend level three
    times the others' and a taste for the dear, high-margin categories (category weights tilted
    by price), plus a higher margin rate. Long lifetimes. Rarely use promotion codes. Served
    with *dedicated* personal assistance (an account manager, a personal shopper, a private
    banker).
``one_off`` -- one-off buyers
    A single purchase somewhere in the window (at least five months before ``as_of``), cheap
    categories, high promotion and welcome-code use, more returns; then gone (lifetime 0).
    Lukewarm satisfaction; prefer self-service and automated services.
``lapsing`` -- lapsing customers
    Acquired eight months to five years before ``as_of``; bought at least twice (their first
    repeat purchase is the next arrival of their Poisson process) and then drop out fast (a
    lifetime of months), so most have dropped out by ``as_of``. Heavy promotion users, more
    returns, the least satisfied, more contacts with the service desk.
``new`` -- new customers
    First purchase (acquisition) in the last four months, then an ordinary rate and a
    moderate, widely spread lifetime. Often came in with the welcome code; young; curious
    about self-service and the app.

**A telecom operator is a contractual client**: its customers do not *buy*, they *subscribe*
(``business_model: contractual`` in its client.yaml; ``start_date`` and ``end_date`` in
``customers.csv``, an empty end date for a running contract). In the ``telecom`` profile every
customer pays a monthly bill, on the day of the month the contract started, for a plan chosen
by price tilt, from the start until the contract ends; at each monthly renewal a subscriber
leaves with a churn probability of their own, Beta(``churn_alpha``, ``churn_beta``)
distributed within the type: the shifted-beta-geometric story of Fader & Hardie (2007).
Contracts that started before the window are there because they renewed until it opened, so
their churn is drawn from the survivors' Beta(alpha, beta + renewals). Lapsing subscribers
pay at least two bills in the window; one-off buyers pay a single bill. The Poisson process
then only generates add-ons and device purchases while the contract runs. The ``bank`` profile's
"transactions" are fee and product revenue lines (account fees, card fees, mortgage interest
margin, insurance commissions, fund management fees): a non-contractual client, whose
customers bring revenue at irregular moments.

Around the purchase process:

- **Seasonality**: the purchase dates of a customer are drawn by inverse transform from a
  daily intensity = month factor x weekday factor x campaign boost (retail: November and
  December peak, January and July sales; bank and telecom milder).
- **Promotions**: a profile has dated campaigns (e.g. ``SPRING10``, ``BLACKFRIDAY``); a line
  bought while a campaign runs carries its code with an archetype-specific response
  probability, and an acquisition purchase carries the welcome code (``WELCOME15``) with
  another. The discount lowers both the amount and the margin.
- **Margins**: the ``margin`` column is the gross margin *amount*: list price x the category's
  margin rate (x the archetype's margin factor, x a small noise) minus the discount.
- **Returns**: a few lines are returned (negative amount and margin, a few days later).
- **Typological attributes** (region, age band, gender or customer type, signup channel,
  customer since…) are drawn from archetype-dependent distributions, so they are informative
  but not giveaways; the retailer also knows, for some customers, an estimate of their yearly
  spend in the category (``category_spend``), larger than what they spend with the client
  (share of customer below one).
- **Interactions**: contacts at an archetype-specific yearly rate while the customer is active;
  a relationship type (catalogue key) drawn from the archetype's distribution, a channel given
  the relationship type, and minutes from a lognormal per relationship type.
- **Survey**: a 15-30 % sample (response rate by archetype) with satisfaction 1-5 drawn from
  the archetype's distribution, an NPS 0-10 correlated with it, and a preferred relationship.

Everything is drawn from one ``numpy.random.Generator`` seeded with ``seed``, in a fixed
order, so the same arguments give identical frames and identical files.

The numbers of each company (categories and prices, the share and behaviour of each archetype,
seasonality, campaigns, attributes, the content of ``client.yaml``) are data, not code: one
commented file per company in ``data/demo/profiles/`` (``retail.yaml``, ``bank.yaml``,
``telecom.yaml``, and ``common.yaml`` for what they share), read by :mod:`crmkit.demo.profiles`
on first use. :data:`PROFILES` holds them, keyed by profile name.

Command line (big workspaces for benchmarks)::

    python -m crmkit.demo.synthetic retail /tmp/bench --customers 100000 --seed 1 --dialect spanish
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import yaml

from crmkit.demo import profiles as _profiles
from crmkit.demo.profiles import (
    ARCHETYPES,
    RELATIONSHIPS,
    Attribute,
    Behaviour,
    Campaign,
    Category,
    Plan,
    Profile,
    ProfileError,
)

__all__ = [
    "ARCHETYPES",
    "DEFAULT_AS_OF",
    "DIALECTS",
    "PROFILES",
    "RELATIONSHIPS",
    "Attribute",
    "Behaviour",
    "Campaign",
    "Category",
    "Plan",
    "Profile",
    "ProfileError",
    "SyntheticClient",
    "generate",
    "main",
    "write_workspace",
]

#: Indices of the customer types in every archetype-indexed array (:data:`ARCHETYPES`).
LOYAL, BIG, ONE_OFF, LAPSING, NEW = range(5)

#: The analysis date used when none is given.
DEFAULT_AS_OF = date(2026, 10, 31)

#: Output dialects of :func:`write_workspace`.
DIALECTS: tuple[str, ...] = ("standard", "spanish", "excel_bom")

#: Headers of the ``spanish`` dialect, canonical column -> the client's header.
SPANISH_HEADERS: dict[str, dict[str, str]] = {
    "customers": {"customer_id": "Nº Cliente",
                  "category_spend": "Gasto anual estimado en la categoría",
                  "start_date": "Fecha de alta", "end_date": "Fecha de baja"},
    "transactions": {"customer_id": "Nº Cliente", "date": "Fecha", "amount": "Importe",
                     "product": "Producto", "category": "Categoría", "margin": "Margen",
                     "promotion": "Promoción"},
    "interactions": {"customer_id": "Nº Cliente", "date": "Fecha", "channel": "Canal",
                     "relationship_type": "Tipo de relación", "minutes": "Minutos"},
    "survey": {"customer_id": "Nº Cliente", "satisfaction": "Satisfacción",
               "nps": "Recomendación (0-10)", "preferred_relationship": "Relación preferida"},
}

_FILES = ("customers", "transactions", "interactions", "survey")

# When each type was acquired, in days before as_of (profile independent; None: the first
# day of the window). How long they stay is the profile's (lifetime, churn).
_ACQ_AGO = {LOYAL: (365, 8 * 365), BIG: (180, 6 * 365), ONE_OFF: (150, None),
            LAPSING: (240, 5 * 365), NEW: (0, 120)}
_CONTACT_TAIL = 45               # days after the last purchase a customer may still call


# --------------------------------------------------------------------------------------------
# Profiles: data/demo/profiles/*.yaml, read by crmkit.demo.profiles
# --------------------------------------------------------------------------------------------

#: The demo companies, profile key -> :class:`Profile` (read on first use, like the three below).
PROFILES: dict[str, Profile]
RETAIL: Profile
BANK: Profile
TELECOM: Profile

_PROFILE_NAMES = {"RETAIL": "retail", "BANK": "bank", "TELECOM": "telecom"}


def __getattr__(name: str) -> Any:
    """``PROFILES``, ``RETAIL``, ``BANK``, ``TELECOM`` and ``_MINUTES``, read on first use."""
    if name == "PROFILES":
        return _profiles.profiles()
    if name in _PROFILE_NAMES:
        return _profiles.profiles()[_PROFILE_NAMES[name]]
    if name == "_MINUTES":
        return _profiles.minutes()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------------------------
# The generated client
# --------------------------------------------------------------------------------------------

@dataclass
class SyntheticClient:
    """A generated demo company, in canonical frames (docs/data-contract.md).

    Attributes
    ----------
    config : dict
        The content of ``client.yaml`` (validates with
        :class:`crmkit.settings.client.ClientConfig`),
        but for the profile's :attr:`Profile.judgements`, which :func:`write_workspace` adds.
    customers, transactions, interactions, survey : pandas.DataFrame
        Canonical columns; dates are ``datetime64[ns]`` at day precision.
    archetype : pandas.Series
        The true customer type of every customer (index ``customer_id``, values from
        :data:`ARCHETYPES`). Ground truth for tests; never written to the workspace.
    alive : pandas.Series
        Whether each customer is still a customer at ``as_of`` (bool, index ``customer_id``):
        has not dropped out (non-contractual; the one-off buyers dropped out after their
        purchase) or has a running contract (contractual). Ground truth, never written.
    profile : str
        The profile the client was generated from.
    seed : int
        The seed used.
    """

    config: dict
    customers: pd.DataFrame
    transactions: pd.DataFrame
    interactions: pd.DataFrame
    survey: pd.DataFrame
    archetype: pd.Series
    alive: pd.Series | None = None
    profile: str = ""
    seed: int = 0

    @property
    def as_of(self) -> date:
        """The analysis date of the client."""
        return self.config["as_of"]

    def frames(self) -> dict[str, pd.DataFrame]:
        """The four data frames keyed by file stem."""
        return {"customers": self.customers, "transactions": self.transactions,
                "interactions": self.interactions, "survey": self.survey}


# --------------------------------------------------------------------------------------------
# Vectorised helpers
# --------------------------------------------------------------------------------------------

def _choose(rng: np.random.Generator, rows: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Draw one column index per element, from ``probs[rows[i]]`` (rows of a 2-D table)."""
    cum = np.cumsum(probs, axis=1)
    cum = cum / cum[:, -1:]
    u = rng.random(len(rows))
    idx = (u[:, None] >= cum[rows]).sum(axis=1)
    return np.minimum(idx, probs.shape[1] - 1)


def _table(dists: Sequence[Mapping[str, float]], keys: Sequence[str]) -> np.ndarray:
    """Archetype x key probability table from per-archetype dicts."""
    return np.array([[d.get(k, 0.0) for k in keys] for d in dists], dtype=float)


def _group_positions(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For groups of the given sizes: owner index of every element and its rank in the group."""
    owner = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    rank = np.arange(counts.sum()) - np.repeat(starts, counts)
    return owner, rank


def _sample_days(rng: np.random.Generator, cum: np.ndarray, lo: np.ndarray,
                 hi: np.ndarray) -> np.ndarray:
    """Days in ``[lo, hi]`` (inclusive) drawn from the daily intensity whose cumsum is ``cum``.

    ``cum`` has one more element than there are days (``cum[0] == 0``).
    """
    u = cum[lo] + rng.random(len(lo)) * (cum[hi + 1] - cum[lo])
    day = np.searchsorted(cum, u, side="right") - 1
    return np.clip(day, lo, hi)


def _calendar(profile: Profile, start: np.datetime64, n_days: int) -> dict[str, np.ndarray]:
    """Daily intensity, campaign index and calendar fields of the data window."""
    days = start + np.arange(n_days)
    month_abs = days.astype("datetime64[M]")
    month = month_abs.astype(int) % 12
    dom = (days - month_abs.astype("datetime64[D]")).astype(int) + 1
    dow = (days.astype(int) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    weight = np.asarray(profile.months)[month] * np.asarray(profile.weekdays)[dow]
    campaign = np.full(n_days, -1)
    md = (month + 1) * 100 + dom
    for k, c in enumerate(profile.campaigns):
        on = (md >= c.start[0] * 100 + c.start[1]) & (md <= c.end[0] * 100 + c.end[1])
        campaign[on] = k
        weight = np.where(on, weight * c.boost, weight)
    return {"weight": weight, "cum": np.concatenate([[0.0], np.cumsum(weight)]),
            "campaign": campaign, "month_abs": month_abs.astype(int), "dom": dom}


def _ids(profile: Profile, numbers: np.ndarray) -> np.ndarray:
    """Customer ids as an object array of strings."""
    digits = np.char.zfill((numbers + profile.id_start).astype(str), profile.id_digits)
    return np.char.add(profile.id_prefix, digits).astype(object)


def _next_purchase(rng: np.random.Generator, cum: np.ndarray, after: np.ndarray, upto: int,
                   rate: np.ndarray, year: float) -> np.ndarray:
    """Day of each customer's next purchase after day ``after`` and at most on day ``upto``.

    The first arrival of a Poisson process of yearly ``rate`` in seasonal time (``cum`` is the
    cumsum of the daily intensity, ``year`` the intensity of an average year), conditioned on
    falling in ``(after, upto]``: a truncated exponential, drawn by inverse transform, so the
    draw never needs a retry (and costs no Python loop).
    """
    lo = np.minimum(after + 1, upto)
    span = cum[upto + 1] - cum[lo]
    expected = rate * span / year                 # purchases expected in (after, upto]
    u = rng.random(len(lo))
    safe = np.maximum(expected, 1e-12)
    # P(first arrival before a share f of the span | before its end)
    #   = (1 - exp(-E f)) / (1 - exp(-E)), inverted for f; uniform as E -> 0.
    share = np.where(expected > 1e-9, -np.log1p(u * np.expm1(-safe)) / safe, u)
    day = np.searchsorted(cum, cum[lo] + share * span, side="right") - 1
    return np.clip(day, lo, upto)


class _Bills(NamedTuple):
    """The monthly bills of a contractual client, and how each contract stands at as_of."""

    customer: np.ndarray     # per bill: the customer's position
    day: np.ndarray          # per bill: its day index
    first: np.ndarray        # per bill: the customer's first bill in the window
    active: np.ndarray       # per customer: the contract is still running at as_of
    end_day: np.ndarray      # per customer: the contract's last day (when not active)


def _subscriptions(rng: np.random.Generator, arch: np.ndarray, acq_day: np.ndarray,
                   start: np.datetime64, last: int, alpha: np.ndarray,
                   beta: np.ndarray) -> _Bills:
    """Monthly bills from each contract's start until it ends: shifted-beta-geometric churn.

    A subscriber pays a bill every month on the day of the month they started (or the month's
    last day) and, at each renewal, leaves with a probability theta of their own,
    theta ~ Beta(alpha, beta) of their type (Fader & Hardie 2007). A contract that started
    ``k`` bills before the window opens is in the data because it renewed ``k`` times, so its
    theta is drawn from the survivors' Beta(alpha, beta + k); the number of bills from there on
    is geometric (memoryless given theta). Lapsing subscribers pay at least two bills in the
    window (they renew at least once, then churn at their type's rate); one-off buyers pay a
    single bill. A contract whose next renewal falls after as_of is still running
    (its end is not known yet); the others end the day before the bill they did not pay.
    """
    start_date = start + acq_day
    month0 = start_date.astype("datetime64[M]")
    dom = (start_date - month0.astype("datetime64[D]")).astype(np.int64) + 1
    month0 = month0.astype(np.int64)

    def bill_day(month: np.ndarray, day_of_month: np.ndarray) -> np.ndarray:
        m0 = month.astype("datetime64[M]")
        length = ((m0 + 1).astype("datetime64[D]") - m0.astype("datetime64[D]")).astype(int)
        day = m0.astype("datetime64[D]") + np.minimum(day_of_month, length) - 1
        return (day - start).astype(np.int64)

    window = np.int64(start.astype("datetime64[M]").astype(np.int64))
    m_first = np.maximum(month0, window)
    m_first = m_first + (bill_day(m_first, dom) < 0)          # first bill in the window
    m_last = np.int64((start + last).astype("datetime64[M]").astype(np.int64))
    m_last = m_last - (bill_day(np.full_like(dom, m_last), dom) > last)
    available = np.maximum(m_last - m_first + 1, 1)            # bills due up to as_of
    before = m_first - month0                                  # bills paid before the window
    one_off, lapsing = arch == ONE_OFF, arch == LAPSING
    a = np.where(one_off, 1.0, alpha[arch])
    b = np.where(one_off, 1.0, beta[arch] + before)
    theta = np.clip(rng.beta(a, b), 1e-6, 1.0)
    paid = rng.geometric(theta) + lapsing                      # bills from the first one in
    paid = np.where(one_off, 1, paid)
    active = paid >= available
    count = np.minimum(paid, available)
    owner, rank = _group_positions(count)
    return _Bills(customer=owner, day=bill_day(m_first[owner] + rank, dom[owner]),
                  first=rank == 0, active=active, end_day=bill_day(m_first + count, dom) - 1)


# --------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------

def generate(profile: str, n_customers: int | None = None, seed: int = 0,
             as_of: date = DEFAULT_AS_OF, years: float = 3) -> SyntheticClient:
    """Generate a demo company.

    Parameters
    ----------
    profile : {"retail", "bank", "telecom"}
        Which company: a fashion and home retailer (EUR, English), a Spanish retail bank
        (EUR, Spanish) or a mobile and fibre operator (GBP, English).
    n_customers : int, optional
        Number of customers; default: the profile's demo size.
    seed : int
        Seed of the random generator; the same arguments always give the same frames.
    as_of : datetime.date
        Analysis date: the last day of the data window; no date lies after it.
    years : float
        Length of the data window in years (at least 1).

    Returns
    -------
    SyntheticClient
        The configuration, the canonical frames and the true archetype of every customer.

    Examples
    --------
    >>> client = generate("retail", n_customers=500, seed=1)
    >>> sorted(client.archetype.unique())[:2]
    ['big_spender', 'lapsing']
    """
    known = _profiles.profiles()
    if profile not in known:
        raise ValueError(f"unknown profile {profile!r}; expected one of {', '.join(known)}")
    spec = known[profile]
    n = spec.n_customers if n_customers is None else int(n_customers)
    if n < 1:
        raise ValueError(f"n_customers must be at least 1, got {n}")
    if years < 1:
        raise ValueError(f"years must be at least 1, got {years}")
    rng = np.random.default_rng(seed)
    n_days = int(round(years * 365.25))
    last = n_days - 1                                  # day index of as_of
    start = np.datetime64(as_of, "D") - last
    cal = _calendar(spec, start, n_days)
    cum = cal["cum"]
    mean_weight = cum[-1] / n_days
    beh = spec.behaviours

    def per_arch(attr: str) -> np.ndarray:
        return np.array([getattr(b, attr) for b in beh], dtype=float)

    # --- who, and when they were acquired -----------------------------------------------------
    shares = per_arch("share")
    arch = _choose(rng, np.zeros(n, dtype=int), shares[None, :])
    lo_ago = np.zeros(n, dtype=np.int64)
    hi_ago = np.zeros(n, dtype=np.int64)
    for k, (lo, hi) in _ACQ_AGO.items():
        lo_ago[arch == k] = min(lo, last)
        hi_ago[arch == k] = max(min(lo, last), last if hi is None else hi)
    lapsing = arch == LAPSING
    acq_ago = lo_ago + np.floor(rng.random(n) * (hi_ago - lo_ago + 1)).astype(np.int64)
    # Acquisitions inside the window follow the seasonal intensity too.
    inside = acq_ago <= last
    resampled = last - _sample_days(rng, cum, last - np.minimum(hi_ago, last), last - lo_ago)
    acq_ago = np.where(inside, resampled, acq_ago)
    acq_day = last - acq_ago                    # day index of the acquisition; < 0: before

    # Customer numbers follow acquisition order, as in a real customer register.
    order = np.lexsort((rng.random(n), -acq_ago))
    number = np.empty(n, dtype=np.int64)
    number[order] = np.arange(n)
    ids = _ids(spec, number)

    level = per_arch("spend")[arch] * np.exp(rng.normal(0.0, per_arch("spend_sigma")[arch]))
    # Purchase rates while alive (telecom: add-ons): Poisson, gamma-distributed across customers.
    shape = per_arch("rate_shape")[arch]
    rate = per_arch("rate")[arch] * rng.gamma(shape, 1.0 / shape)
    year = 365.25 * mean_weight                 # seasonal intensity of an average year

    # --- category and product tables ----------------------------------------------------------
    cat_keys = list(spec.categories)
    cats = [spec.categories[c] for c in cat_keys]
    n_prod = np.array([len(c.products) for c in cats])
    prod_offset = np.cumsum(n_prod) - n_prod
    prod_names = np.array([p for c in cats for p, _ in c.products], dtype=object)
    prod_price = np.array([price for c in cats for _, price in c.products], dtype=float)
    cat_mean_price = np.array([np.mean([price for _, price in c.products]) for c in cats])
    base_w = np.array([c.weight for c in cats])
    cat_w = np.empty((5, len(cats)))
    for k, b in enumerate(beh):
        w = base_w if b.categories is None else np.array(
            [b.categories.get(c, 0.0) for c in cat_keys])
        cat_w[k] = w * cat_mean_price ** b.tilt
    cat_margin = np.array([c.margin for c in cats])

    # --- how long each customer stays, and when they buy ---------------------------------------
    contract: _Bills | None = None
    if spec.plans:
        # Subscriptions (telecom): a monthly bill from start to end, shifted-beta-geometric churn.
        beh_alpha = np.array([np.nan if b.churn_alpha is None else b.churn_alpha for b in beh])
        beh_beta = np.array([np.nan if b.churn_beta is None else b.churn_beta for b in beh])
        bills = contract = _subscriptions(rng, arch, acq_day, start, last, beh_alpha,
                                          beh_beta)
        first = np.maximum(acq_day, 0)
        end = np.where(bills.active, last, bills.end_day)
        alive = bills.active

        plan_price = np.array([p.price for p in spec.plans], dtype=float)
        plan_w = np.array([[p.weight * p.price ** b.tilt for p in spec.plans] for b in beh])
        plan = _choose(rng, arch, plan_w)
        b_cust, b_day = bills.customer, bills.day
        b_plan = plan[b_cust]
        b_list = (level[b_cust] * plan_price[b_plan]
                  * np.exp(rng.normal(0.0, spec.bill_sigma, size=len(b_cust))))
        plan_cat = np.array([cat_keys.index(p.category) for p in spec.plans])
        b_cat = plan_cat[b_plan]
        b_first = bills.first & inside[b_cust]

        # Add-ons and devices: Poisson at the type's rate while subscribed, none forced.
        exposure = (cum[end + 1] - cum[first]) / year
        counts = rng.poisson(rate * exposure)
        owner, rank = _group_positions(counts)
        p_cust = owner
        p_day = _sample_days(rng, cum, first[owner], end[owner])
        p_first = np.zeros(len(owner), dtype=bool)
    else:
        # The purchase process: Poisson purchases while alive, exponential lifetimes (Pareto/NBD).
        b_cust = b_day = b_plan = b_cat = np.zeros(0, dtype=np.int64)
        b_list = np.zeros(0)
        b_first = np.zeros(0, dtype=bool)
        # The first purchase in the window: the acquisition, or for a customer acquired before
        # the window (and still alive when it opens) the first purchase of their Poisson process.
        first = np.where(inside, acq_day, _next_purchase(rng, cum, np.full(n, -1), last, rate,
                                                         year))
        # Lapsing customers made a second purchase (the first repeat) before they dropped out.
        second = np.where(lapsing, _next_purchase(rng, cum, first, last, rate, year), first)
        since = second                            # the lifetime runs from here
        # Dropout rate mu ~ Gamma(shape k, rate k * lifetime) per year, mean 1 / lifetime. A
        # customer known to be alive `age` years after acquisition has mu ~ Gamma(k, k *
        # lifetime + age) (the survivors of a gamma mixture of exponentials), so those acquired
        # before the window, or seen again at their second purchase, are drawn from the
        # survivors' distribution rather than the newcomers'.
        mean_life = per_arch("lifetime")[arch]
        k_life = per_arch("lifetime_shape")[arch]
        age = (since - acq_day) / 365.25
        mortal = mean_life > 0
        mu = rng.gamma(k_life, 1.0 / np.where(mortal, k_life * mean_life + age, 1.0))
        life_days = np.minimum(rng.exponential(1.0, n) / mu * 365.25, 100 * 365.0)
        death = np.where(mortal, since + life_days.astype(np.int64), since)
        end = np.minimum(death, last)             # last day a purchase can happen
        alive = mortal & (death > last)

        # Repeat purchases after `since`, until the end: Poisson in seasonal time.
        later = np.minimum(since + 1, last)
        exposure = np.where(end > since, (cum[end + 1] - cum[later]) / year, 0.0)
        n_extra = rng.poisson(rate * exposure)
        forced = 1 + lapsing.astype(np.int64)
        counts = forced + n_extra
        owner, rank = _group_positions(counts)
        p_cust = owner
        p_day = _sample_days(rng, cum, later[owner], np.maximum(end[owner], later[owner]))
        p_day = np.where(rank == 0, first[owner],
                         np.where(lapsing[owner] & (rank == 1), second[owner], p_day))
        p_first = (rank == 0) & inside[owner]
    p_arch = arch[p_cust]
    p_cat = _choose(rng, p_arch, cat_w)
    p_prod = prod_offset[p_cat] + np.floor(rng.random(len(p_cust)) * n_prod[p_cat]).astype(int)
    p_list = (level[p_cust] * prod_price[p_prod]
              * np.exp(rng.normal(0.0, per_arch("line_sigma")[p_arch])))

    # --- promotions -----------------------------------------------------------------------------
    codes = [c.code for c in spec.campaigns] + [spec.welcome[0]]
    discounts = np.array([c.discount for c in spec.campaigns] + [spec.welcome[1]])
    reach = np.array([c.reach for c in spec.campaigns] + [1.0])
    camp = cal["campaign"][p_day]
    takes = (camp >= 0) & (rng.random(len(p_cust)) < per_arch("promo")[p_arch]
                           * reach[np.maximum(camp, 0)])
    promo = np.where(takes, camp, -1)
    welcome_idx = len(codes) - 1
    p_welcome = p_first & (rng.random(len(p_cust)) < per_arch("welcome")[p_arch])
    promo = np.where(p_welcome, welcome_idx, promo)
    b_welcome = b_first & (rng.random(len(b_cust)) < per_arch("welcome")[arch[b_cust]])
    b_promo = np.where(b_welcome, welcome_idx, -1)

    # --- all positive lines ---------------------------------------------------------------------
    cust = np.concatenate([b_cust, p_cust])
    day = np.concatenate([b_day, p_day])
    cat = np.concatenate([b_cat, p_cat])
    product = np.concatenate([np.array([p.product for p in spec.plans], dtype=object)[b_plan]
                              if len(b_plan) else np.zeros(0, dtype=object), prod_names[p_prod]])
    list_price = np.concatenate([b_list, p_list])
    code = np.concatenate([b_promo, promo])
    is_bill = np.concatenate([np.ones(len(b_cust), bool), np.zeros(len(p_cust), bool)])
    disc = np.where(code >= 0, discounts[np.maximum(code, 0)], 0.0)
    amount = np.round(list_price * (1 - disc), 2)
    margin_rate = (cat_margin[cat] * per_arch("margin_factor")[arch[cust]]
                   * rng.uniform(0.9, 1.1, size=len(cust)))
    margin = np.round(list_price * margin_rate - list_price * disc, 2)
    amount = np.maximum(amount, 0.01)

    # --- returns: a few lines come back a few days later, before the customer's end -----------
    p_return = spec.return_rate * per_arch("returns")[arch[cust]]
    back = ~is_bill & (rng.random(len(cust)) < p_return)
    r_idx = np.flatnonzero(back)
    r_day = day[r_idx] + rng.integers(2, 31, size=len(r_idx))
    keep = r_day <= last
    r_idx, r_day = r_idx[keep], r_day[keep]

    cust = np.concatenate([cust, cust[r_idx]])
    day = np.concatenate([day, r_day])
    cat = np.concatenate([cat, cat[r_idx]])
    product = np.concatenate([product, product[r_idx]])
    amount = np.concatenate([amount, -amount[r_idx]])
    margin = np.concatenate([margin, -margin[r_idx]])
    code = np.concatenate([code, np.full(len(r_idx), -1)])
    sort = np.lexsort((np.arange(len(cust)), number[cust], day))
    codes_obj = np.array(codes + [None], dtype=object)   # index -1 -> None
    transactions = pd.DataFrame({
        "customer_id": pd.array(ids[cust[sort]], dtype="str"),
        "date": (start + day[sort]).astype("datetime64[ns]"),
        "amount": amount[sort] + 0.0,
        "product": pd.array(product[sort], dtype="str"),
        "category": pd.array(np.array(cat_keys, dtype=object)[cat[sort]], dtype="str"),
        "margin": margin[sort] + 0.0,
        "promotion": pd.array(codes_obj[code[sort]], dtype="str"),
    })

    # --- customers ------------------------------------------------------------------------------
    cols: dict[str, Any] = {"customer_id": ids}
    for attr in spec.attributes:
        probs = np.array([attr.by_archetype.get(name, attr.probs) for name in ARCHETYPES])
        values = np.array(attr.values, dtype=object)
        cols[attr.column] = values[_choose(rng, arch, probs)]
    acq_date = np.datetime64(as_of, "D") - acq_ago
    cols[spec.since_column] = acq_date.astype("datetime64[Y]").astype(int) + 1970
    if contract is not None:
        # A contractual client's register: when each contract started and, if it has, ended.
        cols["start_date"] = acq_date.astype("datetime64[ns]")
        cols["end_date"] = np.where(contract.active, np.datetime64("NaT", "ns"),
                                    (start + contract.end_day).astype("datetime64[ns]"))
    if spec.category_spend:
        positive = amount > 0
        total = np.bincount(cust[positive], weights=amount[positive], minlength=n)
        recent = positive & (day > last - 365)
        last12 = np.bincount(cust[recent], weights=amount[recent], minlength=n)
        active_years = np.maximum((end - first + 1) / 365.25, 1.0)
        yearly = np.maximum(total / active_years, last12)
        mean_soc = per_arch("share_of_customer")[arch]
        soc = np.clip(rng.beta(mean_soc * 6, (1 - mean_soc) * 6), 0.02, 0.95)
        known = rng.random(n) < np.array([0.6, 0.6, 0.2, 0.35, 0.4])[arch]
        estimate = np.ceil(yearly / soc / 10.0) * 10.0
        cols["category_spend"] = np.where(known & (yearly > 0), estimate, np.nan)
    customers = pd.DataFrame(cols).iloc[np.argsort(number)].reset_index(drop=True)
    customers["customer_id"] = customers["customer_id"].astype("str")
    for attr in spec.attributes:
        customers[attr.column] = customers[attr.column].astype("str")
    archetype = pd.Series(np.array(ARCHETYPES, dtype=object)[arch[np.argsort(number)]],
                          index=pd.Index(customers["customer_id"], name="customer_id"),
                          name="archetype", dtype="str")
    alive_at_end = pd.Series(alive[np.argsort(number)], index=archetype.index, name="alive")

    # --- interactions ---------------------------------------------------------------------------
    # A customer may get in touch from the day they became one (or the window opened: those
    # acquired before were alive then) until a little after their last possible purchase.
    contact_first = np.maximum(acq_day, 0)
    contact_end = np.minimum(end + _CONTACT_TAIL, last)
    years_active = np.maximum((contact_end - contact_first + 1) / 365.25, 0.5)
    n_contacts = rng.poisson(per_arch("contacts")[arch] * years_active)
    owner, _ = _group_positions(n_contacts)
    i_day = contact_first[owner] + np.floor(
        rng.random(len(owner)) * (contact_end[owner] - contact_first[owner] + 1)
    ).astype(np.int64)
    rel_table = _table([b.relationships for b in beh], RELATIONSHIPS)
    rel = _choose(rng, arch[owner], rel_table)
    channel_keys = sorted({c for d in spec.channels.values() for c in d})
    channel_table = _table([spec.channels[r] for r in RELATIONSHIPS], channel_keys)
    channel = _choose(rng, rel, channel_table)
    median = np.array([_profiles.minutes()[r] for r in RELATIONSHIPS])[rel]
    minutes = np.maximum(np.round(median * np.exp(rng.normal(0, 0.5, len(owner))) * 2) / 2, 0.5)
    sort = np.lexsort((np.arange(len(owner)), number[owner], i_day))
    interactions = pd.DataFrame({
        "customer_id": pd.array(ids[owner[sort]], dtype="str"),
        "date": (start + i_day[sort]).astype("datetime64[ns]"),
        "channel": pd.array(np.array(channel_keys, dtype=object)[channel[sort]], dtype="str"),
        "relationship_type": pd.array(np.array(RELATIONSHIPS, dtype=object)[rel[sort]],
                                      dtype="str"),
        "minutes": minutes[sort].astype(float),
    })

    # --- survey ---------------------------------------------------------------------------------
    answers = np.flatnonzero(rng.random(n) < per_arch("survey")[arch])
    answers = answers[np.argsort(number[answers])]
    sat_table = np.array([b.satisfaction for b in beh])
    sat = _choose(rng, arch[answers], sat_table) + 1
    nps = np.clip(np.round(2.2 * sat - 1.5 + rng.normal(0, 1.2, len(answers))), 0, 10)
    nps_missing = rng.random(len(answers)) < 0.08
    pref = _choose(rng, arch[answers], _table([b.preferred for b in beh], RELATIONSHIPS))
    survey = pd.DataFrame({
        "customer_id": pd.array(ids[answers], dtype="str"),
        "satisfaction": sat.astype(np.int64),
        "nps": pd.array(np.where(nps_missing, None, nps.astype(np.int64)), dtype="Int64"),
        "preferred_relationship": pd.array(np.array(RELATIONSHIPS, dtype=object)[pref],
                                           dtype="str"),
    })

    config = copy.deepcopy(dict(spec.config))
    config = {"name": config.pop("name"), "industry": config.pop("industry"),
              "language": config.pop("language"), "currency": config.pop("currency"),
              "as_of": as_of, **config}
    return SyntheticClient(config=config, customers=customers, transactions=transactions,
                           interactions=interactions, survey=survey, archetype=archetype,
                           alive=alive_at_end, profile=profile, seed=seed)


# --------------------------------------------------------------------------------------------
# Writing a workspace
# --------------------------------------------------------------------------------------------

_DIALECT_CSV = {
    "standard": {"sep": ",", "decimal": ".", "encoding": "utf-8", "date_format": "%Y-%m-%d",
                 "lineterminator": "\n"},
    "spanish": {"sep": ";", "decimal": ",", "encoding": "latin-1", "date_format": "%d/%m/%Y",
                "lineterminator": "\r\n"},
    "excel_bom": {"sep": ";", "decimal": ".", "encoding": "utf-8-sig",
                  "date_format": "%Y-%m-%d", "lineterminator": "\r\n"},
}


def _workspace_config(client: SyntheticClient, dialect: str) -> dict:
    config = copy.deepcopy(client.config)
    profile = _profiles.profiles().get(client.profile)
    if profile is not None:
        config.update(copy.deepcopy(dict(profile.judgements)))
    if dialect == "spanish":
        config["csv"] = {"separator": ";", "decimal": ",", "encoding": "latin-1",
                         "date_format": "dayfirst"}
        config["columns"] = {
            file: {c: h for c, h in SPANISH_HEADERS[file].items() if c in frame.columns}
            for file, frame in client.frames().items()}
    return config


def write_workspace(client: SyntheticClient, path: str | os.PathLike,
                    dialect: str = "standard") -> Path:
    """Write a client workspace: ``client.yaml`` and the four CSV files.

    Parameters
    ----------
    client : SyntheticClient
        What :func:`generate` returned.
    path : path-like
        The workspace folder; it must not exist or be empty. Nothing is ever overwritten.
    dialect : {"standard", "spanish", "excel_bom"}
        ``standard``: comma, decimal point, UTF-8, ISO dates, canonical headers, LF.
        ``spanish``: semicolon, decimal comma, Latin-1, dd/mm/yyyy dates, Spanish headers
        (declared in ``columns:`` and ``csv:`` of client.yaml so the workspace loads), CRLF.
        ``excel_bom``: UTF-8 with BOM, semicolon, decimal point, ISO dates, CRLF; nothing
        declared, the loader detects it.

    Returns
    -------
    pathlib.Path
        The workspace folder.

    Raises
    ------
    FileExistsError
        When ``path`` exists and is not an empty folder.
    ValueError
        For an unknown dialect.
    """
    if dialect not in DIALECTS:
        raise ValueError(f"unknown dialect {dialect!r}; expected one of {', '.join(DIALECTS)}")
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise FileExistsError(f"{path} exists and is not an empty folder; nothing was written")
    options = _DIALECT_CSV[dialect]
    config = _workspace_config(client, dialect)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        header = (f"# {config['name']}: a synthetic demo client generated by crmkit.demo.synthetic "
                  f"(profile {client.profile!r}, seed {client.seed}).\n"
                  "# Made-up company and data; any resemblance to a real one is a coincidence.\n")
        text = yaml.safe_dump(config, allow_unicode=True, sort_keys=False, width=100)
        (tmp / "client.yaml").write_text(header + text, encoding="utf-8", newline="\n")
        for name, frame in client.frames().items():
            frame = frame.rename(columns=config.get("columns", {}).get(name, {}))
            frame.to_csv(tmp / f"{name}.csv", index=False, sep=options["sep"],
                         decimal=options["decimal"], encoding=options["encoding"],
                         date_format=options["date_format"],
                         lineterminator=options["lineterminator"])
        if path.exists():
            path.rmdir()
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    """``python -m crmkit.demo.synthetic PROFILE OUT_DIR [--customers N] [--seed S] [--dialect
    D]``."""
    parser = argparse.ArgumentParser(
        prog="python -m crmkit.demo.synthetic",
        description="Write a synthetic demo client workspace (e.g. a big one for benchmarks).")
    known = _profiles.profiles()
    parser.add_argument("profile", choices=list(known), metavar="PROFILE",
                        help="one of: " + ", ".join(known))
    parser.add_argument("out_dir", type=Path, metavar="OUT_DIR",
                        help="workspace folder to create (must not exist or be empty)")
    parser.add_argument("--customers", type=int, default=None, metavar="N",
                        help="number of customers (default: the profile's demo size)")
    parser.add_argument("--seed", type=int, default=0, metavar="S")
    parser.add_argument("--dialect", choices=DIALECTS, default="standard", metavar="D",
                        help="one of: " + ", ".join(DIALECTS))
    parser.add_argument("--as-of", type=date.fromisoformat, default=DEFAULT_AS_OF,
                        metavar="YYYY-MM-DD")
    parser.add_argument("--years", type=float, default=3.0)
    args = parser.parse_args(argv)
    if args.out_dir.exists() and (not args.out_dir.is_dir() or any(args.out_dir.iterdir())):
        print(f"error: {args.out_dir} exists and is not empty; nothing was written",
              file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    try:
        client = generate(args.profile, args.customers, seed=args.seed, as_of=args.as_of,
                          years=args.years)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    t1 = time.perf_counter()
    write_workspace(client, args.out_dir, dialect=args.dialect)
    t2 = time.perf_counter()
    print(f"{client.config['name']} ({args.profile}, seed {args.seed}): "
          f"{len(client.customers):,} customers, {len(client.transactions):,} transactions, "
          f"{len(client.interactions):,} interactions, {len(client.survey):,} survey answers; "
          f"generated in {t1 - t0:.2f} s, written in {t2 - t1:.2f} s to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
