"""cocktail: split a recording of a busy scene into five stems."""

__version__ = "0.1.0"

from .classes import CLASSES  # noqa: E402

__all__ = ["CLASSES", "__version__"]
