"""The transformer family (extra `torch`): a tiny GPT-2-style model in the loop, its
decoding, scoring, training and files, and its bad inputs."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from modelcollapse.cli import main  # noqa: E402
from modelcollapse.families.transformer import Transformer, TransformerParams  # noqa: E402
from modelcollapse.neural import network, score  # noqa: E402
from modelcollapse.neural import generation as decode  # noqa: E402
from modelcollapse.neural.train import TrainOptions, train  # noqa: E402
from modelcollapse.randomness import SeedTree  # noqa: E402

# Small enough for seconds per generation on 2 CPU cores.
FAST = ["--set", "epochs=1", "--set", "eval_tokens=1000", "--set", "val_blocks=32",
        "--set", "bleu_docs=50", "--set", "device=cpu", "--n-samples", "96", "--replicates", "1"]


@pytest.fixture(scope="module")
def family():
    return Transformer(TransformerParams(device="cpu"), 0)


@pytest.fixture(scope="module")
def tiny(family):
    return family.initial(0, SeedTree(0, "test"))


def read(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "metrics.parquet")


def test_tiny_model_runs_two_generations_end_to_end(tmp_path, capsys):
    out = tmp_path / "run"
    start = time.perf_counter()
    rc = main(["run", "--family", "transformer", "--policy", "mix", "--set", "real_fraction=0.25",
               "--generations", "2", "--out", str(out), "--quiet", *FAST])
    elapsed = time.perf_counter() - start
    assert rc == 0, capsys.readouterr().err
    df = read(out)
    metrics = set(df["metric"])
    for name in ("perplexity_real", "perplexity_gen0", "distinct_2", "self_bleu", "tail_coverage",
                 "validation_loss", "seq_ppl_gen0_p10", "seq_ppl_gen0_p50", "seq_ppl_gen0_p90"):
        assert name in metrics
    assert sorted(df["generation"].unique()) == [0, 1]
    wide = df.pivot_table(index="metric", columns="generation", values="value")
    assert np.all(np.isfinite(wide.values))
    assert (wide.loc["seq_ppl_gen0_p10"] <= wide.loc["seq_ppl_gen0_p50"]).all()
    assert (wide.loc["seq_ppl_gen0_p50"] <= wide.loc["seq_ppl_gen0_p90"]).all()
    cell = next((out / "cells").iterdir())
    for g in (0, 1):
        assert (cell / "models" / "replicate-0" / f"gen-{g:03d}" / "model.safetensors").is_file()
    assert (cell / "models" / "tokenizer" / "tokenizer.json").is_file()
    assert (cell / "samples" / "gen-000" / "replicates-0-1.jsonl.gz").is_file()
    assert not list((cell / "chunks").glob("*.state.*")) if (cell / "chunks").exists() else True
    manifest = json.loads((out / "manifest.json").read_text())
    assert "torch" in manifest["libraries"]
    print(f"two tiny generations: {elapsed:.1f} s")   # the issue asks for < 1 min; not asserted


def test_same_seed_same_numbers_and_resume_at_the_next_generation(tmp_path):
    """A run killed after generation 1's state was saved resumes at generation 2 (generation
    0's weights are not rewritten) and gives the numbers of an uninterrupted run; with
    init = 'previous' the resumed chain continues from generation 1's weights, and
    keep_weights = 'last' leaves generation 0 and the newest two."""
    args = [sys.executable, "-m", "modelcollapse.cli", "run", "--family", "transformer",
            "--policy", "replace", "--generations", "4", "--set", "init=previous",
            "--set", "keep_weights=last", "--quiet", *FAST]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    whole = tmp_path / "whole"
    subprocess.run([*args, "--out", str(whole)], env=env, check=True)
    cut = tmp_path / "cut"
    died = subprocess.run([*args, "--out", str(cut)],
                          env={**env, "MODELCOLLAPSE_FAULT": "after-generation:2"})
    assert died.returncode != 0
    cell = next((cut / "cells").iterdir())
    folder = cell / "models" / "replicate-0"
    assert sorted(p.name for p in folder.iterdir()) == ["gen-000", "gen-001"]
    before = (folder / "gen-000" / "model.safetensors").stat().st_mtime_ns
    moved = tmp_path / "moved"   # the state refers to weights relative to the run folder
    cut.rename(moved)
    subprocess.run([*args, "--out", str(moved)], env=env, check=True)
    folder = next((moved / "cells").iterdir()) / "models" / "replicate-0"
    assert (folder / "gen-000" / "model.safetensors").stat().st_mtime_ns == before
    assert sorted(p.name for p in folder.iterdir()) == ["gen-000", "gen-002", "gen-003"]
    pd.testing.assert_frame_equal(read(whole), read(moved))


def test_fine_tunes_a_checkpoint_saved_on_disk(family, tmp_path, capsys):
    """model = PATH: a tiny GPT-2 and its tokenizer saved with save_pretrained are loaded
    by the real loading code, fine-tuned, and generation 0 starts from those weights."""
    ckpt = tmp_path / "ckpt"
    module = network.from_scratch(family.data.tokenizer.vocab_size, 2, 32, 2, 128, 0.0, 0, 7)
    module.save_pretrained(ckpt)
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=family.data.tokenizer._tok,
                                                eos_token="<|endoftext|>")
    fast.save_pretrained(ckpt)
    loaded = network.load_pretrained(str(ckpt))
    for a, b in zip(module.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)
    out = tmp_path / "run"
    rc = main(["run", "--family", "transformer", "--set", f"model={ckpt}", "--policy", "replace",
               "--generations", "2", "--out", str(out), "--quiet", *FAST])
    assert rc == 0, capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text())
    record = next(iter(manifest["data"].values()))
    assert record["tokenizer"]["kind"] == f"pretrained ({ckpt})"
    assert set(read(out)["generation"]) == {0, 1}


@pytest.mark.parametrize("sets, needle", [
    (["model=no-such-org/no-such-model-xyz"], "cannot be loaded"),
    (["vocab_size=60000"], "exceeds what BPE can learn"),
    (["vocab_size=100"], "vocab_size must be at least 257"),
    (["prompt_tokens=100"], "exceeds block_size"),
    (["epochs=0"], "epochs must be >= 1"),
    (["generation=free", "decoding=beam"], "identical"),
])
def test_bad_settings_exit_2_with_one_sentence(tmp_path, capsys, sets, needle):
    out = tmp_path / "run"
    argv = ["run", "--family", "transformer", "--out", str(out), "--quiet"]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "Traceback" not in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_cuda_without_cuda_and_a_corpus_shorter_than_a_block(tmp_path, capsys):
    if not torch.cuda.is_available():
        assert main(["run", "--family", "transformer", "--set", "device=cuda",
                     "--out", str(tmp_path / "a"), "--quiet"]) == 2
        assert "no CUDA device" in capsys.readouterr().err
    small = tmp_path / "small.jsonl"
    small.write_text("\n".join(json.dumps({"text": f"word {i} here."}) for i in range(12)))
    assert main(["run", "--family", "transformer", "--corpus", str(small), "--set",
                 "vocab_size=257", "--set", "block_size=512", "--out", str(tmp_path / "b"),
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "shorter than one block" in err and "small.jsonl" in err


def test_filter_keeps_the_top_k_and_the_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.2, 0.15, 0.1, 0.05]]))
    kept = lambda x: torch.isfinite(x)[0].tolist()
    assert kept(decode._filter(logits, 2, 1.0)) == [True, True, False, False, False]
    # nucleus 0.6: 0.5 is short of it, 0.5 + 0.2 reaches it -> two tokens
    assert kept(decode._filter(logits, 0, 0.6)) == [True, True, False, False, False]
    assert kept(decode._filter(logits, 0, 0.85)) == [True, True, True, False, False]
    assert kept(decode._filter(logits, 0, 0.5)) == [True, False, False, False, False]


def test_repetition_penalty_is_the_libraries():
    logits = torch.tensor([[2.0, -1.0, 0.5, 3.0]])
    ids = torch.tensor([[0, 1]])
    seen = torch.zeros(1, 4, dtype=torch.bool).scatter_(1, ids, True)
    ours = decode._penalize(logits, seen, 3.0)
    theirs = transformers.RepetitionPenaltyLogitsProcessor(3.0)(ids, logits.clone())
    assert torch.allclose(ours, theirs)


def test_sampled_tokens_follow_the_tempered_truncated_distribution(tiny, family):
    """First sampled tokens of one prompt vs softmax(logits / T) restricted to the top-k:
    a chi-square test (the tolerance is the multinomial sampling error)."""
    prompt = family.data.train[0][:16][None, :]
    with torch.inference_mode():
        logits = tiny(input_ids=torch.from_numpy(prompt)).logits[0, -1].double()
    T, k, n = 0.8, 12, 6000
    top = torch.topk(logits, k)
    p = torch.softmax(top.values / T, -1).numpy()
    draws = decode.sample(tiny, np.repeat(prompt, n, 0), 2, seed=3, device="cpu",
                          temperature=T, top_k=k, batch=2000)[:, 0]
    ids = top.indices.numpy()
    assert np.isin(draws, ids).all()
    counts = np.array([(draws == i).sum() for i in ids])
    assert stats.chisquare(counts, p * n).pvalue > 1e-3


def test_inverse_cdf_draws_follow_the_probabilities_and_skip_zeros():
    p = torch.tensor([0.5, 0.0, 0.3, 0.2, 0.0])
    n = 20000
    gen = torch.Generator().manual_seed(0)
    draws = decode.draw(p.expand(n, 5), gen)[:, 0].numpy()
    counts = np.bincount(draws, minlength=5)
    assert counts[1] == 0 and counts[4] == 0
    assert stats.chisquare(counts[[0, 2, 3]], n * np.array([0.5, 0.3, 0.2])).pvalue > 1e-3


def test_sampling_is_seeded_locally(tiny, family):
    prompts = np.stack([b[:8] for b in family.data.train[:20]])
    torch.manual_seed(1)
    a = decode.sample(tiny, prompts, 10, seed=5, device="cpu", batch=7)
    torch.manual_seed(2)   # the global RNG is not ours
    b = decode.sample(tiny, prompts, 10, seed=5, device="cpu", batch=7)
    c = decode.sample(tiny, prompts, 10, seed=6, device="cpu", batch=7)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    beams = decode.beam(tiny, prompts[:4], 6, "cpu", beams=3, repetition_penalty=2.0)
    assert beams.shape == (4, 6)


def test_scores_are_the_training_loss(tiny, family):
    docs = family.data.test[:5]
    sums, counts = score.sequence_nll(tiny, docs, "cpu")
    ids = torch.from_numpy(np.stack(docs))
    with torch.inference_mode():
        loss = tiny(input_ids=ids, labels=ids).loss.item()
    assert np.allclose(counts, [len(d) - 1 for d in docs])
    assert sums.sum() / counts.sum() == pytest.approx(loss, rel=1e-5)
    ragged = [docs[0][:10], docs[1]]
    s2, c2 = score.sequence_nll(tiny, ragged, "cpu")
    alone, _ = score.sequence_nll(tiny, [docs[0][:10]], "cpu")
    assert c2.tolist() == [9, len(docs[1]) - 1] and s2[0] == pytest.approx(alone[0], rel=1e-5)


def test_training_keeps_the_epoch_with_the_best_validation_loss(family):
    module = family.initial(1, SeedTree(0, "train"))
    d = family.data
    result = train(module, d.train[:64], d.validation[:16],
                   TrainOptions(epochs=4, lr=3e-2, batch_size=16), seed=1, device="cpu")
    losses = result["validation_losses"]
    assert len(losses) == 4
    assert result["selected_epoch"] == int(np.argmin(losses)) + 1
    assert result["validation_loss"] == min(losses)
    sums, counts = score.sequence_nll(module, d.validation[:16], "cpu")
    assert sums.sum() / counts.sum() == pytest.approx(min(losses), rel=1e-6)
    # the same seed trains the same weights
    again = family.initial(1, SeedTree(0, "train"))
    train(again, d.train[:64], d.validation[:16], TrainOptions(epochs=4, lr=3e-2, batch_size=16),
          seed=1, device="cpu")
    assert all(torch.equal(a, b) for a, b in zip(module.state_dict().values(),
                                                 again.state_dict().values()))


def test_blocks_and_presets(family):
    d = family.data
    assert all(len(b) == 64 for b in d.train)
    assert d.record["train_blocks"] == len(d.train)
    assert network.shape("tiny", 0, 0, 0) == (2, 64, 2)
    assert network.shape("tiny", 3, 0, 4) == (3, 64, 4)
    module = family.initial(0, SeedTree(0, "p"))
    assert module.config.n_layer == 2 and module.config.n_embd == 64
    text = "Model collapse: rare tails vanish, e.g. in `x = f(y)`; naïve café."
    ids = d.tokenizer.encode_many([text])[0]
    assert d.tokenizer.decode(ids) == text   # byte-level BPE restores the text exactly
    assert d.tokenizer.decode([*ids, d.tokenizer.eos_id, *ids]) == text + "\n\n" + text
