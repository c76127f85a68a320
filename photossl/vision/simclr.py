"""The SimCLR augmentation recipe, batched on tensors: parameters are drawn per sample, then applied in one pass.

Chen et al., "A Simple Framework for Contrastive Learning of Visual Representations" (2020); CIFAR settings as in
E-SSL (Dangovski et al. 2022): RandomResizedCrop(scale=(0.2, 1)), horizontal flip, ColorJitter(0.4, 0.4, 0.4, 0.1)
with p = 0.8 in a random order per sample, RandomGrayscale(p = 0.2) -- torchvision's formulas.

Drawing (:meth:`SimCLRAugment.sample`) is separate from applying (:meth:`SimCLRAugment.apply`) so that one draw
can be shared by many samples (CARE's chunks) or replayed. Randomness comes from ``generator`` when one is given,
else from torch's global RNG (so ``torch.manual_seed`` in the trainer makes runs repeatable). Parameters are drawn
on the generator's device (the CPU for the global RNG) with a fixed number of draws whatever the outcome, so a
seeded run gives the same augmentations on CPU and CUDA. The crop and flip are one ``grid_sample``; the colour
operations are kornia's implementations of torchvision's formulas (kornia is the optional extra ``vision``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

from photossl.errors import PhotosslError


def require_kornia():
    """The kornia module, or a PhotosslError telling how to install it."""
    try:
        import kornia
    except ImportError:
        raise PhotosslError(
            "vision augmentations need kornia: pip install 'photossl[vision]' (or pip install kornia)"
        ) from None
    return kornia


def check_images(images: torch.Tensor) -> None:
    """Reject anything but a floating (B, C, H, W) tensor with 1 or 3 channels."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or not images.is_floating_point():
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise PhotosslError(f"images must be a floating (B, C, H, W) tensor, got {shape}")
    if images.shape[1] not in (1, 3):
        raise PhotosslError(f"images must have 1 or 3 channels, got {images.shape[1]}")


@dataclass(frozen=True)
class SimCLRParams:
    """Per-sample augmentation parameters; every field has leading dimension N.

    boxes (N, 4): crop top, left, height, width in source pixels; flip (N,) bool; jitter (N,) bool (colour jitter
    applied); factors (N, 4): brightness, contrast, saturation multipliers and the hue shift in turns; order (N, 4):
    the permutation of (brightness, contrast, saturation, hue) applied; gray (N,) bool.
    """

    boxes: torch.Tensor
    flip: torch.Tensor
    jitter: torch.Tensor
    factors: torch.Tensor
    order: torch.Tensor
    gray: torch.Tensor

    def __len__(self) -> int:
        return self.boxes.shape[0]

    def take(self, index: torch.Tensor) -> SimCLRParams:
        """The parameters of samples ``index`` (a LongTensor, repeats allowed: sharing one draw among samples)."""
        return SimCLRParams(*(getattr(self, f.name)[index.to(self.boxes.device)] for f in fields(self)))

    def to(self, device: torch.device | str) -> SimCLRParams:
        return SimCLRParams(*(getattr(self, f.name).to(device) for f in fields(self)))


def _uniform(n: int, low: float, high: float, generator: torch.Generator | None, device) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, device=device, dtype=torch.float64)


def sample_crop_boxes(
    n: int,
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    generator: torch.Generator | None = None,
    attempts: int = 10,
) -> torch.Tensor:
    """torchvision's RandomResizedCrop box rule, vectorised: (n, 4) float64 integer boxes (top, left, h, w).

    Each sample tries ``attempts`` (area fraction, log-uniform aspect ratio) draws and keeps the first that fits;
    if none fits, it takes the central crop with the aspect ratio clamped into ``ratio``.
    """
    device = generator.device if generator is not None else torch.device("cpu")
    area = height * width * _uniform(n * attempts, *scale, generator, device).view(n, attempts)
    log_ratio = _uniform(n * attempts, math.log(ratio[0]), math.log(ratio[1]), generator, device).view(n, attempts)
    aspect = torch.exp(log_ratio)
    w = torch.round(torch.sqrt(area * aspect))
    h = torch.round(torch.sqrt(area / aspect))
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = fits.to(torch.int8).argmax(dim=1, keepdim=True)
    w = w.gather(1, first).squeeze(1)
    h = h.gather(1, first).squeeze(1)

    # fallback when no attempt fits: the whole image, trimmed to the nearest allowed aspect ratio
    in_ratio = width / height
    if in_ratio < ratio[0]:
        fb_w, fb_h = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        fb_w, fb_h = round(height * ratio[1]), height
    else:
        fb_w, fb_h = width, height
    any_fits = fits.any(dim=1)
    w = torch.where(any_fits, w, torch.full_like(w, fb_w))
    h = torch.where(any_fits, h, torch.full_like(h, fb_h))

    # uniform integer offsets in [0, H - h] and [0, W - w], as randint does; the fallback is centred
    u_top = torch.rand(n, generator=generator, device=device, dtype=torch.float64)
    u_left = torch.rand(n, generator=generator, device=device, dtype=torch.float64)
    top = torch.where(any_fits, torch.floor(u_top * (height - h + 1)), torch.floor((height - h) / 2))
    left = torch.where(any_fits, torch.floor(u_left * (width - w + 1)), torch.floor((width - w) / 2))
    return torch.stack([top, left, h, w], dim=1)


def crop_resize_flip(images: torch.Tensor, boxes: torch.Tensor, flip: torch.Tensor, size: int) -> torch.Tensor:
    """Crop ``boxes`` (B, 4: top, left, h, w in pixels) out of images (B, C, H, W), resize bilinearly to
    (B, C, size, size), and mirror left-right where ``flip`` (B,) is true.

    Pixel-area convention (align_corners=False): the full box at the input's own size is the identity. No
    antialiasing: a box much larger than ``size`` (e.g. STL-10 96 px -> 32 px) aliases, unlike torchvision.
    """
    b, c, height, width = images.shape
    boxes = boxes.to(device=images.device, dtype=images.dtype)
    top, left, h, w = boxes.unbind(dim=1)
    sign = 1.0 - 2.0 * flip.to(device=images.device, dtype=images.dtype)
    theta = torch.zeros(b, 2, 3, device=images.device, dtype=images.dtype)
    theta[:, 0, 0] = sign * w / width
    theta[:, 0, 2] = (2 * left + w) / width - 1
    theta[:, 1, 1] = h / height
    theta[:, 1, 2] = (2 * top + h) / height - 1
    grid = F.affine_grid(theta, [b, c, size, size], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


@dataclass(frozen=True)
class SimCLRAugment:
    """The SimCLR recipe producing (B, C, size, size) views of (B, C, H, W) images in [0, 1].

    For 1-channel images saturation, hue and grayscale are identities (a grey pixel has no saturation or hue), so
    only brightness and contrast act; their parameters are still drawn, so the random stream does not depend on C.
    ``brightness``, ``contrast``, ``saturation`` draw a factor in [max(0, 1 - v), 1 + v]; ``hue`` a shift in
    [-hue, hue] turns (hue <= 0.5).
    """

    size: int = 32
    scale: tuple[float, float] = (0.2, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    jitter_p: float = 0.8
    gray_p: float = 0.2

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1:
            raise PhotosslError(f"size must be a positive integer, got {self.size!r}")
        if not 0 < self.scale[0] <= self.scale[1] <= 1:
            raise PhotosslError(f"scale must satisfy 0 < scale[0] <= scale[1] <= 1, got {self.scale}")
        if not 0 < self.ratio[0] <= self.ratio[1]:
            raise PhotosslError(f"ratio must satisfy 0 < ratio[0] <= ratio[1], got {self.ratio}")
        for name in ("flip_p", "jitter_p", "gray_p"):
            if not 0 <= getattr(self, name) <= 1:
                raise PhotosslError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        for name in ("brightness", "contrast", "saturation"):
            if getattr(self, name) < 0:
                raise PhotosslError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.hue <= 0.5:
            raise PhotosslError(f"hue must lie in [0, 0.5], got {self.hue}")

    def sample(self, n: int, height: int, width: int, generator: torch.Generator | None = None) -> SimCLRParams:
        """Draw parameters for ``n`` samples of (height, width) images."""
        device = generator.device if generator is not None else torch.device("cpu")
        boxes = sample_crop_boxes(n, height, width, self.scale, self.ratio, generator)
        flip = torch.rand(n, generator=generator, device=device) < self.flip_p
        jitter = torch.rand(n, generator=generator, device=device) < self.jitter_p
        factors = torch.stack(
            [_uniform(n, max(0.0, 1 - v), 1 + v, generator, device) for v in (self.brightness, self.contrast)]
            + [_uniform(n, max(0.0, 1 - self.saturation), 1 + self.saturation, generator, device)]
            + [_uniform(n, -self.hue, self.hue, generator, device)],
            dim=1,
        )
        order = torch.rand(n, 4, generator=generator, device=device).argsort(dim=1)
        gray = torch.rand(n, generator=generator, device=device) < self.gray_p
        return SimCLRParams(boxes, flip, jitter, factors, order, gray)

    def apply(self, images: torch.Tensor, params: SimCLRParams) -> torch.Tensor:
        """Apply ``params`` (one entry per sample) to images (B, C, H, W) -> (B, C, size, size), in [0, 1]."""
        check_images(images)
        if len(params) != images.shape[0]:
            raise PhotosslError(f"{len(params)} augmentation parameters for {images.shape[0]} images")
        kornia = require_kornia()
        enhance = kornia.enhance
        params = params.to(images.device)
        x = crop_resize_flip(images, params.boxes, params.flip, self.size).clamp(0.0, 1.0)
        factors = params.factors.to(images.dtype)
        ops = (
            enhance.adjust_brightness_accumulative,
            enhance.adjust_contrast_with_mean_subtraction,
            enhance.adjust_saturation_with_gray_subtraction,
            lambda img, f: enhance.adjust_hue(img, f * (2 * math.pi)),
        )
        active = (0, 1, 2, 3) if x.shape[1] == 3 else (0, 1)
        for step in range(4):
            for op in active:
                # each operation touches only the samples doing it at this step of their own order
                idx = torch.nonzero(params.jitter & (params.order[:, step] == op)).squeeze(1)
                if idx.numel():
                    x[idx] = ops[op](x[idx], factors[idx, op]).clamp(0.0, 1.0)
        if x.shape[1] == 3:
            gray = kornia.color.rgb_to_grayscale(x).expand_as(x)
            x = torch.where(params.gray.view(-1, 1, 1, 1), gray, x)
        return x

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One independently augmented view per image: (B, C, H, W) -> (B, C, size, size)."""
        check_images(images)
        params = self.sample(images.shape[0], images.shape[-2], images.shape[-1], generator)
        return self.apply(images, params)


def simclr_augment(
    images: torch.Tensor,
    size: int | None = None,
    *,
    n_views: int = 2,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, ...]:
    """``n_views`` independent SimCLR views of images (B, C, H, W) in [0, 1], each (B, C, size, size).

    ``size`` defaults to the input's height. Randomness: ``generator`` if given, else torch's global RNG.
    """
    check_images(images)
    if n_views < 1:
        raise PhotosslError(f"n_views must be >= 1, got {n_views}")
    augment = SimCLRAugment(size=images.shape[-2] if size is None else size)
    return tuple(augment(images, generator) for _ in range(n_views))
