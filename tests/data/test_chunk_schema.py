"""The chunk schema that ``generate`` and ``import-sibcl`` share: the same dims, dtypes, units and on-disk encoding
for the same variable, and a write / read round trip that returns what was written."""

import h5py
import numpy as np
import pytest
import xarray as xr
from test_import_sibcl import write_sibcl

from photossl.data import open_dataset
from photossl.data.generate import generate_chunk
from photossl.data.schema import VARIABLES, chunk_encoding, coordinate, variable
from photossl.data.sibcl_import import import_sibcl
from photossl.data.storage import chunk_files, dataset_sha256, write_chunk
from photossl.errors import PhotosslError


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """(a generated dataset folder, an imported one), both labelled with TM bands, gaps, velocities and the DOS."""
    from photossl.data.generate import generate_dataset, preset_config

    root = tmp_path_factory.mktemp("schema")
    config = preset_config("sibcl-p1", n_cells=4, chunk_size=2, size=8, grid_size=5, n_bands=4, seed=1,
                           targets=["dos", "bands", "gaps", "group_velocity"], solver_options={"cutoff": 2.0})
    generate_dataset(config, root / "generated", workers=1, progress=False)
    write_sibcl(root / "source.h5", n_cells=4)
    import_sibcl(root / "source.h5", root / "imported", chunk_size=2)
    return root / "generated", root / "imported"


def test_shared_variables_have_one_layout(both):
    generated, imported = (open_dataset(path) for path in both)
    shared = (set(generated.variables) & set(imported.variables)) - {"cell"}
    assert {"eps", "eps_mean", "dos", "dos_eldiff", "bands_tm", "gaps_tm", "group_velocity_tm", "freq", "k_x",
            "coef_real", "fill_fraction", "eps_in", "level"} <= shared
    for name in shared:
        a, b = generated[name], imported[name]
        assert (a.dims, a.dtype, a.attrs.get("units")) == (b.dims, b.dtype, b.attrs.get("units")), name
    for ds in (generated, imported):
        assert ds.attrs["units"] == generated.attrs["units"] and ds.attrs["format"] == "photossl-dataset"


def test_both_writers_encode_chunks_alike(both):
    """gzip + shuffle and one HDF5 chunk per cell, for every per-cell array of two or more dims, in both writers."""
    layouts = []
    for folder in both:
        with h5py.File(chunk_files(folder)[0], "r") as handle:
            layouts.append({name: (node.compression, node.shuffle, node.chunks)
                            for name, node in handle.items() if node.ndim >= 2 and name != "freq"})
    generated, imported = layouts
    for name in ("eps", "dos", "bands_tm", "gaps_tm", "group_velocity_tm", "coef_real"):
        assert generated[name][:2] == imported[name][:2] == ("gzip", True), name
        assert generated[name][2][0] == imported[name][2][0] == 1, name


def test_round_trip_returns_what_was_written(tiny_config, tmp_path):
    chunk = generate_chunk(tiny_config(n_cells=3), 0, 3)
    write_chunk(chunk, tmp_path / "c.nc", chunk_encoding(chunk))
    with xr.open_dataset(tmp_path / "c.nc", engine="h5netcdf") as back:
        back = back.load()
    assert back.identical(chunk) and dataset_sha256(back) == chunk.attrs["data_sha256"]


def test_the_schema_refuses_what_it_does_not_know():
    dims, values, attrs = variable("bands_te", np.zeros((2, 3, 4)))
    assert dims == ("cell", "k", "band") and values.dtype == np.float32 and attrs["long_name"].startswith("TE ")
    assert variable("eps", np.ones((1, 2, 2)), long_name="mine")[2]["long_name"] == "mine"
    with pytest.raises(PhotosslError, match="not a variable of the photossl chunk schema"):
        variable("bandz_tm", np.zeros((1, 2, 3)))
    with pytest.raises(PhotosslError, match="has dims"):
        variable("eps", np.ones((2, 2)))
    with pytest.raises(PhotosslError, match="repeats a polarization"):
        variable("dos", np.ones((1, 4)))
    assert coordinate("freq", [0, 1])[1].dtype == np.float64 and all(d[0] == "cell" for d, _, _ in VARIABLES.values())


def test_chunk_files_come_from_the_manifests_in_cell_order(both, tmp_path):
    generated = both[0]
    files = chunk_files(generated)
    assert [f.name for f in files] == ["chunk-00000000.nc", "chunk-00000002.nc"]
    (generated / "chunks" / "chunk-99999999.nc").write_bytes(b"")  # a stray file is not part of the dataset
    try:
        assert chunk_files(generated) == files
    finally:
        (generated / "chunks" / "chunk-99999999.nc").unlink()
    with pytest.raises(PhotosslError, match="not a photossl dataset"):
        chunk_files(tmp_path)
