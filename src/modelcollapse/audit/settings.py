"""The audit's options, declared once: :class:`AuditSettings` feeds the Python API
(:func:`~.core.audit` keyword arguments), the command line (one ``--flag`` per field, from
the field's metadata: :func:`add_arguments`) and the JSON's ``settings`` record.

A new option is one field here: its default, its check (``minimum`` / ``choices`` /
``check`` in the metadata) and its help text. Fields with ``cli=False`` in the metadata are
API-only (the watermark object: the CLI spells it as three flags of its own).
"""

from __future__ import annotations

import argparse
import numbers
from dataclasses import asdict, dataclass, field, fields

from ..errors import UserError


def _opt(default, help: str, *, minimum=None, choices=None, check=None, cli: bool = True,
         type=None, metavar=None):
    """A settings field with its command-line help and checks in the metadata."""
    return field(default=default, metadata={"help": help, "minimum": minimum,
                                            "choices": choices, "check": check, "cli": cli,
                                            "type": type, "metavar": metavar})


def _fpr(value) -> float:
    from ..curation.thresholds import check_fpr
    return check_fpr(value)


def _side(value) -> str:
    from ..curation.thresholds import check_side
    return check_side(value)


def _watermark(value):
    if value is None:
        return None
    from ..curation import Watermark
    if not isinstance(value, Watermark):
        raise UserError(f"watermark must be a modelcollapse.curation.Watermark; "
                        f"got {type(value).__name__}")
    return value


@dataclass(frozen=True)
class AuditSettings:
    """Every option of an audit (see each field's help; the CLI flag is ``--`` plus the
    name with ``-`` for ``_``)."""

    text_field: str | None = _opt(None, "field / column holding the text (default: text)",
                                  type=str)
    ai_reference: str | None = _opt(
        None, "AI-written text for the AI share (overrides --ai-generator; default: written "
              "by --ai-generator, else by the reference's trigram model)", type=str,
        metavar="PATH")
    ai_generator: str | None = _opt(
        None, "a language model (a .gguf, a folder, a hub id or a name known to "
              "'modelcollapse models') that writes the AI reference by rewriting and "
              "continuing reference documents, and scores documents with zero-shot "
              "detectors", type=str, metavar="MODEL")
    ai_reference_docs: int = _opt(
        400, "reference documents the --ai-generator rewrites (cached; default 400, about "
             "10 minutes for a 135M model on 2 idle CPU cores)", minimum=10)
    scorer: str | None = _opt(
        None, "the model scoring Fast-DetectGPT and log-likelihood (default: the "
              "--ai-generator)", type=str, metavar="MODEL")
    observer: str | None = _opt(None, "Binoculars observer model (with --performer; same "
                                      "tokenizer)", type=str, metavar="MODEL")
    performer: str | None = _opt(None, "Binoculars performer model (with --observer)",
                                 type=str, metavar="MODEL")
    device: str = _opt("cpu", "device of the language models: cpu, cuda, cuda:N",
                       type=str)
    lm_batch_tokens: int = _opt(2048, "tokens per scoring batch of the language models "
                                      "(bounds memory; default 2048)", minimum=64)
    lm_precision: str = _opt("auto", "arithmetic of the scoring models: auto (bfloat16 where "
                                     "the CPU or GPU has native bf16, else float32), float32, "
                                     "bfloat16", choices=("auto", "float32", "bfloat16"),
                             type=str)
    sample_tokens: int = _opt(20_000, "tokens per equal-size sample of the lexical signals",
                              minimum=500)
    n_boot: int = _opt(200, "bootstrap replicates", minimum=20)
    lexical_replicates: int = _opt(50, "equal-size sample pairs of the lexical signals",
                                   minimum=10)
    target_fpr: float = _opt(0.01, "detector false-positive rate on human text",
                             check=_fpr)
    watermark: object = _opt(None, "green-list parameters (modelcollapse.curation.Watermark)",
                             check=_watermark, cli=False)
    embed: bool = _opt(False, "add semantic coverage (needs the embed extra)")
    seed: int = _opt(0, "seed of every random choice", minimum=0)
    detector_side: str = _opt("low", "side of the trigram likelihood detector",
                              check=_side, choices=("low", "high", "two-sided"))
    chunk_docs: int = _opt(10_000, "documents read at once", minimum=1)
    max_sample_docs: int = _opt(20_000, "reservoir sample per candidate", minimum=10)
    max_reference_docs: int = _opt(50_000, "reference documents read", minimum=1)
    bleu_docs: int = _opt(200, "documents per self-BLEU sample", minimum=2)
    dedup_docs: int = _opt(10_000, "documents per near-duplicate sample", minimum=2)
    embed_docs: int = _opt(256, "documents per embedding sample", minimum=10)

    def __post_init__(self) -> None:
        for f in fields(self):
            value, meta = getattr(self, f.name), f.metadata
            if meta["check"] is not None:
                object.__setattr__(self, f.name, meta["check"](value))
            elif meta["minimum"] is not None:
                if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
                        or value < meta["minimum"]):
                    raise UserError(f"{f.name} must be an integer >= {meta['minimum']}; "
                                    f"got {value!r}")
                object.__setattr__(self, f.name, int(value))
            elif f.type in ("bool",):
                object.__setattr__(self, f.name, bool(value))
            elif value is not None and meta["type"] is str and not isinstance(value, str):
                raise UserError(f"{f.name} must be a string; got {value!r}")
        if (self.observer is None) != (self.performer is None):
            raise UserError("Binoculars needs both --observer and --performer (two models "
                            "sharing a tokenizer); give both or neither")
        if self.lm_precision not in ("auto", "float32", "bfloat16"):
            raise UserError(f"lm_precision must be auto, float32 or bfloat16; got "
                            f"{self.lm_precision!r}")
        if self.device != "cpu" and not self.device.startswith(("cuda", "mps")):
            raise UserError(f"device must be cpu, cuda or cuda:N; got {self.device!r}")

    @property
    def uses_lm(self) -> bool:
        """Whether a language model takes part (generator, scorer or Binoculars)."""
        return bool(self.ai_generator or self.scorer or self.observer)

    @property
    def scorer_spec(self) -> str | None:
        """The Fast-DetectGPT / likelihood scorer: --scorer, else the generator."""
        return self.scorer or self.ai_generator

    def as_record(self) -> dict:
        """The JSON's ``settings`` (the watermark as its record)."""
        out = asdict(self)
        out["watermark"] = None if self.watermark is None else self.watermark.as_record()
        return out

    @classmethod
    def option_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--flag`` per CLI field of :class:`AuditSettings`, its default and help from
    the field (``store_true`` for booleans)."""
    for f in fields(AuditSettings):
        meta = f.metadata
        if not meta["cli"]:
            continue
        flag = "--" + f.name.replace("_", "-")
        default = f.default
        text = meta["help"] + ("" if default in (None, False) else f" (default {default})")
        if isinstance(default, bool):
            parser.add_argument(flag, action="store_true", help=text)
            continue
        kind = meta["type"] or type(default)
        parser.add_argument(flag, type=kind, default=default, help=text,
                            choices=meta["choices"], metavar=meta["metavar"])


def from_arguments(args: argparse.Namespace, **extra) -> AuditSettings:
    """The settings of parsed command-line ``args`` (``extra``: API-only fields)."""
    given = {f.name: getattr(args, f.name) for f in fields(AuditSettings)
             if f.metadata["cli"] and hasattr(args, f.name)}
    return AuditSettings(**given, **extra)
