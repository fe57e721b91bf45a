"""Documents from text, JSON Lines, CSV and Parquet files (the path / glob corpus specs).

Every reader streams: lines one at a time, Parquet in record batches. A document's text is
stripped of surrounding whitespace and whitespace-only documents are skipped; a file that
yields no document at all is an error, as is any malformed record (named by file and line).
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from ..errors import UserError
from .document import Document
from .files import MAX_LINE_BYTES, expand, file_kind, iter_lines

Unit = Literal["auto", "line", "paragraph"]
UNITS = ("auto", "line", "paragraph")
DEFAULT_TEXT_FIELD = "text"

# The csv module refuses fields over 128 KiB by default; a long article in one cell is a
# normal document, so lift the (process-wide) limit once, never lowering it.
csv.field_size_limit(max(csv.field_size_limit(), min(sys.maxsize, MAX_LINE_BYTES)))
#: The longest document (characters) a paragraph or a CSV field may make.
MAX_DOCUMENT_CHARS = MAX_LINE_BYTES


def _unicode(text: str, where: str) -> str:
    """``text`` when it is valid Unicode; JSON may spell a lone surrogate (``"\\ud800"``),
    which no UTF-8 writer or tokenizer accepts."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise UserError(f"{where} holds a lone surrogate (\\u{ord(text[e.start]):04x}) at "
                        f"character {e.start}, which is not valid Unicode text") from None
    return text


class FileSource:
    """The documents of the files a path or glob names, file by file in sorted order.

    ``unit`` applies to ``.txt`` files (see :func:`read_txt`); ``text_field`` names the JSON
    field or the CSV / Parquet column holding the text. The files and their formats are
    checked when the source is made, so a bad pattern fails before any reading.
    """

    def __init__(self, pattern: str, text_field: str | None = None, unit: Unit = "auto"):
        self.pattern = pattern
        self.text_field = DEFAULT_TEXT_FIELD if text_field is None else text_field
        self.unit = unit
        self.files = [(path, *file_kind(path)) for path in expand(pattern)]

    def documents(self) -> Iterator[Document]:
        for path, fmt, compression in self.files:
            if fmt == "txt":
                docs = read_txt(path, compression, self.unit)
                empty = "it holds only whitespace"
            elif fmt == "parquet":
                docs = read_parquet(path, self.text_field)
                empty = f"every '{self.text_field}' value is empty or whitespace"
            else:
                reader = read_jsonl if fmt == "jsonl" else read_csv
                docs = reader(path, compression, self.text_field)
                empty = f"every '{self.text_field}' value is empty or whitespace"
            n_docs = 0
            for doc in docs:
                n_docs += 1
                yield doc
            if n_docs == 0:
                raise UserError(f"file '{path}' has no documents: {empty}")

    def describe(self) -> dict:
        return {
            "description": f"files matching '{self.pattern}'",
            "origin": {
                "files": [{"path": str(path), "format": fmt, "compression": compression,
                           "bytes": path.stat().st_size} for path, fmt, compression in self.files],
                "text_field": self.text_field,
                "unit": self.unit,
            },
            "license": "not recorded: the files are the user's own",
        }

    def predefined(self, documents: list[Document]) -> dict[str, list[str]] | None:
        return None  # plain files carry no train / validation / test split of their own


def _has_inner_blank_line(path: Path, compression: str | None) -> bool:
    """Whether a blank line separates two non-blank lines (trailing blank lines don't count)."""
    seen_text = blank_after_text = False
    for _, line in iter_lines(path, compression):
        if line.strip():
            if blank_after_text:
                return True
            seen_text = True
        elif seen_text:
            blank_after_text = True
    return False


def read_txt(path: Path, compression: str | None, unit: Unit) -> Iterator[Document]:
    """Documents of a text file: one per non-blank line, or one per blank-line-separated paragraph.

    ``unit="auto"`` picks paragraphs when a blank line separates two non-blank lines anywhere in
    the file, else lines (that takes a first pass over the file, stopping at the first such
    blank line). A paragraph keeps its line breaks; ``index`` is the line it starts on.
    """
    if unit == "auto":
        unit = "paragraph" if _has_inner_blank_line(path, compression) else "line"
    source = str(path)
    if unit == "line":
        for number, line in iter_lines(path, compression):
            text = line.strip()
            if text:
                yield Document(text, source, number)
        return
    block: list[str] = []
    first = 0
    size = 0
    for number, line in iter_lines(path, compression):
        if line.strip():
            if not block:
                first, size = number, 0
            block.append(line.rstrip())
            size += len(line)
            if size > MAX_DOCUMENT_CHARS:
                raise UserError(f"file '{path}': the paragraph starting on line {first} is longer "
                                f"than {MAX_DOCUMENT_CHARS:,} characters at line {number}; "
                                f"separate documents with blank lines")
        elif block:
            yield Document("\n".join(block).strip(), source, first)
            block = []
    if block:
        yield Document("\n".join(block).strip(), source, first)


_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number",
               float: "number", type(None): "null"}


def read_jsonl(path: Path, compression: str | None, text_field: str) -> Iterator[Document]:
    """Documents of a JSON Lines file: the string ``text_field`` of each object.

    Blank lines between objects are allowed; ``index`` is the 1-based line.
    """
    source = str(path)
    for number, line in iter_lines(path, compression):
        if not line.strip():
            continue
        where = f"file '{path}' line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise UserError(f"{where} is not valid JSON ({error.msg} at column "
                            f"{error.colno})") from None
        except RecursionError:
            raise UserError(f"{where} is JSON nested too deeply to read") from None
        except ValueError as error:   # e.g. an integer of more than 4,300 digits
            raise UserError(f"{where} holds a value JSON cannot read here "
                            f"({str(error).split(';')[0][:100]})") from None
        if not isinstance(record, dict):
            raise UserError(f"{where} is a JSON {_JSON_TYPES[type(record)]}, not an object; "
                            f"JSON Lines needs one object per line")
        if text_field not in record:
            fields = ", ".join(f"'{k[:60]}'" for k in list(record)[:20]) or "none"
            raise UserError(f"{where} has no field '{text_field}' (its fields: {fields}); "
                            f"pick one with text_field")
        value = record[text_field]
        if not isinstance(value, str):
            raise UserError(f"{where} has a {_JSON_TYPES[type(value)]} in field "
                            f"'{text_field}', not a string")
        text = _unicode(value, f"{where} field '{text_field}'").strip()
        if text:
            yield Document(text, source, number)


def read_csv(path: Path, compression: str | None, text_field: str) -> Iterator[Document]:
    """Documents of a CSV file with a header row: the ``text_field`` column of each row.

    ``index`` is the line the row starts on (a quoted field may span several lines).
    """
    source = str(path)
    reader = csv.reader(line for _, line in iter_lines(path, compression))
    column = -1
    first_line = 1
    try:
        for row in reader:
            start, first_line = first_line, reader.line_num + 1
            if not row:  # a blank line
                continue
            if column < 0:
                if text_field not in row:
                    columns = ", ".join(f"'{c}'" for c in row)
                    raise UserError(f"file '{path}' has no column '{text_field}' in its header "
                                    f"row (its columns: {columns}); pick one with text_field")
                column = row.index(text_field)
                continue
            if column >= len(row):
                raise UserError(f"file '{path}' line {start} has {len(row)} fields, too few for "
                                f"column '{text_field}' (field {column + 1})")
            text = row[column].strip()
            if text:
                yield Document(text, source, start)
    except csv.Error as error:
        raise UserError(f"file '{path}' is not valid CSV near line {reader.line_num}: "
                        f"{error}") from None


def read_parquet(path: Path, text_field: str) -> Iterator[Document]:
    """Documents of a Parquet file: the string column ``text_field``, read in record batches.

    ``index`` is the 0-based row. A null value is an error, not a skipped row.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.stat().st_size == 0:
        raise UserError(f"file '{path}' is empty")
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as error:
        raise UserError(f"file '{path}' is not a readable Parquet file ({error})") from None
    schema = parquet.schema_arrow
    if text_field not in schema.names:
        columns = ", ".join(f"'{c}'" for c in schema.names)
        raise UserError(f"file '{path}' has no column '{text_field}' (its columns: {columns}); "
                        f"pick one with text_field")
    kind = schema.field(text_field).type
    value_kind = kind.value_type if pa.types.is_dictionary(kind) else kind
    if not (pa.types.is_string(value_kind) or pa.types.is_large_string(value_kind)
            or str(value_kind) == "string_view"):
        raise UserError(f"file '{path}' column '{text_field}' holds {kind}, not strings")
    source = str(path)
    row = 0
    with parquet:
        try:
            for batch in parquet.iter_batches(columns=[text_field], batch_size=8192):
                for value in batch.column(0).to_pylist():
                    if value is None:
                        raise UserError(f"file '{path}' row {row} has a null '{text_field}'")
                    text = value.strip()
                    if text:
                        yield Document(text, source, row)
                    row += 1
        except (pa.ArrowException, OSError) as error:
            raise UserError(f"file '{path}' is a corrupt Parquet file near row {row} "
                            f"({error})") from None
