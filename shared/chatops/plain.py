"""Text from Slack made fit for one log or timeline line."""

from __future__ import annotations

import unicodedata

# Control (newline, NUL, escape), format (U+202E and the other bidi overrides, zero-width marks) and
# lone surrogates: any of them lets a person's text start a forged line or reorder what a reader sees.
_UNSEEN = frozenset({"Cc", "Cf", "Cs"})


def one_line(text: str) -> str:
    """The text on one line: control, format and surrogate characters as spaces, each run of spaces one."""
    if not text.isprintable():  # the common case, plain text, needs no look at each character
        text = "".join(" " if unicodedata.category(c) in _UNSEEN else c for c in text)
    return " ".join(text.split())
