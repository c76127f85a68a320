"""A dataset manifest names the chunk files that are read next: entries no photossl writer makes (paths leaving the
folder, ranges past n_cells or overlapping) are refused in one line before any chunk is opened."""

import json
import os
import shutil

import pytest
from click.testing import CliRunner

from photossl.cli.main import cli
from photossl.data import open_dataset
from photossl.data.storage import file_sha256
from photossl.errors import PhotosslError


def _edit(directory, change, name="manifest.json"):
    path = directory / name
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def _outside_chunk(directory, tmp_path):
    """A real chunk copied outside the dataset: were its manifest entry followed, it would read fine."""
    outside = tmp_path / "outside.nc"
    shutil.copy(directory / "chunks" / "chunk-00000000.nc", outside)
    return outside


def _rename(manifest, new_name):
    manifest["chunks"][new_name] = manifest["chunks"].pop("chunk-00000000.nc")


HOSTILE = {
    "parent folder": (lambda m, outside: _rename(m, "../../outside.nc"), "names chunk '../../outside.nc'"),
    "absolute path": (lambda m, outside: _rename(m, str(outside)), "names chunk '/"),
    "subfolder": (lambda m, outside: _rename(m, "sub/chunk-00000000.nc"), "names chunk 'sub/chunk"),
    "overlap": (lambda m, outside: m["chunks"]["chunk-00000000.nc"].update(stop=3), "overlapping cells 2..2"),
    "past n_cells": (lambda m, outside: m["chunks"]["chunk-00000022.nc"].update(stop=30), "outside 0..23"),
    "empty range": (lambda m, outside: m["chunks"]["chunk-00000000.nc"].update(stop=0), "outside 0..23"),
    "float start": (lambda m, outside: m["chunks"]["chunk-00000000.nc"].update(start=0.0), "integer start"),
    "bad sha256": (lambda m, outside: m["chunks"]["chunk-00000000.nc"].update(sha256="../x"), "no sha256"),
    "n_cells": (lambda m, outside: m.update(n_cells=-1), "not a count"),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_a_hostile_manifest_is_refused_before_any_chunk_is_read(reference_dataset, copy_dataset, tmp_path,
                                                                monkeypatch, case):
    directory = copy_dataset(reference_dataset)
    outside = _outside_chunk(directory, tmp_path)
    change, fragment = HOSTILE[case]
    _edit(directory, lambda m: change(m, outside))
    opened = []
    import h5py

    real_file = h5py.File
    monkeypatch.setattr("photossl.data.storage.file_sha256", lambda path: opened.append(path))
    monkeypatch.setattr(h5py, "File", lambda path, *a, **k: opened.append(path) or real_file(path, *a, **k))
    with pytest.raises(PhotosslError) as caught:
        open_dataset(directory)
    message = str(caught.value)
    assert "\n" not in message and str(directory / "manifest.json") in message and fragment in message, message
    assert opened == []


def test_a_chunk_linked_outside_the_folder_is_refused(reference_dataset, copy_dataset, tmp_path):
    directory = copy_dataset(reference_dataset)
    outside = _outside_chunk(directory, tmp_path)
    (directory / "chunks" / "chunk-00000000.nc").unlink()
    os.symlink(outside, directory / "chunks" / "chunk-00000000.nc")
    with pytest.raises(PhotosslError, match="points chunk 'chunk-00000000.nc' outside"):
        open_dataset(directory)


def test_a_linked_chunk_folder_still_reads(reference_dataset, tmp_path):
    """A study's view of a dataset links the manifests and the chunk folder: that stays readable."""
    view = tmp_path / "view"
    view.mkdir()
    os.symlink(reference_dataset / "manifest.json", view / "manifest.json")
    os.symlink(reference_dataset / "chunks", view / "chunks", target_is_directory=True)
    assert open_dataset(view).sizes["cell"] == 24


def test_manifests_that_disagree_on_a_chunk_are_refused(reference_dataset, copy_dataset):
    directory = copy_dataset(reference_dataset)
    chunk = directory / "chunks" / "chunk-00000000.nc"
    shard = {**json.loads((directory / "manifest.json").read_text()), "shard": [0, 2],
             "chunks": {chunk.name: {"start": 0, "stop": 3, "sha256": file_sha256(chunk)}}}
    (directory / "manifest-shard0of2.json").write_text(json.dumps(shard))
    with pytest.raises(PhotosslError, match="both hold cells 0..1; the dataset's manifests disagree"):
        open_dataset(directory)


def test_commands_refuse_a_hostile_manifest_in_one_line(reference_dataset, copy_dataset, reference_args, tmp_path,
                                                        one_line_error):
    directory = copy_dataset(reference_dataset)
    _edit(directory, lambda m: _rename(m, "../../outside.nc"))
    one_line_error(CliRunner().invoke(cli, ["generate", *reference_args(directory)]), "names chunk '../../outside.nc'")
    one_line_error(CliRunner().invoke(cli, ["finetune", "--data", str(directory), "--baseline", "ridge", "--budget",
                                            "4", "--out", str(tmp_path / "ft")]), "names chunk '../../outside.nc'")
