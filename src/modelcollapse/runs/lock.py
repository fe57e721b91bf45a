"""One writer per run folder: ``OUT/.lock``.

Two sweeps writing one folder race on the same cells and chunk files. The first process
to run (or sweep) a folder holds an exclusive ``flock`` on ``OUT/.lock`` for as long as it
writes; the file says who holds it (PID, host, command, start time). A second process is
refused in one sentence naming that PID. A lock whose holder died is released by the
kernel with the process, so the next run simply takes it over; where ``flock`` is not
available, a lock file whose PID is no longer alive on this host is taken over instead.
Forked pool workers share the parent's lock; they die with it (see ``sweep.executors``).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fcntl
import json
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

from ..errors import UserError

LOCK_NAME = ".lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # alive, owned by someone else
        return True
    return True


def _holder(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            info = json.loads(fh.read(4096).decode("utf-8"))
        return info if isinstance(info, dict) else {}
    except (OSError, ValueError):
        return {}


def _refuse(folder: Path, info: dict) -> UserError:
    pid = info.get("pid")
    who = f"process {pid}" if isinstance(pid, int) else "another process"
    host = info.get("host")
    where = f" on {host}" if isinstance(host, str) and host != socket.gethostname() else ""
    since = f" since {info['started']}" if isinstance(info.get("started"), str) else ""
    return UserError(f"run folder {folder} is in use by {who}{where}{since}; wait for it to "
                     f"finish or stop it, then run again (finished cells are kept)")


@contextlib.contextmanager
def run_lock(folder: str | Path) -> Iterator[Path]:
    """Hold the folder's lock for the block (the folder must exist). Raises UserError
    naming the holder when another live process has it."""
    folder = Path(folder)
    path = folder / LOCK_NAME
    fd = _acquire(folder, path)
    try:
        yield path
    finally:
        try:
            if os.path.samestat(os.fstat(fd), os.stat(path)):
                os.unlink(path)
        except OSError:
            pass
        os.close(fd)   # releases the flock


def _acquire(folder: Path, path: Path) -> int:
    for _ in range(10):   # the file may be replaced between open and lock: retry
        if path.is_symlink():
            raise UserError(f"lock file {path} is a symbolic link; remove it")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise _refuse(folder, _holder(path)) from None
            except OSError as e:   # no flock on this file system: judge by the PID
                if e.errno not in (errno.ENOLCK, errno.EINVAL, errno.EOPNOTSUPP):
                    raise
                info = _holder(path)
                pid = info.get("pid")
                if (isinstance(pid, int) and pid != os.getpid() and _alive(pid)
                        and info.get("host") in (None, socket.gethostname())):
                    raise _refuse(folder, info) from None
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(path))
            except FileNotFoundError:
                same = False
            if not same:   # unlinked by its releasing holder meanwhile: lock the new file
                os.close(fd)
                continue
            info = {"pid": os.getpid(), "host": socket.gethostname(),
                    "command": " ".join(sys.argv)[:500],
                    "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
            return fd
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise
    raise UserError(f"run folder {folder}: its lock file {path} keeps changing; is another "
                    f"process starting in it?")
