"""What the runs screen's filter box holds: a filter expression, or plain words (no Textual).

Text with an operator or a parenthesis (= != < <= > >= ~ ! ( )) is a filter expression, the
language of `rhea ls --where`: it is compiled here, on the UI thread, to report mistakes at
once, and matched by SQLite in the next poll (`TuiState.where`), so both front ends share one
evaluator. Any other text is words, each a case-insensitive substring of the run's name,
sweep, status, device, host or tags, plus `sweep:NAME` and `status:S` tokens.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from rhea_engine.errors import FilterError
from rhea_engine.runs.rows import RunRow
from rhea_engine.runs.where import caret_lines, looks_like_expression
from rhea_engine.runs.where_sql import compile_filter


@dataclass(frozen=True)
class TypedFilter:
    """The filter box's text, read: an expression (valid or not) or plain words."""

    text: str = ""
    expression: str | None = None  # a valid filter expression, for the poll to match
    error: FilterError | None = None  # an expression that cannot be used, and why
    sweep: str | None = None
    status: str | None = None
    words: list[str] = field(default_factory=list)

    @property
    def is_expression(self) -> bool:
        return self.expression is not None or self.error is not None


def read_filter(text: str, config_keys: Iterable[str] = ()) -> TypedFilter:
    """Read the box's text; `config_keys` are the listed runs' own (for unknown-key errors)."""
    text = text.strip()
    if looks_like_expression(text):
        keys = list(config_keys)
        try:
            compile_filter(text, lambda: keys)
        except FilterError as error:
            return TypedFilter(text, error=error)
        return TypedFilter(text, expression=text)
    sweep = status = None
    words = []
    for token in text.split():
        if token.startswith("sweep:"):
            sweep = token[len("sweep:") :] or None
        elif token.startswith("status:"):
            status = token[len("status:") :] or None
        else:
            words.append(token.lower())
    return TypedFilter(text, sweep=sweep, status=status, words=words)


def passes(row: RunRow, typed: TypedFilter, matches: set[int] | None) -> bool:
    """Whether the run passes the filter; `matches`: the ids the poll found for the latest
    valid expression (None: none matched yet, and every run passes meanwhile)."""
    if typed.is_expression:
        return matches is None or row.id in matches
    if typed.sweep is not None and row.sweep != typed.sweep:
        return False
    if typed.status is not None and row.status != typed.status:
        return False
    fields = (row.name, row.sweep, row.status, row.device, row.host, *row.tags)
    haystack = " ".join(str(x) for x in fields if x).lower()
    return all(word in haystack for word in typed.words)


def error_lines(error: FilterError) -> str:
    """An expression's mistake in three lines for the screen: the text, a caret, the reason."""
    return f"{caret_lines(error.expression, error.position)}\n  {error.reason}"
