"""SimCLR augmentation: crop geometry, the colour formulas against a per-pixel loop, randomness and shapes."""

import colorsys
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from photossl.errors import PhotosslError
from photossl.vision import SimCLRAugment, SimCLRParams, crop_resize_flip, sample_crop_boxes, simclr_augment

pytest.importorskip("kornia")


def _full_boxes(n, side):
    return torch.tensor([[0.0, 0.0, side, side]] * n)


def test_full_box_is_identity_and_flip_mirrors():
    x = torch.rand(3, 3, 12, 12)
    same = crop_resize_flip(x, _full_boxes(3, 12), torch.zeros(3, dtype=torch.bool), 12)
    assert torch.allclose(same, x, atol=1e-6)
    flipped = crop_resize_flip(x, _full_boxes(3, 12), torch.tensor([True, False, True]), 12)
    assert torch.allclose(flipped[0], x[0].flip(-1), atol=1e-6) and torch.allclose(flipped[1], x[1], atol=1e-6)


def test_box_selects_rows_then_columns():
    x = torch.rand(2, 1, 20, 24, generator=torch.Generator().manual_seed(0))
    box = torch.tensor([[2.0, 7.0, 10.0, 10.0], [9.0, 0.0, 10.0, 10.0]])  # (top, left, h, w)
    out = crop_resize_flip(x, box, torch.tensor([False, True]), 10)
    # a box on whole pixels samples them exactly, up to float32 rounding of the sampling grid (a few 1e-7)
    assert torch.allclose(out[0], x[0, :, 2:12, 7:17], rtol=0, atol=1e-5)
    assert torch.allclose(out[1], x[1, :, 9:19, 0:10].flip(-1), rtol=0, atol=1e-5)


def test_resize_matches_bilinear_interpolation():
    x = torch.rand(2, 3, 8, 8)
    out = crop_resize_flip(x, _full_boxes(2, 8), torch.zeros(2, dtype=torch.bool), 16)
    expected = F.interpolate(x, size=16, mode="bilinear", align_corners=False)
    assert torch.allclose(out, expected, atol=1e-6)


def test_crop_boxes_follow_the_random_resized_crop_rule():
    g = torch.Generator().manual_seed(0)
    boxes = sample_crop_boxes(4000, 32, 40, (0.2, 1.0), (3 / 4, 4 / 3), g)
    top, left, h, w = boxes.T
    assert torch.equal(boxes, boxes.round())
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= 32).all() and (left + w <= 40).all()
    area = h * w / (32 * 40)
    assert area.min() >= 0.18 and area.max() <= 1.0  # 0.2 less rounding
    aspect = w / h
    assert aspect.min() > 0.7 and aspect.max() < 1.45
    # offsets are uniform over every allowed position: both extremes occur for small boxes
    small = (h <= 16) & (w <= 20)
    assert (top[small] == 0).any() and (top[small] == 32 - h[small]).any()


def test_crop_boxes_fall_back_to_a_centred_crop():
    # no tall-enough box fits a 3:1 aspect ratio at >= 90 % area: the fallback trims the height to width / 3
    boxes = sample_crop_boxes(5, 30, 30, (0.9, 1.0), (3.0, 3.0), torch.Generator().manual_seed(0))
    assert boxes.tolist() == [[10.0, 0.0, 10.0, 30.0]] * 5


def _gray(x):
    return 0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]


def _reference_colour(x, jitter, factors, order, gray):
    """torchvision's ColorJitter + RandomGrayscale on one (C, H, W) numpy image, pixel by pixel for the hue."""
    x = x.copy()
    channels = x.shape[0]
    if jitter:
        for op in order:
            f = factors[op]
            if op == 0:
                x = np.clip(x * f, 0, 1)
            elif op == 1:
                mean = _gray(x).mean() if channels == 3 else x.mean()
                x = np.clip(f * x + (1 - f) * mean, 0, 1)
            elif op == 2 and channels == 3:
                x = np.clip(f * x + (1 - f) * _gray(x), 0, 1)
            elif op == 3 and channels == 3:
                out = np.empty_like(x)
                for i in range(x.shape[1]):
                    for j in range(x.shape[2]):
                        h, s, v = colorsys.rgb_to_hsv(*x[:, i, j])
                        out[:, i, j] = colorsys.hsv_to_rgb((h + f) % 1.0, s, v)
                x = out
    if gray and channels == 3:
        x = np.broadcast_to(_gray(x), x.shape)
    return x


@pytest.mark.parametrize("channels", [3, 1])
def test_colour_operations_match_a_per_sample_loop(channels):
    augment = SimCLRAugment(size=6)
    n = 12
    g = torch.Generator().manual_seed(3)
    images = torch.rand(n, channels, 6, 6, generator=g, dtype=torch.float64)
    drawn = augment.sample(n, 6, 6, g)
    # identity geometry, so that the colour part alone is compared; random orders plus hand-set extreme factors
    params = SimCLRParams(
        boxes=_full_boxes(n, 6),
        flip=torch.zeros(n, dtype=torch.bool),
        jitter=torch.tensor([True] * 10 + [False, True]),
        factors=torch.cat([drawn.factors[:10], torch.tensor([[0.6, 1.4, 1.4, -0.1], [1.4, 0.6, 0.6, 0.1]])]),
        order=drawn.order,
        gray=torch.tensor([False] * 9 + [True, True, False]),
    )
    out = augment.apply(images, params)
    for k in range(n):
        expected = _reference_colour(
            images[k].numpy(), bool(params.jitter[k]), params.factors[k].tolist(), params.order[k].tolist(),
            bool(params.gray[k]),
        )
        np.testing.assert_allclose(out[k].numpy(), expected, atol=1e-6, err_msg=f"sample {k}")


def test_operation_order_matters_and_is_per_sample():
    augment = SimCLRAugment(size=4)
    images = torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(0)).repeat(2, 1, 1, 1)
    factors = torch.tensor([[1.3, 0.5, 1.0, 0.0]]).repeat(4, 1)
    order = torch.tensor([[0, 1, 2, 3], [0, 1, 2, 3], [1, 0, 2, 3], [1, 0, 2, 3]])
    params = SimCLRParams(
        _full_boxes(4, 4), torch.zeros(4, dtype=torch.bool), torch.ones(4, dtype=torch.bool), factors, order,
        torch.zeros(4, dtype=torch.bool),
    )
    out = augment.apply(images, params)
    assert not torch.allclose(out[0], out[2])  # brightness then contrast differs from contrast then brightness


@pytest.mark.parametrize("channels, size", [(3, 16), (1, 8), (3, 24)])
def test_views_shapes_ranges_and_dtype(channels, size):
    images = torch.rand(10, channels, 16, 16)
    views = simclr_augment(images, size, n_views=3, generator=torch.Generator().manual_seed(1))
    assert len(views) == 3
    for v in views:
        assert v.shape == (10, channels, size, size) and v.dtype == images.dtype
        assert v.min() >= 0 and v.max() <= 1
    assert not torch.equal(views[0], views[1])
    assert simclr_augment(images)[0].shape == images.shape  # size defaults to the input's


def test_generator_and_global_seed_make_views_repeatable():
    images = torch.rand(8, 3, 16, 16)
    augment = SimCLRAugment(size=16)
    a = augment(images, torch.Generator().manual_seed(5))
    b = augment(images, torch.Generator().manual_seed(5))
    c = augment(images, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    torch.manual_seed(11)
    d = augment(images)
    torch.manual_seed(11)
    e = augment(images)
    assert torch.equal(d, e)


def test_random_stream_does_not_depend_on_channels():
    augment = SimCLRAugment(size=8)
    three = augment.sample(6, 16, 16, torch.Generator().manual_seed(2))
    one = augment.sample(6, 16, 16, torch.Generator().manual_seed(2))
    assert all(torch.equal(getattr(three, f), getattr(one, f)) for f in ("boxes", "flip", "factors", "order"))
    gray = torch.rand(6, 1, 16, 16)
    colour_of_gray = augment.apply(gray.expand(-1, 3, -1, -1).contiguous(), three)
    # on a grey image every colour operation keeps it grey, so the 1-channel path must give the same pixels
    assert torch.allclose(augment.apply(gray, one), colour_of_gray[:, :1], atol=1e-5)


def test_probabilities_are_respected():
    augment = SimCLRAugment(size=8)
    params = augment.sample(20000, 16, 16, torch.Generator().manual_seed(0))
    assert params.flip.float().mean().item() == pytest.approx(0.5, abs=0.02)
    assert params.jitter.float().mean().item() == pytest.approx(0.8, abs=0.02)
    assert params.gray.float().mean().item() == pytest.approx(0.2, abs=0.02)
    assert params.factors[:, :3].min() >= 0.6 and params.factors[:, :3].max() <= 1.4
    assert params.factors[:, 3].abs().max() <= 0.1
    assert (params.order.sort(dim=1).values == torch.arange(4)).all()


def test_bad_hyper_parameters_and_inputs_are_named():
    for kwargs, name in [
        ({"size": 0}, "size"),
        ({"scale": (0.5, 0.2)}, "scale"),
        ({"ratio": (0.0, 1.0)}, "ratio"),
        ({"flip_p": 1.5}, "flip_p"),
        ({"gray_p": -0.1}, "gray_p"),
        ({"contrast": -1.0}, "contrast"),
        ({"hue": 0.6}, "hue"),
    ]:
        with pytest.raises(PhotosslError, match=name):
            SimCLRAugment(**kwargs)
    augment = SimCLRAugment(size=4)
    with pytest.raises(PhotosslError, match="1 or 3 channels"):
        augment(torch.rand(2, 2, 8, 8))
    with pytest.raises(PhotosslError, match="floating"):
        augment(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(PhotosslError, match="3 augmentation parameters for 2 images"):
        augment.apply(torch.rand(2, 3, 8, 8), augment.sample(3, 8, 8))
    with pytest.raises(PhotosslError, match="n_views"):
        simclr_augment(torch.rand(2, 3, 8, 8), n_views=0)


def test_missing_kornia_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "kornia", None)
    with pytest.raises(PhotosslError, match=r"photossl\[vision\]"):
        SimCLRAugment(size=4)(torch.rand(2, 3, 8, 8))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_views_equal_cpu_views():
    images = torch.rand(16, 3, 16, 16)
    augment = SimCLRAugment(size=12)
    cpu = augment(images, torch.Generator().manual_seed(0))
    gpu = augment(images.cuda(), torch.Generator().manual_seed(0))
    assert gpu.device.type == "cuda"
    assert torch.allclose(gpu.cpu(), cpu, atol=1e-4)


def test_hue_shift_of_a_pure_colour():
    # red shifted by a third of a turn is green; the sign convention is torchvision's (hue increases R -> G -> B)
    augment = SimCLRAugment(size=2)
    red = torch.zeros(1, 3, 2, 2)
    red[:, 0] = 1.0
    params = SimCLRParams(
        _full_boxes(1, 2), torch.zeros(1, dtype=torch.bool), torch.ones(1, dtype=torch.bool),
        torch.tensor([[1.0, 1.0, 1.0, 1 / 3]]), torch.tensor([[3, 0, 1, 2]]), torch.zeros(1, dtype=torch.bool),
    )
    green = augment.apply(red, params)
    assert torch.allclose(green[0, :, 0, 0], torch.tensor([0.0, 1.0, 0.0]), atol=1e-5)
