import shutil
import time
import zipfile

import numpy as np
import pytest

from metajax.datasets import CorruptDataError, DataNotFoundError, load, load_omniglot
from metajax.datasets import omniglot as omniglot_module


def test_lake_counts(omniglot_lake):
    assert omniglot_lake.pool("train").shape == (964, 20, 28, 28, 1)
    assert omniglot_lake.pool("test").shape == (659, 20, 28, 28, 1)
    assert omniglot_lake.splits == ("train", "test")


def test_vinyals_counts_and_rotations(omniglot_vinyals):
    shapes = {s: omniglot_vinyals.pool(s).shape for s in omniglot_vinyals.splits}
    assert shapes == {
        "train": (1028 * 4, 20, 28, 28, 1),
        "val": (172 * 4, 20, 28, 28, 1),
        "test": (423 * 4, 20, 28, 28, 1),
    }
    for split in omniglot_vinyals.splits:
        names = omniglot_vinyals.class_names[split]
        characters = {n.rsplit("/", 1)[0] for n in names}
        assert len(characters) * 4 == len(names)
    # A rot090 class is its rot000 class turned a quarter counter-clockwise.
    names = omniglot_vinyals.class_names["train"]
    pool = omniglot_vinyals.pool("train")
    i0 = names.index("Angelic/character01/rot000")
    i90 = names.index("Angelic/character01/rot090")
    np.testing.assert_array_equal(pool[i90], np.rot90(pool[i0], k=1, axes=(1, 2)))


def test_splits_never_share_a_character(omniglot_vinyals, omniglot_lake):
    for ds in (omniglot_vinyals, omniglot_lake):
        chars = {s: {n.split("/rot")[0] for n in ds.class_names[s]} for s in ds.splits}
        splits = list(chars)
        for i, a in enumerate(splits):
            for b in splits[i + 1 :]:
                assert not chars[a] & chars[b], (ds.name, a, b)
    lake_alphabets = {
        s: {n.split("/")[0] for n in omniglot_lake.class_names[s]} for s in omniglot_lake.splits
    }
    assert len(lake_alphabets["train"]) == 30 and len(lake_alphabets["test"]) == 20


def test_images_are_ink_on_blank(omniglot_lake):
    pool = omniglot_lake.pool("train")
    assert pool.dtype == np.float32 and pool.min() >= 0.0 and pool.max() <= 1.0
    ink = pool.mean(axis=(2, 3, 4))
    assert 0.02 < ink.mean() < 0.3  # strokes are thin: most pixels are background (0)
    assert (ink > 0).all()  # no blank drawings


def test_cached_load_is_fast(data_dir, omniglot_cache, omniglot_lake):
    start = time.perf_counter()
    again = load_omniglot(data_dir, protocol="lake", cache_dir=omniglot_cache, download=False)
    assert time.perf_counter() - start < 1.0
    np.testing.assert_array_equal(again.pool("test"), omniglot_lake.pool("test"))
    assert list(omniglot_cache.glob("omniglot/images_*_28px_*.npz"))


def test_extracted_folders_are_accepted(tmp_path, data_dir):
    root = tmp_path / "omniglot"
    root.mkdir()
    with zipfile.ZipFile(data_dir / "omniglot" / "images_evaluation.zip") as z:
        z.extractall(root)
    shutil.copy(data_dir / "omniglot" / "images_background.zip", root)
    ds = load_omniglot(tmp_path, protocol="lake", cache_dir=tmp_path / "cache", download=False)
    assert ds.pool("test").shape == (659, 20, 28, 28, 1)


def test_missing_archives_name_the_files_and_option(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"images_background\.zip.*data_dir") as err:
        load_omniglot(tmp_path, cache_dir=tmp_path / "cache", download=False)
    assert isinstance(err.value, ValueError)
    with pytest.raises(ValueError, match=r"METAJAX_DATA_DIR"):
        load("omniglot", data_dir=tmp_path, download=False)


def test_failed_download_is_a_clear_error(tmp_path, monkeypatch):
    # Port 9 (discard) on the loopback refuses at once: a download with no network.
    monkeypatch.setattr(omniglot_module, "ARCHIVE_URL", "http://127.0.0.1:9/")
    with pytest.raises(DataNotFoundError, match=r"downloading http://127\.0\.0\.1:9/.* failed"):
        load_omniglot(tmp_path, cache_dir=tmp_path / "cache", download=True)


def _with_background(tmp_path, data_dir, payload: bytes):
    root = tmp_path / "omniglot"
    root.mkdir()
    (root / "images_background.zip").write_bytes(payload)
    shutil.copy(data_dir / "omniglot" / "images_evaluation.zip", root)
    return tmp_path


def test_garbage_archive_is_a_clear_error(tmp_path, data_dir):
    root = _with_background(tmp_path, data_dir, b"this is not a zip file" * 100)
    with pytest.raises(CorruptDataError, match=r"images_background\.zip is not a readable"):
        load_omniglot(root, protocol="lake", cache_dir=tmp_path / "cache", download=False)


def test_truncated_archive_is_a_clear_error(tmp_path, data_dir):
    whole = (data_dir / "omniglot" / "images_background.zip").read_bytes()
    root = _with_background(tmp_path, data_dir, whole[: len(whole) // 2])
    with pytest.raises(CorruptDataError, match=r"images_background\.zip"):
        load_omniglot(root, protocol="lake", cache_dir=tmp_path / "cache", download=False)


def test_archive_missing_characters_is_a_clear_error(tmp_path, data_dir):
    partial = tmp_path / "partial.zip"
    with (
        zipfile.ZipFile(data_dir / "omniglot" / "images_background.zip") as src,
        zipfile.ZipFile(partial, "w") as dst,
    ):
        for info in src.infolist()[:2000]:
            dst.writestr(info, src.read(info))
    root = _with_background(tmp_path, data_dir, partial.read_bytes())
    with pytest.raises(CorruptDataError, match=r"expected 964 characters"):
        load_omniglot(root, protocol="lake", cache_dir=tmp_path / "cache", download=False)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"protocol must be one of"):
        load_omniglot(protocol="snell")
    with pytest.raises(ValueError, match=r"image_size must be an integer in \[8, 105\]"):
        load_omniglot(image_size=4)
    with pytest.raises(ValueError, match=r"dataset must be one of"):
        load("mnist")
