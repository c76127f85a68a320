"""Run every N-th supervised-exact cell of dos-symmetry, starting at cell I: ``python run_part.py I N``.

The cells are independent, so N processes sharing one study folder take them between them; the records are those of
``photossl study pipelines/dos-symmetry.yaml --out runs/dos-symmetry --only supervised-exact``, which resumes (and
skips) them. Run from the repository root, once the study's data exist, with the snapshot the study ran from
(commit a270335: later versions keep ``run_cell`` and ``StudyLog`` in ``photossl.study.execute``).
"""

import sys
from pathlib import Path

from photossl.config import read_yaml
from photossl.study import make_study_config, plan_study
from photossl.study.plan import cell_fingerprint, cell_path, read_cell
from photossl.study.runner import StudyLog, run_cell

part, parts = int(sys.argv[1]), int(sys.argv[2])
config = make_study_config({**read_yaml(Path("pipelines/dos-symmetry.yaml")), "progress": False})
plan = plan_study(config, "runs/dos-symmetry", None)
log = StudyLog(plan.out / "study.log", lambda message: print(message, flush=True))
datasets: dict = {}
for cell in [c for c in plan.cells if c.label == "supervised-exact"][part::parts]:
    fingerprint = cell_fingerprint(plan, cell)
    record = read_cell(cell_path(plan, cell))
    if record is not None and record.get("status") == "ok" and record.get("fingerprint") == fingerprint:
        continue
    record = run_cell(plan, cell, fingerprint, log, datasets)
    log(f"cell {cell.id}: {record['status']}, {record['wall_time_s']:.0f} s")
