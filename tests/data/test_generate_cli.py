"""`photossl generate` end to end: shards, refused reruns that leave the files untouched, the MPB backend."""

import json
import os
import shutil
import socket

import numpy as np
import pytest
from click.testing import CliRunner

from photossl.cli.main import cli
from photossl.data import open_dataset
from photossl.data.storage import chunk_name, dataset_sha256
from photossl.errors import PhotosslError


def invoke(*args):
    return CliRunner().invoke(cli, ["generate", *map(str, args)])


def test_cli_writes_the_reference_dataset(reference_dataset, reference_args, hashes, tmp_path):
    result = invoke(*reference_args(tmp_path / "ds", "--workers", 1))
    assert result.exit_code == 0, result.output
    assert "dataset complete: 24 cells written" in result.output
    assert hashes(tmp_path / "ds") == hashes(reference_dataset)
    ds = open_dataset(tmp_path / "ds")
    assert ds.eps.dims == ("cell", "x", "y") and ds.dos.dims == ("cell", "freq") and "freq" in ds.coords
    again = invoke(*reference_args(tmp_path / "ds", "--workers", 1))
    assert again.exit_code == 0 and "0 cells written" in again.output and "24 reused" in again.output
    assert hashes(tmp_path / "ds") == hashes(reference_dataset)


def test_shards_make_the_unsharded_dataset(tmp_path, reference_dataset, reference_args, hashes):
    first, second = tmp_path / "first", tmp_path / "second"
    result = invoke(*reference_args(first, "--workers", 1, "--shard", "0/2"))
    assert result.exit_code == 0, result.output
    assert "shard 0/2 complete: 12 cells written" in result.output
    shard0 = json.loads((first / "manifest-shard0of2.json").read_text())
    assert sorted(shard0["chunks"]) == [chunk_name(s) for s in range(0, 24, 4)] and shard0["shard"] == [0, 2]
    with pytest.raises(PhotosslError, match="incomplete"):
        open_dataset(first)
    only_shard0 = shutil.copytree(first, tmp_path / "only-shard0")
    # a running shard 0 (its lock held) does not keep shard 1 out of the same directory
    (first / "generate-shard0of2.lock").write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    assert invoke(*reference_args(first, "--workers", 1, "--shard", "1/2")).exit_code == 0
    assert invoke(*reference_args(second, "--workers", 1, "--shard", "1/2")).exit_code == 0

    expected = dataset_sha256(open_dataset(reference_dataset))
    assert hashes(first) == hashes(reference_dataset)
    assert {p.name for p in first.glob("manifest*.json")} == {"manifest-shard0of2.json", "manifest-shard1of2.json"}
    assert dataset_sha256(open_dataset(first)) == expected
    # shards written to separate directories are opened together
    assert dataset_sha256(open_dataset([only_shard0, second])) == expected


def test_corrupt_chunk_is_refused_by_name(reference_dataset, reference_args, copy_dataset, hashes, one_line_error):
    ds = copy_dataset(reference_dataset)
    victim = ds / "chunks" / chunk_name(8)
    victim.write_bytes(victim.read_bytes()[:1000])
    before = hashes(ds)
    result = invoke(*reference_args(ds, "--workers", 1))
    one_line_error(result, "chunk-00000008.nc", "corrupt or truncated", "delete it")
    assert hashes(ds) == before  # nothing rewritten; the corrupt file is left for the user to inspect
    assert not (ds / "generate.lock").exists()
    victim.unlink()
    result = invoke(*reference_args(ds, "--workers", 1))
    assert result.exit_code == 0 and "2 cells written" in result.output
    assert hashes(ds) == hashes(reference_dataset)


def test_second_writer_is_refused(reference_dataset, reference_args, copy_dataset, hashes, one_line_error):
    ds = copy_dataset(reference_dataset)
    (ds / "chunks" / chunk_name(16)).unlink()
    before = hashes(ds)
    (ds / "generate.lock").write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    result = invoke(*reference_args(ds, "--workers", 1))
    one_line_error(result, "another photossl generate", f"pid {os.getpid()}", "generate.lock")
    assert hashes(ds) == before
    assert (ds / "generate.lock").exists()  # still the other writer's


@pytest.mark.parametrize("option, value, key", [
    ("--seed", 6, "seed"), ("--n-bands", 4, "n_bands"), ("--preset", "essl-pm", "group"),
    ("--solver-option", "cutoff=2", "solver_options"),
])
def test_changed_config_is_refused(reference_dataset, reference_args, copy_dataset, hashes, option, value, key,
                                   one_line_error):
    ds = copy_dataset(reference_dataset)
    before = hashes(ds)
    result = invoke(*reference_args(ds, "--workers", 1), option, value)  # the later option wins
    one_line_error(result, "another config", key, "--out")
    assert hashes(ds) == before
    assert not (ds / "generate.lock").exists()


def test_bad_options_are_one_line_errors(tmp_path, one_line_error):
    one_line_error(invoke("--out", tmp_path / "a", "--shard", "2/2"), "0 <= I < N")
    one_line_error(invoke("--out", tmp_path / "a", "--shard", "x"), "I/N")
    one_line_error(invoke("--out", tmp_path / "a", "--filling-range", "0.5"), "LOW,HIGH")
    one_line_error(invoke("--out", tmp_path / "a", "--polarizations", "tm,tx"), "polarizations")
    one_line_error(invoke("--out", tmp_path / "a", "--workers", 0), "workers")
    one_line_error(invoke("--out", tmp_path / "a", "--solver-option", "cutoff"), "KEY=VALUE")
    one_line_error(invoke("--out", tmp_path / "a", "--solver-option", "cutof=3"), "cutof")
    assert not (tmp_path / "a" / "manifest.json").exists()


def test_config_file_and_options(tmp_path, one_line_error):
    config_file = tmp_path / "gen.yaml"
    config_file.write_text("preset: p4m\nn_cells: 3\nsize: 16\ngrid_size: 5\nn_bands: 4\nseed: 2\n"
                           "solver_options: {cutoff: 2.0}\n")
    result = invoke("--config", config_file, "--seed", 3, "--targets", "dos", "--out", tmp_path / "c", "--workers", 1,
                    "--no-progress")
    assert result.exit_code == 0, result.output
    config = json.loads(open_dataset(tmp_path / "c").attrs["config"])
    assert (config["preset"], config["group"], config["seed"], config["n_cells"]) == ("p4m", "p4m", 3, 3)
    assert config["targets"] == ["dos"] and config["solver_options"]["cutoff"] == 2.0
    (tmp_path / "bad.yaml").write_text("n_cels: 3\n")
    one_line_error(invoke("--config", tmp_path / "bad.yaml", "--out", tmp_path / "d"), "n_cels")


def test_mpb_missing_is_a_clear_error(tmp_path, monkeypatch, one_line_error):
    monkeypatch.setenv("PATH", str(tmp_path))
    result = invoke("--out", tmp_path / "m", "--solver", "mpb", "--n-cells", 2)
    one_line_error(result, "mpb", "PATH")
    assert not (tmp_path / "m" / "manifest.json").exists()


@pytest.mark.mpb
def test_mpb_solver_labels_cells(tmp_path):
    from photossl.physics.labels import label_cell
    from photossl.physics.mpb import mpb_available

    if not mpb_available():
        pytest.skip("mpb not installed")
    result = invoke("--n-cells", 2, "--size", 8, "--grid-size", 3, "--n-bands", 3, "--solver", "mpb",
                    "--out", tmp_path / "m", "--workers", 1, "--no-progress")
    assert result.exit_code == 0, result.output
    ds = open_dataset(tmp_path / "m")
    assert ds.attrs["solver"] == "mpb" and ds.attrs["dos_method"] == "ggr"
    assert ds.bands_tm.shape == (2, 9, 3) and np.all(np.isfinite(ds.dos.values))
    assert json.loads(ds.attrs["solver_options"])["tolerance"] == 1e-7
    # MPB and the plane-wave solver agree on the lowest bands of the same pixel map to a few per cent
    pwe = label_cell(ds.eps.values[0].astype(np.float64), "tm", 3, 3)
    np.testing.assert_allclose(ds.bands_tm.values[0], pwe.frequencies, rtol=0.05, atol=0.01)


@pytest.mark.slow
def test_contract_command(tmp_path, cli_process):
    """The documented contract at full default accuracy (about a minute on 2 cores)."""
    out = tmp_path / "DIR"
    process = cli_process("generate", "--preset", "sibcl-p1", "--n-cells", 64, "--seed", 7, "--out", out,
                          "--workers", 2)
    output = process.communicate(timeout=900)[0]
    assert process.returncode == 0, output
    ds = open_dataset(out)
    assert ds.eps.dims == ("cell", "x", "y") and ds.eps.shape == (64, 32, 32)
    assert ds.dos.dims == ("cell", "freq") and ds.dos.shape == (64, 400) and "freq" in ds.coords


def test_unrecorded_chunk_and_dead_temporary_files_are_redone(reference_dataset, reference_args, copy_dataset,
                                                             hashes):
    # a writer killed between renaming a chunk into place and recording it, and one killed while writing
    import subprocess
    import sys

    ds = copy_dataset(reference_dataset)
    manifest = json.loads((ds / "manifest.json").read_text())
    del manifest["chunks"][chunk_name(10)]
    manifest["complete"] = False
    (ds / "manifest.json").write_text(json.dumps(manifest))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    leftover = ds / "chunks" / f".{chunk_name(10)}.tmp-{dead.pid}"
    leftover.write_bytes(b"partial")
    result = invoke(*reference_args(ds, "--workers", 1))
    assert result.exit_code == 0, result.output
    assert "2 cells written" in result.output and "22 reused" in result.output
    assert not leftover.exists()
    assert hashes(ds) == hashes(reference_dataset)
    assert json.loads((ds / "manifest.json").read_text())["chunks"][chunk_name(10)]["start"] == 10
