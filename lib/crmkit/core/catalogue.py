"""The catalogue of customer-relationship types (Osterwalder) that every stage shares.

Personal assistance, dedicated personal assistance, self-service, automated services, communities
and co-creation: their keys (fixed by the data contract), the spellings accepted in client files,
and ``data/relationship_types.yaml`` (names and descriptions in both languages, typical channels,
default time-driven cost drivers, the next cheaper type down the service ladder).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import yaml

from crmkit.core import paths
from crmkit.core.i18n import LANGUAGES
from crmkit.core.problems import closest

#: The relationship-type keys, in the catalogue's order (the data contract fixes them; the
#: workspace loader accepts the same keys in interactions.csv and survey.csv).
TYPES: tuple[str, ...] = (
    "personal_assistance",
    "dedicated_personal_assistance",
    "self_service",
    "automated_services",
    "communities",
    "co_creation",
)
#: The time-driven cost drivers every type carries.
DRIVER_FIELDS = ("minutes_per_interaction", "interactions_per_year", "cost_per_minute",
                 "fixed_yearly_cost")
CATALOGUE_FILE = paths.DATA / "relationship_types.yaml"
#: Channel label of activity that is assumed from the catalogue's drivers, not logged.
ASSUMED_CHANNEL = "(assumed)"


# --------------------------------------------------------------------------------------------
# The catalogue
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RelationshipType:
    """One relationship type of the catalogue.

    Attributes
    ----------
    key : str
        E.g. ``"personal_assistance"``.
    name, description : dict
        ``{"en": …, "es": …}``.
    channels : tuple of str
        Typical channels (client channel names vary; these are only a guide).
    step_down : str or None
        The next type down the service ladder (None for the cheapest).
    drivers : dict
        Default ``minutes_per_interaction``, ``interactions_per_year``, ``cost_per_minute`` and
        ``fixed_yearly_cost``.
    """

    key: str
    name: dict[str, str]
    description: dict[str, str]
    channels: tuple[str, ...]
    step_down: str | None
    drivers: dict[str, float]


@functools.cache
def _catalogue_from(path: Path) -> dict[str, RelationshipType]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if list(raw) != list(TYPES):
        raise ValueError(f"{path.name} lists {list(raw)}; expected exactly {list(TYPES)} in order")
    types = {}
    for key, entry in raw.items():
        for part in ("name", "description"):
            missing = [lang for lang in LANGUAGES if not (entry.get(part) or {}).get(lang)]
            if missing:
                raise ValueError(f"{path.name}: {key}.{part} lacks {', '.join(missing)}")
        values = entry.get("drivers") or {}
        if sorted(values) != sorted(DRIVER_FIELDS):
            raise ValueError(f"{path.name}: {key}.drivers has {sorted(values)}; "
                             f"expected {list(DRIVER_FIELDS)}")
        step = entry.get("step_down")
        if step is not None and step not in TYPES:
            raise ValueError(f"{path.name}: {key}.step_down is {step!r}; expected a type key")
        types[key] = RelationshipType(
            key=key, name=dict(entry["name"]), description=dict(entry["description"]),
            channels=tuple(entry.get("channels") or ()), step_down=step,
            drivers={k: float(values[k]) for k in DRIVER_FIELDS})
    return types


def catalogue(path: str | Path | None = None) -> dict[str, RelationshipType]:
    """The relationship types, ``key -> RelationshipType``, in the catalogue's order.

    Parameters
    ----------
    path : path, optional
        Another catalogue file (default ``data/relationship_types.yaml``).
    """
    return _catalogue_from(Path(path) if path is not None else CATALOGUE_FILE)


def type_name(key: str, lang: str) -> str:
    """A relationship type's name in ``lang``; an unknown key is returned as it is."""
    entry = catalogue().get(key)
    return entry.name[lang] if entry is not None else str(key)


def type_names(lang: str) -> dict[str, str]:
    """``key -> name`` of every type in ``lang`` (to rename columns or index labels)."""
    return {key: entry.name[lang] for key, entry in catalogue().items()}


def _unknown_type_message(unknown: list[str]) -> str:
    names = ", ".join(repr(u) for u in unknown)
    guesses = [f"'{g}'" for g in (closest(u, TYPES) for u in unknown) if g]
    hint = f" (did you mean {', '.join(guesses)}?)" if guesses else ""
    return (f"relationship type keys only: {names} "
            f"{'is not one' if len(unknown) == 1 else 'are not'}{hint}; valid types are "
            + ", ".join(TYPES))


def _check_types(keys) -> None:
    unknown = [str(k) for k in keys if k not in TYPES]
    if unknown:
        raise ValueError(_unknown_type_message(unknown))


#: Other spellings accepted for relationship types (after lower-casing, dropping accents and
#: turning spaces and hyphens into underscores), English and Spanish.
RELATIONSHIP_ALIASES = {
    **{key: key for key in TYPES},
    "selfservice": "self_service",
    "automated_service": "automated_services",
    "community": "communities",
    "cocreation": "co_creation",
    "asistencia_personal": "personal_assistance",
    "asistencia_personal_dedicada": "dedicated_personal_assistance",
    "asistencia_personal_exclusiva": "dedicated_personal_assistance",
    "autoservicio": "self_service",
    "servicios_automatizados": "automated_services",
    "servicio_automatizado": "automated_services",
    "comunidades": "communities",
    "comunidad": "communities",
    "co_creacion": "co_creation",
    "cocreacion": "co_creation",
}

#: The name the workspace loader has used for the keys.
RELATIONSHIP_TYPES = TYPES
