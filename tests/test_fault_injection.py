"""Every atomic writer survives a failed write (full disk, refused permission): the previous file is intact, no
temporary file stays behind, the error is one line naming the file and the cause, and a rewrite then succeeds."""

import errno
import io
import os

import numpy as np
import pytest
import torch
import xarray as xr

from photossl import files
from photossl.files import WriteError, append_text, write_json_record, write_text_atomic


def _chunk(value: float) -> xr.Dataset:
    return xr.Dataset({"eps": (("cell", "x"), np.full((2, 3), value, np.float32))},
                      coords={"cell": np.arange(2)})


def _classical(value: float):
    from photossl.finetune.baselines import ClassicalModel

    target = {"name": "gaps", "variable": "gaps_tm", "shape": [2], "dims": ["k"], "attrs": {}, "coords": {},
              "offset": None, "kpoints": None}
    return ClassicalModel("ridge", np.zeros(3), np.ones(3), np.zeros(2), target, {"alpha": 1.0}, "ridge",
                          coef=np.full((2, 3), value))


def _write_chunk(path, value):
    from photossl.data.storage import write_chunk

    write_chunk(_chunk(value), path)


def _write_manifest(path, value):
    from photossl.data.storage import write_json_atomic

    write_json_atomic(path, {"value": value})


def _torch_save(path, value):
    from photossl.files import atomic_torch_save

    atomic_torch_save({"weights": torch.full((4,), value)}, path)


WRITERS = {
    "text": ("a.txt", lambda path, value: write_text_atomic(path, f"value {value}\n")),
    "json record": ("run.json", lambda path, value: write_json_record(path, {"value": value})),
    "dataset manifest": ("manifest.json", _write_manifest),
    "dataset chunk": ("chunk-00000000.nc", _write_chunk),
    "checkpoint": ("checkpoint.pt", _torch_save),
    "classical baseline": ("model.npz", lambda path, value: _classical(value).save(path)),
}


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES], ids=["ENOSPC", "EACCES"])
@pytest.mark.parametrize("writer", WRITERS)
def test_a_failed_write_leaves_the_previous_file(tmp_path, fail_write, writer, code):
    name, write = WRITERS[writer]
    path = tmp_path / name
    write(path, 1.0)
    before = path.read_bytes()
    failed = fail_write(name, code=code)
    with pytest.raises(WriteError) as caught:
        write(path, 2.0)
    assert failed == [path]
    assert str(caught.value) == f"could not write {path}: {os.strerror(code)}"
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary file left
    fail_write(None)
    write(path, 2.0)
    write(tmp_path / "again" / name, 2.0)
    assert path.read_bytes() != before
    if writer != "classical baseline":  # np.savez stamps zip entries with the time; its arrays are compared below
        assert path.read_bytes() == (tmp_path / "again" / name).read_bytes()
    else:
        from photossl.finetune.baselines import ClassicalModel

        assert np.array_equal(ClassicalModel.load(path).coef, np.full((2, 3), 2.0))


def test_a_refused_rename_or_temporary_file_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    path = tmp_path / "a.txt"
    write_text_atomic(path, "old\n")

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(WriteError, match=f"could not write {path}: Permission denied$"):
        write_text_atomic(path, "new\n")
    monkeypatch.undo()
    monkeypatch.setattr(files.tempfile, "mkstemp", refuse)
    with pytest.raises(WriteError, match="Permission denied$"):
        write_text_atomic(path, "new\n")
    assert path.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_a_failed_append_cuts_the_log_back(tmp_path, monkeypatch):
    log = tmp_path / "metrics.jsonl"
    append_text(log, '{"epoch": 1}\n')

    class HalfFull(io.StringIO):  # takes half of what it is given, then reports a full disk
        def __init__(self, real):
            super().__init__()
            self.real = real

        def write(self, text):
            self.real.write(text[: len(text) // 2])
            self.real.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def tell(self):
            return self.real.tell()

        def __exit__(self, *exc):
            self.real.close()

    real_open = open
    monkeypatch.setattr(files, "open", lambda *a, **k: HalfFull(real_open(*a, **k)), raising=False)
    with pytest.raises(WriteError, match=f"could not write {log}: No space left on device"):
        append_text(log, '{"epoch": 2}\n')
    monkeypatch.undo()
    assert log.read_text() == '{"epoch": 1}\n'


def test_the_cli_reports_any_other_os_error_in_one_line(tmp_path, monkeypatch, one_line_error):
    from click.testing import CliRunner

    from photossl.cli.main import cli

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "somewhere"))

    monkeypatch.setattr("photossl.data.generate.generate_dataset", full_disk)
    result = CliRunner().invoke(cli, ["generate", "--preset", "sibcl-p1", "--n-cells", "2", "--out", str(tmp_path)])
    assert one_line_error(result) == f"Error: {tmp_path / 'somewhere'}: No space left on device"
