"""The ``scenarios:`` section of ``client.yaml``: named sets of changes to evaluate.

A change moves a segment's interactions to another relationship type, sets a type's cost rates,
or shifts retention, margin or the discount rate; :mod:`crmkit.relationships.scenarios` evaluates
them on the per-customer model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from crmkit.core.catalogue import _check_types
from crmkit.core.problems import problem_text

CHANGE_KINDS = ("move", "cost", "retention", "margin", "discount_rate")


# --------------------------------------------------------------------------------------------
# Changes and scenarios (the ``scenarios:`` section of client.yaml)
# --------------------------------------------------------------------------------------------

class _Change(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Move(_Change):
    """Move ``share`` of a segment's interactions of type ``from`` to type ``to``.

    ``retention_change`` is the expected change of the segment's yearly retention in points as a
    fraction (−0.05 = five points fewer), applied in proportion to ``share``.
    ``minutes_per_interaction`` overrides the destination's (default: its driver).
    """

    kind: Literal["move"] = "move"
    segment: str
    from_type: str = Field(alias="from")
    to_type: str = Field(alias="to")
    share: float = Field(1.0, ge=0, le=1)
    retention_change: float = Field(0.0, ge=-1, le=1)
    minutes_per_interaction: float | None = Field(None, ge=0)

    @field_validator("from_type", "to_type")
    @classmethod
    def _known(cls, value: str) -> str:
        _check_types([value])
        return value

    @model_validator(mode="after")
    def _different(self) -> Move:
        if self.from_type == self.to_type:
            raise ValueError(problem_text("settings_move_same_type", found=repr(self.to_type)))
        return self


class CostRate(_Change):
    """Set a type's cost per minute and/or its fixed yearly cost (unset ones stay).

    ``change`` is a relative change of the cost per minute (−0.2 = 20 % cheaper), applied after
    ``cost_per_minute`` when both are given: the form a slider gives.
    """

    kind: Literal["cost"] = "cost"
    type: str
    cost_per_minute: float | None = Field(None, ge=0)
    fixed_yearly_cost: float | None = Field(None, ge=0)
    change: float | None = Field(None, ge=-1)

    @field_validator("type")
    @classmethod
    def _known(cls, value: str) -> str:
        _check_types([value])
        return value


class RetentionChange(_Change):
    """Shift the yearly retention of a segment (or of all, ``segment`` unset) by points."""

    kind: Literal["retention"] = "retention"
    segment: str | None = None
    change: float = Field(ge=-1, le=1)


class MarginChange(_Change):
    """Scale the gross margin of a segment (or of all) by ``1 + change`` (−0.1 = 10 % less)."""

    kind: Literal["margin"] = "margin"
    segment: str | None = None
    change: float = Field(ge=-1)


class DiscountRate(_Change):
    """Value customers at another yearly discount rate."""

    kind: Literal["discount_rate"] = "discount_rate"
    rate: float = Field(ge=0, le=1)


Change = Annotated[Move | CostRate | RetentionChange | MarginChange | DiscountRate,
                   Field(discriminator="kind")]


class Scenario(BaseModel):
    """A named set of changes, as written under ``scenarios:`` in client.yaml.

    Each change is a mapping with one key naming its kind (``move``, ``cost``, ``retention``,
    ``margin``, ``discount_rate``), or a mapping with ``kind:`` among its keys.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    note: str = ""
    changes: list[Change] = []

    @field_validator("changes", mode="before")
    @classmethod
    def _one_key_form(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        out = []
        for item in value:
            if isinstance(item, Mapping) and "kind" not in item and len(item) == 1:
                (kind, body), = item.items()
                if kind not in CHANGE_KINDS:
                    raise ValueError(problem_text("settings_change_kind",
                                                  kinds=", ".join(CHANGE_KINDS), found=repr(kind)))
                item = {"kind": kind, **(body or {})}
            elif isinstance(item, Mapping) and "kind" not in item:
                raise ValueError(problem_text("settings_change_one_key",
                                              kinds=", ".join(CHANGE_KINDS),
                                              found=", ".join(map(str, item))))
            out.append(item)
        return out


def _scenario(value: Scenario | Sequence | Mapping | None, name: str = "") -> Scenario:
    if value is None:
        return Scenario(name=name or "baseline")
    if isinstance(value, Scenario):
        return value
    if isinstance(value, Mapping):
        return Scenario.model_validate(value)
    return Scenario(name=name or "scenario", changes=list(value))
