"""CRM search: validating a ``PublicObjectSearchRequest``, matching its filters, ordering.

Filter groups are ORed and the filters of a group ANDed. ``hs_object_id``, ``createdate``
and the last-modified property compare on the record's own numbers (id, epoch ms); other
datetime properties are parsed from their stored ISO strings, number properties compare as
numbers, and everything else as lower-case strings. Values for datetimes may be epoch ms or
ISO-8601. Bounds on ``hs_object_id`` cut the id-ordered index by bisection before any other
filter runs, so the id-window paging a connector does stays cheap on large stores; the
ordered matches of one request are cached until the index changes.
"""

from __future__ import annotations

import math
import operator
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .schema import ObjectSchema, epoch_ms
from .store import Record, SearchIndex

__all__ = [
    "MAX_LIMIT",
    "RESULT_CAP",
    "SearchCache",
    "SearchError",
    "SearchRequest",
    "matches",
    "parse_search",
]

MAX_GROUPS = 5
MAX_FILTERS_PER_GROUP = 6
MAX_FILTERS = 18
MAX_LIMIT = 200
MAX_QUERY = 3000
#: No page may start at or beyond this offset (or, in "after_plus_limit" mode, end beyond it).
RESULT_CAP = 10_000
_VALUE_OPERATORS = ("EQ", "NEQ", "LT", "LTE", "GT", "GTE", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN")
OPERATORS = frozenset(
    (*_VALUE_OPERATORS, "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY")
)
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "EQ": operator.eq,
    "LT": operator.lt,
    "LTE": operator.le,
    "GT": operator.gt,
    "GTE": operator.ge,
}

#: A property's value on a record, as search compares it: an int or float for numbers and
#: datetimes (epoch ms), a lower-case string otherwise, None when unset.
Getter = Callable[[Record], Any]
Predicate = Callable[[Record], bool]


class SearchError(ValueError):
    """A search request HubSpot answers with 400 ``VALIDATION_ERROR``."""


@dataclass(frozen=True)
class Filter:
    """One validated filter; ``value``/``high``/``values`` are strings as sent."""

    property: str
    operator: str
    value: str | None = None
    high: str | None = None
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class SearchRequest:
    """A validated search request. ``sort`` is ``(property, descending)``; ``key`` names what
    selects and orders the results (not the page), for :class:`SearchCache`."""

    groups: tuple[tuple[Filter, ...], ...]
    sort: tuple[str, bool] | None
    properties: tuple[str, ...] | None
    limit: int
    after: int
    query: str
    key: str


def _text(value: Any, what: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise SearchError(f"{what} must be a string")


def _filter(raw: Any) -> Filter:
    if not isinstance(raw, dict) or not isinstance(raw.get("propertyName"), str):
        raise SearchError("Each filter needs a propertyName")
    op = raw.get("operator")
    if op not in OPERATORS:
        raise SearchError(
            f"Invalid operator {op!r}; expected one of {', '.join(sorted(OPERATORS))}"
        )
    found = Filter(raw["propertyName"], op)
    if op in _VALUE_OPERATORS or op == "BETWEEN":
        if raw.get("value") is None:
            raise SearchError(f"Operator {op} needs a value")
        found = Filter(found.property, op, _text(raw["value"], "value"))
    if op == "BETWEEN":
        if raw.get("highValue") is None:
            raise SearchError("Operator BETWEEN needs a highValue")
        found = Filter(found.property, op, found.value, _text(raw["highValue"], "highValue"))
    if op in ("IN", "NOT_IN"):
        values = raw.get("values")
        if not isinstance(values, list) or not values:
            raise SearchError(f"Operator {op} needs a non-empty values list")
        found = Filter(found.property, op, values=tuple(_text(v, "values") for v in values))
    return found


def _sort(raw: Any) -> tuple[str, bool] | None:
    if raw is None or raw == []:
        return None
    if not isinstance(raw, list):
        raise SearchError("sorts must be a list")
    if len(raw) > 1:
        raise SearchError("Only one sort is supported per search request")
    item = raw[0]
    if isinstance(item, str) and item.strip("-"):  # "name" ascending, "-name" descending
        return item.lstrip("-"), item.startswith("-")
    if not isinstance(item, dict) or not isinstance(item.get("propertyName"), str):
        raise SearchError("A sort needs a propertyName")
    direction = item.get("direction", "ASCENDING")
    if direction not in ("ASCENDING", "DESCENDING"):
        raise SearchError(f"Invalid sort direction {direction!r}")
    return item["propertyName"], direction == "DESCENDING"


def _number(raw: Any, name: str, default: int) -> int:
    if raw is None:
        return default
    if isinstance(raw, bool) or not isinstance(raw, int | str) or not str(raw).isdigit():
        raise SearchError(f"{name} must be a non-negative integer, got {raw!r}")
    return int(raw)


def parse_search(body: Any) -> SearchRequest:
    """Validate a search body (``{}`` is fine); :class:`SearchError` says what is wrong."""
    if not isinstance(body, dict):
        raise SearchError("The search request must be a JSON object")
    raw_groups = body.get("filterGroups") or []
    if not isinstance(raw_groups, list) or not all(isinstance(g, dict) for g in raw_groups):
        raise SearchError("filterGroups must be a list of objects")
    if len(raw_groups) > MAX_GROUPS:
        raise SearchError(f"Too many filter groups: {len(raw_groups)}, maximum {MAX_GROUPS}")
    groups: list[tuple[Filter, ...]] = []
    for raw_group in raw_groups:
        filters = raw_group.get("filters") or []
        if not isinstance(filters, list):
            raise SearchError("filters must be a list")
        if len(filters) > MAX_FILTERS_PER_GROUP:
            raise SearchError(
                f"Too many filters in a group: {len(filters)}, maximum {MAX_FILTERS_PER_GROUP}"
            )
        groups.append(tuple(_filter(raw) for raw in filters))
    total = sum(len(group) for group in groups)
    if total > MAX_FILTERS:
        raise SearchError(f"Too many filters: {total}, maximum {MAX_FILTERS} in all groups")
    properties = body.get("properties")
    if properties is not None and (
        not isinstance(properties, list) or not all(isinstance(p, str) for p in properties)
    ):
        raise SearchError("properties must be a list of strings")
    limit = _number(body.get("limit"), "limit", 10)
    if limit > MAX_LIMIT:
        raise SearchError(f"limit must be at most {MAX_LIMIT}, got {limit}")
    query = body.get("query") or ""
    if not isinstance(query, str) or len(query) > MAX_QUERY:
        raise SearchError(f"query must be a string of at most {MAX_QUERY} characters")
    sort = _sort(body.get("sorts"))
    return SearchRequest(
        groups=tuple(groups),
        sort=sort,
        properties=None if properties is None else tuple(properties),
        limit=limit,
        after=_number(body.get("after"), "after", 0),
        query=query,
        key=repr((groups, sort, query)),
    )


# -- matching ------------------------------------------------------------------------------


def _property(name: str, parse: Callable[[str], Any]) -> Getter:
    def get(record: Record) -> Any:
        value = record.properties.get(name)
        if value is None:
            return None
        try:
            return parse(value)
        except ValueError:
            return None

    return get


def _number_value(text: str) -> int | float:
    number = float(text)
    return int(number) if number.is_integer() else number


def _field(schema: ObjectSchema, name: str) -> tuple[str, Getter]:
    """The kind (``number``, ``datetime``, ``string``) of ``name`` and how to read it."""
    if name == "hs_object_id":
        return "number", operator.attrgetter("id")
    if name == "createdate":
        return "datetime", operator.attrgetter("created_ms")
    if name == schema.modified_property:
        return "datetime", operator.attrgetter("updated_ms")
    if name in schema.datetime_properties:
        return "datetime", _property(name, epoch_ms)
    if name in schema.number_properties:
        return "number", _property(name, _number_value)
    return "string", _property(name, str.lower)


def _operand(kind: str, text: str, *, lower: bool = True) -> Any:
    try:
        if kind == "datetime":
            return epoch_ms(text)
        if kind == "number":
            return _number_value(text)
    except ValueError:
        raise SearchError(f"{text!r} is not a valid {kind} value") from None
    return text.lower() if lower else text


def _token_test(pattern: str) -> Callable[[str], bool]:
    """Whether a lower-case value has a whitespace-separated token (or is whole) matching
    ``pattern``, where ``*`` stands for any run of characters."""
    regex = re.compile(".*".join(re.escape(part) for part in pattern.lower().split("*")))
    return lambda text: any(regex.fullmatch(token) for token in (text, *text.split()))


def _predicate(schema: ObjectSchema, found: Filter) -> Predicate:
    kind, get = _field(schema, found.property)
    op = found.operator
    if op in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
        present = op == "HAS_PROPERTY"
        return lambda record: (get(record) is not None) == present
    if op in ("IN", "NOT_IN"):  # string values are not lower-cased: send them lower-case
        wanted = frozenset(_operand(kind, value, lower=False) for value in found.values)
        inside = op == "IN"
        return lambda record: (get(record) in wanted) == inside
    assert found.value is not None  # checked by _filter
    if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        test, text = _token_test(found.value), _property(found.property, str.lower)
        contains = op == "CONTAINS_TOKEN"
        return lambda record: ((value := text(record)) is not None and test(value)) == contains
    value = _operand(kind, found.value)
    if op == "NEQ":
        return lambda record: get(record) != value
    if op == "BETWEEN":
        assert found.high is not None
        high = _operand(kind, found.high)
        return lambda record: (v := get(record)) is not None and value <= v <= high
    compare = _COMPARE[op]
    return lambda record: (v := get(record)) is not None and compare(v, value)


def _id_bounds(found: Filter) -> tuple[float, float] | None:
    """The inclusive id range an ``hs_object_id`` filter allows, if it is a range."""
    if found.property != "hs_object_id" or found.operator not in (*_COMPARE, "BETWEEN"):
        return None
    assert found.value is not None
    value = _operand("number", found.value)
    if found.operator == "EQ":
        return value, value
    if found.operator == "GT":
        return math.floor(value) + 1, math.inf
    if found.operator == "GTE":
        return value, math.inf
    if found.operator == "LT":
        return -math.inf, math.ceil(value) - 1
    if found.operator == "LTE":
        return -math.inf, value
    return value, _operand("number", found.high or "")


def _group(index: SearchIndex, schema: ObjectSchema, group: tuple[Filter, ...]) -> list[Record]:
    low, high = -math.inf, math.inf
    predicates: list[Predicate] = []
    for found in group:
        bounds = _id_bounds(found)
        if bounds is None:
            predicates.append(_predicate(schema, found))
        else:
            low, high = max(low, bounds[0]), min(high, bounds[1])
    start = 0 if low == -math.inf else bisect_left(index.ids, low)
    end = len(index.ids) if high == math.inf else bisect_right(index.ids, high)
    records = index.records[start:end]
    for predicate in predicates:
        records = [record for record in records if predicate(record)]
    return records


def _order(records: list[Record], schema: ObjectSchema, sort: tuple[str, bool] | None) -> None:
    """Sort id-ordered ``records`` in place: by ``sort`` (unset values last, ties by id),
    else by creation time, then id."""
    if sort is None:
        records.sort(key=operator.attrgetter("created_ms"))
        return
    name, descending = sort
    if name == "hs_object_id":
        if descending:
            records.reverse()
        return
    get = _field(schema, name)[1]
    unset = [record for record in records if get(record) is None]
    records[:] = [record for record in records if get(record) is not None]
    records.sort(key=get, reverse=descending)
    records.extend(unset)


def matches(index: SearchIndex, schema: ObjectSchema, request: SearchRequest) -> list[Record]:
    """Every record the index shows that ``request`` selects, in result order."""
    if len(request.groups) <= 1:
        found = _group(index, schema, request.groups[0] if request.groups else ())
    else:
        union = {r.id: r for group in request.groups for r in _group(index, schema, group)}
        found = [union[object_id] for object_id in sorted(union)]
    if request.query:
        needle = request.query.lower()
        found = [
            record
            for record in found
            if any(
                needle in (record.properties.get(name) or "").lower()
                for name in schema.text_properties
            )
        ]
    _order(found, schema, request.sort)
    return found


class SearchCache:
    """The ordered matches of recent searches, valid while the index version stays."""

    def __init__(self, size: int = 16) -> None:
        self._size = size
        self._entries: dict[tuple[str, str, int], list[Record]] = {}

    def matches(
        self, index: SearchIndex, schema: ObjectSchema, request: SearchRequest
    ) -> list[Record]:
        """:func:`matches`, computed once per index version."""
        key = (schema.name, request.key, index.version)
        found = self._entries.get(key)
        if found is None:
            found = self._entries[key] = matches(index, schema, request)
            if len(self._entries) > self._size:
                del self._entries[next(iter(self._entries))]
        return found
