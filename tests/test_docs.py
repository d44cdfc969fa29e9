"""The documentation a newcomer reads stays short, connected and inside the repository:
README.md within 12,000 characters, every relative link of README.md and docs/*.md to a
file that exists, and no file of the project pointing outside the repository. And what
.ci/run relies on: the README's test command where it looks for it, and the bundled
scenario library checked with rolloutlab itself."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
CI_SCRIPT = REPO / ".ci" / "run"
DOCS = REPO / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
README_LIMIT = 12_000
TEST_COMMAND = "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/python -m pytest -q"
# Spelled in two parts so this file does not match itself.
OUTSIDE_REFERENCES = ("../" + "shared", "/work/" + "shared", "ARCHITECTURE" + ".md")
SKIPPED_FOLDERS = {".git", ".venv", "__pycache__", "out", "report", "out-live", "out-validate", "build", "dist",
                   ".hypothesis", ".pytest_cache"}
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".sh", ".txt", ".cfg", ".ini", ""}

FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def relative_links(text: str) -> list[str]:
    """Targets of the Markdown links of `text` that point into the repository (no URL, no
    bare #anchor), outside code blocks and inline code, without their #anchor."""
    prose = INLINE_CODE.sub("", FENCE.sub("", text))
    targets = []
    for target in LINK.findall(prose):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("#"):
            continue
        targets.append(target.split("#", 1)[0])
    return targets


def broken_links(page: Path, root: Path = REPO) -> list[str]:
    """The relative links of `page` whose file does not exist or lies outside `root`."""
    broken = []
    for target in relative_links(page.read_text()):
        resolved = (page.parent / target).resolve()
        if not resolved.is_relative_to(root.resolve()):
            broken.append(f"{target} (outside the repository)")
        elif not resolved.exists():
            broken.append(target)
    return broken


def project_files(root: Path = REPO) -> list[Path]:
    """The project's text files: tracked and new ones (git), else a walk of the tree."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
            cwd=root, capture_output=True, text=True, check=True,
        ).stdout.splitlines()
        paths = [root / name for name in listed]
    except (OSError, subprocess.CalledProcessError):
        paths = [p for p in root.rglob("*") if not SKIPPED_FOLDERS & set(p.relative_to(root).parts)]
    return sorted(p for p in paths if p.is_file() and p.suffix in TEXT_SUFFIXES and "fixtures" not in p.parts)


def test_there_are_pages_to_check():
    """README.md and the docs pages the README promises are all there."""
    assert {p.name for p in PAGES} >= {
        "README.md", "architecture.md", "strategies-and-judges.md", "scenarios-and-check.md",
        "simulator-and-results.md", "reports.md", "live.md", "validate.md", "development.md",
    }


def test_readme_is_at_most_12000_characters():
    """README.md holds what a newcomer needs first and links the rest: at most 12,000 characters."""
    size = len(README.read_text())
    assert size <= README_LIMIT, f"README.md has {size:,} characters; move detail to docs/"


def test_readme_keeps_the_test_command_where_ci_reads_it():
    """The line .ci/run runs is the README's first non-fence line after the test-command marker."""
    lines = README.read_text().splitlines()
    after = lines[lines.index("<!-- test-command -->") + 1 :]
    assert next(line for line in after if not line.startswith("```")) == TEST_COMMAND


def test_ci_checks_the_scenario_library_with_rolloutlab():
    """.ci/run parses, and runs the installed `rolloutlab check` over scenarios/library with a JUnit file and no --runs override."""
    subprocess.run(["bash", "-n", str(CI_SCRIPT)], check=True)
    commands = [line.strip() for line in CI_SCRIPT.read_text().splitlines()
                if line.strip().startswith(".venv/bin/rolloutlab check")]
    assert len(commands) == 1, commands
    assert commands[0].split()[:3] == [".venv/bin/rolloutlab", "check", "scenarios/library"]
    assert "--junit" in commands[0].split() and "--runs" not in commands[0]


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(REPO)) for p in PAGES])
def test_every_relative_link_points_to_a_file(page):
    """Each relative link of the page resolves to a file or folder inside the repository."""
    assert not broken_links(page), f"{page.relative_to(REPO)}: broken links {broken_links(page)}"


def test_every_docs_page_is_linked_from_the_readme():
    """No page of docs/ is an orphan: README.md links each one."""
    linked = {(README.parent / t).resolve() for t in relative_links(README.read_text())}
    orphans = [p.name for p in sorted(DOCS.glob("*.md")) if p.resolve() not in linked]
    assert not orphans, f"docs pages README.md does not link: {orphans}"


def test_nothing_refers_to_files_outside_the_repository():
    """No file of the project names a file outside the repository (the shared notes it was planned from)."""
    me = Path(__file__).resolve()
    hits = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in project_files()
        if path.resolve() != me
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if any(ref in line for ref in OUTSIDE_REFERENCES)
    ]
    assert not hits, "references outside the repository:\n" + "\n".join(hits)


@pytest.mark.parametrize(
    ("text", "broken"),
    [
        ("[a](docs/missing.md)", ["docs/missing.md"]),
        ("![plot](images/none.png)", ["images/none.png"]),
        ("[up](../../etc/passwd)", ["../../etc/passwd (outside the repository)"]),
        ("[ok](docs/real.md#a-section) [web](https://example.org) [anchor](#here)", []),
        ("```\n[in code](nowhere.md)\n```\nand `[inline](nowhere.md)`", []),
    ],
    ids=["missing file", "missing image", "outside the repository", "existing file, URL, anchor", "code is not a link"],
)
def test_the_link_check_catches_a_broken_link(tmp_path, text, broken):
    """The checker reports a link to a missing file or out of the repository, and only those."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "real.md").write_text("# real\n")
    page = tmp_path / "README.md"
    page.write_text(text)
    assert broken_links(page, root=tmp_path) == broken
