"""The demo companies' profiles: ``data/demo/profiles/*.yaml`` read into frozen dataclasses.

A profile is everything that makes one demo company of :mod:`crmkit.demo.synthetic`: its
product categories, customer types, seasonality, promotions, customer attributes, the content
of its ``client.yaml`` and the consultant's judgements. They are data files, so that a
consultant or a trainer can read and change a company without reading Python:

``common.yaml``
    What the companies share: the base behaviour of each customer type (archetype), the channel
    of each relationship type (with ``face_to_face`` standing for the company's store or
    branch) and the median minutes of a contact.
``retail.yaml``, ``bank.yaml``, ``telecom.yaml``
    One company each; a customer type gives its ``share`` and whatever differs from the base
    behaviour of ``common.yaml``.

Any other ``*.yaml`` file of the folder is one more company, after those three. Every file is
checked as it is read: a mistake raises :class:`ProfileError` naming the file and the key.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from crmkit.core.paths import DATA
from crmkit.core.problems import closest

__all__ = [
    "ARCHETYPES",
    "FOLDER",
    "NAMES",
    "RELATIONSHIPS",
    "Attribute",
    "Behaviour",
    "Campaign",
    "Category",
    "Common",
    "Plan",
    "Profile",
    "ProfileError",
    "minutes",
    "profiles",
    "read_common",
    "read_profile",
    "read_profiles",
]

#: The customer types, in the order used for every archetype-indexed array.
ARCHETYPES: tuple[str, ...] = ("loyal", "big_spender", "one_off", "lapsing", "new")

#: The relationship-type catalogue keys (Osterwalder).
RELATIONSHIPS: tuple[str, ...] = (
    "personal_assistance", "dedicated_personal_assistance", "self_service",
    "automated_services", "communities", "co_creation")

#: The folder of the profile files.
FOLDER: Path = DATA / "demo" / "profiles"

#: The companies, in this order (then any other profile file of the folder, alphabetically).
NAMES: tuple[str, ...] = ("retail", "bank", "telecom")

#: The file of what the companies share.
COMMON = "common.yaml"


class ProfileError(ValueError):
    """A profile file that cannot be used; the message names the file and the key."""

    def __init__(self, file: str | Path, key: str, message: str):
        self.file, self.key = str(file), key
        super().__init__(f"{file}: {key}: {message}" if key else f"{file}: {message}")


# --------------------------------------------------------------------------------------------
# What a profile is made of
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Behaviour:
    """How one archetype behaves in one profile.

    Parameters
    ----------
    share : float
        Mixture proportion of the archetype.
    rate : float
        Mean purchases (telecom: add-on purchases) per year while active.
    rate_shape : float
        Shape of the gamma distribution of individual rates (higher = steadier).
    lifetime : float
        Expected lifetime in years, after the first purchase, of a customer with the type's
        mean dropout rate: each customer's dropout rate is gamma distributed with mean
        ``1 / lifetime`` (the Pareto/NBD story). 0 = never buys again (the one-off buyers).
    lifetime_shape : float
        Shape of the gamma distribution of dropout rates (higher = more alike).
    spend : float
        Median individual spend level, a multiplier of the product prices.
    spend_sigma, line_sigma : float
        Lognormal sigma of the spend level between customers and of a line around it.
    tilt : float
        Exponent on the category's mean price in the category weights (>0 = dear categories).
    promo, welcome : float
        Probability of using a running campaign's code; of using the welcome code on the
        acquisition purchase.
    margin_factor : float
        Multiplier of the category margin rate.
    returns : float
        Multiplier of the profile's return rate.
    contacts : float
        Interactions per year while active.
    relationships : dict
        Relationship type -> probability for interactions.
    satisfaction : tuple of 5 floats
        Probabilities of satisfaction 1 … 5.
    preferred : dict
        Relationship type -> probability of being the preferred one in the survey.
    survey : float
        Probability of answering the survey.
    share_of_customer : float
        Mean share of the customer's category spend that goes to the client.
    categories : dict, optional
        Category -> weight replacing the profile's base weights for this archetype.
    churn_alpha, churn_beta : float, optional
        Subscriptions (profiles with ``plans``): each subscriber's monthly churn probability
        is Beta(churn_alpha, churn_beta) distributed (the shifted-beta-geometric story); mean
        churn ``churn_alpha / (churn_alpha + churn_beta)``. Not used by the one-off buyers, who
        pay a single bill.
    """

    share: float
    rate: float
    rate_shape: float
    lifetime: float
    lifetime_shape: float
    spend: float
    spend_sigma: float
    line_sigma: float
    tilt: float
    promo: float
    welcome: float
    margin_factor: float
    returns: float
    contacts: float
    relationships: Mapping[str, float]
    satisfaction: tuple[float, float, float, float, float]
    preferred: Mapping[str, float]
    survey: float
    share_of_customer: float
    categories: Mapping[str, float] | None = None
    churn_alpha: float | None = None
    churn_beta: float | None = None


@dataclass(frozen=True)
class Category:
    """A product category: margin rate, base weight among purchases, products with prices."""

    margin: float
    weight: float
    products: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class Campaign:
    """A yearly promotion: code, first and last (month, day), discount, reach, demand boost."""

    code: str
    start: tuple[int, int]
    end: tuple[int, int]
    discount: float
    reach: float = 1.0
    boost: float = 1.0


@dataclass(frozen=True)
class Attribute:
    """A typological column of customers.csv with archetype-dependent probabilities."""

    column: str
    values: tuple[str, ...]
    probs: tuple[float, ...]
    by_archetype: Mapping[str, tuple[float, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """A monthly subscription plan (telecom)."""

    product: str
    category: str
    price: float
    weight: float


@dataclass(frozen=True)
class Profile:
    """Everything that makes one demo company."""

    key: str
    n_customers: int
    id_prefix: str
    id_start: int
    id_digits: int
    categories: Mapping[str, Category]
    behaviours: tuple[Behaviour, ...]
    months: tuple[float, ...]
    weekdays: tuple[float, ...]
    campaigns: tuple[Campaign, ...]
    welcome: tuple[str, float]
    return_rate: float
    attributes: tuple[Attribute, ...]
    since_column: str
    category_spend: bool
    channels: Mapping[str, Mapping[str, float]]
    config: Mapping[str, Any]
    plans: tuple[Plan, ...] = ()
    bill_sigma: float = 0.05
    #: The consultant's sections of client.yaml for workbooks 03 and 04 (``relationships``,
    #: ``scenarios``). They name segment keys of the rfm_ten map, so they belong to the written
    #: workspace (:func:`~crmkit.demo.synthetic.write_workspace` adds them), not to the
    #: generated company's config.
    judgements: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Common:
    """What the companies share (``common.yaml``)."""

    #: Archetype -> the base value of every :class:`Behaviour` field but ``share`` and
    #: ``categories``.
    behaviours: Mapping[str, Mapping[str, Any]]
    #: Relationship type -> channel -> probability; ``face_to_face`` is the company's own.
    channels: Mapping[str, Mapping[str, float]]
    #: Relationship type -> median minutes of a contact.
    minutes: Mapping[str, float]


# --------------------------------------------------------------------------------------------
# Checking what was read
# --------------------------------------------------------------------------------------------

_PROBABILITIES = {"share", "promo", "welcome", "survey", "share_of_customer"}
_WEIGHTS = {"relationships": RELATIONSHIPS, "preferred": RELATIONSHIPS, "categories": None}
_BEHAVIOUR_FIELDS = tuple(f.name for f in fields(Behaviour))
#: Behaviour keys a company may give, and common.yaml may but need not: the category weights
#: and the subscription churn (only companies with plans use it).
_OPTIONAL_FIELDS = ("categories", "churn_alpha", "churn_beta")
_BASE_FIELDS = tuple(f for f in _BEHAVIOUR_FIELDS if f != "share" and f not in _OPTIONAL_FIELDS)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a yes/no)"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the text {value!r}"
    return repr(value)


class _Checker:
    """Checks one loaded YAML document; every mistake raises :class:`ProfileError`."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, key: str, message: str):
        raise ProfileError(self.path, key, message)

    def mapping(self, value: Any, key: str, required: tuple[str, ...] = (),
                optional: tuple[str, ...] | None = ()) -> dict:
        """A mapping with these keys (``optional=None``: any other key is allowed)."""
        if not isinstance(value, dict):
            self.fail(key, f"expected a mapping, got {_kind(value)}")
        where = f"{key}." if key else ""
        if optional is not None:
            allowed = (*required, *optional)
            for name in value:
                if name not in allowed:
                    hint = closest(str(name), allowed)
                    self.fail(f"{where}{name}", "unknown key"
                              + (f" (did you mean {hint!r}?)" if hint else "")
                              + f"; expected one of {', '.join(allowed)}")
        for name in required:
            if name not in value:
                self.fail(f"{where}{name}" if where else name, "missing")
        return value

    def number(self, value: Any, key: str, low: float | None = 0.0, high: float | None = None,
               positive: bool = False) -> int | float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(key, f"expected a number, got {_kind(value)}")
        if value != value:
            self.fail(key, "expected a number, got nan")
        if low is not None and (value < low or (positive and value <= low)):
            self.fail(key, f"expected a number {'above' if positive else 'at least'} {low}, "
                           f"got {value!r}")
        if high is not None and value > high:
            self.fail(key, f"expected a number at most {high}, got {value!r}")
        return value

    def integer(self, value: Any, key: str, low: int = 0, high: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"expected a whole number, got {_kind(value)}")
        return self.number(value, key, low=low, high=high)

    def text(self, value: Any, key: str, empty: bool = False) -> str:
        if not isinstance(value, str) or (not empty and not value.strip()):
            self.fail(key, f"expected a text, got {_kind(value)}"
                           + (" (quote it)" if isinstance(value, bool | int | float) else ""))
        return value

    def flag(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            self.fail(key, f"expected true or false, got {_kind(value)}")
        return value

    def sequence(self, value: Any, key: str, length: int | None = None,
                 nonempty: bool = True) -> list:
        if not isinstance(value, list):
            self.fail(key, f"expected a list, got {_kind(value)}")
        if length is not None and len(value) != length:
            self.fail(key, f"expected {length} values, got {len(value)}")
        if nonempty and not value:
            self.fail(key, "expected at least one value, got an empty list")
        return value

    def numbers(self, value: Any, key: str, length: int | None = None,
                high: float | None = None) -> tuple:
        items = self.sequence(value, key, length)
        return tuple(self.number(v, f"{key}[{i}]", high=high) for i, v in enumerate(items))

    def texts(self, value: Any, key: str) -> tuple[str, ...]:
        items = self.sequence(value, key)
        return tuple(self.text(v, f"{key}[{i}]") for i, v in enumerate(items))

    def weights(self, value: Any, key: str, allowed: tuple[str, ...] | None = None,
                required: tuple[str, ...] = (), positive: bool = False) -> dict:
        """A mapping name -> non-negative number (names among ``allowed``, when given)."""
        self.mapping(value, key, optional=None)
        if not value:
            self.fail(key, "expected at least one entry, got an empty mapping")
        out = {}
        for name, weight in value.items():
            self.text(name, f"{key}.{name}")
            if allowed is not None and name not in allowed:
                hint = closest(name, allowed)
                self.fail(f"{key}.{name}", "unknown name"
                          + (f" (did you mean {hint!r}?)" if hint else "")
                          + f"; expected one of {', '.join(allowed)}")
            out[name] = self.number(weight, f"{key}.{name}", positive=positive)
        self.mapping(value, key, required=required, optional=None)
        return out

    def behaviour_field(self, name: str, value: Any, key: str,
                        categories: tuple[str, ...] | None = None) -> Any:
        if name in _WEIGHTS:
            return self.weights(value, key, _WEIGHTS[name] or categories)
        if name == "satisfaction":
            return self.numbers(value, key, length=5, high=1.0)
        if name in ("rate_shape", "lifetime_shape", "churn_alpha", "churn_beta"):
            return self.number(value, key, positive=True)
        if name == "tilt":
            return self.number(value, key, low=None)
        return self.number(value, key, high=1.0 if name in _PROBABILITIES else None)


def _load(path: Path) -> Any:
    if not path.is_file():
        raise ProfileError(path, "", "no such file")
    try:
        with path.open(encoding="utf-8") as stream:
            return yaml.safe_load(stream)
    except yaml.YAMLError as exc:
        raise ProfileError(path, "", f"not valid YAML: {exc}") from None


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------

def read_common(folder: str | Path = FOLDER) -> Common:
    """Read and check ``common.yaml`` of a profile folder."""
    path = Path(folder) / COMMON
    check = _Checker(path)
    doc = check.mapping(_load(path), "", required=("behaviours", "channels", "minutes"))
    base = check.mapping(doc["behaviours"], "behaviours", required=ARCHETYPES)
    behaviours = {}
    for name in ARCHETYPES:
        key = f"behaviours.{name}"
        spec = check.mapping(base[name], key, required=_BASE_FIELDS,
                             optional=_OPTIONAL_FIELDS)
        behaviours[name] = {f: check.behaviour_field(f, v, f"{key}.{f}") for f, v in spec.items()}
    channels = check.mapping(doc["channels"], "channels", required=RELATIONSHIPS)
    channels = {r: check.weights(channels[r], f"channels.{r}") for r in channels}
    minutes = check.weights(doc["minutes"], "minutes", RELATIONSHIPS, required=RELATIONSHIPS,
                            positive=True)
    return Common(behaviours=behaviours, channels=channels, minutes=minutes)


_PROFILE_REQUIRED = (
    "key", "n_customers", "id_prefix", "id_start", "id_digits", "categories", "behaviours",
    "months", "weekdays", "campaigns", "welcome", "return_rate", "attributes", "since_column",
    "category_spend", "face_to_face", "config")
_PROFILE_OPTIONAL = ("plans", "bill_sigma", "judgements")


def read_profile(path: str | Path, common: Common | None = None) -> Profile:
    """Read and check one company's profile file.

    Parameters
    ----------
    path : path-like
        The profile file; its name (without ``.yaml``) must be its ``key``.
    common : Common, optional
        What the companies share; default: ``common.yaml`` beside the file.

    Raises
    ------
    ProfileError
        When the file is missing, is not valid YAML or has a missing, unknown or wrong key.
    """
    path = Path(path)
    if common is None:
        common = read_common(path.parent)
    check = _Checker(path)
    doc = check.mapping(_load(path), "", _PROFILE_REQUIRED, _PROFILE_OPTIONAL)
    key = check.text(doc["key"], "key")
    if key != path.stem:
        check.fail("key", f"is {key!r} but the file is {path.name}; they must match")

    categories = {}
    for name, spec in check.mapping(doc["categories"], "categories", optional=None).items():
        where = f"categories.{name}"
        check.text(name, where)
        spec = check.mapping(spec, where, required=("margin", "weight", "products"))
        products = check.weights(spec["products"], f"{where}.products", positive=True)
        categories[name] = Category(
            margin=check.number(spec["margin"], f"{where}.margin", high=1.0),
            weight=check.number(spec["weight"], f"{where}.weight"),
            products=tuple(products.items()))
    if not categories:
        check.fail("categories", "expected at least one category")
    cat_keys = tuple(categories)

    behaviours = []
    given = check.mapping(doc["behaviours"], "behaviours", required=ARCHETYPES)
    for name in ARCHETYPES:
        where = f"behaviours.{name}"
        spec = check.mapping(given[name], where, required=("share",),
                             optional=tuple(f for f in _BEHAVIOUR_FIELDS if f != "share"))
        values = dict(common.behaviours[name])
        values["share"] = spec["share"]
        for f, v in spec.items():
            values[f] = check.behaviour_field(f, v, f"{where}.{f}", cat_keys)
        behaviours.append(Behaviour(**values))

    campaigns = []
    for i, spec in enumerate(check.sequence(doc["campaigns"], "campaigns", nonempty=False)):
        where = f"campaigns[{i}]"
        spec = check.mapping(spec, where, required=("code", "start", "end", "discount"),
                             optional=("reach", "boost"))
        days = {}
        for end in ("start", "end"):
            pair = check.sequence(spec[end], f"{where}.{end}", length=2)
            days[end] = (check.integer(pair[0], f"{where}.{end}[0] (month)", low=1, high=12),
                         check.integer(pair[1], f"{where}.{end}[1] (day)", low=1, high=31))
        extra = {f: check.number(spec[f], f"{where}.{f}", high=1.0 if f == "reach" else None)
                 for f in ("reach", "boost") if f in spec}
        campaigns.append(Campaign(code=check.text(spec["code"], f"{where}.code"), **days,
                                  discount=check.number(spec["discount"], f"{where}.discount",
                                                        high=1.0), **extra))

    welcome = check.mapping(doc["welcome"], "welcome", required=("code", "discount"))
    welcome = (check.text(welcome["code"], "welcome.code"),
               check.number(welcome["discount"], "welcome.discount", high=1.0))

    attributes = []
    for i, spec in enumerate(check.sequence(doc["attributes"], "attributes", nonempty=False)):
        where = f"attributes[{i}]"
        spec = check.mapping(spec, where, required=("column", "values", "probs"),
                             optional=("by_archetype",))
        values = check.texts(spec["values"], f"{where}.values")
        probs = check.numbers(spec["probs"], f"{where}.probs", length=len(values))
        by_archetype = {}
        if "by_archetype" in spec:
            table = check.mapping(spec["by_archetype"], f"{where}.by_archetype",
                                  optional=ARCHETYPES)
            by_archetype = {a: check.numbers(p, f"{where}.by_archetype.{a}", length=len(values))
                            for a, p in table.items()}
        attributes.append(Attribute(column=check.text(spec["column"], f"{where}.column"),
                                    values=values, probs=probs, by_archetype=by_archetype))

    face = check.text(doc["face_to_face"], "face_to_face")
    channels = {}
    for relationship, table in common.channels.items():
        if face in table and face != "face_to_face":
            check.fail("face_to_face", f"{face!r} is already a channel of {relationship} in "
                                       f"{COMMON}; expected another channel, e.g. store")
        channels[relationship] = {face if c == "face_to_face" else c: p for c, p in table.items()}

    plans = []
    for i, spec in enumerate(check.sequence(doc.get("plans", []), "plans", nonempty=False)):
        where = f"plans[{i}]"
        spec = check.mapping(spec, where, required=("product", "category", "price", "weight"))
        category = check.text(spec["category"], f"{where}.category")
        if category not in categories:
            check.fail(f"{where}.category", f"{category!r} is not one of the categories "
                                            f"({', '.join(cat_keys)})")
        plans.append(Plan(product=check.text(spec["product"], f"{where}.product"),
                          category=category,
                          price=check.number(spec["price"], f"{where}.price", positive=True),
                          weight=check.number(spec["weight"], f"{where}.weight")))

    config = check.mapping(doc["config"], "config",
                           required=("name", "industry", "language", "currency"), optional=None)
    for name in ("name", "industry", "language", "currency"):
        check.text(config[name], f"config.{name}")
    # A company with plans is a contractual client (bills from start_date to end_date), and
    # only one; each subscribing type needs its churn (the one-off buyers pay a single bill).
    contractual = config.get("business_model", "non_contractual") == "contractual"
    if contractual != bool(plans):
        check.fail("config.business_model",
                   "expected contractual with plans (subscriptions) and non_contractual "
                   f"without, got {config.get('business_model', 'non_contractual')!r} "
                   f"with {len(plans)} plans")
    if plans:
        for name, behaviour in zip(ARCHETYPES, behaviours, strict=True):
            for f in ("churn_alpha", "churn_beta"):
                if name != "one_off" and getattr(behaviour, f) is None:
                    check.fail(f"behaviours.{name}.{f}", "missing; a company with plans needs "
                                                         "the monthly churn of every type")
    extra = {}
    if "bill_sigma" in doc:
        extra["bill_sigma"] = check.number(doc["bill_sigma"], "bill_sigma")
    if "judgements" in doc:
        extra["judgements"] = check.mapping(doc["judgements"], "judgements", optional=None)

    return Profile(
        key=key,
        n_customers=check.integer(doc["n_customers"], "n_customers", low=1),
        id_prefix=check.text(doc["id_prefix"], "id_prefix", empty=True),
        id_start=check.integer(doc["id_start"], "id_start"),
        id_digits=check.integer(doc["id_digits"], "id_digits", low=1),
        categories=categories,
        behaviours=tuple(behaviours),
        months=check.numbers(doc["months"], "months", length=12),
        weekdays=check.numbers(doc["weekdays"], "weekdays", length=7),
        campaigns=tuple(campaigns),
        welcome=welcome,
        return_rate=check.number(doc["return_rate"], "return_rate", high=1.0),
        attributes=tuple(attributes),
        since_column=check.text(doc["since_column"], "since_column"),
        category_spend=check.flag(doc["category_spend"], "category_spend"),
        channels=channels,
        config=config,
        plans=tuple(plans),
        **extra,
    )


def read_profiles(folder: str | Path = FOLDER) -> dict[str, Profile]:
    """Read every company of a profile folder: :data:`NAMES` first, then any other file."""
    folder = Path(folder)
    common = read_common(folder)
    others = sorted(p.stem for p in folder.glob("*.yaml")
                    if p.name != COMMON and p.stem not in NAMES)
    return {name: read_profile(folder / f"{name}.yaml", common) for name in (*NAMES, *others)}


@functools.cache
def profiles() -> dict[str, Profile]:
    """The demo companies of :data:`FOLDER`, read once."""
    return read_profiles(FOLDER)


@functools.cache
def minutes() -> dict[str, float]:
    """Median minutes of a contact by relationship type (``common.yaml``), read once."""
    return dict(read_common(FOLDER).minutes)
