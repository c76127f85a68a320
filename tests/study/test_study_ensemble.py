"""A study whose cells of one method are fine-tuned together (``finetune_ensemble``) writes what a study of cells
fine-tuned alone writes: the same cells, records, table and summary, with the same results up to float rounding."""

import csv
import json

import pytest

from photossl.study import make_study_config, run_study


def _rows(out):
    with (out / "results.csv").open() as handle:
        return {(r["method"], r["budget"], r["seed"]): r for r in csv.DictReader(handle)}


def test_cells_fine_tuned_together_match_cells_fine_tuned_alone(tiny_study, tmp_path):
    finetune = {"epochs": 3, "head_dims": [16], "patience": 0, "batch_size": 6}  # 8 and 16 labels: short batches
    alone = run_study(make_study_config(tiny_study(finetune=finetune, finetune_ensemble=1)), tmp_path / "alone",
                      echo=lambda m: None)
    together = run_study(make_study_config(tiny_study(finetune=finetune, finetune_ensemble=8)),
                         tmp_path / "together", echo=lambda m: None)
    assert together["cells"] == alone["cells"] == {"planned": 12, "ran": 12, "skipped": 0, "failed": 0}
    assert together["mean_over_seeds"].keys() == alone["mean_over_seeds"].keys()

    names = sorted(p.name for p in (tmp_path / "alone" / "cells").glob("*.json"))
    assert sorted(p.name for p in (tmp_path / "together" / "cells").glob("*.json")) == names
    for name in names:
        a = json.loads((tmp_path / "alone" / "cells" / name).read_text())
        t = json.loads((tmp_path / "together" / "cells" / name).read_text())
        assert set(t) == set(a) and t["status"] == "ok" and t["wall_time_s"] > 0
        network = a["method"] != "ridge"
        assert set(t["metrics"]) == set(a["metrics"]) | ({"ensemble_members"} if network else set())
        assert t["metrics"].get("ensemble_members", 4) == 4  # 2 budgets x 2 seeds of each network method
        assert t["metrics"]["selected_epoch"] == a["metrics"]["selected_epoch"]
        assert t["metrics"]["dos_rel_l1"] == pytest.approx(a["metrics"]["dos_rel_l1"], rel=1e-4)
        assert sorted(p.name for p in (tmp_path / "together" / "finetune" / a["method"] / f"b{a['budget']}-s"
                                       f"{a['seed']}").iterdir()) == sorted(
            p.name for p in (tmp_path / "alone" / "finetune" / a["method"] / f"b{a['budget']}-s{a['seed']}").iterdir())

    rows_alone, rows_together = _rows(tmp_path / "alone"), _rows(tmp_path / "together")
    assert rows_together.keys() == rows_alone.keys()
    for key, row in rows_alone.items():
        assert list(rows_together[key]) == list(row)  # the same columns in the same order
        assert float(rows_together[key]["dos_rel_l1"]) == pytest.approx(float(row["dos_rel_l1"]), rel=1e-4)


def test_a_rerun_fine_tunes_only_the_missing_cells_together(tiny_study, tmp_path):
    config = make_study_config(tiny_study(methods=["supervised", "ridge"], finetune_ensemble=8))
    out = tmp_path / "study"
    summary = run_study(config, out, echo=lambda m: None)
    assert summary["cells"] == {"planned": 8, "ran": 8, "skipped": 0, "failed": 0}
    first = {p.name: json.loads(p.read_text()) for p in (out / "cells").glob("*.json")}
    for name in ("supervised__b8__s1.json", "supervised__b16__s0.json", "ridge__b8__s0.json"):
        (out / "cells" / name).unlink()
    summary = run_study(config, out, echo=lambda m: None)
    assert summary["cells"] == {"planned": 8, "ran": 3, "skipped": 5, "failed": 0}
    again = {p.name: json.loads(p.read_text()) for p in (out / "cells").glob("*.json")}
    assert again["supervised__b8__s1.json"]["metrics"]["ensemble_members"] == 2
    assert again["supervised__b8__s1.json"]["metrics"]["dos_rel_l1"] == pytest.approx(
        first["supervised__b8__s1.json"]["metrics"]["dos_rel_l1"], rel=1e-4)
    assert again["supervised__b8__s0.json"] == first["supervised__b8__s0.json"]  # finished cells are not touched
