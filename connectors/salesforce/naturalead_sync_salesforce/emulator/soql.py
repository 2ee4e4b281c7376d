"""The SOQL subset the emulator understands: tokenizer, parser and the parsed query.

Grammar (keywords in any case)::

    SELECT (COUNT() | field, ...) FROM sobject [WHERE condition]
        [ORDER BY field [ASC|DESC] [NULLS FIRST|LAST], ...] [LIMIT n] [OFFSET n]
    condition := term {AND term} | term {OR term}    (mixing AND and OR needs parentheses)
    term      := NOT term | ( condition ) | field op literal
               | field [NOT] IN (literal, ...) | field LIKE 'pattern'
    op        := = | != | <> | < | <= | > | >=

Literals: quoted strings with backslash escapes, numbers, ``true``/``false``/``null``, dates
``2024-05-01`` and unquoted datetimes ``2024-05-01T10:22:31Z`` / ``+hh:mm`` / ``-hh:mm`` with
optional milliseconds. A literal must match its field's type, as in SOQL. Text compares and
sorts case-insensitively; ids compare as exact strings (a 15-character id literal is widened
to 18). Nulls sort first unless ``NULLS LAST``. Not supported: relationship paths
(``Owner.Name``), date literals such as ``TODAY``, ``FIELDS()``, ``GROUP BY``, aggregates
other than ``COUNT()``, semi-joins and subqueries.

:mod:`.evaluate` runs the parsed :class:`Query`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple

from .errors import APIError
from .ids import normalize_id
from .schema import SCHEMAS, TEXT_TYPES, FieldDef, SObjectSchema

__all__ = ["Compare", "Expr", "Junction", "Not", "OrderItem", "Query", "parse"]

_TOKEN = re.compile(
    r"""(?P<ws>\s+)
    |(?P<datetime>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,3})?(?:Z|[+-]\d\d:\d\d))
    |(?P<date>\d{4}-\d\d-\d\d)
    |(?P<number>[+-]?\d+(?:\.\d+)?)
    |(?P<string>'(?:[^'\\]|\\.)*')
    |(?P<op>!=|<>|<=|>=|=|<|>)
    |(?P<punct>[(),])
    |(?P<name>[A-Za-z_][A-Za-z0-9_.]*)""",
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "%": "\\%", "_": "\\_"}
_RANGE_OPS = frozenset({"<", "<=", ">", ">="})
_NO_COLUMN = (
    "No such column '{name}' on entity '{sobject}'. If you are attempting to use a custom "
    "field, be sure to append the '__c' after the custom field name. Please reference your "
    "WSDL or the describe call for the appropriate names."
)
_NO_TYPE = (
    "sObject type '{name}' is not supported. If you are attempting to use a custom object, be "
    "sure to append the '__c' after the entity name. Please reference your WSDL or the "
    "describe call for the appropriate names."
)
_KIND = {"datetime": "dateTime", "int": "integer"}


class _Token(NamedTuple):
    kind: str
    text: str
    pos: int


@dataclass(frozen=True)
class Compare:
    """``field op value``; ``op`` is one of ``= != < <= > >= IN NOT IN LIKE``."""

    field: FieldDef
    op: str
    value: Any


@dataclass(frozen=True)
class Junction:
    """Terms joined by ``AND`` or ``OR``."""

    op: str
    terms: tuple[Expr, ...]


@dataclass(frozen=True)
class Not:
    """``NOT term``."""

    term: Expr


Expr = Compare | Junction | Not


@dataclass(frozen=True)
class OrderItem:
    """One ``ORDER BY`` key."""

    field: FieldDef
    descending: bool = False
    nulls_last: bool = False


@dataclass(frozen=True)
class Query:
    """A parsed query; ``fields`` is empty for ``SELECT COUNT()``."""

    schema: SObjectSchema
    fields: tuple[FieldDef, ...]
    count: bool
    where: Expr | None
    order_by: tuple[OrderItem, ...]
    limit: int | None
    offset: int


def _error(text: str, pos: int, message: str, code: str = "MALFORMED_QUERY") -> APIError:
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    line = text[start : len(text) if end < 0 else end]
    row, col = text.count("\n", 0, pos) + 1, pos - start + 1
    where = f"\n{line}\n{' ' * (col - 1)}^\nERROR at Row:{row}:Column:{col}\n"
    return APIError(400, code, where + message)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise _error(text, pos, f"unexpected token: '{text[pos]}'")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(_Token(kind, match.group(), pos))
        pos = match.end()
    tokens.append(_Token("eof", "<EOF>", len(text)))
    return tokens


def _unquote(literal: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), literal[1:-1])


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.at = 0
        self.schema: SObjectSchema | None = None

    def peek(self) -> _Token:
        return self.tokens[self.at]

    def take(self) -> _Token:
        token = self.tokens[self.at]
        self.at = min(self.at + 1, len(self.tokens) - 1)
        return token

    def unexpected(self, token: _Token) -> APIError:
        return _error(self.text, token.pos, f"unexpected token: '{token.text}'")

    def word(self, *words: str) -> str | None:
        """Consume the next token if it is one of ``words`` (keywords); return it upper-cased."""
        token = self.peek()
        if token.kind == "name" and token.text.upper() in words:
            self.take()
            return token.text.upper()
        return None

    def expect(self, text: str) -> None:
        token = self.take()
        if token.text.upper() != text:
            raise self.unexpected(token)

    def field(self, token: _Token) -> FieldDef:
        assert self.schema is not None
        if token.kind != "name":
            raise self.unexpected(token)
        found = self.schema.field(token.text)
        if found is None:
            message = _NO_COLUMN.format(name=token.text, sobject=self.schema.name)
            raise _error(self.text, token.pos, message, "INVALID_FIELD")
        return found

    def query(self) -> Query:
        self.expect("SELECT")
        ahead = self.tokens[min(self.at + 1, len(self.tokens) - 1)]
        count = self.peek().text.upper() == "COUNT" and ahead.text == "("
        selected: list[_Token] = []
        if count:
            self.take()
            self.expect("(")
            self.expect(")")
        else:
            selected.append(self.take())
            while self.peek().text == ",":
                self.take()
                selected.append(self.take())
        self.expect("FROM")
        sobject = self.take()
        wanted = sobject.text.lower()
        self.schema = next((s for n, s in SCHEMAS.items() if n.lower() == wanted), None)
        if self.schema is None or sobject.kind != "name":
            message = _NO_TYPE.format(name=sobject.text)
            raise _error(self.text, sobject.pos, message, "INVALID_TYPE")
        fields = tuple(self.field(token) for token in selected)
        for i, f in enumerate(fields):
            if f in fields[:i]:
                raise _error(self.text, selected[i].pos, f"duplicate field selected: {f.name}")
        where = self.condition() if self.word("WHERE") else None
        order_by = self.order_by() if self.word("ORDER") else ()
        limit = self.integer() if self.word("LIMIT") else None
        offset = self.integer() if self.word("OFFSET") else 0
        if offset > 2000:
            raise APIError(400, "NUMBER_OUTSIDE_VALID_RANGE", "Maximum SOQL offset allowed is 2000")
        if self.peek().kind != "eof":
            raise self.unexpected(self.peek())
        return Query(self.schema, fields, count, where, order_by, limit, offset)

    def integer(self) -> int:
        token = self.take()
        if token.kind != "number" or not token.text.isdigit():
            raise self.unexpected(token)
        return int(token.text)

    def order_by(self) -> tuple[OrderItem, ...]:
        self.expect("BY")
        items: list[OrderItem] = []
        while True:
            token = self.take()
            f = self.field(token)
            if f.type == "address":
                message = f"field '{f.name}' can not be sorted in a query call"
                raise _error(self.text, token.pos, message, "INVALID_FIELD")
            descending = self.word("ASC", "DESC") == "DESC"
            nulls_last = self.word("NULLS") is not None and self.word("FIRST", "LAST") == "LAST"
            items.append(OrderItem(f, descending, nulls_last))
            if self.peek().text != ",":
                return tuple(items)
            self.take()

    def condition(self) -> Expr:
        terms = [self.term()]
        joiner = self.word("AND", "OR")
        while joiner is not None:
            terms.append(self.term())
            other = self.peek()
            if other.kind == "name" and other.text.upper() in ("AND", "OR"):
                if other.text.upper() != joiner:
                    raise self.unexpected(other)
                self.take()
            else:
                break
        return terms[0] if len(terms) == 1 else Junction(joiner or "AND", tuple(terms))

    def term(self) -> Expr:
        if self.word("NOT"):
            return Not(self.term())
        if self.peek().text == "(":
            self.take()
            inner = self.condition()
            self.expect(")")
            return inner
        token = self.take()
        f = self.field(token)
        if f.type == "address":
            message = f"field '{f.name}' can not be filtered in a query call"
            raise _error(self.text, token.pos, message, "INVALID_FIELD")
        negated = self.word("NOT") is not None
        if self.word("IN"):
            self.expect("(")
            values = [self.literal(f)]
            while self.peek().text == ",":
                self.take()
                values.append(self.literal(f))
            self.expect(")")
            return Compare(f, "NOT IN" if negated else "IN", tuple(values))
        if negated:
            raise self.unexpected(self.peek())
        like = self.word("LIKE") is not None
        op = self.peek() if like else self.take()
        if not like and op.kind != "op":
            raise self.unexpected(op)
        if (like and f.type not in TEXT_TYPES) or (op.text in _RANGE_OPS and f.type == "boolean"):
            message = f"invalid operator on {f.type} field"
            raise _error(self.text, op.pos, message, "INVALID_QUERY_FILTER_OPERATOR")
        if like:
            return Compare(f, "LIKE", self.literal(f, like=True))
        value = self.literal(f)
        if value is None and op.text not in ("=", "!=", "<>"):
            raise self.unexpected(self.tokens[self.at - 1])
        return Compare(f, "!=" if op.text == "<>" else op.text, value)

    def literal(self, f: FieldDef, *, like: bool = False) -> Any:
        token = self.take()
        words = {"TRUE": True, "FALSE": False, "NULL": None}
        value: Any
        if token.kind == "string":
            value = _unquote(token.text)
        elif token.kind == "number":
            value = float(token.text) if "." in token.text else int(token.text)
        elif token.kind == "datetime":
            value = datetime.fromisoformat(token.text.replace("Z", "+00:00"))
        elif token.kind == "date":
            value = date.fromisoformat(token.text)
        elif token.kind == "name" and token.text.upper() in words:
            value = words[token.text.upper()]
        else:
            raise self.unexpected(token)
        return self.typed(f, value, token, like)

    def typed(self, f: FieldDef, value: Any, token: _Token, like: bool) -> Any:
        if value is None:
            return None
        text = f.type in TEXT_TYPES
        ok = {
            "boolean": isinstance(value, bool),
            "datetime": isinstance(value, datetime),
            "date": isinstance(value, date) and not isinstance(value, datetime),
        }.get(f.type, isinstance(value, str) if text else isinstance(value, int | float))
        if isinstance(value, bool) and f.type != "boolean":
            ok = False
        if not ok:
            kind = "string" if text else _KIND.get(f.type, f.type)
            quotes = "should be" if text else "should not be"
            message = (
                f"value of filter criterion for field '{f.name}' must be of type {kind} "
                f"and {quotes} enclosed in quotes"
            )
            raise _error(self.text, token.pos, message, "INVALID_FIELD")
        if f.type in ("id", "reference") and not like:
            return normalize_id(value) or value
        return value


def parse(text: str) -> Query:
    """Parse ``text``; raises :class:`APIError` (400 ``MALFORMED_QUERY``, ``INVALID_FIELD``,
    ``INVALID_TYPE``, ...) with Salesforce's ``ERROR at Row:1:Column:N`` message."""
    return _Parser(text).query()
