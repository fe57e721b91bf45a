"""Image corpora for the image families: scikit-learn's digits, a folder of images, ``hf:``.

Every corpus becomes grayscale images scaled to [0, 1], flattened to vectors of ``h * w``
pixels, with integer class labels when the corpus has classes:

* ``digits`` (the default): scikit-learn's 1,797 real 8x8 handwritten digits (UCI optdigits
  test set, shipped with scikit-learn: offline), 17 grey levels 0..16 divided by 16, classes
  0-9. ``image_size`` does not apply (they stay 8x8).
* ``PATH/``: a folder in the ImageFolder layout: one subfolder per class (``PATH/cat/1.png``),
  or the images directly in ``PATH`` (no labels). PNG or JPEG files (read with Pillow, which
  ships with matplotlib), converted to grayscale (``L``) and resized to ``image_size`` x
  ``image_size`` pixels (default 16; aspect ratios are not kept) with Lanczos filtering.
  Folders of mixed sizes are resized all the same, and a note says so (stderr and the
  manifest). Hidden files (``.name``) are skipped; any other file that is not a readable PNG
  or JPEG stops the run with one sentence naming it.
* ``hf:NAME[:CONFIG[:SPLIT]]``: a Hugging Face dataset with an image column (extra ``hf``);
  its label column (a ``ClassLabel``, or ``label``/``labels``) when it has one. Offline and
  not cached: one sentence.

Splits are by a stable hash of each image's pixels (after conversion) and ``split_seed``:
``u = blake2b(seed, pixels) / 2**64 < test_share`` -> test, else train; identical images share
a split, so a duplicate can never leak from train into test, and the split of an image does not
depend on corpus order or size.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
DEFAULT_FOLDER_SIZE = 16
_SCALE = 2.0 ** -64


@dataclass
class ImageData:
    """A split image corpus.

    train, test : (N, h*w) and (M, h*w) float32 pixels in [0, 1].
    train_labels, test_labels : (N,) and (M,) int64 class indices, or None (no labels).
    shape : (h, w). classes : class names (empty without labels).
    record : JSON-able provenance (source, sizes, sha256, split, notes) for the manifest.
    """

    train: np.ndarray
    test: np.ndarray
    train_labels: np.ndarray | None
    test_labels: np.ndarray | None
    shape: tuple[int, int]
    classes: list[str]
    record: dict = field(default_factory=dict)

    @property
    def labeled(self) -> bool:
        return self.train_labels is not None

    @property
    def dim(self) -> int:
        return self.shape[0] * self.shape[1]


def split_by_hash(pixels: np.ndarray, test_share: float, seed: int) -> np.ndarray:
    """(N,) bool, True for the test split: a stable hash of each image's uint8 pixels."""
    as_bytes = np.clip(np.round(pixels * 255), 0, 255).astype(np.uint8)
    prefix = f"{seed}\0".encode()
    u = np.array([int.from_bytes(hashlib.blake2b(prefix + row.tobytes(), digest_size=8).digest(),
                                 "little") * _SCALE for row in as_bytes])
    return u < test_share


def _finish(pixels: np.ndarray, labels: np.ndarray | None, classes: list[str], shape: tuple[int, int],
            test_share: float, seed: int, where: str, record: dict) -> ImageData:
    test = split_by_hash(pixels, test_share, seed)
    if test.all() or not test.any():
        raise UserError(f"{where}: its {len(pixels)} images give an empty "
                        f"{'train' if test.all() else 'test'} split at test_share = {test_share}; "
                        f"use more images or another test_share")
    if labels is not None and len(np.unique(labels[~test])) < 2:
        raise UserError(f"{where}: its train split holds a single class; the class metrics and "
                        f"the classifier need at least two classes")
    digest = hashlib.sha256(np.ascontiguousarray(pixels).tobytes())
    if labels is not None:
        digest.update(labels.astype(np.int64).tobytes())
    record = {**record, "images": int(len(pixels)), "shape": list(shape), "classes": classes,
              "sha256": digest.hexdigest(),
              "split": {"method": "hash", "seed": seed, "test_share": test_share,
                        "train": int((~test).sum()), "test": int(test.sum())}}
    return ImageData(pixels[~test], pixels[test], None if labels is None else labels[~test],
                     None if labels is None else labels[test], shape, classes, record)


def _digits() -> tuple[np.ndarray, np.ndarray, list[str]]:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise UserError("the digits corpus ships with scikit-learn; install modelcollapse[images]") from None
    d = load_digits()
    return (d.data / 16.0).astype(np.float32), d.target.astype(np.int64), [str(c) for c in range(10)]


def _read_image(path: Path, size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """(size*size,) float32 grayscale pixels of one file, and its original (w, h)."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as im:
            if im.format not in ("PNG", "JPEG"):
                raise UserError(f"{path} is a {im.format} image; only PNG and JPEG are read")
            original = im.size
            gray = im.convert("L")
            if gray.size != (size, size):
                gray = gray.resize((size, size), Image.Resampling.LANCZOS)
            return np.asarray(gray, dtype=np.float32).ravel() / 255.0, original
    except UserError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise UserError(f"{path} is not a readable PNG or JPEG image ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _folder(root: Path, size: int) -> tuple[np.ndarray, np.ndarray | None, list[str], list[str]]:
    """Pixels, labels (None without class folders), class names and notes of an ImageFolder."""
    entries = _visible(root)
    subdirs = [p for p in entries if p.is_dir()]
    files = [p for p in entries if p.is_file()]
    if subdirs and files:
        raise UserError(f"{root} mixes class folders and loose files (first: {files[0].name}); "
                        f"put every image in a class folder, or use no class folders at all")
    if len(subdirs) == 1:
        raise UserError(f"{root} holds a single class folder ('{subdirs[0].name}'): class labels "
                        f"need at least two; put the images directly in {root} for an unlabeled run")
    groups = [(d.name, [p for p in _visible(d)]) for d in subdirs] if subdirs else [("", files)]
    pixels, labels, sizes = [], [], set()
    for label, (name, paths) in enumerate(groups):
        for p in paths:
            if p.is_dir():
                raise UserError(f"{p} is a folder inside class folder '{name}'; the ImageFolder "
                                f"layout has one level of class folders")
            if p.suffix.lower() not in IMAGE_SUFFIXES:
                raise UserError(f"{p} is not an image (expected .png, .jpg or .jpeg)")
            x, original = _read_image(p, size)
            pixels.append(x)
            labels.append(label)
            sizes.add(original)
    if not pixels:
        raise UserError(f"{root} holds no images (expected .png, .jpg or .jpeg files, "
                        f"optionally in one folder per class)")
    notes = []
    if len(sizes) > 1:
        ws, hs = sorted(w for w, _ in sizes), sorted(h for _, h in sizes)
        notes.append(f"{root}: images of {len(sizes)} different sizes ({ws[0]}-{ws[-1]} x "
                     f"{hs[0]}-{hs[-1]} pixels) were all resized to {size}x{size}")
    out_labels = np.array(labels, dtype=np.int64) if subdirs else None
    return np.stack(pixels), out_labels, [name for name, _ in groups] if subdirs else [], notes


def _hf(spec: str, size: int) -> tuple[np.ndarray, np.ndarray | None, list[str], dict]:
    """Pixels and labels of a Hugging Face image dataset (all requested splits together)."""
    from .hf import _first_line, _import_datasets, _is_saved_to_disk, _offline
    parts = spec[len("hf:"):].split(":")
    if len(parts) > 3 or not parts[0]:
        raise UserError(f"cannot read the corpus spec '{spec}'; write hf:NAME, hf:NAME:CONFIG or "
                        f"hf:NAME:CONFIG:SPLIT")
    name = parts[0]
    config = parts[1] if len(parts) > 1 and parts[1] else None
    split = parts[2] if len(parts) > 2 and parts[2] else None
    datasets = _import_datasets()
    try:
        if _is_saved_to_disk(name):
            loaded = datasets.load_from_disk(name)
        else:
            loaded = datasets.load_dataset(name, config)
    except Exception as e:  # datasets raises many types across versions: one sentence
        hint = " (offline: HF_HUB_OFFLINE is set and the dataset is not in the cache)" if _offline() else ""
        raise UserError(f"cannot load the image dataset hf:{name}{hint}: {_first_line(e)}") from None
    parts_ = dict(loaded) if isinstance(loaded, datasets.DatasetDict) else {"train": loaded}
    if split is not None:
        if split not in parts_:
            raise UserError(f"hf:{name} has no split '{split}'; it has {', '.join(parts_)}")
        parts_ = {split: parts_[split]}
    first = next(iter(parts_.values()))
    image_cols = [c for c, f in first.features.items() if type(f).__name__ == "Image"]
    if not image_cols:
        raise UserError(f"hf:{name} has no image column (its columns: {', '.join(first.features)})")
    label_col = next((c for c, f in first.features.items() if type(f).__name__ == "ClassLabel"),
                     next((c for c in ("label", "labels") if c in first.features), None))
    from PIL import Image
    pixels, labels = [], []
    for ds in parts_.values():
        for row in ds:
            im = row[image_cols[0]].convert("L")
            if im.size != (size, size):
                im = im.resize((size, size), Image.Resampling.LANCZOS)
            pixels.append(np.asarray(im, dtype=np.float32).ravel() / 255.0)
            if label_col is not None:
                labels.append(int(row[label_col]))
    if not pixels:
        raise UserError(f"hf:{name} holds no images")
    classes: list[str] = []
    if label_col is not None:
        feature = first.features[label_col]
        classes = list(getattr(feature, "names", None) or [str(c) for c in sorted(set(labels))])
    out = np.array(labels, dtype=np.int64) if label_col is not None else None
    if out is not None and len(np.unique(out)) < 2:
        raise UserError(f"hf:{name}: its label column '{label_col}' holds a single class; class "
                        f"labels need at least two")
    return np.stack(pixels), out, classes, {"image_column": image_cols[0], "label_column": label_col}


@functools.lru_cache(maxsize=4)
def load_images(corpus: str = "digits", image_size: int = 0, test_share: float = 0.2,
                split_seed: int = 0, stamp: tuple = ()) -> ImageData:
    """The image corpus ``corpus`` split into train and test (cached per process; ``stamp``
    is the folder's file stamp, so an edited folder is read again). ``image_size`` 0: 8 for
    digits, 16 for folders and hf: data sets."""
    if not 0.0 < test_share < 1.0:
        raise UserError(f"params.test_share must be in (0, 1); got {test_share}")
    if image_size < 0 or image_size == 1:
        raise UserError(f"params.image_size must be 0 (default) or >= 2; got {image_size}")
    size = image_size or DEFAULT_FOLDER_SIZE
    if corpus == "digits":
        if image_size not in (0, 8):
            raise UserError(f"params.image_size = {image_size} does not apply to the 8x8 digits corpus")
        pixels, labels, classes = _digits()
        return _finish(pixels, labels, classes, (8, 8), test_share, split_seed, "corpus digits",
                       {"source": "scikit-learn load_digits (UCI optdigits, 8x8, 17 grey levels)"})
    if corpus.startswith("hf:"):
        pixels, labels, classes, extra = _hf(corpus, size)
        return _finish(pixels, labels, classes, (size, size), test_share, split_seed,
                       f"corpus {corpus}", {"source": corpus, **extra, "resized_to": size})
    root = Path(corpus).expanduser()
    if not root.is_dir():
        raise UserError(f"corpus {corpus}: no such folder (image families read 'digits', a folder "
                        f"of PNG/JPEG images, or hf:NAME)")
    pixels, labels, classes, notes = _folder(root, size)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    return _finish(pixels, labels, classes, (size, size), test_share, split_seed,
                   f"corpus {corpus}", {"source": str(root.resolve()), "resized_to": size,
                                        "notes": notes})


def folder_stamp(corpus: str) -> tuple:
    """(path, size, mtime) of every file under a corpus folder ('' for digits and hf:)."""
    if corpus == "digits" or corpus.startswith("hf:") or not os.path.isdir(corpus):
        return ()
    out = []
    for dirpath, dirnames, filenames in os.walk(corpus):
        dirnames.sort()
        for f in sorted(filenames):
            st = os.stat(os.path.join(dirpath, f))
            out.append((os.path.join(dirpath, f), st.st_size, st.st_mtime_ns))
    return tuple(out)
