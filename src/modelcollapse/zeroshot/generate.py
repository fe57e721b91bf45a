"""An AI reference written by a real language model from human reference documents.

Liang et al. (ICML 2024) build the AI side of their occurrence model by having an LLM rewrite
human text; so does this module. Each sampled human document is handed to the model in one of
three ways (the *mode*, drawn per document from its own seed):

``continue``
    The document's first :data:`PREFIX_SHARE` of words (at least 5) is given as a plain
    prefix and the model continues it; the AI document is the continuation alone (the human
    prefix is not part of it, so no human words are scored as machine text).
``paraphrase``
    Through the chat template (when the tokenizer has one): :data:`PROMPTS` ``paraphrase``.
``expand``
    Summarize-then-expand in one prompt-pair, as Liang et al. do to avoid invented content:
    the model first writes a one-sentence summary (:data:`PROMPTS` ``summarize``), then a
    paragraph from that summary alone (``expand``). Two generations.

Without a chat template every mode is ``continue``. Sampling settings
(:class:`GenerationSettings`): temperature 0.7, nucleus top-p 0.95, repetition penalty 1.1,
at most ``1.3 x`` the human document's token count of new tokens (capped by
``max_new_tokens``). The output is whitespace-collapsed and cut after its last sentence end
(a hard length cut mid-sentence is a generation artefact, not a property of LLM text); no
phrase of any chat template is filtered (the audit must generalize across generators).

Reproducibility: each document's sampling uses its own numpy generator seeded by
``(seed, SHA-256 of the document text, mode)``; the batch only shares the forward passes
(a logits processor samples each row from its own generator and hands ``generate`` a
one-hot row, so greedy decoding follows the sampled token). A document's rewrite therefore
does not depend on which other documents are generated with it, up to float round-off of
padded batches. Rewrites are cached one per document in a JSONL file under
``$MODELCOLLAPSE_CACHE/ai-reference/`` keyed by (model identity, settings): any audit whose
reference contains a document already rewritten reuses it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError

log = logging.getLogger("modelcollapse.zeroshot")

PREFIX_SHARE = 0.25
MIN_PREFIX_WORDS = 5
MODES = ("continue", "paraphrase", "expand")
#: Share of documents per mode when the model has a chat template.
MODE_WEIGHTS = (0.4, 0.4, 0.2)
PROMPTS = {
    "paraphrase": "Rewrite the following paragraph from a technical reference in your own "
                  "words. Keep its meaning and length. Reply with the paragraph only.\n\n{text}",
    "summarize": "Summarize the following paragraph in one sentence.\n\n{text}",
    "expand": "Write one paragraph for a technical reference manual about the following. "
              "Reply with the paragraph only.\n\n{text}",
}
_SENTENCE_END = re.compile(r"[.!?:;)\"”](?=\s|$)")


@dataclass(frozen=True)
class GenerationSettings:
    """How the AI reference is written (recorded in the audit JSON and the cache key).

    temperature, top_p, repetition_penalty : sampling. max_new_tokens : cap per document.
    length_factor : new tokens per token of the human document. batch_size : rows generated
    together (a speed knob; results are per-document seeded). seed : the sampling seed.
    """

    temperature: float = 0.7
    top_p: float = 0.95
    repetition_penalty: float = 1.1
    max_new_tokens: int = 96
    length_factor: float = 1.3
    batch_size: int = 24
    seed: int = 0

    def key(self) -> dict:
        """The fields that change the text (batch_size does not, by design)."""
        out = asdict(self)
        out.pop("batch_size")
        return out


def doc_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _mode(text: str, seed: int, chat: bool) -> str:
    if not chat:
        return "continue"
    rng = np.random.default_rng([seed, int(doc_hash(text)[:8], 16), 1])
    return MODES[int(rng.choice(len(MODES), p=MODE_WEIGHTS))]


def _row_seed(text: str, seed: int, step: str) -> int:
    digest = hashlib.sha256(f"{seed}\0{step}\0{text}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def clean(text: str) -> str:
    """Whitespace collapsed; cut after the last sentence end when there is one past the
    first third of the text."""
    text = " ".join(text.split())
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    if ends and ends[-1] >= len(text) / 3:
        text = text[:ends[-1]]
    return text.strip()


def model_identity(model, tokenizer, spec: str = "") -> str:
    """A stable name of a model for cache keys: its class, its vocabulary size and a hash
    of its first weights (so the same weights share a cache whatever path or name they were
    loaded by, and two different models, random test ones included, never do). ``spec`` is
    not part of it."""
    import torch
    h = hashlib.sha256(f"{type(model).__name__}|{len(tokenizer)}".encode())
    with torch.no_grad():
        for i, p in enumerate(model.parameters()):
            if i >= 3:
                break
            h.update(p.detach().float().flatten()[:4096].cpu().numpy().tobytes())
    return h.hexdigest()[:16]


class _RowSampler:
    """A logits processor that samples each row from its own generator (temperature,
    top-p; the repetition penalty is applied by ``generate`` before it) and returns a
    one-hot score row so that greedy decoding takes exactly that token. The nucleus and its
    cumulative sums are computed for the whole batch at once; each row then draws one
    uniform from its own numpy generator (inverse-CDF sampling), so the per-row work is a
    numpy search, not a tensor operation."""

    def __init__(self, generators, temperature: float, top_p: float) -> None:
        self.generators, self.temperature, self.top_p = generators, temperature, top_p

    def __call__(self, input_ids, scores):
        import torch
        probs = torch.softmax(scores.float() / self.temperature, dim=-1)
        sorted_p, order = torch.sort(probs, dim=-1, descending=True)
        # keep the smallest head whose mass reaches top_p (the first token always)
        drop = (sorted_p.cumsum(-1) - sorted_p) >= self.top_p
        cum = sorted_p.masked_fill(drop, 0.0).cumsum(-1).double().cpu().numpy()
        order_np = order.cpu().numpy()
        pick = np.empty(len(self.generators), np.int64)
        for i, g in enumerate(self.generators):
            j = int(np.searchsorted(cum[i], g.random() * cum[i, -1], side="right"))
            pick[i] = order_np[i, min(j, cum.shape[1] - 1)]
        out = torch.full_like(scores, float("-inf"))
        out[torch.arange(len(pick)), torch.as_tensor(pick, device=scores.device)] = 0.0
        return out


def _prompts(tokenizer, texts: Sequence[str], step: str) -> list[str]:
    """Model inputs (strings) for one step: a prefix for ``continue``, the chat template
    with a PROMPTS entry otherwise."""
    if step == "continue":
        out = []
        for t in texts:
            words = t.split()
            k = max(MIN_PREFIX_WORDS, int(round(PREFIX_SHARE * len(words))))
            out.append(" ".join(words[:k]))
        return out
    return [tokenizer.apply_chat_template([{"role": "user", "content": PROMPTS[step].format(
        text=t)}], tokenize=False, add_generation_prompt=True) for t in texts]


def _generate_step(model, tokenizer, texts: Sequence[str], step: str, budgets: Sequence[int],
                   settings: GenerationSettings) -> list[str]:
    """Generate for ``texts`` (one step of one mode), ``budgets`` new tokens each,
    length-bucketed in batches of ``settings.batch_size``."""
    import torch
    prompts = _prompts(tokenizer, texts, step)
    enc = [tokenizer(p, add_special_tokens=False).input_ids for p in prompts]
    order = np.argsort([len(e) for e in enc], kind="stable")
    out: list[str] = [""] * len(texts)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    for lo in range(0, len(order), settings.batch_size):
        rows = order[lo:lo + settings.batch_size]
        width = max(len(enc[i]) for i in rows)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, i in enumerate(rows):   # left padding: every row ends where generation starts
            ids[r, width - len(enc[i]):] = torch.tensor(enc[i])
            mask[r, width - len(enc[i]):] = 1
        gens = [np.random.default_rng(_row_seed(texts[i], settings.seed, step)) for i in rows]
        n_new = max(int(budgets[i]) for i in rows)
        with torch.no_grad():
            seq = model.generate(
                input_ids=ids, attention_mask=mask, max_new_tokens=n_new, do_sample=False,
                repetition_penalty=settings.repetition_penalty, pad_token_id=pad,
                logits_processor=[_RowSampler(gens, settings.temperature, settings.top_p)],
                num_beams=1)
        for r, i in enumerate(rows):
            new = seq[r, width:width + int(budgets[i])].tolist()
            if tokenizer.eos_token_id in new:
                new = new[:new.index(tokenizer.eos_token_id)]
            out[i] = clean(tokenizer.decode(new, skip_special_tokens=True))
    return out


def rewrite(model, tokenizer, texts: Sequence[str], settings: GenerationSettings
            ) -> list[tuple[str, str]]:
    """``(mode, AI text)`` for each human text (module docstring); empty texts possible
    (the caller drops them)."""
    chat = bool(getattr(tokenizer, "chat_template", None))
    modes = [_mode(t, settings.seed, chat) for t in texts]
    n_tok = [len(tokenizer(t, add_special_tokens=False).input_ids) for t in texts]
    budgets = [max(8, min(settings.max_new_tokens, int(settings.length_factor * n)))
               for n in n_tok]
    out: list[tuple[str, str]] = [("", "")] * len(texts)
    for step in ("continue", "paraphrase", "summarize"):
        mode = "expand" if step == "summarize" else step
        idx = [i for i, m in enumerate(modes) if m == mode]
        if not idx:
            continue
        sub = [texts[i] for i in idx]
        if step == "continue":   # continue the rest of the document, not the whole
            budgets_sub = [max(8, int(budgets[i] * (1 - PREFIX_SHARE))) for i in idx]
        else:
            budgets_sub = [budgets[i] for i in idx]
        first = _generate_step(model, tokenizer, sub,
                               step, budgets_sub if step != "summarize" else [48] * len(idx),
                               settings)
        if step == "summarize":
            first = _generate_step(model, tokenizer, first, "expand", budgets_sub, settings)
        for i, t in zip(idx, first):
            out[i] = (mode, t)
    return out


def cache_dir() -> Path:
    """``$MODELCOLLAPSE_CACHE/ai-reference`` (default ``~/.cache/modelcollapse``)."""
    root = os.environ.get("MODELCOLLAPSE_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "modelcollapse")
    return Path(root) / "ai-reference"


class RewriteCache:
    """One JSONL file per (model identity, settings): lines ``{"h": sha256 of the human
    text, "mode", "text"}``; appended as documents are generated, read back as data."""

    def __init__(self, identity: str, settings: GenerationSettings,
                 folder: Path | None = None) -> None:
        key = json.dumps({"model": identity, **settings.key()}, sort_keys=True)
        self.path = (folder or cache_dir()) / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.jsonl"
        self.key = key
        self.entries: dict[str, tuple[str, str]] = {}
        if self.path.exists():
            with open(self.path, encoding="utf-8") as f:
                for line in f:
                    try:
                        row = json.loads(line)
                        self.entries[str(row["h"])] = (str(row["mode"]), str(row["text"]))
                    except (ValueError, KeyError, TypeError):
                        continue   # a torn last line of an interrupted run

    def add(self, items: dict[str, tuple[str, str]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            for h, (mode, text) in items.items():
                f.write(json.dumps({"h": h, "mode": mode, "text": text}) + "\n")
        self.entries.update(items)


def ai_reference(model, tokenizer, texts: Sequence[str], settings: GenerationSettings,
                 identity: str, *, chunk: int = 64, folder: Path | None = None,
                 progress=None) -> list[tuple[str, str]]:
    """``(mode, text)`` rewrites of ``texts``, from the cache where present, generated (and
    cached ``chunk`` documents at a time, so an interrupted run resumes) otherwise."""
    if not hasattr(model, "generate"):
        raise UserError(f"the AI generator ({type(model).__name__}) cannot generate text")
    cache = RewriteCache(identity, settings, folder)
    hashes = [doc_hash(t) for t in texts]
    todo = sorted({h: t for h, t in zip(hashes, texts) if h not in cache.entries}.items())
    for lo in range(0, len(todo), chunk):
        part = todo[lo:lo + chunk]
        made = rewrite(model, tokenizer, [t for _, t in part], settings)
        cache.add({h: m for (h, _), m in zip(part, made)})
        if progress is not None:
            progress(min(lo + chunk, len(todo)), len(todo))
    return [cache.entries[h] for h in hashes]
