"""``photossl study CONFIG``: the whole label-budget study in one resumable command."""

from __future__ import annotations

from pathlib import Path

import click

from photossl.cli.console import quiet, status_logger
from photossl.cli.options import ConfigOptions

# The options that override the study config file's run settings (the file, not the dataclass, is their default).
CONFIG = ConfigOptions("photossl.study.config", "StudyConfig")


@click.command("study")
@click.argument("config_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Study folder [runs/<config file name>]. Rerunning into it resumes.")
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="Dataset folder to use instead of the config's 'data' / 'generate'.")
@CONFIG.option("device", "Overrides the config.", show_default=False)
@CONFIG.option("threads", "CPU threads for torch (overrides the config).", show_default=False)
@CONFIG.option("progress", "Progress bars (overrides the config).", show_default=False)
@click.option("--only", default=None, metavar="LABELS",
              help="Run only these methods (comma-separated labels); the table and figures still cover every finished "
                   "cell. Lets several processes share one study folder (while one writes the data, the others wait).")
@CONFIG.option("scheduler", "Dask scheduler whose workers run the data's chunks, the pretraining runs and the "
                            "cells (they must see the study folder and the data on a shared file system; needs "
                            "photossl[dask]). Overrides the config's 'scheduler'.", metavar="tcp://HOST:PORT")
@click.option("--dry-run", is_flag=True, help="Validate the config and list the grid without running anything.")
@click.option("--rerun-changed", is_flag=True,
              help="Run again (and replace) finished cells whose settings changed since they ran; without it such "
                   "cells are refused by name.")
@click.pass_context
def study(ctx: click.Context, config_file: Path, out_dir: Path | None, data: Path | None, only: str | None,
          dry_run: bool, rerun_changed: bool, **options) -> None:
    """Generate (or use) data, pretrain each method, fine-tune over budgets × seeds, write results.csv/.nc,
    summary.json and figures into the study folder.

    CONFIG_FILE: a study config file, or the name of a shipped pipeline (dos-quick, dos-medium, ...).

    Example: photossl study pipelines/dos-quick.yaml --out runs/dos-quick  (or: photossl study dos-quick)
    """
    from photossl.config import read_yaml, resolve_config_file
    from photossl.study import make_study_config, plan_study, run_study

    config_file = resolve_config_file(config_file)  # a file, or a shipped pipeline's name (dos-quick)
    config = make_study_config(CONFIG.merge(ctx, read_yaml(config_file)))
    out = out_dir if out_dir is not None else Path("runs") / config_file.stem
    if dry_run:
        plan = plan_study(config, out, data)
        click.echo(f"{config.name}: data {plan.describe_data()}; {len(plan.cells)} cells "
                   f"({len(config.methods)} methods, budgets {', '.join(map(str, config.all_budgets()))}, "
                   f"{len(config.seeds)} seeds)")
        for job in plan.jobs.values():
            click.echo(f"  pretrain {job.name} for {', '.join(job.labels)}")
        if config.tuning is not None:
            from photossl.study.tuning import tuning_study_config

            _, trials = tuning_study_config(config, config.tuning, plan.data_dir)
            seeds = ", ".join(map(str, config.tuning.seeds))
            for label, pairs in trials.items():
                click.echo(f"  tune {label} first: {len(pairs)} candidates at {config.tuning.budget} labels "
                           f"(seeds {seeds}), chosen on the validation cells")
                for trial, overrides in pairs:
                    described = ", ".join(f"{key}={value}" for key, value in overrides.items()) or "as written"
                    click.echo(f"    {trial}: {described}")
        return
    labels = None if only is None else [label.strip() for label in only.split(",") if label.strip()]
    log, last = status_logger(), []

    def echo(message: str) -> None:
        last[:] = [message]
        log(message)

    run_study(config, out, data, echo=echo, only=labels, rerun_changed=rerun_changed)
    # run_study's last log line is the summary ("study NAME: N cells ran ..."): the result, shown even when quiet
    if quiet() and last:
        click.echo(last[0], err=True)
