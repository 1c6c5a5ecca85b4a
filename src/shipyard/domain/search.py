"""Run-search filters and order-by clauses: a pure parser, no I/O and no SQL.

The grammar is the one MLflow's ``search_runs`` accepts, extended with ``OR`` and parentheses::

    filter     := or_expr
    or_expr    := and_expr ( OR and_expr )*             -- AND binds tighter than OR
    and_expr   := primary ( AND primary )*
    primary    := '(' or_expr ')' | comparison
    comparison := identifier operator [ value | '(' value ( ',' value )* ')' ]
    identifier := prefix '.' key | attribute-name
    key        := word ( '.' word )* | `back-ticked` | "double-quoted"
    value      := 'string' | "string" | number
    order key  := identifier [ ASC | DESC ]

Prefixes: ``metrics.``/``metric.``, ``params.``/``param.``/``parameters.``, ``tags.``/``tag.``,
``attributes.``/``attribute.``/``attr.``/``run.``; a bare word is a run attribute (``status``).
Keywords and prefixes are case-insensitive; metric, param and tag keys are not. Attribute names
are matched case-insensitively with spaces read as underscores (``attributes.`Run Name```), and
``created`` is another name for ``start_time``.

Type rules: metrics and the numeric attributes compare with numbers (``= != < <= > >=``); params,
tags and the string attributes compare with quoted strings (``= != LIKE ILIKE IN NOT IN``);
params, tags and the attributes that may be unset also take ``IS NULL`` / ``IS NOT NULL``.
Values are data, never SQL: a ``LIKE`` pattern is handed on as written (its ``%`` and ``_`` are
wildcards for the store to apply with bound parameters).

Every error is an :class:`InvalidInputError` (code ``invalid_filter`` or ``invalid_order_by``)
whose detail starts with ``at position N:``, N being the 0-based index of the offending character
in the text as given. The lexer runs one token ahead of the parser, so the error reported is
always the leftmost one. Input size is bounded: the text length, the number of comparisons and
the depth of parentheses (the only recursion) are all capped.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal, TypeAlias

from shipyard.domain.errors import InvalidInputError

__all__ = [
    "ATTRIBUTES",
    "MAX_COMPARISONS",
    "MAX_DEPTH",
    "MAX_FILTER_LENGTH",
    "MAX_ORDER_BY_ITEMS",
    "MAX_ORDER_BY_LENGTH",
    "NULLABLE_ATTRIBUTES",
    "NUMERIC_ATTRIBUTES",
    "And",
    "Comparison",
    "Entity",
    "Expr",
    "Or",
    "OrderKey",
    "Value",
    "parse_filter",
    "parse_order_by",
]

MAX_FILTER_LENGTH = 10_000
MAX_COMPARISONS = 200
MAX_DEPTH = 32
MAX_ORDER_BY_ITEMS = 20
MAX_ORDER_BY_LENGTH = 1_000

Entity: TypeAlias = Literal["attribute", "metric", "param", "tag"]
Value: TypeAlias = str | float | tuple[str | float, ...] | None


@dataclass(frozen=True, slots=True)
class Comparison:
    """``entity.key op value``; ``value`` is a tuple for IN / NOT IN and None for IS [NOT] NULL."""

    entity: Entity
    key: str
    op: str
    value: Value


@dataclass(frozen=True, slots=True)
class And:
    """All of ``items`` (two or more; nested ANDs are flattened into one)."""

    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """Any of ``items`` (two or more; nested ORs are flattened into one)."""

    items: tuple[Expr, ...]


Expr: TypeAlias = Comparison | And | Or


@dataclass(frozen=True, slots=True)
class OrderKey:
    entity: Entity
    key: str
    descending: bool = False


# ---------------------------------------------------------------------------------------------
# Vocabulary

_PREFIXES: dict[str, Entity] = {
    "metrics": "metric",
    "metric": "metric",
    "params": "param",
    "param": "param",
    "parameters": "param",
    "tags": "tag",
    "tag": "tag",
    "attributes": "attribute",
    "attribute": "attribute",
    "attr": "attribute",
    "run": "attribute",
}

NUMERIC_ATTRIBUTES = frozenset({"start_time", "end_time", "duration"})
_STRING_ATTRIBUTES = frozenset(
    {
        "run_id",
        "run_name",
        "status",
        "user_id",
        "artifact_uri",
        "lifecycle_stage",
        "experiment_id",
        "parent_run_id",
        "job_type",
    }
)
ATTRIBUTES = NUMERIC_ATTRIBUTES | _STRING_ATTRIBUTES
#: Attributes a run may lack (an unfinished run has no end time), so IS [NOT] NULL makes sense.
NULLABLE_ATTRIBUTES = frozenset({"end_time", "duration", "parent_run_id"})
_ATTRIBUTE_ALIASES = {"created": "start_time"}

_NUMBER_OPS = ("=", "!=", "<", "<=", ">", ">=")
_STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
_NULL_OPS = ("IS NULL", "IS NOT NULL")
_RESERVED = frozenset({"AND", "OR", "NOT", "IN", "LIKE", "ILIKE", "IS", "NULL"})
_ALL_OPS = ", ".join(_NUMBER_OPS + _STRING_OPS[2:] + _NULL_OPS)

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DIGITS = frozenset("0123456789")
_WHITESPACE = frozenset(" \t\r\n\f\v")
_PUNCTUATION: dict[str, Literal["(", ")", ",", "."]] = {"(": "(", ")": ")", ",": ",", ".": "."}
_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


# ---------------------------------------------------------------------------------------------
# Lexer


@dataclass(frozen=True, slots=True)
class _Token:
    kind: Literal["word", "quoted_key", "string", "number", "op", "(", ")", ",", ".", "eof"]
    text: str  # the source text of the token
    pos: int
    value: str | float | None = None

    @property
    def end(self) -> int:
        return self.pos + len(self.text)

    def describe(self) -> str:
        if self.kind == "eof":
            return "end of input"
        shown = self.text if len(self.text) <= 40 else self.text[:37] + "..."
        if self.kind == "string":
            return f"the string {shown}"
        if self.kind == "number":
            return f"the number {shown}"
        return f"'{shown}'"


@dataclass(frozen=True, slots=True)
class _Ident:
    entity: Entity
    key: str
    source: str  # as written, for messages

    @property
    def label(self) -> str:
        return f"{self.entity} {self.key!r}"


def _numeric(ident: _Ident) -> bool:
    return ident.entity == "metric" or (
        ident.entity == "attribute" and ident.key in NUMERIC_ATTRIBUTES
    )


def _allowed_ops(ident: _Ident) -> tuple[str, ...]:
    if ident.entity == "metric":
        return _NUMBER_OPS
    if ident.entity in ("param", "tag"):
        return _STRING_OPS + _NULL_OPS
    base = _NUMBER_OPS if ident.key in NUMERIC_ATTRIBUTES else _STRING_OPS
    return base + _NULL_OPS if ident.key in NULLABLE_ATTRIBUTES else base


class _Parser:
    """Recursive descent over a lazily lexed token stream with one token of look-ahead."""

    def __init__(self, text: str, *, code: str, field: str) -> None:
        self._text = text
        self._code = code
        self._field = field
        self._offset = 0  # where the lexer resumes
        self._previous: _Token | None = None  # the last token the parser consumed
        self._lexed: _Token | None = None  # the last token the lexer produced
        self._comparisons = 0
        self._token = self._lex()

    # -- errors and tokens ----------------------------------------------------------------------

    def _fail(self, pos: int, message: str) -> InvalidInputError:
        return InvalidInputError(
            f"at position {pos}: {message}", code=self._code, field=self._field
        )

    def _peek(self) -> _Token:
        return self._token

    def _advance(self) -> _Token:
        token = self._token
        self._previous = token
        self._token = self._lex()
        return token

    def _is_keyword(self, token: _Token, *words: str) -> bool:
        return token.kind == "word" and token.text.upper() in words

    def _lex(self) -> _Token:
        text, i, n = self._text, self._offset, len(self._text)
        while i < n and text[i] in _WHITESPACE:
            i += 1
        if i >= n:
            self._offset = n
            return _Token("eof", "", n)
        c = text[i]
        token: _Token
        if c in "'\"`":
            close = text.find(c, i + 1)
            if close < 0:
                what = "quoted key" if c == "`" else "string"
                raise self._fail(i, f"unterminated {what}: no closing {c} after it")
            body = text[i + 1 : close]
            if "\x00" in body:
                raise self._fail(i + 1 + body.index("\x00"), "NUL characters are not allowed")
            kind: Literal["quoted_key", "string"] = "quoted_key" if c == "`" else "string"
            token = _Token(kind, text[i : close + 1], i, body)
        elif c in _DIGITS or (c in "+-." and self._starts_number(i)):
            match = _NUMBER.match(text, i)
            assert match is not None  # _starts_number saw a digit where the pattern needs one
            end = match.end()
            if end < n and (text[end] in _WORD_CHARS or text[end] == "."):
                while end < n and (text[end] in _WORD_CHARS or text[end] in ".+-"):
                    end += 1
                raise self._fail(i, f"malformed number {text[i:end][:40]!r}")
            number = float(match.group())
            if not math.isfinite(number):
                raise self._fail(i, f"number {match.group()[:40]!r} is out of range")
            token = _Token("number", match.group(), i, number)
        elif c in _WORD_CHARS:
            match = _WORD.match(text, i)
            if match is None:  # a digit would have been lexed as a number above
                raise self._fail(i, f"unexpected character {c!r}")
            token = _Token("word", match.group(), i)
        elif c in "<>!":
            two = text[i : i + 2]
            if two in ("<=", ">=", "!="):
                token = _Token("op", two, i)
            elif c == "!":
                raise self._fail(i, "unexpected character '!' (did you mean '!='?)")
            else:
                token = _Token("op", c, i)
        elif c == "=":
            token = _Token("op", c, i)
        elif c in _PUNCTUATION:
            token = _Token(_PUNCTUATION[c], c, i)
        else:
            raise self._fail(i, f"unexpected character {c!r}")
        self._offset = token.end
        self._lexed = token
        return token

    def _starts_number(self, i: int) -> bool:
        """Whether a '+', '-' or '.' at ``i`` begins a number (a '.' right after a key is a dot)."""
        text = self._text
        c = text[i]
        if c == ".":
            prev = self._lexed
            if prev is not None and prev.end == i and prev.kind in ("word", "quoted_key"):
                return False
            return text[i + 1 : i + 2] in _DIGITS
        rest = text[i + 1 : i + 3]
        return bool(rest) and (rest[0] in _DIGITS or (rest[0] == "." and rest[1:] in _DIGITS))

    # -- grammar -----------------------------------------------------------------------------

    def parse_filter(self) -> Expr:
        expr = self._or(0)
        token = self._peek()
        if token.kind != "eof":
            raise self._fail(
                token.pos, f"expected AND, OR or end of input, found {token.describe()}"
            )
        return expr

    def parse_order_key(self) -> OrderKey:
        ident = self._identifier("an identifier such as metrics.accuracy or start_time")
        token = self._peek()
        descending = False
        if self._is_keyword(token, "ASC", "DESC"):
            descending = token.text.upper() == "DESC"
            self._advance()
            token = self._peek()
            if token.kind != "eof":
                raise self._fail(token.pos, f"expected end of input, found {token.describe()}")
        elif token.kind != "eof":
            raise self._fail(
                token.pos, f"expected ASC, DESC or end of input, found {token.describe()}"
            )
        return OrderKey(ident.entity, ident.key, descending)

    def _or(self, depth: int) -> Expr:
        items = [self._and(depth)]
        while self._is_keyword(self._peek(), "OR"):
            self._advance()
            items.append(self._and(depth))
        flat: list[Expr] = []
        for item in items:
            flat.extend(item.items if isinstance(item, Or) else (item,))
        return flat[0] if len(flat) == 1 else Or(tuple(flat))

    def _and(self, depth: int) -> Expr:
        items = [self._primary(depth)]
        while self._is_keyword(self._peek(), "AND"):
            self._advance()
            items.append(self._primary(depth))
        flat: list[Expr] = []
        for item in items:
            flat.extend(item.items if isinstance(item, And) else (item,))
        return flat[0] if len(flat) == 1 else And(tuple(flat))

    def _primary(self, depth: int) -> Expr:
        token = self._peek()
        if token.kind != "(":
            return self._comparison()
        if depth >= MAX_DEPTH:
            raise self._fail(token.pos, f"parentheses are nested more than {MAX_DEPTH} levels deep")
        self._advance()
        inner = self._or(depth + 1)
        close = self._peek()
        if close.kind != ")":
            raise self._fail(
                close.pos,
                f"expected AND, OR or ')' to close the '(' at position {token.pos}, "
                f"found {close.describe()}",
            )
        self._advance()
        return inner

    def _comparison(self) -> Comparison:
        start = self._peek()
        if self._comparisons >= MAX_COMPARISONS:
            raise self._fail(
                start.pos, f"too many comparisons: a filter may hold at most {MAX_COMPARISONS}"
            )
        self._comparisons += 1
        ident = self._identifier("a condition: an identifier such as metrics.accuracy, or '('")
        op_token = self._peek()
        op = self._operator(ident)
        allowed = _allowed_ops(ident)
        if op not in allowed:
            raise self._fail(
                op_token.pos, f"{ident.label} does not support {op}; use {', '.join(allowed)}"
            )
        if op in _NULL_OPS:
            return Comparison(ident.entity, ident.key, op, None)
        if op in ("IN", "NOT IN"):
            return Comparison(ident.entity, ident.key, op, self._value_list(ident, op))
        return Comparison(ident.entity, ident.key, op, self._value(ident, f"after '{op}'"))

    def _identifier(self, expected: str) -> _Ident:
        first = self._peek()
        if first.kind != "word" or first.text.upper() in _RESERVED:
            hint = " (negation is written != or NOT IN)" if first.text.upper() == "NOT" else ""
            raise self._fail(first.pos, f"expected {expected}, found {first.describe()}{hint}")
        self._advance()
        if self._peek().kind != ".":
            lowered = first.text.lower()
            if lowered in _PREFIXES and lowered not in ATTRIBUTES:
                raise self._fail(
                    first.end,
                    f"expected '.' and a key after {first.text!r}, found {self._peek().describe()}",
                )
            return _Ident("attribute", self._attribute(first.text, first.pos), first.text)
        prefix = first.text.lower()
        entity = _PREFIXES.get(prefix)
        if entity is None:
            if prefix in ("datasets", "dataset"):
                raise self._fail(
                    first.pos,
                    "filtering on datasets is not supported: expected metrics., params., "
                    "tags. or attributes.",
                )
            raise self._fail(
                first.pos,
                f"unknown entity type {first.text!r}: expected metrics., params., tags. or "
                "attributes. (or a bare attribute name)",
            )
        self._advance()  # the dot
        key_token = self._peek()
        if key_token.kind == "quoted_key" or (
            key_token.kind == "string" and key_token.text.startswith('"')
        ):
            key = str(key_token.value)
            if not key:
                raise self._fail(key_token.pos, "expected a key, found an empty quoted key")
            self._advance()
        elif key_token.kind == "word":
            parts = [self._advance().text]
            while self._peek().kind == ".":
                self._advance()
                part = self._peek()
                if part.kind != "word":
                    raise self._fail(
                        part.pos,
                        f"expected the rest of the key after '.', found {part.describe()} "
                        "(quote keys holding special characters in backticks)",
                    )
                parts.append(self._advance().text)
            key = ".".join(parts)
        else:
            raise self._fail(
                key_token.pos,
                f"expected a key after '{first.text}.', found {key_token.describe()} "
                "(quote keys holding special characters in backticks or double quotes)",
            )
        source = self._text[first.pos : self._previous.end if self._previous else first.end]
        if entity == "attribute":
            key = self._attribute(key, key_token.pos)
        return _Ident(entity, key, source)

    def _attribute(self, name: str, pos: int) -> str:
        normal = name.strip().lower().replace(" ", "_")
        normal = _ATTRIBUTE_ALIASES.get(normal, normal)
        if normal not in ATTRIBUTES:
            known = ", ".join(sorted(ATTRIBUTES | _ATTRIBUTE_ALIASES.keys()))
            raise self._fail(
                pos,
                f"unknown attribute {name!r}: expected one of {known}, or a prefixed key "
                "such as metrics.x, params.x or tags.x",
            )
        return normal

    def _operator(self, ident: _Ident) -> str:
        token = self._peek()
        if token.kind == "op":
            self._advance()
            return token.text
        word = token.text.upper() if token.kind == "word" else ""
        if word in ("LIKE", "ILIKE", "IN"):
            self._advance()
            return word
        if word == "NOT":
            self._advance()
            after = self._peek()
            if not self._is_keyword(after, "IN"):
                raise self._fail(after.pos, f"expected IN after NOT, found {after.describe()}")
            self._advance()
            return "NOT IN"
        if word == "IS":
            self._advance()
            after = self._peek()
            negated = self._is_keyword(after, "NOT")
            if negated:
                self._advance()
                after = self._peek()
            if not self._is_keyword(after, "NULL"):
                expected = "NULL after IS NOT" if negated else "NULL or NOT NULL after IS"
                raise self._fail(after.pos, f"expected {expected}, found {after.describe()}")
            self._advance()
            return "IS NOT NULL" if negated else "IS NULL"
        raise self._fail(
            token.pos,
            f"expected an operator ({_ALL_OPS}) after {ident.source}, found {token.describe()}",
        )

    def _value(self, ident: _Ident, where: str) -> str | float:
        token = self._peek()
        numeric = _numeric(ident)
        if token.kind == "number" and numeric:
            self._advance()
            assert isinstance(token.value, float)
            return token.value
        if token.kind == "string" and not numeric:
            self._advance()
            assert isinstance(token.value, str)
            return token.value
        if token.kind == "number":
            raise self._fail(
                token.pos,
                f"expected a quoted string {where} ({ident.label} holds strings), "
                f"found {token.describe()}",
            )
        if token.kind == "string":
            raise self._fail(
                token.pos,
                f"expected a number {where} ({ident.label} holds numbers), "
                f"found {token.describe()}",
            )
        hint = (
            " (use IS NULL to test for a missing value)" if self._is_keyword(token, "NULL") else ""
        )
        raise self._fail(token.pos, f"expected a value {where}, found {token.describe()}{hint}")

    def _value_list(self, ident: _Ident, op: str) -> tuple[str | float, ...]:
        open_ = self._peek()
        if open_.kind != "(":
            raise self._fail(
                open_.pos, f"expected '(' and a list of values after {op}, found {open_.describe()}"
            )
        self._advance()
        values = [self._value(ident, f"after '(' in the {op} list")]
        while True:
            token = self._peek()
            if token.kind == ")":
                self._advance()
                return tuple(values)
            if token.kind != ",":
                raise self._fail(
                    token.pos, f"expected ',' or ')' in the {op} list, found {token.describe()}"
                )
            self._advance()
            values.append(self._value(ident, f"after ',' in the {op} list"))


# ---------------------------------------------------------------------------------------------
# Entry points


def parse_filter(text: str) -> Expr | None:
    """Parse a run-search filter; None when it is empty or only whitespace."""
    if len(text) > MAX_FILTER_LENGTH:
        raise InvalidInputError(
            f"at position {MAX_FILTER_LENGTH}: the filter is {len(text)} characters long; "
            f"expected at most {MAX_FILTER_LENGTH}",
            code="invalid_filter",
            field="filter",
        )
    if not text.strip():
        return None
    return _Parser(text, code="invalid_filter", field="filter").parse_filter()


def parse_order_by(items: list[str]) -> list[OrderKey]:
    """Parse order-by clauses such as ``metrics.accuracy DESC``; ascending unless DESC."""
    if len(items) > MAX_ORDER_BY_ITEMS:
        raise InvalidInputError(
            f"{len(items)} order-by clauses; expected at most {MAX_ORDER_BY_ITEMS}",
            code="invalid_order_by",
            field="order_by",
        )
    keys: list[OrderKey] = []
    seen: dict[tuple[str, str], int] = {}
    for index, item in enumerate(items):
        field = f"order_by.{index}"
        if len(item) > MAX_ORDER_BY_LENGTH:
            raise InvalidInputError(
                f"at position {MAX_ORDER_BY_LENGTH}: the clause is {len(item)} characters long; "
                f"expected at most {MAX_ORDER_BY_LENGTH}",
                code="invalid_order_by",
                field=field,
            )
        key = _Parser(item, code="invalid_order_by", field=field).parse_order_key()
        earlier = seen.setdefault((key.entity, key.key), index)
        if earlier != index:
            raise InvalidInputError(
                f"at position 0: {key.entity} {key.key!r} is already ordered by order_by.{earlier}",
                code="invalid_order_by",
                field=field,
            )
        keys.append(key)
    return keys
