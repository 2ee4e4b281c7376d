"""Test helpers for code that talks to Salesforce through simple-salesforce.

simple-salesforce builds every URL as ``https://{host}/...`` (instance, ``login``/``test``
and My Domain hosts alike), with no option for another scheme. :class:`LoopbackSession` is the
``requests.Session`` to hand it (``Salesforce(..., session=LoopbackSession(server.url))``): it
sends every ``https://`` request to the emulator over plain HTTP, path and query untouched.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from .connector import SalesforceConnector

__all__ = ["LoopbackSession", "emulated_connector", "rsa_key_pair"]


class LoopbackSession(requests.Session):
    """A session that routes every ``https://`` URL to ``target`` over ``http://``.

    ``target`` is the emulator's URL (``http://127.0.0.1:8765``, e.g. ``LoopbackServer.url``)
    or its ``host:port``. Plain ``http://`` URLs go out unchanged. Proxy and ``.netrc``
    settings from the environment are ignored (``trust_env`` is off), so a corporate proxy
    cannot intercept loopback traffic.
    """

    def __init__(self, target: str) -> None:
        super().__init__()
        self.netloc = urlsplit(target if "://" in target else f"http://{target}").netloc
        self.trust_env = False

    def request(
        self, method: str, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        """Send the request, to the emulator when ``url`` is ``https://``."""
        text = url.decode() if isinstance(url, bytes) else url
        parts = urlsplit(text)
        if parts.scheme == "https":
            text = urlunsplit(("http", self.netloc, parts.path, parts.query, parts.fragment))
        return super().request(method, text, *args, **kwargs)


def emulated_connector(target: str) -> type[SalesforceConnector]:
    """The production connector with its session routed to the emulator at ``target``.

    It is named ``salesforce-emulated``; register it from a test plugin
    (``register(emulated_connector(server.url))``). Only :meth:`SalesforceConnector.session`
    differs, so every call takes the production code path.
    """

    class EmulatedSalesforce(SalesforceConnector):
        name = "salesforce-emulated"

        def session(self) -> requests.Session:
            return LoopbackSession(target)

    return EmulatedSalesforce


def rsa_key_pair() -> tuple[str, str]:
    """A fresh RSA key pair for the JWT bearer flow: ``(private PEM, public PEM)``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public.decode()
