"""scikit-learn's bundled handwritten digits (8x8, 10 classes) as a tiny few-shot dataset.

It needs no download, which makes it metajax's offline default. Classes 0-4 are
meta-train and 5-9 meta-test, so test episodes are made of digits never seen in
meta-training. Each class is cut to the smallest class's 174 examples.
"""

from __future__ import annotations

import numpy as np

from metajax.datasets.base import FewShotDataset

TRAIN_DIGITS = (0, 1, 2, 3, 4)
TEST_DIGITS = (5, 6, 7, 8, 9)


def load_digits() -> FewShotDataset:
    """Digits as pools ``[5, 174, 8, 8, 1]`` float32 in ``[0, 1]`` for ``train`` and ``test``.

    Example:
      >>> ds = load_digits()
      >>> ds.pool("train").shape, ds.class_names["test"][0]
      ((5, 174, 8, 8, 1), 'digit5')
    """
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = bunch.images.astype(np.float32) / 16.0
    by_class = [images[bunch.target == d] for d in range(10)]
    count = min(len(c) for c in by_class)

    def pool(digits):
        return np.stack([by_class[d][:count] for d in digits])[..., None]

    return FewShotDataset(
        name="digits",
        pools={"train": pool(TRAIN_DIGITS), "test": pool(TEST_DIGITS)},
        class_names={
            "train": tuple(f"digit{d}" for d in TRAIN_DIGITS),
            "test": tuple(f"digit{d}" for d in TEST_DIGITS),
        },
    )
