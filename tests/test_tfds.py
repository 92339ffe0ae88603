"""Tests for metajax.datasets.tfds on real Omniglot, prepared offline with TFDS's builder.

The archives come from ``$METAJAX_DATA_DIR/omniglot`` and are only read; everything TFDS
writes goes under pytest's temporary directories.
"""

from __future__ import annotations

import io
import os
import sys
import zipfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metajax.core.episodes import sample_episode
from metajax.datasets import load
from metajax.datasets.base import CorruptDataError, DataNotFoundError, resolve_data_dir

tfds = pytest.importorskip(
    "tensorflow_datasets", reason="tensorflow-datasets is not installed (pip install metajax[tfds])"
)

from metajax.datasets import tfds as mtfds  # noqa: E402  (needs the skip above first)

SMALL = ("small1", "small2")
ZIPS = (
    "images_background.zip",
    "images_evaluation.zip",
    "images_background_small1.zip",
    "images_background_small2.zip",
)


@pytest.fixture(scope="module")
def archives() -> Path:
    """``$METAJAX_DATA_DIR/omniglot``, the original archives (read-only)."""
    root = resolve_data_dir(None)
    if root is None or not all((root / "omniglot" / z).is_file() for z in ZIPS):
        pytest.skip(
            f"Omniglot archives not found: $METAJAX_DATA_DIR (now {root}) must name a folder "
            f"holding omniglot/{{{','.join(ZIPS)}}}"
        )
    return (root / "omniglot").resolve()  # absolute: tests symlink to these files


def _archive_pixels(archives: Path, archive: str, folder: str) -> list[np.ndarray]:
    """The 0/1 masks (1 = background) of the images in one folder of an archive."""
    from PIL import Image

    out = []
    with zipfile.ZipFile(archives / archive) as z:
        for info in z.infolist():
            if info.filename.startswith(folder) and info.filename.endswith(".png"):
                with Image.open(io.BytesIO(z.read(info))) as im:
                    out.append((np.asarray(im.convert("L")) > 127).astype(np.float32))
    return out


def _small_label_names(archives: Path) -> set[str]:
    """``omniglot/<alphabet>_<k>`` of every character in the two small archives."""
    names = set()
    for archive in ZIPS[2:]:
        with zipfile.ZipFile(archives / archive) as z:
            for f in z.namelist():
                if f.endswith(".png"):
                    _, alphabet, character, _ = f.split("/")
                    names.add(f"omniglot/{alphabet}_{int(character[len('character') :]) - 1}")
    return names


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory, archives) -> Path:
    data_dir = tmp_path_factory.mktemp("tfds")
    mtfds.prepare_omniglot_offline(archives, data_dir, splits=SMALL)
    return data_dir


@pytest.fixture(scope="module")
def omniglot(tfds_dir):
    return mtfds.from_tfds(
        "omniglot",
        split=list(SMALL),
        data_dir=tfds_dir,
        grayscale=True,
        image_size=(28, 28),
        invert=True,
    )


def test_prepares_small_splits_offline(tfds_dir):
    builder = tfds.builder("omniglot", data_dir=os.fspath(tfds_dir))
    assert builder.is_prepared()
    assert {s: builder.info.splits[s].num_examples for s in builder.info.splits} == {
        "small1": 2720,
        "small2": 3120,
    }
    label = builder.info.features["label"]
    assert label.num_classes == 1623 and len(set(label.names)) == 1623
    assert label.names[107] == "Balinese_0"  # file 0108_*.png, as TFDS's builder names it
    assert len(builder.info.features["alphabet"].names) == 50
    # Nothing of the extraction is left behind, and nothing went next to the archives.
    assert sorted(p.name for p in tfds_dir.iterdir()) == ["omniglot"]


def test_prepare_reuses_a_prepared_dir_and_refuses_missing_splits(archives, tfds_dir):
    builder = mtfds.prepare_omniglot_offline(archives, tfds_dir, splits=("small1",))
    assert "small1" in builder.info.splits
    with pytest.raises(ValueError, match="splits.*without \\['train'\\]"):
        mtfds.prepare_omniglot_offline(archives, tfds_dir, splits=("train",))


def test_pools_shapes_dtype_range(omniglot):
    assert omniglot.name == "tfds:omniglot"
    assert omniglot.splits == ("train", "val", "test")
    for split in omniglot.splits:
        pool = omniglot.pool(split)
        assert pool.dtype == np.float32
        assert pool.shape[1:] == (20, 28, 28, 1)
        assert pool.shape[0] == len(omniglot.class_names[split])
        assert 0.0 <= pool.min() and pool.max() <= 1.0


def test_class_splits_are_disjoint_and_cover_all_classes(archives, omniglot):
    names = [set(omniglot.class_names[s]) for s in omniglot.splits]
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            assert not names[i] & names[j]
    # small1 and small2 share Greek and Latin: 136 + 156 - 50 characters.
    assert set().union(*names) == _small_label_names(archives)
    assert sum(len(n) for n in names) == 242
    assert [len(n) for n in names] == [155, 39, 48]  # DEFAULT_FRACTIONS of 242


def test_images_are_omniglot_characters(omniglot):
    pool = omniglot.pool("train")
    ink = pool.reshape(pool.shape[0] * pool.shape[1], -1)
    # Inverted, so strokes are bright on a dark background that covers most of the image.
    assert np.all(ink.std(axis=1) > 0.05)
    assert np.all(np.median(ink, axis=1) == 0.0)
    assert 0.03 < ink.mean() < 0.2


def test_pixels_match_the_archive(archives, tfds_dir):
    ds = mtfds.from_tfds(
        "omniglot", split="small1", data_dir=tfds_dir, class_splits={"test": ["Balinese_0"]}
    )
    assert ds.class_names == {"test": ("omniglot/Balinese_0",)}
    pool = ds.pool("test")
    assert pool.shape == (1, 20, 105, 105, 3)
    np.testing.assert_array_equal(pool[..., 0], pool[..., 2])
    want = _archive_pixels(
        archives, "images_background_small1.zip", "images_background_small1/Balinese/character01/"
    )
    assert len(want) == 20
    # The same 20 drawings, in whatever order TFDS stored them.
    assert sorted(x.tobytes() for x in pool[0, ..., 0]) == sorted(x.tobytes() for x in want)


def test_pooled_splits_keep_shared_images_once(omniglot):
    # Latin and Greek characters are in both small archives; a copy would let an image
    # be its own query.
    for split in omniglot.splits:
        pool = omniglot.pool(split)
        for c, name in enumerate(omniglot.class_names[split]):
            if name.startswith(("omniglot/Latin_", "omniglot/Greek_")):
                assert len({x.tobytes() for x in pool[c]}) == 20, name


def _find(pool: np.ndarray, image: np.ndarray) -> tuple[int, int]:
    hits = np.argwhere(np.all(pool == image, axis=tuple(range(2, pool.ndim))))
    assert len(hits) == 1
    return tuple(hits[0])


def test_sample_episodes_from_the_pool(omniglot):
    pool = omniglot.pool("train")
    sample = jax.jit(sample_episode, static_argnames=("ways", "shots", "queries"))
    for seed in range(3):
        ep = sample(jax.random.key(seed), jnp.asarray(pool), ways=5, shots=1, queries=5)
        assert ep.support.x.shape == (5, 28, 28, 1) and ep.query.x.shape == (25, 28, 28, 1)
        np.testing.assert_array_equal(ep.support.y, np.arange(5))
        np.testing.assert_array_equal(ep.query.y, np.repeat(np.arange(5), 5))
        assert ep.support.y.dtype == jnp.int32
        support = [_find(pool, np.asarray(x)) for x in ep.support.x]
        query = [_find(pool, np.asarray(x)) for x in ep.query.x]
        assert len({c for c, _ in support}) == 5
        for (c, e), y in zip(query, np.asarray(ep.query.y), strict=True):
            assert c == support[y][0] and e != support[y][1]


def test_seed_decides_the_class_split(tfds_dir):
    def split(seed):
        return mtfds.from_tfds(
            "omniglot",
            split="small1[:25%]",  # TFDS slicing; a quarter of the examples keeps it quick
            data_dir=tfds_dir,
            image_size=(8, 8),
            grayscale=True,
            fractions={"train": 0.5, "test": 0.5},
            seed=seed,
        ).class_names

    assert split(0) == split(0)
    assert split(0) != split(1)


def test_examples_per_class_truncates_and_drops(tfds_dir):
    kwargs = dict(
        split="small1", data_dir=tfds_dir, class_splits={"train": [107, 108], "test": [109]}
    )
    ds = mtfds.from_tfds("omniglot", examples_per_class=5, **kwargs)
    assert ds.pool("train").shape == (2, 5, 105, 105, 3)
    assert ds.class_names["test"] == ("omniglot/Balinese_2",)
    with pytest.warns(UserWarning, match="dropped 3 of 3"):
        with pytest.raises(ValueError, match="examples_per_class=21"):
            mtfds.from_tfds("omniglot", examples_per_class=21, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(label_key="nope"), "label_key='nope' is not a feature"),
        (dict(label_key="image"), "label_key='image' is not an integer class label"),
        (dict(image_key="label"), "image_key='label' is not an image feature"),
        (dict(image_key="img"), "image_key='img' is not a feature"),
        (dict(split="nope"), "split='nope'"),
        (dict(fractions={"train": 0.8, "test": 0.5}), "fractions must be positive"),
        (dict(fractions={"train": "half"}), "fractions must map"),
        (dict(fractions={"a": 0.5}, class_splits={"a": [0]}), "not both"),
        (dict(class_splits={"a": [0], "b": [0]}), "label 0 in both"),
        (dict(class_splits={"a": ["Klingon_0"]}), "'Klingon_0' is not a label name"),
        (dict(examples_per_class=0), "examples_per_class"),
        (dict(image_size=(28,)), "image_size"),
    ],
)
def test_bad_arguments_name_themselves(tfds_dir, kwargs, match):
    kwargs = {"split": "small1", **kwargs}
    with pytest.raises(ValueError, match=match):
        mtfds.from_tfds("omniglot", data_dir=tfds_dir, **kwargs)


@pytest.mark.parametrize(
    "call, needed_by",
    [
        (lambda archives: load("tfds:omniglot"), "dataset tfds:omniglot"),
        (lambda archives: mtfds.from_tfds("cifar100"), "dataset tfds:cifar100"),
        (mtfds.prepare_omniglot_offline, "prepare_omniglot_offline"),
    ],
)
def test_missing_tfds_is_one_line_naming_the_extra(monkeypatch, tmp_path, call, needed_by):
    # What the CLI prints for a ValueError, instead of a traceback through TFDS's import.
    for name in ZIPS:  # prepare_omniglot_offline looks for the archives first
        (tmp_path / name).touch()
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
    with pytest.raises(ValueError) as error:
        call(tmp_path)
    assert isinstance(error.value, ImportError)  # and so a MissingExtraError
    assert str(error.value) == (
        f"{needed_by} needs tensorflow-datasets: pip install 'metajax[tfds]'"
    )


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="name='no_such_dataset_xyz'"):
        mtfds.from_tfds("no_such_dataset_xyz")


def test_not_prepared_without_download_says_where_and_how(tmp_path):
    with pytest.raises(DataNotFoundError) as info:
        mtfds.from_tfds("omniglot", data_dir=tmp_path, download=False)
    message = str(info.value)
    assert os.fspath(tmp_path) in message
    assert "tfds build omniglot" in message and "prepare_omniglot_offline" in message
    assert isinstance(info.value, ValueError)
    assert not any(tmp_path.iterdir())


def test_dataset_without_a_label_feature():
    features = tfds.features.FeaturesDict({"image": tfds.features.Image(shape=(8, 8, 1))})
    with pytest.raises(ValueError, match="no integer label feature"):
        mtfds._check_features(features, "unlabeled", "image", "label")


def test_prepare_needs_every_archive(archives, tmp_path):
    archive_dir = tmp_path / "archives"
    archive_dir.mkdir()
    (archive_dir / "images_background_small1.zip").symlink_to(
        archives / "images_background_small1.zip"
    )
    with pytest.raises(DataNotFoundError, match="images_background_small2.zip"):
        mtfds.prepare_omniglot_offline(archive_dir, tmp_path / "tfds", splits=SMALL)
    with pytest.raises(ValueError, match="splits must be"):
        mtfds.prepare_omniglot_offline(archive_dir, tmp_path / "tfds", splits=("val",))


def test_prepare_rejects_an_archive_with_other_content(archives, tmp_path):
    archive_dir = tmp_path / "archives"
    archive_dir.mkdir()
    for name in ("images_background_small1.zip", "images_background_small2.zip"):
        (archive_dir / name).symlink_to(archives / name)
    (archive_dir / "images_evaluation.zip").symlink_to(archives / "images_evaluation.zip")
    with zipfile.ZipFile(archive_dir / "images_background.zip", "w") as z:
        z.writestr("images_background/Latin/character01/0001_01.png", b"not a png")
    with pytest.raises(CorruptDataError, match="images_background.zip"):
        mtfds.prepare_omniglot_offline(archive_dir, tmp_path / "tfds", splits=("train",))
    assert not (tmp_path / "tfds" / "omniglot").exists()


def test_repacked_archive_passes_content_verification(archives):
    # The shared copy was re-packed: TFDS's byte checksum rejects it, its images match.
    sha, _ = mtfds._sha256(archives / "images_evaluation.zip")
    registered = {i.filename: i.checksum for i in _omniglot_url_infos()}
    if sha == registered["images_evaluation.zip"]:
        pytest.skip("these archives are the originals; no content verification is needed")
    mtfds._verify_omniglot_pixels(archives / "images_evaluation.zip")


def _omniglot_url_infos():
    from tensorflow_datasets.core.download import checksums

    return [i for u, i in checksums.get_all_url_infos().items() if "brendenlake/omniglot" in u]


@pytest.mark.slow
def test_prepares_all_four_splits_like_tfds(archives, tmp_path, tfds_dir):
    builder = mtfds.prepare_omniglot_offline(archives, tmp_path)
    assert {s: builder.info.splits[s].num_examples for s in builder.info.splits} == {
        "train": 19280,
        "test": 13180,
        "small1": 2720,
        "small2": 3120,
    }
    small = tfds.builder("omniglot", data_dir=os.fspath(tfds_dir))
    for feature in ("label", "alphabet"):
        assert builder.info.features[feature].names == small.info.features[feature].names
    lake = mtfds.from_tfds(
        "omniglot",
        split=["train", "test"],
        data_dir=tmp_path,
        grayscale=True,
        image_size=(28, 28),
        class_splits={"train": list(range(964)), "test": list(range(964, 1623))},
    )
    assert lake.pool("train").shape == (964, 20, 28, 28, 1)
    assert lake.pool("test").shape == (659, 20, 28, 28, 1)
