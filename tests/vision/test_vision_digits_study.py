"""The digits study script's helpers on tiny configs: commands, supervised baseline, read-outs, tables."""

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

pytest.importorskip("kornia")
pytest.importorskip("sklearn")

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "vision_digits_study.py"
CONFIG = REPO / "pipelines" / "vision-digits.yaml"


@pytest.fixture(scope="module")
def study():
    spec = importlib.util.spec_from_file_location("vision_digits_study", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


TINY = {"limit_samples": 64, "batch_size": 32, "epochs": 2, "image_size": 8, "linear_probe_seeds": [0],
        "linear_probe_epochs": 3, "knn_k": 5, "progress": False, "threads": 1, "warmup_epochs": 1}


def test_config_overrides_and_commands(study, tmp_path):
    config = study.load_study_config(CONFIG, method="care", seed=3, epochs=7, limit_samples=None)
    assert (config.method, config.seed, config.epochs, config.encoder) == ("care", 3, 7, "digits")
    assert config.limit_samples is None  # None overrides are ignored, the file's value stays
    cmd = study.pretrain_command(CONFIG, "essl", 2, 25, tmp_path / "r")
    flags = dict(zip(cmd[1::], cmd[2::]))
    assert flags["--config"] == str(CONFIG) and flags["--method"] == "essl"
    assert flags["--seed"] == "2" and flags["--epochs"] == "25" and flags["--out"] == str(tmp_path / "r")
    assert "--resume" not in cmd and "--resume" in study.pretrain_command(CONFIG, "essl", 2, 25, tmp_path, True)
    sup = study.supervised_command(CONFIG, 1, 5, tmp_path / "s")
    assert sup[1] == str(SCRIPT) and sup[2] == "supervised" and "--epochs" in sup
    assert study.run_dir(tmp_path, "care", 2) == tmp_path / "care-seed2"


def test_is_complete_reads_status_and_epochs(study, tmp_path):
    assert not study.is_complete(tmp_path, 5)
    (tmp_path / "run.json").write_text(json.dumps({"status": "running", "config": {"epochs": 5}}))
    assert not study.is_complete(tmp_path, 5)
    (tmp_path / "run.json").write_text(json.dumps({"status": "complete", "config": {"epochs": 5}}))
    assert study.is_complete(tmp_path, 5) and not study.is_complete(tmp_path, 6)


def test_simple_augment_only_crops(study):
    augment = study.simple_augment(8)
    assert (augment.flip_p, augment.jitter_p, augment.gray_p) == (0.0, 0.0, 0.0)
    # a constant image stays constant under crops alone (jitter or grayscale would change its value)
    images = torch.full((6, 1, 8, 8), 0.3)
    out = augment(images, torch.Generator().manual_seed(0))
    assert out.shape == (6, 1, 8, 8) and torch.allclose(out, images)


def test_supervised_run_and_its_evaluation(study, tmp_path):
    config = study.load_study_config(CONFIG, **TINY)
    record = study.train_supervised(config, tmp_path / "sup", echo=lambda message: None)
    saved = json.loads((tmp_path / "sup" / "supervised.json").read_text())
    assert saved["status"] == "complete" and len(saved["metrics"]) == 2 and saved["steps_per_epoch"] == 2
    assert 0 <= record["head_accuracy"] <= 1 and 0 <= record["knn_top1"] <= 1
    assert record["linear_probe"]["seeds"] == [0]
    assert study.is_complete(tmp_path / "sup", 2)
    ev = study.EvalData(config, study.load_training_data(config))
    row = study.evaluate_supervised_run(tmp_path / "sup", ev)
    assert row["method"] == "supervised" and row["head_acc"] == record["head_accuracy"]
    assert row["linear_probe_acc"] == record["linear_probe"]["mean"]
    assert {f"wahba_enc_{k}" for k in study.WAHBA_KEYS} <= set(row)


def test_ssl_run_evaluation_reads_the_trainer_outputs(study, tmp_path):
    from photossl.training import pretrain

    config = study.load_study_config(CONFIG, **{**TINY, "method": "essl", "epochs": 1})
    pretrain(config, tmp_path / "essl")
    ev = study.EvalData(config, study.load_training_data(config))
    row = study.evaluate_ssl_run(tmp_path / "essl", ev)
    record = json.loads((tmp_path / "essl" / "run.json").read_text())
    assert row["method"] == "essl" and row["linear_probe_acc"] == record["linear_probe"]["mean"]
    assert row["knn_top1"] == record["last_epoch"]["knn_top1"]
    assert 0 <= row["rotation_head_acc_crop"] <= 1 and 0 <= row["rotation_head_acc_full"] <= 1
    assert row["lambda_care"] is None and row["lambda_predict"] == config.lambda_predict
    assert {f"wahba_proj_{k}" for k in study.WAHBA_KEYS} <= set(row)


def test_wahba_errors_zero_for_an_orthogonal_map_and_large_for_shuffled_pairs(study):
    base = torch.randn(200, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    q[:, 0] *= torch.sign(torch.linalg.det(q))  # in SO(6)
    errors = study.wahba_errors(base, {"g": base @ q.T, "noise": torch.randn_like(base)})
    assert errors["g"] < 1e-10
    assert errors["chance"] > 0.5 and errors["noise"] > 0.5


class _Pixels(nn.Module):
    """Flattened pixels: keeps every bit of orientation."""

    feature_dim = 64

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return self.scale * x.flatten(1)


class _RotationAverage(_Pixels):
    """Pixels averaged over the four quarter turns: exactly rotation-invariant."""

    def forward(self, x):
        return super().forward(sum(torch.rot90(x, k, dims=(-2, -1)) for k in range(4)))


def test_rotation_probe_separates_sensitive_from_invariant_features(study):
    g = torch.Generator().manual_seed(0)
    ramp = torch.linspace(0, 1, 8).view(1, 1, 8, 1)  # upright images: brighter towards the bottom
    train, test = ramp + 0.5 * torch.rand(64, 1, 8, 8, generator=g), ramp + 0.5 * torch.rand(32, 1, 8, 8, generator=g)
    identity = lambda x: x  # noqa: E731
    assert study.rotation_probe(_Pixels(), train, test, identity, epochs=30) > 0.9
    assert study.rotation_probe(_RotationAverage(), train, test, identity, epochs=30) < 0.45


def test_summary_tables_and_files(study, tmp_path):
    rows = [
        {"method": "simclr", "seed": 0, "linear_probe_acc": 0.90, "knn_top1": 0.80},
        {"method": "simclr", "seed": 1, "linear_probe_acc": 0.94, "knn_top1": 0.84},
        {"method": "supervised", "seed": 0, "linear_probe_acc": 0.97, "knn_top1": 0.95, "head_acc": 0.96},
        {"method": "random", "seed": 0, "linear_probe_acc": 0.93, "knn_top1": 0.70, "wahba_enc_rot90": math.nan},
    ]
    summary = study.summarise(rows)
    assert [e["method"] for e in summary] == ["random", "supervised", "simclr"]
    simclr = summary[2]
    assert simclr["n_seeds"] == 2 and simclr["linear_probe_acc_mean"] == pytest.approx(0.92)
    assert simclr["linear_probe_acc_std"] == pytest.approx(0.02 * math.sqrt(2))  # sample std (n - 1)
    assert math.isnan(simclr["head_acc_mean"]) and summary[1]["head_acc_std"] == 0.0
    assert "92.0 ± 2.8" in study.summary_markdown(summary)
    study.write_results(rows, tmp_path, {"command": "test"})
    lines = (tmp_path / "results.csv").read_text().splitlines()
    assert lines[0].startswith("method,seed,epochs,linear_probe_acc") and len(lines) == 5
    meta = json.loads((tmp_path / "study.json").read_text())  # strict JSON: NaN became null
    assert meta["summary"][2]["head_acc_mean"] is None
    assert (tmp_path / "accuracy.png").stat().st_size > 1000
