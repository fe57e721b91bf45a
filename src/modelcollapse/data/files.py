"""Find corpus files and read them as decoded lines: streaming, with exact error locations.

A corpus spec that is not ``embedded`` or ``hf:...`` is a path or a glob (``**`` recurses).
Its format comes from the suffix left after removing a compression suffix:

====================  ==========================================================
suffix                format
====================  ==========================================================
``.txt``              plain text, a document per line or per paragraph
``.jsonl``, ``.json``  JSON Lines: one object per line, text in a field
``.csv``              comma-separated with a header row, text in a column
``.parquet``          Parquet, text in a column (compressed inside the format)
====================  ==========================================================

Compression suffixes: ``.gz`` (gzip) and ``.zst`` / ``.zstd`` (Zstandard). Files are read a
line at a time, never whole, and every byte is checked: a NUL byte means a binary file, a byte
that is not UTF-8 is reported with its offset (counted in the decompressed data for compressed
files), and a stream that ends early or fails its checks is reported as truncated or corrupt.
"""

from __future__ import annotations

import errno
import glob
import gzip
import io
import os
import stat
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from ..errors import UserError
from ..safepaths import open_regular

FORMATS = {".txt": "txt", ".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv",
           ".parquet": "parquet"}
COMPRESSIONS = {".gz": "gzip", ".zst": "zstd", ".zstd": "zstd"}

_UTF8_BOM = b"\xef\xbb\xbf"
#: The longest line read (decompressed bytes): a file without line breaks, or a
#: decompression bomb, is refused with its name and line instead of filling memory.
MAX_LINE_BYTES = 64 * 2**20
_CHUNK = 1 << 16  # compressed bytes read per step from a .zst file


def expand(pattern: str) -> list[Path]:
    """The files a path or glob names, in sorted order; an error when there are none."""
    expanded = os.path.expanduser(pattern)
    # A name that exists is taken literally, even with glob characters such as '[' in it.
    if not os.path.exists(expanded) and any(c in expanded for c in "*?["):
        matches = sorted(p for p in glob.glob(expanded, recursive=True) if os.path.isfile(p))
        if not matches:
            raise UserError(f"no files match the pattern '{pattern}'")
        return [Path(p) for p in matches]
    path = Path(expanded)
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise UserError(f"file '{pattern}' is a symbolic link loop") from None
        if os.path.islink(path):
            raise UserError(f"file '{pattern}' is a symbolic link to a missing file") from None
        raise UserError(f"file '{pattern}' does not exist") from None
    if stat.S_ISDIR(mode):
        raise UserError(f"'{pattern}' is a directory, not a file; pass a file or a glob "
                        f"such as '{os.path.join(pattern, '*.txt')}'")
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a device" if (
            stat.S_ISCHR(mode) or stat.S_ISBLK(mode)) else "a socket" if stat.S_ISSOCK(mode) \
            else "a special file"
        raise UserError(f"file '{pattern}' is {kind}, not a regular file")
    return [path]


def file_kind(path: Path) -> tuple[str, str | None]:
    """``(format, compression)`` of a file from its suffixes, e.g. ``("jsonl", "gzip")``."""
    suffixes = [s.lower() for s in path.suffixes]
    compression = COMPRESSIONS.get(suffixes[-1]) if suffixes else None
    if compression is not None:
        suffixes = suffixes[:-1]
    fmt = FORMATS.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        shown = "".join(path.suffixes) or "(none)"
        raise UserError(f"file '{path}' has an unsupported type {shown}; supported: "
                        f"{', '.join(FORMATS)}, each optionally compressed as "
                        f"{', '.join(COMPRESSIONS)}")
    if fmt == "parquet" and compression is not None:
        raise UserError(f"file '{path}' is a compressed Parquet file; Parquet compresses inside "
                        f"the format, so decompress it to a plain .parquet file")
    return fmt, compression


class _CorruptStream(Exception):
    """A compressed stream that ends inside a frame or fails the decompressor's checks."""


class _ZstdFrames(io.RawIOBase):
    """Decompresses one or more concatenated zstd frames from a binary file.

    zstandard's own ``stream_reader`` ends quietly when a file is cut inside a frame, which
    would drop the tail of a corpus unnoticed; here every frame must reach its end.
    """

    def __init__(self, path: Path, raw: BinaryIO):
        try:
            import zstandard
        except ImportError:
            raw.close()
            raise UserError(f"reading '{path}' needs the zstandard package; install it with "
                            f"pip install zstandard") from None
        self._zstandard = zstandard
        self._raw = raw
        self._context = zstandard.ZstdDecompressor()
        self._frame = None  # the decompressor of the current frame
        self._pending = memoryview(b"")  # decompressed bytes not yet handed out

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            chunk = self._raw.read(_CHUNK)
            if not chunk:
                if self._frame is not None and not self._frame.eof:
                    raise _CorruptStream("the data ends inside a zstd frame")
                return 0
            self._pending = memoryview(self._decompress(chunk))
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def _decompress(self, data: bytes) -> bytes:
        out = []
        while data:
            if self._frame is None or self._frame.eof:
                self._frame = self._context.decompressobj()
            try:
                out.append(self._frame.decompress(data))
            except self._zstandard.ZstdError as error:
                raise _CorruptStream(str(error)) from None
            # Bytes after the end of a frame start the next frame.
            data = self._frame.unused_data if self._frame.eof else b""
        return b"".join(out)

    def close(self) -> None:
        self._raw.close()
        super().close()


@contextmanager
def _open_binary(path: Path, compression: str | None) -> Iterator[BinaryIO]:
    """The decompressed bytes of a file as a buffered binary stream."""
    raw = open_regular(path)   # no FIFO, device or socket, checked on the open descriptor
    if compression is None:
        stream: BinaryIO = raw
    elif compression == "gzip":
        stream = gzip.GzipFile(fileobj=raw, mode="rb")
    else:
        stream = io.BufferedReader(_ZstdFrames(path, raw), buffer_size=1 << 20)
    with raw, stream:
        yield stream


def iter_lines(path: Path, compression: str | None) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` for every line of a text file, streaming.

    ``line_number`` is 1-based; ``line`` keeps its line terminator (the CSV reader needs it
    for quoted fields that span lines). A UTF-8 byte-order mark at the start is dropped.
    Raises :class:`UserError` for an empty file, a NUL byte, bytes that are not UTF-8 (with
    the byte offset), and a truncated or corrupt compressed stream.
    """
    decompressed = " (offset in the decompressed data)" if compression else ""
    offset = 0  # bytes before the current line
    try:
        with _open_binary(path, compression) as stream:
            number = 0
            while raw := stream.readline(MAX_LINE_BYTES + 1):
                number += 1
                if len(raw) > MAX_LINE_BYTES:
                    raise UserError(f"file '{path}' line {number} is longer than "
                                    f"{MAX_LINE_BYTES:,} bytes"
                                    f"{' after decompression' if compression else ''}; a "
                                    f"document must fit in one line of that size")
                body = raw[len(_UTF8_BOM):] if number == 1 and raw.startswith(_UTF8_BOM) else raw
                skipped = len(raw) - len(body)
                nul = body.find(b"\0")
                if nul >= 0:
                    raise UserError(
                        f"file '{path}' contains a NUL byte at byte offset "
                        f"{offset + skipped + nul}{decompressed}, so it is a binary file or "
                        f"not UTF-8 text")
                try:
                    line = body.decode("utf-8")
                except UnicodeDecodeError as error:
                    raise UserError(
                        f"file '{path}' is not valid UTF-8: byte 0x{body[error.start]:02x} at "
                        f"byte offset {offset + skipped + error.start}{decompressed}, on line "
                        f"{number}") from None
                offset += len(raw)
                yield number, line
    except (EOFError, zlib.error, gzip.BadGzipFile, _CorruptStream) as error:
        raise UserError(f"file '{path}' is a truncated or corrupt {compression} stream "
                        f"({error})") from None
    except OSError as error:
        raise UserError(f"cannot read file '{path}': {error.strerror or error}") from None
    if offset == 0:
        raise UserError(f"file '{path}' is empty" + (" after decompression" if compression else ""))
