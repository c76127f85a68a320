"""File helpers shared by every writer: atomic replacement, appends that undo themselves, and one-line write errors.

A write that fails (a full disk, no permission) raises :class:`WriteError` naming the file and the cause; the file's
previous version is left as it was and no temporary file stays behind, so rerunning the command once the cause is
fixed gives what an uninterrupted run would have given.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

from photossl.errors import PhotosslError


class WriteError(PhotosslError):
    """A file could not be written; the message is ``could not write PATH: CAUSE`` and the old file is intact."""


def write_error(path: str | Path, err: OSError) -> WriteError:
    """The one-line :class:`WriteError` for ``err`` (its strerror, e.g. 'No space left on device') at ``path``."""
    cause = err.strerror or (str(err).splitlines() or [type(err).__name__])[0]
    return WriteError(f"could not write {path}: {cause}")


def default_permissions(path: str | Path) -> None:
    """Give ``path`` the mode a plain ``open(..., "w")`` would (0666 minus the umask); mkstemp makes files 0600."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def _write_temporary(path: Path, write: Callable[[str], object], tmp: str) -> None:
    """``write(tmp)``, the temporary file of ``path``, and flush it to disk: the bytes of every atomic write pass
    through here (tests inject faults at this point)."""
    write(tmp)
    with open(tmp, "rb+") as stream:
        os.fsync(stream.fileno())


def _remove_quietly(path: str | Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError:  # the original error matters more than a failed clean-up
        pass


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable; best effort (some file systems cannot sync a folder)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def replace_atomically(path: str | Path, write: Callable[[str], object], temporary: str | Path | None = None) -> None:
    """``write(tmp)`` a temporary file in ``path``'s folder, flush it to disk, and rename it onto ``path``.

    Readers (and a crash) see the old file or the new one, never half of one. ``temporary`` names the temporary
    file (default: a unique name from mkstemp, so writers in parallel never share one). The temporary file is removed
    if anything fails; an OSError (full disk, no permission) becomes a :class:`WriteError` naming ``path``.
    """
    path = Path(path)
    tmp = None
    try:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if temporary is None:
                handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
                os.close(handle)
            else:
                tmp = str(temporary)
            _write_temporary(path, write, tmp)
            default_permissions(tmp)
            os.replace(tmp, path)
        except OSError as err:
            raise write_error(path, err) from err
    finally:
        if tmp is not None:
            _remove_quietly(tmp)
    _fsync_dir(path.parent)


def atomic_torch_save(payload, path: str | Path) -> None:
    """``torch.save`` ``payload`` atomically (:func:`replace_atomically`). It is serialised in memory first: torch's
    own file writer reports a full disk as a RuntimeError, a plain file write as the OSError that becomes a
    :class:`WriteError`."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(payload, buffer)
    replace_atomically(path, lambda tmp: Path(tmp).write_bytes(buffer.getbuffer()))


def append_text(path: str | Path, text: str) -> None:
    """Append ``text`` (UTF-8) to a log file; if the write fails, cut the file back to its old length and raise
    :class:`WriteError`, so a log never ends in half a line."""
    path = Path(path)
    size = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8", newline="") as stream:
            size = stream.tell()
            stream.write(text)
            stream.flush()
    except OSError as err:
        if size is not None:
            try:
                os.truncate(path, size)
            except OSError:
                pass
        raise write_error(path, err) from err


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) atomically (:func:`replace_atomically`)."""
    replace_atomically(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def json_value(value):
    """What JSON writes for a value it cannot hold: numpy scalars as numbers, arrays as lists, anything else as text."""
    import numpy as np

    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def write_json_atomic(path: str | Path, record, *, indent: int | None = 2, sort_keys: bool = False,
                      separators: tuple[str, str] | None = None, default: Callable = json_value,
                      temporary: str | Path | None = None) -> None:
    """``record`` as JSON (one trailing newline), written atomically (:func:`replace_atomically`, ``temporary`` as
    there). The layout options are :func:`json.dumps`'s; ``default`` turns what JSON cannot hold into what it can."""
    import json

    text = json.dumps(record, indent=indent, sort_keys=sort_keys, separators=separators, default=default) + "\n"
    replace_atomically(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"), temporary=temporary)


def write_json_record(path: str | Path, record: dict) -> None:
    """An indented JSON record, written atomically; values JSON cannot hold are written as strings."""
    write_json_atomic(path, record, default=str)


def write_yaml_record(path: str | Path, record: dict) -> None:
    """A YAML record in insertion order, written atomically."""
    import yaml

    write_text_atomic(path, yaml.safe_dump(record, sort_keys=False))


def load_torch_file(path: str | Path, what: str, remedy: str, map_location="cpu", file_format: str | None = None):
    """``torch.load(path, weights_only=True)``, or one :class:`~photossl.errors.PhotosslError` line naming ``what``
    the file should be and ``remedy`` when it is truncated, corrupt, empty or not a torch file at all (torch's own
    messages run to several hundred characters or are a bare ``KeyError: 174812789``). With ``file_format``, the
    payload must also be a dict whose ``format`` entry is that string."""
    import warnings

    import torch

    path = Path(path)
    size = path.stat().st_size
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception:  # noqa: BLE001 - every unreadable file gets the same one-line answer
        cause = "it is empty" if size == 0 else "it is truncated, corrupt, or not a tensors-only torch file"
        raise PhotosslError(f"{path} is not a readable {what} ({cause}); {remedy}") from None
    if file_format is not None and (not isinstance(payload, dict) or payload.get("format") != file_format):
        raise PhotosslError(f"{path} is not a {what}; {remedy}")
    return payload
