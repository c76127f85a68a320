"""Batched view pipelines: from one batch of inputs to every view a method's objective needs, on the batch's device.

A pipeline draws the two contrastive views of every base loss, then lets each part of the method add its own
(:mod:`photossl.training.methods`), in the method's order.

Photonics cells (B, 1, N, N) hold (ε − 1)/19. The two contrastive views apply the policy's invariances, one random
element per sample (per chunk when CARE shares them).

Vision images (B, C, H, W) are in [0, 1]. The views follow the SimCLR recipe at the image size; the rotation view
(E-SSL's and known-group CARE's) is the recipe at half size shown at the four right-angle rotations. Views are
standardised with the dataset's mean and std after augmentation.

Randomness comes from one CPU ``torch.Generator`` (its state is checkpointed), so a run is repeatable on any device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from photossl.errors import PhotosslError
from photossl.training.config import MethodSpec
from photossl.training.methods.combine import method_of
from photossl.vision import SimCLRAugment, normalize_images, rotation_view, shared_augment


@dataclass
class Views:
    """Inputs to :class:`~photossl.training.methods.PretrainModel` for one batch of B samples.

    view1, view2: (B, C, H, W), the two views of the base loss.
    predict_views: (G·B, C, h, w) transformed inputs and predict_labels (G·B,) long, when the method predicts.
    predict_correct: (N, G) bool, relative E-SSL's right answers for each predicted view (the coset of its label
        under the anchor's stabiliser); N = G·B, or B when one view per sample is kept.
    relative_anchor: where relative E-SSL's first view of each pair comes from: 'first_block' (block 0 of the
        group-major ``predict_views``, the identity copy) or 'view1'; None for absolute prediction.
    equivariant_views: (B, C, H, W) g_b·view1 and equivariant_labels (B,) long, for known-group CARE; None with
        known-group CARE means its pairs are the blocks of ``predict_views`` against block 0.
    care1, care2: (B, C, H, W) chunk-shared views for CARE when they are separate from view1/view2.
    clean: (B, C, H, W) un-augmented inputs, for CARE's 'clean' pairing.
    """

    view1: torch.Tensor
    view2: torch.Tensor
    predict_views: torch.Tensor | None = None
    predict_labels: torch.Tensor | None = None
    care1: torch.Tensor | None = None
    care2: torch.Tensor | None = None
    clean: torch.Tensor | None = None
    predict_correct: torch.Tensor | None = None
    relative_anchor: str | None = None
    equivariant_views: torch.Tensor | None = None
    equivariant_labels: torch.Tensor | None = None

    def keep_one_prediction(self, generator: torch.Generator | None = None) -> Views:
        """Keep one random transformed copy per sample of the group-major ``predict_views``: (G·B, ...) -> (B, ...)."""
        b = self.view1.shape[0]
        groups = self.predict_views.shape[0] // b
        choice = torch.randint(groups, (b,), generator=generator).to(self.predict_views.device)
        index = choice * b + torch.arange(b, device=choice.device)
        self.predict_views, self.predict_labels = self.predict_views[index], self.predict_labels[index]
        if self.predict_correct is not None:
            self.predict_correct = self.predict_correct[index.to(self.predict_correct.device)]
        return self

    def rows(self, index: slice) -> Views:
        """The views of samples ``index`` (a slice of the B samples; predicted views keep their group-major layout)."""
        def take(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t[index]

        def take_blocks(t: torch.Tensor | None) -> torch.Tensor | None:
            if t is None:
                return None
            groups = t.shape[0] // self.view1.shape[0]
            return t.reshape(groups, -1, *t.shape[1:])[:, index].reshape(-1, *t.shape[1:])

        return Views(take(self.view1), take(self.view2), take_blocks(self.predict_views),
                     take_blocks(self.predict_labels), take(self.care1), take(self.care2), take(self.clean),
                     take_blocks(self.predict_correct), self.relative_anchor, take(self.equivariant_views),
                     take(self.equivariant_labels))


class PhotonicsViews:
    """Views of photonic unit cells from a :class:`~photossl.symmetry.SymmetryPolicy`.

    ``care_views``, ``care_pairing``: CARE's (:mod:`photossl.training.methods.care`); ``predict_views``: E-SSL's
    (:mod:`photossl.training.methods.essl`).
    """

    track = "photonics"

    def __init__(self, policy, spec: MethodSpec, care_chunk: int = 16, care_views: str = "shared",
                 care_pairing: str = "views", predict_views: str = "all") -> None:
        self.policy, self.spec, self.method = policy, spec, method_of(spec)
        self.care_chunk, self.care_views, self.care_pairing = care_chunk, care_views, care_pairing
        self.predict_views = predict_views
        for part in self.method.parts:
            part.check_views(self)

    def require_group(self) -> None:
        """Raise PhotosslError unless the policy has a 'predict' group to draw from."""
        if self.policy.predict is None:
            raise PhotosslError(f"method '{self.spec.name}' needs a group of transformations but the symmetry policy "
                                "has no 'predict' group")

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> Views:
        chunk = self.method.pair_chunk(self)
        views = Views(self.policy.augment(x, generator, chunk), self.policy.augment(x, generator, chunk))
        for part in self.method.parts:
            part.photonics_views(self, x, views, generator)
        return views


class VisionViews:
    """SimCLR views of images in [0, 1] and the method's own, standardised for dataset ``dataset_name``."""

    track = "vision"

    def __init__(self, dataset_name: str, size: int, spec: MethodSpec, care_chunk: int = 16,
                 care_views: str = "shared", care_pairing: str = "views", predict_views: str = "all") -> None:
        self.dataset_name, self.size, self.spec, self.method = dataset_name, size, spec, method_of(spec)
        self.care_chunk, self.care_views, self.care_pairing = care_chunk, care_views, care_pairing
        self.predict_views = predict_views
        for part in self.method.parts:
            part.check_views(self)
        self.augment = SimCLRAugment(size=size)
        self.rotation_augment = SimCLRAugment(size=max(1, size // 2))

    def require_group(self) -> None:
        """Raise PhotosslError when the images are too small to rotate a half-size crop."""
        if self.size < 2:
            raise PhotosslError(f"the rotation view needs images of at least 2 px, got {self.size}")

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        return normalize_images(images, self.dataset_name)

    def shared_pair(self, images: torch.Tensor, chunk: int, generator: torch.Generator | None):
        """Two standardised views whose recipe draw is shared by each chunk of ``chunk`` images."""
        v1, v2 = shared_augment(images, chunk, generator=generator, augment=self.augment)
        return self.normalise(v1), self.normalise(v2)

    def rotation_views(self, images: torch.Tensor, views: Views, generator: torch.Generator | None) -> None:
        """Set ``views.predict_views`` to the four rotations of a half-size crop of each image (group-major) and
        ``predict_labels``, unless an earlier part did."""
        if views.predict_views is None:
            rotated, labels = rotation_view(images, generator=generator, augment=self.rotation_augment)
            views.predict_views, views.predict_labels = self.normalise(rotated), labels

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> Views:
        chunk = self.method.pair_chunk(self)
        if chunk is not None:
            views = Views(*self.shared_pair(images, chunk, generator))
        else:
            v1, v2 = self.augment(images, generator), self.augment(images, generator)
            views = Views(self.normalise(v1), self.normalise(v2))
        for part in self.method.parts:
            part.vision_views(self, images, views, generator)
        return views
