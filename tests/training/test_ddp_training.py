"""Data-parallel pretraining: two gloo processes on halves of a batch reproduce one process on the whole batch.

BatchNorm would make the two differ by design (each rank normalises with its own half's statistics), so the step
test uses an encoder and heads without it; everything else — DistributedDataParallel, negatives gathered across
ranks for NT-Xent, global VICReg / Barlow statistics, the E-SSL and CARE terms, gradient averaging — is the
trainer's own code (:func:`photossl.training.train_step` on a :class:`~photossl.training.PretrainModel`).
"""

import dataclasses
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from photossl.distributed import local_gloo_group
from photossl.models import PredictionHead, ProjectionHead
from photossl.training import Objective, PretrainModel, Views, parse_method, train_step

WORLD = 2
PER_RANK = 4
CASES = {  # method -> objective settings
    "essl-care": {"temperature": 0.2, "lambda_predict": 2.0, "lambda_care": 0.5, "care_chunk": 2},
    "vicreg": {},
    "barlow": {},
}
REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _model(method: str) -> PretrainModel:
    torch.manual_seed(0)
    spec = parse_method(method)
    encoder = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                            nn.Linear(16, 10))
    projector = ProjectionHead((10, 8, 6), norm="none")
    predictor = PredictionHead(10, 4, hidden_dims=(8,), norm="none") if spec.predict else None
    return PretrainModel(encoder, projector, predictor, Objective(spec=spec, **CASES[method])).double()


def _views(method: str) -> Views:
    g = torch.Generator().manual_seed(1)
    b = WORLD * PER_RANK
    x = lambda n: torch.rand(n, 1, 6, 6, generator=g, dtype=torch.float64)  # noqa: E731
    views = Views(x(b), x(b))
    if parse_method(method).predict:
        views.predict_views, views.predict_labels = x(4 * b), torch.arange(4).repeat_interleave(b)
    return views


def _step(model: nn.Module, views: Views) -> dict:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    terms = train_step(model, views, optimizer)
    inner = getattr(model, "module", model)
    return {"terms": terms, "params": {k: v.detach().clone() for k, v in inner.state_dict().items()}}


def _worker(rank: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    with local_gloo_group(rank, WORLD, port):
        results = {}
        for method in CASES:
            model = nn.parallel.DistributedDataParallel(_model(method))
            local = _views(method).rows(slice(rank * PER_RANK, (rank + 1) * PER_RANK))
            results[method] = _step(model, local)
        # Control: NT-Xent with each rank's own negatives only is a different objective.
        local_only = _model("essl-care")
        local_only.objective = dataclasses.replace(local_only.objective, gather_distributed=False)
        results["local-negatives"] = _step(nn.parallel.DistributedDataParallel(local_only),
                                           _views("essl-care").rows(slice(rank * PER_RANK, (rank + 1) * PER_RANK)))
        for result in results.values():
            for value in result["terms"].values():  # the logged value is the mean over ranks
                dist.all_reduce(value)
                value /= WORLD
        if rank == 0:
            torch.save(results, out)


@pytest.fixture(scope="module")
def two_process_steps(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp") / "rank0.pt"
    mp.spawn(_worker, args=(_free_port(), str(out)), nprocs=WORLD, join=True)
    return torch.load(out)


@pytest.mark.parametrize("method", list(CASES))
def test_two_processes_match_one_process_on_the_whole_batch(two_process_steps, method):
    single = _step(_model(method), _views(method))
    double = two_process_steps[method]
    for key, value in single["terms"].items():
        if key != "predict_acc":
            torch.testing.assert_close(double["terms"][key], value, rtol=1e-10, atol=1e-12, msg=key)
    moved = False
    for key, value in single["params"].items():
        torch.testing.assert_close(double["params"][key], value, rtol=1e-9, atol=1e-12, msg=key)
        moved |= not torch.equal(value, _model(method).state_dict()[key])
    assert moved  # the step changed the weights, so equal weights mean equal gradients


def test_without_gathered_negatives_the_processes_would_differ(two_process_steps):
    single = _step(_model("essl-care"), _views("essl-care"))
    local = two_process_steps["local-negatives"]
    assert not torch.allclose(local["terms"]["base"], single["terms"]["base"])
    torch.testing.assert_close(local["terms"]["predict_ce"], single["terms"]["predict_ce"])  # per-sample terms agree


@pytest.mark.slow
def test_torchrun_cli_two_processes(tiny_dataset, tmp_path):
    script = tmp_path / "photossl_cli.py"
    script.write_text("import sys\nfrom photossl.cli.main import cli\nsys.exit(cli())\n")
    run = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script),
               "pretrain", "--data", str(tiny_dataset), "--method", "essl", "--epochs", "1", "--batch-size", "16",
               "--out", str(run), "--threads", "1", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    record = json.loads((run / "run.json").read_text())
    assert record["world_size"] == 2 and record["status"] == "complete"
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1  # rank 0 alone writes
    assert torch.load(run / "checkpoint.pt")["world_size"] == 2
