"""What a chapter calls: its set-up (display settings and the run), and glue for numbers in the prose."""
from __future__ import annotations

import re

import pandas as pd

__all__ = ["MISSING_CELL", "table_html", "glue", "setup_chapter"]


# A table cell pandas renders for a missing value (NaN, None, pd.NA, NaT).
MISSING_CELL = re.compile(r"<td>(?:NaN|NaT|None|&lt;NA&gt;)</td>")


def table_html(table: pd.DataFrame) -> str | None:
    """pandas' own HTML of ``table`` with a dash where a number is missing (e.g. a row the paper does not have):
    how the chapters display DataFrames (registered by :func:`book.setup_chapter`); the values stay numbers."""
    html = table._repr_html_()
    return html and MISSING_CELL.sub("<td>–</td>", html)


def glue(name: str, value) -> None:
    """myst-nb's ``glue`` (not displayed) of a number or text, numpy scalars made plain for its formatting."""
    from myst_nb import glue as myst_glue

    myst_glue(name, value.item() if hasattr(value, "item") else value, display=False)


def setup_chapter(profile: str, run_dir: str = "", data_dir: str = "", device: str | None = None):
    """A chapter's first call: display settings (a dash for missing numbers in tables), and the run of ``profile``
    (:class:`results.run.Run`).

    Empty ``run_dir``/``data_dir`` mean the settings' defaults (``$CLOTHPARSE_RUNS_DIR/<profile>``,
    ``$CLOTHPARSE_DATA_DIR``)."""
    import matplotlib
    import pandas as pd
    from IPython import get_ipython

    from ..results.run import Run

    pd.set_option("display.float_format", "{:.2f}".format)
    pd.set_option("display.max_colwidth", 120)
    matplotlib.rcParams.update({"figure.dpi": 90, "savefig.dpi": 90})
    shell = get_ipython()
    if shell is not None:  # tables in HTML (the rendered book) show a dash for a missing number; text stays pandas'
        shell.display_formatter.formatters["text/html"].for_type(pd.DataFrame, table_html)
    return Run.open(profile, run_dir or None, data_dir or None, device=device or None, progress=False)
