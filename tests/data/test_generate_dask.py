"""`photossl generate --scheduler`: the chunks as tasks of a Dask cluster give the local pool's bytes."""

import json

import pytest
import yaml
from click.testing import CliRunner

from photossl.cli.main import cli

pytest.importorskip("dask.distributed")


def invoke(*args):
    return CliRunner().invoke(cli, ["generate", *map(str, args)])


def test_dask_workers_write_the_reference_dataset(dask_cluster, reference_dataset, reference_args, hashes, tmp_path):
    address = dask_cluster.scheduler_address
    result = invoke(*reference_args(tmp_path / "ds", "--scheduler", address))
    assert result.exit_code == 0, result.output
    assert "dataset complete: 24 cells written" in result.output
    assert hashes(tmp_path / "ds") == hashes(reference_dataset)  # byte-identical chunks
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert manifest["complete"] and len(manifest["chunks"]) == 12
    assert all(entry["label_cpu_s"] > 0 for entry in manifest["chunks"].values())

    # the config file's key does the same; finished chunks are not submitted again
    config = tmp_path / "generate.yaml"
    config.write_text(yaml.safe_dump({"scheduler": address}))
    again = invoke(*reference_args(tmp_path / "ds", "--config", config))
    assert again.exit_code == 0, again.output
    assert "0 cells written" in again.output and "24 reused" in again.output
    assert hashes(tmp_path / "ds") == hashes(reference_dataset)


def test_a_shard_on_dask_writes_its_chunks_only(dask_cluster, reference_dataset, reference_args, hashes, tmp_path):
    result = invoke(*reference_args(tmp_path / "ds", "--scheduler", dask_cluster.scheduler_address, "--shard", "1/3"))
    assert result.exit_code == 0, result.output
    written = hashes(tmp_path / "ds")
    assert len(written) == 4 and written == {name: hashes(reference_dataset)[name] for name in written}


@pytest.mark.parametrize("extra, fragment", [
    (["--scheduler", "localhost:8786"], "must be a Dask scheduler address"),
    (["--scheduler", "tcp://127.0.0.1:8786", "--workers", "2"], "--workers sets local processes"),
])
def test_bad_scheduler_options_are_one_line_errors(reference_args, tmp_path, extra, fragment):
    result = invoke(*reference_args(tmp_path / "ds", *extra))
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert fragment in result.output, result.output
    assert not (tmp_path / "ds" / "chunks").exists() or not any((tmp_path / "ds" / "chunks").iterdir())


def test_the_local_pool_leaves_the_dask_engine_alone(tmp_path):
    """Without a scheduler photossl's Dask engine is not even imported (xarray may import dask on its own)."""
    import subprocess
    import sys

    code = ("import sys\n"
            "from photossl.data.generate import generate_dataset, preset_config\n"
            "from photossl.study import runner\n"
            f"generate_dataset(preset_config('sibcl-p1', n_cells=2, chunk_size=1, targets=[]), {str(tmp_path)!r}, "
            "workers=1, progress=False)\n"
            "assert not {'photossl.cluster', 'photossl.study.dask_run'} & set(sys.modules), 'engine imported'\n")
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
