import sys

import jax
import numpy as np
import pytest

from metajax import datasets
from metajax.datasets.uea import class_pool, class_sampler, load_uea, pad_series, uea_few_shot


@pytest.fixture(scope="module")
def vowels():
    return load_uea("JapaneseVowels")


def test_pad_series_pads_masks_and_checks():
    a, b = np.arange(6.0).reshape(2, 3), np.ones((2, 5))
    values, mask = pad_series([a, b], length=7)
    assert values.shape == (2, 7, 2) and mask.shape == (2, 7)
    np.testing.assert_array_equal(values[0, :3], a.T)
    assert (values[0, 3:] == 0).all() and mask.sum(1).tolist() == [3.0, 5.0]
    # Trailing all-NaN steps are padding, as some UEA files write it.
    c = np.concatenate([a, np.full((2, 2), np.nan)], axis=1)
    np.testing.assert_array_equal(pad_series([c])[1], [[1, 1, 1]])
    with pytest.raises(ValueError, match=r"series\[1\] has 3 channels but series\[0\] has 2"):
        pad_series([a, np.ones((3, 4))])
    with pytest.raises(ValueError, match=r"length must be an integer >= the longest series"):
        pad_series([a, b], length=4)
    with pytest.raises(ValueError, match=r"series\[0\] has missing values"):
        pad_series([np.array([[1.0, np.nan, 2.0]])])
    with pytest.raises(ValueError, match=r"series must hold"):
        pad_series([])


def test_japanese_vowels_layout_and_normalisation(vowels):
    assert vowels.channels == 12 and vowels.classes == 9 and vowels.length == 29
    assert vowels.train.x.shape == (270, 29, 13) and vowels.test.x.shape == (370, 29, 13)
    assert vowels.train.x.dtype == np.float32 and vowels.test.y.dtype == np.int32
    mask = vowels.train.x[..., -1]
    lengths = mask.sum(1)
    assert lengths.min() == 7 and lengths.max() == 26  # JapaneseVowels' train lengths
    # Masks are prefixes and padded values are zero.
    assert (np.diff(mask, axis=1) <= 0).all()
    assert (vowels.test.x[..., :-1][vowels.test.x[..., -1] == 0] == 0).all()
    # z-normalised with the train split's real steps; the test split is not used for it.
    real = vowels.train.x[mask == 1][:, :-1]
    np.testing.assert_allclose(real.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(real.std(0), 1, atol=1e-4)
    test_real = vowels.test.x[vowels.test.x[..., -1] == 1][:, :-1]
    assert np.abs(test_real.mean(0)).max() > 1e-3
    episode = vowels.paper_episode()
    assert episode.support.x is vowels.train.x and episode.query.y is vowels.test.y
    assert np.bincount(vowels.test.y).tolist() == [31, 35, 88, 44, 29, 24, 40, 50, 29]


def test_pools_balance_unequal_classes(vowels):
    assert vowels.pool("test").shape == (9, 24, 29, 13)  # capped to the smallest class
    assert vowels.pool("test", balance="replace").shape == (9, 88, 29, 13)
    assert vowels.pool("all").shape == (9, 54, 29, 13)
    # Capping keeps distinct series of the right class.
    pool = vowels.pool("test")
    flat = vowels.test.x.reshape(len(vowels.test.x), -1)
    for c in (0, 5):
        rows = [np.flatnonzero((flat == s.reshape(-1)).all(1)) for s in pool[c]]
        assert all(len(r) == 1 and vowels.test.y[r[0]] == c for r in rows)
        assert len({r[0] for r in rows}) == len(rows)
    with pytest.raises(ValueError, match=r"balance must be one of"):
        vowels.pool("train", balance="drop")
    with pytest.raises(ValueError, match=r"split must be"):
        vowels.pool("validation")
    with pytest.raises(ValueError, match=r"classes \[2\] have no example"):
        class_pool(np.zeros((3, 1)), np.array([0, 1, 1]), classes=3)


def test_few_shot_classes_are_disjoint(vowels):
    fs = uea_few_shot(vowels, seed=1)
    assert fs.pool("train").shape[0] == 6 and fs.pool("test").shape[0] == 3
    assert not set(fs.class_names["train"]) & set(fs.class_names["test"])
    assert fs.pool("test").shape[2:] == (29, 13)


def test_class_sampler_keeps_labels_and_splits_examples():
    pool = np.arange(4 * 6, dtype=np.float32).reshape(4, 6, 1, 1) * np.ones((1, 1, 3, 2))
    sampler = class_sampler(pool, shots=2, queries=3)
    episode = jax.jit(sampler.sample)(jax.random.key(0), sampler.data)
    assert episode.support.y.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    ids_s, ids_q = episode.support.x[:, 0, 0], episode.query.x[:, 0, 0]
    assert (ids_s // 6 == episode.support.y).all() and (ids_q // 6 == episode.query.y).all()
    assert not set(ids_s.tolist()) & set(ids_q.tolist())
    with pytest.raises(ValueError, match=r"shots \+ queries"):
        class_sampler(pool, shots=3, queries=4)


@pytest.mark.parametrize("load", [load_uea, lambda name: datasets.load(f"uea:{name}")])
def test_missing_aeon_is_one_line_naming_the_extra(monkeypatch, load):
    # What the CLI prints for a ValueError, instead of a traceback through aeon's import.
    monkeypatch.setitem(sys.modules, "aeon", None)
    monkeypatch.setitem(sys.modules, "aeon.datasets", None)
    with pytest.raises(ValueError) as error:
        load("BasicMotions")
    assert isinstance(error.value, ImportError)  # and so a datasets.MissingExtraError
    assert str(error.value) == (
        "dataset uea:BasicMotions needs aeon: pip install 'metajax[timeseries]'"
    )
