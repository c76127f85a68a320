"""Method names, config defaults and validation, and the CLI's config-file / option precedence and errors."""

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from photossl.cli.main import cli
from photossl.errors import PhotosslError
from photossl.training.config import MethodSpec, make_config, parse_method, resolve_defaults

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "name, spec",
    [
        ("simclr", MethodSpec("simclr")),
        ("essl", MethodSpec("simclr", predict=True)),
        ("care", MethodSpec("simclr", care=True)),
        ("essl-care", MethodSpec("simclr", predict=True, care=True)),
        ("care-essl-simclr", MethodSpec("simclr", predict=True, care=True)),
        ("vicreg", MethodSpec("vicreg")),
        ("essl-vicreg", MethodSpec("vicreg", predict=True)),
        ("care-barlow", MethodSpec("barlow", care=True)),
        ("ESSL_Barlow", MethodSpec("barlow", predict=True)),
    ],
)
def test_method_names_compose(name, spec):
    assert parse_method(name) == spec
    assert parse_method(spec.name) == spec  # the canonical name round-trips


def test_canonical_names_of_the_contract_methods():
    assert [parse_method(n).name for n in ("simclr", "essl", "care")] == ["simclr", "essl", "care"]
    assert MethodSpec("vicreg", predict=True, care=True).name == "essl-care-vicreg"


@pytest.mark.parametrize("name", ["", "swav", "simclr-vicreg", "byol-moco", "essl-essl", "e-simclr"])
def test_bad_method_names_are_rejected(name):
    with pytest.raises(PhotosslError, match="unknown method"):
        parse_method(name)


def test_track_defaults_follow_the_recipes():
    photonics = resolve_defaults(make_config({"method": "essl"}))
    assert (photonics.encoder, photonics.temperature, photonics.lambda_predict) == ("small", 0.1, 5.0)
    assert photonics.lr == 1e-3
    assert photonics.warmup_epochs == 0 and photonics.lr_scaling == "none" and photonics.care_views == "shared"
    vision = resolve_defaults(make_config({"track": "vision", "method": "essl", "dataset": "cifar10"}))
    assert (vision.encoder, vision.temperature, vision.lambda_predict, vision.lr) == ("resnet18", 0.5, 0.4, 0.06)
    assert (vision.warmup_epochs, vision.weight_decay, vision.lr_scaling) == (10.0, 5e-4, "linear")
    assert vision.care_views == "separate"  # the CARE authors' arrangement
    assert resolve_defaults(make_config({"track": "vision"})).lr == 0.03
    assert resolve_defaults(make_config({"track": "vision"})).encoder == "digits"
    explicit = resolve_defaults(make_config({"method": "essl", "temperature": 0.3, "lr": 0.5}))
    assert (explicit.temperature, explicit.lr) == (0.3, 0.5)


def test_policy_presets_and_overrides():
    gpm = make_config({"policy": "essl-gpm"}).symmetry_policy()
    assert gpm.invariant == ["translate", "flip"] and gpm.predict == "rot4"
    blob = make_config({"policy": "essl-blob"}).symmetry_policy()
    assert blob.invariant == ["flip", "rot4"] and blob.predict == "half_translate"
    custom = make_config({"invariant": ["d4", "translate"], "predict": "none"}).symmetry_policy()
    assert custom.invariant == ["d4", "translate"] and custom.predict is None
    assert custom.eps_normalisation == (1.0, 19.0)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"epochs": 0}, "'epochs' must be >= 1"),
        ({"batch_size": "many"}, "'batch_size' must be an integer"),
        ({"optimizer": "lars"}, "'optimizer' must be one of"),
        ({"method": "essl", "predict": "none"}, "needs a group of transformations"),
        ({"invariant": ["shear"]}, "unknown invariant transformation 'shear'"),
        ({"temperature": 0}, "'temperature' must be > 0"),
        ({"surrogate_fraction": 1.0}, "surrogate_fraction"),
        ({"learning_rate": 0.1}, "unknown config key 'learning_rate'"),
        ({"track": "vision", "predict": "d4"}, "predicts rot4 only"),
    ],
)
def test_bad_config_values_name_the_key(values, message):
    with pytest.raises(PhotosslError, match=message):
        make_config(values)


def test_cli_rejects_unknown_config_key_in_one_line(tmp_path, one_line_error):
    config = tmp_path / "bad.yaml"
    config.write_text("method: simclr\nbatchsize: 32\n")
    result = CliRunner().invoke(cli, ["pretrain", "--config", str(config), "--out", str(tmp_path / "run")])
    line = one_line_error(result, "unknown config key 'batchsize'", "did you mean 'batch_size'?")
    assert len(line) < 120  # the nearest key, not the list of all of them
    assert not (tmp_path / "run").exists()
    config.write_text("zzqx: 1\n")  # nothing close: where the keys are documented
    one_line_error(CliRunner().invoke(cli, ["pretrain", "--config", str(config), "--out", str(tmp_path / "run")]),
                   "unknown config key 'zzqx'", "photossl.training.config.PretrainConfig")


def test_cli_rejects_bad_values_in_one_line(tmp_path, one_line_error):
    result = CliRunner().invoke(cli, ["pretrain", "--method", "swav", "--out", str(tmp_path / "r")])
    one_line_error(result, "unknown method 'swav'")
    config = tmp_path / "bad.yaml"
    config.write_text("epochs: -3\n")
    result = CliRunner().invoke(cli, ["pretrain", "--config", str(config), "--out", str(tmp_path / "r")])
    one_line_error(result, "'epochs' must be >= 1")
    result = CliRunner().invoke(cli, ["pretrain", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r")])
    one_line_error(result, "dataset not found")


@pytest.mark.parametrize("name", ["pretrain-quick.yaml", "vision-digits.yaml", "vision-cifar10.yaml"])
def test_pipeline_files_are_valid_configs(name):
    config = resolve_defaults(make_config(yaml.safe_load((REPO / "pipelines" / name).read_text())))
    assert config.epochs >= 1


def test_cifar10_pipeline_encodes_the_essl_recipe():
    config = resolve_defaults(make_config(yaml.safe_load((REPO / "pipelines" / "vision-cifar10.yaml").read_text())))
    assert (config.encoder, config.batch_size, config.epochs, config.temperature) == ("resnet18", 512, 800, 0.5)
    assert (config.lr, config.lr_scaling, config.warmup_epochs, config.lambda_predict) == (0.06, "linear", 10, 0.4)
    assert (config.weight_decay, config.momentum, config.knn_k, config.knn_temperature) == (5e-4, 0.9, 200, 0.1)
    simclr = resolve_defaults(make_config({**yaml.safe_load((REPO / "pipelines" / "vision-cifar10.yaml").read_text()),
                                           "method": "simclr"}))
    assert simclr.lr == 0.03


def test_command_line_overrides_only_the_options_given(tmp_path, monkeypatch):
    seen = {}

    def fake_pretrain(config, out, resume=False, echo=None):
        seen["config"], seen["out"] = config, out
        return {"status": "complete"}

    monkeypatch.setattr("photossl.training.trainer.pretrain", fake_pretrain)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"method": "essl", "epochs": 7, "lr": 0.5, "seed": 3, "invariant": ["flip"]}))
    result = CliRunner().invoke(
        cli, ["pretrain", "--config", str(config), "--epochs", "2", "--invariant", "translate,rot4",
              "--no-progress", "--out", str(tmp_path / "run")]
    )
    assert result.exit_code == 0, result.output
    got = seen["config"]
    assert (got.epochs, got.lr, got.seed, got.method) == (2, 0.5, 3, "essl")  # file values kept unless overridden
    assert got.invariant == ["translate", "rot4"] and got.progress is False
    assert got.batch_size == 256 and got.circular_padding is True  # defaults of options not given
    assert seen["out"] == Path(tmp_path / "run")


def test_a_config_parses_its_method_and_policy_once():
    import dataclasses

    from photossl.config import config_to_dict

    config = make_config({"method": "essl-care"})
    assert config.spec is config.spec and config.symmetry_policy() is config.symmetry_policy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.method = "simclr"
    assert "spec" not in config_to_dict(config) and config_to_dict(config) == config_to_dict(
        make_config({"method": "essl-care"}))
    assert resolve_defaults(config).spec == config.spec
