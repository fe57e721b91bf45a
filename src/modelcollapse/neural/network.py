"""The network: size presets, a GPT-2-style model from scratch or a pretrained checkpoint,
the device, and weights on disk (safetensors, via ``save_pretrained``).

Presets (``size``): ``tiny`` = 2 layers, 64 dims, 2 heads (236k parameters at a 2,000-token
vocabulary; the tests use it); ``small`` = 4 layers, 256 dims, 4 heads; ``base`` = GPT-2
small's 12 layers, 768 dims, 12 heads. ``n_layer``, ``n_embd`` and ``n_head`` override the
preset one by one.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from . import require

PRESETS = {"tiny": (2, 64, 2), "small": (4, 256, 4), "base": (12, 768, 12)}


def resolve_device(name: str) -> str:
    """'cpu' or 'cuda' for ``auto | cpu | cuda``; cuda without a CUDA device is an error."""
    torch, _ = require()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("params.device = 'cuda' but torch sees no CUDA device here "
                        f"(torch {torch.__version__}); use device = 'auto' or 'cpu'")
    return name


def shape(size: str, n_layer: int, n_embd: int, n_head: int) -> tuple[int, int, int]:
    """(layers, dims, heads) of a preset with the non-zero overrides applied."""
    base = PRESETS[size]
    layers, dims, heads = (v or d for v, d in zip((n_layer, n_embd, n_head), base))
    if dims % heads:
        raise UserError(f"params.n_embd = {dims} must be a multiple of n_head = {heads}")
    return layers, dims, heads


def from_scratch(vocab_size: int, layers: int, dims: int, heads: int, positions: int,
                 dropout: float, eos_id: int, seed: int):
    """A freshly initialized GPT-2-style causal LM; the same seed gives the same weights."""
    torch, transformers = require()
    config = transformers.GPT2Config(
        vocab_size=vocab_size, n_positions=positions, n_embd=dims, n_layer=layers, n_head=heads,
        resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout,
        bos_token_id=eos_id, eos_token_id=eos_id, pad_token_id=eos_id)
    with torch.random.fork_rng(devices=range(torch.cuda.device_count())):   # init draws from the global RNG
        torch.manual_seed(seed)
        return transformers.GPT2LMHeadModel(config)


def load_pretrained(name: str):
    """The causal LM of checkpoint ``name`` (a .gguf file, a folder, a known name or a hub
    id: see :mod:`modelcollapse.pretrained.load`), on the CPU in float32 (the master
    weights fine-tuning updates; CUDA runs autocast to bf16 on top)."""
    torch, _ = require()
    from ..pretrained.load import load_model
    return load_model(name, "cpu", torch.float32)


def load_tokenizer(name: str):
    """The tokenizer of checkpoint ``name`` (wrapped as a PretrainedTokenizer)."""
    from ..pretrained.load import load_tokenizer as load_hf_tokenizer
    from .tokenizer import PretrainedTokenizer
    return PretrainedTokenizer(name, load_hf_tokenizer(name))


def positions(module) -> int:
    """The longest sequence the model takes."""
    c = module.config
    return int(getattr(c, "n_positions", None) or c.max_position_embeddings)


def saved(folder: Path | None) -> bool:
    """Whether ``folder`` holds weights written by :func:`save` (a model or adapters)."""
    return folder is not None and any((Path(folder) / f).is_file() for f in
                                      ("model.safetensors", "adapter_model.safetensors"))


def n_parameters(module) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def save(module, folder: Path, base: str | None = None) -> Path:
    """Write ``config.json`` and ``model.safetensors`` into ``folder`` (atomically: a folder
    that exists holds complete weights). A LoRA-wrapped module writes its adapters only
    (``adapter_model.safetensors``) and ``base`` names the checkpoint they sit on."""
    import shutil
    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    module.save_pretrained(str(tmp), safe_serialization=True)
    if base is not None:
        from ..pretrained.lora import write_base
        write_base(tmp, base)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder


def load(folder: Path, device: str):
    """The model saved by :func:`save` in ``folder``, on ``device``, in eval mode."""
    torch, transformers = require()
    from ..pretrained import lora
    if lora.is_adapter_folder(folder):
        return lora.load_adapter(folder, device)
    # safetensors only: a run folder may come from someone else, and a pickled
    # pytorch_model.bin beside the config would otherwise be unpickled
    module = transformers.AutoModelForCausalLM.from_pretrained(
        str(folder), dtype=torch.float32, use_safetensors=True, trust_remote_code=False)
    return module.to(device).eval()
