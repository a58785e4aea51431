"""Typed messages between the TUI's workers, screens and app (screens never import the app)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from textual.message import Message

from rhea_engine.runs.store import Store
from rhea_tui.actions import ActionResult
from rhea_tui.live import PollResult


@dataclass
class Polled(Message):
    """A poll finished with new data."""

    result: PollResult

    def can_replace(self, message: Message) -> bool:
        return False  # each result carries increments; none may be dropped


@dataclass
class PollFailed(Message):
    """A poll raised; the message is shown once until it changes."""

    error: str

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, PollFailed)


@dataclass
class PollNow(Message):
    """A screen needs fresh data now (a new watch, a new run): poll unless one is running."""


@dataclass
class RunAction(Message):
    """A screen asks for `action(store, handle)` on a worker; `title` names it to the user."""

    title: str
    action: Callable[[Store, str], ActionResult]
    handle: str
