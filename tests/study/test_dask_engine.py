"""`photossl study --scheduler`: pretraining runs and cells as tasks of a Dask cluster give the local run's table, a
worker that dies mid-study costs no finished cell, and a rerun submits nothing that is done."""

import csv
import os

import pytest
import yaml
from click.testing import CliRunner

from photossl.cli.main import cli
from photossl.study import make_study_config, run_study

distributed = pytest.importorskip("dask.distributed")

# One fine-tuning cell that kills the worker process running it, the first time it starts.
VICTIM = "simclr__b16__s0"


def _table(out) -> list[dict]:
    """results.csv without its wall-time column."""
    with (out / "results.csv").open() as handle:
        return [{k: v for k, v in row.items() if k != "wall_time_s"} for row in csv.DictReader(handle)]


def _counting_plugin(folder):
    """A worker plugin: each finished fine-tuning run appends its cell id to folder/runs.txt; the cell VICTIM kills
    its worker the first time it starts (folder/killed marks that it did). Defined here, so it travels by value."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class CountAndKillOnce(WorkerPlugin):
        name = "photossl-test-count-and-kill-once"

        def setup(self, worker):
            from photossl.study import execute

            self.real = real = execute.finetune

            def finetune(config, out, **kwargs):
                cell = f"{config.label}__b{config.budget}__s{config.seed}"
                if cell == VICTIM and not (folder / "killed").exists():
                    (folder / "killed").write_text(str(os.getpid()))
                    os._exit(1)  # the worker dies mid-task, as under the OOM killer
                metrics = real(config, out, **kwargs)
                with open(folder / "runs.txt", "a") as handle:
                    handle.write(cell + "\n")
                return metrics

            execute.finetune = finetune

        def teardown(self, worker):
            from photossl.study import execute

            execute.finetune = self.real

    return CountAndKillOnce()


def test_a_study_on_dask_survives_a_dead_worker_and_matches_the_local_run(dask_cluster, tiny_study, tmp_path):
    settings = tiny_study(seeds=[0])  # 6 cells: supervised, simclr (pretrained first), ridge at budgets 8 and 16
    local = run_study(make_study_config(settings), tmp_path / "local", echo=lambda m: None)
    assert local["cells"]["ran"] == 6 and local["cells"]["failed"] == 0

    counters = tmp_path / "counters"
    counters.mkdir()
    plugin = _counting_plugin(counters)
    with distributed.Client(dask_cluster) as client:
        client.register_plugin(plugin)
        try:
            lines: list[str] = []
            summary = run_study(make_study_config({**settings, "scheduler": dask_cluster.scheduler_address}),
                                tmp_path / "dask", echo=lines.append)
        finally:
            client.unregister_worker_plugin(plugin.name)
    out = tmp_path / "dask"
    assert (counters / "killed").exists(), "the victim cell never started"
    runs = (counters / "runs.txt").read_text().split()
    assert sorted(runs) == sorted(f"{c['method']}__b{c['budget']}__s{c['seed']}" for c in _table(out)), lines
    assert len(runs) == len(set(runs)) == 6  # every cell ran to the end once, the victim included
    assert len(list((out / "cells").glob("*.json"))) == 6
    assert summary["cells"] == {"planned": 6, "ran": 6, "skipped": 0, "failed": 0}, lines
    assert summary["scheduler"] == dask_cluster.scheduler_address
    assert _table(out) == _table(tmp_path / "local")
    assert any(line.startswith("pretrain simclr-") and "done" in line for line in lines), lines
    assert (out / "study.log").read_text().count("cell ") >= 6

    # a rerun through the CLI submits nothing: every cell is done and the pretraining run is finished
    config_file = tmp_path / "tiny.yaml"
    config_file.write_text(yaml.safe_dump(settings))
    result = CliRunner().invoke(cli, ["study", str(config_file), "--out", str(out),
                                      "--scheduler", dask_cluster.scheduler_address])
    assert result.exit_code == 0, result.output
    assert "0 cells ran (0 failed), 6 skipped" in result.output
    assert "0 pretraining runs and 0 cells submitted" in result.output
    assert sorted((counters / "runs.txt").read_text().split()) == sorted(runs)
    assert _table(out) == _table(tmp_path / "local")


def test_a_bad_or_unreachable_scheduler_is_a_one_line_error(tiny_study, tmp_path, monkeypatch):
    import photossl.cluster
    from photossl.errors import PhotosslError

    with pytest.raises(PhotosslError, match="config key 'scheduler' must be a Dask scheduler address"):
        make_study_config(tiny_study(scheduler="localhost"))
    monkeypatch.setattr(photossl.cluster, "CONNECT_TIMEOUT_S", 1)
    with pytest.raises(PhotosslError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        run_study(make_study_config(tiny_study(scheduler="tcp://127.0.0.1:9")), tmp_path / "s", echo=lambda m: None)
