"""LoRA adapters (peft) for fine-tuning a pretrained checkpoint in each generation.

``adapter = 'lora'`` freezes the checkpoint and trains rank-``lora_rank`` updates
``B A`` (scaled by ``lora_alpha / lora_rank``) on the ``lora_targets`` modules: the memory and
optimizer state of fine-tuning drop to the adapters' (a few hundred thousand parameters for
SmolLM2-135M), which lets models too large to fine-tune fully run the loop. After training,
``lora_merge = true`` folds the adapters into the weights (the next generation, and the files
on disk, are plain checkpoints); ``false`` keeps them as adapters on the original checkpoint:
each generation's folder holds only ``adapter_model.safetensors`` (a few MB instead of the
model) and ``base_model.json`` naming the checkpoint they sit on.

Randomness: peft initializes A from torch's global RNG; :func:`attach` forks it and seeds it
from the run's seed tree, so the same seed gives the same adapters.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError

BASE_FILE = "base_model.json"


def _peft():
    try:
        import peft
    except ImportError:
        raise UserError("adapter = 'lora' needs peft: pip install 'modelcollapse[torch]'") from None
    return peft


def targets(spec: str) -> list[str] | None:
    """The comma-separated ``lora_targets`` as a list (None: peft's default for the
    architecture, e.g. q_proj and v_proj for llama and OPT, c_attn for GPT-2)."""
    names = [t.strip() for t in spec.split(",") if t.strip()]
    return names or None


def linear_names(module) -> list[str]:
    """The last name component of every linear-like leaf module (what LoRA can target)."""
    import torch
    kinds = (torch.nn.Linear, torch.nn.Embedding)
    out = set()
    for name, sub in module.named_modules():
        if name and (isinstance(sub, kinds) or type(sub).__name__ == "Conv1D"):
            out.add(name.rsplit(".", 1)[-1])
    return sorted(out)


def check_targets(module, spec: str, model_name: str) -> None:
    """Every target must name a module of ``module``; peft's default must exist for its type."""
    wanted = targets(spec)
    have = linear_names(module)
    if wanted is None:
        from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as DEFAULTS
        if module.config.model_type not in DEFAULTS:
            raise UserError(f"params.lora_targets is empty and peft has no default targets for "
                            f"{model_name} (model type '{module.config.model_type}'); name them, "
                            f"e.g. one of: {', '.join(have)}")
        return
    missing = [t for t in wanted if t.rsplit(".", 1)[-1] not in have]
    if missing:
        raise UserError(f"params.lora_targets: {model_name} has no module named "
                        f"{', '.join(missing)}; its linear modules are: {', '.join(have)}")


def attach(module, rank: int, alpha: float, spec: str, dropout: float, seed: int):
    """``module`` wrapped with fresh LoRA adapters (the base weights frozen). An already
    wrapped module (kept adapters, ``init = 'previous'``) is returned as it is: its adapters
    continue training."""
    import torch
    peft = _peft()
    if isinstance(module, peft.PeftModel):
        for name, param in module.named_parameters():   # loaded adapters come frozen
            param.requires_grad_("lora_" in name)
        return module
    config = peft.LoraConfig(r=rank, lora_alpha=alpha, target_modules=targets(spec),
                             lora_dropout=dropout, bias="none", task_type="CAUSAL_LM")
    with torch.random.fork_rng(devices=range(torch.cuda.device_count())):
        torch.manual_seed(int(seed))
        try:
            return peft.get_peft_model(module, config)
        except ValueError as e:   # checked up front; this is the backstop
            raise UserError(f"params.lora_targets: {str(e).splitlines()[0][:200]}") from None


def merge(module):
    """The plain model with the adapters folded into its weights."""
    return module.merge_and_unload()


def trainable(module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in module.parameters())
    train = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return int(train), int(total)


def is_adapter_folder(folder: Path) -> bool:
    return (Path(folder) / "adapter_config.json").is_file()


def write_base(folder: Path, base: str) -> None:
    """Record which checkpoint the adapters in ``folder`` sit on."""
    (Path(folder) / BASE_FILE).write_text(json.dumps({"model": base}))


def load_adapter(folder: Path, device: str):
    """The checkpoint named in ``folder``'s base file with the folder's adapters, in eval mode."""
    import torch
    peft = _peft()
    from .load import load_model
    base = json.loads((Path(folder) / BASE_FILE).read_text())["model"]
    module = load_model(base, "cpu", torch.float32)
    return peft.PeftModel.from_pretrained(module, str(folder)).to(device).eval()
