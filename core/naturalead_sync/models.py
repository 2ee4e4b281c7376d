"""The domain models every part of naturalead-sync speaks: source records, windows and leads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["LIMITS", "Lead", "LeadLimits", "SourceRecord", "Window"]


@dataclass(frozen=True, slots=True)
class LeadLimits:
    """Local size limits checked before a lead is sent.

    The public API documents none of them; these are conservative choices so that an oversized
    value is caught with a clear reason here instead of failing a whole batch there.
    """

    lead_id: int = 255
    name: int = 255
    email: int = 254
    custom_fields: int = 100
    custom_field_key: int = 100
    custom_field_value: int = 10_000
    tags: int = 50
    tag: int = 100


LIMITS = LeadLimits()


class Lead(BaseModel):
    """One lead as the Naturalead sync API receives it.

    ``lead_id`` is the source system's own id (plus the connection's optional prefix); it is the
    upsert key, so it must be stable and never empty. ``phone`` is E.164 once validated.
    ``customFields`` values are strings, the API's documented "key-value string map".
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_assignment=True)

    lead_id: str = Field(min_length=1, max_length=LIMITS.lead_id)
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    custom_fields: dict[str, str] = Field(default_factory=dict, alias="customFields")
    tags: list[str] = Field(default_factory=list)

    @field_validator("lead_id")
    @classmethod
    def _lead_id_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("lead_id must not be blank")
        return value

    def payload(self, *, send_empty: bool = False) -> dict[str, Any]:
        """The JSON object sent for this lead.

        With ``send_empty`` false (the default policy), empty values are left out so that the
        API keeps what it has; with it true, they are sent as empty strings and lists.
        """
        body: dict[str, Any] = {"lead_id": self.lead_id}
        # Field by field, not a loop over their names: this runs for every lead.
        name, phone, email = self.name, self.phone, self.email
        if name:
            body["name"] = name
        elif send_empty:
            body["name"] = ""
        if phone:
            body["phone"] = phone
        elif send_empty:
            body["phone"] = ""
        if email:
            body["email"] = email
        elif send_empty:
            body["email"] = ""
        if self.custom_fields or send_empty:
            body["customFields"] = dict(self.custom_fields)
        if self.tags or send_empty:
            body["tags"] = list(self.tags)
        return body


def revalidate(lead: Lead) -> Lead:
    """``lead`` checked against :class:`Lead`'s schema again, as validation would leave it.

    ``model_copy`` and ``model_construct`` skip validation, so a lead from the mapping or a
    plugin may hold anything. A plainly valid lead within :data:`LIMITS` (a :class:`Lead`
    itself whose fields hold exactly the types validation produces) comes back as it is,
    after a cheap check; any other is validated again from its dump
    (``Lead.model_validate(lead.model_dump())``), which converts what validation converts or
    raises :class:`~pydantic.ValidationError`. So a lead that comes back as it is needs no
    size check either.
    """
    if type(lead) is Lead and _plain_within_limits(lead):
        return lead
    return Lead.model_validate(lead.model_dump())


_ID, _NAME, _EMAIL = LIMITS.lead_id, LIMITS.name, LIMITS.email
_FIELDS, _KEY, _VALUE = LIMITS.custom_fields, LIMITS.custom_field_key, LIMITS.custom_field_value
_TAGS, _TAG = LIMITS.tags, LIMITS.tag


def _plain_within_limits(lead: Lead) -> bool:
    """Whether validating ``lead``'s dump would accept it and change nothing, and every value
    is within :data:`LIMITS` (see :func:`revalidate`). One pass, for every lead sent; tests
    hold it to pydantic's answer and to the size checks'."""
    lead_id, name, phone, email = lead.lead_id, lead.name, lead.phone, lead.email
    if type(lead_id) is not str or len(lead_id) > _ID or not lead_id.strip():
        return False
    if name is not None and (type(name) is not str or len(name) > _NAME):
        return False
    if phone is not None and type(phone) is not str:
        return False
    if email is not None and (type(email) is not str or len(email) > _EMAIL):
        return False
    custom_fields, tags = lead.custom_fields, lead.tags
    if type(custom_fields) is not dict or len(custom_fields) > _FIELDS:
        return False
    if type(tags) is not list or len(tags) > _TAGS:
        return False
    for key, value in custom_fields.items():
        if type(key) is not str or type(value) is not str or len(key) > _KEY or len(value) > _VALUE:
            return False
    for tag in tags:  # noqa: SIM110 - a loop costs less than all() over a generator here
        if type(tag) is not str or len(tag) > _TAG:
            return False
    return True


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One record as a connector read it from the source system.

    ``id`` is the native id (it becomes ``lead_id``), ``modified_at`` the source's own
    modification time (timezone-aware), ``fields`` the raw values the mapping reads.
    """

    id: str
    modified_at: datetime
    fields: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("SourceRecord.id must not be empty")
        if self.modified_at.tzinfo is None:
            raise ValueError(
                f"SourceRecord {self.id!r}: modified_at must be timezone-aware "
                "(use datetime(..., tzinfo=UTC))"
            )


@dataclass(frozen=True, slots=True)
class Window:
    """The frozen time window of one run: ``start <= modified_at < end``.

    ``start`` is None on a first (or full-refresh) run: everything up to ``end``. ``end`` is
    fixed when the run starts (now minus the settle time) and never moves during the run.
    """

    start: datetime | None
    end: datetime

    def __contains__(self, moment: datetime) -> bool:
        return (self.start is None or moment >= self.start) and moment < self.end

    @staticmethod
    def utcnow() -> datetime:
        """The current time, timezone-aware in UTC."""
        return datetime.now(UTC)
