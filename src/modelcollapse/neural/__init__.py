"""The neural backend: causal transformer language models (extra ``torch``).

Everything here imports torch and transformers lazily, through :func:`require`, so the
core package never needs them. The modules, each one concept:

* :mod:`.tokenizer` - a byte-level BPE trained on the real train split, or a pretrained
  checkpoint's own tokenizer; both map texts to ids and back.
* :mod:`.network` - size presets, building a GPT-2-style model from scratch or loading a
  checkpoint, the device, saving weights with safetensors.
* :mod:`.train` - one generation's training: AdamW, cosine schedule, the epoch with the best
  loss on real validation blocks kept.
* :mod:`.decode` - batched sampling with the KV cache and a local ``torch.Generator``
  (temperature, top-k, top-p, repetition penalty), beam search by the library.
* :mod:`.score` - per-sequence negative log-likelihoods (perplexity).
* :mod:`.handle` - :class:`TransformerLM`, one fitted model: its module, where its weights
  are on disk, how its training went.
"""

from __future__ import annotations

import os

from ..errors import UserError

EXTRA = "pip install 'modelcollapse[torch]'"


def require(what: str = "the transformer family"):
    """(torch, transformers), or one sentence naming the extra to install."""
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    try:
        import torch
        import transformers
    except ImportError as e:
        raise UserError(f"{what} needs torch and transformers ({e.name} is missing): {EXTRA}") from None
    transformers.logging.set_verbosity_error()   # its notes on deprecated arguments are ours to fix, not the user's
    transformers.logging.disable_progress_bar()   # one bar per saved file would bury ours
    import huggingface_hub
    # Its retries log each failed request; the one sentence the user sees is ours.
    huggingface_hub.utils.logging.set_verbosity_error()
    return torch, transformers
