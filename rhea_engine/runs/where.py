"""The filter language of `--where` and the TUI's filter box: tokens, grammar and syntax tree.

    expression := conjunction ("or" conjunction)*
    conjunction := negation ("and" negation)*
    negation    := "not" negation | "(" expression ")" | comparison
    comparison  := KEY OP VALUE          OP: = != < <= > >= ~ (glob)

A KEY is a name with optional dotted parts (`best_test_loss`, `config.learning_rate`); a
VALUE is a number, a quoted string ('...' or "..."), or a bare word (`running`, `lr*`,
`true`, `null`). `and`, `or` and `not` are words of the language in any case; quote a value
that is spelled like one. This module knows nothing of runs.db: `where_sql` gives the keys
their meaning and turns a tree into parameterised SQL.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from rhea_engine.errors import FilterError

OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "~")
_KEYWORDS = ("and", "or", "not")
_SPACE = re.compile(r"\s+")
_OPERATOR = re.compile(r"<=|>=|!=|==|=|<|>|~")
# a bare word runs up to a space, a quote, a parenthesis or an operator character
_WORD = re.compile(r"[^\s()'\"=!<>~]+")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
MAX_DEPTH = 32  # nested parentheses and nots (the parser recurses; SQLite nests too)
MAX_COMPARISONS = 200  # SQLite's expression depth (1000) grows with each and/or term
KEY_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*")
SYNTAX_HINT = (
    "Write `key op value` (op: = != < <= > >= ~ for a glob such as 'lr*'), joined by and, "
    "or, not and parentheses; quote values with spaces, for example: "
    "status = running and (best_test_loss < 0.5 or tag = good)."
)

TokenKind = Literal["word", "string", "op", "(", ")", "end"]
ValueKind = Literal["number", "string", "word"]


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    text: str  # the operator, the word, or a quoted string's value without its quotes
    position: int  # character offset in the expression


@dataclass(frozen=True)
class Value:
    """A literal as typed: `number` (a bare word that reads as one), `string` (quoted), `word`."""

    kind: ValueKind
    text: str
    position: int

    @property
    def number(self) -> float:
        return float(self.text)


@dataclass(frozen=True)
class Comparison:
    key: str
    key_position: int
    op: str
    value: Value


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class Junction:
    """`and` or `or` of two or more operands."""

    kind: Literal["and", "or"]
    operands: tuple[Node, ...]


Node = Comparison | Not | Junction


def caret_lines(expression: str, position: int) -> str:
    """The expression on one line with a caret under `position` (wide characters count 2)."""
    shown = _SPACE.sub(" ", expression)  # tabs and newlines would move the caret
    before = shown[:position]
    width = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in before)
    return f"  {shown}\n  {' ' * width}^"


def syntax_error(
    expression: str, position: int, reason: str, hint: str = SYNTAX_HINT
) -> FilterError:
    """A FilterError whose message shows the expression with a caret under `position`."""
    message = f"Cannot use the filter: {reason}\n{caret_lines(expression, position)}"
    return FilterError(
        message + (f"\n{hint}" if hint else ""),
        expression=expression,
        position=position,
        reason=reason,
    )


def tokens(expression: str) -> list[Token]:
    """Split an expression into tokens; a FilterError at the first character that fits none."""
    found: list[Token] = []
    at = 0
    while at < len(expression):
        space = _SPACE.match(expression, at)
        if space:
            at = space.end()
            continue
        char = expression[at]
        if char in "()":
            found.append(Token(char, char, at))  # type: ignore[arg-type]
            at += 1
        elif char in "'\"":
            at = _string(expression, at, found)
        elif operator := _OPERATOR.match(expression, at):
            text = "=" if operator.group() == "==" else operator.group()
            found.append(Token("op", text, at))
            at = operator.end()
        elif word := _WORD.match(expression, at):
            found.append(Token("word", word.group(), at))
            at = word.end()
        else:  # a lone '!'
            raise syntax_error(expression, at, f"'{char}' is not an operator here (use !=).")
    found.append(Token("end", "", len(expression)))
    return found


def _string(expression: str, start: int, found: list[Token]) -> int:
    """Read a quoted string from `start`; a backslash keeps the next character as it is."""
    quote = expression[start]
    chars = []
    at = start + 1
    while at < len(expression):
        char = expression[at]
        if char == "\\" and at + 1 < len(expression):
            chars.append(expression[at + 1])
            at += 2
            continue
        if char == quote:
            found.append(Token("string", "".join(chars), start))
            return at + 1
        chars.append(char)
        at += 1
    raise syntax_error(expression, start, f"the string that starts here has no closing {quote}.")


class _Parser:
    """Recursive descent over the token list; each method parses one rule of the grammar."""

    def __init__(self, expression: str) -> None:
        self.expression = expression
        self.tokens = tokens(expression)
        self.at = 0
        self.depth = 0
        self.comparisons = 0

    @property
    def token(self) -> Token:
        return self.tokens[self.at]

    def keyword(self, word: str) -> bool:
        return self.token.kind == "word" and self.token.text.lower() == word

    def fail(self, reason: str, token: Token | None = None) -> FilterError:
        return syntax_error(self.expression, (token or self.token).position, reason)

    def whole(self) -> Node:
        if self.token.kind == "end":  # one paragraph: a caret under nothing shows nothing
            reason = "the filter is empty."
            message = f"Cannot use the filter: {reason} {SYNTAX_HINT}"
            raise FilterError(message, expression=self.expression, position=0, reason=reason)
        node = self.disjunction()
        if self.token.kind != "end":
            if self.token.kind == ")":
                raise self.fail("this ')' closes no '('.")
            raise self.fail(f"expected and, or or the end, not {describe(self.token)}.")
        return node

    def disjunction(self) -> Node:
        operands = [self.conjunction()]
        while self.keyword("or"):
            self.at += 1
            operands.append(self.conjunction())
        return operands[0] if len(operands) == 1 else Junction("or", tuple(operands))

    def conjunction(self) -> Node:
        operands = [self.negation()]
        while self.keyword("and"):
            self.at += 1
            operands.append(self.negation())
        return operands[0] if len(operands) == 1 else Junction("and", tuple(operands))

    def negation(self) -> Node:
        if self.keyword("not") or self.token.kind == "(":
            if self.depth == MAX_DEPTH:
                raise self.fail(f"the filter nests deeper than {MAX_DEPTH} levels here.")
            self.depth += 1
            node = self.nested()
            self.depth -= 1
            return node
        return self.comparison()

    def nested(self) -> Node:
        """`not` and its operand, or an expression in parentheses."""
        opening = self.token
        self.at += 1
        if opening.kind != "(":
            return Not(self.negation())
        node = self.disjunction()
        if self.token.kind != ")":
            if self.token.kind == "end":
                raise self.fail("this '(' is never closed.", opening)
            raise self.fail(f"expected and, or or ')', not {describe(self.token)}.")
        self.at += 1
        return node

    def comparison(self) -> Comparison:
        key = self.token
        self.comparisons += 1
        if self.comparisons > MAX_COMPARISONS:
            raise self.fail(f"the filter has more than {MAX_COMPARISONS} comparisons.")
        if key.kind != "word" or key.text.lower() in _KEYWORDS:
            raise self.fail(
                f"expected a key (such as status or best_test_loss), not {describe(key)}."
            )
        if not KEY_PATTERN.fullmatch(key.text):
            raise self.fail(
                f"'{key.text}' is not a key: keys are letters, digits and '_', with '.' "
                "between the parts of a config key."
            )
        self.at += 1
        op = self.token
        if op.kind != "op":
            raise self.fail(
                f"expected an operator (= != < <= > >= ~) after '{key.text}', not {describe(op)}."
            )
        self.at += 1
        value = self.token
        if value.kind not in ("word", "string") or (
            value.kind == "word" and value.text.lower() in _KEYWORDS
        ):
            raise self.fail(f"expected a value after '{op.text}', not {describe(value)}.")
        self.at += 1
        kind: ValueKind = "string" if value.kind == "string" else "word"
        if kind == "word" and _NUMBER.fullmatch(value.text):
            kind = "number"
        return Comparison(key.text, key.position, op.text, Value(kind, value.text, value.position))


def describe(token: Token) -> str:
    """A token as an error message names it."""
    if token.kind == "end":
        return "the end of the filter"
    if token.kind == "string":
        return f"the string '{token.text}'"
    return f"'{token.text}'"


def parse(expression: str) -> Node:
    """The syntax tree of a filter expression; FilterError (with a caret) when malformed."""
    return _Parser(expression).whole()


def looks_like_expression(text: str) -> bool:
    """Whether typed text is meant as an expression (it has an operator or a parenthesis)."""
    return any(char in text for char in "=<>~!()")
