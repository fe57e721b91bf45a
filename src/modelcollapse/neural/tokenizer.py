"""Tokenizers of the transformer family: texts <-> token ids.

* :class:`BPETokenizer` - byte-level BPE (GPT-2 style: every byte is in the base alphabet, so
  nothing is ever unknown) trained with the ``tokenizers`` library on the real train split,
  ``vocab_size`` ids in all, id 0 is ``<|endoftext|>`` (document separator and the start of
  free sampling). Training is deterministic for the same texts.
* :class:`PretrainedTokenizer` - a checkpoint's own tokenizer (``AutoTokenizer``).

Both give ``encode_many(texts) -> list[list[int]]`` (no special tokens added),
``decode(ids) -> str`` (a separator becomes a blank line), ``eos_id``, ``start_id``,
``vocab_size`` and ``as_record()`` for the manifest.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

from ..errors import UserError

EOS = "<|endoftext|>"


class _Decode(ABC):
    eos_id: int

    @abstractmethod
    def _decode_piece(self, ids: list[int]) -> str:
        """Text of ids holding no separator."""

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids``; each separator (eos) becomes a paragraph break."""
        pieces, cur = [], []
        for i in ids:
            if i == self.eos_id:
                pieces.append(cur)
                cur = []
            else:
                cur.append(int(i))
        pieces.append(cur)
        return "\n\n".join(self._decode_piece(p) for p in pieces).strip("\n")


class BPETokenizer(_Decode):
    """Byte-level BPE with ``vocab_size`` ids, trained on ``texts``."""

    eos_id = 0
    start_id = 0

    def __init__(self, tok) -> None:
        self._tok = tok
        self.vocab_size = tok.get_vocab_size()

    @classmethod
    def train(cls, texts: Sequence[str], vocab_size: int, where: str) -> BPETokenizer:
        try:
            from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
        except ImportError:
            raise UserError("the transformer family trains its BPE with `tokenizers`: "
                            "pip install 'modelcollapse[torch]'") from None
        alphabet = pre_tokenizers.ByteLevel.alphabet()
        if vocab_size < len(alphabet) + 1:
            raise UserError(f"params.vocab_size must be at least {len(alphabet) + 1} (the 256 "
                            f"byte symbols and the separator); got {vocab_size}")
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS],
                                      initial_alphabet=alphabet, show_progress=False)
        tok.train_from_iterator(list(texts), trainer=trainer)
        got = tok.get_vocab_size()
        if got < vocab_size:
            raise UserError(f"params.vocab_size = {vocab_size} exceeds what BPE can learn from "
                            f"the train split of {where}: it stops at {got} tokens (lower "
                            f"vocab_size to at most {got})")
        return cls(tok)

    def encode_many(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self._tok.encode_batch(list(texts), add_special_tokens=False)]

    def _decode_piece(self, ids: list[int]) -> str:
        return self._tok.decode(ids)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._tok.save(str(folder / "tokenizer.json"))

    def as_record(self) -> dict:
        return {"kind": "bpe (byte-level, tokenizers)", "vocab_size": self.vocab_size,
                "separator": EOS}


class PretrainedTokenizer(_Decode):
    """A checkpoint's own tokenizer, loaded with ``AutoTokenizer.from_pretrained``."""

    def __init__(self, name: str, hf) -> None:
        self.name = name
        self._hf = hf
        # The document separator: <|endoftext|> where the vocabulary has it (GPT-2, SmolLM2:
        # an instruct model's eos is its end-of-turn token, not what separated documents in
        # pretraining), else the eos token (OPT's </s>).
        sep = hf.convert_tokens_to_ids(EOS) if EOS in hf.get_vocab() else None
        self.eos_id = sep if sep is not None else (hf.eos_token_id if hf.eos_token_id is not None else 0)
        # OPT starts every text with </s> as BOS; GPT-2 has only <|endoftext|>.
        self.start_id = hf.bos_token_id if hf.bos_token_id is not None else self.eos_id
        self.vocab_size = len(hf)

    def encode_many(self, texts: Sequence[str]) -> list[list[int]]:
        return self._hf(list(texts), add_special_tokens=False)["input_ids"]

    def _decode_piece(self, ids: list[int]) -> str:
        return self._hf.decode(ids, skip_special_tokens=True)

    def save(self, folder: Path) -> None:
        self._hf.save_pretrained(str(folder))

    def as_record(self) -> dict:
        return {"kind": f"pretrained ({self.name})", "vocab_size": self.vocab_size,
                "eos_id": self.eos_id, "start_id": self.start_id}
