"""Matching CLI output: rich panels drawn with box characters and wrapped lines."""

from __future__ import annotations

import re


def flat(text: str) -> str:
    """Panel text with the box drawing and line wrapping removed."""
    return re.sub(r"\s+", " ", re.sub(r"[│╭╮╰╯─]", " ", text)).strip()
