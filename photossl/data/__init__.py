"""Data: dataset generation and storage (this file's first block), loaders and splits (re-exported below)."""

from photossl.data.generate import PRESETS, GenerateConfig, GenerateResult, generate_dataset, preset_config
from photossl.data.storage import bundled_dataset_path, dataset_sha256, open_dataset

__all__ = [
    "GenerateConfig",
    "GenerateResult",
    "PRESETS",
    "bundled_dataset_path",
    "dataset_sha256",
    "generate_dataset",
    "open_dataset",
    "preset_config",
]

# Loaders, splits and importers live in photossl.data.loaders, which re-exports what users need.
try:
    from photossl.data.loaders import *  # noqa: F401,F403
    from photossl.data.loaders import __all__ as _loader_names
except ModuleNotFoundError as _err:  # only a missing loaders module is tolerated, not a broken one
    if _err.name != "photossl.data.loaders":
        raise
    _loader_names = []
__all__ += [name for name in _loader_names if name not in __all__]
