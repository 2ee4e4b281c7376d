"""The payload hash: what tells the engine that a lead is unchanged since Naturalead accepted it.

The ledger keeps this hash for every lead, so its bytes must never change: it is the blake2b
(16 bytes) of ``json.dumps([signature, payload], sort_keys=True, separators=(",", ":"),
default=str)``. The same canonical JSON of the payload is the lead's text in the request body.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any

__all__ = ["canonical_json", "payload_hash", "text_hash"]


def _canonical_encoder(make: Callable[..., Any] | None) -> Callable[[Any], str]:
    """The canonical JSON of a value, from the standard library's C encoder ``make`` made once
    (``JSONEncoder.encode`` makes one per call, half the cost of encoding a lead), or from
    ``JSONEncoder.encode`` where there is no C encoder.

    What it encodes (a lead's values, a record's fields) is never circular, so the check for
    that is left out (a value holding itself raises RecursionError instead of ValueError).
    """
    encoder = json.JSONEncoder(
        sort_keys=True, separators=(",", ":"), default=str, check_circular=False
    )
    if make is None:
        return encoder.encode
    chunks = make(
        None,  # no circularity markers
        encoder.default,
        json.encoder.encode_basestring_ascii,
        None,  # no indent
        encoder.key_separator,
        encoder.item_separator,
        encoder.sort_keys,
        encoder.skipkeys,
        encoder.allow_nan,
    )

    def encode(value: Any) -> str:
        return "".join(chunks(value, 0))

    return encode


#: ``json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)``, faster.
canonical_json: Callable[[Any], str] = _canonical_encoder(
    getattr(json.encoder, "c_make_encoder", None)
)


def payload_hash(signature: str, payload: dict[str, Any]) -> str:
    """A short, stable hash of what would be sent for one lead, under ``signature`` (the
    batch source and the validation policy, which change what is sent).

    It is the blake2b (16 bytes) of the canonical JSON of ``[signature, payload]``; the hash
    of the signature's part is computed once and copied.
    """
    return text_hash(signature, canonical_json(payload))


def text_hash(signature: str, text: str) -> str:
    """:func:`payload_hash` of a payload whose canonical JSON is ``text``."""
    digest = _signed(signature).copy()
    digest.update(f"{text}]".encode())
    return digest.hexdigest()


@lru_cache(maxsize=64)
def _signed(signature: str) -> hashlib.blake2b:
    """A hash fed with the start of the canonical text: ``["<signature>",``."""
    return hashlib.blake2b(f"[{canonical_json(signature)},".encode(), digest_size=16)
