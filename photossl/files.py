"""File helpers shared by every writer: files made through temporary names get normal permissions."""

from __future__ import annotations

import os
from pathlib import Path


def default_permissions(path: str | Path) -> None:
    """Give ``path`` the mode a plain ``open(..., "w")`` would (0666 minus the umask); mkstemp makes files 0600."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
