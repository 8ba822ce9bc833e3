"""A synthetic text task that a bag of words cannot solve and a convolution over word order can.

:func:`marker_order` makes token sequences that each contain two marker words, A and B, close
together (at most ``max_gap`` filler words between them), among random filler words. The label
is their order: 0 when A comes first ("A ... B"), 1 when B does ("B ... A"), like "not good"
against "good, not bad" in a sentiment task.

The samples come in pairs that hold the very same words, once in each order, so every bag of
words (the multiset of tokens, any function of the counts) occurs once with each label: no
classifier of word counts can score above 50% on such a set, while a 1-D convolution whose
window spans ``max_gap + 2`` tokens sees the order directly.
"""

import numpy as np

PAD, MARKER_A, MARKER_B = 0, 1, 2  # token ids; the filler words are 3 .. vocab_size - 1


def marker_order(n, length=24, vocab_size=50, max_gap=2, min_length=None, seed=0):
    """``n`` token sequences (n, length) int64 and labels (n,) int64 (0: A before B, 1: B before A).

    Args:
        n: number of sequences (rounded down to an even number: they come in swapped pairs).
        length: padded sequence length; each sequence holds ``min_length`` to ``length`` real
            tokens (default: all ``length``), the rest is the padding token 0 at the end.
        vocab_size: number of token ids (0 padding, 1 and 2 the markers, the rest fillers); >= 4.
        max_gap: largest number of filler words between the two markers.
        seed: the same seed gives the same arrays.
    """
    n, length, vocab_size, max_gap = int(n), int(length), int(vocab_size), int(max_gap)
    min_length = length if min_length is None else int(min_length)
    if vocab_size < 4:
        raise ValueError(f"marker_order: vocab_size must be >= 4 (padding, two markers, a filler), got {vocab_size}")
    if max_gap < 0 or not max_gap + 2 <= min_length <= length:
        raise ValueError(f"marker_order: need 0 <= max_gap and max_gap + 2 <= min_length <= length, got "
                         f"max_gap={max_gap}, min_length={min_length}, length={length}")
    gen = np.random.default_rng(seed)
    pairs = n // 2
    tokens = gen.integers(3, vocab_size, (pairs, length))
    real = gen.integers(min_length, length + 1, pairs)  # real tokens per sequence
    gap = gen.integers(0, max_gap + 1, pairs)
    first = (gen.random(pairs) * (real - gap - 1)).astype(np.int64)  # the markers fit before the end
    second = first + gap + 1
    rows = np.arange(pairs)
    tokens[np.arange(length)[None, :] >= real[:, None]] = PAD
    a_first, b_first = tokens.copy(), tokens.copy()
    a_first[rows, first], a_first[rows, second] = MARKER_A, MARKER_B
    b_first[rows, first], b_first[rows, second] = MARKER_B, MARKER_A
    x = np.concatenate([a_first, b_first])
    y = np.concatenate([np.zeros(pairs, np.int64), np.ones(pairs, np.int64)])
    order = gen.permutation(2 * pairs)
    return x[order].astype(np.int64), y[order]
