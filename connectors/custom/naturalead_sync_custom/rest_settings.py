"""Settings of the custom connector's REST source: a JSON API described declaratively."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator

from naturalead_sync import ConnectorSettings

from .zones import known_zone

__all__ = ["Auth", "Pagination", "RestSettings"]

Auth = Literal["none", "header", "bearer", "basic"]
Pagination = Literal["none", "page", "offset", "cursor", "link"]


class RestSettings(ConnectorSettings):
    """``[connections.settings]`` of a custom connection with ``source = "rest"``."""

    source: Literal["rest"] = Field(description='"rest": read a JSON API.')
    url: str = Field(
        pattern=r"^https?://", description="The endpoint listing the records (GET), absolute."
    )
    params: dict[str, str] = Field(
        default_factory=dict, description="Fixed query parameters sent with every listing."
    )
    auth: Auth = Field(
        default="none",
        description='"header" (token in auth_header), "bearer" (token), "basic" (username, '
        'password) or "none".',
    )
    auth_header: str = Field(
        default="X-API-Key", min_length=1, description='The header carrying token for "header".'
    )
    token: SecretStr | None = Field(
        default=None, description='The API token for "header" and "bearer", e.g. "${CRM_TOKEN}".'
    )
    username: str | None = Field(default=None, description='The user for "basic".')
    password: SecretStr | None = Field(default=None, description='The password for "basic".')
    pagination: Pagination = Field(
        default="none",
        description='"page" (page number), "offset", "cursor" (next cursor in the body), '
        '"link" (Link header, rel="next") or "none".',
    )
    page_size: int = Field(default=100, ge=1, description="Records asked for per page.")
    page_param: str = Field(default="page", description='The page number parameter ("page").')
    first_page: int = Field(default=1, ge=0, description='The first page\'s number ("page").')
    offset_param: str = Field(default="offset", description='The offset parameter ("offset").')
    size_param: str | None = Field(
        default="limit",
        description='The page-size parameter ("page" and "offset"); null to send none.',
    )
    cursor_path: str = Field(
        default="next_cursor",
        description='Dotted path of the next cursor in the body ("cursor"); empty or null ends.',
    )
    cursor_param: str = Field(default="cursor", description='The cursor parameter ("cursor").')
    max_pages: int = Field(
        default=10_000, ge=1, description="A listing longer than this many pages is an error."
    )
    records_path: str = Field(
        default="",
        description='Dotted path of the records list in the body ("data", "result.items"); '
        "empty when the body is the list.",
    )
    id_path: str = Field(default="id", min_length=1, description="Dotted path of a record's id.")
    modified_path: str = Field(
        default="updated_at",
        min_length=1,
        description="Dotted path of a record's modification time (ISO 8601 or epoch seconds).",
    )
    updated_since_param: str | None = Field(
        default=None,
        description="Query parameter filtering by modification time (sent as ISO 8601 UTC, the "
        "window's start); without it every run lists everything and filters locally.",
    )
    deleted_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="An endpoint listing deleted records (paged like url; updated_since_param "
        "sent too); without it use reconcile_deletes = true on the connection.",
    )
    deleted_records_path: str | None = Field(
        default=None, description="Dotted path of the list in deleted_url's body (records_path)."
    )
    deleted_id_path: str | None = Field(
        default=None, description="Dotted path of a deleted record's id (id_path)."
    )
    sorted: bool = Field(
        default=False,
        description="True when the API lists records oldest-modified first (per-batch "
        "checkpoints).",
    )
    timezone: str = Field(
        default="UTC", description="The time zone of timestamps written without an offset."
    )

    _known_timezone = field_validator("timezone")(known_zone)

    @model_validator(mode="after")
    def _credentials(self) -> Self:
        if self.auth in ("header", "bearer") and self.token is None:
            raise ValueError(f'auth = "{self.auth}" needs token (e.g. token = "${{CRM_TOKEN}}")')
        if self.auth == "basic" and (self.username is None or self.password is None):
            raise ValueError('auth = "basic" needs username and password')
        return self
