"""clothparse: the reproducible companion of 'Clothing Parsing using Extended U-Net' (VISAPP 2021)."""
import warnings

__version__ = "0.1.0"
__all__ = ["__version__"]

# Deprecation notices that the pinned fastai/timm print on import: noise in every chapter, nothing to act on here.
warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)
warnings.filterwarnings("ignore", message=r"The 'mode\.chained_assignment' option is deprecated")
