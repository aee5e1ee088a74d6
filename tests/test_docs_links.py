"""Every pointer to a repo file resolves, and nothing cites a document the repository does not have.

Scanned: README.md, the code and configs under golf/, tests/, benchmarks/, .ci/, and the Markdown of
experiments/ and docs/. A reference is
- a Markdown link in a .md file, `[text](path#anchor)`, relative to that file (`#anchor` alone: the file
  itself); web links are not followed;
- a repo path anywhere (code comments, docstrings, configs, prose), backticked or bare, whose first part
  is a top-level entry of the repo: `docs/rules.md#bpb-accounting`, `golf/eval/bpb.py`,
  `tests/test_bpb.py::test_name`, `golf/conf/arch/`. A file path has a suffix and a folder a trailing
  slash; a `#anchor` (Markdown targets) or a `::name` may follow.
An anchor must be the GitHub slug of a heading of the target page; a `::name` must be defined in the file.
Citations of documents the repository never had are refused: the workspace's shared notes, "DESIGN",
and a techniques.md / rules.md that is neither `docs/...` nor a Markdown link (docs/ pages link to each
other by relative links, checked like any other).
"""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCANNED = ("README.md", "golf", "tests", "benchmarks", "experiments", "docs", ".ci")
SUFFIXES = (".py", ".md", ".yaml", ".toml", "")  # "" for .ci/run
# Where repo paths start. conf/ moved to golf/conf/: a path still starting with conf/ is a stale pointer.
ROOT_DIRS = ("golf", "tests", "benchmarks", "experiments", "docs", ".ci", "conf")
ROOT_FILES = ("README.md", "pyproject.toml")

MD_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
_DIRS, _FILES = ("|".join(map(re.escape, names)) for names in (ROOT_DIRS, ROOT_FILES))
REPO_PATH = re.compile(rf"(?<![\w./-])((?:{_DIRS})/[\w./-]*(?:#[\w-]+|::\w+)?|(?:{_FILES})(?:#[\w-]+)?)(?![\w-])")
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
FORBIDDEN = (  # (pattern, what it cites, whether a checked Markdown link may contain it)
    (re.compile(r"\.\./shared|shared/docs"), "the workspace's shared notes", False),
    (re.compile(r"\bDESIGN\b"), "a design document", False),
    (re.compile(r"(?<!docs/)\b(?:techniques|rules)\.md"), "a techniques.md / rules.md outside docs/", True),
)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation removed, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.replace("`", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of a Markdown page's headings (outside code fences); repeated headings get -1, -2, ..."""
    seen: dict[str, int] = {}
    fenced = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        m = None if fenced else HEADING.match(line)
        if m:
            base = slug(m.group(2))
            seen[base] = seen.get(base, -1) + 1
            if seen[base]:
                seen[f"{base}-{seen[base]}"] = 0
    return set(seen)


def references(path: Path, repo: Path) -> list[tuple[int, str, Path]]:
    """(line, reference as written, where it points) for every reference in one file."""
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        spans = []
        if path.suffix == ".md":
            for m in MD_LINK.finditer(line):
                target = m.group(1)
                spans.append(m.span())
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                    continue
                file_part = target.split("#")[0]
                found.append((number, target, (path.parent / file_part).resolve() if file_part else path))
        for m in REPO_PATH.finditer(line):
            if any(a <= m.start() < b for a, b in spans):
                continue  # inside a Markdown link, already taken
            written = m.group(1).rstrip(".")
            file_part = re.split(r"#|::", written)[0]
            # A file has a suffix, a folder a trailing slash; anything else is prose ("golf/plain") or a
            # placeholder cut short (`benchmarks/results/<name>.md`, f"...{name}.json").
            if file_part.endswith("/") or Path(file_part).suffix:
                found.append((number, written, repo / file_part))
    return found


def problem(written: str, target: Path) -> str | None:
    """Why a reference does not resolve, or None."""
    if not target.exists():
        return "no such file"
    anchor = written.split("#", 1)[1] if "#" in written else None
    if anchor is not None and target.suffix == ".md" and anchor not in anchors(target):
        return f"no heading with anchor #{anchor} in {target.name}"
    name = re.search(r"::(\w+)", written)
    if name and target.is_file() and not re.search(rf"^\s*(?:async\s+)?(?:def|class)\s+{name.group(1)}\b",
                                                  target.read_text(encoding="utf-8"), re.M):
        return f"{name.group(1)} is not defined in {target.name}"
    return None


def scanned_files(repo: Path) -> list[Path]:
    files = []
    for entry in SCANNED:
        root = repo / entry
        candidates = [root] if root.is_file() else sorted(root.rglob("*")) if root.is_dir() else []
        files += [p for p in candidates if p.is_file() and p.suffix in SUFFIXES and "__pycache__" not in p.parts]
    return files


def broken_references(repo: Path, files: list[Path]) -> list[str]:
    out = []
    for path in files:
        for number, written, target in references(path, repo):
            why = problem(written, target)
            if why:
                out.append(f"{path.relative_to(repo)}:{number}: {written}: {why}")
    return out


def outside_citations(repo: Path, files: list[Path]) -> list[str]:
    out = []
    for path in files:
        rel = path.relative_to(repo)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            unlinked = MD_LINK.sub("", line) if path.suffix == ".md" else line
            for pattern, what, in_links in FORBIDDEN:
                if pattern.search(unlinked if in_links else line):
                    out.append(f"{rel}:{number}: cites {what}: {line.strip()}")
    return out


def _repo_files() -> list[Path]:
    this = Path(__file__).resolve()
    return [p for p in scanned_files(REPO) if p.resolve() != this]  # this file spells out what it looks for


def test_every_reference_to_a_repo_file_resolves():
    assert broken_references(REPO, _repo_files()) == []


def test_nothing_cites_a_document_outside_the_repository():
    assert outside_citations(REPO, _repo_files()) == []


def test_the_checker_reports_exactly_the_broken_references(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "golf").mkdir()
    (tmp_path / "docs" / "rules.md").write_text(
        "# Rules\n\n## BPB accounting\n\n```\n# not a heading\n```\n\n## BPB accounting\n\n"
        "See [the other page](missing.md), [this one](#bpb-accounting-1), [gone](#not-a-heading),\n"
        "[code](../golf/x.py), [web](https://example.com/a.md) and `golf/x.py::scored`.\n"
        "Linked: [rules.md](rules.md#bpb-accounting); bare: techniques.md 5.4\n", encoding="utf-8")
    (tmp_path / "golf" / "x.py").write_text(
        '"""Byte accounting (docs/rules.md#bpb-accounting); windows: docs/rules.md#sliding-windows."""\n'
        "# golf/nothing.py and `golf/x.py::scored_once` and golf/x.py:3\n"
        "# see techniques.md 5.4, ../shared/docs/rules.md and DESIGN §5; docs/rules.md is fine\n"
        "def scored():\n    pass\n", encoding="utf-8")
    files = scanned_files(tmp_path)
    assert broken_references(tmp_path, files) == [
        "golf/x.py:1: docs/rules.md#sliding-windows: no heading with anchor #sliding-windows in rules.md",
        "golf/x.py:2: golf/nothing.py: no such file",
        "golf/x.py:2: golf/x.py::scored_once: scored_once is not defined in x.py",
        "docs/rules.md:11: missing.md: no such file",
        "docs/rules.md:11: #not-a-heading: no heading with anchor #not-a-heading in rules.md",
    ]
    assert [line.split(": ", 2)[:2] for line in outside_citations(tmp_path, files)] == [
        ["golf/x.py:3", "cites the workspace's shared notes"], ["golf/x.py:3", "cites a design document"],
        ["golf/x.py:3", "cites a techniques.md / rules.md outside docs/"],
        ["docs/rules.md:13", "cites a techniques.md / rules.md outside docs/"]]
