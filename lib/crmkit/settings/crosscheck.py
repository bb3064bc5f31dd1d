"""Checks across the sections of ``client.yaml``: every name one section uses, another defines.

Each section is validated on its own by its schema; what no single section can see is whether
the segment keys under ``relationships:``, ``scenarios:``, ``crm_project.automation.offers`` and
``crm_project.levers`` (the segments a lever aims at, and those won-back customers rejoin) are
segments of the chosen segment map, or whether a channel with its own cost rate is a channel
the client has. A misspelt ``champs:`` would otherwise fall back silently to defaults, or fail
half-way through a run; here it is a problem of ``crmkit check`` (exit 2), with the closest valid
name offered and the message in the client's language.
"""

from __future__ import annotations

from collections.abc import Iterable

from crmkit.core.catalogue import catalogue as relationship_catalogue
from crmkit.core.i18n import t
from crmkit.core.problems import Problem, closest
from crmkit.settings.client import CONFIG_FILE, ClientConfig
from crmkit.settings.segment_maps import OTHER, SegmentMap

__all__ = ["cross_check", "segment_references"]


def segment_references(config: ClientConfig) -> list[tuple[str, str]]:
    """Every segment key ``client.yaml`` names, as ``(key path, segment)`` in file order."""
    refs: list[tuple[str, str]] = []
    rel = config.relationships
    for part in ("current", "expected", "fit", "retention"):
        refs += [(f"relationships.{part}.{key}", key) for key in getattr(rel, part)]
    for i, scenario in enumerate(config.scenarios):
        for j, change in enumerate(scenario.changes):
            segment = getattr(change, "segment", None)
            if segment is not None:
                refs.append((f"scenarios[{i}].changes[{j}].{change.kind}.segment", segment))
    offers = config.crm_project.automation.offers
    refs += [(f"crm_project.automation.offers.{key}", key) for key in offers]
    levers = config.crm_project.levers
    for name, lever in (("retention", levers.retention),
                        ("share_of_customer", levers.share_of_customer),
                        ("reactivation", levers.reactivation)):
        refs += [(f"crm_project.levers.{name}.segments[{i}]", key)
                 for i, key in enumerate(lever.segments or [])]
    refs += [(f"crm_project.levers.retention.by_segment.{key}", key)
             for key in levers.retention.by_segment]
    for key, target in levers.reactivation.rejoin.items():
        refs.append((f"crm_project.levers.reactivation.rejoin.{key}", key))
        refs.append((f"crm_project.levers.reactivation.rejoin.{key}", target))
    return refs


def _unknown(key: str, found: str, valid: Iterable[str], message: str, lang: str,
             **values) -> Problem:
    valid = list(valid)
    text = t(message, lang, path=key, found=found, valid=", ".join(valid), **values)
    guess = closest(found, valid)
    if guess is not None:
        text += t("check_did_you_mean", lang, name=guess)
    return Problem(file=CONFIG_FILE, kind="unknown_reference", message=text)


def cross_check(config: ClientConfig, segment_map: SegmentMap | None,
                channels: Iterable[str] = ()) -> list[Problem]:
    """The problems between the sections of ``client.yaml``, in the client's language.

    Parameters
    ----------
    config : ClientConfig
    segment_map : SegmentMap or None
        The map of ``segmentation.map``; None when the segments are not known before the data
        is segmented (``method: clustering``), and segment keys are then not checked.
    channels : iterable of str
        Channels of the client's interactions.csv; with the catalogue's typical channels, the
        channels a ``channel_cost_per_minute`` may name.

    Returns
    -------
    list of Problem
    """
    lang = config.language
    problems: list[Problem] = []
    if segment_map is not None:
        valid = [*segment_map.keys, OTHER]
        for key, segment in segment_references(config):
            if segment not in valid:
                problems.append(_unknown(key, segment, segment_map.keys,
                                         "check_unknown_segment", lang, map=segment_map.key))
    known = {c for entry in relationship_catalogue().values() for c in entry.channels}
    known |= {str(c) for c in channels}
    for type_key, drivers in config.relationships.cost_drivers.items():
        for channel in drivers.channel_cost_per_minute:
            if channel not in known:
                key = f"relationships.cost_drivers.{type_key}.channel_cost_per_minute"
                problems.append(_unknown(key, channel, sorted(known), "check_unknown_channel",
                                         lang))
    return problems
