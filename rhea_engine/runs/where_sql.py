"""The keys of the filter language and its translation into parameterised SQL over runs.db.

Only whitelisted column names (`rows.FILTER_KEYS`) and fixed fragments enter the SQL text;
every value, and every JSON path into a run's stored config, is a parameter. A comparison is
true or false, never unknown: a run without a value for the key matches no comparison but
`!=`, so `not` and `!=` give exactly the runs that the plain form leaves out.

Types decide how values compare: numbers as numbers (1e-4 < 5e-4), text as text, `true` and
`false` as booleans, dates (2026-11-30, 2026-11-30T14:00) against the time columns, `~` as a
glob on text (`name ~ 'lr*'`), `null` with = and != for a missing value.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from rhea_engine import config as config_mod
from rhea_engine.errors import FilterError
from rhea_engine.runs.rows import FILTER_FALLBACKS, FILTER_KEYS, TIME_COLUMNS
from rhea_engine.runs.schema import RUN_COLUMNS
from rhea_engine.runs.where import Comparison, Junction, Node, Not, Value, parse, syntax_error
from rhea_engine.vocabulary import MISSING, STATUSES

KeyType = Literal["number", "text", "bool", "time", "list", "any"]
TAG_KEYS = ("tag", "tags")
_BOOL_COLUMNS = ("git_dirty",)
_SQL_OPS = {"=": "=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_IS_NUMBER = "typeof({v}) IN ('integer', 'real')"
_IS_TEXT = "typeof({v}) = 'text'"


@dataclass(frozen=True)
class Condition:
    """A compiled filter: `sql` is a boolean SQL expression over `runs`, `params` its values."""

    expression: str
    sql: str
    params: tuple[Any, ...]


@dataclass(frozen=True)
class Key:
    """What a key names: a runs column, a value in the stored config, or the run's tags."""

    name: str
    kind: Literal["column", "config", "tag"]
    type: KeyType
    sql: str = ""  # the value as an SQL expression with `?` for the JSON paths
    params: tuple[str, ...] = ()
    column: str | None = None  # the runs column of a summary key


def json_path(parts: Iterable[str]) -> str:
    """A JSON path for SQLite's JSON functions; parts match where.KEY_PATTERN (no quotes)."""
    return "$" + "".join(f'."{part}"' for part in parts)


def _config_type(path: list[str]) -> KeyType:
    if len(path) != 1 or path[0] not in config_mod.keys():
        return "any"  # a key Rhea does not define (a script's own config): typed by value
    kind = config_mod.key_type(path[0])
    return {bool: "bool", int: "number", float: "number", str: "text", tuple: "list"}.get(
        kind, "any"
    )  # type: ignore[return-value]


def _config_key(name: str, path: list[str]) -> Key:
    return Key(
        name, "config", _config_type(path), "json_extract(runs.config, ?)", (json_path(path),)
    )


def _column_key(name: str, column: str) -> Key:
    if column in _BOOL_COLUMNS:
        kind: KeyType = "bool"
    elif column in TIME_COLUMNS:
        kind = "time"
    else:
        kind = "text" if RUN_COLUMNS[column] is str else "number"
    if column in FILTER_FALLBACKS:
        path = json_path([FILTER_FALLBACKS[column]])
        sql = f"COALESCE(runs.{column}, json_extract(runs.config, ?))"
        return Key(name, "column", kind, sql, (path,), column)
    return Key(name, "column", kind, f"runs.{column}", (), column)


class _Compiler:
    """Turns a syntax tree into SQL; `stored_keys` lists the config keys the home's runs have."""

    def __init__(self, expression: str, stored_keys: Callable[[], Iterable[str]]) -> None:
        self.expression = expression
        self._stored_keys = stored_keys
        self._stored: set[str] | None = None

    def stored(self) -> set[str]:
        if self._stored is None:
            self._stored = set(self._stored_keys())
        return self._stored

    def fail(self, position: int, reason: str, hint: str = "") -> FilterError:
        return syntax_error(self.expression, position, reason, hint)

    # --- keys ---------------------------------------------------------------------------
    def key(self, name: str, position: int) -> Key:
        parts = name.split(".")
        if name in TAG_KEYS:
            return Key(name, "tag", "text")
        if parts[0] == "config" and len(parts) > 1:
            if parts[1] in config_mod.keys() or parts[1] in self.stored():
                return _config_key(name, parts[1:])
            raise self.unknown(name, parts[1], position)
        if name in FILTER_KEYS:
            return _column_key(name, FILTER_KEYS[name])
        shortcut = config_mod.SHORTCUTS.get(name, ())
        if len(parts) == 1 and len(shortcut) == 1:
            return _config_key(name, [shortcut[0]])
        if parts[0] in config_mod.keys() or parts[0] in self.stored():
            return _config_key(name, parts)
        raise self.unknown(name, name, position)

    def unknown(self, name: str, looked_up: str, position: int) -> FilterError:
        config_keys = sorted(set(config_mod.keys()) | self.stored())
        summary = sorted(set(FILTER_KEYS) | set(TAG_KEYS))
        close = difflib.get_close_matches(looked_up, summary + config_keys, n=3, cutoff=0.7)
        guess = f" Did you mean {' or '.join(close)}?" if close else ""
        hint = (
            f"Keys of the run summary: {', '.join(summary)}. Config keys (also as "
            f"config.KEY): {', '.join(config_keys)}."
        )
        return self.fail(position, f"there is no key '{name}'.{guess}", hint)

    # --- the tree -----------------------------------------------------------------------
    def node(self, node: Node) -> tuple[str, list[Any]]:
        if isinstance(node, Not):
            sql, params = self.node(node.operand)
            return f"NOT {sql}", params
        if isinstance(node, Junction):
            parts = [self.node(operand) for operand in node.operands]
            joined = f" {node.kind.upper()} ".join(sql for sql, _ in parts)
            return f"({joined})", [p for _, params in parts for p in params]
        return self.comparison(node)

    def comparison(self, node: Comparison) -> tuple[str, list[Any]]:
        key = self.key(node.key, node.key_position)
        value = node.value
        if value.kind == "word" and value.text.lower() == "null":
            if node.op not in ("=", "!="):
                raise self.fail(value.position, "null (no value) compares only with = and !=.")
            sql, params = self.missing(key)
            return (f"NOT {sql}" if node.op == "!=" else sql), params
        if node.op == "!=":
            sql, params = self.compare(key, "=", value)
            return f"NOT {sql}", params
        return self.compare(key, node.op, value)

    def missing(self, key: Key) -> tuple[str, list[Any]]:
        if key.kind == "tag":
            return "NOT EXISTS (SELECT 1 FROM tags WHERE tags.run = runs.id)", []
        return f"({key.sql} IS NULL)", list(key.params)

    def compare(self, key: Key, op: str, value: Value) -> tuple[str, list[Any]]:
        """One comparison without != (the caller negates =), always true or false."""
        if key.kind == "tag" or key.type == "list":
            return self.membership(key, op, value)
        if op == "~":
            if key.type not in ("text", "any"):
                raise self.fail(
                    value.position, f"~ matches text, and {key.name} {_holds(key.type)}."
                )
            return self.test(key, _IS_TEXT, "GLOB", value.text)
        if key.type == "bool" or (key.type == "any" and value.text.lower() in ("true", "false")):
            return self.boolean(key, op, value)
        if key.type in ("number", "time"):
            return self.test(key, _IS_NUMBER, _SQL_OPS[op], self.number(key, value))
        if key.type == "text":
            if key.column == "status" and op == "=":
                self.check_status(value)
            return self.test(key, _IS_TEXT, _SQL_OPS[op], value.text)
        # a key of no declared type: a number compares with numbers (and, for =, with the
        # same text), anything else with text
        if value.kind == "number":
            as_number = self.test(key, _IS_NUMBER, _SQL_OPS[op], value.number)
            if op != "=":
                return as_number
            as_text = self.test(key, _IS_TEXT, "=", value.text)
            return f"({as_number[0]} OR {as_text[0]})", as_number[1] + as_text[1]
        return self.test(key, _IS_TEXT, _SQL_OPS[op], value.text)

    def test(self, key: Key, kind: str, op: str, literal: Any) -> tuple[str, list[Any]]:
        """`key op literal`, only where the key's value is of `kind`; NULL counts as false."""
        check = kind.format(v=key.sql)
        sql = f"COALESCE(({check} AND {key.sql} {op} ?), 0)"
        return sql, [*key.params, *key.params, literal]

    def number(self, key: Key, value: Value) -> float:
        if value.kind == "number":
            return value.number
        if key.type == "time":
            try:
                return dt.datetime.fromisoformat(value.text).timestamp()
            except ValueError:
                pass
            raise self.fail(
                value.position,
                f"{key.name} is a time: compare it with a date such as 2026-11-30 or "
                f"2026-11-30T14:00, not '{value.text}'.",
            )
        raise self.fail(
            value.position, f"{key.name} {_holds(key.type)}; '{value.text}' is not a number."
        )

    def boolean(self, key: Key, op: str, value: Value) -> tuple[str, list[Any]]:
        truth = {"true": True, "false": False, "1": True, "0": False}.get(value.text.lower())
        if truth is None:
            raise self.fail(value.position, f"{key.name} is true or false, not '{value.text}'.")
        if op != "=":
            raise self.fail(value.position, "true and false compare only with = and !=.")
        if key.kind == "config":  # JSON true/false, which json_extract would give as 1/0
            sql = "COALESCE(json_type(runs.config, ?) = ?, 0)"
            return sql, [*key.params, "true" if truth else "false"]
        return f"COALESCE({key.sql} = ?, 0)", [*key.params, int(truth)]

    def membership(self, key: Key, op: str, value: Value) -> tuple[str, list[Any]]:
        """Tags, and config lists (data files): some element is equal to / matches the value."""
        if op not in ("=", "~"):
            what = "tags" if key.kind == "tag" else f"{key.name} (a list)"
            raise self.fail(value.position, f"{what} compare only with =, != and ~.")
        test = "=" if op == "=" else "GLOB"
        if key.kind == "tag":
            sql = f"EXISTS (SELECT 1 FROM tags WHERE tags.run = runs.id AND tags.tag {test} ?)"
            return sql, [value.text]
        sql = (
            "EXISTS (SELECT 1 FROM json_each(runs.config, ?) AS item "
            f"WHERE item.type = 'text' AND item.value {test} ?)"
        )
        return sql, [*key.params, value.text]

    def check_status(self, value: Value) -> None:
        if value.text == MISSING:
            raise self.fail(
                value.position,
                "missing is not a stored status: a run reads as missing when its directory is "
                "gone, whatever its status was.",
                "List those runs with `rhea ls --status missing`.",
            )
        if value.text not in STATUSES:
            known = ", ".join(s for s in STATUSES if s != MISSING)
            raise self.fail(value.position, f"'{value.text}' is not a status; use one of {known}.")


def _holds(kind: KeyType) -> str:
    return {"number": "holds numbers", "time": "is a time", "bool": "is true or false"}.get(
        kind, "holds text"
    )


def compile_filter(expression: str, stored_keys: Callable[[], Iterable[str]] = tuple) -> Condition:
    """Parse and compile a filter; `stored_keys()` gives the config keys the home's runs have."""
    tree = parse(expression)
    sql, params = _Compiler(expression, stored_keys).node(tree)
    return Condition(expression, sql, tuple(params))
