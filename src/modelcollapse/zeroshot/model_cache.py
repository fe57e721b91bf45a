"""Load the audit's language models (generator, scorer, Binoculars pair), once per spec.

A spec is a ``.gguf`` file, a folder holding a transformers model, a hub id, or a name known
to ``modelcollapse models`` (fetched first with ``modelcollapse models fetch NAME``).
:func:`modelcollapse.pretrained.load.load_causal_lm` does the loading when the package has
it; this module adds the checks the audit needs (a GPU asked for without one; a model that
cannot generate; two models whose tokenizers differ) and a per-process memo, so that the
generator and the scorer given as the same spec are one model in memory.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError

_LOADED: dict[tuple[str, str], tuple[object, object]] = {}


def check_device(device: str) -> str:
    """``device`` when usable here; UserError for a GPU asked for without one."""
    if device == "cpu":
        return device
    import torch
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device '{device}' was requested but no CUDA GPU is available; use "
                        f"--device cpu")
    if device.startswith("mps") and not torch.backends.mps.is_available():
        raise UserError(f"device '{device}' was requested but MPS is not available")
    return device


def _load_plain(spec: str, device: str):
    """Loading without modelcollapse.pretrained: a .gguf, a folder or a hub id."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    path = Path(spec)
    try:
        if path.suffix == ".gguf" and path.is_file():
            kw = {"gguf_file": path.name}
            folder = str(path.parent)
            tok = AutoTokenizer.from_pretrained(folder, **kw)
            model = AutoModelForCausalLM.from_pretrained(folder, **kw)
        else:
            tok = AutoTokenizer.from_pretrained(spec)
            model = AutoModelForCausalLM.from_pretrained(spec)
    except (OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"cannot load the language model '{spec}' ({first}); give a .gguf "
                        f"file, a model folder, or a name fetched with 'modelcollapse models "
                        f"fetch'") from None
    return model.to(device), tok


def _cached_name(spec: str) -> str:
    """A bare name fetched into ``$MODELCOLLAPSE_CACHE/NAME/`` (``modelcollapse models
    fetch NAME``) as the path of its .gguf file; anything else unchanged."""
    import os
    root = os.environ.get("MODELCOLLAPSE_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "modelcollapse")
    folder = Path(root) / spec
    if "/" not in spec and folder.is_dir():
        found = sorted(folder.glob("*.gguf"))
        if found:
            return str(found[0])
    return spec


def load_lm(spec: str, device: str = "cpu"):
    """``(model, tokenizer)`` for ``spec`` in eval mode on ``device`` (memoized)."""
    device = check_device(device)
    key = (spec, device)
    if key in _LOADED:
        return _LOADED[key]
    try:
        from ..pretrained.load import load_causal_lm
    except ImportError:
        load_causal_lm = None
    if load_causal_lm is not None:
        model, tok = load_causal_lm(spec, device=device)
    else:
        model, tok = _load_plain(_cached_name(spec), device)
    model.eval()
    if tok.pad_token_id is None:
        tok.pad_token_id = tok.eos_token_id if tok.eos_token_id is not None else 0
    _LOADED[key] = (model, tok)
    return model, tok


def same_tokenizer(a, b) -> bool:
    """Whether two tokenizers map text to the same ids (vocabulary size and a probe)."""
    probe = "The quick brown fox, 3.14 and ünïcode: def f(x): return x ** 2"
    return (len(a) == len(b)
            and a(probe, add_special_tokens=False)["input_ids"]
            == b(probe, add_special_tokens=False)["input_ids"])


def check_pair(observer_spec: str, obs_tok, performer_spec: str, perf_tok) -> None:
    """UserError when Binoculars' two models do not share a tokenizer."""
    if not same_tokenizer(obs_tok, perf_tok):
        raise UserError(f"Binoculars needs an observer and a performer with the same "
                        f"tokenizer; '{observer_spec}' ({len(obs_tok)} tokens) and "
                        f"'{performer_spec}' ({len(perf_tok)} tokens) differ")
