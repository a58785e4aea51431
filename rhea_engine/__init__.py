"""Rhea's engine: physics, data, model, training and the run store (no UI imports)."""

__version__ = "0.1.0"
