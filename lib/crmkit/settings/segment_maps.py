"""Segment maps: named segments defined by rules, kept as YAML a consultant can read and edit.

There is no average customer, only types of customers; a segment map says which types there
are and how a customer is recognised as one. Two maps ship with crmkit, in
``data/segment_maps/``:

``rfm_ten``
    The widely used ten-segment map on the 5 x 5 grid of recency and frequency scores
    (champions, loyal, potential loyalists, new customers, promising, need attention, about to
    sleep, at risk, can't lose them, hibernating).
``managerial``
    Active, warm, cold and inactive customers by days since their last purchase, the active and
    warm ones split by value, the active ones whose first purchase is recent kept apart as new.

A client picks one, or points to their own copy, in ``client.yaml``
(``segmentation: {map: rfm_ten | managerial | path/to/custom.yaml}``).

Each segment has a key, a name and a one-line description in English and Spanish, and a rule.
A map is a partition: every cell of its grid (every R x F score pair, or every combination of
recency band, newness and value) must be claimed by exactly one segment. :func:`load_map`
checks this and names every cell claimed twice or not at all, so a mistake in a custom map is
caught before it silently drops or double-counts customers.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from crmkit.core import paths
from crmkit.core.i18n import LANGUAGES, catalogue, t
from crmkit.core.problems import LANGUAGE, Problem, ProblemList, WorkspaceError, problem_text

#: The score column each dimension of a ``scores`` map reads (see
#: :func:`crmkit.analysis.rfm.rfm_scores`).
SCORE_COLUMNS = {"r": "r_score", "f": "f_score", "m": "m_score"}
#: Folder of the bundled maps.
MAPS_DIR = paths.DATA / "segment_maps"
#: Key of the pseudo-segment of customers no rule matches.
OTHER = "other"
KINDS = ("scores", "managerial")
#: Levels of the managerial map's newness and value dimensions.
NEW_LEVELS = ("yes", "no")
VALUE_LEVELS = ("high", "low")
VALUE_MEASURES = ("monetary", "avg_order")
_KEY = re.compile(r"[a-z][a-z0-9_]*")


def bundled_maps() -> list[str]:
    """Names of the maps shipped in ``data/segment_maps/``."""
    return sorted(p.stem for p in MAPS_DIR.glob("*.yaml"))


@dataclass(frozen=True)
class Segment:
    """One segment of a map: key, names and descriptions per language, and its rule as written."""

    key: str
    name: dict[str, str]
    description: dict[str, str]
    rule: Any


@dataclass(frozen=True)
class Dimension:
    """An axis of a map's grid: ``r``/``f``/``m`` scores 1..scale, or a managerial one."""

    name: str
    levels: tuple

    def cell(self, index: int) -> str:
        label = self.name.upper() if self.name in SCORE_COLUMNS else self.name
        return f"{label}={self.levels[index]}"


@dataclass
class SegmentMap:
    """A validated segment map (see :func:`load_map`).

    Attributes
    ----------
    key : str
        The map's key (``rfm_ten``, ``managerial`` or a custom one).
    kind : {"scores", "managerial"}
    title, description : dict
        Per language.
    segments : list of Segment
        In the order of the file (the order tables and charts use).
    dimensions : list of Dimension
        The axes of the grid the rules partition.
    lookup : ndarray
        Index of the segment claiming each cell of the grid, shape ``(len(levels), ...)``.
    scale : int or None
        Score scale (5) for a ``scores`` map.
    bands : list of (str, int or None)
        Recency bands of a ``managerial`` map: key and largest recency in days (None: no limit).
    new_days : int or None
        A ``managerial`` customer is new when their first purchase is this recent.
    value : dict or None
        ``{"measure": "avg_order" | "monetary", "quantile": q}`` or ``{..., "amount": x}``.
    source : str
        Where the map was read from.
    """

    key: str
    kind: str
    title: dict[str, str]
    description: dict[str, str]
    segments: list[Segment]
    dimensions: list[Dimension]
    lookup: np.ndarray
    scale: int | None = None
    bands: list[tuple[str, int | None]] = field(default_factory=list)
    new_days: int | None = None
    value: dict[str, Any] | None = None
    source: str = ""

    @property
    def keys(self) -> list[str]:
        """Segment keys in map order (without ``other``)."""
        return [s.key for s in self.segments]

    def segment(self, key: str) -> Segment:
        for s in self.segments:
            if s.key == key:
                return s
        raise KeyError(f"no segment '{key}' in map '{self.key}'; it has {', '.join(self.keys)}")

    def __repr__(self) -> str:
        return f"SegmentMap({self.key!r}, kind={self.kind!r}, segments={self.keys})"


# ---- loading and validation ------------------------------------------------------------------

def load_map(name_or_path: str | Path, *, workspace: str | Path | None = None) -> SegmentMap:
    """Load and validate a bundled map by name, or a custom map from a YAML file.

    Parameters
    ----------
    name_or_path : str or Path
        ``"rfm_ten"``, ``"managerial"`` (see :func:`bundled_maps`), or the path of a YAML file;
        a relative path is taken from ``workspace`` (the client's folder) when given.
    workspace : str or Path, optional
        The client workspace a custom map belongs to.

    Returns
    -------
    SegmentMap

    Raises
    ------
    ValueError
        When a bundled map is unknown or invalid (a defect of crmkit itself).
    WorkspaceError
        When a custom map is missing or invalid, or ``client.yaml`` names an unknown bundled
        map: every problem is listed, overlapping and uncovered cells by name, e.g.
        ``R=2,F=3 is claimed by 'at_risk' and 'need_attention'``.
    """
    text = str(name_or_path)
    is_path = isinstance(name_or_path, Path) or text.lower().endswith((".yaml", ".yml")) \
        or "/" in text or "\\" in text
    if not is_path:
        path = MAPS_DIR / f"{text}.yaml"
        if not path.is_file():
            message = problem_text("map_not_bundled", name=text, maps=", ".join(bundled_maps()))
            if workspace is not None:
                raise WorkspaceError([Problem("client.yaml", "invalid_setting",
                                              t("edit_section_problem", LANGUAGE.get(),
                                                path="segmentation.map", problem=message))])
            raise ValueError(message)
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        segment_map, problems = _build(raw, f"data/segment_maps/{path.name}")
        if problems:
            raise ValueError(f"segment map data/segment_maps/{path.name}: "
                             + "; ".join(problems))
        return segment_map

    path = Path(name_or_path)
    if not path.is_absolute() and workspace is not None:
        path = Path(workspace) / path
    shown = text
    if not path.is_file():
        raise WorkspaceError([Problem(shown, "missing_file",
                                      problem_text("map_not_found", path=path))])
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:  # a map saved by a Windows editor in Latin-1
        text = data.decode("latin-1")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise WorkspaceError([Problem(shown, "invalid_yaml",
                                      problem_text("map_not_yaml",
                                                   problem=getattr(exc, "problem", exc)),
                                      rows=[mark.line + 1] if mark is not None else [])]) \
            from None
    segment_map, problems = _build(raw, shown)
    if problems:
        raise WorkspaceError(ProblemList(Problem(shown, "invalid_segment_map", p)
                                         for p in problems))
    return segment_map


def from_settings(settings, workspace: str | Path | None = None) -> SegmentMap:
    """The map chosen in ``client.yaml`` (:class:`crmkit.settings.client.SegmentationSettings`)."""
    return load_map(settings.map, workspace=workspace)


def parse_map(raw: Mapping[str, Any], source: str = "<map>") -> SegmentMap:
    """Validate a map given as a mapping (the parsed YAML); ValueError lists every problem."""
    segment_map, problems = _build(raw, source)
    if problems:
        raise ValueError(f"segment map {source}: " + "; ".join(problems))
    return segment_map


def _texts(value: Any, what: str, problems: list[str]) -> dict[str, str]:
    """A ``{en: ..., es: ...}`` mapping; a problem for each language missing."""
    if not isinstance(value, Mapping):
        problems.append(problem_text("map_texts_per_language", what=what,
                                     languages=", ".join(LANGUAGES), found=repr(value)))
        return {lang: "" for lang in LANGUAGES}
    out = {}
    for lang in LANGUAGES:
        text = value.get(lang)
        if not isinstance(text, str) or not text.strip():
            problems.append(problem_text("map_text_missing", what=what, language=lang))
            text = ""
        out[lang] = str(text).strip()
    return out


def _build(raw: Any, source: str) -> tuple[SegmentMap | None, list[str]]:
    """Parse and validate a map; return it (None when unusable) and every problem found."""
    problems: list[str] = []
    if not isinstance(raw, Mapping):
        return None, [problem_text("map_not_a_mapping", found=type(raw).__name__)]
    known = {"key", "kind", "title", "description", "segments", "dimensions", "scale",
             "recency_bands", "new_days", "value"}
    for extra in sorted(set(raw) - known, key=str):
        problems.append(problem_text("map_unknown_setting", name=extra,
                                     known=", ".join(sorted(known))))
    key = raw.get("key")
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        problems.append(problem_text("map_key", found=repr(key)))
        key = str(key)
    kind = raw.get("kind")
    if kind not in KINDS:
        problems.append(problem_text("map_kind", kinds=", ".join(KINDS), found=repr(kind)))
        return None, problems
    title = _texts(raw.get("title"), "'title'", problems)
    description = _texts(raw.get("description", {lang: "-" for lang in LANGUAGES}),
                         "'description'", problems)

    extra: dict[str, Any] = {}
    if kind == "scores":
        dimensions = _score_dimensions(raw, problems, extra)
    else:
        dimensions = _managerial_dimensions(raw, problems, extra)
    if dimensions is None:
        return None, problems

    segments_raw = raw.get("segments")
    if not isinstance(segments_raw, list) or not segments_raw:
        problems.append(problem_text("map_no_segments"))
        return None, problems
    segments: list[Segment] = []
    claims: dict[tuple, list[str]] = {}
    seen: set[str] = set()
    for number, item in enumerate(segments_raw, start=1):
        if not isinstance(item, Mapping):
            problems.append(problem_text("map_segment_not_a_mapping", number=number,
                                         found=repr(item)))
            continue
        seg_key = item.get("key")
        where = (problem_text("map_segment_named", segment=seg_key) if isinstance(seg_key, str)
                 else problem_text("map_segment_numbered", number=number))
        if not isinstance(seg_key, str) or not _KEY.fullmatch(seg_key):
            problems.append(problem_text("map_segment_key", where=where, found=repr(seg_key)))
            continue
        if seg_key == OTHER:
            problems.append(problem_text("map_segment_reserved", where=where, other=OTHER))
            continue
        if seg_key in seen:
            problems.append(problem_text("map_segment_twice", where=where))
            continue
        seen.add(seg_key)
        for extra_key in sorted(set(item) - {"key", "name", "description", "rule"}, key=str):
            problems.append(problem_text("map_segment_unknown_setting", where=where,
                                         name=extra_key))
        name = _texts(item.get("name"), problem_text("map_segment_text", where=where,
                                                     field="name"), problems)
        desc = _texts(item.get("description"), problem_text("map_segment_text", where=where,
                                                            field="description"), problems)
        cells = _rule_cells(item.get("rule"), dimensions, where, problems)
        for cell in cells:
            claims.setdefault(cell, []).append(seg_key)
        segments.append(Segment(seg_key, name, desc, item.get("rule")))

    shape = tuple(len(d.levels) for d in dimensions)
    lookup = np.full(shape, -1, dtype=np.int64)
    order = {s.key: i for i, s in enumerate(segments)}
    overlaps: dict[tuple[str, ...], list[str]] = {}
    gaps: list[str] = []
    for cell in itertools.product(*(range(n) for n in shape)):
        owners = claims.get(cell, [])
        name = ",".join(d.cell(i) for d, i in zip(dimensions, cell, strict=True))
        if len(owners) == 1:
            lookup[cell] = order[owners[0]]
        elif owners:
            overlaps.setdefault(tuple(sorted(owners)), []).append(name)
        else:
            gaps.append(name)
    for owners, cells in overlaps.items():
        who = problem_text("map_owners_and").join(f"'{o}'" for o in owners)
        if len(cells) == 1:
            problems.append(problem_text("map_cell_claimed_twice", cell=cells[0], owners=who))
        else:
            problems.append(problem_text("map_cells_claimed_twice", cells="; ".join(cells),
                                         owners=who))
    if len(gaps) == 1:
        problems.append(problem_text("map_cell_unclaimed", cell=gaps[0]))
    elif gaps:
        problems.append(problem_text("map_cells_unclaimed", cells="; ".join(gaps)))
    if problems:
        return None, problems
    return SegmentMap(key=key, kind=kind, title=title, description=description,
                      segments=segments, dimensions=dimensions, lookup=lookup,
                      source=source, **extra), problems


def _score_dimensions(raw: Mapping, problems: list[str], extra: dict) -> list[Dimension] | None:
    scale = raw.get("scale", 5)
    if not isinstance(scale, int) or isinstance(scale, bool) or not 2 <= scale <= 10:
        problems.append(problem_text("map_scale", found=repr(scale)))
        return None
    names = raw.get("dimensions", ["r", "f"])
    if (not isinstance(names, list) or not names or len(set(names)) != len(names)
            or any(n not in SCORE_COLUMNS for n in names)):
        problems.append(problem_text("map_dimensions", found=repr(names)))
        return None
    extra["scale"] = scale
    return [Dimension(n, tuple(range(1, scale + 1))) for n in names]


def _managerial_dimensions(raw: Mapping, problems: list[str],
                           extra: dict) -> list[Dimension] | None:
    bands_raw = raw.get("recency_bands")
    bands: list[tuple[str, int | None]] = []
    ok = True
    if not isinstance(bands_raw, list) or len(bands_raw) < 2:
        problems.append(problem_text("map_bands_too_few"))
        return None
    previous = -1
    for number, band in enumerate(bands_raw, start=1):
        last = number == len(bands_raw)
        if not isinstance(band, Mapping) or not _KEY.fullmatch(str(band.get("key", ""))):
            problems.append(problem_text("map_band_key", number=number, found=repr(band)))
            ok = False
            continue
        limit = band.get("max_days")
        if last and limit is not None:
            problems.append(problem_text("map_band_last", band=band["key"], found=repr(limit)))
            ok = False
        elif not last and (not isinstance(limit, int) or isinstance(limit, bool)
                           or limit <= previous):
            problems.append(problem_text("map_band_days", band=band["key"], found=repr(limit)))
            ok = False
        else:
            previous = limit if limit is not None else previous
        bands.append((str(band["key"]), limit))
    if len({b for b, _ in bands}) != len(bands):
        problems.append(problem_text("map_bands_twice"))
        ok = False
    new_days = raw.get("new_days", 180)
    if not isinstance(new_days, int) or isinstance(new_days, bool) or new_days < 0:
        problems.append(problem_text("map_new_days", found=repr(new_days)))
        ok = False
    value = raw.get("value", {"measure": "avg_order", "quantile": 0.5})
    if not isinstance(value, Mapping) or value.get("measure") not in VALUE_MEASURES or (
            ("quantile" in value) == ("amount" in value)) or set(value) - {
            "measure", "quantile", "amount"}:
        problems.append(problem_text("map_value", found=repr(value)))
        ok = False
    elif "quantile" in value and not (isinstance(value["quantile"], int | float)
                                      and 0 < value["quantile"] < 1):
        problems.append(problem_text("map_value_quantile", found=repr(value["quantile"])))
        ok = False
    elif "amount" in value and not isinstance(value["amount"], int | float):
        problems.append(problem_text("map_value_amount", found=repr(value["amount"])))
        ok = False
    if not ok:
        return None
    extra.update(bands=bands, new_days=new_days, value=dict(value))
    return [Dimension("status", tuple(b for b, _ in bands)), Dimension("new", NEW_LEVELS),
            Dimension("value", VALUE_LEVELS)]


def _rule_cells(rule: Any, dimensions: list[Dimension], where: str,
                problems: list[str]) -> list[tuple]:
    """Cells of the grid a rule claims; a rule may be a mapping or a list of mappings."""
    if isinstance(rule, list) and rule:
        cells: list[tuple] = []
        for part in rule:
            cells.extend(c for c in _rule_cells(part, dimensions, where, problems)
                         if c not in cells)
        return cells
    names = [d.name for d in dimensions]
    if not isinstance(rule, Mapping):
        problems.append(problem_text("map_rule_not_a_mapping", where=where,
                                     names=", ".join(names), found=repr(rule)))
        return []
    unknown = [k for k in rule if k not in names]
    if unknown:
        problems.append(problem_text("map_rule_unknown", where=where,
                                     unknown=", ".join(map(str, unknown)), names=", ".join(names)))
        return []
    allowed: list[list[int]] = []
    for dim in dimensions:
        if dim.name not in rule:  # an omitted dimension: any level
            allowed.append(list(range(len(dim.levels))))
            continue
        levels = _rule_levels(rule[dim.name], dim, where, problems)
        if levels is None:
            return []
        allowed.append(levels)
    return list(itertools.product(*allowed))


def _rule_levels(value: Any, dim: Dimension, where: str, problems: list[str]) -> list[int] | None:
    if dim.name in SCORE_COLUMNS:  # a score range [lo, hi] or a single score
        scale = len(dim.levels)
        bounds = [value, value] if isinstance(value, int) and not isinstance(value, bool) \
            else value
        if (not isinstance(bounds, list) or len(bounds) != 2
                or not all(isinstance(b, int) and not isinstance(b, bool) for b in bounds)
                or not 1 <= bounds[0] <= bounds[1] <= scale):
            problems.append(problem_text("map_rule_score_range", where=where, name=dim.name,
                                         scale=scale, found=repr(value)))
            return None
        return list(range(bounds[0] - 1, bounds[1]))
    values = value if isinstance(value, list) else [value]
    out = []
    for v in values:
        if dim.name == "new" and isinstance(v, bool):
            v = "yes" if v else "no"
        if v not in dim.levels:
            problems.append(problem_text(
                "map_rule_level_new" if dim.name == "new" else "map_rule_level", where=where,
                name=dim.name, levels=", ".join(dim.levels), found=repr(value)))
            return None
        out.append(dim.levels.index(v))
    return out


# ---- names ---------------------------------------------------------------------------------

def label(segment_map: SegmentMap | str, key: str, lang: str) -> str:
    """The name of segment ``key`` in ``lang`` (``other`` included)."""
    if lang not in LANGUAGES:
        raise ValueError(f"language {lang!r}; expected one of {LANGUAGES}")
    if key == OTHER:
        return t("seg_other", lang)
    if isinstance(segment_map, str):
        segment_map = load_map(segment_map)
    return segment_map.segment(key).name[lang]


def names(segment_map: SegmentMap | str, lang: str) -> dict[str, str]:
    """``key -> name in lang`` for every segment of the map and ``other``."""
    if isinstance(segment_map, str):
        segment_map = load_map(segment_map)
    return {**{s.key: s.name[lang] for s in segment_map.segments}, OTHER: t("seg_other", lang)}


def rule_text(segment_map: SegmentMap, key: str, lang: str) -> str:
    """A segment's rule in words, e.g. ``R 4-5 · F 4-5`` or ``active (≤ 180 days), new``."""
    segment = segment_map.segment(key)
    rules = segment.rule if isinstance(segment.rule, list) else [segment.rule]
    texts = []
    for rule in rules:
        parts = []
        for dim in segment_map.dimensions:
            if dim.name not in rule:
                continue
            value = rule[dim.name]
            if dim.name in SCORE_COLUMNS:
                lo, hi = (value, value) if isinstance(value, int) else value
                parts.append(f"{dim.name.upper()} {lo}" + (f"-{hi}" if hi != lo else ""))
            elif dim.name == "status":
                bands = dict(segment_map.bands)
                for v in value if isinstance(value, list) else [value]:
                    limit = bands[v]
                    lower = _lower_limit(segment_map, v)
                    span = (t("seg_rule_days_upto", lang, days=limit) if lower is None
                            else t("seg_rule_days_over", lang, days=lower) if limit is None
                            else t("seg_rule_days_between", lang, low=lower + 1, high=limit))
                    known = f"seg_status_{v}" in catalogue()
                    parts.append(f"{t(f'seg_status_{v}', lang) if known else v} ({span})")
            elif dim.name == "new":
                is_new = value in (True, "yes")
                parts.append(t("seg_rule_new" if is_new else "seg_rule_not_new", lang))
            elif dim.name == "value" and value in VALUE_LEVELS:
                parts.append(t(f"seg_rule_value_{value}", lang))
        texts.append(" · ".join(parts))
    return " | ".join(texts)


def _lower_limit(segment_map: SegmentMap, band: str) -> int | None:
    previous = None
    for key, limit in segment_map.bands:
        if key == band:
            return previous
        previous = limit
    return previous


def describe(segment_map: SegmentMap | str, lang: str) -> pd.DataFrame:
    """The map as a table for the workbook: key, name, description and rule in words."""
    if isinstance(segment_map, str):
        segment_map = load_map(segment_map)
    return pd.DataFrame([{"key": s.key, "name": s.name[lang], "description": s.description[lang],
                          "rule": rule_text(segment_map, s.key, lang)}
                         for s in segment_map.segments])
