"""LogScreen: one run's stdout.log, full screen, following new output and searchable."""

from __future__ import annotations

import re

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Input, Static, TextArea
from textual.widgets.text_area import Selection

from rhea_tui.live import read_log_from, run_path
from rhea_tui.screens.base import StateScreen
from rhea_tui.state import TuiState

HELP = [
    ("Esc", "back (or close the search box)"),
    ("/", "search as you type (case-insensitive); Enter or Esc closes the box"),
    ("n / N", "next / previous match"),
    ("G / ctrl+End", "the end: follow new output again"),
    ("g / ctrl+Home", "the top"),
    ("↑ ↓ PgUp PgDn", "scroll; the log follows new output while the cursor is on its last line"),
    ("mouse drag, ctrl+c", "select and copy text"),
    ("q", "quit"),
]
READ_EVERY_S = 1.0


class LogScreen(StateScreen):
    """The whole log of a run (its last 4 MB), following the file as the run writes it."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("slash", "search", "Search"),
        Binding("n", "next_match", "Next"),
        Binding("N", "previous_match", "Previous"),
        Binding("G,ctrl+end", "end", "End/follow"),
        Binding("g,ctrl+home", "top", "Top", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]
    KEY_HELP = HELP

    def __init__(self, state: TuiState, handle: str) -> None:
        super().__init__(state)
        self.handle = handle
        self.read_offset = 0
        self.query_text = ""
        self.matches: list[tuple[int, int]] = []  # (start, end) character offsets
        self.current_match = -1

    def compose(self) -> ComposeResult:
        yield Static("", id="log-title")
        yield TextArea("", read_only=True, soft_wrap=False, id="log-text")
        yield Input(placeholder="search the log (n / N: next / previous match)", id="log-search")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()
        self.read_more()
        self.set_interval(READ_EVERY_S, self.read_more)

    @property
    def text_area(self) -> TextArea:
        return self.query_one("#log-text", TextArea)

    # --- following the file ----------------------------------------------------------------
    def read_more(self) -> None:
        self._read(self.read_offset)

    @work(thread=True, exclusive=True, group="log", exit_on_error=False)
    def _read(self, offset: int) -> None:
        path = run_path(self.state.home, self.handle, self.state.row(self.handle))
        new_offset, text, again = read_log_from(path, offset)
        if text or again or new_offset != offset:
            self.app.call_from_thread(self.append, new_offset, text, again)
        elif offset == 0:
            self.app.call_from_thread(self.draw_title)

    @property
    def following(self) -> bool:
        area = self.text_area
        return area.cursor_location[0] >= area.document.line_count - 1

    def append(self, offset: int, text: str, again: bool) -> None:
        """Add new lines; keep following when the cursor was on the last line."""
        area = self.text_area
        follow = self.following
        if again:
            area.load_text("")
        self.read_offset = offset
        if text:
            area.insert(text, area.document.end, maintain_selection_offset=not follow)
        if follow:
            self.action_end()
        if self.query_text:
            self.find(self.query_text, move=False)
        self.draw_title()

    def draw_title(self) -> None:
        lines = max(0, self.text_area.document.line_count - 1)
        parts = [f"[b]log of {self.handle}[/b]", f"{lines} lines"]
        parts.append("following" if self.following else "[yellow]paused[/yellow] (G follows)")
        if self.query_text:
            where = f"{self.current_match + 1}/{len(self.matches)}" if self.matches else "none"
            parts.append(f"search [b]{self.query_text}[/b]: match {where}")
        self.query_one("#log-title", Static).update("  │  ".join(parts))

    # --- search ----------------------------------------------------------------------------
    def find(self, text: str, move: bool = True) -> None:
        self.query_text = text
        body = self.text_area.text
        self.matches = (
            [(m.start(), m.end()) for m in re.finditer(re.escape(text), body, re.IGNORECASE)]
            if text
            else []
        )
        if move:
            self.current_match = -1
            self.step(1)
        else:
            self.current_match = min(self.current_match, len(self.matches) - 1)
        self.draw_title()

    def step(self, direction: int) -> None:
        """Select the next (1) or previous (-1) match from the cursor, wrapping around."""
        if not self.matches:
            self.draw_title()
            return
        area = self.text_area
        here = area.document.get_index_from_location(area.cursor_location)
        if direction > 0:
            after = [i for i, (start, _) in enumerate(self.matches) if start > here]
            index = after[0] if after else 0
        else:
            before = [i for i, (start, _) in enumerate(self.matches) if start < here]
            index = before[-1] if before else len(self.matches) - 1
        if self.current_match == -1 and direction > 0:
            at = [i for i, (start, _) in enumerate(self.matches) if start >= here]
            index = at[0] if at else 0
        self.current_match = index
        start, end = self.matches[index]
        location = area.document.get_location_from_index
        area.selection = Selection(location(end), location(start))
        area.scroll_cursor_visible(center=True)
        self.draw_title()

    def action_search(self) -> None:
        box = self.query_one("#log-search", Input)
        box.add_class("shown")
        box.value = self.query_text
        box.focus()

    @on(Input.Changed, "#log-search")
    def _search_changed(self, event: Input.Changed) -> None:
        self.find(event.value, move=bool(event.value))

    @on(Input.Submitted, "#log-search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        """Keep the match found while typing; n and N move on from it."""
        event.input.remove_class("shown")
        self.text_area.focus()

    def action_next_match(self) -> None:
        self.step(1)

    def action_previous_match(self) -> None:
        self.step(-1)

    def action_end(self) -> None:
        area = self.text_area
        area.move_cursor(area.document.end)
        area.scroll_end(animate=False)
        self.draw_title()

    def action_top(self) -> None:
        area = self.text_area
        area.move_cursor((0, 0))
        area.scroll_home(animate=False)
        self.draw_title()

    def action_back(self) -> None:
        box = self.query_one("#log-search", Input)
        if box.has_focus:
            box.remove_class("shown")
            self.text_area.focus()
            return
        self.app.pop_screen()
