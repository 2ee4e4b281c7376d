"""Realistic, valid and unique seed data for Leads and Contacts.

Phones are ``+1{area}555{NNNN}``: 20 US area codes of 10,000 numbers each, every one valid for
``phonenumbers.is_valid_number``, and unique across every seeded record of the org (200,000 at
most). Emails are ``lead{n}@example.com`` / ``contact{n}@example.com``. Everything else comes
from small pools drawn with the org's ``seed``, so the same seed gives the same data.
"""

from __future__ import annotations

import random
from typing import Any

__all__ = ["Seeder"]

# (area code, city, state, postal code)
_AREAS = (
    ("415", "San Francisco", "CA", "94105"),
    ("212", "New York", "NY", "10001"),
    ("312", "Chicago", "IL", "60601"),
    ("617", "Boston", "MA", "02108"),
    ("206", "Seattle", "WA", "98101"),
    ("303", "Denver", "CO", "80202"),
    ("512", "Austin", "TX", "78701"),
    ("404", "Atlanta", "GA", "30303"),
    ("213", "Los Angeles", "CA", "90012"),
    ("718", "Brooklyn", "NY", "11201"),
    ("305", "Miami", "FL", "33130"),
    ("503", "Portland", "OR", "97204"),
    ("202", "Washington", "DC", "20001"),
    ("602", "Phoenix", "AZ", "85004"),
    ("615", "Nashville", "TN", "37203"),
    ("702", "Las Vegas", "NV", "89101"),
    ("713", "Houston", "TX", "77002"),
    ("773", "Chicago", "IL", "60614"),
    ("858", "San Diego", "CA", "92121"),
    ("919", "Raleigh", "NC", "27601"),
)
_PER_AREA = 10_000
_FIRST = (
    "Ada", "Alan", "Grace", "Linus", "Margaret", "Dennis", "Barbara", "Ken", "Frances", "John",
    "Radia", "Tim", "Hedy", "Vint", "Katherine", "Guido", "Karen", "Edsger", "Sophie", "Niklaus",
)  # fmt: skip
_LAST = (
    "Lovelace", "Turing", "Hopper", "Torvalds", "Hamilton", "Ritchie", "Liskov", "Thompson",
    "Allen", "McCarthy", "Perlman", "Berners-Lee", "Lamarr", "Cerf", "Johnson", "van Rossum",
    "Sparck Jones", "Dijkstra", "Wilson", "Wirth",
)  # fmt: skip
_COMPANIES = (
    "Acme Corp", "Globex", "Initech", "Umbrella Health", "Stark Industries", "Wayne Enterprises",
    "Hooli", "Vandelay Industries", "Soylent", "Cyberdyne Systems", "Wonka Foods",
    "Tyrell Corp", "Aperture Labs", "Gringotts Bank", "Oceanic Airlines",
)  # fmt: skip
_TITLES = (
    "CEO", "CTO", "VP Sales", "Head of Marketing", "Operations Manager", "Procurement Lead",
    "IT Director", "Office Manager", "Founder", "Sales Representative",
)  # fmt: skip
_STATUSES = ("Open - Not Contacted", "Working - Contacted", "Closed - Not Converted")
_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")
_INDUSTRIES = ("Technology", "Healthcare", "Finance", "Retail", "Manufacturing", "Education")
_RATINGS = ("Hot", "Warm", "Cold")


class Seeder:
    """Makes field values for seeded records; counters keep phones and emails unique."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._phones = 0
        self._emails = {"Lead": 0, "Contact": 0}

    def _person(self, sobject: str) -> tuple[dict[str, Any], tuple[str, str, str]]:
        """Name, title, email, phone and source, plus the phone's (city, state, postal code)."""
        if self._phones >= len(_AREAS) * _PER_AREA:
            raise ValueError(f"the emulator seeds at most {len(_AREAS) * _PER_AREA} records")
        area, city, state, postal = _AREAS[self._phones // _PER_AREA]
        phone = f"+1{area}555{self._phones % _PER_AREA:04d}"
        self._phones += 1
        self._emails[sobject] += 1
        rng = self._rng
        values = {
            "FirstName": rng.choice(_FIRST),
            "LastName": rng.choice(_LAST),
            "Title": rng.choice(_TITLES),
            "Email": f"{sobject.lower()}{self._emails[sobject]}@example.com",
            "Phone": phone,
            "LeadSource": rng.choice(_SOURCES),
        }
        return values, (city, state, postal)

    def lead(self) -> dict[str, Any]:
        """Field values for one new Lead."""
        values, (city, state, postal) = self._person("Lead")
        rng = self._rng
        values.update(
            Company=rng.choice(_COMPANIES),
            Status=rng.choice(_STATUSES),
            Industry=rng.choice(_INDUSTRIES),
            Rating=rng.choice(_RATINGS),
            City=city,
            State=state,
            PostalCode=postal,
            Country="United States",
            NumberOfEmployees=rng.choice((5, 20, 50, 200, 1000)),
            Score__c=float(rng.randint(0, 100)),
        )
        return values

    def contact(self) -> dict[str, Any]:
        """Field values for one new Contact."""
        values, (city, state, postal) = self._person("Contact")
        values.update(
            MailingCity=city,
            MailingState=state,
            MailingPostalCode=postal,
            MailingCountry="United States",
        )
        return values
