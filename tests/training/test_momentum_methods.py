"""BYOL and MoCo v2: the momentum schedule and EMA update, MoCo's queue, the loss a model computes, two processes
against one, and an exact resume with a non-empty queue."""

import math
import socket
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

from photossl.distributed import local_gloo_group
from photossl.errors import PhotosslError
from photossl.losses import byol_loss, moco_loss, paired_care_equivariance_loss
from photossl.models import PredictionHead, ProjectionHead
from photossl.training import (
    Objective,
    PretrainModel,
    Views,
    load_checkpoint,
    make_config,
    parse_method,
    pretrain,
    resolve_defaults,
    train_step,
)
from photossl.training.momentum import KeyQueue, cosine_momentum, ema_update
from photossl.training.run_log import log_columns

WORLD, PER_RANK, QUEUE = 2, 4, 20


def _model(method: str, queue_size: int = QUEUE, **objective) -> PretrainModel:
    torch.manual_seed(0)
    spec = parse_method(method)
    encoder = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                            nn.Linear(16, 10))
    projector = ProjectionHead((10, 8, 6), norm="none")
    predictor = PredictionHead(10, 4, hidden_dims=(8,), norm="none") if spec.predict else None
    byol_predictor = ProjectionHead((6, 8, 6), norm="none") if spec.base == "byol" else None
    queue = KeyQueue(queue_size, 6) if spec.base == "moco" else None
    objective = {"temperature": 0.2, "lambda_predict": 2.0, "lambda_care": 0.5, "care_chunk": 2, **objective}
    return PretrainModel(encoder, projector, predictor, Objective(spec=spec, **objective),
                         byol_predictor=byol_predictor, queue=queue).double()


def _views(method: str, seed: int = 1) -> Views:
    g = torch.Generator().manual_seed(seed)
    b = WORLD * PER_RANK
    x = lambda n: torch.rand(n, 1, 6, 6, generator=g, dtype=torch.float64)  # noqa: E731
    views = Views(x(b), x(b))
    if parse_method(method).predict:
        views.predict_views, views.predict_labels = x(4 * b), torch.arange(4).repeat_interleave(b)
    return views


# ------------------------------------------------------------------------------------ schedule, EMA, queue
def test_momentum_schedule_end_points():
    assert cosine_momentum(0, 100, 0.996) == 0.996
    assert cosine_momentum(100, 100, 0.996) == 1.0
    assert cosine_momentum(50, 100, 0.996) == pytest.approx(0.998, abs=1e-15)
    assert cosine_momentum(250, 100, 0.996) == 1.0  # past the end
    values = [cosine_momentum(k, 10, 0.9) for k in range(11)]
    assert values == sorted(values)
    with pytest.raises(PhotosslError, match="total_steps"):
        cosine_momentum(0, 0, 0.996)


def test_ema_update_against_a_hand_computation():
    model = _model("byol")
    for t, o in zip(model.target_encoder.parameters(), model.encoder.parameters()):
        assert torch.equal(t, o) and not t.requires_grad  # a copy at the start, outside the optimiser
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    assert not any(p is t for group in optimizer.param_groups for p in group["params"]
                   for t in model.target_encoder.parameters())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train_step(model, _views("byol"), optimizer, step=3, total_steps=10)
    after = model.state_dict()
    tau = 1 - (1 - 0.996) * (math.cos(math.pi * 3 / 10) + 1) / 2
    for key in before:
        if key.startswith(("target_encoder.", "target_projector.")):
            online = after[key.removeprefix("target_")]
            assert not torch.equal(online, before[key.removeprefix("target_")])  # the online weights moved
            torch.testing.assert_close(after[key], tau * before[key] + (1 - tau) * online, rtol=0, atol=1e-15)
    # the bare update
    target, online = nn.Linear(2, 2).double(), nn.Linear(2, 2).double()
    expected = [0.9 * t + 0.1 * o for t, o in zip(target.parameters(), online.parameters())]
    ema_update(target, online, 0.9)
    for t, e in zip(target.parameters(), expected):
        torch.testing.assert_close(t.detach(), e.detach(), rtol=0, atol=1e-15)
    # MoCo: a constant momentum whatever the step, also returned as a logged term
    model = _model("moco", ema_momentum=0.9)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    terms = train_step(model, _views("moco"), optimizer, step=5, total_steps=10)
    assert float(terms["momentum"]) == pytest.approx(0.9)
    after, key = model.state_dict(), "target_projector.0.weight"
    torch.testing.assert_close(after[key], 0.9 * before[key] + 0.1 * after["projector.0.weight"], rtol=0, atol=1e-15)


def test_queue_is_first_in_first_out_and_wraps_around():
    queue = KeyQueue(5, 2)
    keys = torch.arange(26, dtype=torch.float32).view(13, 2)
    queue.push(keys[:3])
    assert int(queue.pointer) == 3 and torch.equal(queue.keys[:3], keys[:3])
    queue.push(keys[3:6])  # rows 3, 4, then wraps to row 0
    assert int(queue.pointer) == 1
    assert torch.equal(queue.keys, keys[[5, 1, 2, 3, 4]])
    assert torch.equal(queue.ordered(), keys[1:6])  # oldest first
    queue.push(keys[6:13])  # more keys than slots: the last 5 remain, still in order
    assert int(queue.pointer) == (1 + 7) % 5
    assert torch.equal(queue.ordered(), keys[8:13])
    with pytest.raises(PhotosslError, match="queue size"):
        KeyQueue(0, 2)


# ------------------------------------------------------------------------------------------ the objective
def test_essl_byol_is_byol_on_the_online_network_plus_the_prediction_term():
    model = _model("essl-byol")
    views = _views("essl-byol")
    terms = model(views)
    embed = lambda v: model.projector(model.encoder(v))  # noqa: E731
    target = lambda v: model.target_projector(model.target_encoder(v))  # noqa: E731
    z1, z2 = embed(views.view1), embed(views.view2)
    base = byol_loss(model.byol_predictor(z1), model.byol_predictor(z2), target(views.view1), target(views.view2))
    torch.testing.assert_close(terms["base"], base)
    torch.testing.assert_close(terms["loss"], base + 2.0 * terms["predict_ce"])
    terms["loss"].backward()
    assert all(p.grad is None for p in model.target_encoder.parameters())
    assert all(p.grad is not None for p in [*model.byol_predictor.parameters(), *model.encoder.parameters()])


def test_care_moco_scores_the_queue_then_enqueues_both_views_keys():
    model = _model("care-moco", queue_size=24)
    views = _views("care-moco")
    start = model.queue.keys.clone()
    terms = model(views)
    z1, z2 = model.embed(views.view1), model.embed(views.view2)
    k1, k2 = model.target_embed(views.view1), model.target_embed(views.view2)
    base = 0.5 * (moco_loss(z1, k2, start, 0.2) + moco_loss(z2, k1, start, 0.2))
    torch.testing.assert_close(terms["base"], base)
    torch.testing.assert_close(terms["care"], paired_care_equivariance_loss(z1, z2, 2))
    torch.testing.assert_close(terms["loss"], base + 0.5 * terms["care"])
    b = views.view1.shape[0]
    torch.testing.assert_close(model.queue.keys[:2 * b], F.normalize(torch.cat([k1, k2]), dim=1))
    assert torch.equal(model.queue.keys[2 * b:], start[2 * b:]) and int(model.queue.pointer) == 2 * b
    terms["loss"].backward()  # the in-place enqueue leaves the graph intact
    model.eval()
    model(views)
    assert int(model.queue.pointer) == 2 * b  # evaluation does not enqueue


def test_configs_names_and_defaults():
    for name in ("byol", "moco", "essl-byol", "essl-rel-byol", "care-moco", "gcare-byol", "essl-care-moco"):
        assert parse_method(name).name == name
    assert parse_method("byol-essl").name == "essl-byol"
    with pytest.raises(PhotosslError):
        parse_method("byol-moco")
    photonics = resolve_defaults(make_config({"method": "moco"}))
    assert (photonics.temperature, photonics.ema_momentum, photonics.moco_queue_size) == (0.2, 0.999, 4096)
    vision = resolve_defaults(make_config({"method": "care-moco", "track": "vision"}))
    assert (vision.temperature, vision.moco_queue_size) == (0.2, 65536)
    set_by_user = resolve_defaults(make_config({"method": "moco", "temperature": 0.07, "moco_queue_size": 64}))
    assert (set_by_user.temperature, set_by_user.moco_queue_size) == (0.07, 64)
    byol = resolve_defaults(make_config({"method": "essl-byol"}))
    assert (byol.ema_momentum, byol.moco_queue_size, byol.temperature) == (0.996, None, 0.1)
    assert "momentum" in log_columns(byol) and "momentum" not in log_columns(resolve_defaults(make_config({})))
    for bad, key in (({"ema_momentum": 1.5}, "ema_momentum"), ({"moco_queue_size": 0}, "moco_queue_size")):
        with pytest.raises(PhotosslError, match=key):
            make_config({"method": "moco", **bad})


def test_study_accepts_the_new_bases():
    from photossl.study.config import make_study_config

    names = ["byol", "essl-byol", "care-moco", "gcare-byol", "essl-rel-byol"]
    study = make_study_config({"methods": ["supervised", *names],
                               "method_options": {"care-moco": {"pretrain": {"moco_queue_size": 64}}}})
    assert [study.method_kind(name) for name in names] == ["pretrained"] * len(names)


# ------------------------------------------------------------------------------- two processes against one
def _two_steps(model: nn.Module, views: list[Views]) -> dict:
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5, momentum=0.9)
    terms = [train_step(model, v, optimizer, step=k, total_steps=4) for k, v in enumerate(views)]
    inner = getattr(model, "module", model)
    return {"terms": terms, "state": {k: v.detach().clone() for k, v in inner.state_dict().items()}}


DDP_METHODS = ("essl-byol", "care-moco")


def _worker(rank: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    with local_gloo_group(rank, WORLD, port):
        results = {}
        rows = slice(rank * PER_RANK, (rank + 1) * PER_RANK)
        for method in DDP_METHODS:
            model = nn.parallel.DistributedDataParallel(_model(method))
            results[method] = _two_steps(model, [_views(method, seed).rows(rows) for seed in (1, 2)])
            for step in results[method]["terms"]:
                for value in step.values():  # the logged value is the mean over ranks
                    dist.all_reduce(value)
                    value /= WORLD
        if rank == 1:  # every rank holds the same queue and targets
            torch.save(results, out + ".rank1")
        if rank == 0:
            torch.save(results, out)


@pytest.fixture(scope="module")
def two_process_steps(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp") / "rank0.pt"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # spawn, not fork: a forked child of a process whose torch thread pools already ran can hang in them.
    context = mp.start_processes(_worker, args=(port, str(out)), nprocs=WORLD, join=False, start_method="spawn")
    deadline = time.monotonic() + 300
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("distributed workers did not finish within 120 s")
    return torch.load(out), torch.load(str(out) + ".rank1")


@pytest.mark.parametrize("method", DDP_METHODS)
def test_two_processes_match_one_process_on_the_whole_batch(two_process_steps, method):
    single = _two_steps(_model(method), [_views(method, seed) for seed in (1, 2)])
    rank0, rank1 = (result[method] for result in two_process_steps)
    for step_single, step_double in zip(single["terms"], rank0["terms"]):
        for key, value in step_single.items():
            if key != "predict_acc":
                torch.testing.assert_close(step_double[key], value, rtol=1e-10, atol=1e-12, msg=key)
    initial = _model(method).state_dict()
    for key, value in single["state"].items():  # online and target weights, the queue and its pointer
        torch.testing.assert_close(rank0["state"][key], value, rtol=1e-9, atol=1e-12, msg=key)
        assert torch.equal(rank1["state"][key], rank0["state"][key]), key
        if key.startswith("target_encoder.") or key == "queue.keys":
            assert not torch.equal(value, initial[key]), key  # they moved, so equal means equally updated
    if method == "care-moco":
        assert int(single["state"]["queue.pointer"]) == (2 * 2 * WORLD * PER_RANK) % QUEUE  # wrapped around


# ------------------------------------------------------------------------------------------ exact resume
@pytest.mark.parametrize("method", ["moco", "byol"])
def test_interrupted_then_resumed_equals_uninterrupted(tiny_dataset, tmp_path, method):
    from photossl.study.encoders import load_encoder

    config = make_config({
        "data": str(tiny_dataset), "method": method, "moco_queue_size": 40 if method == "moco" else None,
        "epochs": 2, "batch_size": 16, "limit_samples": 32, "probe_every": 0, "progress": False, "threads": 1,
        "optimizer": "adam",
    })
    pretrain(config, tmp_path / "straight")
    pretrain(config, tmp_path / "split", stop_after_epochs=1)
    halfway = load_checkpoint(tmp_path / "split")
    assert halfway["epoch"] == 1 and halfway["global_step"] == 2
    if method == "moco":  # 2 steps of 2 × 16 keys: the queue holds real keys and has wrapped
        assert int(halfway["model"]["queue.pointer"]) == 64 % 40
    pretrain(config, tmp_path / "split", resume=True)
    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "split")
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert any(k.startswith("target_projector.") for k in a["model"])
    # the diagnostics rebuild the whole model and evaluate the online encoder
    loaded = load_encoder(tmp_path / "split")
    online = {k.removeprefix("encoder."): v for k, v in b["model"].items() if k.startswith("encoder.")}
    assert all(torch.equal(loaded.encoder.state_dict()[k], v) for k, v in online.items())
    assert not all(torch.equal(b["model"][f"target_encoder.{k}"], v) for k, v in online.items()
                   if v.is_floating_point())
