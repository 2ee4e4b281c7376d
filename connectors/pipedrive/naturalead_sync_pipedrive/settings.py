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

    Authenticate with one of:

    - a personal API token (``api_token``, sent in the ``x-api-token`` header, never in the
      query string) and the ``company_domain``;
    - an OAuth access token (``access_token``) and the ``api_domain`` Pipedrive returned with
      it (no refresh: the run fails once it expires);
    - an OAuth app's ``client_id``, ``client_secret`` and ``refresh_token``: the connector
      trades the refresh token at ``oauth_url`` for an access token before the first request,
      again shortly before it expires and once on a 401, and sends requests to the
      ``api_domain`` of the token answer (``base_url`` still overrides it).
    """

    api_token: SecretStr | None = Field(
        None, description='A personal API token; use "${PIPEDRIVE_API_TOKEN}".'
    )
    access_token: SecretStr | None = Field(
        None, description="An OAuth access token (sent as a bearer token), with api_domain."
    )
    client_id: str | None = Field(None, description="OAuth app client id (with refresh_token).")
    client_secret: SecretStr | None = Field(None, description="OAuth app client secret.")
    refresh_token: SecretStr | None = Field(
        None, description='OAuth refresh token; use "${PIPEDRIVE_REFRESH_TOKEN}".'
    )
    oauth_url: str | None = Field(
        None,
        description=(
            "OAuth token endpoint; default https://oauth.pipedrive.com/oauth/token, or "
            "<base_url>/oauth/token when base_url is set (an emulator)."
        ),
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

    @field_validator("oauth_url")
    @classmethod
    def _oauth_url(cls, value: str | None) -> str | None:
        return _url(value, "oauth_url")

    @field_validator("custom_fields")
    @classmethod
    def _custom_fields(cls, value: list[str]) -> list[str]:
        if any(not name.strip() for name in value):
            raise ValueError("custom field names must not be empty")
        return list(dict.fromkeys(name.strip() for name in value))

    @model_validator(mode="after")
    def _auth_and_root(self) -> PipedriveSettings:
        refresh = {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "refresh_token": self.refresh_token,
        }
        given = [name for name, value in refresh.items() if value is not None]
        if given and len(given) < len(refresh):
            missing = sorted(set(refresh) - set(given))
            raise ValueError(
                f"an OAuth app needs client_id, client_secret and refresh_token; missing {missing}"
            )
        modes = (self.api_token is not None) + (self.access_token is not None) + bool(given)
        if modes != 1:
            raise ValueError(
                "set exactly one of api_token (a personal API token: "
                'api_token = "${PIPEDRIVE_API_TOKEN}"), access_token (an OAuth access token) '
                "or client_id, client_secret and refresh_token (an OAuth app)"
            )
        if (
            not given
            and self.base_url is None
            and self.company_domain is None
            and (self.api_domain is None)
        ):
            raise ValueError(
                'set company_domain (the "acme" of https://acme.pipedrive.com), or api_domain '
                "with an OAuth access_token"
            )
        return self

    @property
    def token_url(self) -> str:
        """Where refresh tokens are traded for access tokens."""
        if self.oauth_url is not None:
            return self.oauth_url
        if self.base_url is not None:
            return f"{self.base_url}/oauth/token"
        return "https://oauth.pipedrive.com/oauth/token"

    @property
    def root(self) -> str:
        """The API root every path is appended to (before an OAuth refresh names one)."""
        if self.base_url is not None:
            return self.base_url
        if self.api_domain is not None and self.api_token is None:
            return self.api_domain
        if self.company_domain is not None:
            return f"https://{self.company_domain}.pipedrive.com"
        return "https://api.pipedrive.com"

    @property
    def scopes(self) -> list[str]:
        """The OAuth scopes this configuration needs."""
        scopes = ["contacts:read", "users:read"]
        return [*scopes, "leads:read"] if self.object == "leads" else scopes
