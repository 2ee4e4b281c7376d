"""Settings of the Pipedrive connector: credentials, where the company lives, what to sync and
Pipedrive's burst limit."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from naturalead_sync import ConnectorSettings

__all__ = ["ObjectKind", "PipedriveSettings"]

ObjectKind = Literal["persons", "leads"]
_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def _url(value: str | None, setting: str) -> str | None:
    """``value`` without its trailing slash; a ValueError when it is not an http(s) URL."""
    if value is None:
        return None
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"{setting} {value!r} is not a URL; use e.g. 'https://acme.pipedrive.com'")
    return value.rstrip("/")


class PipedriveSettings(ConnectorSettings):
    """``[connections.settings]`` of a ``connector = "pipedrive"`` connection.

    Authenticate with a personal API token (``api_token``, sent in the ``x-api-token``
    header, never in the query string) and the ``company_domain``; or with an OAuth access
    token (``access_token``) and the ``api_domain`` Pipedrive returned with it.
    """

    api_token: SecretStr | None = Field(
        None, description='A personal API token; use "${PIPEDRIVE_API_TOKEN}".'
    )
    access_token: SecretStr | None = Field(
        None, description="An OAuth access token (sent as a bearer token), with api_domain."
    )
    company_domain: str | None = Field(
        None, description='The company\'s subdomain: "acme" for https://acme.pipedrive.com.'
    )
    api_domain: str | None = Field(
        None, description="OAuth only: the api_domain of the token response (a URL)."
    )
    base_url: str | None = Field(
        None, description="Overrides the API root, e.g. an emulator's URL to try a config offline."
    )
    object: ObjectKind = Field(
        "persons",
        description=(
            '"persons" (lead_id = person id) or "leads" (Leads Inbox items joined to their '
            "person for name, email and phone; lead_id = the lead's UUID)."
        ),
    )
    custom_fields: list[str] = Field(
        default_factory=list,
        description=(
            "Custom fields to send, by the name shown in Pipedrive (hash keys never go in the "
            "config); enum and set values arrive as their labels."
        ),
    )
    requests_per_two_seconds: int = Field(
        20,
        ge=1,
        le=1000,
        description=(
            "The token's burst limit per rolling 2 s: API tokens 20 (Lite), 40 (Growth), "
            "100 (Premium), 120 (Ultimate); OAuth apps four times as many."
        ),
    )
    page_size: int = Field(500, ge=1, le=500, description="Records per page (Pipedrive's max 500).")

    @field_validator("company_domain")
    @classmethod
    def _company_domain(cls, value: str | None) -> str | None:
        if value is None:
            return None
        domain = value.strip().lower().removeprefix("https://").split(".pipedrive.com")[0]
        if not _DOMAIN.match(domain):
            raise ValueError(f"{value!r} is not a company subdomain; use e.g. 'acme'")
        return domain

    @field_validator("api_domain")
    @classmethod
    def _api_domain(cls, value: str | None) -> str | None:
        return _url(value, "api_domain")

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        return _url(value, "base_url")

    @field_validator("custom_fields")
    @classmethod
    def _custom_fields(cls, value: list[str]) -> list[str]:
        if any(not name.strip() for name in value):
            raise ValueError("custom field names must not be empty")
        return list(dict.fromkeys(name.strip() for name in value))

    @model_validator(mode="after")
    def _auth_and_root(self) -> PipedriveSettings:
        if (self.api_token is None) == (self.access_token is None):
            raise ValueError(
                "set exactly one of api_token (a personal API token: "
                'api_token = "${PIPEDRIVE_API_TOKEN}") or access_token (an OAuth app)'
            )
        if self.base_url is None and self.company_domain is None and self.api_domain is None:
            raise ValueError(
                'set company_domain (the "acme" of https://acme.pipedrive.com), or api_domain '
                "with an OAuth access_token"
            )
        return self

    @property
    def root(self) -> str:
        """The API root every path is appended to."""
        if self.base_url is not None:
            return self.base_url
        if self.access_token is not None and self.api_domain is not None:
            return self.api_domain
        return f"https://{self.company_domain}.pipedrive.com"

    @property
    def scopes(self) -> list[str]:
        """The OAuth scopes this configuration needs."""
        return ["contacts:read", "leads:read"] if self.object == "leads" else ["contacts:read"]
