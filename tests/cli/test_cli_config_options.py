"""Options made from the config dataclasses: the defaults ``--help`` shows are the dataclasses', one precedence rule
(command line > config file > dataclass default), the group's global options, and a ``--help`` that loads no torch."""

import dataclasses
import importlib
import subprocess
import sys

import pytest
import yaml
from click.testing import CliRunner

from photossl.cli.main import cli
from photossl.cli.options import field_default, format_default, help_with_default

# the command modules whose options are made from a config dataclass (each holds it as CONFIG)
COMMANDS = ["photossl.cli.pretrain", "photossl.cli.finetune", "photossl.cli.generate", "photossl.cli.study"]


def _option_lines(command: str) -> dict[str, str]:
    """Each option's entry of ``photossl COMMAND --help`` (flags and help on one line), by its first flag."""
    result = CliRunner().invoke(cli, [command, "--help"], terminal_width=400)
    assert result.exit_code == 0, result.output
    lines: dict[str, str] = {}
    flag = None
    for line in result.output.split("Options:")[1].splitlines():
        if line.startswith("  -"):
            flag = line.split()[0]
            lines[flag] = line
        elif flag is not None:  # help text that click put below a long option name
            lines[flag] += " " + line.strip()
    return lines


@pytest.mark.parametrize("module_name", COMMANDS)
def test_help_shows_the_dataclass_defaults(module_name):
    module = importlib.import_module(module_name)
    options = module.CONFIG
    real = getattr(importlib.import_module(options.module_name), options.class_name)  # the class a run builds
    fields = {f.name: f for f in dataclasses.fields(real)}
    command = module_name.rsplit(".", 1)[1]
    lines = _option_lines(command)
    params = {p.name: p for p in getattr(module, command).params}
    from_field = 0
    for spec in options.fields.values():
        param = params[spec.param]
        assert param.default is None, spec.field  # a default on the option would hide the config file's value
        line = lines[param.opts[0]]
        if spec.from_field:
            assert spec.shown == format_default(field_default(fields[spec.field])), spec.field
            from_field += 1
        if spec.shown is not None:
            assert spec.shown in line, (spec.field, line)
    assert from_field >= {"pretrain": 16, "finetune": 22, "generate": 14, "study": 0}[command]


def test_some_shown_defaults_verbatim():
    """What users read, for a few options whose formatting matters (exponents, pairs, lists, switches)."""
    from photossl.cli import finetune, generate, pretrain

    expected = {
        (finetune, "budget"): "[50]", (finetune, "lr"): "[1e-3]", (finetune, "weight_decay"): "[1e-5]",
        (finetune, "head_dims"): "[512,512]", (finetune, "augment"): "[translate,d4]",
        (finetune, "circular_padding"): "[on]", (finetune, "exact_symmetry"): "[off]", (finetune, "n_test"): "[0.1]",
        (generate, "eps_in_range"): "[1,20]", (generate, "filling_range"): "[0.01,0.99]",
        (generate, "targets"): "[dos,bands,gaps]", (generate, "use_symmetry"): "[on]", (generate, "n_cells"): "[1024]",
        (generate, "preset"): "(default sibcl-p1)", (pretrain, "lambda_care"): "[0.9]",
        (pretrain, "surrogate_fraction"): "[0.25]", (pretrain, "policy"): "[essl-gpm]",
        (pretrain, "ema_momentum"): "[0.996]; MoCo's [0.999]",
    }
    for (module, name), text in expected.items():
        command = getattr(module, module.__name__.rsplit(".", 1)[1])
        param = next(p for p in command.params if p.name == name)
        assert text in param.help, (module.__name__, name, param.help)


def test_formatting_of_defaults():
    assert [format_default(v) for v in (1e-3, 1e-5, 0.1, 0.01, 0.25, 20.0, 4096, True, False, None)] == \
        ["1e-3", "1e-5", "0.1", "0.01", "0.25", "20", "4096", "on", "off", None]
    assert format_default((1.0, 20.0)) == "1,20" and format_default(["translate", "d4"]) == "translate,d4"
    assert help_with_default("Number of cells.", "1024") == "Number of cells [1024]."
    assert help_with_default("Pick {choices} [{default}]; or none.", "tm", ("tm", "te")) == "Pick tm, te [tm]; or none."


# ------------------------------------------------------------------------------------------------------ precedence
@pytest.fixture
def captured_finetune(monkeypatch):
    """Runs ``photossl ...`` with a fake fine-tuning run; returns (result, the config it got, its echo lines)."""
    seen = {}

    def fake(config, out, overwrite=False, echo=None):
        seen["config"] = config
        echo("training ...")
        echo("Warning: something to know")
        return {"metric": "dos_rel_l1", "dos_rel_l1": 0.1, "method": "supervised", "budget": config.budget,
                "selected_epoch": 1}

    monkeypatch.setattr("photossl.finetune.finetune", fake)

    def run(*args):
        result = CliRunner().invoke(cli, [str(a) for a in args])
        assert result.exit_code == 0, result.output
        return result, seen["config"]

    return run


def test_command_line_beats_file_beats_dataclass(captured_finetune, tmp_path):
    config = tmp_path / "ft.yaml"
    config.write_text(yaml.safe_dump({"budget": 30, "lr": 0.5, "threads": 1, "augment": ["flip"]}))
    _, got = captured_finetune("finetune", "--config", config, "--budget", 10, "--augment", "none", "--out",
                               tmp_path / "ft")
    assert (got.budget, got.lr, got.threads, got.augment) == (10, 0.5, 1, [])  # line > file; file kept
    assert (got.epochs, got.batch_size, got.progress) == (100, 16, True)  # dataclass defaults
    _, got = captured_finetune("finetune", "--out", tmp_path / "ft")
    assert (got.budget, got.lr) == (50, 1e-3)


def test_global_options_reach_the_command_under_its_own(captured_finetune, tmp_path):
    config = tmp_path / "ft.yaml"
    config.write_text(yaml.safe_dump({"threads": 1, "device": "cuda"}))
    _, got = captured_finetune("--threads", 2, "--device", "cpu", "--no-progress", "finetune", "--config", config,
                               "--out", tmp_path / "ft")
    assert (got.threads, got.device, got.progress) == (2, "cpu", False)  # the group's line beats the file
    _, got = captured_finetune("--threads", 2, "finetune", "--threads", 3, "--out", tmp_path / "ft")
    assert got.threads == 3  # the command's own option wins
    _, got = captured_finetune("finetune", "--threads", 1, "--no-progress", "--out", tmp_path / "ft")
    assert (got.threads, got.progress) == (1, False)  # the per-command spelling still works


def test_quiet_keeps_results_and_warnings(captured_finetune, tmp_path):
    result, got = captured_finetune("-q", "finetune", "--out", tmp_path / "ft")
    assert got.progress is False
    assert "training ..." not in result.output and "Warning: something to know" in result.output
    assert "supervised: test dos_rel_l1" in result.output
    result, got = captured_finetune("finetune", "--out", tmp_path / "ft")
    assert "training ..." in result.output and got.progress is True


def test_generate_precedence_over_preset_and_file(monkeypatch, tmp_path):
    seen = {}

    class Done:
        complete, cells_written, cells_reused, cells_per_second = True, 0, 0, 0.0

    def fake(config, out, **run):
        seen.update(config=config, **run)
        return Done()

    monkeypatch.setattr("photossl.data.generate.generate_dataset", fake)
    config = tmp_path / "g.yaml"
    config.write_text(yaml.safe_dump({"preset": "p4m", "n_cells": 7, "size": 16, "targets": ["dos"]}))
    result = CliRunner().invoke(cli, ["--no-progress", "generate", "--config", str(config), "--n-cells", "5",
                                      "--eps-in-range", "2,3", "--out", str(tmp_path / "d")])
    assert result.exit_code == 0, result.output
    got = seen["config"]
    assert (got.preset, got.group, got.n_cells, got.size, got.targets) == ("p4m", "p4m", 5, 16, ("dos",))
    assert got.eps_in_range == (2.0, 3.0) and got.chunk_size == 64 and seen["progress"] is False


def test_help_imports_no_torch():
    """The options are built from the config modules alone; their packages (torch, xarray) are not imported."""
    script = ("import sys\nfrom click.testing import CliRunner\nfrom photossl.cli.main import cli\n"
              "for command in ('pretrain', 'finetune', 'generate', 'study', 'predict', 'import-sibcl'):\n"
              "    assert CliRunner().invoke(cli, [command, '--help']).exit_code == 0, command\n"
              "heavy = sorted(m for m in ('torch', 'xarray', 'photossl.training', 'photossl.finetune') "
              "if m in sys.modules)\nassert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
