"""Hugging Face Hub access that fails fast: offline when the Hub cannot be reached.

Without network, ``datasets`` and ``transformers`` retry their Hub requests for tens of
seconds and log a line per retry before failing. :func:`hub_access` first tries one TCP
connection to the Hub (``HF_ENDPOINT``, 2 s); when it fails, the block runs in the
libraries' offline mode (``HF_HUB_OFFLINE``), which reads the local cache and fails at once
when the name is not there. ``HF_HUB_OFFLINE=1`` set by the user skips the check.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from collections.abc import Iterator
from urllib.parse import urlsplit

_TRUE = {"1", "ON", "YES", "TRUE"}
_FLAGS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


def offline_requested() -> bool:
    return any(os.environ.get(n, "").strip().upper() in _TRUE for n in _FLAGS[:2])


def endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def reachable(timeout: float = 2.0) -> bool:
    """One TCP connection to the Hub's host within ``timeout`` seconds."""
    parts = urlsplit(endpoint())
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def _offline_mode() -> Iterator[None]:
    saved_env = {n: os.environ.get(n) for n in _FLAGS}
    patched = []
    for module, names in (("huggingface_hub.constants", ("HF_HUB_OFFLINE",)),
                          ("datasets.config", ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))):
        mod = sys.modules.get(module)   # imported already: its flags were read at import
        for name in names:
            if mod is not None and hasattr(mod, name):
                patched.append((mod, name, getattr(mod, name)))
                setattr(mod, name, True)
    os.environ.update({n: "1" for n in _FLAGS})
    try:
        yield
    finally:
        for mod, name, value in patched:
            setattr(mod, name, value)
        for n, v in saved_env.items():
            if v is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = v


@contextlib.contextmanager
def hub_access() -> Iterator[bool]:
    """Run the block online when the Hub answers, else offline; yields True when offline."""
    if offline_requested():
        yield True
    elif reachable():
        yield False
    else:
        with _offline_mode():
            yield True
