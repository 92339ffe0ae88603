import numpy as np

from metajax.datasets import load_digits


def test_digits_pools_and_disjoint_classes():
    ds = load_digits()
    assert ds.pool("train").shape == (5, 174, 8, 8, 1) == ds.pool("test").shape
    assert not set(ds.class_names["train"]) & set(ds.class_names["test"])
    assert 0.0 <= ds.pool("train").min() and ds.pool("train").max() <= 1.0
    # Different classes really are different digits.
    means = ds.pool("test").mean(axis=1)
    assert np.abs(means[0] - means[1]).max() > 0.3
