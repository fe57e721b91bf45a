"""The transformer family: a causal neural LM in the self-consuming loop (extra ``torch``).

The Shumailov et al. (Nature 2024) protocol on any corpus: the real train split, encoded
and cut into ``block_size``-token blocks, is generation 0's training set; every generation
writes a synthetic set (by default as many sequences as there are real blocks) and the
policy builds the next training set from it (``replace``: synthetic only; ``mix`` with
``real_fraction = 0.1``: the paper's random 10% of real blocks).

* **Model.** By default a GPT-2-style model trained from scratch (``size`` preset, every
  shape field settable) with a byte-level BPE of ``vocab_size`` trained on the real train
  split. ``model = PATH_OR_HUB_ID`` fine-tunes a pretrained checkpoint with its own
  tokenizer (``facebook/opt-125m`` in the paper).
* **Protocol.** ``init = 'original'`` starts every generation from the same weights (the
  checkpoint, or the same seeded initialization); ``'previous'`` continues from the last
  generation's. ``epochs``, ``lr``, ``batch_size``, ``warmup``, ``weight_decay``;
  ``select = 'best_validation'`` keeps the epoch with the lowest loss on real validation
  blocks.
* **Generation.** ``generation = 'prompt'``: each sequence continues the first
  ``prompt_tokens`` of a real train block by ``new_tokens`` tokens (the paper: 64 and 64);
  the stored sequence is the continuation. ``'free'``: ``block_size`` tokens from the
  separator. ``decoding = 'sample'`` (the loop's ``temperature`` and ``top_p``, plus
  ``top_k`` and ``repetition_penalty``) or ``'beam'`` (``beams``, ``repetition_penalty``).
* **LoRA.** ``adapter = 'lora'`` trains peft adapters on a frozen checkpoint (``lora_rank``,
  ``lora_alpha``, ``lora_targets``), merged into the weights after each generation or kept
  as adapter files (``lora_merge``); see :mod:`modelcollapse.pretrained.lora`.
* **Files and resume.** With a run folder, generation g's weights are written to
  ``cells/<key>/models/replicate-<r>/gen-<g>/model.safetensors`` (``keep_weights =
  'last'`` deletes all but generation 0's, which scores every later generation, and the
  newest two, the older of which a resumed chain may still need), and the chain's state after every generation, so an interrupted cell resumes at
  its next unfinished generation.
* **Randomness.** Initialization, batch order and dropout come from seeds of the run's seed
  tree (stage ``fit``, per replicate and generation) through forked or local torch
  generators; sampling from a local ``torch.Generator`` seeded per replicate and generation.
"""

from __future__ import annotations

import copy
import functools
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..capabilities import Persistent, ScoresSequences, TrainsWithValidation
from ..errors import UserError
from ..batches import Documents
from ..randomness import Stream
from .base import Sampling, register
from .text import TextFamily, TextMetricParams, file_stamp


@dataclass(frozen=True)
class TransformerParams(TextMetricParams):
    """corpus, text_field, unit, validation_share, test_share, split_seed: as the ngram
    family. model: '' (a GPT-2-style model from scratch) or a checkpoint folder / hub id to
    fine-tune. size: 'tiny' | 'small' | 'base'; n_layer, n_embd, n_head: overrides (0: the
    preset's); dropout. vocab_size: the BPE's ids (from scratch only). block_size: tokens
    per real training block. init: 'original' | 'previous'. epochs, lr, batch_size,
    weight_decay, warmup (share of steps), select: 'best_validation' | 'last'; val_blocks:
    real validation blocks scored per epoch (0: all). generation: 'prompt' | 'free';
    prompt_tokens, new_tokens; decoding: 'sample' | 'beam'; top_k (0: off); beams;
    repetition_penalty (1: off); gen_batch: sequences per generation batch. device:
    'auto' | 'cpu' | 'cuda'. keep_weights: 'all' | 'last'. eval_docs: sequences written
    per generation to measure it (0: n_samples; a cap saves a second full generation pass
    on large corpora). adapter: 'none' (fine-tune every weight) | 'lora' (peft adapters
    on a checkpoint: lora_rank, lora_alpha, lora_targets: comma-separated module names, ''
    for peft's default of the architecture; lora_dropout; lora_merge: fold the adapters
    into the weights after each generation, or keep them as adapter files on the original
    checkpoint). The text metrics' parameters: see TextMetricParams (counted in this
    model's tokens)."""

    corpus: str = "embedded"
    text_field: str = "text"
    unit: Literal["auto", "line", "paragraph"] = "auto"
    validation_share: float = 0.1
    test_share: float = 0.1
    split_seed: int = 0
    model: str = ""
    size: Literal["tiny", "small", "base"] = "tiny"
    n_layer: int = 0
    n_embd: int = 0
    n_head: int = 0
    dropout: float = 0.0
    vocab_size: int = 2000
    block_size: int = 64
    init: Literal["original", "previous"] = "original"
    epochs: int = 3
    lr: float = 1e-3
    batch_size: int = 32
    weight_decay: float = 0.0
    warmup: float = 0.05
    select: Literal["best_validation", "last"] = "best_validation"
    val_blocks: int = 256
    generation: Literal["prompt", "free"] = "prompt"
    prompt_tokens: int = 32
    new_tokens: int = 64
    decoding: Literal["sample", "beam"] = "sample"
    top_k: int = 0
    beams: int = 5
    repetition_penalty: float = 1.0
    gen_batch: int = 256
    device: Literal["auto", "cpu", "cuda"] = "auto"
    keep_weights: Literal["all", "last"] = "all"
    eval_docs: int = 0
    adapter: Literal["none", "lora"] = "none"
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_targets: str = ""
    lora_dropout: float = 0.0
    lora_merge: bool = True

    def __post_init__(self) -> None:
        checks = [
            (self.n_layer >= 0 and self.n_embd >= 0 and self.n_head >= 0,
             "n_layer, n_embd and n_head must be >= 0 (0: the preset's)",
             (self.n_layer, self.n_embd, self.n_head)),
            (0.0 <= self.dropout < 1.0, "dropout must be in [0, 1)", self.dropout),
            (self.block_size >= 2, "block_size must be >= 2", self.block_size),
            (self.epochs >= 1, "epochs must be >= 1", self.epochs),
            (self.lr > 0, "lr must be > 0", self.lr),
            (self.batch_size >= 1, "batch_size must be >= 1", self.batch_size),
            (self.weight_decay >= 0, "weight_decay must be >= 0", self.weight_decay),
            (0.0 <= self.warmup < 1.0, "warmup must be in [0, 1)", self.warmup),
            (self.val_blocks >= 0, "val_blocks must be >= 0 (0: all)", self.val_blocks),
            (self.prompt_tokens >= 1, "prompt_tokens must be >= 1", self.prompt_tokens),
            (self.new_tokens >= 2, "new_tokens must be >= 2", self.new_tokens),
            (self.top_k >= 0, "top_k must be >= 0 (0: off)", self.top_k),
            (self.beams >= 1, "beams must be >= 1", self.beams),
            (self.repetition_penalty > 0, "repetition_penalty must be > 0 (1: off)",
             self.repetition_penalty),
            (self.gen_batch >= 1, "gen_batch must be >= 1", self.gen_batch),
            (self.eval_docs >= 0, "eval_docs must be >= 0 (0: n_samples)", self.eval_docs),
            (self.lora_rank >= 1, "lora_rank must be >= 1", self.lora_rank),
            (self.lora_alpha > 0, "lora_alpha must be > 0", self.lora_alpha),
            (0.0 <= self.lora_dropout < 1.0, "lora_dropout must be in [0, 1)", self.lora_dropout),
        ]
        for ok, what, value in checks:
            if not ok:
                raise UserError(f"params.{what}; got {value}")
        super().__post_init__()
        if self.generation == "prompt" and self.prompt_tokens > self.block_size:
            raise UserError(f"params.prompt_tokens = {self.prompt_tokens} exceeds block_size = "
                            f"{self.block_size}: prompts are the starts of real blocks")
        if self.adapter == "lora" and not self.model:
            raise UserError("params.adapter = 'lora' adapts a pretrained checkpoint; set "
                            "params.model (a .gguf file, a folder, a known name or a hub id)")
        if not self.model:   # the build check (n_embd a multiple of n_head) before any write
            from ..neural.network import shape
            shape(self.size, self.n_layer, self.n_embd, self.n_head)
        if self.decoding == "beam" and self.generation == "free":
            raise UserError("params.decoding = 'beam' from the separator alone would make "
                            "every sequence identical; use generation = 'prompt'")

    @property
    def sequence_tokens(self) -> int:
        """Tokens per generated sequence."""
        return self.new_tokens if self.generation == "prompt" else self.block_size

    @property
    def positions(self) -> int:
        """The longest input the model must take (training blocks, prompt + continuation)."""
        gen = self.prompt_tokens + self.new_tokens if self.generation == "prompt" else self.block_size + 1
        return max(self.block_size, gen)


@dataclass
class BlockData:
    """A corpus cut into blocks for the transformer family.

    train / validation / test : lists of (block_size,) int64 id arrays (the last block of a
    split may be shorter only when the split holds less than one block). train_lengths:
    (len(train),) tokens per block. vocab: ``range`` over the tokenizer's ids.
    """

    tokenizer: Any
    vocab: range
    train: list[np.ndarray]
    validation: list[np.ndarray]
    test: list[np.ndarray]
    train_lengths: np.ndarray
    record: dict

    def detokenize(self, doc: np.ndarray) -> str:
        return self.tokenizer.decode(np.asarray(doc).tolist())


def blocks(docs: list[list[int]], sep: int, size: int) -> list[np.ndarray]:
    """The documents joined by the separator, cut into ``size``-token blocks; a remainder
    shorter than a block is dropped, unless there is no whole block at all."""
    if not docs:
        return []
    stream = np.fromiter((t for d in docs for t in (*d, sep)), dtype=np.int64)
    whole = len(stream) // size
    if whole == 0:
        return [stream] if len(stream) >= 2 else []
    return list(stream[:whole * size].reshape(whole, size))


@functools.lru_cache(maxsize=2)
def prepare(corpus: str, text_field: str, unit: str, validation: float, test: float,
            split_seed: int, model: str, vocab_size: int, block_size: int,
            stamp: tuple = ()) -> BlockData:
    """Read, split, tokenize and block a corpus (cached per process, like the ngram family's)."""
    from ..data import load_corpus
    from ..neural import network
    from ..neural.tokenizer import BPETokenizer
    where = f"corpus {corpus}"
    loaded = load_corpus(None if corpus == "embedded" else corpus, text_field=text_field, unit=unit)
    splits = loaded.splits(validation=validation, test=test, seed=split_seed)
    tok = network.load_tokenizer(model) if model else BPETokenizer.train(splits.train, vocab_size, where)
    train_ids = tok.encode_many(splits.train)
    n_train = sum(len(d) + 1 for d in train_ids)
    if n_train < block_size + 1:
        raise UserError(f"{where}: its train split holds {n_train} tokens, shorter than one "
                        f"block of block_size = {block_size} (lower block_size or use a larger corpus)")
    train = blocks(train_ids, tok.eos_id, block_size)
    data = BlockData(tok, range(tok.vocab_size), train,
                     blocks(tok.encode_many(splits.validation), tok.eos_id, block_size),
                     blocks(tok.encode_many(splits.test), tok.eos_id, block_size),
                     np.array([len(b) for b in train], dtype=np.int64), {})
    data.record = {"corpus": loaded.provenance, "splits": splits.as_record(),
                   "tokenizer": tok.as_record(), "block_size": block_size,
                   "train_blocks": len(train), "train_tokens": int(data.train_lengths.sum()),
                   "test_tokens": int(sum(len(b) for b in data.test))}
    return data


class TransformerModels:
    """Fitted models, one per replicate: ``lms`` (R,) :class:`TransformerLM`, ``replicates`` (R,)."""

    def __init__(self, lms: list, replicates: np.ndarray) -> None:
        self.lms = lms
        self.replicates = replicates

    @property
    def generation(self) -> int:
        return self.lms[0].generation


@register
class Transformer(TextFamily, ScoresSequences, TrainsWithValidation, Persistent):
    name = "transformer"
    overview = ('perplexity_real', 'perplexity_gen0', 'tail_coverage')   # the report's headline panels
    description = ("causal transformer LM (GPT-2-style from scratch, or a checkpoint to "
                   "fine-tune) on a real corpus: the Shumailov et al. protocol")
    Params = TransformerParams

    def __init__(self, params: TransformerParams, n_samples: int) -> None:
        super().__init__(params, n_samples)
        self.folder: Path | None = None
        self._original = None

    # -- data ------------------------------------------------------------------------------
    @property
    def data(self) -> BlockData:
        p = self.params
        return prepare(p.corpus, p.text_field, p.unit, p.validation_share, p.test_share,
                       p.split_seed, p.model, p.vocab_size, p.block_size, file_stamp(p.corpus))

    @functools.cached_property
    def device(self) -> str:
        from ..neural.network import resolve_device
        return resolve_device(self.params.device)

    def validate(self, n_samples: int) -> None:
        super().validate(n_samples)
        p, d = self.params, self.data
        where = f"corpus {p.corpus}"
        self.device  # noqa: B018  (device = 'cuda' without CUDA is reported here)
        if n_samples > len(d.train):
            raise UserError(f"n_samples = {n_samples} sequences exceeds the {len(d.train)} "
                            f"blocks of the train split of {where}")
        if not d.test:
            raise UserError(f"{where}: its test split holds less than one block; raise "
                            f"test_share or use a larger corpus")
        if p.select == "best_validation" and not d.validation:
            raise UserError(f"{where}: select = 'best_validation' needs real validation "
                            f"blocks and the validation split has none (raise validation_share)")
        docs = min(p.eval_docs or n_samples, n_samples)
        if docs * p.sequence_tokens < p.eval_tokens:
            raise UserError(f"{docs} evaluation sequences of {p.sequence_tokens} tokens hold fewer "
                            f"than eval_tokens = {p.eval_tokens}; raise n_samples or eval_docs, "
                            f"or lower eval_tokens")
        test_tokens = sum(len(b) for b in d.test)
        if test_tokens < p.eval_tokens:
            raise UserError(f"{where}: the test split holds {test_tokens} tokens, fewer than "
                            f"eval_tokens = {p.eval_tokens} (lower eval_tokens)")
        if p.model:
            limit = self._checkpoint_positions()
            if p.positions > limit:
                raise UserError(f"params.model = '{p.model}' takes at most {limit} tokens; "
                                f"block_size and prompt_tokens + new_tokens must fit")
            from ..pretrained.load import check_match
            check_match(self.original(), d.tokenizer._hf, p.model)
            if p.adapter == "lora":
                from ..pretrained.lora import check_targets
                check_targets(self.original(), p.lora_targets, f"params.model = '{p.model}'")

    def _checkpoint_positions(self) -> int:
        from ..neural import network
        return network.positions(self.original())

    def evaluation_size(self, n_samples: int) -> int:
        return min(self.params.eval_docs or n_samples, n_samples)

    def bytes_per_replicate(self, max_train: int) -> int:
        return 2**30   # one chain per chunk (> the loop's chunk budget): chains train one after another

    # -- files -----------------------------------------------------------------------------
    def attach(self, folder: Path) -> None:
        """Write weights under ``folder`` (``replicate-<r>/gen-<g>/``) from now on."""
        self.folder = Path(folder)
        self.data.tokenizer.save(self.folder / "tokenizer")

    def weights_folder(self, replicate: int, generation: int) -> Path | None:
        if self.folder is None:
            return None
        return self.folder / f"replicate-{replicate}" / f"gen-{generation:03d}"

    # -- chain state (data only; the loop saves it after every generation) ------------------
    def save_state(self, model: TransformerModels) -> dict:
        """The fitted models as JSON values and arrays: per replicate its weights folder
        relative to the models folder (``replicate-<r>/gen-<g>``, so a moved run folder or
        another machine resumes), training stats and generation."""
        if self.folder is None:
            raise TypeError("transformer models without a run folder have no saved weights")
        return {"replicates": np.asarray(model.replicates, dtype=np.int64),
                "lms": [{"folder": lm.folder.relative_to(self.folder).as_posix(),
                         "stats": lm.stats, "generation": lm.generation} for lm in model.lms]}

    def load_state(self, state: dict) -> TransformerModels:
        """The models saved by :meth:`save_state`, their weights loaded lazily from this
        run's models folder onto this run's device. Raises ``InvalidState`` for a field
        that is not what ``save_state`` writes (a folder outside ``replicate-<r>/gen-<g>``,
        non-numeric stats)."""
        import re

        from ..chainstate import InvalidState
        from ..neural.handle import TransformerLM
        reps = state.get("replicates")
        lms = state.get("lms")
        if not isinstance(reps, np.ndarray) or reps.ndim != 1 or reps.dtype.kind not in "iu" \
                or not isinstance(lms, list) or len(lms) != reps.size:
            raise InvalidState("the model state does not list one model per replicate")
        out = []
        for r, item in zip(reps.tolist(), lms):
            folder, stats, g = item.get("folder"), item.get("stats"), item.get("generation")
            m = re.fullmatch(r"replicate-(\d{1,9})/gen-(\d{3,9})", folder) \
                if isinstance(folder, str) else None
            if m is None or int(m[1]) != r or type(g) is not int or int(m[2]) != g:
                raise InvalidState(f"model folder {str(folder)[:60]!r} is not replicate-{r}/gen-<g>")
            if not isinstance(stats, dict) or not all(
                    isinstance(v, (int, float)) or (isinstance(v, list) and all(
                        isinstance(x, (int, float)) for x in v)) for v in stats.values()):
                raise InvalidState("the models' training stats are not numbers")
            out.append(TransformerLM(None, self.folder / folder, self.device, stats, g))
        return TransformerModels(out, reps)

    # -- model -----------------------------------------------------------------------------
    def original(self):
        """The pretrained checkpoint (loaded once, kept on the CPU)."""
        if self._original is None:
            from ..neural import network
            self._original = network.load_pretrained(self.params.model)
        return self._original

    def initial(self, replicate: int, seeds) -> Any:
        """Generation 0's starting weights (and every generation's with init = 'original')."""
        from ..neural import network
        p = self.params
        if p.model:
            return copy.deepcopy(self.original())
        layers, dims, heads = network.shape(p.size, p.n_layer, p.n_embd, p.n_head)
        seed = int(seeds.generator("fit", replicate, "init").integers(2**62))
        tok = self.data.tokenizer
        return network.from_scratch(tok.vocab_size, layers, dims, heads, p.positions,
                                    p.dropout, tok.eos_id, seed)

    def fit(self, data: Documents, previous: TransformerModels | None,
            stream: Stream) -> TransformerModels:
        from ..neural import network
        from ..neural.handle import TransformerLM
        from ..neural.train import TrainOptions, train
        p = self.params
        g = 0 if previous is None else previous.generation + 1
        opts = TrainOptions(p.epochs, p.lr, p.batch_size, p.weight_decay, p.warmup, p.select)
        validation = self.data.validation
        if p.val_blocks and p.val_blocks < len(validation):   # spread over the split, not its first articles
            pick = np.linspace(0, len(validation) - 1, p.val_blocks).round().astype(int)
            validation = [validation[i] for i in pick]
        lms = []
        for i, (docs, r) in enumerate(zip(data.docs, stream.replicates.tolist())):
            if previous is not None and p.init == "previous":
                module = copy.deepcopy(previous.lms[i].module)
            else:
                module = self.initial(r, stream.seeds)
            if not docs:
                raise UserError(f"generation {g} (replicate {r}) has no training sequences")
            seed = int(stream.seeds.generator("fit", r, "train", g).integers(2**62))
            if p.adapter == "lora":
                from ..pretrained import lora
                module = lora.attach(module, p.lora_rank, p.lora_alpha, p.lora_targets,
                                     p.lora_dropout, seed)
            stats = train(module, docs, validation, opts, seed, self.device)
            kept = p.adapter == "lora" and not p.lora_merge
            if p.adapter == "lora" and p.lora_merge:
                module = lora.merge(module)
            folder = self.weights_folder(r, g)
            if folder is not None:
                network.save(module, folder, base=p.model if kept else None)
                if p.keep_weights == "last" and g >= 3:
                    # g - 1 stays until generation g's state is saved: a crash before that
                    # resumes from generation g - 1 and needs its weights
                    shutil.rmtree(self.weights_folder(r, g - 2), ignore_errors=True)
            lms.append(TransformerLM(module, folder, self.device, stats, g))
        if previous is not None and g > 1:
            for lm in previous.lms:   # generation 0 stays in memory: it scores every generation
                lm.release()
        return TransformerModels(lms, stream.replicates)

    def generate(self, lm, n: int, rng: np.random.Generator,
                 sampling: Sampling) -> list[np.ndarray]:
        """n sequences of ``sequence_tokens`` tokens from one model."""
        from ..neural import generation as decoding
        p, d = self.params, self.data
        if p.generation == "prompt":
            pick = rng.choice(len(d.train), size=n, replace=n > len(d.train))
            prompts = np.stack([d.train[i][:p.prompt_tokens] for i in pick])
        else:
            prompts = np.full((n, 1), d.tokenizer.start_id, dtype=np.int64)
        if p.decoding == "beam":
            out = decoding.beam(lm.module, prompts, p.sequence_tokens, self.device, p.beams,
                              p.repetition_penalty, max(1, p.gen_batch // p.beams),
                              d.tokenizer.eos_id)
        else:
            out = decoding.sample(lm.module, prompts, p.sequence_tokens,
                                int(rng.integers(2**62)), self.device, sampling.temperature,
                                p.top_k, sampling.truncation, p.repetition_penalty, p.gen_batch)
        return list(out.astype(np.int64))
