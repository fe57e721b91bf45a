"""Fast n-gram language models over token ids (numpy on the hot path).

``NGramLM`` (order 1-6; interpolated modified Kneser-Ney, add-k or MLE): fit, per-token
log-probabilities, perplexity, sampling with temperature / top-k / top-p, greedy and beam
decoding, ARPA export (KenLM scores it the same). ``load_arpa`` reads an ARPA file back as
a backoff scorer. Ids 0, 1, 2 are reserved for ``<unk>``, ``<s>``, ``</s>`` (``UNK``,
``BOS``, ``EOS``).
"""

from .arpa import ArpaLM, load_arpa
from .counts import BOS, EOS, MAX_ORDER, N_SPECIAL, SPECIAL_TOKENS, UNK
from .ngram_lm import SMOOTHINGS, NGramLM

__all__ = ["NGramLM", "ArpaLM", "load_arpa", "UNK", "BOS", "EOS", "N_SPECIAL",
           "SPECIAL_TOKENS", "MAX_ORDER", "SMOOTHINGS"]
