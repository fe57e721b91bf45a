"""Pretrained causal LMs from anywhere: a GGUF file, a Hugging Face folder, a known name or
a hub id, loaded with the real ``transformers`` code (extra ``torch``; GGUF also needs
``gguf`` and ``accelerate``).

``resolve(spec)`` says what a spec is without loading anything; ``load_causal_lm(spec)``
returns ``(model, tokenizer)``: the ``AutoModelForCausalLM`` in eval mode on the device
(float32 on the CPU, bfloat16 on CUDA unless ``dtype`` says otherwise) and the checkpoint's
own ``AutoTokenizer``. Every failure a user can cause (a truncated GGUF, an architecture or
quantization transformers cannot dequantize, a folder without weights, a tokenizer larger
than the model's vocabulary, a hub id while offline) is one :class:`UserError` sentence.
GGUF weights are dequantized to float (a Q4_1 file becomes a float32 model) once, on first
use, into a folder checkpoint in the cache (:func:`converted_folder`), which later loads read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..errors import UserError, closest
from . import fetch

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


@dataclass(frozen=True)
class Resolved:
    """What a model spec names. ``source``: the folder or hub id ``from_pretrained`` takes;
    ``gguf_file``: the file name inside ``source`` for a GGUF (else None); ``spec``: as
    given; ``kind``: 'gguf' | 'folder' | 'hub'."""

    kind: Literal["gguf", "folder", "hub"]
    source: str
    gguf_file: str | None
    spec: str

    @property
    def kwargs(self) -> dict:
        return {"gguf_file": self.gguf_file} if self.gguf_file else {}


def _looks_like_path(spec: str) -> bool:
    """A spec meant as a local path: it starts like one, or has more than the one slash of
    a hub id ORG/NAME."""
    return spec.startswith((".", "/", "~")) or spec.count("/") > 1 or "\\" in spec


def resolve(spec: str) -> Resolved:
    """The kind and location of ``spec`` (a .gguf file, a folder, a known name, a hub id)."""
    spec = str(spec).strip()
    if not spec:
        raise UserError("params.model is empty; give a .gguf file, a model folder, a known "
                        f"name ({', '.join(fetch.KNOWN)}) or a hub id ORG/NAME")
    if spec in fetch.KNOWN:
        path = fetch.cached(spec)
        if path is None:
            raise UserError(f"model '{spec}' is not in the cache {fetch.cache_dir()}; run "
                            f"`modelcollapse models fetch {spec}` first")
        return Resolved("gguf", str(path.parent), path.name, spec)
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise UserError(f"params.model: the GGUF file {path} does not exist")
        return Resolved("gguf", str(path.parent), path.name, spec)
    if path.is_dir():
        if any((path / w).is_file() for w in WEIGHT_FILES):
            return Resolved("folder", str(path), None, spec)
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return Resolved("gguf", str(path), ggufs[0].name, spec)
        raise UserError(f"params.model: the folder {path} holds no model weights (none of "
                        f"{', '.join(WEIGHT_FILES)}, nor a single .gguf file)")
    if _looks_like_path(spec) or path.exists():
        raise UserError(f"params.model: {spec} is neither a .gguf file nor a model folder")
    if "/" not in spec:   # hub ids are ORG/NAME; a bare word is meant as a known name
        raise UserError(f"unknown model name '{spec}'{closest(spec, fetch.KNOWN)}; known names: "
                        f"{', '.join(fetch.KNOWN)} (or give a .gguf file, a model folder or a "
                        f"hub id ORG/NAME)")
    return Resolved("hub", spec, None, spec)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:200]


def _failed(r: Resolved, what: str, e: BaseException) -> UserError:
    """One sentence for a checkpoint that did not load."""
    if r.kind == "hub":
        if _offline():
            return UserError(f"params.model = '{r.spec}' cannot be loaded: it is a hub id, "
                             f"HF_HUB_OFFLINE is set and the Hugging Face cache lacks its "
                             f"{what}; download it where "
                             f"there is network (or unset HF_HUB_OFFLINE) and pass its folder")
        return UserError(f"params.model = '{r.spec}' cannot be loaded: it is not a local folder, "
                         f"and the Hugging Face hub does not have it or cannot be reached from "
                         f"here ({_first_line(e)[:160]}); download it where there is network "
                         f"and pass its folder")
    where = f"{r.source}/{r.gguf_file}" if r.gguf_file else r.source
    return UserError(f"params.model: cannot load the {what} of {where}: {_first_line(e)}")


def inspect_gguf(path: Path) -> dict:
    """{'architecture', 'types', 'tensors'} of a GGUF file, checked to be loadable: readable
    to its end (a truncated file fails here), of an architecture transformers maps and with
    tensor types the gguf package dequantizes."""
    try:
        import gguf
        from gguf import quants
        from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES
    except ImportError as e:
        raise UserError(f"GGUF checkpoints need the gguf package ({e.name} is missing): "
                        "pip install 'modelcollapse[torch]'") from None
    try:
        reader = gguf.GGUFReader(str(path))
        arch_field = reader.fields["general.architecture"]
        arch = bytes(arch_field.parts[arch_field.data[0]]).decode("utf-8")
        types = {t.tensor_type for t in reader.tensors}
    except Exception as e:   # the reader raises ValueError, KeyError, IndexError... on bad bytes
        raise UserError(f"params.model: {path} is not a readable GGUF file (truncated or "
                        f"corrupt: {_first_line(e)})") from None
    supported = set(GGUF_SUPPORTED_ARCHITECTURES) - {"general", "tokenizer"}
    if arch not in supported and arch.replace("-", "_") not in supported:
        raise UserError(f"params.model: {path} holds a '{arch}' model, an architecture "
                        f"transformers cannot load from GGUF (it loads: "
                        f"{', '.join(sorted(supported)[:12])}, ...)")
    plain = {gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16}
    bad = sorted(t.name for t in types if t not in plain and t not in quants._type_traits)
    if bad:
        raise UserError(f"params.model: {path} uses the quantization {', '.join(bad)}, which the "
                        f"gguf package cannot dequantize")
    return {"architecture": arch, "types": sorted(t.name for t in types),
            "tensors": len(reader.tensors)}


def _plain(model):
    """A GGUF-loaded model marked as a plain float model. transformers flags it as
    'quantized with gguf' and refuses to save it, though its weights are already
    dequantized floats; the loop must save every generation's weights."""
    model.hf_quantizer = None
    model.is_quantized = False
    model.quantization_method = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return model


def _quiet_unless_tty():
    import contextlib
    import io
    import sys
    if sys.stderr.isatty():
        return contextlib.nullcontext()
    return contextlib.redirect_stderr(io.StringIO())


def converted_folder(r: Resolved) -> Path:
    """Where the float conversion of GGUF ``r`` is cached: ``CACHE/<name>/converted`` for a
    known name, ``CACHE/converted/<stem>-<key>`` for any other file (the key hashes its
    absolute path, size and modification time, so an edited file converts again)."""
    import hashlib
    path = Path(r.source) / r.gguf_file
    if r.spec in fetch.KNOWN:
        return path.parent / "converted"
    st = path.resolve().stat()
    key = hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
    return fetch.cache_dir() / "converted" / f"{path.stem}-{key}"


def _convert(r: Resolved) -> Resolved:
    """A folder checkpoint (config, float32 safetensors, tokenizer) made once from GGUF
    ``r``. Dequantizing a GGUF and rebuilding its tokenizer costs ~45 s on 2 cores for
    SmolLM2-135M; loading the converted folder ~1 s. Written to a temporary folder and
    renamed, so a folder that exists is complete."""
    import shutil
    import tempfile
    from ..neural import require
    torch, transformers = require("pretrained models")
    folder = converted_folder(r)
    if (folder / "model.safetensors").is_file():
        return Resolved("folder", str(folder), None, r.spec)
    inspect_gguf(Path(r.source) / r.gguf_file)
    try:
        tok = transformers.AutoTokenizer.from_pretrained(r.source, **r.kwargs)
    except ImportError as e:
        raise UserError(f"loading {r.spec} needs a package that is missing ({_first_line(e)}): "
                        "pip install 'modelcollapse[torch]'") from None
    except (OSError, ValueError, KeyError, NotImplementedError, RuntimeError, TypeError) as e:
        raise _failed(r, "tokenizer", e) from None
    try:
        with _quiet_unless_tty():   # transformers' per-tensor progress bar, for people only
            model = transformers.AutoModelForCausalLM.from_pretrained(
                r.source, dtype=torch.float32, **r.kwargs)
    except ImportError as e:
        raise UserError(f"loading {r.spec} needs a package that is missing ({_first_line(e)}): "
                        "pip install 'modelcollapse[torch]'") from None
    except (OSError, ValueError, KeyError, NotImplementedError, RuntimeError, TypeError) as e:
        raise _failed(r, "weights", e) from None
    check_match(_plain(model), tok, r.spec)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    tmp.chmod(0o755)   # mkdtemp's 0700 would hide a shared cache from other users
    try:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tok.save_pretrained(str(tmp))
        try:
            tmp.rename(folder)
        except OSError:   # another process converted it meanwhile: theirs is complete too
            if not (folder / "model.safetensors").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Resolved("folder", str(folder), None, r.spec)


def pick_device(device: str | None) -> str:
    """'cuda' when available (None/'auto'), else 'cpu'; 'cuda' asked without one: UserError."""
    from ..neural import require
    torch, _ = require("pretrained models")
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device '{device}' was asked for, but torch sees no CUDA device here "
                        f"(torch {torch.__version__}); use 'cpu' or 'auto'")
    if str(device) not in ("cpu",) and not str(device).startswith("cuda"):
        raise UserError(f"device '{device}' is not one of auto, cpu, cuda")
    return str(device)


def load_model(spec: str | Resolved, device: str | None = None, dtype: Any = None):
    """The ``AutoModelForCausalLM`` of ``spec`` on ``device`` in eval mode (float32 on the
    CPU, bfloat16 on CUDA unless ``dtype`` is given)."""
    from ..neural import require
    torch, transformers = require("pretrained models")
    r = spec if isinstance(spec, Resolved) else resolve(spec)
    device = pick_device(device)
    if dtype is None:
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    if r.kind == "gguf":
        r = _convert(r)
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(
            r.source, dtype=dtype, trust_remote_code=False, **r.kwargs)
    except ImportError as e:
        raise UserError(f"loading {r.spec} needs a package that is missing ({_first_line(e)}): "
                        "pip install 'modelcollapse[torch]'") from None
    except (OSError, ValueError, KeyError, NotImplementedError, RuntimeError, TypeError) as e:
        raise _failed(r, "weights", e) from None
    return model.to(device).eval()


def load_tokenizer(spec: str | Resolved):
    """The checkpoint's own ``AutoTokenizer`` (for a GGUF: the vocabulary stored in it)."""
    from ..neural import require
    _, transformers = require("pretrained models")
    r = spec if isinstance(spec, Resolved) else resolve(spec)
    if r.kind == "gguf":
        r = _convert(r)
    try:
        return transformers.AutoTokenizer.from_pretrained(r.source, trust_remote_code=False, **r.kwargs)
    except ImportError as e:
        raise UserError(f"loading the tokenizer of {r.spec} needs a package that is missing "
                        f"({_first_line(e)}): pip install 'modelcollapse[torch]'") from None
    except (OSError, ValueError, KeyError, NotImplementedError, RuntimeError, TypeError) as e:
        raise _failed(r, "tokenizer", e) from None


def check_match(model, tokenizer, spec: str) -> None:
    """A tokenizer whose ids run past the model's embedding rows would index out of range
    in the first forward pass: refuse it up front."""
    rows = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > rows:
        raise UserError(f"params.model = '{spec}': its tokenizer has {len(tokenizer)} tokens but "
                        f"the model only {rows} embedding rows: the tokenizer does not belong "
                        f"to this model")


def load_causal_lm(spec: str, device: str | None = None, dtype: Any = None):
    """(model, tokenizer) of ``spec``: a local .gguf file, a Hugging Face model folder, a
    known name (fetched beforehand with ``modelcollapse models fetch NAME``) or a hub id
    (HF_HUB_OFFLINE respected: offline and not cached is one sentence, no retries)."""
    r = resolve(spec)
    tokenizer = load_tokenizer(r)
    model = load_model(r, device, dtype)
    check_match(model, tokenizer, r.spec)
    return model, tokenizer
