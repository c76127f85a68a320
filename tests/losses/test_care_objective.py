import pytest
import torch

from photossl.losses import CARELoss, care_equivariance_loss, care_loss, nt_xent_loss

DTYPE = torch.float64


def _embeddings(seed: int, count: int = 3):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(8, 4, generator=g, dtype=DTYPE) for _ in range(count)]


@pytest.mark.parametrize("lambda_equi", [0.0, 0.5, 3.0])
def test_views_pairing_is_nt_xent_plus_weighted_equivariance(lambda_equi):
    z1, z2 = _embeddings(1, 2)
    out = care_loss(z1, z2, 4, lambda_equi=lambda_equi, temperature=0.2)
    torch.testing.assert_close(out.contrastive, nt_xent_loss(z1, z2, 0.2))
    torch.testing.assert_close(out.equivariance, care_equivariance_loss(z1, z2, 4))
    torch.testing.assert_close(out.loss, out.contrastive + lambda_equi * out.equivariance)


def test_clean_pairing_compares_each_view_with_the_clean_embedding():
    z1, z2, z0 = _embeddings(2)
    out = care_loss(z1, z2, 2, lambda_equi=1.0, pairing="clean", z_clean=z0, form="minkowski")
    expected = 0.5 * (
        care_equivariance_loss(z1, z0, 2, form="minkowski") + care_equivariance_loss(z2, z0, 2, form="minkowski")
    )
    torch.testing.assert_close(out.equivariance, expected)
    with pytest.raises(ValueError, match="z_clean"):
        care_loss(z1, z2, 2, lambda_equi=1.0, pairing="clean")


def test_gradcheck():
    z1, z2 = (z.requires_grad_(True) for z in _embeddings(3, 2))
    assert torch.autograd.gradcheck(lambda a, b: care_loss(a, b, 4, lambda_equi=0.7).loss, (z1, z2))


def test_module_matches_function():
    z1, z2, z0 = _embeddings(4)
    out = CARELoss(4, lambda_equi=2.0, temperature=0.3, pairing="clean")(z1, z2, z0)
    expected = care_loss(z1, z2, 4, lambda_equi=2.0, temperature=0.3, pairing="clean", z_clean=z0)
    for a, b in zip(out, expected):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"lambda_equi": -1.0}, "lambda_equi"),
        ({"temperature": 0.0}, "temperature"),
        ({"chunk_size": 1}, "chunk_size"),
        ({"pairing": "both"}, "pairing"),
        ({"form": "spherical"}, "form"),
    ],
)
def test_bad_hyper_parameters_are_named(kwargs, name):
    arguments = {"chunk_size": 4, "lambda_equi": 1.0, **kwargs}
    with pytest.raises(ValueError, match=name):
        CARELoss(**arguments)
    z1, z2 = _embeddings(5, 2)
    with pytest.raises(ValueError, match=name):
        care_loss(z1, z2, arguments.pop("chunk_size"), **arguments)
