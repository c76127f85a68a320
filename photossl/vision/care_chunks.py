"""CARE's shared augmentations: every sample of a chunk gets the same pair of SimCLR augmentations (a1, a2).

Gupta et al., "Structuring Representation Geometry with Rotationally Equivariant Contrastive Learning" (CARE, 2024):
the equivariance term compares f(a1 x)^T f(a1 x') with f(a2 x)^T f(a2 x') for x, x' in one chunk, so a1 (and a2)
must be the same transformation for the whole chunk. Each chunk draws its own pair (the reference code's
``vmap(randomness='same')`` tends to give every chunk the same pair); the draw is made once per chunk and replayed
onto the chunk's samples, so there is no loop over samples or chunks.
"""

from __future__ import annotations

import torch

from photossl.errors import PhotosslError
from photossl.vision.simclr import SimCLRAugment, check_images


def chunk_index(batch_size: int, chunk_size: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Chunk number of each sample: consecutive runs of ``chunk_size``, the last run shorter if B is not a multiple.

    Matches ``torch.split(batch, chunk_size)``, which is how a loss should cut the batch into the same chunks.
    """
    return torch.arange(batch_size, device=device) // chunk_size


def shared_augment(
    images: torch.Tensor,
    chunk_size: int,
    *,
    size: int | None = None,
    generator: torch.Generator | None = None,
    augment: SimCLRAugment | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two views (a1 x, a2 x) of images (B, C, H, W), each (B, C, size, size); a1 and a2 are shared within a chunk.

    Chunk j is samples j*chunk_size .. (j+1)*chunk_size - 1 (see :func:`chunk_index`). a1 and a2 are independent
    draws of the recipe ``augment`` (default ``SimCLRAugment(size)``, size defaulting to H); different chunks draw
    independently. Randomness: ``generator`` if given, else torch's global RNG.
    """
    check_images(images)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise PhotosslError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    if augment is None:
        augment = SimCLRAugment(size=images.shape[-2] if size is None else size)
    elif size is not None and size != augment.size:
        raise PhotosslError(f"size={size} disagrees with augment.size={augment.size}")
    b, _, height, width = images.shape
    n_chunks = -(-b // chunk_size)
    owner = chunk_index(b, chunk_size)
    views = []
    for _ in range(2):
        per_chunk = augment.sample(n_chunks, height, width, generator)
        views.append(augment.apply(images, per_chunk.take(owner)))
    return views[0], views[1]
