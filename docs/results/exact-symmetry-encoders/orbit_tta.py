"""Is invariance what limits the plain network? Test DOS error of fine-tuned runs, as trained and with their
predictions averaged over the 8 D4 images and a few rolls of each test cell (test-time orbit averaging, which makes
any network exactly invariant on those transformations).

    python orbit_tta.py DATA RUN [RUN ...]      # DATA: the dataset folder the runs were fine-tuned on
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch

from photossl.data.loaders import open_cells
from photossl.finetune import load_finetuned
from photossl.finetune.predict import read_labels
from photossl.finetune.targets import score
from photossl.symmetry import D4

ROLLS = [(0, 0), (5, 11), (16, 16), (27, 3)]


def main() -> None:
    data, runs = sys.argv[1], sys.argv[2:]
    torch.set_num_threads(1)
    group = D4()
    for run in runs:
        model = load_finetuned(run)
        test = np.asarray(json.loads((Path(run) / "indices.json").read_text())["test"])
        dataset = open_cells(data, ["eps"])
        try:
            eps = torch.as_tensor(np.asarray(dataset["eps"].values[test], dtype=np.float64))
        finally:
            dataset.close()
        true = read_labels(data, model.target)[test]
        plain = model.predict(eps, warn=False)
        orbit = np.mean([model.predict(torch.roll(group.apply(eps, g), roll, (-2, -1)), warn=False)
                         for g in range(8) for roll in ROLLS], axis=0)
        as_trained = score(model.target, plain, true)["dos_rel_l1"]
        averaged = score(model.target, orbit, true)["dos_rel_l1"]
        spread = float(np.mean(np.abs(plain - orbit))) / float(np.mean(np.abs(plain - true)))
        print(f"{run}: test DOS error {as_trained * 100:.3f} % as trained, {averaged * 100:.3f} % orbit-averaged "
              f"({(1 - averaged / as_trained) * 100:+.1f} % cut); prediction change / error {spread:.3f}")


if __name__ == "__main__":
    main()
