"""Wall time of a study's fine-tuning grid: each cell alone (``photossl.finetune.finetune``) against the cells of a
method fine-tuned together (``photossl.finetune.ensemble.finetune_ensemble``), on the same cells.

The cells are those of one network method of ``pipelines/dos-quick.yaml`` (its ``finetune`` settings: batch 16, MLP
head 512-512, cosine schedule, augmentations, early stopping) on the bundled 512-cell dataset, trained from scratch
(a pretrained encoder costs the same per step), with fewer epochs so that a round takes a minute or two. Both paths
share one opened dataset, as the study does. Rounds interleave the two paths so that load from other jobs hits both
alike; the script prints each round, the medians (wall and CPU seconds) and their ratio, and how far the two paths'
test errors are apart.

    python benchmarks/finetune_grid.py                          # budgets 50 100 200, seeds 0 1, 5 epochs, 3 rounds
    python benchmarks/finetune_grid.py --epochs 50 --rounds 1   # the full schedule
    python benchmarks/finetune_grid.py --device cuda --seeds 0 1 2 --budgets 50 100 200 400   # on a GPU
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
import yaml

from photossl.data import bundled_dataset_path
from photossl.finetune import finetune, make_finetune_config
from photossl.finetune.data import open_target_dataset
from photossl.finetune.ensemble import finetune_ensemble

PIPELINE = Path(__file__).resolve().parents[1] / "pipelines" / "dos-quick.yaml"


def _timed(fn) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=int, nargs="+", default=[50, 100, 200], help="label budgets [50 100 200]")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="seeds [0 1]")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per cell [5; dos-quick: 50]")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds [3]")
    parser.add_argument("--threads", type=int, default=1, help="torch threads [1]")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="where both paths train [cpu]")
    args = parser.parse_args()
    pipeline = yaml.safe_load(PIPELINE.read_text())
    values = {**pipeline["finetune"], "data": str(bundled_dataset_path()), "n_test": pipeline["n_test"],
              "n_validation": pipeline["n_validation"], "split_seed": pipeline["split_seed"], "epochs": args.epochs,
              "threads": args.threads, "progress": False, "device": args.device}
    cells = [(b, s) for b in args.budgets for s in args.seeds]

    def configs():
        return [make_finetune_config({**values, "budget": b, "seed": s}) for b, s in cells]

    dataset = open_target_dataset(values["data"], configs()[0])
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # its first construction imports torch._dynamo (seconds)
    work = Path(tempfile.mkdtemp(prefix="finetune-grid-"))
    times: dict[str, list[tuple[float, float]]] = {"alone": [], "together": []}
    errors: dict[str, list[float]] = {}
    try:
        for round_ in range(args.rounds):
            for path in ("alone", "together"):
                out = work / f"{path}-{round_}"
                if path == "alone":
                    wall, cpu, records = _timed(lambda out=out: [
                        finetune(c, out / f"b{c.budget}-s{c.seed}", dataset=dataset) for c in configs()])
                else:
                    wall, cpu, records = _timed(lambda out=out: finetune_ensemble(
                        configs(), [out / f"b{b}-s{s}" for b, s in cells], dataset=dataset))
                for record in records:
                    if isinstance(record, Exception):
                        raise record
                times[path].append((wall, cpu))
                errors[path] = [r["dos_rel_l1"] for r in records]
                print(f"round {round_ + 1}: {path:8s} {wall:7.1f} s wall, {cpu:7.1f} s CPU", flush=True)
                shutil.rmtree(out, ignore_errors=True)
    finally:
        dataset.close()
        shutil.rmtree(work, ignore_errors=True)
    alone = [statistics.median(v) for v in zip(*times["alone"])]
    together = [statistics.median(v) for v in zip(*times["together"])]
    print(f"{len(cells)} cells (budgets {args.budgets}, seeds {args.seeds}), {args.epochs} epochs, "
          f"{args.threads} torch thread(s), median of {args.rounds} rounds:")
    print(f"  each cell alone: {alone[0]:7.1f} s wall, {alone[1]:7.1f} s CPU")
    print(f"  together:        {together[0]:7.1f} s wall, {together[1]:7.1f} s CPU")
    print(f"  speed-up:        {alone[0] / together[0]:7.2f}x wall, {alone[1] / together[1]:7.2f}x CPU")
    gap = max(abs(a - t) / a for a, t in zip(errors["alone"], errors["together"]))
    print(f"  largest relative gap between the paths' test errors: {gap:.2e}")


if __name__ == "__main__":
    main()
