"""Where the classifier's files are (no dependencies: the CLI's argument parser reads these, and a
proxy that never classifies must not import numpy for them)."""

from pathlib import Path

DEFAULT_ARTIFACT = Path(__file__).parent / "artifacts" / "heads.npz"
DEFAULT_LAYERS = Path(__file__).parent / "artifacts" / "encoder-top.safetensors"
DEFAULT_CACHE = Path(".cache/embeddings.npz")
