"""The emulated account's data: users, organizations, persons, leads, labels, fields, filters.

Persons are kept in keyset indexes (:mod:`.index`). Soft-deleted persons leave the indexes
at once (no list shows them) and the store at the purge, 30 days after deletion.
Every change sets ``update_time`` to the clock's whole second, so edits in one second tie;
a person edit never touches the leads that point at the person. The store is not
thread-safe by itself: the emulator serialises every call under its lock.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .clock import EmulatorClock
from .fields import Entity, Field, FieldRegistry, check_value
from .index import PersonIndex
from .records import Company, Lead, LeadLabel, Organization, Person, User, contacts

__all__ = ["PURGE_SECONDS", "NotFound", "Store"]

#: Soft-deleted persons are purged this long after their deletion.
PURGE_SECONDS = 30 * 86_400
_PERSON_CHANGES = frozenset(
    {"name", "first_name", "last_name", "owner_id", "org_id", "emails", "phones"}
    | {"label_ids", "custom_fields", "visible_to"}
)
_LEAD_CHANGES = frozenset(
    {"title", "owner_id", "person_id", "organization_id", "label_ids", "value"}
    | {"custom_fields", "channel", "channel_id", "was_seen", "expected_close_date"}
)


class NotFound(KeyError):
    """No live record with that id (answered with 404 by the admin interface)."""


class Store:
    """One Pipedrive company's records, with the clock that stamps them."""

    def __init__(self, clock: EmulatorClock, rng: random.Random, company: Company) -> None:
        self.clock = clock
        self.company = company
        self._rng = rng
        self.fields = FieldRegistry(rng, self.seconds())
        self.users: dict[int, User] = {}
        self.orgs: dict[int, Organization] = {}
        self.persons: dict[int, Person] = {}
        self.leads: dict[str, Lead] = {}
        self.lead_labels: dict[str, LeadLabel] = {}
        self.filters: dict[int, dict[str, int]] = {}
        self.index = PersonIndex()
        self._deleted: set[int] = set()
        self._lead_seq = 0
        self._next_person_id = 1

    # -- time and ids ---------------------------------------------------------------------

    def seconds(self) -> int:
        """The clock's current whole second."""
        return int(self.clock.timestamp())

    def millis(self) -> int:
        """The clock's current millisecond."""
        return int(self.clock.timestamp() * 1000)

    def new_uuid(self) -> str:
        """A UUID from the seeded random source."""
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    # -- account: users, organizations, labels, filters ------------------------------------

    def add_user(self, name: str, email: str, *, is_admin: bool = False) -> User:
        """Add a user (an owner for persons and leads)."""
        user = User(len(self.users) + 1, name, email, is_admin, created=self.seconds())
        self.users[user.id] = user
        return user

    def add_org(self, name: str, owner_id: int | None = None) -> Organization:
        """Add an organization owned by ``owner_id`` (default: the first user)."""
        owner = self._user(owner_id)
        number, now = len(self.orgs) + 1, self.seconds()
        org = Organization(number, name, owner, f"{number} Main St", now, now)
        self.orgs[org.id] = org
        return org

    def delete_org(self, org_id: int) -> Organization:
        """Soft-delete an organization: lists leave it out, its persons keep its id."""
        org = self.orgs.get(org_id)
        if org is None or org.is_deleted:
            raise NotFound(f"organization {org_id}")
        org.is_deleted, org.update_time = True, self.seconds()
        return org

    def add_person_label(self, name: str, color: str = "blue") -> int:
        """Add a person label (an option of the ``label_ids`` field); returns its id."""
        labels = self.fields.get("person", "label_ids")
        self.fields.add_options(labels, [(name, color)])
        return labels.options[-1].id

    def add_lead_label(self, name: str, color: str = "blue") -> LeadLabel:
        """Add a lead label (UUID id)."""
        now = self.millis()
        label = LeadLabel(self.new_uuid(), name, color, now, now)
        self.lead_labels[label.id] = label
        return label

    def add_filter(self, **conditions: int) -> int:
        """Add a saved filter matching persons on ``owner_id``, ``org_id`` and/or ``label_id``
        (all must hold); returns its id."""
        unknown = set(conditions) - {"owner_id", "org_id", "label_id"}
        if unknown:
            raise ValueError(f"filters match owner_id, org_id or label_id, not {sorted(unknown)}")
        filter_id = len(self.filters) + 1
        self.filters[filter_id] = dict(conditions)
        return filter_id

    def filter_matches(self, filter_id: int) -> Callable[[Person], bool]:
        """The predicate of saved filter ``filter_id``; NotFound when unknown."""
        if filter_id not in self.filters:
            raise NotFound(f"filter {filter_id}")
        conditions = self.filters[filter_id]

        def matches(person: Person) -> bool:
            return all(
                value in person.label_ids if name == "label_id" else getattr(person, name) == value
                for name, value in conditions.items()
            )

        return matches

    def add_field(
        self,
        entity: Entity,
        name: str,
        field_type: str,
        options: Sequence[str | tuple[str, str]] = (),
    ) -> Field:
        """Add a custom person or deal (lead) field; see :meth:`FieldRegistry.add`."""
        return self.fields.add(entity, name, field_type, options, created=self.seconds())

    # -- persons --------------------------------------------------------------------------

    @property
    def next_person_id(self) -> int:
        """The id the next created person gets (ids are never reused)."""
        return self._next_person_id

    def person(self, person_id: int) -> Person:
        """The live (not deleted) person ``person_id``; NotFound otherwise."""
        person = self.persons.get(person_id)
        if person is None or person.is_deleted:
            raise NotFound(f"person {person_id}")
        return person

    def create_person(
        self,
        name: str,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        owner_id: int | None = None,
        org_id: int | None = None,
        emails: Sequence[Any] = (),
        phones: Sequence[Any] = (),
        label_ids: Sequence[int] = (),
        custom_fields: Mapping[str, Any] | None = None,
        visible_to: int = 3,
        add_time: int | None = None,
        update_time: int | None = None,
    ) -> Person:
        """Create a person; emails and phones are strings or ``{value, primary, label}``
        entries, custom fields are v2-form values by hash key. Times default to now."""
        created = self.seconds() if add_time is None else add_time
        person = Person(
            id=self._next_person_id,
            name=name,
            first_name=first_name,
            last_name=last_name,
            owner_id=self._user(owner_id),
            org_id=self._org(org_id),
            emails=contacts(list(emails)),
            phones=contacts(list(phones)),
            label_ids=self._labels(label_ids),
            custom_fields=self._custom("person", custom_fields or {}, {}),
            add_time=created,
            update_time=max(created, update_time if update_time is not None else created),
            visible_to=visible_to,
        )
        self._next_person_id += 1
        self.persons[person.id] = person
        self.index.add(person)
        return person

    def update_person(self, person_id: int, **changes: Any) -> Person:
        """Change a live person's fields (custom fields merge by key, None clears one) and
        set ``update_time`` to now; linked leads keep their ``update_time``."""
        unknown = set(changes) - _PERSON_CHANGES
        if unknown:
            raise ValueError(f"persons have no field(s) {sorted(unknown)}")
        person = self.person(person_id)
        values = {
            name: self._checked(name, value, person.custom_fields, "person")
            for name, value in changes.items()
        }
        self.index.remove(person)
        for name, value in values.items():
            setattr(person, name, value)
        person.update_time = self.seconds()
        self.index.add(person)
        return person

    def delete_person(self, person_id: int, *, merged_into: int | None = None) -> Person:
        """Soft-delete a live person: ``is_deleted``, ``update_time`` = delete time."""
        person = self.person(person_id)
        self.index.remove(person)
        person.is_deleted = True
        person.merged_into = merged_into
        person.update_time = self.seconds()
        self._deleted.add(person.id)
        return person

    def merge_persons(self, loser_id: int, winner_id: int) -> Person:
        """Merge ``loser_id`` into ``winner_id``: the winner gains the loser's emails, phones
        and labels (its own primaries stay primary) and the custom values it lacks; the
        loser is soft-deleted and its leads move to the winner (an edit of each lead)."""
        if loser_id == winner_id:
            raise ValueError("a person cannot be merged into itself")
        loser, winner = self.person(loser_id), self.person(winner_id)

        def union(own: list[dict[str, Any]], other: list[dict[str, Any]]) -> list[Any]:
            known = {entry["value"] for entry in own}
            return own + [{**e, "primary": False} for e in other if e["value"] not in known]

        self.update_person(
            winner_id,
            emails=union(winner.emails, loser.emails),
            phones=union(winner.phones, loser.phones),
            label_ids=list(dict.fromkeys(winner.label_ids + loser.label_ids)),
            org_id=winner.org_id or loser.org_id,
            custom_fields=loser.custom_fields | winner.custom_fields,
        )
        self.delete_person(loser_id, merged_into=winner_id)
        for lead in self.leads.values():
            if lead.person_id == loser_id:
                lead.person_id = winner_id
                lead.update_time = self.millis()
        return winner

    def purge(self) -> int:
        """Drop soft-deleted persons deleted 30 days ago or more; returns how many."""
        cutoff = self.seconds() - PURGE_SECONDS
        purged = [pid for pid in self._deleted if self.persons[pid].update_time <= cutoff]
        for person_id in purged:
            del self.persons[person_id]
            self._deleted.discard(person_id)
        return len(purged)

    def deleted_count(self) -> int:
        """How many soft-deleted persons are still kept."""
        return len(self._deleted)

    # -- leads ----------------------------------------------------------------------------

    def lead(self, lead_id: str) -> Lead:
        """The lead ``lead_id`` (archived or not); NotFound otherwise."""
        if lead_id not in self.leads:
            raise NotFound(f"lead {lead_id}")
        return self.leads[lead_id]

    def create_lead(
        self,
        title: str,
        *,
        person_id: int | None = None,
        organization_id: int | None = None,
        owner_id: int | None = None,
        label_ids: Sequence[str] = (),
        value: Mapping[str, Any] | None = None,
        custom_fields: Mapping[str, Any] | None = None,
        add_time: int | None = None,
        **extra: Any,
    ) -> Lead:
        """Create a lead linked to a person, an organization or both; ``add_time`` in ms.
        ``extra`` sets ``channel``, ``channel_id``, ``was_seen`` or ``expected_close_date``."""
        created = self.millis() if add_time is None else add_time
        owner = self._user(owner_id)
        lead = Lead(
            self.new_uuid(), self._lead_seq + 1, title, owner, owner, None, None, created, created
        )
        self._apply_lead(
            lead,
            {
                "person_id": person_id,
                "organization_id": organization_id,
                "label_ids": label_ids,
                "value": value,
                "custom_fields": custom_fields or {},
                **extra,
            },
        )
        self._lead_seq += 1
        self.leads[lead.id] = lead
        return lead

    def _apply_lead(self, lead: Lead, changes: Mapping[str, Any]) -> None:
        """Validate every change first, then apply them all (or none)."""
        unknown = set(changes) - _LEAD_CHANGES
        if unknown:
            raise ValueError(f"leads have no field(s) {sorted(unknown)}")
        values = {
            name: self._checked(name, value, lead.custom_fields, "deal")
            for name, value in changes.items()
        }
        links = {"person_id": lead.person_id, "organization_id": lead.organization_id} | {
            name: value
            for name, value in values.items()
            if name in ("person_id", "organization_id")
        }
        if links["person_id"] is None and links["organization_id"] is None:
            raise ValueError("a lead must link to a person, an organization or both")
        for name, value in values.items():
            setattr(lead, name, value)

    def update_lead(self, lead_id: str, **changes: Any) -> Lead:
        """Change a non-archived lead and set its ``update_time`` to now."""
        lead = self.lead(lead_id)
        if lead.is_archived:
            raise ValueError("archived leads are read-only")
        self._apply_lead(lead, changes)
        lead.update_time = self.millis()
        return lead

    def archive_lead(self, lead_id: str) -> Lead:
        """Archive a lead: it leaves ``/v1/leads`` for ``/v1/leads/archived``."""
        lead = self.lead(lead_id)
        lead.is_archived = True
        lead.update_time = self.millis()
        return lead

    def remove_lead(self, lead_id: str) -> Lead:
        """Delete a lead for good (``DELETE`` or conversion to a deal); returns it."""
        return self.leads.pop(self.lead(lead_id).id)

    # -- validation -----------------------------------------------------------------------

    def _checked(self, name: str, value: Any, custom: Mapping[str, Any], entity: Entity) -> Any:
        """``value`` validated (and normalised) for field ``name`` of a person or lead."""
        if name == "owner_id":
            return self._user(value)
        if name in ("org_id", "organization_id"):
            return self._org(value)
        if name in ("emails", "phones"):
            return contacts(list(value))
        if name == "custom_fields":
            return self._custom(entity, value, custom)
        if name == "label_ids" and entity == "person":
            return self._labels(value)
        if name == "label_ids":
            if set(value) - set(self.lead_labels):
                raise ValueError(f"unknown lead label(s) in {list(value)}")
            return list(value)
        if name == "person_id" and value is not None:
            return self.person(value).id
        if name == "value" and value is not None:
            return dict(value)
        return value

    def _user(self, user_id: int | None) -> int:
        if user_id is None:
            return min(self.users)
        if user_id not in self.users:
            raise ValueError(f"unknown user {user_id}")
        return user_id

    def _org(self, org_id: int | None) -> int | None:
        if org_id is not None and org_id not in self.orgs:
            raise ValueError(f"unknown organization {org_id}")
        return org_id

    def _labels(self, label_ids: Sequence[int]) -> list[int]:
        unknown = set(label_ids) - self.fields.get("person", "label_ids").option_ids()
        if unknown:
            raise ValueError(f"unknown person label(s) {sorted(unknown)}")
        return list(dict.fromkeys(label_ids))

    def _custom(
        self,
        entity: Entity,
        changes: Mapping[str, Any],
        current: Mapping[str, Any],
    ) -> dict[str, Any]:
        known = {made.key: made for made in self.fields.custom(entity)}
        merged = dict(current)
        for key, value in changes.items():
            if key not in known:
                raise ValueError(f"unknown {entity} custom field {key!r}")
            check_value(known[key], value)
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        return merged
