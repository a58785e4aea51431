"""The filter language against a real runs.db: a corpus of expressions and the runs they match.

The runs are written as workers write them (events.jsonl, ingested by refresh); their
values are chosen so that each case tells right from wrong: learning rates that sort
differently as text and as numbers, a run without metrics, tags, a script's own config keys.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from rhea_engine.config import default_config
from rhea_engine.errors import FilterError
from rhea_engine.runs.refresh import refresh
from rhea_engine.runs.rundir import RunWriter
from rhea_engine.runs.store import Store
from rhea_engine.runs.where import parse

# name: (sweep, learning rate, best test loss (None: no epoch yet), final status, tags)
RUNS = {
    "sa-1": ("s1", 1e-3, 0.30, "completed", ["good"]),
    "sa-2": ("s1", 5e-4, 0.70, "completed", ["good", "paper"]),
    "sb-1": ("s2", 1e-4, 0.90, "failed", []),
    "lr-1": (None, 5e-5, 0.20, None, []),  # running: its worker is this test process
    "lr-2": (None, 1e-5, None, None, []),  # queued: never started
}
ALL = {*RUNS, "script"}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    home = tmp_path_factory.mktemp("where-home")
    store = Store(home)
    store.create_sweep("s1", {}, tags=["sweep-one"])
    for name, (sweep, lr, best, final, tags) in RUNS.items():
        config = default_config().replace(learning_rate=lr, do_batchnorm=name != "sb-1")
        row = store.create_run(config, name=name, sweep=sweep, tags=tags)
        if best is None:
            continue
        with RunWriter(row.path) as writer:
            writer.start(device="cpu", total_epochs=4)  # pid and host: this process
            for epoch in (1, 2):
                loss = best * (3 - epoch)
                writer.epoch(epoch, {"train_loss": loss, "test_loss": loss, "learning_rate": lr})
            if final == "failed":
                writer.status("failed", error="boom", epoch=2, task="ndens")
            elif final:
                writer.status(final)
    # a script's run (the tracking API): keys Rhea does not define, nested, typed by value
    script = {"learning_rate": 3e-4, "note": "try 1e-3", "flag": True, "nested": {"depth": 2}}
    store.create_run(script, name="script")
    refresh(store)
    return store


def matching(store: Store, expression: str) -> set[str]:
    return {row.name for row in store.list_runs(where=expression)}


CORPUS = [
    # statuses, sweeps and names (the summary columns)
    ("status = running", {"lr-1"}),
    ("status = completed", {"sa-1", "sa-2"}),
    ("status != completed", ALL - {"sa-1", "sa-2"}),
    ("sweep = s1", {"sa-1", "sa-2"}),
    ("sweep != s1", ALL - {"sa-1", "sa-2"}),  # runs without a sweep count as "not s1"
    ("sweep = null", {"lr-1", "lr-2", "script"}),
    ("sweep != null", {"sa-1", "sa-2", "sb-1"}),
    ("name ~ 'lr*'", {"lr-1", "lr-2"}),
    ("name ~ lr*", {"lr-1", "lr-2"}),
    ("name ~ '*-1'", {"sa-1", "sb-1", "lr-1"}),
    ("name ~ 's?-2'", {"sa-2"}),
    ("name = 'sa-1'", {"sa-1"}),
    ("run = sa-1", {"sa-1"}),  # the listing's header names the same column
    ('name = "sa-1"', {"sa-1"}),
    ("name ~ 'LR*'", set()),  # globs are case-sensitive, as names are
    # numbers compare as numbers: as text, '1e-05' > '0.0001' and '5e-05' > '0.001'
    ("learning_rate < 1e-4", {"lr-1", "lr-2"}),
    ("learning_rate <= 1e-4", {"sb-1", "lr-1", "lr-2"}),
    ("learning_rate < 5e-4", {"sb-1", "lr-1", "lr-2", "script"}),
    ("learning_rate > 2e-4", {"sa-1", "sa-2", "script"}),
    ("learning_rate >= 0.0005", {"sa-1", "sa-2"}),
    ("lr = 1e-3", {"sa-1"}),  # the --lr shortcut is the learning_rate config key
    ("config.learning_rate = 0.001", {"sa-1"}),
    ("learning_rate = 1E-3", {"sa-1"}),
    ("best_test_loss < 0.5", {"sa-1", "lr-1"}),
    ("best < 0.5", {"sa-1", "lr-1"}),
    ("best_test_loss >= 0.5", {"sa-2", "sb-1"}),
    ("not best_test_loss < 0.5", ALL - {"sa-1", "lr-1"}),  # runs without a loss: not < 0.5
    ("best_test_loss = null", {"lr-2", "script"}),
    ("epoch = 2", {"sa-1", "sa-2", "sb-1", "lr-1"}),
    ("last_epoch > 1 and total_epochs = 4", {"sa-1", "sa-2", "sb-1", "lr-1"}),
    ("lr_now < 1e-4", {"lr-1"}),  # the scheduler's rate, reported at each epoch
    ("id <= 2", {"sa-1", "sa-2"}),
    ("fail_task = ndens", {"sb-1"}),
    ("device = cpu", {"sa-1", "sa-2", "sb-1", "lr-1"}),
    ("device = auto", {"lr-2"}),  # not started: the configured device, as `rhea ls` shows
    ("created > 2000-01-01", ALL),
    ("created < 2000-01-01T00:00", set()),
    # booleans
    ("do_batchnorm = false", {"sb-1"}),
    ("do_batchnorm = true", ALL - {"sb-1", "script"}),
    ("do_batchnorm != true", {"sb-1", "script"}),
    ("flag = true", {"script"}),
    ("git_dirty = null", ALL),
    # and, or, not, parentheses and precedence (not > and > or)
    ("status = running and learning_rate < 1e-4", {"lr-1"}),
    ("status = completed or status = failed", {"sa-1", "sa-2", "sb-1"}),
    ("sweep = s1 and best < 0.5 or name = lr-2", {"sa-1", "lr-2"}),
    ("sweep = s1 and (best < 0.5 or name = lr-2)", {"sa-1"}),
    ("not sweep = s1 and not status = queued", {"sb-1", "lr-1"}),
    ("not (sweep = s1 or status = queued)", {"sb-1", "lr-1"}),
    ("not not status = running", {"lr-1"}),
    ("status = running AND NOT name = x", {"lr-1"}),
    ("((status = running))", {"lr-1"}),
    # tags (a sweep's tags go to each of its runs)
    ("tag = good", {"sa-1", "sa-2"}),
    ("tag = paper", {"sa-2"}),
    ("tag != paper", ALL - {"sa-2"}),
    ("tag ~ 'sweep-*'", {"sa-1", "sa-2"}),
    ("tag = null", {"sb-1", "lr-1", "lr-2", "script"}),
    ("tag = good and tag = paper", {"sa-2"}),
    ("tags = paper", {"sa-2"}),
    # config keys Rhea does not define: typed by their stored value
    ("note = 'try 1e-3'", {"script"}),
    ("note ~ '*1e-3'", {"script"}),
    ("nested.depth = 2", {"script"}),
    ("config.nested.depth >= 2", {"script"}),
    ("nested.depth < 2", set()),
    ("note = 2", set()),
    # lists of the config: some element matches
    ("database_list = null", {"script"}),  # a script's config has no data files
    ("database_list ~ '*'", set()),
    # values that look like SQL are values: they match nothing and change nothing
    ('name = "x\'; DROP TABLE runs; --"', set()),
    ("name = 'x\\' OR 1=1 --'", set()),
    ("tag = \"x' OR '1'='1\"", set()),
    ('name ~ "*\'*"', set()),
    ('note = \'" OR ""="\'', set()),
]


@pytest.mark.parametrize(("expression", "expected"), CORPUS)
def test_filter_corpus(store: Store, expression: str, expected: set[str]) -> None:
    assert matching(store, expression) == expected


def test_injection_attempts_leave_the_store_whole(store: Store) -> None:
    for expression, _ in CORPUS:
        store.list_runs(where=expression)
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == len(ALL)
        assert conn.execute("SELECT COUNT(*) FROM tags").fetchone()[0] == 5


# (expression, where the caret goes, words of the reason)
MALFORMED = [
    ("", 0, "empty"),
    ("status", 6, "expected an operator"),
    ("status =", 8, "expected a value"),
    ("status = running and", 20, "expected a key"),
    ("status running", 7, "expected an operator"),
    ("(status = running", 0, "never closed"),
    ("status = running)", 16, "closes no"),
    ("status = 'running", 9, "no closing '"),
    ("status ! running", 7, "not an operator"),
    ("status = running or or name = x", 20, "expected a key"),
    ("= running", 0, "expected a key"),
    ("1 = 1", 0, "not a key"),
    ("name = x OR 1=1", 12, "not a key"),
    ("name = '' or '1' = '1'", 13, "expected a key"),
    ("config.x) OR 1=1 --", 8, "expected an operator"),
    ("config. = 1", 0, "not a key"),
    ("name = x; DROP TABLE runs", 10, "expected and, or or the end"),
    ("name = x -- comment", 9, "expected and, or or the end"),
    ("sweep = s1 /* c */", 11, "expected and, or or the end"),
    ("name = and", 7, "expected a value"),
    ("status = runing", 9, "not a status"),
    ("status = missing", 9, "not a stored status"),
    ("bset_test_loss < 0.5", 0, "Did you mean best_test_loss"),
    ("config.learnig_rate < 1", 0, "no key 'config.learnig_rate'"),
    ("best_test_loss < abc", 17, "not a number"),
    ("best_test_loss < 'abc'", 17, "not a number"),
    ("best_test_loss ~ '0.*'", 17, "~ matches text"),
    ("do_batchnorm = maybe", 15, "true or false"),
    ("do_batchnorm < true", 15, "only with = and !="),
    ("tag < x", 6, "only with =, != and ~"),
    ("best < null", 7, "only with = and !="),
    ("created > yesterday", 10, "is a time"),
    ("(" * 40 + "status = running" + ")" * 40, 32, "nests deeper"),
    ("not " * 40 + "status = running", 128, "nests deeper"),
    (" or ".join(["id = 1"] * 201), 200 * 10, "more than 200"),
]


@pytest.mark.parametrize(("expression", "position", "reason"), MALFORMED)
def test_malformed_filters(store: Store, expression: str, position: int, reason: str) -> None:
    with pytest.raises(FilterError) as caught:
        store.list_runs(where=expression)
    error = caught.value
    assert reason in error.message
    assert error.position == position
    if not expression:  # nothing to point at: one paragraph, no caret
        assert "^" not in error.message and "\n" not in error.message
        return
    caret = error.message.splitlines()[2]
    assert caret == "  " + " " * position + "^"


def test_unknown_key_names_the_keys(store: Store) -> None:
    with pytest.raises(FilterError) as caught:
        store.list_runs(where="colour = red")
    message = caught.value.message
    for key in ("status", "best_test_loss", "sweep", "tag", "learning_rate", "nested", "note"):
        assert key in message


def test_parse_does_not_need_a_store() -> None:
    tree = parse("a = 1 and (b ~ 'x*' or not c != \"y z\")")
    assert "Junction" in repr(tree) and "'y z'" in repr(tree)


def test_tags_survive_a_rebuild(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        store.create_sweep("s", {}, tags=["from-sweep"])
        store.create_run({"epochs": 1}, name="a", sweep="s", tags=["mine"])
        store.create_run({"epochs": 1}, name="b")
        assert store.tag("b", add=["later", "gone"]) == ["gone", "later"]
        assert store.tag("b", remove=["gone"]) == ["later"]
    os.remove(tmp_path / "runs.db")
    with Store(tmp_path) as store:  # a lost runs.db is rebuilt from the run directories
        assert store.get_run("a").tags == ["from-sweep", "mine"]
        assert store.get_run("b").tags == ["later"]
        assert matching(store, "tag = later or tag = mine") == {"a", "b"}
        store.delete_run("a")
        with sqlite3.connect(store.path) as conn:
            assert conn.execute("SELECT COUNT(*) FROM tags").fetchone()[0] == 1
