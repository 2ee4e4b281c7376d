"""Realistic account data: the default users, labels and custom fields, then persons and leads.

Person ``n`` (its id) has the email ``person{n}@example.com`` and the phone
``+1{area}555{n % 10000:04d}``, the area code cycling through :data:`AREA_CODES` every 10,000
ids, so phones are unique (and valid for ``phonenumbers``) up to 120,000 persons. About 6%
of persons have no email, 4% no phone; some have a second, non-primary entry. Names mix
unicode; custom fields of every seeded type are set on about 60% of persons. Everything is
drawn from the emulator's seeded random source.
"""

from __future__ import annotations

import random
from typing import Any

from .fields import Entity
from .records import Lead, Person
from .store import Store

__all__ = ["AREA_CODES", "bootstrap", "phone_for", "seed_leads", "seed_persons"]

#: US area codes of seeded phones (``+1 AAA 555 NNNN`` is valid for every one of them).
AREA_CODES = (415, 212, 312, 617, 206, 303, 512, 305, 404, 702, 503, 213)
_FIRST = (
    *("Ana", "José", "Zoë", "Łukasz", "François", "Søren", "Åsa", "Mei", "Ольга", "Priya"),
    *("Nguyễn", "Sean", "Chiara", "Björn", "Aisha", "Tomás", "Yuki", "Émile", "Grace", "Omar"),
)
_LAST = (
    *("Müller", "García", "O'Brien", "Kowalski", "Dubois", "Nørgaard", "Chen", "Иванова"),
    *("Patel", "Tran", "Smith", "Rossi", "Lindqvist", "Haddad", "Suzuki", "Okafor"),
)
_PHONE_LABELS = ("work", "mobile", "work", "home")
_SPAN = 90 * 86_400  # seeded records were added over the last 90 days


def phone_for(n: int, exchange: int = 555) -> str:
    """The seeded phone of person ``n`` (``exchange`` 556 gives its second phone)."""
    area = AREA_CODES[(n // 10_000) % len(AREA_CODES)]
    return f"+1{area}{exchange}{n % 10_000:04d}"


def bootstrap(store: Store) -> None:
    """Create the account's users, person and lead labels, orgs and custom fields."""
    store.add_user("Ada Owner", "ada@example.com", is_admin=True)
    store.add_user("Björn Seller", "bjorn@example.com")
    store.add_user("Chiara Rep", "chiara@example.com")
    for name, color in (("Hot", "red"), ("Warm", "yellow"), ("Cold", "blue")):
        store.add_person_label(name, color)
        store.add_lead_label(name, color)
    store.add_person_label("Customer", "green")
    for n in range(1, 6):
        store.add_org(f"Org {n} GmbH", owner_id=(n % 3) + 1)
    person_fields: tuple[tuple[str, str, tuple[str, ...]], ...] = (
        ("Lead source", "enum", ("Web", "Referral", "Event", "Cold call")),
        ("Interests", "set", ("Product A", "Product B", "Support", "Training")),
        ("Budget", "monetary", ()),
        ("Score", "double", ()),
        ("Notes", "text", ()),
        ("Birthday", "date", ()),
        ("Office address", "address", ()),
        ("Contract period", "daterange", ()),
    )
    for name, kind, options in person_fields:
        store.add_field("person", name, kind, options)
    deal_fields: tuple[tuple[str, str, tuple[str, ...]], ...] = (
        ("Deal source", "enum", ("Inbound", "Outbound", "Partner")),
        ("Products", "set", ("Basic", "Pro", "Enterprise")),
        ("Expected revenue", "monetary", ()),
        ("Campaign", "varchar", ()),
    )
    for name, kind, options in deal_fields:
        store.add_field("deal", name, kind, options)


def _custom_value(kind: str, options: list[int], rng: random.Random) -> Any:
    """A random v2-form value of a seeded field type."""
    if kind == "enum":
        return rng.choice(options)
    if kind == "set":
        return sorted(rng.sample(options, rng.randint(1, 2)))
    if kind == "monetary":
        return {"value": rng.randrange(500, 90_000), "currency": rng.choice(("USD", "EUR"))}
    if kind == "double":
        return round(rng.uniform(0, 100), 2)
    if kind == "date":
        return f"{rng.randint(1950, 2004)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if kind == "daterange":
        return {"value": "2026-01-01", "until": "2026-12-31"}
    if kind == "address":
        street = f"{rng.randint(1, 999)} Market St"
        return {
            "value": f"{street}, San Francisco, CA, USA",
            "route": "Market St",
            "locality": "San Francisco",
            "country": "United States",
            "postal_code": "94103",
        }
    return rng.choice(("Met at the fair", "Prefers email", "Call after 5 pm ☎", "VIP"))


def _custom_values(store: Store, entity: Entity, rng: random.Random) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for made in store.fields.custom(entity):
        if rng.random() < 0.6:
            options = [option.id for option in made.options]
            values[made.key] = _custom_value(made.field_type, options, rng)
    return values


def seed_persons(
    store: Store, rng: random.Random, count: int, *, same_update_time: bool = False
) -> list[Person]:
    """Create ``count`` persons added over the last 90 days. About a quarter share one of 20
    bulk-edit seconds (ties); with ``same_update_time`` every one has the same
    ``update_time`` (an hour ago)."""
    now = store.seconds()
    while len(store.orgs) < count // 20:
        store.add_org(f"Org {len(store.orgs) + 1} Ltd")
    orgs, users = list(store.orgs), list(store.users)
    labels = [option.id for option in store.fields.get("person", "label_ids").options]
    bulk_edits = [now - rng.randrange(3_600, _SPAN) for _ in range(20)]
    made: list[Person] = []
    with store.index.bulk():
        for _ in range(count):
            n = store.next_person_id
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            emails: list[dict[str, Any]] = []
            if rng.random() >= 0.06:
                emails.append({"value": f"person{n}@example.com", "primary": True})
                if rng.random() < 0.2:
                    emails.append({"value": f"person{n}.home@example.net", "label": "home"})
            phones: list[dict[str, Any]] = []
            if rng.random() >= 0.04:
                phones.append({"value": phone_for(n), "label": rng.choice(_PHONE_LABELS)})
                if rng.random() < 0.1:
                    phones.append({"value": phone_for(n, 556), "label": "home"})
            if same_update_time:
                updated = now - 3_600
                added = updated - rng.randrange(_SPAN)
            else:
                added = now - rng.randrange(3_600, _SPAN)
                bulk = rng.choice(bulk_edits)
                updated = bulk if rng.random() < 0.25 and bulk >= added else rng.randint(added, now)
            made.append(
                store.create_person(
                    f"{first} {last}",
                    first_name=first,
                    last_name=last,
                    owner_id=rng.choice(users),
                    org_id=rng.choice(orgs) if rng.random() < 0.7 else None,
                    emails=emails,
                    phones=phones,
                    label_ids=rng.sample(labels, rng.randint(0, 2)),
                    custom_fields=_custom_values(store, "person", rng),
                    add_time=added,
                    update_time=updated,
                )
            )
    return made


def seed_leads(store: Store, rng: random.Random, count: int, *, archived: int = 0) -> list[Lead]:
    """Create ``count`` leads, 85% linked to a live person (title from the person's name),
    the rest organization-only; the first ``archived`` of them are archived."""
    persons = [person.id for person in store.persons.values() if not person.is_deleted]
    orgs, users = list(store.orgs), list(store.users)
    labels = list(store.lead_labels)
    now = store.millis()
    made: list[Lead] = []
    for n in range(count):
        person_id = rng.choice(persons) if persons and rng.random() < 0.85 else None
        org_id = rng.choice(orgs) if person_id is None or rng.random() < 0.3 else None
        title = (
            store.persons[person_id].name if person_id is not None else store.orgs[org_id or 1].name
        )
        added = now - rng.randrange(3_600_000, _SPAN * 1000)
        lead = store.create_lead(
            f"{title} lead",
            person_id=person_id,
            organization_id=org_id,
            owner_id=rng.choice(users),
            label_ids=rng.sample(labels, rng.randint(0, 1)),
            value={"amount": rng.randrange(100, 50_000), "currency": "USD"}
            if rng.random() < 0.5
            else None,
            custom_fields=_custom_values(store, "deal", rng),
            add_time=added,
            channel_id=rng.choice((None, "Jun23 Billboards", "Newsletter")),
        )
        lead.source_name = rng.choice(("API", "Manually created"))
        lead.update_time = rng.randint(added, now)
        lead.is_archived = n < archived
        made.append(lead)
    return made
