"""Vision benchmark data: local-file and bundled image datasets, and batched SimCLR / E-SSL / CARE augmentations."""

from photossl.vision.care_chunks import chunk_index, shared_augment
from photossl.vision.datasets import load_vision_dataset
from photossl.vision.info import VISION_DATASETS, VisionDatasetInfo, dataset_info, normalize_images
from photossl.vision.rotation import rotate_four, rotation_view
from photossl.vision.simclr import (
    SimCLRAugment,
    SimCLRParams,
    crop_resize_flip,
    sample_crop_boxes,
    simclr_augment,
)

__all__ = [
    "VISION_DATASETS",
    "SimCLRAugment",
    "SimCLRParams",
    "VisionDatasetInfo",
    "chunk_index",
    "crop_resize_flip",
    "dataset_info",
    "load_vision_dataset",
    "normalize_images",
    "rotate_four",
    "rotation_view",
    "sample_crop_boxes",
    "shared_augment",
    "simclr_augment",
]
