"""Headless Chromium for the report tests: find it (installing Debian's package when it is
missing and we are root) and run it offline, with a throw-away home and profile.

Chromium only ever opens file:// URLs here; its background services are switched off and
its host resolver maps every name to "not found", so it cannot reach the network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
    "--no-default-browser-check",
    "--host-resolver-rules=MAP * ~NOTFOUND",
]


class ChromiumUnavailable(RuntimeError):
    """No Chromium could be found or installed; the message says why."""


def find() -> str | None:
    for name in NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _apt(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(["apt-get", *args], capture_output=True, text=True, timeout=timeout,
                          env=env, check=False)


def ensure() -> str:
    """The path of a Chromium binary, running ``apt-get install -y chromium`` (after an
    ``apt-get update`` when the first try fails) if none is installed."""
    path = find()
    if path:
        return path
    if shutil.which("apt-get") is None:
        raise ChromiumUnavailable("chromium is not installed and apt-get is not available")
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        raise ChromiumUnavailable("chromium is not installed and installing it needs root "
                                  "(apt-get install -y chromium)")
    try:
        out = _apt("install", "-y", "chromium")
        if out.returncode != 0:
            _apt("update")
            out = _apt("install", "-y", "chromium")
    except (OSError, subprocess.SubprocessError) as e:
        raise ChromiumUnavailable(f"apt-get install -y chromium failed: {e}") from None
    path = find()
    if path is None:
        tail = (out.stderr or out.stdout).strip().splitlines()[-3:]
        raise ChromiumUnavailable("apt-get install -y chromium did not provide a chromium binary: "
                                  + " | ".join(tail))
    return path


def run(binary: str, args: list[str], workdir: Path, timeout: int = 120) -> subprocess.CompletedProcess:
    """Run Chromium with the offline flags, HOME and profile under ``workdir``."""
    home = workdir / "home"
    profile = workdir / "profile"
    for d in (home, profile):
        d.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
           "XDG_CACHE_HOME": str(home / ".cache"), "XDG_DATA_HOME": str(home / ".local/share")}
    cmd = [binary, *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=workdir, check=False)
