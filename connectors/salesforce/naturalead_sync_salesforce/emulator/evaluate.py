"""Running a parsed query: predicates, sorting and the (SystemModstamp, Id) planner.

:func:`key_range` turns a WHERE clause into a range of the (SystemModstamp, Id) index and says
whether that range *is* the answer, so the cursor query
``WHERE SystemModstamp > T OR (SystemModstamp = T AND Id > 'X')`` never scans the table.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeGuard

from .schema import TEXT_TYPES, FieldDef, Record
from .soql import Compare, Expr, Junction, Not, OrderItem

__all__ = ["Key", "KeyRange", "Predicate", "index_order", "key_range", "predicate", "sort_records"]

_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}

Predicate = Callable[[Record], bool]


def _normalizer(f: FieldDef) -> Callable[[Any], Any]:
    if f.type in TEXT_TYPES and f.type not in ("id", "reference"):
        return str.lower
    return lambda value: value


def _like(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"(\\[%_]|%|_)", pattern)
    wild = {"%": ".*", "_": ".", "\\%": "%", "\\_": "_"}
    regex = "".join(wild[p] if p in wild else re.escape(p) for p in parts)
    return re.compile(regex, re.IGNORECASE | re.DOTALL)


def _compare(c: Compare) -> Predicate:
    get, norm, op, value = c.field.value, _normalizer(c.field), c.op, c.value
    if op in ("IN", "NOT IN"):
        values = frozenset(None if v is None else norm(v) for v in value)
        if op == "IN":
            return lambda r: (x := get(r)) is not None and norm(x) in values
        return lambda r: (x := get(r)) is None or norm(x) not in values
    if op == "LIKE":
        regex = _like(value)
        return lambda r: (x := get(r)) is not None and regex.fullmatch(x) is not None
    if value is None:
        return (lambda r: get(r) is None) if op == "=" else (lambda r: get(r) is not None)
    target = norm(value)
    if op == "=":
        return lambda r: (x := get(r)) is not None and norm(x) == target
    if op == "!=":
        return lambda r: (x := get(r)) is None or norm(x) != target
    cmp = _CMP[op]
    return lambda r: (x := get(r)) is not None and cmp(norm(x), target)


def predicate(expr: Expr) -> Predicate:
    """A function telling whether a record matches ``expr``."""
    if isinstance(expr, Compare):
        return _compare(expr)
    if isinstance(expr, Not):
        inner = predicate(expr.term)
        return lambda r: not inner(r)
    terms = [predicate(t) for t in expr.terms]
    if expr.op == "AND":
        return lambda r: all(t(r) for t in terms)
    return lambda r: any(t(r) for t in terms)


def sort_records(records: list[Record], order_by: tuple[OrderItem, ...]) -> None:
    """Sort ``records`` in place by ``order_by`` (case-insensitive text, nulls first by
    default)."""
    for item in reversed(order_by):
        get, norm = item.field.value, _normalizer(item.field)
        rank = 2 if item.nulls_last != item.descending else 0

        def key(r: Record, get: Any = get, norm: Any = norm, rank: int = rank) -> Any:
            x = get(r)
            return (rank, 0) if x is None else (1, norm(x))

        records.sort(key=key, reverse=item.descending)


def index_order(order_by: tuple[OrderItem, ...]) -> str | None:
    """``"asc"`` or ``"desc"`` when the (SystemModstamp, Id) index order satisfies
    ``order_by``, else None."""
    names = tuple(item.field.name for item in order_by)
    directions = {item.descending for item in order_by}
    if names in ((), ("SystemModstamp",), ("SystemModstamp", "Id")) and len(directions) <= 1:
        return "desc" if True in directions else "asc"
    return None


Key = tuple[datetime, str]
_LOW, _HIGH = "", "\U0010ffff"


@dataclass(frozen=True)
class KeyRange:
    """Index keys ``lo <= key < hi`` (None: unbounded); ``exact`` when every key in the range
    matches, so no record needs the predicate."""

    lo: Key | None = None
    hi: Key | None = None
    exact: bool = False


def _stamp_range(c: Compare) -> KeyRange:
    t = c.value
    bounds: dict[str, tuple[Key | None, Key | None]] = {
        ">": ((t, _HIGH), None),
        ">=": ((t, _LOW), None),
        "<": (None, (t, _LOW)),
        "<=": (None, (t, _HIGH)),
        "=": ((t, _LOW), (t, _HIGH)),
    }
    return KeyRange(*bounds[c.op], exact=True) if c.op in bounds else KeyRange()


def _id_range(c: Compare, t: datetime) -> KeyRange:
    x = c.value
    after = x + "\0"  # the smallest string above x
    bounds: dict[str, tuple[Key, Key]] = {
        ">": ((t, after), (t, _HIGH)),
        ">=": ((t, x), (t, _HIGH)),
        "<": ((t, _LOW), (t, x)),
        "<=": ((t, _LOW), (t, after)),
        "=": ((t, x), (t, after)),
    }
    return KeyRange(*bounds[c.op], exact=True) if c.op in bounds else KeyRange()


def _is(expr: Expr, name: str, kind: type, op: str | None = None) -> TypeGuard[Compare]:
    """Whether ``expr`` compares field ``name`` with a ``kind`` value (using ``op``)."""
    return (
        isinstance(expr, Compare)
        and expr.field.name == name
        and isinstance(expr.value, kind)
        and op in (None, expr.op)
    )


def key_range(expr: Expr | None) -> KeyRange:
    """The part of the (SystemModstamp, Id) index that can hold matches of ``expr``."""
    if expr is None:
        return KeyRange(exact=True)
    if isinstance(expr, Compare) and _is(expr, "SystemModstamp", datetime):
        return _stamp_range(expr)
    if not isinstance(expr, Junction):
        return KeyRange()
    if expr.op == "AND":
        terms = expr.terms
        stamps = [t.value for t in terms if _is(t, "SystemModstamp", datetime, "=")]
        parts = [
            _id_range(t, stamps[0]) if stamps and _is(t, "Id", str) else key_range(t) for t in terms
        ]
        los = [p.lo for p in parts if p.lo is not None]
        his = [p.hi for p in parts if p.hi is not None]
        exact = all(p.exact for p in parts)
        return KeyRange(max(los) if los else None, min(his) if his else None, exact)
    # OR: the hull of the parts, exact when they are exact and leave no gap between them.
    parts = sorted((key_range(t) for t in expr.terms), key=lambda p: p.lo or ())
    lo, reach, contiguous = parts[0].lo, parts[0].hi, True
    for p in parts[1:]:
        if reach is not None and p.lo is not None and p.lo > reach:
            contiguous = False
        reach = None if reach is None or p.hi is None else max(reach, p.hi)
    return KeyRange(lo, reach, contiguous and all(p.exact for p in parts))
