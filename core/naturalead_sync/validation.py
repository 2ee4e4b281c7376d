"""Local checks before a lead is sent: phones to E.164, emails, sizes.

A lead that fails a check is rejected locally with a reason naming the field (policy
``reject``), or sent without the bad value (policy ``drop``); either way the others go on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from .errors import RecordError
from .models import LIMITS, Lead, revalidate

__all__ = ["LeadValidator"]

Policy = Literal["reject", "drop"]
#: An unquoted ASCII local part (RFC 5322 dot-atom), the form almost every address has.
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")

# Keep the metadata's compiled patterns instead of recompiling them on every check (the re
# module's own cache is too small for them): a phone check costs about an eighth less.
phonenumbers.enable_pattern_cache()


@lru_cache(maxsize=4096)
def _domain(domain: str) -> str:
    """The normalised domain, checked once per domain (the costly part of an email check)."""
    return str(validate_email(f"x@{domain}", check_deliverability=False).domain)


def normalise_email(raw: str) -> str:
    """The normalised address; :class:`EmailNotValidError` when it is not one.

    Addresses with a plain ASCII local part are checked by parts, the domain once per run
    (domains repeat; the result is the one ``email-validator`` gives); anything else goes
    through ``email-validator`` whole.
    """
    local, at, domain = raw.rpartition("@")
    if at and len(local) <= 64 and len(raw) <= 254 and _DOT_ATOM.fullmatch(local):
        return f"{local}@{_domain(domain)}"
    return str(validate_email(raw, check_deliverability=False).normalized)


@dataclass(frozen=True)
class LeadValidator:
    """Normalises and checks leads for one connection."""

    default_region: str | None = None
    invalid_phone: Policy = "reject"
    invalid_email: Policy = "reject"

    def normalise_phone(self, raw: str) -> str:
        """E.164 form of ``raw``; :class:`ValueError` with a reason when it is not a phone."""
        try:
            number = phonenumbers.parse(raw, self.default_region)
        except phonenumbers.NumberParseException:
            hint = "" if self.default_region else " (set default_region for local numbers)"
            raise ValueError(f"phone {raw!r} cannot be read{hint}") from None
        if not phonenumbers.is_valid_number(number):
            raise ValueError(f"phone {raw!r} is not a valid number")
        return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))

    def check(self, lead: Lead) -> tuple[Lead, dict[str, str | None], list[str]]:
        """``lead`` as it may be sent, and what the checks change in it.

        Returns the lead checked against :class:`Lead`'s schema again (see
        :func:`~naturalead_sync.models.revalidate`) and within the size limits, the changes
        of ``phone`` and ``email`` (the normalised value, or None when dropped by policy;
        empty when nothing changes) and the warnings for the values dropped by policy.

        Raises :class:`~pydantic.ValidationError` when the lead is no longer a valid
        :class:`Lead`, :class:`RecordError` when it must be rejected.
        """
        checked = revalidate(lead)
        update: dict[str, str | None] = {}
        warnings: list[str] = []
        if checked.phone:
            try:
                phone = self.normalise_phone(checked.phone)
            except ValueError as exc:
                if self.invalid_phone == "reject":
                    raise RecordError(
                        f"{exc}; fix it in the source or set invalid_phone = "
                        '"drop" to send the lead without it'
                    ) from None
                warnings.append(str(exc))
                phone = None
            if phone != checked.phone:
                update["phone"] = phone
        if checked.email:
            try:
                email = normalise_email(checked.email)
            except EmailNotValidError as exc:
                if self.invalid_email == "reject":
                    raise RecordError(
                        f"email {checked.email!r} is invalid: {str(exc).rstrip('.')}; fix it in "
                        'the source or set invalid_email = "drop" to send the lead without it'
                    ) from None
                warnings.append(f"email {checked.email!r} dropped: {exc}")
                email = None
            if email != checked.email:
                update["email"] = email
        if checked is not lead:  # a lead kept as it is is within the limits already
            _check_sizes(checked)
        return checked, update, warnings


def _too_long(field: str, value: str, limit: int) -> RecordError:
    return RecordError(f"{field} is {len(value)} characters long; the limit is {limit}")


def _check_sizes(lead: Lead) -> None:
    if lead.name and len(lead.name) > LIMITS.name:
        raise _too_long("name", lead.name, LIMITS.name)
    if lead.email and len(lead.email) > LIMITS.email:
        raise _too_long("email", lead.email, LIMITS.email)
    if len(lead.custom_fields) > LIMITS.custom_fields:
        raise RecordError(
            f"{len(lead.custom_fields)} custom fields; the limit is {LIMITS.custom_fields}"
        )
    for key, value in lead.custom_fields.items():
        if len(key) > LIMITS.custom_field_key:
            raise _too_long(f"custom field name {key[:40]!r}…", key, LIMITS.custom_field_key)
        if len(value) > LIMITS.custom_field_value:
            raise _too_long(f"customFields.{key}", value, LIMITS.custom_field_value)
    if len(lead.tags) > LIMITS.tags:
        raise RecordError(f"{len(lead.tags)} tags; the limit is {LIMITS.tags}")
    for tag in lead.tags:
        if len(tag) > LIMITS.tag:
            raise _too_long(f"tag {tag[:40]!r}…", tag, LIMITS.tag)
