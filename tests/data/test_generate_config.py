"""Generate configs and presets; cells depend only on (seed, index); labels reproduce from the stored eps."""

import numpy as np
import pytest

from photossl.data.generate import PRESETS, GenerateConfig, cell_seed, generate_chunk, preset_config
from photossl.errors import PhotosslError
from photossl.physics.labels import DEFAULT_SOLVER_OPTIONS, label_cell


def test_sibcl_preset_is_the_reference_recipe():
    config = preset_config("sibcl-p1")
    assert (config.cell, config.group, config.size, config.max_order) == ("levelset", "p1", 32, 1)
    assert config.filling_range == (0.01, 0.99)
    assert config.eps_in_range == config.eps_out_range == (1.0, 20.0)
    assert config.polarizations == ("tm",)
    assert (config.grid_size, config.n_bands) == (25, 10)
    assert set(config.targets) == {"dos", "bands", "gaps"}
    assert config.solver == "pwe" and config.solver_options == DEFAULT_SOLVER_OPTIONS


@pytest.mark.parametrize("preset, cell, group", [
    ("sibcl-p1", "levelset", "p1"), ("essl-pm", "levelset", "pm"), ("p4m", "levelset", "p4m"),
    ("cylinder-surrogate", "cylinder", "p1"),
])
def test_presets(preset, cell, group):
    config = preset_config(preset, n_cells=3)
    assert (config.preset, config.cell, config.n_cells) == (preset, cell, 3)
    if cell == "levelset":
        assert config.group == group
    assert set(PRESETS) == {"sibcl-p1", "essl-pm", "p4m", "cylinder-surrogate"}


def test_overrides_and_partial_solver_options_merge_over_defaults():
    config = preset_config("p4m", n_bands=4, polarizations=["te", "tm"], solver_options={"cutoff": 3})
    assert config.group == "p4m" and config.n_bands == 4 and config.polarizations == ("te", "tm")
    assert config.solver_options == {**DEFAULT_SOLVER_OPTIONS, "cutoff": 3}
    mpb = preset_config("sibcl-p1", solver="mpb")
    assert mpb.solver_options["tolerance"] == 1e-7 and "cutoff" not in mpb.solver_options


@pytest.mark.parametrize("overrides, fragment", [
    ({"n_cells": 0}, "n_cells"),
    ({"chunk_size": -1}, "chunk_size"),
    ({"seed": -3}, "seed"),
    ({"filling_range": (0.5, 1.5)}, "filling_range"),
    ({"eps_in_range": (0.0, 3.0)}, "eps_in_range"),
    ({"radius_range": (0.1, 0.7)}, "radius_range"),
    ({"polarizations": ["tm", "xx"]}, "polarizations"),
    ({"targets": ["dos", "spectrum"]}, "targets"),
    ({"solver": "fdtd"}, "solver"),
    ({"solver_options": {"cutof": 3}}, "cutof"),
    ({"group": "p7"}, "p7"),
    ({"n_bandz": 3}, "n_bandz"),
])
def test_bad_config_names_the_key(overrides, fragment):
    with pytest.raises(PhotosslError, match=fragment):
        preset_config("sibcl-p1", **overrides)


def test_unknown_preset():
    with pytest.raises(PhotosslError, match="unknown preset"):
        preset_config("sibcl-p2")


def test_cell_seed_depends_on_seed_and_index_only():
    seeds = {cell_seed(seed, i) for seed in range(3) for i in range(200)}
    assert len(seeds) == 600
    assert cell_seed(7, 11) == cell_seed(7, 11)
    # pinned: changing the rule would silently change every dataset
    assert cell_seed(0, 0) == int(np.random.SeedSequence([0, 0]).generate_state(1, np.uint64)[0] >> np.uint64(1))
    assert all(0 <= s < 2**63 for s in seeds)


def test_cells_do_not_depend_on_chunking(tiny_config):
    config = tiny_config(n_cells=8, seed=4)
    whole = generate_chunk(config, 0, 8)
    part = generate_chunk(config, 3, 5)
    assert part.cell.values.tolist() == [3, 4]
    for name, variable in part.data_vars.items():
        np.testing.assert_array_equal(variable.values, whole[name].values[3:5], err_msg=name)
    other_seed = generate_chunk(tiny_config(n_cells=8, seed=5), 3, 5)
    assert not np.array_equal(other_seed.eps.values, part.eps.values)


def test_labels_reproduce_from_stored_eps(tiny_config):
    config = tiny_config(n_cells=2, seed=1, polarizations=["tm", "te"], targets=["dos", "bands", "gaps"])
    chunk = generate_chunk(config, 0, 2)
    assert chunk.eps.dtype == np.float32
    for pol in ("tm", "te"):
        for i in range(2):
            labels = label_cell(chunk.eps.values[i].astype(np.float64), pol, config.n_bands, config.grid_size,
                                solver_options=config.solver_options)
            np.testing.assert_array_equal(chunk[f"bands_{pol}"].values[i], labels.frequencies.astype(np.float32))
            np.testing.assert_array_equal(chunk[f"dos_{pol}"].values[i], labels.dos.dos_normalized.astype(np.float32))
            np.testing.assert_array_equal(chunk[f"dos_eldiff_{pol}"].values[i], labels.dos.eldiff.astype(np.float32))
            np.testing.assert_array_equal(chunk[f"gaps_{pol}"].values[i], labels.gaps.astype(np.float32))
    # the contract's dos is the first polarization's
    np.testing.assert_array_equal(chunk.dos.values, chunk.dos_tm.values)
    np.testing.assert_array_equal(chunk.dos_eldiff.values, chunk.dos_eldiff_tm.values)
    np.testing.assert_allclose(chunk.freq.values, np.linspace(0, 1.2, 500)[:400])


def test_generator_parameters_describe_the_cells(tiny_config):
    chunk = generate_chunk(tiny_config(n_cells=6, seed=2, targets=[]), 0, 6)
    eps = chunk.eps.values.astype(np.float64)
    eps_in = chunk.eps_in.values.astype(np.float32)[:, None, None]
    eps_out = chunk.eps_out.values.astype(np.float32)[:, None, None]
    assert np.all((chunk.eps.values == eps_in) | (chunk.eps.values == eps_out))
    np.testing.assert_allclose(chunk.fill_fraction.values, (chunk.eps.values == eps_out).mean(axis=(1, 2)))
    np.testing.assert_allclose(chunk.eps_mean.values, eps.mean(axis=(1, 2)))
    # level-set filling is the eps_out fraction of a finer grid, so the pixel fraction is close to it
    np.testing.assert_allclose(chunk.fill_fraction.values, chunk.filling.values, atol=0.1)
    assert chunk.coef_real.shape == (6, 3, 3) and chunk.gx.values.tolist() == [-1, 0, 1]
    assert not any(name.startswith(("bands", "dos")) for name in chunk.data_vars)


def test_symmetric_presets_make_symmetric_cells(tiny_config):
    p4m = generate_chunk(tiny_config("p4m", n_cells=3, targets=[]), 0, 3).eps.values
    pm = generate_chunk(tiny_config("essl-pm", n_cells=3, targets=[]), 0, 3).eps.values
    p1 = generate_chunk(tiny_config("sibcl-p1", n_cells=3, targets=[]), 0, 3).eps.values

    def mirror_invariant(cell, axis):
        flipped = np.flip(cell, axis=axis)
        return any(np.array_equal(np.roll(flipped, (a, b), axis=(0, 1)), cell)
                   for a in range(cell.shape[0]) for b in range(cell.shape[1]))

    for cell in p4m:
        assert mirror_invariant(cell, 0) and mirror_invariant(cell, 1)
        assert any(np.array_equal(np.roll(np.rot90(cell), (a, b), axis=(0, 1)), cell)
                   for a in range(16) for b in range(16))
    assert all(mirror_invariant(cell, 0) or mirror_invariant(cell, 1) for cell in pm)
    assert not all(mirror_invariant(cell, 0) or mirror_invariant(cell, 1) for cell in p1)


def test_cylinder_surrogate(tiny_config):
    chunk = generate_chunk(tiny_config("cylinder-surrogate", n_cells=4, seed=3, targets=["dos"]), 0, 4)
    assert "radius" in chunk and "coef_real" not in chunk
    assert np.all((chunk.radius > 0) & (chunk.radius <= 0.5))
    np.testing.assert_allclose(chunk.filling.values, 1 - np.pi * chunk.radius.values**2)
    centre = chunk.eps.values[:, 8, 8]
    np.testing.assert_array_equal(centre, chunk.eps_in.values.astype(np.float32))
    assert chunk.dos.shape == (4, 400)


def test_group_velocity_target(tiny_config):
    chunk = generate_chunk(tiny_config(n_cells=1, targets=["group_velocity"]), 0, 1)
    assert chunk.group_velocity_tm.dims == ("cell", "k", "band", "component")
    assert chunk.group_velocity_tm.shape == (1, 49, 5, 2)
    assert chunk.component.values.tolist() == ["x", "y"]
    assert "dos" not in chunk and "bands_tm" not in chunk


def test_config_is_a_plain_dict_roundtrip():
    config = preset_config("essl-pm", seed=9)
    again = preset_config(config.preset, **{k: v for k, v in config.to_dict().items() if k != "preset"})
    assert again == config and isinstance(config, GenerateConfig)
