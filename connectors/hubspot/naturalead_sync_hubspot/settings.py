"""Settings of the HubSpot connector: credentials, which object to sync, and HubSpot's limits."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from naturalead_sync import ConnectorSettings

__all__ = ["DEFAULT_BASE_URL", "HubSpotSettings", "ObjectKind"]

DEFAULT_BASE_URL = "https://api.hubapi.com"

ObjectKind = Literal["contacts", "leads"]


class HubSpotSettings(ConnectorSettings):
    """``[connections.settings]`` of a ``connector = "hubspot"`` connection.

    Authenticate with a private app's access token (``access_token``), or with an OAuth app's
    ``client_id``, ``client_secret`` and ``refresh_token`` (the connector gets a fresh access
    token when it starts and when the old one expires).
    """

    access_token: SecretStr | None = Field(
        None, description='A private app access token ("pat-..."); use "${HUBSPOT_TOKEN}".'
    )
    client_id: str | None = Field(None, description="OAuth app client id (with refresh_token).")
    client_secret: SecretStr | None = Field(None, description="OAuth app client secret.")
    refresh_token: SecretStr | None = Field(None, description="OAuth refresh token.")
    object: ObjectKind = Field(
        "contacts",
        description=(
            '"contacts" (every portal) or "leads" (the CRM leads object 0-136, read with the '
            "name, email and phone of each lead's primary contact)."
        ),
    )
    properties: list[str] = Field(
        default_factory=list,
        description=(
            "More HubSpot properties to read. Each non-empty one is sent as a custom field of "
            "the same name, and the connection's mapping can use it."
        ),
    )
    base_url: str = Field(
        DEFAULT_BASE_URL,
        description="HubSpot's API root; set it to an emulator's URL to try a config offline.",
    )
    requests_per_ten_seconds: int = Field(
        100,
        ge=1,
        le=1000,
        description=(
            "The app's burst limit for non-search calls: 100 for private apps on Free and "
            "Starter, 190 on Professional and Enterprise (150/190 with the API add-on)."
        ),
    )
    search_requests_per_second: int = Field(
        5, ge=1, le=50, description="CRM search allows 5 requests a second per account."
    )
    page_size: int = Field(200, ge=1, le=200, description="Records per search page (max 200).")

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not a URL; use e.g. {DEFAULT_BASE_URL!r}")
        return value.rstrip("/")

    @field_validator("properties")
    @classmethod
    def _properties(cls, value: list[str]) -> list[str]:
        blank = [name for name in value if not name.strip()]
        if blank:
            raise ValueError("property names must not be empty")
        return list(dict.fromkeys(name.strip() for name in value))

    @model_validator(mode="after")
    def _one_auth(self) -> HubSpotSettings:
        oauth = (self.client_id, self.client_secret, self.refresh_token)
        if self.access_token is not None:
            if any(part is not None for part in oauth):
                raise ValueError(
                    "set either access_token (a private app) or client_id, client_secret and "
                    "refresh_token (an OAuth app), not both"
                )
            return self
        if all(part is not None for part in oauth):
            return self
        missing = [
            name
            for name, part in zip(
                ("client_id", "client_secret", "refresh_token"), oauth, strict=True
            )
            if part is None
        ]
        if len(missing) == 3:
            raise ValueError(
                "no credentials: set access_token to a private app token "
                '(access_token = "${HUBSPOT_TOKEN}"), or client_id, client_secret and '
                "refresh_token for an OAuth app"
            )
        raise ValueError(
            f"OAuth needs client_id, client_secret and refresh_token; missing {missing}"
        )

    @property
    def scopes(self) -> list[str]:
        """The scopes the token needs for this configuration."""
        if self.object == "leads":
            return ["crm.objects.leads.read", "crm.objects.contacts.read"]
        return ["crm.objects.contacts.read"]
