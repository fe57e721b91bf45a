"""Documents from a Hugging Face dataset: ``hf:NAME[:CONFIG[:SPLIT]]`` (optional extra ``hf``).

``NAME`` is a dataset on the Hub (``hf:wikitext:wikitext-2-raw-v1``), a local folder of data
files that ``datasets.load_dataset`` understands, or a folder written by
``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``. Without ``SPLIT`` every split is
read, ``train``, ``validation`` and ``test`` first; when the dataset has a train split and a
validation or test split, :meth:`HfSource.predefined` hands them to the corpus so experiments
evaluate on the dataset's own held-out data.

``datasets`` is imported only here, lazily. Hub access honours ``HF_HUB_OFFLINE`` /
``HF_DATASETS_OFFLINE`` and the cache in ``HF_DATASETS_CACHE`` (read at call time). Whatever
``datasets`` raises while loading, across its versions, becomes one :class:`UserError`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from ..errors import UserError
from .document import Document

# The dataset's own names for held-out splits, mapped to the corpus's names.
CANONICAL_SPLITS = {"train": "train", "validation": "validation", "valid": "validation",
                    "dev": "validation", "test": "test"}
_BATCH_ROWS = 1000


def _import_datasets():
    try:
        import datasets
    except ImportError:
        raise UserError("hf: corpora need the Hugging Face datasets package; install "
                        "modelcollapse[hf]") from None
    return datasets


def _offline() -> bool:
    flags = (os.environ.get(name, "") for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))
    return any(flag.strip().upper() in {"1", "ON", "YES", "TRUE"} for flag in flags)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _is_saved_to_disk(path: str) -> bool:
    """Whether a folder was written by ``save_to_disk`` (these need ``load_from_disk``)."""
    markers = ("dataset_dict.json", "state.json")
    return os.path.isdir(path) and any(os.path.exists(os.path.join(path, m)) for m in markers)


class HfSource:
    """A Hugging Face dataset, loaded (or found in the cache) when the source is made.

    ``Document.source`` is ``"hf:<name>:<config>:<split>"`` (config ``default`` when none was
    given) and ``index`` the 0-based row within the split.
    """

    def __init__(self, spec: str, text_field: str | None = None):
        parts = spec[len("hf:"):].split(":")
        if len(parts) > 3 or not parts[0]:
            raise UserError(f"cannot read the corpus spec '{spec}'; write hf:NAME, "
                            f"hf:NAME:CONFIG or hf:NAME:CONFIG:SPLIT")
        self.spec = spec
        self.name = parts[0]
        self.config = parts[1] if len(parts) > 1 and parts[1] else None
        self.split = parts[2] if len(parts) > 2 and parts[2] else None
        self.text_field = "text" if text_field is None else text_field
        self._datasets = _import_datasets()
        self.splits = self._load()
        for split, dataset in self.splits.items():
            self._check_column(split, dataset)

    def _load(self) -> dict:
        """``{split name: Dataset}``, known splits first; every failure becomes a UserError."""
        datasets = self._datasets
        label = f"hf:{self.name}"
        try:
            if _is_saved_to_disk(self.name):
                if self.config is not None:
                    raise UserError(f"{label} is a folder written by save_to_disk, which has no "
                                    f"configs; write hf:{self.name}::SPLIT to pick a split")
                loaded = datasets.load_from_disk(self.name)
                if self.split is not None and isinstance(loaded, datasets.DatasetDict):
                    if self.split not in loaded:
                        raise UserError(f"{label} has no split '{self.split}' (its splits: "
                                        f"{', '.join(loaded)})")
                    loaded = loaded[self.split]
            else:
                from ..hub import hub_access
                with hub_access() as self._offline:   # no retry loop when there is no network
                    loaded = datasets.load_dataset(self.name, self.config, split=self.split,
                                                   cache_dir=os.environ.get("HF_DATASETS_CACHE"))
        except UserError:
            raise
        except ImportError as error:
            raise UserError(f"{label} needs a package that is not installed: "
                            f"{_first_line(error)}") from None
        except OSError as error:  # ConnectionError, FileNotFoundError, requests', the Hub's
            raise self._unavailable(error) from None
        except ValueError as error:  # unknown config or split, bad data files
            raise UserError(f"{label} cannot be loaded: {_first_line(error)}") from None
        except Exception as error:  # noqa: BLE001 - datasets' exception types vary by version
            raise UserError(f"{label} cannot be loaded ({type(error).__name__}: "
                            f"{_first_line(error)})") from None
        if isinstance(loaded, datasets.Dataset):
            return {self.split or "train": loaded}
        names = list(loaded)
        names.sort(key=lambda s: list(CANONICAL_SPLITS).index(s) if s in CANONICAL_SPLITS
                   else len(CANONICAL_SPLITS))
        return {name: loaded[name] for name in names}

    def _unavailable(self, error: BaseException) -> UserError:
        """The error for a dataset that could not be fetched or found."""
        label = f"hf:{self.name}"
        if os.path.isabs(self.name) or self.name.startswith(".") or os.path.exists(self.name):
            return UserError(f"{label}: no dataset could be read from the local path "
                             f"'{self.name}' ({_first_line(error)})")
        not_found = type(error).__name__ in {"DatasetNotFoundError", "RepositoryNotFoundError"}
        if not_found and not _offline() and not getattr(self, "_offline", False):
            return UserError(f"{label} was not found on the Hugging Face Hub, or it is private "
                             f"or gated; check the name")
        cache = os.environ.get("HF_DATASETS_CACHE") or self._datasets.config.HF_DATASETS_CACHE
        from ..hub import endpoint, offline_requested
        why = ("is not available offline" if offline_requested() else
               f"cannot be fetched (the Hub at {endpoint()} did not answer within 2 s)")
        return UserError(f"{label} {why} and is not in the local datasets cache "
                         f"({cache}); download it where there is network access, or pass a "
                         f"local file")

    def _check_column(self, split: str, dataset) -> None:
        columns = list(dataset.column_names)
        where = f"hf:{self.name} split '{split}'"
        if self.text_field not in columns:
            listed = ", ".join(f"'{c}'" for c in columns)
            raise UserError(f"{where} has no column '{self.text_field}' (its columns: {listed}); "
                            f"pick one with text_field")
        feature = dataset.features[self.text_field]
        if getattr(feature, "dtype", None) not in {"string", "large_string"}:
            raise UserError(f"{where} column '{self.text_field}' holds {feature}, not strings")

    def source_of(self, split: str) -> str:
        return f"hf:{self.name}:{self.config or 'default'}:{split}"

    def documents(self) -> Iterator[Document]:
        for split, dataset in self.splits.items():
            source = self.source_of(split)
            row = 0
            for batch in dataset.select_columns([self.text_field]).iter(batch_size=_BATCH_ROWS):
                for value in batch[self.text_field]:
                    if value is None:
                        raise UserError(f"hf:{self.name} split '{split}' row {row} has a null "
                                        f"'{self.text_field}'")
                    text = value.strip()
                    if text:
                        yield Document(text, source, row)
                    row += 1

    def describe(self) -> dict:
        info = next(iter(self.splits.values())).info
        return {
            "description": f"Hugging Face dataset {self.name}"
                           + (f" ({self.config})" if self.config else ""),
            "origin": {
                "hf_name": self.name,
                "config": self.config,
                "split": self.split,
                "rows": {split: dataset.num_rows for split, dataset in self.splits.items()},
                "text_field": self.text_field,
                "datasets_version": self._datasets.__version__,
                "homepage": info.homepage or None,
            },
            "license": info.license or "not stated by the dataset; see its dataset card",
        }

    def predefined(self, documents: list[Document]) -> dict[str, list[str]] | None:
        """The dataset's train / validation / test texts, when it has train and a held-out split.

        ``documents`` are those the corpus kept (``max_docs`` may have cut later splits).
        """
        by_source = {self.source_of(s): CANONICAL_SPLITS[s] for s in self.splits
                     if s in CANONICAL_SPLITS}
        groups: dict[str, list[str]] = {}
        for doc in documents:
            split = by_source.get(doc.source)
            if split is not None:
                groups.setdefault(split, []).append(doc.text)
        if "train" not in groups or len(groups) == 1:
            return None
        return groups
