"""Generated contacts: realistic values, a unique email and a unique valid phone each.

Contact ``n`` has email ``lead{n}@example.com`` and phone ``+1 <area> 555 <nnnn>``, with
the area code picked by ``n // 10000`` from 16 US codes (so 160,000 distinct numbers, all
valid for ``phonenumbers.is_valid_number``). Every third contact also has a mobile phone
from 16 other area codes. Names, companies, stages and statuses come from a seeded RNG.
"""

from __future__ import annotations

import random

__all__ = ["CAPACITY", "contact_properties"]

_PHONE_AREAS = (415, 212, 312, 617, 206, 303, 512, 404, 213, 646, 718, 202, 305, 702, 619, 503)
_MOBILE_AREAS = (628, 332, 773, 857, 425, 720, 737, 470, 424, 917, 347, 872, 781, 360, 970, 346)
#: How many contacts can be generated before phones would repeat.
CAPACITY = 10_000 * len(_PHONE_AREAS)

_FIRST = (
    "Ada", "Ben", "Chloe", "Dmitri", "Elena", "Farah", "Gustav", "Hana", "Ivan", "Jules",
    "Kofi", "Lena", "Mateo", "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tariq",
)  # fmt: skip
_LAST = (
    "Andersen", "Baker", "Castillo", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad",
    "Ito", "Jensen", "Kowalski", "Lopez", "Moreau", "Nakamura", "Okafor", "Petrov",
)  # fmt: skip
_COMPANIES = (
    "Acme Corp", "Globex", "Initech", "Umbrella Health", "Stark Logistics", "Wayne Foods",
    "Hooli", "Vandelay Imports", "Soylent Labs", "Tyrell Systems",
)  # fmt: skip
_STAGES = ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity")
_STATUSES = ("NEW", "OPEN", "IN_PROGRESS", "ATTEMPTED_TO_CONTACT", "CONNECTED", "UNQUALIFIED")
_TITLES = ("CEO", "Head of Sales", "Office Manager", "Engineer", "Buyer", None)


def _phone(n: int, areas: tuple[int, ...]) -> str:
    return f"+1{areas[n // 10_000]}555{n % 10_000:04d}"


def contact_properties(n: int, rng: random.Random) -> dict[str, str | None]:
    """The properties of generated contact ``n`` (``0 <= n < CAPACITY``)."""
    if not 0 <= n < CAPACITY:
        raise ValueError(f"the emulator can generate {CAPACITY} contacts with unique phones")
    properties: dict[str, str | None] = {
        "firstname": rng.choice(_FIRST),
        "lastname": rng.choice(_LAST),
        "email": f"lead{n}@example.com",
        "phone": _phone(n, _PHONE_AREAS),
        "company": rng.choice(_COMPANIES),
        "jobtitle": rng.choice(_TITLES),
        "lifecyclestage": rng.choice(_STAGES),
        "hs_lead_status": rng.choice(_STATUSES),
    }
    if n % 3 == 0:
        properties["mobilephone"] = _phone(n, _MOBILE_AREAS)
    return properties
