"""The job's source archive: the project's own trainer, packed so the same code runs there.

SageMaker's training toolkit (in the Deep Learning Containers) downloads
``sagemaker_submit_directory``, installs its ``requirements.txt`` and runs ``sagemaker_program``
on every instance. The archive holds ``adapters_local`` (with the built-in model), the few
standard-library modules of ``customize.sagemaker`` the entry point needs, ``entry.py`` at its root,
and the exact versions of the Python packages this installation trains with, so the job runs the
code and libraries that were tested here. The archive is byte-for-byte reproducible (sorted
entries, fixed times and owners), so an unchanged trainer is not uploaded again.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import adapters_local
import customize.sagemaker

# The DLC brings torch (and CUDA to match); these are what adapters_local imports besides it.
REQUIREMENTS = ("transformers", "tokenizers", "safetensors", "peft", "rich", "accelerate")
_CARRIED = ("__init__.py", "hyperparams.py", "entry.py", "launch_plan.py")


@dataclass(frozen=True)
class SourceArchive:
    path: Path
    files: tuple[str, ...]


def requirements() -> str:
    lines = []
    for name in REQUIREMENTS:
        try:
            lines.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue  # not installed here, so not needed by the code being shipped
    return "\n".join(lines) + "\n"


def _sources() -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    package = Path(adapters_local.__file__).parent
    for path in sorted(package.rglob("*")):
        relative = path.relative_to(package.parent)
        if path.is_file() and "__pycache__" not in relative.parts and path.suffix != ".pyc":
            files[relative.as_posix()] = path.read_bytes()
    here = Path(customize.sagemaker.__file__).parent
    files["customize/__init__.py"] = b""
    for name in _CARRIED:
        files[f"customize/sagemaker/{name}"] = (here / name).read_bytes()
    files["entry.py"] = (here / "entry.py").read_bytes()
    files["requirements.txt"] = requirements().encode()
    return files


def build_source_archive(destination: Path) -> SourceArchive:
    """Writes ``sourcedir.tar.gz`` into ``destination``; same code in, same bytes out."""
    files = _sources()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            archive.addfile(info, io.BytesIO(data))
    destination.mkdir(parents=True, exist_ok=True)
    path = destination / "sourcedir.tar.gz"
    with (
        path.open("wb") as handle,
        gzip.GzipFile(filename="", mode="wb", fileobj=handle, mtime=0) as zipped,
    ):
        zipped.write(raw.getvalue())
    return SourceArchive(path, tuple(files))
