"""The book: what a chapter calls (:mod:`.chapter`), the runner that executes the chapters (:mod:`.runner`) and
the book's trainings run concurrently (:mod:`.parallel`)."""
from .chapter import glue, setup_chapter, table_html
from .runner import (CHAPTERS, PUBLISHED_PROFILE, ROOT, ChapterFailed, build_html, chapter_times, code_hash,
                     copy_chapters, library_hash, run_book, source_cells, tidy, toc_pages, unfinished, write_references)

__all__ = ["glue", "setup_chapter", "table_html", "CHAPTERS", "PUBLISHED_PROFILE", "ROOT", "ChapterFailed",
           "build_html", "chapter_times", "code_hash", "copy_chapters", "library_hash", "run_book", "source_cells",
           "tidy", "toc_pages", "unfinished", "write_references"]
