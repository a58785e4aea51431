"""Widgets of the rhea TUI: the runs table, metric plots and run details."""
