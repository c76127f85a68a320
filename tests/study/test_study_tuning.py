"""Validation-only tuning before a study: the same number of candidates per method, knobs a method uses, selection on
validation cells, chosen values applied to the study proper, resumable."""

from __future__ import annotations

import json

import pytest

from photossl.errors import PhotosslError
from photossl.study import make_study_config
from photossl.study.tuning import apply_tuning, candidates, choose, knob_applies

SPACE = {"pretrain.lr": [3e-4, 1e-3, 3e-3], "pretrain.temperature": [0.1, 0.5], "pretrain.lambda_predict": [1.0, 5.0],
         "finetune.lr": [1e-3, 3e-3]}


def _config(**tuning):
    return make_study_config({"name": "t", "data": "unused", "methods": ["supervised", "simclr", "essl", "ridge"],
                              "tuning": {"trials": 4, "space": SPACE, **tuning}})


def test_each_method_gets_the_same_number_of_distinct_candidates_on_the_knobs_it_uses():
    config = _config()
    for label in ("simclr", "essl"):
        drawn = candidates(config, config.tuning, label)
        assert drawn[0] == {} and len(drawn) == 4
        assert len({json.dumps(c, sort_keys=True) for c in drawn}) == 4
        assert drawn == candidates(config, config.tuning, label)  # a rerun proposes the same
    essl_keys = {k for c in candidates(config, config.tuning, "essl") for k in c}
    assert "pretrain.lambda_predict" in essl_keys
    assert all("pretrain.lambda_predict" not in c for c in candidates(config, config.tuning, "simclr"))
    # the network from scratch has no pretraining: its candidates differ in fine-tuning knobs only
    supervised = candidates(config, config.tuning, "supervised")
    assert supervised[0] == {} and len(supervised) == 3 and all(set(c) <= {"finetune.lr"} for c in supervised)
    # a grid point equal to what the config writes is not drawn again
    written = make_study_config({"name": "t", "data": "unused", "methods": ["supervised"], "finetune": {"lr": 1e-3},
                                 "tuning": {"trials": 4, "space": SPACE}})
    assert candidates(written, written.tuning, "supervised") == [{}, {"finetune.lr": 3e-3}]
    assert not knob_applies(config, "ridge", "finetune.lr")
    assert not knob_applies(config, "supervised", "finetune.encoder_lr_scale")
    assert knob_applies(config, "simclr", "finetune.encoder_lr_scale")
    assert knob_applies(config, "simclr", "pretrain.temperature") and knob_applies(config, "essl", "pretrain.epochs")


def test_the_lowest_mean_validation_error_wins_ties_go_to_the_earlier_and_unfinished_methods_stay_as_written():
    trials = {"simclr": [("simclr~t0", {}), ("simclr~t1", {"pretrain.lr": 3e-3}), ("simclr~t2", {"pretrain.lr": 1})],
              "essl": [("essl~t0", {}), ("essl~t1", {"pretrain.lr": 3e-3})]}

    def rec(v):
        return {"status": "ok", "metrics": {"validation": {"dos_rel_l1": v}, "test": {"dos_rel_l1": 0.0}}}

    records = {"simclr~t0": [rec(0.05), rec(0.05)], "simclr~t1": [rec(0.04), rec(0.06)],  # tie with t0: t0 stays
               "simclr~t2": [rec(0.06), rec(0.06)], "essl~t0": [rec(0.05)], "essl~t1": [{"status": "missing"}]}
    chosen = choose(trials, records, "dos_rel_l1")
    assert chosen["simclr"]["chosen"] == "simclr~t0" and chosen["simclr"]["overrides"] == {}
    assert chosen["essl"]["chosen"] is None
    records["simclr~t2"] = [rec(0.03), rec(0.045)]
    assert choose(trials, records, "dos_rel_l1")["simclr"]["overrides"] == {"pretrain.lr": 1}
    config = _config()
    tuned = apply_tuning(config, {"simclr": {"chosen": "simclr~t1", "overrides": {"pretrain.lr": 3e-3,
                                                                                  "finetune.lr": 3e-3}}})
    assert tuned.options("simclr").pretrain == {"lr": 3e-3} and tuned.options("simclr").finetune == {"lr": 3e-3}
    assert tuned.method_name("simclr") == "simclr" and tuned.options("essl").pretrain == {}


@pytest.mark.parametrize("tuning, message", [
    ({"space": {"lr": [1e-3]}}, "tuning.space.lr' must be named pretrain.KEY or finetune.KEY"),
    ({"space": {"pretrain.lr": []}}, "non-empty list"),
    ({"trials": 0}, "tuning.trials' must be >= 1"),
    ({"methods": ["care"]}, "names 'care', which is not in 'methods'"),
    ({"methods": ["ridge"]}, "classical baseline"),
    ({"budgets": 3}, "unknown config key 'tuning.budgets' (did you mean 'tuning.budget'?)"),
])
def test_bad_tuning_sections_are_one_line_errors(tuning, message):
    with pytest.raises(PhotosslError) as err:
        _config(**tuning).validate()
    assert message in str(err.value)


def test_a_tuned_study_runs_the_candidates_applies_the_choice_and_resumes(tiny_study, tmp_path):
    from photossl.study import run_study

    space = {"pretrain.lr": [1e-4, 3e-3], "finetune.lr": [1e-4, 3e-3]}
    config = make_study_config(tiny_study(methods=["supervised", "simclr"], budgets=[16], seeds=[0],
                                          tuning={"budget": 8, "trials": 2, "space": space}))
    out = tmp_path / "study"
    summary = run_study(config, out)
    chosen = json.loads((out / "tuning" / "chosen.json").read_text())
    assert set(chosen["methods"]) == {"supervised", "simclr"}
    for label, result in chosen["methods"].items():
        assert [t["trial"] for t in result["trials"]] == [f"{label}~t0", f"{label}~t1"]
        assert all(t["validation"] is not None for t in result["trials"])
        best = min(result["trials"], key=lambda t: t["validation"])
        assert result["chosen"] == best["trial"]
        assert sorted(p.name for p in (out / "tuning" / "cells").glob(f"{label}~t*")) == [
            f"{label}~t0__b8__s0.json", f"{label}~t1__b8__s0.json"]
    # the study proper ran with the chosen values, and says so in its study.yaml
    import yaml

    written = yaml.safe_load((out / "study.yaml").read_text())
    for label, result in chosen["methods"].items():
        for key, value in result["overrides"].items():
            section, name = key.split(".")
            assert written["method_options"][label][section][name] == value
    assert summary["cells"]["ran"] == 2
    # one pretraining run per distinct candidate, kept with the study's own: the study reused its choice's run
    assert not (out / "tuning" / "pretrain").exists()
    runs = sorted(p.name for p in (out / "pretrain").iterdir())
    assert len(runs) == 2 and all(name.startswith("simclr-") for name in runs)
    assert list(summary["pretraining"]) == [name for name in runs if name in summary["pretraining"]] != []
    chosen_run = next(iter(summary["pretraining"]))
    assert f"{out / 'pretrain' / chosen_run} is complete" in (out / "study.log").read_text()
    again = run_study(make_study_config(tiny_study(methods=["supervised", "simclr"], budgets=[16], seeds=[0],
                                                   tuning={"budget": 8, "trials": 2, "space": space})), out)
    assert again["cells"]["ran"] == 0 and again["cells"]["skipped"] == 2
    # a run of some methods keeps the others' choice: their settings, encoders and table stay the chosen ones
    run_study(config, out, only=["supervised"])
    assert json.loads((out / "tuning" / "chosen.json").read_text())["methods"] == chosen["methods"]
    assert yaml.safe_load((out / "study.yaml").read_text())["method_options"] == written["method_options"]
