"""File helpers shared by every writer: files made through temporary names get normal permissions."""

from __future__ import annotations

import os
from pathlib import Path


def default_permissions(path: str | Path) -> None:
    """Give ``path`` the mode a plain ``open(..., "w")`` would (0666 minus the umask); mkstemp makes files 0600."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` through a temporary file in the same folder and a rename: readers never see half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json_record(path: str | Path, record: dict) -> None:
    """An indented JSON record, written atomically; values JSON cannot hold are written as strings."""
    import json

    write_text_atomic(path, json.dumps(record, indent=2, default=str) + "\n")


def write_yaml_record(path: str | Path, record: dict) -> None:
    """A YAML record in insertion order, written atomically."""
    import yaml

    write_text_atomic(path, yaml.safe_dump(record, sort_keys=False))
