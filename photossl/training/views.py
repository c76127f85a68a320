"""Batched view pipelines: from one batch of inputs to every view a method's objective needs, on the batch's device.

Photonics cells (B, 1, N, N) hold (ε − 1)/19. The two contrastive views apply the policy's invariances, one random
element per sample; E-SSL expands the *un-augmented* batch into every element of the predicted group (as the E-SSL
photonics code does); CARE draws one element per chunk of ``care_chunk`` consecutive samples.

Vision images (B, C, H, W) are in [0, 1]. The views follow the SimCLR recipe at the image size; E-SSL's rotation view
is the recipe at half size shown at the four right-angle rotations; CARE shares one draw of the recipe per chunk.
Views are standardised with the dataset's mean and std after augmentation.

Randomness comes from one CPU ``torch.Generator`` (its state is checkpointed), so a run is repeatable on any device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from photossl.errors import PhotosslError
from photossl.symmetry.relative import coset_mask, stabiliser_mask
from photossl.training.config import MethodSpec


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

    ``care_views='shared'``: the two contrastive views are themselves chunk-shared (one forward pass pair serves
    both terms, as in :func:`photossl.losses.care_loss`); ``'separate'``: per-sample contrastive views plus two
    extra chunk-shared views for the CARE term (the CARE authors' code).
    """

    def __init__(self, policy, spec: MethodSpec, care_chunk: int = 16, care_views: str = "shared",
                 care_pairing: str = "views", predict_views: str = "all") -> None:
        if spec.uses_predict_group and policy.predict is None:
            raise PhotosslError(f"method '{spec.name}' needs a group of transformations but the symmetry policy has "
                                "no 'predict' group")
        self.policy, self.spec = policy, spec
        self.care_chunk, self.care_views, self.care_pairing = care_chunk, care_views, care_pairing
        self.predict_views = predict_views

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> Views:
        shared = self.spec.care and self.care_views == "shared"
        chunk = self.care_chunk if shared else None
        views = Views(self.policy.augment(x, generator, chunk), self.policy.augment(x, generator, chunk))
        if self.spec.care and not shared:
            views.care1 = self.policy.augment(x, generator, self.care_chunk)
            views.care2 = self.policy.augment(x, generator, self.care_chunk)
        if self.spec.care and self.care_pairing == "clean":
            views.clean = x
        if self.spec.predict:
            # Relative E-SSL with one view per sample pairs g·view1 with view1, whose features are computed anyway.
            anchor = views.view1 if self.spec.relative and self.predict_views == "one" else x
            if self.predict_views == "one":
                labels = self.policy.sample_predict(x.shape[0], generator, device=x.device)
                views.predict_views = self.policy.predict_group.apply_labels(anchor, labels)
                views.predict_labels = labels
            else:
                views.predict_views, views.predict_labels = self.policy.predict_views(x)
            if self.spec.relative:
                views.relative_anchor = "view1" if self.predict_views == "one" else "first_block"
                group = self.policy.predict_group
                # A point operation that maps a cell onto a translate of itself is invisible to features that
                # ignore translations; half-cell translations are compared exactly.
                stabiliser = stabiliser_mask(group, anchor, modulo_translations=group.name != "half_translate")
                repeats = views.predict_labels.shape[0] // x.shape[0]
                views.predict_correct = coset_mask(group, views.predict_labels, stabiliser.repeat(repeats, 1))
        if self.spec.known_group:
            labels = self.policy.sample_predict(x.shape[0], generator, device=x.device)
            views.equivariant_views = self.policy.predict_group.apply_labels(views.view1, labels)
            views.equivariant_labels = labels
        return views


class VisionViews:
    """SimCLR / E-SSL / CARE views of images in [0, 1], standardised for dataset ``dataset_name``."""

    def __init__(self, dataset_name: str, size: int, spec: MethodSpec, care_chunk: int = 16,
                 care_views: str = "shared", care_pairing: str = "views", predict_views: str = "all") -> None:
        from photossl.vision import SimCLRAugment

        if spec.uses_predict_group and size < 2:
            raise PhotosslError(f"the rotation view needs images of at least 2 px, got {size}")
        if spec.relative and predict_views == "one":
            raise PhotosslError("relative E-SSL on images pairs each rotated crop with its upright copy: use "
                                "predict_views 'all'")
        self.dataset_name, self.size, self.spec = dataset_name, size, spec
        self.care_chunk, self.care_views, self.care_pairing = care_chunk, care_views, care_pairing
        self.predict_views = predict_views
        self.augment = SimCLRAugment(size=size)
        self.rotation_augment = SimCLRAugment(size=max(1, size // 2))

    def _normalise(self, images: torch.Tensor) -> torch.Tensor:
        from photossl.vision import normalize_images

        return normalize_images(images, self.dataset_name)

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> Views:
        from photossl.vision import rotation_view, shared_augment

        shared = self.spec.care and self.care_views == "shared"
        if shared:
            v1, v2 = shared_augment(images, self.care_chunk, generator=generator, augment=self.augment)
        else:
            v1, v2 = self.augment(images, generator), self.augment(images, generator)
        views = Views(self._normalise(v1), self._normalise(v2))
        if self.spec.care and not shared:
            c1, c2 = shared_augment(images, self.care_chunk, generator=generator, augment=self.augment)
            views.care1, views.care2 = self._normalise(c1), self._normalise(c2)
        if self.spec.care and self.care_pairing == "clean":
            views.clean = self._normalise(images)
        if self.spec.uses_predict_group:
            rotated, labels = rotation_view(images, generator=generator, augment=self.rotation_augment)
            views.predict_views, views.predict_labels = self._normalise(rotated), labels
            if self.spec.relative:  # natural images are taken to have no rotation symmetry of their own
                views.relative_anchor = "first_block"
                views.predict_correct = torch.nn.functional.one_hot(labels, 4).bool()
            if self.predict_views == "one" and not self.spec.known_group:
                views.keep_one_prediction(generator)
        return views
