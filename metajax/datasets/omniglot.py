"""Omniglot (Lake, Salakhutdinov & Tenenbaum 2015) from its original archives.

Two protocols:

* ``"lake"``: meta-train on the 964 characters of the 30 background alphabets,
  meta-test on the 659 characters of the 20 evaluation alphabets.
* ``"vinyals"``: the split of Vinyals et al. (2016) used by Matching Networks,
  Prototypical Networks, MAML and iMAML: 1028 / 172 / 423 characters for
  train / val / test, each at rotations 0, 90, 180 and 270 degrees as separate
  classes (4112 / 688 / 1692 classes).

Images are 105x105 binary strokes, resized to ``image_size`` with Lanczos
filtering and inverted so that ink is 1.0 and background 0.0. Every class has its
20 drawers as examples, so pools are ``[classes, 20, size, size, 1]`` float32.

The first load decodes the archives (about 30k PNGs) and caches one uint8 array
per archive under the cache directory, keyed by the archive's sha256; later loads
read the cache in well under a second. The cache never goes next to the data,
which is often a read-only shared folder.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from metajax.core.io import write_atomic
from metajax.datasets.base import (
    ARCHIVE_ERRORS,
    CorruptDataError,
    DataNotFoundError,
    FewShotDataset,
    resolve_cache_dir,
    resolve_data_dir,
)

PROTOCOLS = ("vinyals", "lake")
DRAWERS = 20
ARCHIVE_URL = "https://github.com/brendenlake/omniglot/raw/master/python/"
SPLITS_URL = "https://raw.githubusercontent.com/jakesnell/prototypical-networks/master/data/omniglot/splits/vinyals/"

# name -> (characters, sha256 of the original archive as published and registered by TFDS).
# Re-packed copies hold the same pixels with other bytes; they are accepted by content
# (every character present with its 20 drawers, every CRC intact), not by checksum.
ARCHIVES = {
    "images_background": (964, "ad41ab679c8b5d90b271ef46be6987cc81211774a695c29dcc5367b2b26ee640"),
    "images_evaluation": (659, "1f61a8f3366785b057fc117d9228e78a16e3d976c8953b2a10fcc74cf0609cee"),
}
VINYALS_SPLITS = ("train", "val", "test")
ROTATIONS = (0, 90, 180, 270)
_DRAWING = re.compile(
    r"^(?:.*/)?images_(?:background|evaluation)/([^/]+)/(character\d+)/\d+_(\d+)\.png$"
)
_DOWNLOAD_TIMEOUT_S = 30


def load_omniglot(
    data_dir: str | os.PathLike | None = None,
    *,
    protocol: str = "vinyals",
    image_size: int = 28,
    cache_dir: str | os.PathLike | None = None,
    download: bool = True,
) -> FewShotDataset:
    """Loads Omniglot as class pools under the ``"vinyals"`` or ``"lake"`` protocol.

    Args:
      data_dir: a folder holding ``omniglot/images_background.zip`` and
        ``omniglot/images_evaluation.zip`` (or those zips, or their extracted
        ``images_background/`` and ``images_evaluation/`` folders, directly). The
        Vinyals split lists are read from ``omniglot/vinyals_splits/``. Defaults
        to ``$METAJAX_DATA_DIR``.
      protocol: ``"vinyals"`` (train/val/test, rotations as classes) or ``"lake"``
        (train = background alphabets, test = evaluation alphabets).
      image_size: side of the square images after resizing; 28 in the literature.
      cache_dir: where decoded arrays are cached; defaults to ``$METAJAX_CACHE_DIR``
        or ``~/.cache/metajax``.
      download: fetch missing archives from their public home (verified by
        sha256) into the cache directory.

    Returns:
      A :class:`FewShotDataset` whose pools are ``[classes, 20, size, size, 1]``
      float32 in ``[0, 1]`` (ink = 1).

    Raises:
      DataNotFoundError: the archives are neither found nor downloadable.
      CorruptDataError: an archive is truncated, fails its CRC, or lacks characters.

    Example:
      >>> ds = load_omniglot("../shared/data", protocol="lake")  # doctest: +SKIP
      >>> ds.pool("train").shape  # doctest: +SKIP
      (964, 20, 28, 28, 1)
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    if not isinstance(image_size, int) or not 8 <= image_size <= 105:
        raise ValueError(f"image_size must be an integer in [8, 105], got {image_size!r}")
    root = _omniglot_root(resolve_data_dir(data_dir))
    cache = resolve_cache_dir(cache_dir) / "omniglot"

    arrays, names = {}, {}
    for archive in ARCHIVES:
        source = _find_archive(root, archive, cache, download)
        arrays[archive], names[archive] = _decoded(source, archive, image_size, cache)

    if protocol == "lake":
        pools = {"train": arrays["images_background"], "test": arrays["images_evaluation"]}
        class_names = {
            "train": tuple(names["images_background"]),
            "test": tuple(names["images_evaluation"]),
        }
        return FewShotDataset(
            name="omniglot-lake",
            pools={k: _to_float(v) for k, v in pools.items()},
            class_names=class_names,
        )

    index = {n: (a, i) for a in ARCHIVES for i, n in enumerate(names[a])}
    pools, class_names = {}, {}
    listed_in: dict[str, Path] = {}
    for split in VINYALS_SPLITS:
        path, entries = _vinyals_split(root, split, cache, download)
        images = np.empty((len(entries), DRAWERS, image_size, image_size), np.uint8)
        for row, (character, degrees) in enumerate(entries):
            if character not in index:
                raise CorruptDataError(
                    f"{path}: Vinyals split {split!r} names {character!r}, which is in neither "
                    "archive"
                )
            # A character in two splits would leak meta-test classes into meta-training.
            if listed_in.setdefault(character, path) != path:
                raise CorruptDataError(
                    f"{path}: {character!r} is also listed in {listed_in[character]}; "
                    "the Vinyals splits must not share a character"
                )
            archive, i = index[character]
            # rotDDD in the split lists means PIL's counter-clockwise rotation, as np.rot90.
            images[row] = np.rot90(arrays[archive][i], k=degrees // 90, axes=(1, 2))
        pools[split] = _to_float(images)
        class_names[split] = tuple(f"{c}/rot{d:03d}" for c, d in entries)
    return FewShotDataset(name="omniglot-vinyals", pools=pools, class_names=class_names)


def _to_float(images: np.ndarray) -> np.ndarray:
    return (images.astype(np.float32) / 255.0)[..., None]


def _omniglot_root(data_dir: Path | None) -> Path | None:
    if data_dir is None:
        return None
    nested = data_dir / "omniglot"
    return nested if nested.is_dir() else data_dir


def _find_archive(root: Path | None, archive: str, cache: Path, download: bool) -> Path:
    candidates = []
    if root is not None:
        candidates += [root / f"{archive}.zip", root / archive]
    candidates.append(cache / f"{archive}.zip")
    for path in candidates:
        if path.exists():
            return path
    if download:
        try:
            return _download(
                ARCHIVE_URL + f"{archive}.zip", cache / f"{archive}.zip", ARCHIVES[archive][1]
            )
        except OSError as err:
            reason = f"downloading {ARCHIVE_URL}{archive}.zip failed ({err})"
    else:
        reason = "download=False"
    raise DataNotFoundError(
        f"Omniglot archive {archive}.zip not found; looked for "
        f"{', '.join(str(c) for c in candidates)} and {reason}. Point data_dir "
        f"(--data-dir or $METAJAX_DATA_DIR) at a folder holding omniglot/images_background.zip "
        "and omniglot/images_evaluation.zip (or the extracted folders)."
    )


def _vinyals_split(
    root: Path | None, split: str, cache: Path, download: bool
) -> tuple[Path, list[tuple[str, int]]]:
    """The path of a split list and its ``(alphabet/characterNN, degrees)`` entries."""
    candidates = [cache / "vinyals_splits" / f"{split}.txt"]
    if root is not None:
        candidates.insert(0, root / "vinyals_splits" / f"{split}.txt")
    path = next((c for c in candidates if c.exists()), None)
    if path is None:
        if not download:
            raise DataNotFoundError(
                f"Vinyals split list {split}.txt not found in {', '.join(map(str, candidates))} "
                "and download=False; point data_dir at a folder with omniglot/vinyals_splits/."
            )
        try:
            path = _download(SPLITS_URL + f"{split}.txt", candidates[-1], None)
        except OSError as err:
            raise DataNotFoundError(
                f"Vinyals split list {split}.txt not found in {', '.join(map(str, candidates))} "
                f"and downloading it failed ({err})"
            ) from err
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise CorruptDataError(f"{path} is not a readable text file ({err})") from err
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        match = re.fullmatch(r"([^/\s]+/character\d+)/rot(\d{3})", line.strip())
        if match is None or int(match[2]) not in ROTATIONS:
            raise CorruptDataError(
                f"{path}, line {number}: expected Alphabet/characterNN/rotDDD with DDD in "
                f"000, 090, 180, 270, got {line[:80]!r}"
            )
        entry = (match[1], int(match[2]))
        if entry in entries:
            raise CorruptDataError(f"{path}, line {number}: {line.strip()!r} is listed twice")
        entries.append(entry)
    if not entries:
        raise CorruptDataError(f"{path} lists no class")
    return path, entries


def _download(url: str, dest: Path, sha256: str | None) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
        payload = response.read()
    if sha256 is not None and hashlib.sha256(payload).hexdigest() != sha256:
        raise CorruptDataError(f"{url}: sha256 does not match the published archive")
    write_atomic(dest, payload)
    return dest


def _fingerprint(source: Path) -> str:
    if source.is_file():
        h = hashlib.sha256()
        with open(source, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()[:16]
    listing = sorted(
        f"{p.relative_to(source)}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
        for p in source.rglob("*.png")
    )
    return hashlib.sha256("\n".join(listing).encode()).hexdigest()[:16]


def _digest(images: np.ndarray, names: list[str]) -> str:
    h = hashlib.sha256(np.ascontiguousarray(images).tobytes())
    h.update("\n".join(names).encode())
    return h.hexdigest()


def _read_cache(cached: Path, archive: str, image_size: int):
    """The cached ``(images, names)``, or ``None`` when the cache is absent or damaged.

    A flipped byte in an ``.npy`` header can still parse, as another dtype or shape, and
    then reads a prefix of the data past zipfile's CRC check; the stored digest of the
    content catches that.
    """
    if not cached.is_file():
        return None
    try:
        with np.load(cached) as z:
            images, names, digest = z["images"], [str(n) for n in z["names"]], str(z["digest"])
    except ARCHIVE_ERRORS:
        return None
    shape = (ARCHIVES[archive][0], DRAWERS, image_size, image_size)
    if images.dtype != np.uint8 or images.shape != shape or _digest(images, names) != digest:
        return None
    return images, names


def _decoded(source: Path, archive: str, image_size: int, cache: Path):
    cached = cache / f"{archive}_{image_size}px_{_fingerprint(source)}.npz"
    hit = _read_cache(cached, archive, image_size)
    if hit is not None:
        return hit
    # A damaged cache is rebuilt from the archive: it holds nothing the archive does not.
    images, names = _decode(source, archive, image_size)
    buffer = io.BytesIO()
    np.savez(
        buffer, images=images, names=np.asarray(names), digest=np.asarray(_digest(images, names))
    )
    cache.mkdir(parents=True, exist_ok=True)
    write_atomic(cached, buffer.getvalue())
    return images, names


def _drawings(source: Path) -> Iterator[tuple[str, bytes]]:
    if source.is_dir():
        for path in sorted(source.rglob("*.png")):
            yield path.relative_to(source.parent).as_posix(), path.read_bytes()
        return
    with zipfile.ZipFile(source) as z:
        for info in z.infolist():
            if info.filename.endswith(".png"):
                yield info.filename, z.read(info)


def _decode(source: Path, archive: str, image_size: int):
    expected_chars = ARCHIVES[archive][0]
    drawings: dict[str, dict[int, np.ndarray]] = {}
    try:
        for filename, payload in _drawings(source):
            match = _DRAWING.match(filename)
            if match is None:
                continue
            character = f"{match[1]}/{match[2]}"
            # PNG only: garbage bytes can pass for a headerless format such as TGA.
            with Image.open(io.BytesIO(payload), formats=("PNG",)) as img:
                small = img.convert("L").resize((image_size, image_size), Image.Resampling.LANCZOS)
            drawings.setdefault(character, {})[int(match[3])] = 255 - np.asarray(small, np.uint8)
    except (*ARCHIVE_ERRORS, Image.DecompressionBombError) as err:
        raise CorruptDataError(
            f"{source} is not a readable Omniglot archive ({type(err).__name__}: {err}); "
            "delete it and download it again"
        ) from err
    incomplete = [c for c, d in drawings.items() if sorted(d) != list(range(1, DRAWERS + 1))]
    if len(drawings) != expected_chars or incomplete:
        raise CorruptDataError(
            f"{source}: expected {expected_chars} characters with drawers 1..{DRAWERS}, found "
            f"{len(drawings)} characters ({len(incomplete)} incomplete, e.g. {incomplete[:3]})"
        )
    names = sorted(drawings)
    images = np.stack([np.stack([drawings[c][d] for d in range(1, DRAWERS + 1)]) for c in names])
    return images, names
