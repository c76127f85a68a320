"""What commands print besides their result: status lines on stderr, silenced by ``photossl --quiet``.

Warnings and errors always get through; only progress and status lines are silenced.
"""

from __future__ import annotations

from collections.abc import Callable

import click


def quiet() -> bool:
    """Whether the ``photossl`` group was given ``--quiet`` (False outside a command)."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.find_root().params.get("quiet"))


def status_logger() -> Callable[[str], None]:
    """The function a command passes to its runner as ``echo`` / ``log``: one line on stderr per message; with
    ``--quiet`` only warnings. Decided when called (in the command), so runners may call it from any thread."""
    silent = quiet()

    def log(message: str) -> None:
        if silent and not message.startswith("Warning"):
            return
        click.echo(message, err=True)

    return log
