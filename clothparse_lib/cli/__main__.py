"""``python -m clothparse_lib.cli`` (as ``torchrun`` starts it)."""
import sys

from .main import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main())
