"""Generating labels for some cells only: NaN elsewhere, refused by the loaders, completed by a later run."""

import json

import numpy as np
import pytest

from photossl.data import open_dataset
from photossl.data.generate import generate_chunk, generate_dataset
from photossl.data.loaders import CellDataset, load_arrays
from photossl.data.rough import label_cpu_per_cell
from photossl.data.storage import file_sha256
from photossl.errors import PhotosslError

LABELS = ("dos", "dos_eldiff", "dos_tm", "dos_eldiff_tm", "bands_tm", "gaps_tm")


def _manifest(out):
    return json.loads((out / "manifest.json").read_text())


def test_chunk_labels_only_the_chosen_cells_with_the_values_of_a_full_chunk(tiny_config):
    config = tiny_config(n_cells=4, targets=["dos", "bands", "gaps"])
    full = generate_chunk(config, 0, 4)
    part = generate_chunk(config, 0, 4, label_cells=[0, 2])
    np.testing.assert_array_equal(part.eps.values, full.eps.values)
    for name in LABELS:
        np.testing.assert_array_equal(part[name].values[[0, 2]], full[name].values[[0, 2]])
        assert np.isnan(part[name].values[[1, 3]]).all(), name
        assert part[name].dtype == full[name].dtype
    with pytest.raises(PhotosslError, match="non-empty subset of the chunk's cells 0..3"):
        generate_chunk(config, 0, 4, label_cells=[4])


def test_label_subset_dataset_then_completed_equals_a_full_run(tiny_config, tmp_path, reference_dataset):
    config = tiny_config(n_cells=24, chunk_size=2, seed=5)
    out = tmp_path / "ds"
    result = generate_dataset(config, out, workers=1, progress=False, label_cells=[3, 9, 10, 11])
    # every chunk's first cell (0, 2, ..., 22) comes labelled, and 3, 9, 11 with it
    labelled = sorted({*range(0, 24, 2), 3, 9, 11})
    assert result.complete and result.cells_unlabelled == 24 - len(labelled)
    entries = _manifest(out)["chunks"]
    assert entries["chunk-00000000.nc"]["labelled"] == [0] and entries["chunk-00000004.nc"]["labelled"] == [4]
    for name in ("chunk-00000002.nc", "chunk-00000010.nc"):  # both cells wanted: a plain full chunk
        assert "labelled" not in entries[name]
        assert entries[name]["sha256"] == file_sha256(reference_dataset / "chunks" / name)

    images, dos = load_arrays(out, "dos", labelled)
    _, reference = load_arrays(reference_dataset, "dos", labelled)
    assert images.shape[0] == len(labelled) and bool((dos == reference).all())
    with pytest.raises(PhotosslError, match="cell 5 has no 'dos' label: its dataset was generated with labels for"):
        load_arrays(out, "dos", [4, 5])
    with pytest.raises(PhotosslError, match="cell 1 has no 'bands_tm' label"):
        CellDataset(out, "bands_tm", [0, 1])
    load_arrays(out, None, np.arange(24))  # the permittivity of every cell is there
    images, dos = load_arrays(out, "dos", np.array([], dtype=np.int64))  # no cells: nothing to refuse
    assert images.shape == (0, 1, 16, 16) and dos.shape == (0, 400)

    seconds, cells = label_cpu_per_cell(out)
    assert cells == len(labelled) and seconds > 0

    # a subset already covered: nothing is generated again
    again = generate_dataset(config, out, workers=1, progress=False, label_cells=[0, 3])
    assert again.cells_written == 0 and again.cells_reused == 24

    # every label: only the partly labelled chunks are relabelled, and every file equals a full run's byte for byte
    partial = [e for e in _manifest(out)["chunks"].values() if "labelled" in e]
    complete = generate_dataset(config, out, workers=1, progress=False)
    assert complete.cells_unlabelled == 0 and complete.cells_written == 2 * len(partial) == 18
    for name, entry in _manifest(out)["chunks"].items():
        assert "labelled" not in entry
        assert entry["sha256"] == file_sha256(reference_dataset / "chunks" / name), name
    assert open_dataset(out).equals(open_dataset(reference_dataset))


def test_more_labels_relabel_only_the_chunks_lacking_some(tiny_config, tmp_path):
    config = tiny_config(n_cells=8, chunk_size=4, seed=5)
    out = tmp_path / "ds"
    generate_dataset(config, out, workers=1, progress=False, label_cells=[1])
    entries = _manifest(out)["chunks"]
    assert entries["chunk-00000000.nc"]["labelled"] == [0, 1] and entries["chunk-00000004.nc"]["labelled"] == [4]
    kept = entries["chunk-00000004.nc"]["sha256"]
    more = generate_dataset(config, out, workers=1, progress=False, label_cells=[2, 4])
    entries = _manifest(out)["chunks"]
    assert more.cells_written == 4 and more.cells_reused == 4 and more.cells_unlabelled == 8 - 4
    assert entries["chunk-00000000.nc"]["labelled"] == [0, 1, 2]  # the union of both requests
    assert entries["chunk-00000004.nc"]["sha256"] == kept
    assert np.isfinite(load_arrays(out, "dos", [0, 1, 2, 4])[1].numpy()).all()


def test_a_kill_while_relabelling_leaves_a_chunk_the_next_run_regenerates(tiny_config, tmp_path, monkeypatch):
    import photossl.data.generate as generate

    config = tiny_config(n_cells=4, chunk_size=2, seed=5)
    out = tmp_path / "ds"
    generate_dataset(config, out, workers=1, progress=False, label_cells=[0])
    real = generate._write_chunk_task
    calls = []

    def dies_after_writing(task):
        real(task)  # the new chunk file is in place ...
        calls.append(task)
        raise KeyboardInterrupt  # ... and the process dies before its manifest entry is written

    monkeypatch.setattr(generate, "_write_chunk_task", dies_after_writing)
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(config, out, workers=1, progress=False)
    assert len(calls) == 1 and "chunk-00000000.nc" not in _manifest(out)["chunks"]
    monkeypatch.setattr(generate, "_write_chunk_task", real)
    result = generate_dataset(config, out, workers=1, progress=False)  # no "corrupt chunk": it is regenerated
    assert result.complete and result.cells_unlabelled == 0
    assert np.isfinite(load_arrays(out, "dos")[1].numpy()).all()


@pytest.mark.parametrize("cells, message", [
    ([24], "label_cells names cell 24, outside the dataset's 24 cells"),
    ([-1], "label_cells names cell -1"),
    ([[1, 2]], "label_cells must be a 1-D array of cell indices"),
    ([0.5], "label_cells must be a 1-D array of cell indices"),
])
def test_bad_label_subsets_are_refused_before_anything_is_written(tiny_config, tmp_path, cells, message):
    with pytest.raises(PhotosslError, match=message):
        generate_dataset(tiny_config(n_cells=24, chunk_size=2), tmp_path / "ds", workers=1, progress=False,
                         label_cells=cells)
    assert not (tmp_path / "ds").exists()
