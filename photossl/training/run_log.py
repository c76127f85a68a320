"""Per-epoch logs of a run: ``RUN/metrics.csv`` and ``RUN/metrics.jsonl`` (one row per epoch), optionally TensorBoard.

Rows written after the last checkpoint of a killed run are dropped on resume (:meth:`RunLog.truncate`), so the logs
always describe the weights that exist.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from photossl.errors import PhotosslError
from photossl.files import append_text
from photossl.training.config import PretrainConfig
from photossl.training.methods import method_of

CSV_NAME = "metrics.csv"
JSONL_NAME = "metrics.jsonl"


def log_columns(config: PretrainConfig) -> list[str]:
    """The columns of a run's logs: step and loss, the method's terms, throughput, the monitor's read-out."""
    return ["epoch", "step", "lr", "loss", "base", *method_of(config.spec).columns, "samples_per_s",
            "augment_share", "epoch_time_s", "probe_rel_l1" if config.track == "photonics" else "knn_top1"]


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class RunLog:
    """Appends epoch rows with fixed ``columns`` to the CSV and JSONL files of ``run_dir``.

    ``tensorboard=True`` also writes scalars to ``RUN/tensorboard`` (needs the tensorboard package).
    """

    def __init__(self, run_dir: str | Path, columns: list[str], tensorboard: bool = False) -> None:
        self.run_dir = Path(run_dir)
        self.columns = list(columns)
        self.csv_path = self.run_dir / CSV_NAME
        self.jsonl_path = self.run_dir / JSONL_NAME
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise PhotosslError("--tensorboard needs the tensorboard package: pip install tensorboard") from None
            self.writer = SummaryWriter(str(self.run_dir / "tensorboard"))

    def truncate(self, last_epoch: int) -> None:
        """Keep only rows of epochs <= ``last_epoch`` (0 removes every row)."""
        rows = [r for r in self.read_jsonl() if int(r.get("epoch", 0)) <= last_epoch]
        self.jsonl_path.unlink(missing_ok=True)
        self.csv_path.unlink(missing_ok=True)
        for row in rows:
            self.append(row, to_tensorboard=False)

    def read_jsonl(self) -> list[dict[str, Any]]:
        if not self.jsonl_path.exists():
            return []
        rows = []
        for line in self.jsonl_path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut short by a kill
                continue
        return rows

    def append(self, row: dict[str, Any], to_tensorboard: bool = True) -> None:
        row = {key: _plain(value) for key, value in row.items()}
        self.run_dir.mkdir(parents=True, exist_ok=True)
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=self.columns, extrasaction="ignore")
        if not self.csv_path.exists():
            writer.writeheader()
        writer.writerow({key: "" if row.get(key) is None else row.get(key) for key in self.columns})
        # a failed append (full disk) is cut back and raises WriteError, so no log ends in half a row
        append_text(self.csv_path, text.getvalue())
        append_text(self.jsonl_path, json.dumps(row) + "\n")
        if self.writer is not None and to_tensorboard:
            for key, value in row.items():
                if key != "epoch" and isinstance(value, (int, float)):
                    self.writer.add_scalar(key, value, int(row["epoch"]))
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
