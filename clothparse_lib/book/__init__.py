"""The book: what a chapter calls (:mod:`.chapter`), the chapters (:mod:`.chapters`, :mod:`.notebooks`), the runner
that executes them into their run folder (:mod:`.runner`, recording :mod:`.records`), the book's trainings run
concurrently (:mod:`.parallel`), publishing a run into the book (:mod:`.publish`) and rendering (:mod:`.html`)."""
from .chapter import glue, setup_chapter, table_html
from .chapters import CHAPTERS, PUBLISHED_PROFILE, REFERENCES_PROFILE, ROOT, toc_pages
from .html import build_html
from .notebooks import code_hash, source_cells, tidy, unfinished
from .publish import publish
from .records import chapter_times, library_hash
from .runner import ChapterFailed, run_book, write_references

__all__ = ["glue", "setup_chapter", "table_html", "CHAPTERS", "PUBLISHED_PROFILE", "REFERENCES_PROFILE", "ROOT", "ChapterFailed",
           "build_html", "chapter_times", "code_hash", "library_hash", "publish", "run_book", "source_cells",
           "tidy", "toc_pages", "unfinished", "write_references"]
