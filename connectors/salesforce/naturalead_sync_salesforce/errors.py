"""The connector's own error, apart from :mod:`.api` so that handling it loads no Salesforce
client library."""

from __future__ import annotations

from naturalead_sync import ConnectorError

__all__ = ["SalesforceCallError"]


class SalesforceCallError(ConnectorError):
    """A Salesforce call failed; ``code`` is Salesforce's ``errorCode`` when it sent one."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code
