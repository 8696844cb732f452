"""The ``clothparse`` command line: the parser (:mod:`.parser`), the checks that refuse a bad setting before any
heavy import (:mod:`.checks`), a handler module per command group (:mod:`.data`, :mod:`.train`, :mod:`.predict`,
:mod:`.refine`, :mod:`.book`) and :func:`main`, which runs a command and turns its errors and interruptions into one
line and an exit code (:mod:`.main`)."""
from .main import main
from .parser import build_parser
from .predict import PREDICT_OUTPUTS

__all__ = ["main", "build_parser", "PREDICT_OUTPUTS"]
