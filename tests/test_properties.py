"""Property-based tests (hypothesis) of the episode samplers and the dataset loaders.

Samplers: every valid ``(ways, shots, queries)`` gives a well-formed episode and every
invalid one a ``ValueError`` naming the argument. Loaders: small fake Omniglot archives
in the original layout are truncated, bit-flipped or given garbage members, and the
loader must either read them as before or raise ``CorruptDataError`` /
``DataNotFoundError`` naming the file, never an exception from inside zipfile or Pillow.
"""

from __future__ import annotations

import hashlib
import io
import re
import tempfile
import zipfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from metajax.core.episodes import pool_sampler, sample_batch, sample_episode
from metajax.datasets import omniglot as om
from metajax.datasets import tfds as mtfds
from metajax.datasets.base import CorruptDataError, DataNotFoundError
from metajax.datasets.sinusoid import sample_sinusoid, sinusoid_sampler
from metajax.datasets.uea import class_pool, class_sampler, pad_series

# Every new shape compiles the sampler's primitives (eagerly that is cheaper here than one
# jit per config), so these examples stay few and small.
FEW = settings(max_examples=8, deadline=None)
SOME = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------- samplers


def coded_pool(classes, examples, features=(1,)):
    """``pool[c, e, ...] = 1000 c + e``: every row tells which class and example it is."""
    codes = 1000 * np.arange(classes)[:, None] + np.arange(examples)[None, :]
    shape = (classes, examples, *features)
    return np.broadcast_to(codes.reshape(classes, examples, *[1] * len(features)), shape).astype(
        np.float32
    )


@st.composite
def valid_configs(draw):
    classes = draw(st.integers(1, 6))
    examples = draw(st.integers(2, 6))
    ways = draw(st.integers(1, classes))
    shots = draw(st.integers(1, examples - 1))
    queries = draw(st.integers(1, examples - shots))
    features = draw(st.sampled_from([(1,), (2, 3)]))
    return dict(classes=classes, examples=examples, features=features), dict(
        ways=ways, shots=shots, queries=queries
    )


def assert_well_formed(episode, *, ways, shots, queries, features):
    for split, k in ((episode.support, shots), (episode.query, queries)):
        assert split.x.shape == (ways * k, *features)
        assert split.y.shape == (ways * k,) and split.y.dtype == jnp.int32
        counts = np.bincount(np.asarray(split.y), minlength=ways)
        assert counts.tolist() == [k] * ways  # labels 0..ways-1, exactly k of each
        rows = np.asarray(split.x).reshape(ways * k, -1)
        assert (rows == rows[:, :1]).all()  # whole pool rows, not a mix of rows
    codes = {
        name: np.asarray(split.x).reshape(len(split.y), -1)[:, 0].astype(int)
        for name, split in (("support", episode.support), ("query", episode.query))
    }
    labels = {"support": np.asarray(episode.support.y), "query": np.asarray(episode.query.y)}
    pool_class = {}
    for name in codes:
        for code, label in zip(codes[name], labels[name], strict=True):
            # Every example of a label comes from one pool class.
            assert pool_class.setdefault(int(label), code // 1000) == code // 1000
    assert len(set(pool_class.values())) == ways  # the episode's classes are distinct
    every = np.concatenate([codes["support"], codes["query"]])
    assert len(set(every.tolist())) == len(every)  # support and query rows never repeat


@FEW
@given(config=valid_configs(), seed=st.integers(0, 2**32 - 1))
def test_sample_episode_is_well_formed_and_reproducible(config, seed):
    pool_args, ep_args = config
    pool = coded_pool(**pool_args)
    key = jax.random.key(seed)
    episode = sample_episode(key, pool, **ep_args)
    assert_well_formed(episode, features=pool_args["features"], **ep_args)
    jax.tree.map(np.testing.assert_array_equal, episode, sample_episode(key, pool, **ep_args))


@settings(max_examples=4, deadline=None)  # vmap compiles more kernels per shape
@given(config=valid_configs(), tasks=st.integers(1, 2), seed=st.integers(0, 2**32 - 1))
def test_pool_sampler_and_sample_batch_are_well_formed(config, tasks, seed):
    pool_args, ep_args = config
    sampler = pool_sampler(coded_pool(**pool_args), **ep_args)
    batch = jax.tree.map(np.asarray, sample_batch(sampler, jax.random.key(seed), tasks))
    assert batch.support.x.shape[0] == tasks
    for t in range(tasks):
        episode = jax.tree.map(lambda a, t=t: a[t], batch)
        assert_well_formed(episode, features=pool_args["features"], **ep_args)
    again = sample_batch(sampler, jax.random.key(seed), tasks)
    jax.tree.map(np.testing.assert_array_equal, batch, again)


NOT_COUNTS = st.one_of(
    st.integers(-3, 0), st.booleans(), st.floats(0.5, 4.0), st.sampled_from(["2", None, (2,)])
)


@st.composite
def invalid_configs(draw):
    """``(pool, kwargs, pattern)``: one thing wrong, and the message that must name it."""
    pool = coded_pool(4, 5)
    kwargs = dict(ways=2, shots=2, queries=2)
    kind = draw(st.sampled_from(["count", "ways", "examples", "rank", "empty", "dtype"]))
    if kind == "count":
        name = draw(st.sampled_from(sorted(kwargs)))
        kwargs[name] = draw(NOT_COUNTS)
        return pool, kwargs, rf"^{name} must be an integer >= 1, got"
    if kind == "ways":
        kwargs["ways"] = draw(st.integers(5, 50))
        return pool, kwargs, rf"^ways={kwargs['ways']} is larger than the 4 classes"
    if kind == "examples":
        kwargs["shots"] = draw(st.integers(1, 6))
        kwargs["queries"] = draw(st.integers(max(1, 6 - kwargs["shots"]), 8))
        return pool, kwargs, r"^shots \+ queries = .* larger than the 5 examples"
    if kind == "rank":
        shape = draw(st.sampled_from([(), (3,), (7,)]))
        return np.zeros(shape, np.float32), kwargs, r"^pool must have rank >= 2"
    if kind == "empty":
        shape = draw(st.sampled_from([(0, 5, 1), (4, 0, 1), (0, 0), (0, 3)]))
        return np.zeros(shape, np.float32), kwargs, r"^pool must hold at least one class"
    return np.full((4, 5, 1), "a"), kwargs, r"^pool must hold numbers"


@SOME
@given(case=invalid_configs())
def test_invalid_configs_name_the_argument(case):
    pool, kwargs, pattern = case
    with pytest.raises(ValueError, match=pattern):
        sample_episode(jax.random.key(0), pool, **kwargs)
    with pytest.raises(ValueError, match=pattern):
        pool_sampler(pool, **kwargs)
    if pool.dtype != np.float32:
        return  # jit cannot trace a string array; the eager checks above cover it
    # The checks are static: under jit they fire while tracing, before anything runs.
    with pytest.raises(ValueError, match=pattern):
        jax.jit(lambda k, p: sample_episode(k, p, **kwargs))(jax.random.key(0), pool)


@FEW
@given(shots=st.integers(1, 6), queries=st.integers(1, 6), seed=st.integers(0, 2**32 - 1))
def test_sinusoid_tasks_are_well_formed(shots, queries, seed):
    episode = sample_sinusoid(jax.random.key(seed), shots=shots, queries=queries)
    assert episode.support.x.shape == episode.support.y.shape == (shots, 1)
    assert episode.query.x.shape == episode.query.y.shape == (queries, 1)
    x = np.concatenate([episode.support.x, episode.query.x])
    assert (np.abs(x) <= 5).all() and np.isfinite(np.asarray(episode.query.y)).all()
    sampler = sinusoid_sampler(shots=shots, queries=queries)
    again = sampler.sample(jax.random.key(seed), sampler.data)
    jax.tree.map(np.testing.assert_array_equal, episode, again)


@SOME
@given(
    name=st.sampled_from(["shots", "queries"]),
    value=NOT_COUNTS,
    bad_range=st.sampled_from(
        [None, ("amplitude", (5.0, 0.1)), ("phase", (1.0,)), ("x_range", (0.0, float("nan")))]
    ),
)
def test_sinusoid_invalid_arguments_name_themselves(name, value, bad_range):
    kwargs = dict(shots=3, queries=3)
    if bad_range is None:
        kwargs[name] = value
        pattern = rf"^{name} must be an integer >= 1"
    else:
        kwargs[bad_range[0]] = bad_range[1]
        pattern = rf"^{bad_range[0]} must be \(low, high\)"
    with pytest.raises(ValueError, match=pattern):
        sample_sinusoid(jax.random.key(0), **kwargs)
    with pytest.raises(ValueError, match=pattern):
        sinusoid_sampler(**kwargs)


# ------------------------------------------------------------------------ UEA helpers


@SOME
@given(
    shapes=st.lists(st.tuples(st.integers(1, 3), st.integers(1, 6)), min_size=1, max_size=4),
    ragged=st.booleans(),
)
def test_pad_series_pads_or_names_the_bad_series(shapes, ragged):
    series = [np.arange(c * n, dtype=float).reshape(c, n) + 1 for c, n in shapes]
    if ragged:
        # A series whose channels have different lengths, as nested lists.
        series[-1] = [list(range(shapes[-1][1])), list(range(shapes[-1][1] + 1))]
        with pytest.raises(ValueError, match=rf"^series\[{len(series) - 1}\] must be"):
            pad_series(series)
        return
    channels = {c for c, _ in shapes}
    if len(channels) > 1:
        bad = next(i for i, (c, _) in enumerate(shapes) if c != shapes[0][0])
        with pytest.raises(ValueError, match=rf"^series\[{bad}\] has \d+ channels"):
            pad_series(series)
        return
    values, mask = pad_series(series)
    longest = max(n for _, n in shapes)
    assert values.shape == (len(shapes), longest, shapes[0][0]) and mask.shape[1] == longest
    assert mask.sum(1).tolist() == [n for _, n in shapes]
    assert (values[mask == 0] == 0).all()


@SOME
@given(
    n=st.integers(1, 12),
    classes=st.integers(1, 4),
    data=st.data(),
    fault=st.sampled_from([None, "label", "length", "classes"]),
)
def test_class_pool_groups_or_names_the_bad_argument(n, classes, data, fault):
    y = np.asarray(data.draw(st.lists(st.integers(0, classes - 1), min_size=n, max_size=n)))
    x = np.arange(n, dtype=np.float32)[:, None]
    if fault == "label":
        y[data.draw(st.integers(0, n - 1))] = data.draw(st.sampled_from([-1, classes, 99]))
        pattern = r"^y must hold labels in \[0, "
    elif fault == "length":
        x = x[:-1]
        pattern = r"^x and y disagree on n"
    elif fault == "classes":
        classes = data.draw(st.sampled_from([0, -2, True, 2.0]))
        pattern = r"^classes must be an integer >= 1"
    elif set(y.tolist()) != set(range(classes)):
        pattern = r"^classes \[[\d, ]+\] have no example"
    else:
        pool = class_pool(x, y, classes=classes)
        assert pool.shape == (classes, np.bincount(y).min(), 1)
        for c in range(classes):  # each row of class c is a distinct example of class c
            rows = pool[c, :, 0].astype(int)
            assert (y[rows] == c).all() and len(set(rows.tolist())) == len(rows)
        return
    with pytest.raises(ValueError, match=pattern):
        class_pool(x, y, classes=classes)


@SOME
@given(shots=st.one_of(st.integers(-1, 6), NOT_COUNTS), queries=st.integers(1, 6))
def test_class_sampler_validates_like_the_pool_sampler(shots, queries):
    pool = coded_pool(3, 6)
    valid = isinstance(shots, int) and not isinstance(shots, bool) and shots >= 1
    if not valid:
        with pytest.raises(ValueError, match=r"^shots must be an integer >= 1"):
            class_sampler(pool, shots=shots, queries=queries)
    elif shots + queries > 6:
        with pytest.raises(ValueError, match=r"^shots \+ queries"):
            class_sampler(pool, shots=shots, queries=queries)
    else:
        sampler = class_sampler(pool, shots=shots, queries=queries)
        assert sampler.sample(jax.random.key(0), sampler.data).query.x.shape == (3 * queries, 1)


# ---------------------------------------------------------------------- Omniglot loader

# Two background characters and one evaluation character, 20 drawers each, in the
# original layout images_*/<alphabet>/characterNN/<id>_<drawer>.png.
FAKE_CHARACTERS = {
    "images_background": [("Alpha", 1, 1), ("Alpha", 2, 2)],
    "images_evaluation": [("Beta", 1, 3)],
}
FAKE_SPLITS = {"train": "Alpha/character01", "val": "Alpha/character02", "test": "Beta/character01"}
SIZE = 8  # image_size for the loader; the smallest it accepts
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png(seed: int) -> bytes:
    ink = np.random.default_rng(seed).random((12, 12)) > 0.3
    buffer = io.BytesIO()
    Image.fromarray(ink.astype(np.uint8) * 255).convert("1").save(buffer, "PNG")
    return buffer.getvalue()


def _members(archive: str) -> dict[str, bytes]:
    return {
        f"{archive}/{alphabet}/character{c:02d}/{gid:04d}_{d:02d}.png": _png(100 * gid + d)
        for alphabet, c, gid in FAKE_CHARACTERS[archive]
        for d in range(1, om.DRAWERS + 1)
    }


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, payload in members.items():
            z.writestr(name, payload)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def fake():
    """The fake archives' bytes and split lists, with the loaders told their sizes."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            om,
            "ARCHIVES",
            {a: (len(chars), "0" * 64) for a, chars in FAKE_CHARACTERS.items()},
        )
        members = {a: _members(a) for a in FAKE_CHARACTERS}
        files = {f"{a}.zip": _zip(m) for a, m in members.items()}
        for split, character in FAKE_SPLITS.items():
            lines = "".join(f"{character}/rot{d:03d}\n" for d in om.ROTATIONS)
            files[f"vinyals_splits/{split}.txt"] = lines.encode()
        with tempfile.TemporaryDirectory() as tmp:
            clean = _load(_write(Path(tmp), files))
        yield dict(files=files, members=members, clean=clean)


def _write(base: Path, files: dict[str, bytes]) -> Path:
    root = base / "data"
    (root / "omniglot" / "vinyals_splits").mkdir(parents=True)
    for name, payload in files.items():
        (root / "omniglot" / name).write_bytes(payload)
    return root


def _load(root: Path, cache: Path | None = None):
    cache = cache or root.parent / "cache"
    return om.load_omniglot(root, image_size=SIZE, cache_dir=cache, download=False)


def _assert_same(dataset, clean):
    assert dataset.class_names == clean.class_names
    for split in clean.splits:
        np.testing.assert_array_equal(dataset.pool(split), clean.pool(split))


def _load_or_clear_error(files, clean, culprit: str, *, must_fail: bool = False):
    """Loads ``files``: the clean result, or a CorruptDataError naming ``culprit``."""
    with tempfile.TemporaryDirectory() as tmp:
        root = _write(Path(tmp), files)
        try:
            dataset = _load(root)
        except CorruptDataError as err:
            assert re.search(re.escape(culprit), str(err)), str(err)
            return
    assert not must_fail, f"{culprit} was read although it is corrupt"
    _assert_same(dataset, clean)


def test_fake_archives_load_like_the_real_layout(fake):
    clean = fake["clean"]
    assert {s: clean.pool(s).shape for s in clean.splits} == {
        s: (4, om.DRAWERS, SIZE, SIZE, 1) for s in om.VINYALS_SPLITS
    }
    assert clean.class_names["test"][0] == "Beta/character01/rot000"


ARCHIVE_NAMES = st.sampled_from(sorted(f"{a}.zip" for a in FAKE_CHARACTERS))


@SOME
@given(name=ARCHIVE_NAMES, cut=st.floats(0.0, 1.0, exclude_max=True))
def test_truncated_archive_is_a_clear_error(fake, name, cut):
    files = dict(fake["files"])
    files[name] = files[name][: int(cut * len(files[name]))]
    _load_or_clear_error(files, fake["clean"], name, must_fail=True)


@SOME
@given(
    name=ARCHIVE_NAMES,
    flips=st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), min_size=1, max_size=3),
)
def test_flipped_bytes_read_as_before_or_clear_error(fake, name, flips):
    data = bytearray(fake["files"][name])
    for where, mask in flips:
        data[min(int(where * len(data)), len(data) - 1)] ^= mask
    files = dict(fake["files"], **{name: bytes(data)})
    _load_or_clear_error(files, fake["clean"], name)


@SOME
@given(archive=st.sampled_from(sorted(FAKE_CHARACTERS)), data=st.data())
def test_garbage_member_is_a_clear_error(fake, archive, data):
    members = dict(fake["members"][archive])
    victim = data.draw(st.sampled_from(sorted(members)))
    png = members[victim]
    kind = data.draw(st.sampled_from(["garbage", "signature+garbage", "cut"]))
    if kind == "garbage":
        members[victim] = data.draw(st.binary(max_size=200).filter(lambda b: b[:1] != b"\x89"))
    elif kind == "signature+garbage":
        members[victim] = PNG_SIGNATURE + data.draw(st.binary(max_size=200))
    else:
        members[victim] = png[: data.draw(st.integers(0, len(png) - 1))]
    files = dict(fake["files"], **{f"{archive}.zip": _zip(members)})
    # A PNG cut only in its trailer can still decode to the same pixels.
    _load_or_clear_error(files, fake["clean"], f"{archive}.zip", must_fail=kind != "cut")


@SOME
@given(
    missing=st.sets(
        st.sampled_from(
            [
                "images_background.zip",
                "images_evaluation.zip",
                "vinyals_splits/train.txt",
                "vinyals_splits/val.txt",
                "vinyals_splits/test.txt",
            ]
        ),
        min_size=1,
    )
)
def test_missing_files_are_named(fake, missing):
    files = {k: v for k, v in fake["files"].items() if k not in missing}
    order = [*(f"{a}.zip" for a in om.ARCHIVES), *(f"vinyals_splits/{s}.txt" for s in FAKE_SPLITS)]
    first = next(name for name in order if name in missing)
    with tempfile.TemporaryDirectory() as tmp:
        root = _write(Path(tmp), files)
        with pytest.raises(DataNotFoundError, match=re.escape(Path(first).name)):
            _load(root)


@SOME
@given(archive=st.sampled_from(sorted(FAKE_CHARACTERS)), data=st.data())
def test_damaged_cache_is_rebuilt(fake, archive, data):
    with tempfile.TemporaryDirectory() as tmp:
        root = _write(Path(tmp), fake["files"])
        cache = Path(tmp) / "cache"
        _load(root, cache)
        (cached,) = (cache / "omniglot").glob(f"{archive}_{SIZE}px_*.npz")
        payload = bytearray(cached.read_bytes())
        kind = data.draw(st.sampled_from(["cut", "flip", "garbage"]))
        if kind == "cut":
            payload = payload[: data.draw(st.integers(0, len(payload) - 1))]
        elif kind == "flip":
            at = data.draw(st.integers(0, len(payload) - 1))
            payload[at] ^= data.draw(st.integers(1, 255))
        else:
            payload = bytearray(data.draw(st.binary(max_size=300)))
        cached.write_bytes(bytes(payload))
        _assert_same(_load(root, cache), fake["clean"])
        # The rebuilt cache is whole again: the next load reads it as it is.
        _assert_same(_load(root, cache), fake["clean"])


# Lines that are not Alphabet/characterNN/rotDDD with DDD a quarter turn.
MALFORMED_LINES = st.one_of(
    st.text(
        st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=30
    ).filter(lambda s: s.strip() and not re.fullmatch(r"\S+/character\d+/rot\d{3}", s.strip())),
    st.sampled_from(
        ["Alpha/character01/rot045", "Alpha/character01/rot360", "Alpha/char01/rot000"]
    ),
)
UNKNOWN_LINES = st.sampled_from(["Gamma/character01/rot000", "Alpha/character09/rot090"])


@SOME
@given(split=st.sampled_from(sorted(FAKE_SPLITS)), data=st.data())
def test_bad_vinyals_split_files_name_the_file(fake, split, data):
    name = f"vinyals_splits/{split}.txt"
    lines = fake["files"][name].decode().splitlines()
    other = next(s for s in sorted(FAKE_SPLITS) if s != split)
    kind = data.draw(st.sampled_from(["malformed", "unknown", "twice", "other split", "binary"]))
    if kind == "malformed":
        bad = data.draw(MALFORMED_LINES)
    elif kind == "unknown":
        bad = data.draw(UNKNOWN_LINES)
    elif kind == "twice":
        bad = data.draw(st.sampled_from(lines))
    elif kind == "other split":
        bad = f"{FAKE_SPLITS[other]}/rot000"
    if kind == "binary":
        payload = data.draw(st.binary(min_size=1, max_size=50).filter(_not_utf8))
    else:
        lines.insert(data.draw(st.integers(0, len(lines))), bad)
        payload = "\n".join(lines).encode()
    files = dict(fake["files"], **{name: payload})
    # A character in two splits is reported with both split lists named.
    _load_or_clear_error(files, fake["clean"], f"{split}.txt", must_fail=True)


def _not_utf8(payload: bytes) -> bool:
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def test_empty_vinyals_split_file_is_a_clear_error(fake):
    files = dict(fake["files"], **{"vinyals_splits/val.txt": b"\n \n"})
    _load_or_clear_error(files, fake["clean"], "val.txt", must_fail=True)


# ------------------------------------------------- tfds.py's readers of the local archives


@pytest.fixture(scope="module")
def fake_tfds(fake):
    """tfds.py's Omniglot constants, set to the fake archives' contents."""
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        mp.setattr(mtfds, "_OMNIGLOT_CLASSES", 3)
        mp.setattr(mtfds, "_OMNIGLOT_ALPHABETS", 2)
        mp.setattr(mtfds, "_OMNIGLOT_PIXEL_SHA256", {})
        path = Path(tmp) / "images_background.zip"
        path.write_bytes(fake["files"][path.name])
        with zipfile.ZipFile(path) as z:
            members = mtfds._png_members(z)
            h = hashlib.sha256()
            for info in members:
                with Image.open(io.BytesIO(z.read(info))) as im:
                    pixels = np.asarray(im.convert("L"))
                rel = info.filename.partition("/")[2]
                h.update(rel.encode() + b"\0" + np.packbits(pixels > 127).tobytes())
        mp.setitem(
            mtfds._OMNIGLOT_PIXEL_SHA256,
            path.name,
            ("images_background", len(members), h.hexdigest()),
        )
        # The fake pixels are 12x12; the check of the original's 105x105 is not under test.
        mp.setattr(mtfds, "_OMNIGLOT_IMAGE_SIZE", (12, 12))
        mtfds._verify_omniglot_pixels(path)  # the clean fake passes
        names = mtfds._omniglot_names([path, _beside(path, fake, "images_evaluation.zip")])
        yield names


def _beside(path: Path, fake, name: str) -> Path:
    other = path.parent / name
    other.write_bytes(fake["files"][name])
    return other


@SOME
@given(
    cut=st.one_of(st.none(), st.floats(0.0, 1.0, exclude_max=True)),
    flips=st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), max_size=3),
)
def test_tfds_archive_readers_give_clear_errors(fake, fake_tfds, cut, flips):
    data = bytearray(fake["files"]["images_background.zip"])
    if cut is not None:
        data = data[: int(cut * len(data))]
    for where, mask in flips:
        if data:
            data[min(int(where * len(data)), len(data) - 1)] ^= mask
    assume(cut is not None or flips)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "images_background.zip"
        path.write_bytes(bytes(data))
        evaluation = _beside(path, fake, "images_evaluation.zip")
        for read in (
            lambda: mtfds._verify_omniglot_pixels(path),
            lambda: mtfds._omniglot_names([path, evaluation]),
        ):
            try:
                result = read()
            except CorruptDataError as err:
                assert "images_background.zip" in str(err), str(err)
                continue
            assert cut is None  # a truncated archive never reads
            assert result is None or result == fake_tfds
