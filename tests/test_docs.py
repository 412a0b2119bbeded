"""The documentation: the README stays short, every relative link leads to a file in the
repository, and the MkDocs site builds without a warning."""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOC_PAGES = sorted((ROOT / "docs").rglob("*.md"))

# Inline links and images, `[text](target)` or `![alt](target "title")`; fenced code is
# stripped first, so shell lines and JSON in examples are not mistaken for links.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


def relative_links(markdown: str) -> list[str]:
    text = CODE_SPAN.sub("", FENCE.sub("", markdown))
    return [
        target
        for target in LINK.findall(text)
        if not EXTERNAL.match(target) and not target.startswith("#")
    ]


def test_the_readme_shows_the_three_line_python_example_first():
    """Its first example is the Python client, as a training script uses it."""
    language, *lines = README.read_text(encoding="utf-8").split("```")[1].strip().splitlines()
    assert language == "python" and len(lines) == 3
    assert lines[0] == "from pedigree_client import Client"
    assert lines[2].startswith("client.register(")


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) < 200, f"README.md has {len(lines)} lines; move detail into docs/"


def test_docs_pages_exist() -> None:
    assert (ROOT / "mkdocs.yml").is_file()
    assert ROOT / "docs" / "index.md" in DOC_PAGES


@pytest.mark.parametrize("page", [README, *DOC_PAGES], ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_lead_to_files_in_the_repository(page: Path) -> None:
    broken = []
    for target in relative_links(page.read_text(encoding="utf-8")):
        path = unquote(target.split("#", 1)[0])
        resolved = (page.parent / path).resolve()
        if target.startswith("/") or not resolved.is_relative_to(ROOT) or not resolved.exists():
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)} links to missing or outside files: {broken}"


def test_relative_link_finder() -> None:
    markdown = (
        'See [ops](operations.md#configuration), ![pic](shots/a.png "A"), '
        "[web](https://example.com), [top](#quick-start) and `[not](code.md)`.\n"
        "```console\n[also not](inside-a-fence.md)\n```\n"
    )
    assert relative_links(markdown) == ["operations.md#configuration", "shots/a.png"]


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None,
    reason="MkDocs Material is not installed (the docs extra)",
)
def test_mkdocs_site_builds_strictly(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        # Material's banner about MkDocs 2.0 is advice to maintainers, not a build warning.
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    assert (tmp_path / "index.html").is_file()
    assert (tmp_path / "architecture.svg").is_file()
