"""Write a tiny llama-architecture GGUF file with the `gguf` package's writer: the weights of
a small ``LlamaForCausalLM`` (q and k permuted as llama.cpp's converter does, which
transformers undoes on load) and a byte-level BPE tokenizer (GGUF tokenizer model 'gpt2')."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def tiny_llama(vocab_size: int, seed: int = 0, hidden: int = 32, layers: int = 2, heads: int = 4,
               kv_heads: int = 2, ffn: int = 64, positions: int = 256):
    import torch
    import transformers
    config = transformers.LlamaConfig(
        vocab_size=vocab_size, hidden_size=hidden, intermediate_size=ffn, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=kv_heads, max_position_embeddings=positions,
        rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False, bos_token_id=0,
        eos_token_id=0, pad_token_id=0)
    torch.manual_seed(seed)
    return transformers.LlamaForCausalLM(config).eval()


def _permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's rotary permutation of a q or k projection (rows grouped per head)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_gguf(model, tokenizer_json: dict, path: Path, arch: str = "llama",
               qtype=None, truncate: int = 0) -> Path:
    """``model`` (a LlamaForCausalLM) and a byte-level BPE ``tokenizer_json`` (tokenizers'
    JSON) as a GGUF file. ``qtype``: a GGMLQuantizationType for the 2-D weights (default F32);
    ``arch``: the architecture written (a wrong one makes a file transformers refuses);
    ``truncate``: bytes cut off the end (a truncated file)."""
    import gguf
    c = model.config
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name("tiny-llama")
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_block_count(c.num_hidden_layers)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_rope_dimension_count(c.hidden_size // c.num_attention_heads)
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    w.add_rope_freq_base(10000.0)
    w.add_vocab_size(c.vocab_size)
    model_json = tokenizer_json["model"]
    vocab = model_json["vocab"]
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model_json["merges"]]
    special = {a["content"] for a in tokenizer_json.get("added_tokens", [])}
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(tokens)
    w.add_token_types([3 if t in special else 1 for t in tokens])
    w.add_token_merges(merges)
    w.add_bos_token_id(0)
    w.add_eos_token_id(0)
    w.add_pad_token_id(0)
    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    per_layer = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q",
                 "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
                 "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
                 "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    for i in range(c.num_hidden_layers):
        for hf, gg in per_layer.items():
            names[f"model.layers.{i}.{hf}.weight"] = f"blk.{i}.{gg}.weight"
    for hf, gg in names.items():
        data = sd[hf]
        if hf.endswith("q_proj.weight"):
            data = _permute(data, c.num_attention_heads)
        elif hf.endswith("k_proj.weight"):
            data = _permute(data, c.num_key_value_heads)
        if qtype is not None and data.ndim == 2:
            w.add_tensor(gg, gguf.quants.quantize(data, qtype), raw_dtype=qtype)
        else:
            w.add_tensor(gg, np.ascontiguousarray(data, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    if truncate:
        data = path.read_bytes()
        path.write_bytes(data[:-truncate])
    return path


def bpe_json(tokenizer) -> dict:
    """The tokenizers JSON of a :class:`modelcollapse.neural.tokenizer.BPETokenizer`."""
    return json.loads(tokenizer._tok.to_str())
