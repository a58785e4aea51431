"""Rhea's front ends: the `rhea` command line and the Textual app."""
