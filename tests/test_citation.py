"""How the book is cited and what it cites: CITATION.cff valid against the CFF 1.2.0 schema, references.bib with the
paper first, every entry cited in a chapter and every citation found in it, the References page last in the book."""
import json
import re
import tomllib
from pathlib import Path

import jsonschema
import nbformat
import pytest
import yaml

from clothparse_lib import book, paper

ROOT = book.ROOT
# The CFF 1.2.0 schema (https://citation-file-format.github.io/1.2.0/schema.json, CC-BY-4.0), as cffconvert 2.0.0 ships it
SCHEMA = Path(__file__).parent / "data" / "citation-cff-1.2.0.schema.json"
CITE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]+)`")
PAPER_DOI = "10.5220/0010177700150024"


def _bib_entries() -> dict[str, str]:
    """key -> the entry's text, in the file's order."""
    text = (ROOT / "references.bib").read_text()
    starts = list(re.finditer(r"^@(\w+)\{([^,\s]+),", text, re.M))
    return {m[2]: text[m.start(): starts[i + 1].start() if i + 1 < len(starts) else len(text)]
            for i, m in enumerate(starts)}


def _field(entry: str, name: str) -> str | None:
    found = re.search(rf"^\s*{name}\s*=\s*\{{(.*?)\}},?\s*$", entry, re.M | re.S)
    return found and " ".join(found[1].split())


def _cited(folder: Path) -> dict[str, set[str]]:
    """chapter -> the keys its markdown cites."""
    cited = {}
    for chapter in book.CHAPTERS:
        nb = nbformat.read(folder / f"{chapter}.ipynb", as_version=4)
        cited[chapter] = {k.strip() for c in nb.cells if c.cell_type == "markdown"
                          for keys in CITE.findall(c.source) for k in keys.split(",")}
    return cited


def test_citation_cff_is_valid_cff_1_2():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    cff = json.loads(json.dumps(cff, default=str))  # YAML dates as the strings the schema expects
    jsonschema.validate(cff, json.loads(SCHEMA.read_text()), cls=jsonschema.Draft7Validator,
                        format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    assert cff["cff-version"] == "1.2.0"
    assert cff["version"] == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert "repository-code" not in cff or "github.com/" in cff["repository-code"]  # never a made-up address
    method = cff["references"][0]
    assert method["doi"] == PAPER_DOI and method["title"] == "Clothing Parsing using Extended U-Net"


def test_schema_check_catches_an_invalid_file():
    schema = json.loads(SCHEMA.read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"cff-version": "1.2.0", "message": "m", "title": "t", "authors": [{"nickname": 3}]}, schema)


def test_the_paper_is_the_first_reference_with_its_doi():
    key, entry = next(iter(_bib_entries().items()))
    assert key == "vozarikova2021clothing"
    assert _field(entry, "doi") == PAPER_DOI and _field(entry, "year") == "2021"
    assert PAPER_DOI in paper.numbers()["source"]  # the paper's numbers keep their one source
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert [a["family-names"] for a in cff["references"][0]["authors"]] == ["Vozáriková", "Staňa", "Semanišin"]


def test_every_reference_is_cited_and_every_citation_is_a_reference():
    entries = _bib_entries()
    cited = _cited(ROOT / "book")
    every = set().union(*cited.values())
    assert every - set(entries) == set(), "cited but not in references.bib"
    assert set(entries) - every == set(), "in references.bib but cited by no chapter"
    assert all(cited.values()), f"chapters citing nothing: {[c for c, k in cited.items() if not k]}"
    assert _cited(ROOT / "tests" / "notebooks") == cited  # nbval's references carry the same markdown
    for key, entry in entries.items():
        assert _field(entry, "title") and (_field(entry, "author") or _field(entry, "key")), key


def test_references_page_ends_the_book():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    assert toc["chapters"][-1]["file"] == "book/references" and book.toc_pages() == ("try", "references")
    assert "references" not in book.CHAPTERS  # rendered, never executed
    assert "{bibliography}" in (ROOT / "book" / "references.md").read_text()
    assert yaml.safe_load((ROOT / "_config.yml").read_text())["bibtex_bibfiles"] == ["references.bib"]


def test_intro_ends_with_how_to_cite():
    for folder in (ROOT / "book", ROOT / "tests" / "notebooks"):
        last = nbformat.read(folder / "intro.ipynb", as_version=4).cells[-1]
        assert last.cell_type == "markdown" and last.source.startswith("## How to cite")
        assert "{cite}`vozarikova2021clothing`" in last.source and "CITATION.cff" in last.source
    readme = (ROOT / "README.md").read_text()
    assert "## How to cite" in readme and "CITATION.cff" in readme and PAPER_DOI in readme
