"""``photossl study`` resumes: finished cells are never redone, interrupted and deleted ones are; failures are
reported without stopping the grid."""

import csv
import json

import pytest
import xarray as xr

from photossl.data.storage import file_sha256
from photossl.errors import PhotosslError
from photossl.study import execute, make_study_config, run_study


def _counting(monkeypatch, calls, fail=None, interrupt_after=None):
    """Replace the cells' fine-tuning (photossl.study.execute) with a wrapper that records (label, budget, seed)
    and can fail or stop."""
    from photossl.finetune import finetune as real

    def wrapper(config, out, **kwargs):
        if interrupt_after is not None and len(calls) == interrupt_after:
            raise KeyboardInterrupt
        calls.append((config.label, config.budget, config.seed))
        if fail is not None and calls[-1] == fail:
            raise RuntimeError("the solver exploded")
        return real(config, out, **kwargs)

    monkeypatch.setattr(execute, "finetune", wrapper)


def _rows(out):
    with (out / "results.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_resumes_after_an_interruption_without_redoing_finished_cells(tiny_study, tmp_path, monkeypatch):
    out = tmp_path / "study"
    config = make_study_config(tiny_study())
    first: list = []
    _counting(monkeypatch, first, interrupt_after=4)
    with pytest.raises(KeyboardInterrupt):
        run_study(config, out, echo=lambda m: None)
    assert len(first) == 4 and len(list((out / "cells").glob("*.json"))) == 4
    assert "study tiny: interrupted; finished cells are kept" in (out / "study.log").read_text().splitlines()[-1]
    (checkpoint,) = (out / "pretrain").glob("simclr-*/checkpoint.pt")
    sha, mtime = file_sha256(checkpoint), checkpoint.stat().st_mtime_ns

    second: list = []
    _counting(monkeypatch, second)
    summary = run_study(config, out, echo=lambda m: None)
    assert len(second) == 12 - 4 and not set(second) & set(first)
    assert summary["cells"] == {"planned": 12, "ran": 8, "skipped": 4, "failed": 0}
    assert file_sha256(checkpoint) == sha and checkpoint.stat().st_mtime_ns == mtime  # pretraining not redone

    (out / "cells" / "simclr__b16__s1.json").unlink()
    third: list = []
    _counting(monkeypatch, third)
    summary = run_study(config, out, echo=lambda m: None)
    assert third == [("simclr", 16, 1)] and summary["cells"]["skipped"] == 11

    rows = _rows(out)
    assert len(rows) == 12 and {r["status"] for r in rows} == {"ok"}
    assert {(r["method"], r["budget"], r["seed"]) for r in rows} == {
        (m, str(b), str(s)) for m in ("supervised", "simclr", "ridge") for b in (8, 16) for s in (0, 1)}
    assert all(float(r["dos_rel_l1"]) > 0 and float(r["wall_time_s"]) > 0 and r["selected_epoch"] for r in rows)

    # a changed fine-tuning setting makes the affected cells stale: refused by name, nothing runs or is written ...
    fourth: list = []
    _counting(monkeypatch, fourth)
    changed = make_study_config(tiny_study(method_options={"supervised": {"finetune": {"lr": 0.002}}}))
    log_before = (out / "study.log").read_text()
    with pytest.raises(PhotosslError, match=r"4 finished cells ran with other settings \(supervised__b8__s0, "
                                            r".*--rerun-changed"):
        run_study(changed, out, echo=lambda m: None)
    assert fourth == [] and (out / "study.log").read_text() == log_before
    # ... and with rerun_changed only those run again
    run_study(changed, out, echo=lambda m: None, rerun_changed=True)
    assert sorted(fourth) == sorted(("supervised", b, s) for b in (8, 16) for s in (0, 1))


def test_a_failed_cell_is_reported_and_the_others_run(tiny_study, tmp_path, monkeypatch):
    out = tmp_path / "study"
    config = make_study_config(tiny_study(methods=["supervised", "ridge"], seeds=[0]))
    calls: list = []
    _counting(monkeypatch, calls, fail=("supervised", 8, 0))
    summary = run_study(config, out, echo=lambda m: None)
    assert len(calls) == 4 and summary["cells"]["failed"] == 1
    assert summary["failed_cells"] == ["supervised__b8__s0: RuntimeError: the solver exploded"]
    record = json.loads((out / "cells" / "supervised__b8__s0.json").read_text())
    assert record["status"] == "failed" and "the solver exploded" in record["traceback"]
    assert "supervised__b8__s0: FAILED (RuntimeError: the solver exploded)" in (out / "study.log").read_text()
    statuses = {(r["method"], r["budget"]): (r["status"], r["dos_rel_l1"]) for r in _rows(out)}
    assert statuses[("supervised", "8")] == ("failed", "")
    assert all(status == "ok" and float(error) > 0 for key, (status, error) in statuses.items()
               if key != ("supervised", "8"))
    with xr.open_dataset(out / "results.nc", engine="h5netcdf") as table:
        assert table.sizes["row"] == 4 and list(table["status"].values).count("failed") == 1

    retry: list = []
    _counting(monkeypatch, retry)
    summary = run_study(config, out, echo=lambda m: None)
    assert retry == [("supervised", 8, 0)] and summary["cells"]["failed"] == 0


def test_failed_pretraining_fails_only_its_cells(tiny_study, tmp_path):
    out = tmp_path / "study"
    # a batch larger than the pretraining pool cannot run
    values = tiny_study(methods=["simclr", "ridge"], seeds=[0], budgets=[8],
                        method_options={"simclr": {"pretrain": {"batch_size": 4096}}})
    summary = run_study(make_study_config(values), out, echo=lambda m: None)
    (job,) = summary["pretraining"].values()
    assert job["status"] == "failed" and "batch_size 4096" in job["error"]
    statuses = {r["method"]: r["status"] for r in _rows(out)}
    assert statuses == {"simclr": "failed", "ridge": "ok"}
    assert "pretraining simclr-" in json.loads((out / "cells" / "simclr__b8__s0.json").read_text())["error"]


def test_processes_sharing_a_study_run_only_their_methods(tiny_study, tmp_path, monkeypatch):
    out = tmp_path / "study"
    config = make_study_config(tiny_study(seeds=[0]))
    first: list = []
    _counting(monkeypatch, first)
    summary = run_study(config, out, echo=lambda m: None, only=["simclr"])
    assert sorted(first) == [("simclr", 8, 0), ("simclr", 16, 0)]
    assert summary["cells"] == {"planned": 6, "ran": 2, "skipped": 0, "failed": 0}
    assert {r["method"] for r in _rows(out)} == {"simclr"}

    second: list = []
    _counting(monkeypatch, second)
    run_study(config, out, echo=lambda m: None, only=["supervised", "ridge"])
    assert sorted(second) == [("ridge", 8, 0), ("ridge", 16, 0), ("supervised", 8, 0), ("supervised", 16, 0)]
    assert len(_rows(out)) == 6  # the table covers every finished cell, the other process's included

    third: list = []
    _counting(monkeypatch, third)
    summary = run_study(config, out, echo=lambda m: None)
    assert third == [] and summary["cells"]["skipped"] == 6
    (job,) = summary["pretraining"].values()
    assert job["status"] == "ok"

    with pytest.raises(PhotosslError, match="--only names 'byol', which is not a method of this study"):
        run_study(config, out, echo=lambda m: None, only=["byol"])
    with pytest.raises(PhotosslError, match="--only names no method"):
        run_study(config, out, echo=lambda m: None, only=[])


def test_a_cell_another_process_finished_meanwhile_is_not_run_again(tiny_study, tmp_path, monkeypatch):
    from photossl.finetune import finetune as real
    from photossl.study import plan_study
    from photossl.study.plan import cell_fingerprint

    out = tmp_path / "study"
    config = make_study_config(tiny_study(methods=["supervised"], seeds=[0]))
    calls: list = []

    def wrapper(cell_config, run_out, **kwargs):
        calls.append((cell_config.budget, cell_config.seed))
        if len(calls) == 1:  # meanwhile, a second process sharing the folder (same methods) runs the other cell
            plan = plan_study(config, out)
            other = next(cell for cell in plan.cells if cell.budget != cell_config.budget)
            execute.run_cell(plan, other, cell_fingerprint(plan, other), lambda message: None)
        return real(cell_config, run_out, **kwargs)

    monkeypatch.setattr(execute, "finetune", wrapper)
    summary = run_study(config, out, echo=lambda m: None)
    assert calls == [(8, 0), (16, 0)]  # this process's first cell, then the other process's
    assert summary["cells"] == {"planned": 2, "ran": 1, "skipped": 1, "failed": 0}
    assert "cell supervised__b16__s0: finished meanwhile by another process; skipped" in (
        out / "study.log").read_text()
    assert len(_rows(out)) == 2 and {r["status"] for r in _rows(out)} == {"ok"}


def test_cli_prints_cell_lines_above_the_bar_and_the_summary_once(tiny_study, tmp_path):
    import yaml
    from click.testing import CliRunner

    from photossl.cli.main import cli

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_study(methods=["ridge"], seeds=[0], progress=True)))
    result = CliRunner().invoke(cli, ["study", str(config), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert result.output.count("cells ran") == 1
    segments = [part for line in result.output.split("\n") for part in line.split("\r")]
    cell_lines = [part for part in segments if part.startswith("cell ridge__")]
    assert len(cell_lines) == 2 and not [part for part in segments if "study cells" in part and "cell ridge" in part]


def test_cli_ctrl_c_exits_130_and_the_log_says_interrupted(tiny_study, tmp_path, monkeypatch):
    import yaml
    from click.testing import CliRunner

    from photossl.cli.main import cli

    _counting(monkeypatch, [], interrupt_after=1)
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_study(methods=["ridge"], seeds=[0])))
    result = CliRunner().invoke(cli, ["study", str(config), "--out", str(tmp_path / "out")])
    assert result.exit_code == 130 and isinstance(result.exception, SystemExit), result.output
    assert result.output.splitlines()[-1].startswith("Error: interrupted")
    assert "interrupted" in (tmp_path / "out" / "study.log").read_text().splitlines()[-1]
    assert len(list((tmp_path / "out" / "cells").glob("*.json"))) == 1  # the finished cell is kept
