"""Settings of the Salesforce connector: one way to log in, which object to read, and limits."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from naturalead_sync import ConnectorSettings
from naturalead_sync.config import Duration

__all__ = ["AUTH_FLOWS", "AuthFlow", "SalesforceSettings"]

AuthFlow = Literal["jwt", "client_credentials", "password", "session"]

#: For each login flow: the keys that select it, the keys it needs, the keys it may take.
AUTH_FLOWS: dict[AuthFlow, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "jwt": (
        ("private_key", "private_key_file"),
        ("username", "consumer_key"),
        ("domain",),
    ),
    "client_credentials": (("consumer_secret",), ("consumer_key", "domain"), ()),
    "password": (("password",), ("username", "security_token"), ("domain",)),
    "session": (("session_id",), ("instance_url",), ()),
}
_AUTH_KEYS = sorted(
    {key for flow in AUTH_FLOWS.values() for group in flow for key in group} - {"domain"}
)
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class SalesforceSettings(ConnectorSettings):
    """``[connections.settings]`` of a ``connector = "salesforce"`` connection.

    Exactly one login flow: JWT bearer (``username``, ``consumer_key``, ``private_key_file`` or
    ``private_key``), client credentials (``consumer_key``, ``consumer_secret``, ``domain`` =
    your My Domain such as ``"acme.my"``), username + password + ``security_token``, or an
    existing ``session_id`` with its ``instance_url``. JWT and client credentials are the
    recommended ones; Salesforce is retiring the password flows.
    """

    username: str | None = Field(None, description="The integration user's username.")
    password: SecretStr | None = Field(None, description="Its password (password flow).")
    security_token: SecretStr | None = Field(
        None, description="Its security token (password flow)."
    )
    consumer_key: str | None = Field(None, description="The connected app's consumer key.")
    consumer_secret: SecretStr | None = Field(
        None, description="The connected app's consumer secret (client credentials)."
    )
    private_key_file: str | None = Field(
        None, description="PEM private key of the JWT certificate, relative to the config."
    )
    private_key: SecretStr | None = Field(
        None, description='The PEM private key itself (e.g. "${SF_PRIVATE_KEY}").'
    )
    session_id: SecretStr | None = Field(None, description="An access token (session flow).")
    instance_url: str | None = Field(
        None, description='The org\'s URL for session_id, e.g. "https://acme.my.salesforce.com".'
    )
    domain: str | None = Field(
        None,
        description='Login host before ".salesforce.com": "login" (default), "test" for a '
        'sandbox, or the My Domain ("acme.my"), which client credentials need.',
    )
    object: str = Field("Lead", description='The object to sync: "Lead", "Contact", ...')
    fields: list[str] = Field(
        default_factory=list,
        description="More fields to read; each non-empty one becomes a custom field.",
    )
    converted: Literal["update", "delete"] = Field(
        "update",
        description='A converted Lead: "update" (kept, with IsConverted and the converted ids '
        'as custom fields) or "delete" (removed from Naturalead).',
    )
    batch_size: int = Field(
        2000, ge=200, le=2000, description="Records per query page (Salesforce: 200 to 2000)."
    )
    max_api_share: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Stop the run (checkpoint kept) once the org's daily API usage reaches "
        "this share of its allowance.",
    )
    bulk_threshold: int = Field(
        200_000,
        ge=0,
        description="A first sync or full refresh reads through a Bulk API 2.0 query job when "
        "SELECT COUNT() finds more records than this; 0 never uses Bulk.",
    )
    bulk_max_wait: Duration = Field(
        timedelta(minutes=30),
        gt=timedelta(0),
        description='How long a Bulk job may take (e.g. "30m"); past it the job is aborted and '
        "the run fails.",
    )
    api_version: str = Field("59.0", pattern=r"^\d{2}\.0$", description="REST API version.")

    @field_validator("object")
    @classmethod
    def _object(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"{value!r} is not an object API name such as 'Lead' or 'Contact'")
        return value

    @field_validator("fields")
    @classmethod
    def _fields(cls, value: list[str]) -> list[str]:
        bad = [name for name in value if not _NAME.match(name.strip())]
        if bad:
            raise ValueError(f"not field API names: {bad}")
        return list(dict.fromkeys(name.strip() for name in value))

    @field_validator("instance_url")
    @classmethod
    def _instance_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("https://"):
            raise ValueError(f"{value!r}: use the https:// URL of the org")
        return None if value is None else value.rstrip("/")

    @model_validator(mode="after")
    def _one_flow(self) -> SalesforceSettings:
        given = {key for key in [*_AUTH_KEYS, "domain"] if getattr(self, key) is not None}
        flows = [name for name, (markers, _, _) in AUTH_FLOWS.items() if given & set(markers)]
        if not flows:
            raise ValueError(
                "no credentials: set consumer_key with private_key_file (JWT bearer) or with "
                "consumer_secret and domain (client credentials); or username, password and "
                "security_token; or session_id and instance_url"
            )
        if len(flows) > 1:
            raise ValueError(f"set the keys of one login flow only; found {' and '.join(flows)}")
        markers, needed, optional = AUTH_FLOWS[flows[0]]
        missing = [key for key in needed if key not in given]
        if missing:
            raise ValueError(f"the {flows[0]} login needs {', '.join(missing)}")
        extra = sorted(given - {*markers, *needed, *optional})
        if extra:
            raise ValueError(f"the {flows[0]} login does not take {', '.join(extra)}")
        if flows[0] == "jwt" and self.private_key is not None and self.private_key_file:
            raise ValueError("set private_key_file or private_key, not both")
        if flows[0] == "client_credentials" and self.domain in ("login", "test"):
            raise ValueError(
                'client credentials need the My Domain in domain (e.g. "acme.my"), not '
                f"{self.domain!r}"
            )
        return self

    @property
    def auth_flow(self) -> AuthFlow:
        """The login flow the settings select."""
        for name, (markers, _, _) in AUTH_FLOWS.items():
            if any(getattr(self, key) is not None for key in markers):
                return name
        raise AssertionError("validated settings always select a flow")  # pragma: no cover
