import math

import pytest
import torch
import torch.nn.functional as F

from photossl.losses import (
    CAREEquivarianceLoss,
    care_equivariance_loss,
    minkowski_form,
    paired_care_equivariance_loss,
)

DTYPE = torch.float64


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _random_orthogonal(dim: int, g: torch.Generator) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=DTYPE))
    return q * torch.sign(torch.diagonal(r))


def _lorentz(dim: int, rapidity: float, g: torch.Generator) -> torch.Tensor:
    """A boost along x_1 followed by a random rotation of the spatial axes (time is axis 0)."""
    boost = torch.eye(dim, dtype=DTYPE)
    boost[0, 0] = boost[1, 1] = math.cosh(rapidity)
    boost[0, 1] = boost[1, 0] = math.sinh(rapidity)
    spatial = torch.eye(dim, dtype=DTYPE)
    spatial[1:, 1:] = _random_orthogonal(dim - 1, g)
    return spatial @ boost


def _per_chunk(z: torch.Tensor, chunk_size: int, maps: list[torch.Tensor]) -> torch.Tensor:
    """Row i of chunk c becomes maps[c] @ z_i."""
    chunks = z.reshape(len(maps), chunk_size, -1)
    return torch.cat([chunk @ m.T for chunk, m in zip(chunks, maps)])


def _reference_care(z_a, z_b, chunk_size, form=None):
    """Paper's L_equi with loops: mean over chunks of the mean over i != j of (<u_i,u_j>_J - <v_i,v_j>_J)^2."""
    d = len(z_a[0])
    j_matrix = form.tolist() if form is not None else [[float(k == m) for m in range(d)] for k in range(d)]

    def inner(u, v):
        return sum(u[k] * j_matrix[k][m] * v[m] for k in range(d) for m in range(d))

    chunk_means = []
    for start in range(0, len(z_a), chunk_size):
        u, v = z_a[start : start + chunk_size], z_b[start : start + chunk_size]
        terms = [
            (inner(u[i], u[j]) - inner(v[i], v[j])) ** 2
            for i in range(chunk_size)
            for j in range(chunk_size)
            if i != j
        ]
        chunk_means.append(sum(terms) / len(terms))
    return sum(chunk_means) / len(chunk_means)


def _authors_equivariance_loss(out_1, out_2, num_chunks=1):
    """The authors' equivariance_loss from Sharut/CARE (utils.py), transcribed literally."""
    chunk_size = out_1.shape[0] // num_chunks
    loss = 0.0
    for index in range(num_chunks):
        sub_1 = out_1[index * chunk_size : (index + 1) * chunk_size]
        sub_2 = out_2[index * chunk_size : (index + 1) * chunk_size]
        bs = sub_1.shape[0]
        t1 = torch.mm(sub_1, sub_1.t().contiguous())
        t2 = torch.mm(sub_2, sub_2.t().contiguous())
        mask = torch.ones((bs, bs), dtype=torch.bool)
        for i in range(bs):
            mask[i, i] = 0
        t1 = t1.masked_select(mask).view(bs, -1)
        t2 = t2.masked_select(mask).view(bs, -1)
        loss += 2 * torch.norm(t1 - t2, p="fro", dim=-1).pow(2).mean()
    loss /= num_chunks
    return loss


@pytest.mark.parametrize("batch_size, chunk_size", [(4, 2), (12, 3), (16, 16), (32, 8)])
@pytest.mark.parametrize("dim", [2, 5, 16])
def test_euclidean_matches_loop_reference(batch_size, chunk_size, dim):
    g = _generator(batch_size * 100 + dim)
    z_a = torch.randn(batch_size, dim, generator=g, dtype=DTYPE)
    z_b = torch.randn(batch_size, dim, generator=g, dtype=DTYPE)
    expected = _reference_care(F.normalize(z_a).tolist(), F.normalize(z_b).tolist(), chunk_size)
    assert care_equivariance_loss(z_a, z_b, chunk_size).item() == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("batch_size, chunk_size", [(6, 2), (12, 4)])
@pytest.mark.parametrize("form_name", ["minkowski", "random_symmetric"])
def test_bilinear_forms_match_loop_reference(batch_size, chunk_size, form_name):
    g = _generator(batch_size + chunk_size)
    dim = 4
    if form_name == "minkowski":
        form = minkowski_form(dim, dtype=DTYPE)
    else:
        a = torch.randn(dim, dim, generator=g, dtype=DTYPE)
        form = a + a.T
    z_a = torch.randn(batch_size, dim, generator=g, dtype=DTYPE)
    z_b = torch.randn(batch_size, dim, generator=g, dtype=DTYPE)
    expected = _reference_care(z_a.tolist(), z_b.tolist(), chunk_size, form)
    value = care_equivariance_loss(z_a, z_b, chunk_size, form=form if form_name != "minkowski" else "minkowski")
    assert value.item() == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("batch_size, chunk_size", [(8, 2), (16, 4), (32, 16), (24, 24)])
def test_authors_value_is_2_n_minus_1_times_ours(batch_size, chunk_size):
    g = _generator(chunk_size)
    z_a = F.normalize(torch.randn(batch_size, 8, generator=g, dtype=DTYPE), dim=1)
    z_b = F.normalize(torch.randn(batch_size, 8, generator=g, dtype=DTYPE), dim=1)
    authors = _authors_equivariance_loss(z_a, z_b, num_chunks=batch_size // chunk_size)
    ours = care_equivariance_loss(z_a, z_b, chunk_size)
    torch.testing.assert_close(authors, 2 * (chunk_size - 1) * ours, rtol=1e-12, atol=0)


@pytest.mark.parametrize("chunk_size", [2, 4, 8])
@pytest.mark.parametrize("dim", [3, 16])
def test_zero_for_one_orthogonal_map_per_chunk(chunk_size, dim):
    g = _generator(chunk_size * dim)
    num_chunks = 5
    z_a = torch.randn(num_chunks * chunk_size, dim, generator=g, dtype=DTYPE)
    z_b = _per_chunk(z_a, chunk_size, [_random_orthogonal(dim, g) for _ in range(num_chunks)])
    assert care_equivariance_loss(z_a, z_b, chunk_size).item() < 1e-10
    assert care_equivariance_loss(z_a, z_b, chunk_size, normalize=False).item() < 1e-10


def test_positive_when_the_map_changes_inside_a_chunk_or_is_perturbed():
    g = _generator(7)
    z_a = torch.randn(32, 6, generator=g, dtype=DTYPE)
    # One rotation per 4 rows, but chunks of 8 mix two rotations.
    z_b = _per_chunk(z_a, 4, [_random_orthogonal(6, g) for _ in range(8)])
    assert care_equivariance_loss(z_a, z_b, 4).item() < 1e-10
    assert care_equivariance_loss(z_a, z_b, 8).item() > 1e-3
    values = []
    for noise in (1e-3, 1e-2, 1e-1):
        perturbed = z_b + noise * torch.randn(z_b.shape, generator=g, dtype=DTYPE)
        values.append(care_equivariance_loss(z_a, perturbed, 4).item())
    assert 0 < values[0] < values[1] < values[2]


@pytest.mark.parametrize("chunk_size", [2, 3, 8, 16])
def test_equiangular_chunks_give_a_chunk_size_independent_value(chunk_size):
    # u_i = sqrt(alpha) e_0 + sqrt(1 - alpha) e_i are unit vectors with <u_i, u_j> = alpha for all i != j.
    def equiangular(alpha):
        basis = torch.eye(chunk_size + 1, dtype=DTYPE)
        return math.sqrt(alpha) * basis[0] + math.sqrt(1 - alpha) * basis[1:]

    alpha, beta = 0.6, 0.1
    z_a, z_b = equiangular(alpha), equiangular(beta)
    expected = (alpha - beta) ** 2
    assert care_equivariance_loss(z_a, z_b, chunk_size).item() == pytest.approx(expected, rel=1e-12)
    authors = _authors_equivariance_loss(z_a, z_b).item()
    assert authors == pytest.approx(2 * (chunk_size - 1) * expected, rel=1e-12)


def test_duplicated_chunks_give_the_same_value():
    g = _generator(3)
    z_a = torch.randn(4, 5, generator=g, dtype=DTYPE)
    z_b = torch.randn(4, 5, generator=g, dtype=DTYPE)
    single = care_equivariance_loss(z_a, z_b, 4)
    torch.testing.assert_close(care_equivariance_loss(z_a.repeat(3, 1), z_b.repeat(3, 1), 4), single)


def test_iid_statistic_is_roughly_constant_across_chunk_sizes():
    # For independent uniform unit vectors in D dims, E[(<u_i,u_j> - <v_i,v_j>)^2] = 2 Var<u, v> = 2 / D.
    g = _generator(11)
    dim, batch_size = 8, 3072
    z_a = torch.randn(batch_size, dim, generator=g, dtype=DTYPE)
    z_b = torch.randn(batch_size, dim, generator=g, dtype=DTYPE)
    for chunk_size in (2, 8, 32, 128):
        assert care_equivariance_loss(z_a, z_b, chunk_size).item() == pytest.approx(2 / dim, rel=0.15)


def test_symmetric():
    g = _generator(5)
    z_a, z_b = torch.randn(12, 4, generator=g, dtype=DTYPE), torch.randn(12, 4, generator=g, dtype=DTYPE)
    for form in (None, "minkowski"):
        torch.testing.assert_close(
            care_equivariance_loss(z_a, z_b, 3, form=form), care_equivariance_loss(z_b, z_a, 3, form=form)
        )


def test_minkowski_form_conventions():
    torch.testing.assert_close(minkowski_form(3), torch.diag(torch.tensor([-1.0, 1.0, 1.0])))
    torch.testing.assert_close(minkowski_form(3, "mostly_minus"), torch.diag(torch.tensor([1.0, -1.0, -1.0])))
    assert minkowski_form(2, dtype=DTYPE).dtype == DTYPE
    g = _generator(1)
    z_a, z_b = torch.randn(8, 3, generator=g, dtype=DTYPE), torch.randn(8, 3, generator=g, dtype=DTYPE)
    torch.testing.assert_close(
        care_equivariance_loss(z_a, z_b, 4, form=minkowski_form(3, "mostly_plus", dtype=DTYPE)),
        care_equivariance_loss(z_a, z_b, 4, form=minkowski_form(3, "mostly_minus", dtype=DTYPE)),
    )


@pytest.mark.parametrize("dim", [2, 4])
@pytest.mark.parametrize("rapidity", [0.3, 1.5])
def test_minkowski_zero_for_lorentz_maps_and_positive_for_rotations_mixing_time(dim, rapidity):
    g = _generator(dim)
    form = minkowski_form(dim, dtype=DTYPE)
    num_chunks, chunk_size = 3, 4
    boosts = [_lorentz(dim, rapidity * (c + 1), g) for c in range(num_chunks)]
    for boost in boosts:
        torch.testing.assert_close(boost.T @ form @ boost, form)
    z_a = torch.randn(num_chunks * chunk_size, dim, generator=g, dtype=DTYPE)
    z_b = _per_chunk(z_a, chunk_size, boosts)
    assert care_equivariance_loss(z_a, z_b, chunk_size, form="minkowski").item() < 1e-10
    assert care_equivariance_loss(z_a, z_b, chunk_size, form=form).item() < 1e-10
    # A boost is not a rotation: the Euclidean loss sees it.
    assert care_equivariance_loss(z_a, z_b, chunk_size).item() > 1e-3

    angle = 0.8
    rotation = torch.eye(dim, dtype=DTYPE)
    rotation[0, 0] = rotation[1, 1] = math.cos(angle)
    rotation[0, 1], rotation[1, 0] = -math.sin(angle), math.sin(angle)
    z_rotated = z_a @ rotation.T
    assert care_equivariance_loss(z_a, z_rotated, chunk_size, form="minkowski").item() > 1e-3
    assert care_equivariance_loss(z_a, z_rotated, chunk_size).item() < 1e-10


def test_normalisation_defaults():
    g = _generator(9)
    z_a, z_b = torch.randn(8, 4, generator=g, dtype=DTYPE), torch.randn(8, 4, generator=g, dtype=DTYPE)
    scales = torch.rand(8, 1, generator=g, dtype=DTYPE) + 0.5
    # Euclidean: rows are projected onto the sphere, so their norms do not matter.
    torch.testing.assert_close(
        care_equivariance_loss(z_a * scales, z_b, 4), care_equivariance_loss(z_a, z_b, 4)
    )
    assert care_equivariance_loss(z_a * scales, z_b, 4, normalize=False) != care_equivariance_loss(z_a, z_b, 4)
    # Other forms: used as given unless normalize=True.
    minkowski = care_equivariance_loss(z_a * scales, z_b, 4, form="minkowski")
    assert minkowski != care_equivariance_loss(z_a, z_b, 4, form="minkowski")
    torch.testing.assert_close(
        care_equivariance_loss(z_a * scales, z_b, 4, form="minkowski", normalize=True),
        care_equivariance_loss(z_a, z_b, 4, form="minkowski", normalize=True),
    )


@pytest.mark.parametrize("form", [None, "minkowski"])
def test_gradcheck(form):
    z_a = torch.randn(6, 3, dtype=DTYPE, requires_grad=True)
    z_b = torch.randn(6, 3, dtype=DTYPE, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: care_equivariance_loss(a, b, 3, form=form), (z_a, z_b))


def test_pairings():
    g = _generator(2)
    z1, z2, z0 = (torch.randn(8, 4, generator=g, dtype=DTYPE) for _ in range(3))
    torch.testing.assert_close(
        paired_care_equivariance_loss(z1, z2, 4, "views"), care_equivariance_loss(z1, z2, 4)
    )
    expected = 0.5 * (care_equivariance_loss(z1, z0, 4) + care_equivariance_loss(z2, z0, 4))
    torch.testing.assert_close(paired_care_equivariance_loss(z1, z2, 4, "clean", z_clean=z0), expected)
    torch.testing.assert_close(
        paired_care_equivariance_loss(z1, None, 4, "clean", z_clean=z0), care_equivariance_loss(z1, z0, 4)
    )
    with pytest.raises(ValueError, match="z_clean"):
        paired_care_equivariance_loss(z1, z2, 4, "clean")
    with pytest.raises(ValueError, match="z_clean"):
        paired_care_equivariance_loss(z1, z2, 4, "views", z_clean=z0)
    with pytest.raises(ValueError, match="z2"):
        paired_care_equivariance_loss(z1, None, 4, "views")


def test_module_matches_function():
    g = _generator(4)
    z1, z2, z0 = (torch.randn(8, 4, generator=g, dtype=DTYPE) for _ in range(3))
    torch.testing.assert_close(CAREEquivarianceLoss(4)(z1, z2), care_equivariance_loss(z1, z2, 4))
    torch.testing.assert_close(
        CAREEquivarianceLoss(2, "clean", form="minkowski")(z1, z2, z_clean=z0),
        paired_care_equivariance_loss(z1, z2, 2, "clean", z0, form="minkowski"),
    )
    form = minkowski_form(4) * 2.0
    module = CAREEquivarianceLoss(4, form=form).to(DTYPE)
    assert module.form.dtype == DTYPE  # a tensor form is a buffer and follows .to()
    torch.testing.assert_close(module(z1, z2), care_equivariance_loss(z1, z2, 4, form=form.to(DTYPE)))


@pytest.mark.parametrize("chunk_size", [1, 0, 2.5, True])
def test_bad_chunk_size_is_named(chunk_size):
    with pytest.raises(ValueError, match="chunk_size"):
        CAREEquivarianceLoss(chunk_size)
    with pytest.raises(ValueError, match="chunk_size"):
        care_equivariance_loss(torch.randn(4, 2), torch.randn(4, 2), chunk_size)


def test_batch_not_divisible_by_chunk_size():
    with pytest.raises(ValueError, match="chunk_size"):
        care_equivariance_loss(torch.randn(10, 2), torch.randn(10, 2), 4)


def test_bad_pairing_and_forms_are_named():
    with pytest.raises(ValueError, match="pairing"):
        CAREEquivarianceLoss(4, pairing="clear")
    with pytest.raises(ValueError, match="form"):
        CAREEquivarianceLoss(4, form="hyperbolic")
    with pytest.raises(ValueError, match="form"):
        CAREEquivarianceLoss(4, form=torch.tensor([[1.0, 2.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="form"):
        care_equivariance_loss(torch.randn(4, 3), torch.randn(4, 3), 2, form=torch.eye(2))
    with pytest.raises(ValueError, match="dim"):
        minkowski_form(1)
    with pytest.raises(ValueError, match="signature"):
        minkowski_form(3, "+---")
