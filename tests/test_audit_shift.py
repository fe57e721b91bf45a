"""Excess vocabulary and length shift: ok on human-vs-human splits, moved by LLM-like text."""

import numpy as np
import pytest

from modelcollapse.audit.shift import excess_vocabulary, length_shift
from modelcollapse.audit.verdicts import RULES
from modelcollapse.data import load_corpus


@pytest.fixture(scope="module")
def tokens():
    return [t.split() for t in load_corpus("embedded").texts()]


def _verdicts(cand, ref, seed):
    rng = np.random.default_rng(seed)
    est, lo, hi, _ = excess_vocabulary(cand, ref, rng)
    ev = RULES["excess_vocabulary"].verdict(lo, hi, 0.0, 0.0)
    c = np.array([len(d) for d in cand], float)
    r = np.array([len(d) for d in ref], float)
    e2, lo2, hi2, base, _ = length_shift(c, r, rng, 200)
    return ev, RULES["length_shift"].verdict(lo2, hi2, base, base), est, e2 - base


def test_human_splits_stay_ok(tokens):
    bad = 0
    for seed in range(10):
        perm = np.random.default_rng(seed).permutation(len(tokens))
        cand = [tokens[i] for i in perm[:300]]
        ref = [tokens[i] for i in perm[300:]]
        ev, ls, _, _ = _verdicts(cand, ref, seed)
        bad += (ev != "ok") + (ls != "ok")
    assert bad <= 1   # 20 verdicts; each should leave ok in well under 5% of splits


def test_llm_like_text_moves_both(tokens):
    perm = np.random.default_rng(0).permutation(len(tokens))
    ref = [tokens[i] for i in perm[300:]]
    # a generator's habits: favourite words and longer documents
    cand = [tokens[i] + ["additionally,", "crucial", "seamlessly"] * 4 for i in perm[:300]]
    ev, ls, est, shift = _verdicts(cand, ref, 0)
    assert ev == "alert" and est > 0.5
    assert ls in ("watch", "alert") and shift > 0.1
