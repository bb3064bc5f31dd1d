"""The ``relationships:`` section of ``client.yaml``: cost drivers, current and expected types.

Validated so that a misspelt type key is named in the error with the valid ones listed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from crmkit.core.catalogue import _check_types
from crmkit.core.problems import problem_text


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CostDrivers(_Strict):
    """The client's own cost drivers for one relationship type; unset ones keep the catalogue's.

    ``channel_cost_per_minute`` gives channel-specific rates (e.g. ``{store: 1.1, phone: 0.7}``);
    a channel not listed uses ``cost_per_minute``.
    """

    minutes_per_interaction: float | None = Field(None, ge=0)
    interactions_per_year: float | None = Field(None, ge=0)
    cost_per_minute: float | None = Field(None, ge=0)
    fixed_yearly_cost: float | None = Field(None, ge=0)
    channel_cost_per_minute: dict[str, float] = {}

    @field_validator("channel_cost_per_minute")
    @classmethod
    def _non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        negative = [k for k, v in value.items() if not v >= 0]
        if negative:
            raise ValueError(problem_text("settings_negative_cost", found=", ".join(negative)))
        return value


class VerdictThresholds(_Strict):
    """The thresholds of :func:`crmkit.relationships.cost_benefit.per_segment`'s verdict rules.

    Every cost figure of the rules is the segment's *variable* (avoidable) cost to serve: the
    platforms' fixed costs are not saved by moving or dropping one segment.
    """

    max_cost_share: float = Field(
        0.30, gt=0, description="move to a cheaper type when the variable cost to serve exceeds "
                                "this share of the segment's yearly gross margin")
    invest_min_return: float = Field(
        2.0, ge=0, description="invest when profit / cost to serve reaches this return …")
    invest_min_clv_index: float = Field(
        1.0, ge=0, description="… and the segment's CLV per customer is at least this multiple "
                               "of the average customer's")
    win_back_min_past_value: float = Field(
        0.5, ge=0, description="under the objective retain, win back a segment whose past "
                               "yearly margin per customer is at least this multiple of the "
                               "average customer's …")
    win_back_min_lapsed_share: float = Field(
        2 / 3, gt=0, le=1, description="… and of whose customers at least this share have not "
                                     "bought for assumptions.lapse_days (lapsing)")
    win_back_rate: float = Field(
        0.10, gt=0, le=1, description="share of a win-back segment the reactivation test is "
                                      "expected to bring back (for its € impact)")


class RelationshipsConfig(_Strict):
    """The ``relationships:`` section of ``client.yaml``.

    Attributes
    ----------
    cost_drivers : dict
        ``type -> CostDrivers``: the client's own rates and volumes, overriding the catalogue's.
    current : dict
        ``segment -> [types]``: the relationship types each segment receives today, in the
        consultant's judgement.
    expected : dict
        ``segment -> type``: what each segment expects, in the consultant's judgement; used when
        the survey has too few answers for the segment.
    fit : dict
        ``segment -> note``: the consultant's note on how the relationship fits the business
        model.
    thresholds : VerdictThresholds
        Thresholds of the cost-benefit verdicts.
    retention : dict
        ``segment -> yearly retention (0-1)`` when the consultant knows it better than the
        estimate from the data (:func:`crmkit.relationships.cost_benefit.retention_by_segment`).
    min_respondents : int
        Survey answers a segment needs before its stated preference outweighs the consultant's.
    """

    cost_drivers: dict[str, CostDrivers] = {}
    current: dict[str, list[str]] = {}
    expected: dict[str, str] = {}
    fit: dict[str, str] = {}
    thresholds: VerdictThresholds = VerdictThresholds()
    retention: dict[str, float] = {}
    min_respondents: int = Field(5, ge=1)

    @field_validator("cost_drivers")
    @classmethod
    def _driver_types(cls, value: dict[str, CostDrivers]) -> dict[str, CostDrivers]:
        _check_types(value)
        return value

    @field_validator("current")
    @classmethod
    def _current_types(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        _check_types([k for types in value.values() for k in types])
        return value

    @field_validator("expected")
    @classmethod
    def _expected_types(cls, value: dict[str, str]) -> dict[str, str]:
        _check_types(value.values())
        return value

    @field_validator("retention")
    @classmethod
    def _retention_range(cls, value: dict[str, float]) -> dict[str, float]:
        wrong = [k for k, v in value.items() if not 0 <= v < 1]
        if wrong:
            raise ValueError(problem_text("settings_retention_range", found=", ".join(wrong)))
        return value

    def segments(self) -> set[str]:
        """Every segment key the section names."""
        return set(self.current) | set(self.expected) | set(self.fit) | set(self.retention)


def relationships_config(config: Any
                         ) -> RelationshipsConfig:
    """The relationships settings out of a ``ClientConfig``, a section, a mapping or None."""
    if config is None:
        return RelationshipsConfig()
    if isinstance(config, RelationshipsConfig):
        return config
    if isinstance(config, Mapping):
        return RelationshipsConfig.model_validate(config)
    section = getattr(config, "relationships", None)
    if isinstance(section, RelationshipsConfig):
        return section
    if isinstance(section, Mapping):
        return RelationshipsConfig.model_validate(section)
    raise TypeError(f"expected a ClientConfig or RelationshipsConfig, found {type(config)!r}")
