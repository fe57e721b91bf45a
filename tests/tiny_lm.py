"""A tiny random llama and a word-level tokenizer for fast, offline zero-shot tests."""

from __future__ import annotations

CHAT = ("{% for m in messages %}<s> {{ m['content'] }} </s> {% endfor %}"
        "{% if add_generation_prompt %}<s> {% endif %}")


def tiny_lm(texts, seed: int = 0, hidden: int = 32, layers: int = 2, chat: bool = True):
    """``(model, tokenizer)``: a LlamaForCausalLM with random weights over the words of
    ``texts`` (plus special tokens), a fast tokenizer that splits on whitespace."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    words = sorted({w for t in texts for w in t.split()})
    vocab = {w: i for i, w in enumerate(["<pad>", "<unk>", "<s>", "</s>"] + words)}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", unk_token="<unk>",
                                  bos_token="<s>", eos_token="</s>")
    if chat:
        tok.chat_template = CHAT
    # one thread: on a shared CPU the many small operations of a tiny model otherwise wait
    # on the thread pool far longer than they compute
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(vocab), hidden_size=hidden, intermediate_size=2 * hidden,
                      num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=4,
                      max_position_embeddings=512, pad_token_id=0, bos_token_id=2,
                      eos_token_id=3, tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg).eval()
    return model, tok


def tiny_lm_folder(texts, folder, seed: int = 0) -> str:
    """A tiny random llama over the words of ``texts`` (punctuation split off), saved to
    ``folder`` as transformers saves any model; returns the folder as a model spec."""
    spaced = [t.replace(".", " . ").replace(",", " , ") for t in texts]
    model, tok = tiny_lm(spaced, seed=seed, chat=False)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)
