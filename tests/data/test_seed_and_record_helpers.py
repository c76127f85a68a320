"""The helpers every writer of this package shares: seeds derived from words, one atomic JSON writer, the versions
recorded; they reproduce what datasets and splits stored before they were shared."""

import json

import numpy as np

from photossl.data.generate import cell_seed
from photossl.data.schema import CELL_SEED_RULE
from photossl.data.splits import load_splits, make_splits, save_splits
from photossl.files import write_json_atomic
from photossl.provenance import (
    derive_seed,
    photossl_version,
    random_generator,
    software_versions,
)


def test_cell_seeds_follow_the_recorded_rule():
    for seed, cell in ((0, 0), (5, 17), (2**40, 10**7)):
        rule = eval(CELL_SEED_RULE, {"np": np, "seed": seed, "cell": cell})  # the rule as chunks record it
        assert cell_seed(seed, cell) == derive_seed(seed, cell) == rule
        assert 0 <= rule < 2**63
    assert derive_seed(1, 2) != derive_seed(2, 1)


def test_random_generator_is_default_rng_of_the_words():
    assert np.array_equal(random_generator(0x5B117, 3).permutation(50),
                          np.random.default_rng([0x5B117, 3]).permutation(50))
    splits = make_splits(100, seed=3)  # the split stream is unchanged
    expected = np.random.default_rng([0x5B117, 3]).permutation(100)
    assert np.array_equal(np.sort(expected[:10]), splits.test)


def test_one_atomic_json_writer_keeps_each_layout(tmp_path):
    record = {"b": np.float32(0.5), "a": np.arange(2), "c": [1, 2]}
    write_json_atomic(tmp_path / "pretty.json", record)
    assert json.loads((tmp_path / "pretty.json").read_text()) == {"b": 0.5, "a": [0, 1], "c": [1, 2]}
    write_json_atomic(tmp_path / "sorted.json", {"b": 1, "a": 2}, indent=1, sort_keys=True)
    assert (tmp_path / "sorted.json").read_text() == '{\n "a": 2,\n "b": 1\n}\n'
    path = save_splits(make_splits(20, seed=1), tmp_path)
    text = path.read_text()
    assert text.count("\n") == 1 and ", " not in text and load_splits(path, 1).n_cells == 20
    assert not list(tmp_path.glob(".*tmp*"))


def test_versions_record():
    versions = software_versions("scikit-learn")
    assert list(versions) == ["photossl", "torch", "numpy", "scikit-learn", "python"]
    assert versions["photossl"] == photossl_version() and software_versions("no-such-package")["no-such-package"]
