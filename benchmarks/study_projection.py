"""How long a whole study takes here: run a measured slice of it, then project every stage to the full size.

The slice is the study itself (``run_study``, the same code and settings) made small: ``--cells`` generated cells
(the test count scaled with them; the validation cells, which every fine-tuning epoch passes over, kept), ``--epochs``
pretraining epochs per method, and one fine-tuning cell at each of two budgets for every network method, each cut to
``--finetune-epochs`` epochs.
Each stage's time is then scaled to the study as written:

- generation: seconds per labelled cell x the cells the study labels (all of them, or with ``label_cells: needed``
  the ones it reads labels of; making an unlabelled cell's permittivity costs next to nothing);
- pretraining: seconds per epoch per pool cell x epochs x pool cells, per pretraining run;
- the grid: per method, an epoch of fine-tuning costs ``a + c * steps`` (steps = ceil(budget / batch); ``a`` is the
  validation pass and per-epoch overhead), fitted to the two measured budgets, times each cell's epochs (``epochs``
  capped by ``max_steps``). This is an upper bound: early stopping (``patience``) ends many cells sooner.

    python benchmarks/study_projection.py pipelines/dos-sibcl.yaml --device cuda --cells 2000
    python benchmarks/study_projection.py pipelines/dos-sibcl-cpu.yaml --cells 600 --epochs 1

The slice writes into a temporary folder (``--out`` keeps it). Classical baselines (ridge, kernel ridge) cost
seconds and are left out. Wall times depend on the machine's load, printed at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import tempfile
import time
from pathlib import Path

import yaml

DONE = re.compile(r"^pretrain (\S+): done in (\d+) s")
DATA = re.compile(r"^data: .* \((\d+) cells generated, \d+ reused(?:, (\d+) without labels)?, (\d+) s\)")


def slice_config(full: dict, cells: int, epochs: int, finetune_epochs: int, budgets: tuple[int, int],
                 device: str) -> dict:
    """The study ``full`` made small: fewer cells, epochs and budgets, one seed, no baselines or figures."""
    from photossl.study.config import BASELINE_METHODS

    small = yaml.safe_load(yaml.safe_dump(full))
    total = int(full["generate"]["n_cells"])
    small["generate"] = {**full["generate"], "n_cells": cells, "chunk_size": min(cells, 250)}
    if isinstance(full.get("n_test"), int):  # validation stays full size: its pass is part of every epoch's cost
        small["n_test"] = max(10, round(full["n_test"] * cells / total))
    small["methods"] = [m for m in full["methods"] if _kind(full, m) not in BASELINE_METHODS]
    small["budgets"], small["seeds"] = list(budgets), [0]
    small["pretrain"] = {**full.get("pretrain", {}), "epochs": epochs, "probe_every": epochs,
                         "checkpoint_every": epochs}
    small["finetune"] = {**full.get("finetune", {}), "epochs": finetune_epochs, "patience": finetune_epochs}
    small["finetune"].pop("max_steps", None)
    for options in small.get("method_options", {}).values():
        options.pop("budgets", None)
        for section in ("pretrain", "finetune"):
            for key in ("epochs", "max_steps", "patience"):
                (options.get(section) or {}).pop(key, None)
    small.update(figures=False, diagnostics=False, tuning=None, device=device, progress=False, name="slice")
    return small


def _kind(config: dict, label: str) -> str:
    return ((config.get("method_options") or {}).get(label) or {}).get("method") or label


def cell_times(study_dir: Path) -> dict[str, dict[int, float]]:
    """{method label: {budget: wall seconds}} from the slice's cell records."""
    cells: dict[str, dict[int, float]] = {}
    for path in sorted((study_dir / "cells").glob("*.json")):
        record = json.loads(path.read_text())
        cells.setdefault(record["method"], {})[int(record["budget"])] = float(record["wall_time_s"])
    return cells


def labelled_cells(full: dict) -> int:
    """How many cells the study ``full`` has the solver label."""
    from photossl.study import make_study_config, plan_study
    from photossl.study.plan import needed_label_cells

    n_cells = int(full["generate"]["n_cells"])
    if full.get("label_cells", "all") != "needed":
        return n_cells
    with tempfile.TemporaryDirectory(prefix="photossl-plan-") as tmp:  # planning writes nothing
        return len(needed_label_cells(plan_study(make_study_config(full), Path(tmp) / "study"), n_cells))


def project(full: dict, log: list[str], cells: dict[str, dict[int, float]],
            measured: dict) -> list[tuple[str, float, float]]:
    """(stage, measured seconds, projected seconds) rows from the slice's log lines and cell times."""
    from photossl.finetune.config import make_finetune_config
    from photossl.study.config import make_study_config

    study = make_study_config(full)
    rows = []
    for line in log:
        if m := DATA.match(line):
            per_label = int(m[3]) / max(1, int(m[1]) - int(m[2] or 0))
            rows.append((f"generate ({labelled_cells(full)} labelled cells)", float(m[3]),
                         per_label * labelled_cells(full)))
    pool = measured["pool_full"] / measured["pool_slice"]
    for line in log:
        if m := DONE.match(line):
            name = m[1]
            label = name.rsplit("-", 1)[0]
            epochs_full = ((study.method_options.get(label) and study.method_options[label].pretrain.get("epochs"))
                           or full.get("pretrain", {}).get("epochs", 100))
            rows.append((f"pretrain {label}", float(m[2]),
                         float(m[2]) / measured["epochs"] * epochs_full * pool))
    for label, times in cells.items():
        b1, b2 = sorted(times)
        settings = {**full.get("finetune", {}), **(study.method_options.get(label).finetune
                                                   if label in study.method_options else {})}
        config = make_finetune_config({k: v for k, v in settings.items() if k != "target"} | {"target": "dos"})
        steps1, steps2 = math.ceil(b1 / config.batch_size), math.ceil(b2 / config.batch_size)
        per_step = max(0.0, (times[b2] - times[b1]) / measured["finetune_epochs"] / max(1, steps2 - steps1))
        per_epoch = max(0.0, times[b1] / measured["finetune_epochs"] - steps1 * per_step)
        budgets = (study.method_options[label].budgets if label in study.method_options else None) or study.budgets
        total = sum(config.epochs_for(b) * (per_epoch + math.ceil(b / config.batch_size) * per_step)
                    for b in budgets) * len(study.seeds)
        rows.append((f"grid {label} ({len(budgets) * len(study.seeds)} cells)", times[b1] + times[b2], total))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path, help="the study file to project")
    parser.add_argument("--cells", type=int, default=1000, help="cells generated in the slice [1000]")
    parser.add_argument("--epochs", type=int, default=1, help="pretraining epochs in the slice [1]")
    parser.add_argument("--finetune-epochs", type=int, default=2, help="fine-tuning epochs per slice cell [2]")
    parser.add_argument("--budgets", default="50,400", help="the two budgets measured per method [50,400]")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--out", type=Path, default=None, help="keep the slice in this folder [a temporary one]")
    args = parser.parse_args()
    b1, b2 = (int(b) for b in args.budgets.split(","))

    from photossl.study import make_study_config, run_study

    full = yaml.safe_load(args.config.read_text())
    small = slice_config(full, args.cells, args.epochs, args.finetune_epochs, (b1, b2), args.device)
    total = int(full["generate"]["n_cells"])
    held_out = sum(int(full.get(k) or 0) for k in ("n_test", "n_validation"))
    held_out_slice = sum(int(small.get(k) or 0) for k in ("n_test", "n_validation"))
    measured = {"epochs": args.epochs, "finetune_epochs": args.finetune_epochs,
                "pool_full": total - held_out, "pool_slice": args.cells - held_out_slice}
    log: list[str] = []
    with tempfile.TemporaryDirectory(prefix="photossl-slice-") as tmp:
        out = args.out or Path(tmp) / "study"
        start = time.perf_counter()
        run_study(make_study_config(small), out, echo=lambda line: (log.append(line), print(line, flush=True)))
        wall = time.perf_counter() - start
        cells = cell_times(out)
    rows = project(full, log, cells, measured)
    print(f"\n{args.config}: slice of {args.cells} cells ({measured['pool_slice']} in the pool), {args.epochs} "
          f"pretraining epoch(s), budgets {b1} and {b2} at {args.finetune_epochs} fine-tuning epochs, on "
          f"{args.device}; slice wall time {wall:.0f} s")
    header = f"{'stage':<40} {'slice s':>9} {'projected h':>12}"
    print(header)
    print("-" * len(header))
    for stage, seconds, projected in rows:
        print(f"{stage:<40} {seconds:>9.0f} {projected / 3600:>12.2f}")
    print(f"{'total (grid: upper bound, no early stop)':<40} {sum(r[1] for r in rows):>9.0f} "
          f"{sum(r[2] for r in rows) / 3600:>12.2f}")
    print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
