"""Filters and order-by clauses for searching models: a pure parser, no I/O and no SQL.

Registered models, model versions and MLflow's logged models are searched with MLflow's
registry grammar: comparisons joined by ``AND`` (no ``OR``, as in MLflow)::

    filter     := comparison ( AND comparison )*
    comparison := identifier operator ( value | '(' value ( ',' value )* ')' )
    identifier := [ attributes. ] name | tags.key | params.key | metrics.key
    key        := word ( '.' word )* | `back-ticked` | "double-quoted"
    value      := 'string' | "string" | number
    order key  := name [ ASC | DESC ]

Which attributes and prefixes a search accepts is its :class:`Vocabulary`; string attributes,
tags and params compare with quoted strings, numeric attributes and metrics with numbers.
Errors are :class:`InvalidInputError` (``invalid_filter`` / ``invalid_order_by``) whose detail
starts with ``at position N:``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from shipyard.domain.errors import InvalidInputError

Entity: TypeAlias = Literal["attribute", "tag", "param", "metric"]
Value: TypeAlias = str | float | tuple[str | float, ...]

MAX_FILTER_LENGTH = 10_000
MAX_COMPARISONS = 100

STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
NUMBER_OPS = ("=", "!=", "<", "<=", ">", ">=")
# MLflow's registry compares tags (and logged models' params) with these only.
KEY_VALUE_OPS = ("=", "!=", "LIKE", "ILIKE")


@dataclass(frozen=True, slots=True)
class Condition:
    """``entity.key op value``; ``value`` is a tuple for IN / NOT IN."""

    entity: Entity
    key: str
    op: str
    value: Value


@dataclass(frozen=True, slots=True)
class OrderKey:
    entity: Entity
    key: str
    descending: bool = False


@dataclass(frozen=True)
class Vocabulary:
    """What one kind of search understands. ``aliases`` maps other spellings of attributes
    to their names (MLflow's ``creation_time`` for ``creation_timestamp``)."""

    strings: frozenset[str]
    numbers: frozenset[str] = frozenset()
    prefixes: frozenset[Entity] = frozenset({"tag"})
    orderable: frozenset[str] = frozenset()
    aliases: dict[str, str] = field(default_factory=dict)

    def attribute(self, name: str) -> str | None:
        lowered = name.lower()
        lowered = self.aliases.get(lowered, lowered)
        return lowered if lowered in self.strings | self.numbers else None


_PREFIXES: dict[str, Entity] = {
    "tags": "tag",
    "tag": "tag",
    "params": "param",
    "param": "param",
    "metrics": "metric",
    "metric": "metric",
    "attributes": "attribute",
    "attribute": "attribute",
    "attr": "attribute",
}

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'[^']*'|"[^"]*")
    | (?P<backtick>`[^`]*`)
    | (?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)(?![\w.])
    | (?P<op>!=|<=|>=|=|<|>)
    | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<punct>[(),.])
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # string, backtick, number, op, word, punct, eof
    text: str
    pos: int


def _tokens(text: str, code: str, field: str) -> list[_Token]:
    found: list[_Token] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            found.append(_Token("eof", "", len(text)))
            return found
        match = _TOKEN.match(text, pos)
        if match is None or match.lastgroup is None:
            quote = text[pos] if text[pos] in "'\"`" else ""
            what = f"unterminated quote {quote}" if quote else f"unexpected character {text[pos]!r}"
            raise _error(code, field, pos, what)
        start = match.start(match.lastgroup)
        token = _Token(match.lastgroup, match.group(match.lastgroup), start)
        if "\x00" in token.text:
            raise _error(code, field, start, "NUL characters are not allowed")
        found.append(token)
        pos = match.end()


def _error(code: str, field: str, pos: int, message: str) -> InvalidInputError:
    return InvalidInputError(f"at position {pos}: {message}", code=code, field=field)


class _Parser:
    def __init__(self, text: str, vocabulary: Vocabulary, code: str, field: str) -> None:
        self.vocabulary = vocabulary
        self.code = code
        self.field = field
        self.tokens = _tokens(text, code, field)
        self.index = 0

    def fail(self, token: _Token, message: str) -> InvalidInputError:
        return _error(self.code, self.field, token.pos, message)

    @property
    def token(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        self.index = min(self.index + 1, len(self.tokens) - 1)
        return token

    def keyword(self, *words: str) -> bool:
        return self.token.kind == "word" and self.token.text.upper() in words

    def expect_end(self) -> None:
        if self.token.kind != "eof":
            raise self.fail(self.token, f"expected end of input, found {self.token.text!r}")

    def conditions(self) -> list[Condition]:
        found = [self.comparison()]
        while self.keyword("AND"):
            self.advance()
            if len(found) >= MAX_COMPARISONS:
                raise self.fail(self.token, f"a filter may hold at most {MAX_COMPARISONS} terms")
            found.append(self.comparison())
        if self.keyword("OR"):
            raise self.fail(self.token, "OR is not supported here; join conditions with AND")
        if self.token.kind != "eof":
            raise self.fail(self.token, f"expected AND or end of input, found {self.token.text!r}")
        return found

    def identifier(self) -> tuple[Entity, str]:
        first = self.token
        if first.kind != "word":
            raise self.fail(
                first, f"expected a name such as name or tags.key, found {first.text!r}"
            )
        self.advance()
        prefix = _PREFIXES.get(first.text.lower())
        if self.token.kind != "punct" or self.token.text != "." or prefix is None:
            return "attribute", self.attribute(first)
        self.advance()
        key_token = self.token
        if key_token.kind in ("backtick", "string") and key_token.text[0] in '`"':
            key = key_token.text[1:-1]
            self.advance()
        elif key_token.kind == "word":
            parts = [self.advance().text]
            while self.token.kind == "punct" and self.token.text == ".":
                self.advance()
                if self.token.kind not in ("word", "number"):
                    raise self.fail(self.token, "expected the rest of the key after '.'")
                parts.append(self.advance().text)
            key = ".".join(parts)
        else:
            raise self.fail(key_token, f"expected a key after {first.text!r}.")
        if not key:
            raise self.fail(key_token, "expected a key, found an empty one")
        if prefix == "attribute":
            return "attribute", self.attribute(_Token("word", key, key_token.pos))
        if prefix not in self.vocabulary.prefixes:
            raise self.fail(first, f"{first.text}. cannot be used in this search")
        return prefix, key

    def order_name(self) -> str:
        """``[attributes.]name`` as the vocabulary spells it (unchecked: the caller checks)."""
        token = self.advance()
        attribute_prefix = token.kind == "word" and _PREFIXES.get(token.text.lower()) == "attribute"
        if attribute_prefix and self.token.text == ".":
            self.advance()
            token = self.advance()
        if token.kind != "word":
            return token.text
        lowered = token.text.lower()
        return self.vocabulary.aliases.get(lowered, lowered)

    def attribute(self, token: _Token) -> str:
        name = self.vocabulary.attribute(token.text)
        if name is None:
            known = ", ".join(sorted(self.vocabulary.strings | self.vocabulary.numbers))
            prefixes = ", ".join(f"{p}s.<key>" for p in sorted(self.vocabulary.prefixes))
            raise self.fail(token, f"unknown name {token.text!r}: expected {known} or {prefixes}")
        return name

    def comparison(self) -> Condition:
        start = self.token
        entity, key = self.identifier()
        if entity != "attribute" and ('"' in key or "\\" in key):
            # SQLite's JSON paths cannot spell such a key; refuse rather than match nothing.
            raise self.fail(start, "keys holding double quotes or backslashes cannot be searched")
        numeric = entity == "metric" or (entity == "attribute" and key in self.vocabulary.numbers)
        allowed = NUMBER_OPS if numeric else KEY_VALUE_OPS if entity != "attribute" else STRING_OPS
        op_token = self.token
        op = self.operator()
        if op not in allowed:
            raise self.fail(op_token, f"{key!r} does not support {op}; use {', '.join(allowed)}")
        if op in ("IN", "NOT IN"):
            return Condition(entity, key, op, self.value_list(numeric))
        return Condition(entity, key, op, self.value(numeric))

    def operator(self) -> str:
        token = self.token
        if token.kind == "op":
            self.advance()
            return token.text
        if self.keyword("LIKE", "ILIKE", "IN"):
            return self.advance().text.upper()
        if self.keyword("NOT"):
            self.advance()
            if not self.keyword("IN"):
                raise self.fail(self.token, "expected IN after NOT")
            self.advance()
            return "NOT IN"
        raise self.fail(token, f"expected an operator, found {token.text or 'end of input'!r}")

    def value(self, numeric: bool) -> str | float:
        token = self.token
        if numeric and token.kind == "number":
            self.advance()
            return float(token.text)
        if not numeric and token.kind == "string":
            self.advance()
            return token.text[1:-1]
        wanted = "a number" if numeric else "a quoted string"
        raise self.fail(token, f"expected {wanted}, found {token.text or 'end of input'!r}")

    def value_list(self, numeric: bool) -> tuple[str | float, ...]:
        if self.token.text != "(":
            raise self.fail(self.token, "expected '(' and a list of values")
        self.advance()
        values = [self.value(numeric)]
        while self.token.text == ",":
            self.advance()
            values.append(self.value(numeric))
        if self.token.text != ")":
            raise self.fail(self.token, "expected ',' or ')' in the list")
        self.advance()
        return tuple(values)


def parse_filter(text: str | None, vocabulary: Vocabulary) -> list[Condition]:
    """The conditions of a filter, all of which must hold (none: everything matches)."""
    if text is None or not text.strip():
        return []
    if len(text) > MAX_FILTER_LENGTH:
        raise _error("invalid_filter", "filter", MAX_FILTER_LENGTH, "the filter is too long")
    return _Parser(text, vocabulary, "invalid_filter", "filter").conditions()


def parse_order_by(items: list[str], vocabulary: Vocabulary) -> list[OrderKey]:
    """``name``, ``creation_timestamp DESC``... (only the vocabulary's orderable names)."""
    keys: list[OrderKey] = []
    for index, item in enumerate(items):
        field_name = f"order_by.{index}"
        parser = _Parser(item, vocabulary, "invalid_order_by", field_name)
        key = parser.order_name()
        if key not in vocabulary.orderable:
            orderable = ", ".join(sorted(vocabulary.orderable))
            raise InvalidInputError(
                f"cannot order by {item.strip()!r}: use {orderable}",
                code="invalid_order_by",
                field=field_name,
            )
        descending = False
        if parser.keyword("ASC", "DESC"):
            descending = parser.advance().text.upper() == "DESC"
        parser.expect_end()
        keys.append(OrderKey("attribute", key, descending))
    return keys
