"""What a reader of the rendered book sees: legible confusion heatmaps, a dash for a missing number."""
import matplotlib
import numpy as np
import pandas as pd
import pytest

from clothparse_lib import book, paper
from clothparse_lib.results import viz

matplotlib.use("Agg")


def test_confusion_heatmaps_one_per_row_small_numbers_left_out():
    m = np.array(paper.numbers()["table3_confusion_percent"]["row_normalized_gt_rows_pred_columns"])
    ours = m.copy()
    ours[3] = np.nan  # a class absent from the test part
    fig = viz.confusion_heatmaps(ours, m, "rows normalised")
    top, bottom = fig.axes
    assert top.get_position().y0 > bottom.get_position().y1  # stacked: each gets the page's width
    assert fig.get_size_inches()[0] >= 8
    numbers = {ax: [t.get_text() for t in ax.texts if t.get_text()] for ax in (top, bottom)}
    assert "24.7" in numbers[bottom] and "0.3" not in numbers[bottom]  # skirt -> dress kept, bg -> top (0.30 %) not
    n_shown = ((m >= 1) | np.eye(9, dtype=bool)).sum()
    assert len(numbers[bottom]) == n_shown
    assert len(numbers[top]) == n_shown - ((m[3] >= 1) | (np.arange(9) == 3)).sum()  # the missing row stays blank


@pytest.fixture
def shell():
    from IPython.core.interactiveshell import InteractiveShell
    yield InteractiveShell.instance()
    InteractiveShell.clear_instance()


def test_chapters_show_a_dash_for_missing_numbers(shell, tmp_path):
    with pd.option_context("display.float_format", None, "display.max_colwidth", 50), matplotlib.rc_context():
        book.setup_chapter("smoke", str(tmp_path))
        table = pd.DataFrame({"run": [60.0, 55.5], "paper": [61.0, np.nan], "n": pd.array([3, None], dtype="Int64")},
                             index=["Our model", "smp Unet"])
        data, _ = shell.display_formatter.format(table)
        assert book.table_html(table) == data["text/html"]
    html = data["text/html"]
    assert html.count("<td>–</td>") == 2 and "NaN" not in html and "&lt;NA&gt;" not in html
    assert "<td>61.00</td>" in html  # the chapters' number format still applies
    assert "NaN" in data["text/plain"]  # plain text (nbval's other comparison) stays pandas' own
    assert table["paper"].dtype == float and np.isnan(table.loc["smp Unet", "paper"])
