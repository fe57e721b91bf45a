"""The one exception type for a user's mistake.

Anything the user can fix (a config value out of range, an unknown name, a malformed file)
raises :class:`UserError` with one sentence that names the file, field or line. The CLI
prints that sentence and exits with code 2; it never shows a traceback for these.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """A mistake in the user's input, reported as one clear sentence (CLI exit code 2)."""


def closest(name: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean X?)' for the closest choice, or '' when none is close."""
    match = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


def unknown(kind: str, name: str, choices: Iterable[str]) -> UserError:
    """A UserError for an unknown registered name, suggesting the closest one."""
    choices = sorted(choices)
    return UserError(
        f"unknown {kind} '{name}'{closest(name, choices)}; choose one of: {', '.join(choices)}"
    )
