"""Fine-tuning on a vision label budget: a classifier selected on the validation images, or the linear probe of a
frozen encoder; seeded, scored once on the test split, and read back from its folder."""

import json

import pytest
import torch

from photossl.errors import PhotosslError
from photossl.finetune.vision import accuracy, finetune_vision, load_vision_classifier
from photossl.finetune.vision_config import make_vision_finetune_config
from photossl.finetune.vision_data import VisionImages

pytest.importorskip("kornia")
pytest.importorskip("sklearn")

TINY = {"image_size": 8, "budget": 20, "n_validation": 40, "epochs": 2, "batch_size": 8, "warmup_epochs": 1,
        "device": "cpu", "threads": 1, "progress": False}


@pytest.fixture(scope="module")
def images():
    return VisionImages.load(make_vision_finetune_config(TINY))


def test_a_classifier_is_selected_on_validation_and_read_back(images, tmp_path):
    config = make_vision_finetune_config({**TINY, "label": "scratch"})
    record = finetune_vision(config, tmp_path / "a", dataset=images)
    assert record["metric"] == "top1_error" and record["method"] == "scratch" and record["kind"] == "network"
    assert record["top1_error"] == pytest.approx(1 - record["test"]["top1_acc"])
    assert record["n_train"] == 20 and record["n_validation"] == 40 and record["n_test"] == 360
    assert 1 <= record["selected_epoch"] <= 2 == record["epochs_run"]
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["top1_error"] == record["top1_error"]
    assert len((tmp_path / "a" / "history.csv").read_text().splitlines()) == 3

    model, saved = load_vision_classifier(tmp_path / "a")
    assert saved["n_classes"] == 10 and saved["encoder"] == "digits"
    from photossl.vision import normalize_images

    test = accuracy(model, *images.test, lambda x: normalize_images(x, "digits"), torch.device("cpu"), 512)
    assert test == pytest.approx(record["test"]["top1_acc"])
    again = finetune_vision(config, tmp_path / "b", dataset=images)  # seeded: the same run twice
    assert again["test"] == record["test"] and again["validation"] == record["validation"]
    with pytest.raises(PhotosslError, match="already holds a finished fine-tuning run"):
        finetune_vision(config, tmp_path / "a", dataset=images)


def test_a_frozen_untrained_encoder_is_read_out_by_the_linear_probe(images, tmp_path):
    config = make_vision_finetune_config({**TINY, "mode": "frozen", "epochs": 3})
    record = finetune_vision(config, tmp_path / "p", dataset=images)
    assert record["method"] == "random-init" and record["kind"] == "probe" and record["selected_epoch"] == 3
    assert 0 <= record["validation"]["top1_error"] <= 1 and 0 <= record["top1_error"] <= 1
    assert not (tmp_path / "p" / "model.pt").exists()
    indices = json.loads((tmp_path / "p" / "indices.json").read_text())
    assert len(indices["train"]) == 20 and not set(indices["train"]) & set(indices["validation"])


@pytest.mark.parametrize("change, fragment", [
    ({"dataset": "svhn"}, "unknown vision dataset 'svhn'"),
    ({"crop_scale": [0.8, 0.5]}, "'crop_scale' must be two area fractions"),
    ({"n_validation": 1.5}, "'n_validation' must be a count >= 1 or a fraction"),
    ({"mode": "linear"}, "config key 'mode' must be one of full, frozen"),
    ({"momentum": 1.0}, "'momentum' must lie in [0, 1)"),
])
def test_bad_vision_finetune_config(change, fragment):
    with pytest.raises(PhotosslError, match=fragment.replace("[", r"\[").replace(")", r"\)")):
        make_vision_finetune_config({**TINY, **change})


def test_images_loaded_for_another_config_are_refused(images, tmp_path):
    config = make_vision_finetune_config({**TINY, "image_size": 16})
    with pytest.raises(PhotosslError, match="were loaded for"):
        finetune_vision(config, tmp_path / "x", dataset=images)
