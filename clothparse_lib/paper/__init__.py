"""The paper's numbers: the project's one file of them (``paper_numbers.json``, transcribed from its tables)."""
from __future__ import annotations

import json
from functools import lru_cache
from importlib.resources import files

__all__ = ["numbers"]


@lru_cache(maxsize=1)
def numbers() -> dict:
    """Tables 1-5 and the data set / training facts of the paper, as transcribed."""
    return json.loads(files(__package__).joinpath("paper_numbers.json").read_text())
