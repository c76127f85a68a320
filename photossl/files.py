"""File helpers shared by every writer: files made through temporary names get normal permissions."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


def default_permissions(path: str | Path) -> None:
    """Give ``path`` the mode a plain ``open(..., "w")`` would (0666 minus the umask); mkstemp makes files 0600."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def replace_atomically(path: str | Path, write: Callable[[str], object]) -> None:
    """``write(tmp)`` a unique temporary file in ``path``'s folder, flush it to disk, and rename it onto ``path``.

    Readers (and a crash) see the old file or the new one, never half of one; writers in parallel never share a
    temporary name. The temporary file is removed if ``write`` fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        write(tmp)
        with open(tmp, "rb+") as stream:
            os.fsync(stream.fileno())
        default_permissions(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) atomically (:func:`replace_atomically`)."""
    replace_atomically(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_json_record(path: str | Path, record: dict) -> None:
    """An indented JSON record, written atomically; values JSON cannot hold are written as strings."""
    import json

    write_text_atomic(path, json.dumps(record, indent=2, default=str) + "\n")


def write_yaml_record(path: str | Path, record: dict) -> None:
    """A YAML record in insertion order, written atomically."""
    import yaml

    write_text_atomic(path, yaml.safe_dump(record, sort_keys=False))
