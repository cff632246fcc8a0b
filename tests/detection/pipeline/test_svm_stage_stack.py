"""The SVM stage's concatenation of the box-regression samples, which frees the chunks as it goes."""

import numpy as np

from detection.pipeline.svm_stage import stack


def test_stack_gives_concatenate_bit_for_bit_and_empties_the_list():
    rng = np.random.default_rng(0)
    chunks = [rng.random((n, 3)).astype(np.float16) for n in (2, 0, 5, 1)]
    expected = np.concatenate(chunks)
    out = stack(chunks)
    assert out.dtype == expected.dtype and out.tobytes() == expected.tobytes()
    assert chunks == []
    assert stack([np.arange(3), np.arange(2)]).tolist() == [0, 1, 2, 0, 1]
