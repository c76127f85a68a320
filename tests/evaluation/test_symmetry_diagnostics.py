import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from photossl.errors import PhotosslError
from photossl.evaluation import (
    diagnostics_to_dataset,
    element_name,
    orbit_embeddings,
    product_table,
    symmetry_diagnostics,
)
from photossl.models import build_encoder
from photossl.symmetry import D4, Rot4, finite_group


def cells(batch, size=16, seed=0):
    return torch.rand(batch, 1, size, size, generator=torch.Generator().manual_seed(seed))


def all_values(diagnostics):
    for row in diagnostics["transformations"]:
        yield from (row[k] for k in ("invariance_error", "wahba_error", "wahba_error_raw", "gamma_f"))
    for summary in diagnostics["groups"].values():
        keys = ("composition_error_mean", "composition_error_max", "composition_error_data_mean")
        yield from (summary[k] for k in keys)


def test_small_encoder_gives_finite_numbers_and_keeps_its_state():
    torch.manual_seed(0)
    encoder = build_encoder("small", channels=(8, 16), feature_dim=16)
    encoder.train()
    bn = encoder.body[1]
    running_mean = bn.running_mean.clone()
    result = symmetry_diagnostics(encoder, cells(12), groups=("rot4", "flip", "half_translate"))
    assert encoder.training
    assert torch.equal(bn.running_mean, running_mean)  # measured in eval mode
    assert result["n_samples"] == 12 and result["feature_dim"] == 16
    assert len(result["transformations"]) == 9
    values = list(all_values(result))
    assert all(v is None or math.isfinite(v) for v in values)
    by_name = {(r["group"], r["name"]): r for r in result["transformations"]}
    # Circular padding and stride 2: half-cell shifts of a 16-pixel cell leave the features unchanged.
    assert by_name[("half_translate", "t(1/2,0)")]["invariance_error"] < 1e-4
    assert by_name[("rot4", "r90")]["invariance_error"] > 1e-3
    assert by_name[("rot4", "r90")]["gamma_f"] is not None
    json.dumps(result)


class Flatten(nn.Module):
    def forward(self, x):
        return x.flatten(1)


def test_a_pixel_permutation_encoder_is_an_exact_representation():
    result = symmetry_diagnostics(Flatten(), cells(24, size=4, seed=1).double(), groups=("rot4", "flip", "d4"),
                                  proper=False)
    for row in result["transformations"]:
        assert row["wahba_error"] < 1e-10
        assert row["wahba_error_raw"] < 1e-10
        assert row["invariance_error"] > 0.1
        assert row["gamma_f"] < 1e-20  # permutations keep distances
    for summary in result["groups"].values():
        assert summary["composition_error_max"] < 1e-10
        assert summary["subspace_dim"] == 16


def test_an_invariant_encoder():
    def encoder(x):  # global averages: invariant to every pixel permutation
        return torch.stack([x.mean(dim=(1, 2, 3)), (x**2).mean(dim=(1, 2, 3)), x.amax(dim=(1, 2, 3))], dim=1)

    result = symmetry_diagnostics(encoder, cells(10, seed=2).double(), groups=("rot4", "half_translate"))
    for row in result["transformations"]:
        assert row["invariance_error"] < 1e-12
        assert row["wahba_error"] < 1e-12
        assert row["gamma_f"] is None  # 0/0: nothing moves
    assert result["groups"]["rot4"]["gamma_f"] is None
    assert result["groups"]["rot4"]["composition_error_max"] < 1e-10


def test_transformation_prediction_accuracy():
    group = Rot4()
    size = 8
    delta = torch.zeros(1, 1, size, size)
    delta[0, 0, 1, 0] = 1.0
    # Where each rotation sends the marked pixel: an oracle head reads those pixels.
    positions = [int(group.apply(delta, k).flatten().argmax()) for k in range(4)]
    x = 0.1 * cells(6, size=size, seed=3)
    x[:, 0, 1, 0] = 5.0

    oracle = symmetry_diagnostics(Flatten(), x, groups=("rot4",), prediction_head=lambda z: z[:, positions])
    assert oracle["prediction"]["accuracy"] == 1.0
    constant = symmetry_diagnostics(
        Flatten(), x, groups=("rot4",), prediction_head=lambda z: torch.tensor([1.0, 0, 0, 0]).expand(len(z), 4)
    )
    assert constant["prediction"]["accuracy"] == pytest.approx(0.25)
    assert constant["prediction"]["per_label_accuracy"] == [1.0, 0.0, 0.0, 0.0]
    with pytest.raises(PhotosslError, match="logits"):
        symmetry_diagnostics(Flatten(), x, groups=("rot4",), prediction_head=lambda z: z[:, :3])


def test_dataset_round_trip(tmp_path):
    torch.manual_seed(1)
    encoder = build_encoder("small", channels=(8,), feature_dim=8)
    result = symmetry_diagnostics(encoder, cells(6, size=8), groups=("rot4", "half_translate"))
    ds = diagnostics_to_dataset(result)
    assert list(ds["transformation"].values[:3]) == ["rot4:r90", "rot4:r180", "rot4:r270"]
    np.testing.assert_allclose(ds["wahba_error"].values[0], result["transformations"][0]["wahba_error"])
    assert ds["composition_error_rot4"].shape == (4, 4)
    path = tmp_path / "diag.nc"
    ds.to_netcdf(path, engine="h5netcdf")
    assert path.stat().st_size > 0


def test_orbit_embeddings_are_cell_major():
    embeddings, orbit, names = orbit_embeddings(Flatten(), cells(3, size=4), "rot4")
    assert embeddings.shape == (12, 16)
    assert orbit.tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]
    assert names[:4] == ["e", "r90", "r180", "r270"]
    np.testing.assert_allclose(embeddings[4], cells(3, size=4)[1].flatten().double().numpy())


def test_element_names_and_products():
    assert [element_name(e) for e in D4()] == ["e", "r90", "r180", "r270", "mx", "ma", "my", "md"]
    assert [element_name(e) for e in finite_group("half_translate")] == ["e", "t(0,1/2)", "t(1/2,0)", "t(1/2,1/2)"]
    np.testing.assert_array_equal(product_table(Rot4()), np.add.outer(np.arange(4), np.arange(4)) % 4)


def test_bad_inputs_are_rejected():
    with pytest.raises(PhotosslError, match="at least 2"):
        symmetry_diagnostics(Flatten(), cells(1))
    with pytest.raises(PhotosslError, match="unknown finite group"):
        symmetry_diagnostics(Flatten(), cells(4), groups=("rot5",))
    with pytest.raises(PhotosslError, match="images"):
        symmetry_diagnostics(Flatten(), torch.rand(4, 16, 16))
