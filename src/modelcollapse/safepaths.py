"""Safe paths for files that may come from someone else (a colleague's run folder, a
downloaded corpus): regular files only, and inside the folder they belong to.

A run folder is data. Reading it must never follow a symlink out of it (``report`` would
copy the linked file into its page), block on a FIFO, or read a device without end; these
helpers refuse such entries with one sentence naming them.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from .errors import UserError


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def is_regular_inside(path: Path, root: Path) -> bool:
    """True when ``path`` is a regular file below ``root`` and no component between them
    is a symbolic link (``root`` itself may be one: the user named it)."""
    try:
        rel = Path(os.path.relpath(Path(path), Path(root)))
    except ValueError:
        return False
    if rel.is_absolute() or ".." in rel.parts:
        return False
    current = Path(root)
    for part in rel.parts:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except OSError:
            return False
        if stat.S_ISLNK(mode):
            return False
    return stat.S_ISREG(mode) if rel.parts else False


def check_regular_inside(path: Path, root: Path, what: str = "file") -> Path:
    """``path`` when :func:`is_regular_inside`, else a UserError naming it and what it is."""
    if is_regular_inside(path, root):
        return Path(path)
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        raise UserError(f"{what} {path} is missing") from None
    kind = "reached through a symbolic link or outside the folder" if stat.S_ISREG(mode) \
        else _kind(mode)
    raise UserError(f"{what} {path} is {kind}; only regular files inside the run folder are read")


def open_regular(path: str | Path, what: str = "file") -> BinaryIO:
    """Open ``path`` for reading only if it is a regular file (after following links, so a
    link to a corpus is fine, a link to /dev/zero is not), without blocking on a FIFO: the
    check is on the opened descriptor, so nothing can swap the file in between."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        if e.errno == 40:   # ELOOP
            raise UserError(f"{what} {path} is a symbolic link loop") from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise UserError(f"{what} {path} is {_kind(mode)}, not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def check_tree(root: Path, what: str = "run folder") -> None:
    """Refuse a folder that holds anything but regular files and folders below it (a
    symbolic link could lead reads or writes out of it; a FIFO or device would hang or
    flood a reader), naming the first such entry. ``root`` itself may be a link."""
    root = Path(root)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            try:
                mode = os.lstat(p).st_mode
            except OSError:   # removed meanwhile (a concurrent writer's temporary file)
                continue
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise UserError(f"{what} {root} holds {_kind(mode)} at {p.relative_to(root)}; "
                                f"a {what} may hold only regular files and folders")
