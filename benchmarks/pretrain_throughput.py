"""Throughput of one pretraining step (views + forward + backward + SGD step): photossl against the E-SSL
reference step, side by side.

Both sides run E-SSL's photonics recipe on the reference encoder (5.3 M parameters), random 32x32 cells, batch 256,
SGD, with the same objective: SimCLR's NT-Xent on two views, and for E-SSL (E-SimCLR) also 5 x the cross-entropy of
the rotation head on the 4 rotations of the un-augmented batch. The two sides differ only where the code differs:

- reference: the authors' network (zero padding, direct convolutions) and their way of making views (a Python loop
  over samples, ``torch.rot90`` copies of the batch).
- photossl: the trainer's own path (``PhotonicsViews`` + ``train_step``), periodic padding (photossl's default; a
  unit cell is periodic), its 7x7 convolutions in Fourier space (``photossl.models.spectral_conv``).

The steps alternate (reference, photossl, reference, ...) so that both see the same load; the median of the repeats
is reported, with the ratio of the medians.

    python benchmarks/pretrain_throughput.py                         # 2 threads, simclr and essl
    python benchmarks/pretrain_throughput.py --threads 1,2 --repeats 7
    python benchmarks/pretrain_throughput.py --variants direct,essl-one,zero   # also photossl's other settings
    python benchmarks/pretrain_throughput.py --quick                 # batch 64, 2 repeats (a smoke test)
    python benchmarks/pretrain_throughput.py --device cuda           # both sides on the GPU (direct convolutions)

Variants (extra photossl rows, same alternation): ``direct`` = periodic padding with direct convolutions (the
straightforward formulation); ``zero`` = the reference's zero padding in photossl (direct convolutions);
``essl-one`` = E-SSL with one random rotation per sample instead of all four: a *different, cheaper objective*,
reported separately.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import torch

from photossl.models import PeriodicConv2d
from photossl.training import build_model, make_config, resolve_defaults, train_step
from photossl.training.views import PhotonicsViews, Views

METHODS = ("simclr", "essl")


class ReferenceStyleViews:
    """The reference code's way of making views: a Python loop over samples (random roll, random flip,
    ``torch.cat``) and ``torch.rot90`` copies of the batch."""

    def __init__(self, predict: bool) -> None:
        self.predict = predict

    def _augment(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        out = []
        for cell in x:  # deliberately per sample, as the reference does
            shift = torch.randint(cell.shape[-1], (2,), generator=generator).tolist()
            cell = torch.roll(cell, shifts=shift, dims=(-2, -1))
            flip = int(torch.randint(3, (1,), generator=generator))
            if flip:
                cell = torch.flip(cell, dims=(-3 + flip,))
            out.append(cell[None])
        return torch.cat(out)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> Views:
        views = Views(self._augment(x, generator), self._augment(x, generator))
        if self.predict:
            views.predict_views = torch.cat([torch.rot90(x, k, dims=(-2, -1)) for k in range(4)])
            views.predict_labels = torch.arange(4, device=x.device).repeat_interleave(x.shape[0])
        return views


def make_step(method: str, batch_size: int, size: int, *, reference: bool = False, padding: str = "circular",
              fourier: bool = True, predict_views: str = "all", seed: int = 0,
              device: torch.device = torch.device("cpu"), autocast: torch.dtype | None = None) -> Callable[[], float]:
    """A function that runs one training step on fixed random cells and returns its wall time in seconds."""
    circular = padding == "circular" and not reference
    config = resolve_defaults(make_config({"method": method, "encoder": "essl", "policy": "essl-gpm",
                                           "batch_size": batch_size, "circular_padding": circular}))
    torch.manual_seed(seed)
    model = build_model(config, in_channels=1).to(device)
    for module in model.modules():
        if isinstance(module, PeriodicConv2d):
            module.fourier = fourier
    if reference:
        pipeline = ReferenceStyleViews(config.spec.predict)
    else:
        pipeline = PhotonicsViews(config.symmetry_policy(), config.spec, config.care_chunk, config.care_views,
                                  predict_views=predict_views)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    generator = torch.Generator().manual_seed(seed)
    cells = torch.rand(batch_size, 1, size, size, generator=generator).to(device)

    def step() -> float:
        _synchronize(device)
        start = time.perf_counter()
        train_step(model, pipeline(cells, generator), optimizer, autocast=autocast)
        _synchronize(device)
        return time.perf_counter() - start

    return step


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(steps: dict[str, Callable[[], float]], repeats: int, warmup: int) -> dict[str, float]:
    """Median seconds per step of each entry, the entries run in turn ``warmup + repeats`` times."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for i in range(warmup + repeats):
        for name, step in steps.items():
            seconds = step()
            if i >= warmup:
                times[name].append(seconds)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=256, help="cells per step [256]")
    parser.add_argument("--size", type=int, default=32, help="cell side in pixels [32]")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per side; the median is reported [5]")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per side first [1]")
    parser.add_argument("--threads", default="2", help="comma-separated torch thread counts [2]")
    parser.add_argument("--methods", default=",".join(METHODS), help="simclr and/or essl [simclr,essl]")
    parser.add_argument("--variants", default="",
                        help="extra photossl rows: direct, zero, essl-one (a different objective) [none]")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="where both sides run [cpu]")
    parser.add_argument("--quick", action="store_true", help="batch 64 and 2 repeats (a smoke test)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA GPU is available")
    if args.quick:
        args.batch_size, args.repeats = 64, 2
    variants = [v for v in args.variants.split(",") if v]
    unknown = set(variants) - {"direct", "zero", "essl-one"}
    if unknown:
        parser.error(f"unknown variants: {', '.join(sorted(unknown))}")

    print(f"pretraining step, E-SSL reference encoder: batch {args.batch_size}, {args.size}x{args.size} cells, "
          f"median of {args.repeats} interleaved steps after {args.warmup} warm-up")
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    print(f"torch {torch.__version__}, {args.device}: {where}")
    header = f"{'method':<7} {'threads':>7} {'side':<38} {'samples/s':>10} {'vs reference':>13}"
    print(header)
    print("-" * len(header))
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        for method in args.methods.split(","):
            common = {"method": method, "batch_size": args.batch_size, "size": args.size, "device": device}
            steps = {"reference (zero padding, authors' views)": make_step(**common, reference=True)}
            if device.type == "cuda":  # Fourier-space convolutions pay on the CPU only; precision auto = bf16
                steps["photossl (periodic, fp32)"] = make_step(**common)
                steps["photossl (periodic, bf16 autocast)"] = make_step(**common, autocast=torch.bfloat16)
            else:
                steps["photossl (periodic, Fourier convs)"] = make_step(**common)
            if "direct" in variants:
                steps["photossl periodic, direct convs"] = make_step(**common, fourier=False)
            if "zero" in variants:
                steps["photossl zero padding (direct convs)"] = make_step(**common, padding="zero")
            if "essl-one" in variants and method == "essl":
                steps["photossl, 1 rotation/sample (other obj.)"] = make_step(**common, predict_views="one")
            medians = interleaved(steps, args.repeats, args.warmup)
            reference = medians["reference (zero padding, authors' views)"]
            for name, seconds in medians.items():
                print(f"{method:<7} {threads:>7} {name:<38} {args.batch_size / seconds:>10.2f} "
                      f"{reference / seconds:>12.2f}x", flush=True)
    print("essl = E-SimCLR: 2 views + the 4 rotations of the batch, loss NT-Xent + 5 CE. 'vs reference' is the "
          "ratio of median step times. The machine's load is shared by both sides of each row group.")


if __name__ == "__main__":
    main()
