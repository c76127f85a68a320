"""photossl: photonic-crystal data, a fast band solver, and equivariant self-supervised learning."""

__version__ = "0.1.0"
