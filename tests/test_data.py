"""The text-corpus data layer: corpora, file formats, bad input, splits, tokenizers, vocabulary."""

import csv
import gzip
import io
import itertools
import json
import random
import re

import numpy as np
import pytest

from modelcollapse.data import (EMBEDDED, Corpus, Document, Splits, Vocabulary, load_corpus,
                                make_tokenizer, read_documents, split_documents)
from modelcollapse.data.document import texts_sha256
from modelcollapse.data.embedded import is_prose
from modelcollapse.errors import UserError
from modelcollapse.lm import SPECIAL_TOKENS

zstandard = pytest.importorskip("zstandard")

DOCS = ["The first document, with a comma.", "Second one: café, naïve — “quotes”.",
        'A "quoted" text, with\nan inner line break.', "Last one!"]


# ---------------------------------------------------------------- helpers


def compress(data: bytes, compression: str) -> bytes:
    if compression == "gz":
        return gzip.compress(data)
    if compression == "zst":
        return zstandard.ZstdCompressor(write_checksum=True).compress(data)
    return data


def write(tmp_path, name: str, data: bytes) -> str:
    """Write bytes (compressed by the name's .gz / .zst suffix) and return the path."""
    suffix = name.rsplit(".", 1)[-1]
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(compress(data, suffix) if suffix in ("gz", "zst") else data)
    return str(path)


def encode_as(fmt: str, texts: list[str]) -> bytes:
    if fmt == "txt":  # paragraphs: a text's inner line break stays inside its paragraph
        return "\n\n".join(texts).encode() + b"\n"
    if fmt == "jsonl":
        lines = (json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts))
        return "".join(lines).encode()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "text"])
    writer.writerows(enumerate(texts))
    return out.getvalue().encode()


def error_of(call) -> str:
    with pytest.raises(UserError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def read_all(spec, **kwargs) -> list[Document]:
    return list(read_documents(spec, **kwargs))


# ---------------------------------------------------------------- embedded corpus


def test_embedded_corpus_loads_with_provenance():
    corpus = load_corpus()
    assert corpus.name == EMBEDDED and corpus.predefined is None
    texts = corpus.texts()
    assert len(texts) > 1000 and len(set(texts)) == len(texts)
    assert sum(len(t.split()) for t in texts) > 40_000
    prov = corpus.provenance
    assert "pydoc_data.topics" in prov["description"] and "PSF" in prov["description"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", prov["origin"]["python_version"])
    assert prov["n_docs"] == len(texts) and prov["n_chars"] == sum(map(len, texts))
    assert prov["sha256"] == texts_sha256(texts) and len(prov["sha256"]) == 64
    json.dumps(prov)
    topics = [d.source.removeprefix("embedded:") for d in corpus.documents]
    assert all(d.source.startswith("embedded:") for d in corpus.documents)
    assert topics == sorted(topics)  # topic-name order
    # Prose only: no interactive examples or grammar rules, whitespace collapsed.
    assert not any(">>>" in t or "::=" in t or "\n" in t or "  " in t for t in texts)


def test_embedded_corpus_is_deterministic_and_streams_the_same_documents():
    first, second = load_corpus(EMBEDDED), load_corpus(None)
    assert first.provenance["sha256"] == second.provenance["sha256"]
    assert [d.text for d in read_documents()] == first.texts()
    capped = load_corpus(max_docs=10)
    assert capped.texts() == first.texts()[:10] and capped.provenance["truncated"] is True


def test_is_prose_rule():
    assert is_prose("Assert statements are a convenient way to insert\ndebugging assertions.")
    assert not is_prose('The "assert" statement\n**********************')  # heading
    assert not is_prose("   >>> 1 + 1\n   2")  # interactive example
    assert not is_prose('   assert_stmt ::= "assert" expression ["," expression]')  # grammar
    assert not is_prose("   if not expression: raise AssertionError")  # no sentence end
    assert not is_prose("   x = {a: b[i] for (a, b) in f(y, z)}.")  # too few letters
    assert not is_prose("See also:")  # too short


# ---------------------------------------------------------------- splits


def test_split_documents_deterministic_disjoint_and_near_the_fractions():
    texts = load_corpus().texts()
    splits = split_documents(texts, validation=0.1, test=0.2, seed=3)
    again = split_documents(texts, validation=0.1, test=0.2, seed=3)
    assert splits == again
    assert sorted(splits.train + splits.validation + splits.test) == sorted(texts)
    assert not set(splits.train) & set(splits.test)
    assert not set(splits.train) & set(splits.validation)
    n = len(texts)
    for part, fraction in ((splits.validation, 0.1), (splits.test, 0.2)):
        sd = np.sqrt(n * fraction * (1 - fraction))  # binomial standard deviation
        assert abs(len(part) - n * fraction) < 4 * sd
    # Corpus order kept within a split (the docs repeat some paragraphs: take first positions).
    position: dict[str, int] = {}
    for i, text in enumerate(texts):
        position.setdefault(text, i)
    order = [position[t] for t in dict.fromkeys(splits.test)]
    assert order == sorted(order)
    assert split_documents(texts, 0.1, 0.2, seed=4).test != splits.test  # the seed matters
    record = splits.as_record()
    assert record["method"] == "hash" and record["seed"] == 3
    assert record["sizes"]["test"] == len(splits.test)
    assert record["sha256"]["train"] == texts_sha256(splits.train)
    assert record["requested"] == {"validation": 0.1, "test": 0.2}


def test_split_is_independent_of_order_and_keeps_duplicates_together():
    texts = [f"document number {i}" for i in range(400)]
    texts += texts[:50]  # duplicates
    shuffled = texts[:]
    random.Random(1).shuffle(shuffled)
    a, b = split_documents(texts, seed=7), split_documents(shuffled, seed=7)
    for name in ("train", "validation", "test"):
        assert sorted(getattr(a, name)) == sorted(getattr(b, name))
    for text in texts[:50]:
        homes = [name for name in ("train", "validation", "test") if text in getattr(a, name)]
        assert len(homes) == 1 and getattr(a, homes[0]).count(text) == 2


@pytest.mark.parametrize("validation, test, words", [
    (1.0, 0.1, "validation fraction"), (0.1, -0.1, "test fraction"),
    (0.5, 0.5, "sum to less than 1"), (float("nan"), 0.1, "validation fraction")])
def test_split_fractions_are_validated(validation, test, words):
    assert words in error_of(lambda: split_documents(["a", "b"], validation, test))


def test_split_of_a_tiny_corpus_is_an_error():
    message = error_of(lambda: split_documents(["only one"], 0.1, 0.1))
    assert "too small" in message and "1 documents" in message
    assert split_documents(["only one"], 0.0, 0.0).train == ["only one"]


def test_corpus_splits_use_predefined_splits_and_fill_missing_ones_by_hash():
    train = [f"train text {i}" for i in range(200)]
    corpus = Corpus("x", [], {}, predefined={"train": train, "validation": ["v"], "test": ["t"]})
    splits = corpus.splits()
    assert (splits.train, splits.validation, splits.test) == (train, ["v"], ["t"])
    assert splits.as_record()["method"] == "predefined"
    partial = Corpus("x", [], {}, predefined={"train": train, "test": ["t"]}).splits(0.2, 0.1)
    assert partial.test == ["t"] and partial.filled == ("validation",)
    assert sorted(partial.train + partial.validation) == sorted(train)
    assert partial.validation == split_documents(train, 0.2, 0.0).validation


# ---------------------------------------------------------------- file formats


@pytest.mark.parametrize("fmt", ["txt", "jsonl", "csv"])
@pytest.mark.parametrize("compression", ["", ".gz", ".zst"])
def test_format_and_compression_round_trip(tmp_path, fmt, compression):
    path = write(tmp_path, f"corpus.{fmt}{compression}", encode_as(fmt, DOCS))
    docs = read_all(path)
    assert [d.text for d in docs] == DOCS
    assert {d.source for d in docs} == {path}
    expected_lines = {"txt": [1, 3, 5, 8], "jsonl": [1, 2, 3, 4], "csv": [2, 3, 4, 6]}[fmt]
    assert [d.index for d in docs] == expected_lines


def test_parquet_round_trip_and_json_suffix(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "c.parquet"
    pq.write_table(pa.table({"body": DOCS + ["   "], "n": [1, 2, 3, 4, 5]}), path, row_group_size=2)
    docs = read_all(str(path), text_field="body")
    assert [d.text for d in docs] == DOCS and [d.index for d in docs] == [0, 1, 2, 3]
    json_path = write(tmp_path, "c.json", encode_as("jsonl", DOCS))
    assert [d.text for d in read_all(json_path)] == DOCS


def test_globs_are_sorted_and_recursive(tmp_path):
    write(tmp_path, "d/b.txt", b"bee\n")
    write(tmp_path, "d/a.jsonl.gz", b'{"text": "ay"}\n')
    write(tmp_path, "d/sub/c.csv", b"text\ncee\n")
    assert [d.text for d in read_all(str(tmp_path / "d" / "*"))] == ["ay", "bee"]
    assert [d.text for d in read_all(str(tmp_path / "d" / "**" / "*.*"))] == ["ay", "bee", "cee"]
    corpus = load_corpus(str(tmp_path / "d" / "**" / "*.*"))
    files = [f["path"] for f in corpus.provenance["origin"]["files"]]
    assert [f.rsplit("/", 1)[-1] for f in files] == ["a.jsonl.gz", "b.txt", "c.csv"]


def test_txt_units_line_paragraph_and_auto(tmp_path):
    paragraphs = write(tmp_path, "p.txt", b"one\ntwo\n\n\nthree\n")
    assert [d.text for d in read_all(paragraphs)] == ["one\ntwo", "three"]
    assert [d.text for d in read_all(paragraphs, unit="line")] == ["one", "two", "three"]
    assert [d.index for d in read_all(paragraphs, unit="line")] == [1, 2, 5]
    # Trailing blank lines separate nothing, so they do not switch "auto" to paragraphs.
    trailing = write(tmp_path, "l.txt", b"one\r\ntwo\r\n\r\n\r\n")
    assert [d.text for d in read_all(trailing)] == ["one", "two"]
    assert [d.text for d in read_all(trailing, unit="paragraph")] == ["one\ntwo"]
    bom = write(tmp_path, "bom.txt", "\ufeffhello\n".encode())
    assert read_all(bom)[0].text == "hello"


def test_read_documents_streams_a_large_gzip_jsonl(tmp_path):
    n = 60_000
    lines = [json.dumps({"text": f"document {i} " + "lorem ipsum dolor " * 5}) for i in range(n)]
    lines[-1] = "{broken"  # only reached when the stream is read to its end
    path = write(tmp_path, "big.jsonl.gz", ("\n".join(lines) + "\n").encode())
    stream = read_documents(path)
    assert not isinstance(stream, list)
    first = list(itertools.islice(stream, 5))  # no error: nothing beyond these lines was parsed
    assert [d.index for d in first] == [1, 2, 3, 4, 5]
    count = 5
    with pytest.raises(UserError, match=f"line {n} is not valid JSON"):
        for _ in stream:
            count += 1
    assert count == n - 1


# ---------------------------------------------------------------- bad input


def test_empty_and_whitespace_only_files(tmp_path):
    assert "is empty" in error_of(lambda: read_all(write(tmp_path, "e.txt", b"")))
    message = error_of(lambda: read_all(write(tmp_path, "e.jsonl.gz", b"")))
    assert "e.jsonl.gz' is empty after decompression" in message
    message = error_of(lambda: read_all(write(tmp_path, "w.txt", b"  \n\t\n")))
    assert "w.txt' has no documents" in message
    message = error_of(lambda: read_all(write(tmp_path, "w.jsonl", b'{"text": " "}\n')))
    assert "w.jsonl' has no documents" in message


@pytest.mark.parametrize("name, where", [("bad.txt", ""), ("bad.txt.gz", "decompressed"),
                                         ("bad.csv.zst", "decompressed")])
def test_non_utf8_bytes_are_named_by_byte_offset(tmp_path, name, where):
    path = write(tmp_path, name, b"text\nfine line\nabc \xff def\n")
    message = error_of(lambda: read_all(path))
    assert name in message and "not valid UTF-8" in message and "0xff" in message
    assert "byte offset 19" in message and "line 3" in message and where in message


def test_binary_file_with_nul_bytes(tmp_path):
    path = write(tmp_path, "blob.txt", b"abc\x00\x01\x02")
    message = error_of(lambda: read_all(path))
    assert "blob.txt" in message and "NUL byte at byte offset 3" in message and "binary" in message


def test_truncated_or_corrupt_compressed_streams(tmp_path):
    data = encode_as("jsonl", DOCS * 200)
    cut_gzip = tmp_path / "cut.jsonl.gz"
    cut_gzip.write_bytes(gzip.compress(data)[:-30])
    message = error_of(lambda: read_all(str(cut_gzip)))
    assert "cut.jsonl.gz' is a truncated or corrupt gzip stream" in message
    not_gzip = tmp_path / "plain.txt.gz"
    not_gzip.write_bytes(b"this was never gzipped\n")
    assert "truncated or corrupt gzip" in error_of(lambda: read_all(str(not_gzip)))
    cut_zstd = tmp_path / "cut.jsonl.zst"
    cut_zstd.write_bytes(zstandard.ZstdCompressor().compress(data)[:-30])
    assert "cut.jsonl.zst' is a truncated or corrupt zstd stream" in error_of(
        lambda: read_all(str(cut_zstd)))
    garbage = tmp_path / "garbage.txt.zst"
    garbage.write_bytes(b"this is not zstd at all\n")
    assert "garbage.txt.zst' is a truncated or corrupt zstd" in error_of(
        lambda: read_all(str(garbage)))
    flipped = bytearray(zstandard.ZstdCompressor(write_checksum=True).compress(data))
    flipped[len(flipped) // 2] ^= 0xFF
    (tmp_path / "flip.txt.zst").write_bytes(bytes(flipped))
    assert "corrupt zstd" in error_of(lambda: read_all(str(tmp_path / "flip.txt.zst")))


@pytest.mark.parametrize("line, words", [
    ('{"text": "ok"}\n{"text": "broken\n', "line 2 is not valid JSON"),
    ('{"text": "ok"}\n["text"]\n', "line 2 is a JSON array, not an object"),
    ('\n{"body": "x", "id": 1}\n', "line 2 has no field 'text' (its fields: 'body', 'id')"),
    ('{"text": 3}\n', "line 1 has a number in field 'text', not a string"),
    ('{"text": null}\n', "line 1 has a null in field 'text'")])
def test_bad_jsonl_lines_are_named(tmp_path, line, words):
    path = write(tmp_path, "bad.jsonl", line.encode())
    message = error_of(lambda: read_all(path))
    assert f"file '{path}' {words}" in message


def test_csv_and_parquet_without_the_column(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = write(tmp_path, "t.csv", b"id,body\n1,hello\n")
    message = error_of(lambda: read_all(path))
    assert "t.csv' has no column 'text'" in message and "'id', 'body'" in message
    short = write(tmp_path, "s.csv", b"id,text\n1,hello\n2\n")
    assert "s.csv' line 3 has 1 fields" in error_of(lambda: read_all(short))
    pq.write_table(pa.table({"body": ["x"], "n": [1]}), tmp_path / "t.parquet")
    message = error_of(lambda: read_all(str(tmp_path / "t.parquet")))
    assert "t.parquet' has no column 'text'" in message and "'body', 'n'" in message
    message = error_of(lambda: read_all(str(tmp_path / "t.parquet"), text_field="n"))
    assert "column 'n' holds int64, not strings" in message
    pq.write_table(pa.table({"text": ["x", None]}), tmp_path / "null.parquet")
    assert "row 1 has a null 'text'" in error_of(lambda: read_all(str(tmp_path / "null.parquet")))
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    junk = str(tmp_path / "junk.parquet")
    assert "not a readable Parquet file" in error_of(lambda: read_all(junk))


def test_paths_globs_and_suffixes(tmp_path):
    pattern = str(tmp_path / "nothing" / "*.txt")
    assert error_of(lambda: read_documents(pattern)) == f"no files match the pattern '{pattern}'"
    missing = str(tmp_path / "missing.txt")
    assert error_of(lambda: read_documents(missing)) == f"file '{missing}' does not exist"
    assert "is a directory, not a file" in error_of(lambda: read_documents(str(tmp_path)))
    odd = write(tmp_path, "notes.md", b"# hi\n")
    message = error_of(lambda: read_documents(odd))
    assert "unsupported type .md" in message and ".jsonl" in message and ".zst" in message
    assert "Parquet" in error_of(lambda: read_documents(write(tmp_path, "a.parquet.gz", b"x")))


def test_bad_arguments(tmp_path):
    path = write(tmp_path, "a.txt", b"a\n")
    assert "unknown unit 'lines'" in error_of(lambda: read_documents(path, unit="lines"))
    assert "max_docs" in error_of(lambda: load_corpus(path, max_docs=0))
    assert "text_field" in error_of(lambda: read_documents(path, text_field=""))


# ---------------------------------------------------------------- tokenizers


def test_word_tokenizer_known_answer_and_detokenize():
    tokenizer = make_tokenizer()
    text = "Don't stop: self-consuming loops (see [1]) collapse, 95% of the time!"
    tokens = tokenizer.tokenize(text)
    assert tokens == ["Don't", "stop", ":", "self-consuming", "loops", "(", "see", "[", "1", "]",
                      ")", "collapse", ",", "95", "%", "of", "the", "time", "!"]
    assert tokenizer.detokenize(tokens) == text
    assert make_tokenizer(lowercase=True).tokenize("Don't STOP")[:2] == ["don't", "stop"]
    assert tokenizer.tokenize_many([text, "a b"]) == [tokens, ["a", "b"]]
    assert tokenizer.as_record()["pattern"].startswith(r"\w+")


def test_char_tokenizer():
    tokenizer = make_tokenizer("char", lowercase=True)
    assert tokenizer.tokenize("Ab  c\n") == ["a", "b", " ", "c"]
    assert tokenizer.detokenize(tokenizer.tokenize("x y")) == "x y"
    assert tokenizer.tokenize_many(["Ab", "c"]) == [["a", "b"], ["c"]]


def test_bpe_trains_deterministically_and_round_trips():
    pytest.importorskip("tokenizers")
    train = load_corpus(max_docs=300).texts()
    bpe = make_tokenizer("bpe", vocab_size=300).fit(train)
    again = make_tokenizer("bpe", vocab_size=300).fit(train)
    assert bpe.as_record()["model_sha256"] == again.as_record()["model_sha256"]
    assert bpe.as_record()["trained_vocab_size"] == 300
    text = "Assignments to the built-in variable are illegal."
    tokens = bpe.tokenize(text)
    assert 1 < len(tokens) < len(text) and bpe.detokenize(tokens) == text
    assert bpe.tokenize_many([text, text]) == [tokens, tokens]
    assert "<unk>" in bpe.tokenize("\u4e2d")  # a byte never seen in training
    lower = make_tokenizer("bpe", lowercase=True, vocab_size=50).fit(["Hello World"] * 3)
    assert lower.detokenize(lower.tokenize("HELLO")) == "hello"


def test_tokenizer_arguments_are_checked(monkeypatch):
    assert "needs a vocab_size" in error_of(lambda: make_tokenizer("bpe"))
    assert "at least 10" in error_of(lambda: make_tokenizer("bpe", vocab_size=5))
    assert "kind='bpe'" in error_of(lambda: make_tokenizer("word", vocab_size=100))
    assert "unknown tokenizer 'words'" in error_of(lambda: make_tokenizer("words"))
    with pytest.raises(RuntimeError, match="fit"):
        make_tokenizer("bpe", vocab_size=20).tokenize("x")
    monkeypatch.setitem(__import__("sys").modules, "tokenizers", None)
    assert "modelcollapse[bpe]" in error_of(lambda: make_tokenizer("bpe", vocab_size=20))


# ---------------------------------------------------------------- vocabulary


def test_vocabulary_known_answer():
    docs = [["b", "a", "c", "a"], ["c", "b", "d", "<s>"], ["a"]]
    vocab = Vocabulary.build(docs)
    # a:3, then b:2 and c:2 tied (by string), d:1; "<s>" is reserved, not counted.
    assert vocab.tokens == [*SPECIAL_TOKENS, "a", "b", "c", "d"] and len(vocab) == 7
    assert vocab.id("a") == 3 and vocab.id("zzz") == 0
    encoded = vocab.encode([["a", "d", "zzz", "<s>", "<unk>"], []])
    assert encoded[0].dtype == np.int32 and encoded[0].tolist() == [3, 6, 0, 0, 0]
    assert encoded[1].shape == (0,)
    assert vocab.decode([3, 4, 0]) == ["a", "b", "<unk>"]
    small = Vocabulary.build(docs, min_count=2, max_size=5)
    assert small.tokens == [*SPECIAL_TOKENS, "a", "b"]
    record = small.as_record()
    assert record["size"] == 5 and record["n_tokens_counted"] == 8
    assert record["train_coverage"] == pytest.approx(5 / 8)
    assert "outside" in error_of(lambda: vocab.decode([7]))
    assert "max_size" in error_of(lambda: Vocabulary.build(docs, max_size=3))


# ---------------------------------------------------------------- Hugging Face datasets


@pytest.fixture
def hf_offline(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    for name, value in {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                        "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HOME": str(tmp_path / "hf"),
                        "HF_DATASETS_CACHE": str(tmp_path / "hf" / "datasets")}.items():
        monkeypatch.setenv(name, value)
    return datasets


def test_hf_saved_dataset_dict_gives_predefined_splits(tmp_path, hf_offline):
    datasets = hf_offline
    parts = {split: [f"{split} text {i}" for i in range(n)]
             for split, n in (("train", 30), ("validation", 5), ("test", 6))}
    datasets.DatasetDict({
        split: datasets.Dataset.from_dict({"text": texts, "n": list(range(len(texts)))})
        for split, texts in parts.items()}).save_to_disk(tmp_path / "saved")
    spec = f"hf:{tmp_path / 'saved'}"
    corpus = load_corpus(spec)
    assert corpus.predefined == parts
    assert corpus.documents[0] == Document("train text 0", f"{spec}:default:train", 0)
    splits = corpus.splits()
    assert isinstance(splits, Splits) and splits.test == parts["test"]
    assert splits.as_record()["method"] == "predefined"
    assert corpus.provenance["origin"]["rows"] == {"train": 30, "validation": 5, "test": 6}
    only_test = load_corpus(f"{spec}::test")
    assert only_test.texts() == parts["test"] and only_test.predefined is None
    message = error_of(lambda: load_corpus(spec, text_field="body"))
    assert "no column 'body'" in message and "'text', 'n'" in message


def test_hf_local_folder_of_data_files_uses_the_cache_in_the_environment(tmp_path, hf_offline):
    write(tmp_path, "folder/train.jsonl", b'{"text": "a b"}\n{"text": "c d"}\n')
    write(tmp_path, "folder/test.jsonl", b'{"text": "e f"}\n')
    corpus = load_corpus(f"hf:{tmp_path / 'folder'}")
    assert corpus.predefined == {"train": ["a b", "c d"], "test": ["e f"]}
    assert corpus.splits(validation=0.0).test == ["e f"]
    assert any((tmp_path / "hf" / "datasets").iterdir())  # cached under HF_DATASETS_CACHE
    assert "hf:NAME:CONFIG:SPLIT" in error_of(lambda: load_corpus("hf:a:b:c:d"))
    assert "local path" in error_of(lambda: load_corpus(f"hf:{tmp_path / 'none'}"))


def test_hf_dataset_offline_and_not_cached_is_one_error(hf_offline):
    message = error_of(lambda: load_corpus("hf:wikitext:wikitext-2-raw-v1"))
    assert message.startswith("hf:wikitext is not available offline")
    assert "local datasets cache" in message


def test_hf_without_datasets_installed(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "datasets", None)
    assert "modelcollapse[hf]" in error_of(lambda: load_corpus("hf:wikitext"))
