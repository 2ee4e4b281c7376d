"""Settings of the acme connector: ``[connections.settings]`` in the config file."""

from __future__ import annotations

from pydantic import Field, SecretStr

from naturalead_sync import ConnectorSettings

__all__ = ["AcmeSettings"]


class AcmeSettings(ConnectorSettings):
    """Where Acme CRM's API is and how to sign in. Unknown keys are rejected."""

    base_url: str = Field(description="The API root, e.g. https://api.acme.example.")
    api_token: SecretStr = Field(description='An API token; use "${ACME_TOKEN}".')
    page_size: int = Field(100, ge=1, le=1000, description="Records per page.")
