"""Throughput of one pretraining step (augmentation + forward + backward + optimiser step) on photonic unit cells.

Times the trainer's own code path (PhotonicsViews + train_step on a PretrainModel) for SimCLR, E-SSL and CARE with
the E-SSL photonics recipe (policy essl-gpm: translate + flip invariances, rot4 predicted from the 4 rotations of
the un-augmented batch; CARE chunks of 16), random 32x32 cells, batch 256, SGD. Reports the median over repeats of
samples per second and the share of the step spent making the views.

    python benchmarks/pretrain_throughput.py                      # reference encoder at 1 and 2 threads, small too
    python benchmarks/pretrain_throughput.py --threads 2 --repeats 5
    python benchmarks/pretrain_throughput.py --quick              # batch 64, 2 repeats

On a busy machine the thread count matters a lot: with other jobs on the cores, one intra-op thread is often
faster than two that wait for each other, so the default measures both.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from photossl.training import build_model, make_config, resolve_defaults, train_step
from photossl.training.views import PhotonicsViews, Views

# The E-SSL reference training step (rdangovs/essl photonics code, torch 2.13), batch 256 on 32x32 cells, measured
# earlier on this machine's 2-core CPU (RECIPES.md section 2); its per-sample augmentation loops took 37 % of the
# SimCLR step. Figures from another machine are not comparable.
REFERENCE_SAMPLES_PER_S = {"simclr": 13.4, "essl": 8.0}
REFERENCE_AUGMENT_SHARE = {"simclr": 0.37}
METHODS = ("simclr", "essl", "care")


class ReferenceStyleViews:
    """The reference code's way of making views, for a same-machine, same-moment comparison: a Python loop over
    samples (random roll, random flip, ``torch.cat``) and ``torch.rot90`` copies of the batch, zero padding."""

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
            views.predict_labels = torch.arange(4).repeat_interleave(x.shape[0])
        return views


def time_steps(encoder: str, method: str, batch_size: int, size: int, repeats: int, warmup: int, seed: int = 0,
               reference_style: bool = False, circular: bool = True, predict_views: str = "all"):
    """(median seconds per step, median share of it spent on views, parameter count)."""
    config = resolve_defaults(make_config({"method": method, "encoder": encoder, "policy": "essl-gpm",
                                           "batch_size": batch_size, "care_chunk": 16,
                                           "circular_padding": circular and not reference_style}))
    torch.manual_seed(seed)
    model = build_model(config, in_channels=1)
    if reference_style:
        pipeline = ReferenceStyleViews(config.spec.predict)
    else:
        pipeline = PhotonicsViews(config.symmetry_policy(), config.spec, config.care_chunk, config.care_views,
                                  predict_views=predict_views)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    generator = torch.Generator().manual_seed(seed)
    cells = torch.rand(batch_size, 1, size, size, generator=generator)
    totals, shares = [], []
    for i in range(warmup + repeats):
        start = time.perf_counter()
        views = pipeline(cells, generator)
        made = time.perf_counter()
        train_step(model, views, optimizer)
        end = time.perf_counter()
        if i >= warmup:
            totals.append(end - start)
            shares.append((made - start) / (end - start))
    n_params = sum(p.numel() for p in model.encoder.parameters())
    return statistics.median(totals), statistics.median(shares), n_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=256, help="cells per step [256]")
    parser.add_argument("--size", type=int, default=32, help="cell side in pixels [32]")
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per setting; the median is reported [3]")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first [1]")
    parser.add_argument("--threads", default="1,2", help="comma-separated torch thread counts to measure [1,2]")
    parser.add_argument("--encoders", default="essl,small", help="encoders: essl (reference), small [essl,small]")
    parser.add_argument("--methods", default=",".join(METHODS), help="methods [simclr,essl,care]")
    parser.add_argument("--quick", action="store_true", help="batch 64 and 2 repeats (a smoke test)")
    parser.add_argument("--paddings", default="circular,zero",
                        help="padding of the essl encoder: circular (photossl's default), zero (the reference's)")
    parser.add_argument("--essl-one", action="store_true",
                        help="also time E-SSL with one random rotation per sample (--predict-views one)")
    parser.add_argument("--no-reference-style", action="store_true",
                        help="skip the rows that re-create the reference's per-sample augmentation loops")
    args = parser.parse_args()
    if args.quick:
        args.batch_size, args.repeats = 64, 2

    print(f"pretraining step throughput: batch {args.batch_size}, {args.size}x{args.size} cells, "
          f"median of {args.repeats} steps after {args.warmup} warm-up")
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads by default")
    header = (f"{'encoder':<9} {'padding':<8} {'method':<7} {'threads':>7} {'samples/s':>10} {'augment':>8}   "
              "reference figure (same machine, earlier)")
    print(header)
    print("-" * len(header))

    def row(name: str, padding: str, method: str, threads: int, seconds: float, share: float, note: str) -> None:
        print(f"{name:<9} {padding:<8} {method:<7} {threads:>7} {args.batch_size / seconds:>10.1f} {share:>8.1%}   "
              f"{note}", flush=True)

    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        for encoder in args.encoders.split(","):
            paddings = args.paddings.split(",") if encoder == "essl" else ["circular"]
            for padding in paddings:
                for method in args.methods.split(","):
                    seconds, share, _ = time_steps(encoder, method, args.batch_size, args.size, args.repeats,
                                                   args.warmup, circular=padding == "circular")
                    note = ""
                    if encoder == "essl" and method in REFERENCE_SAMPLES_PER_S:
                        note = f"{REFERENCE_SAMPLES_PER_S[method]:.1f} samples/s"
                        if method in REFERENCE_AUGMENT_SHARE:
                            note += f", augment {REFERENCE_AUGMENT_SHARE[method]:.0%}"
                    row(encoder, padding, method, threads, seconds, share, note)
                    if method == "essl" and args.essl_one:
                        seconds, share, _ = time_steps(encoder, method, args.batch_size, args.size, args.repeats,
                                                       args.warmup, circular=padding == "circular",
                                                       predict_views="one")
                        row(encoder, padding, "essl-1", threads, seconds, share, "one rotation per sample")
            if encoder == "essl" and not args.no_reference_style:
                for method in (m for m in args.methods.split(",") if m in REFERENCE_SAMPLES_PER_S):
                    seconds, share, _ = time_steps(encoder, method, args.batch_size, args.size, args.repeats,
                                                   args.warmup, reference_style=True)
                    row("ref-loop", "zero", method, threads, seconds, share, "reference-style views, timed now")
    print("reference: the E-SSL authors' photonics training step (batch 256, 32x32, reference encoder), measured "
          "earlier on this machine under its load at that time; ref-loop rows re-create its per-sample "
          "augmentation loops here and now. essl = E-SimCLR (2 views + 4 rotations of the batch).")


if __name__ == "__main__":
    main()
