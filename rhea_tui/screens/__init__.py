"""Screens of the rhea TUI: runs, one run, compare, the new-run form and dialogs."""
