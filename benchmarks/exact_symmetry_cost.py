"""Cost of exact symmetry: a plain encoder against the same encoder wrapped by ``exact_symmetry`` and against
p4m group-convolution encoders.

Times a forward pass (eval mode, no gradients) and a training step (train mode, forward + backward) on random 32x32
cells, interleaving the encoders' rounds so that load from other jobs hits all alike, and prints the medians and
their ratios to the plain encoder. The wrapped encoder runs 8 D4 images of every cell, with adaptive polyphase
subsampling; a p4m encoder runs once, with 8 channels per field.

    python benchmarks/exact_symmetry_cost.py                    # batch 64, 1 thread, 7 rounds
    python benchmarks/exact_symmetry_cost.py --encoder essl --batch 16 --rounds 3 --p4m-fields
    python benchmarks/exact_symmetry_cost.py --batch 16 --p4m-fields 4,8,16,16 8,16,32,64
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from photossl.models import build_encoder


def _time(fn, repeats: int) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="small", help="small or essl [small]")
    parser.add_argument("--batch", type=int, default=64, help="cells per batch [64]")
    parser.add_argument("--size", type=int, default=32, help="cell size in pixels [32]")
    parser.add_argument("--threads", type=int, default=1, help="torch threads [1]")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds [7]")
    parser.add_argument("--p4m-fields", nargs="*", default=["4,8,16,32", "8,16,32,64"], metavar="F0,F1,...",
                        help="p4m encoders to time, by their fields per layer [4,8,16,32 8,16,32,64]; none: skip")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(args.batch, 1, args.size, args.size)
    models = {"plain": build_encoder(args.encoder), "exact_symmetry": build_encoder(args.encoder, exact_symmetry=True)}
    for fields in args.p4m_fields:
        models[f"p4m {fields}"] = build_encoder("p4m", fields=tuple(int(f) for f in fields.split(",")))

    def forward(model):
        model.eval()
        with torch.no_grad():
            model(x)

    def step(model):
        model.train()
        model.zero_grad(set_to_none=True)
        model(x).square().mean().backward()

    times = {(name, kind): [] for name in models for kind in ("forward", "step")}
    for name, model in models.items():  # warm-up
        forward(model)
        step(model)
    for _ in range(args.rounds):
        for name, model in models.items():
            times[(name, "forward")].append(_time(lambda m=model: forward(m), 2))
            times[(name, "step")].append(_time(lambda m=model: step(m), 2))
    print(f"{args.encoder} encoder, batch {args.batch}, {args.size}x{args.size}, {args.threads} thread(s), "
          f"median of {args.rounds} rounds")
    for kind in ("forward", "step"):
        plain = statistics.median(times[("plain", kind)])
        print(f"{kind}: plain {args.encoder} {plain * 1e3:.1f} ms")
        for name in list(models)[1:]:
            other = statistics.median(times[(name, kind)])
            print(f"  {name:20s} {other * 1e3:8.1f} ms   ratio {other / plain:.1f}x")


if __name__ == "__main__":
    main()
