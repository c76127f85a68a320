"""The ``photossl`` command group. Sub-commands import their heavy dependencies lazily."""

from __future__ import annotations

import importlib

import click

from photossl.cli.options import ConfigOptions

# name -> (module, attribute); modules are imported only when the command runs or its help is shown.
_COMMANDS = {
    "bands": ("photossl.cli.bands", "bands"),
    "pretrain": ("photossl.cli.pretrain", "pretrain"),
    "generate": ("photossl.cli.generate", "generate"),
    "import-sibcl": ("photossl.cli.import_sibcl", "import_sibcl"),
    "finetune": ("photossl.cli.finetune", "finetune"),
    "study": ("photossl.cli.study", "study"),
    "plot": ("photossl.cli.plot", "plot"),
    "predict": ("photossl.cli.predict", "predict"),
}


class _LazyGroup(click.Group):
    """Loads sub-commands on demand and turns PhotosslError (and a stray OSError) into a one-line error, Ctrl-C into
    one line and exit status 130."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in _COMMANDS:
            return None
        module_name, attribute = _COMMANDS[name]
        return getattr(importlib.import_module(module_name), attribute)

    def invoke(self, ctx: click.Context):
        from photossl.errors import PhotosslError

        try:
            return super().invoke(ctx)
        except click.UsageError as err:  # a bad option or argument: one line (click adds a usage block) with the
            where = err.ctx.command_path if err.ctx is not None else "photossl"  # place to read up on it
            error = click.ClickException(f"{err.format_message()} (see '{where} --help')")
            error.exit_code = err.exit_code
            raise error from None
        except KeyboardInterrupt:  # Ctrl-C: one line and the shell's status for SIGINT (128 + 2), not click's 1
            click.echo("Error: interrupted (Ctrl-C); what finished is kept", err=True)
            ctx.exit(130)
        except PhotosslError as err:
            raise click.ClickException(str(err)) from None
        except OSError as err:  # a file the writers do not wrap (full disk, no permission): still one line
            where = f"{err.filename}: " if err.filename else ""
            cause = err.strerror or (str(err).splitlines() or [type(err).__name__])[0]
            raise click.ClickException(f"{where}{cause}") from None


# The global options are fields every run config has; their choices and help come from the pretraining config.
_RUN = ConfigOptions("photossl.training.config", "PretrainConfig")


@click.group(cls=_LazyGroup)
@click.version_option(package_name="photossl")
@_RUN.option("device", "Where torch runs, for every command that has --device (auto: CUDA when present).",
             show_default=False)
@_RUN.option("threads", "CPU threads for torch, for every command that has --threads.")
@_RUN.option("progress", "Progress bars, for every command that has --progress.", show_default=False)
@click.option("-q", "--quiet", is_flag=True,
              help="Only results, warnings and errors: no progress bars or status lines.")
@click.pass_context
def cli(ctx: click.Context, device: str | None, threads: int | None, progress: bool | None, quiet: bool) -> None:
    """photossl: photonic-crystal data, band solver, and equivariant self-supervised learning.

    Global options apply to every command that has an option of that name; the command's own option wins, and both
    win over a config file.
    """
    given = {"device": device, "threads": threads, "progress": False if quiet and progress is None else progress}
    given = {name: value for name, value in given.items() if value is not None}
    if given:  # click's default_map: a command's option takes these when its own is not given
        ctx.default_map = {name: dict(given) for name in _COMMANDS}
