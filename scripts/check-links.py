#!/usr/bin/env python3
"""Checks the links of the docs, without the network.

In the markdown (the README and every other top-level .md, the crates'
READMEs and the guide under docs/src) every relative link and image must
name a file or folder that exists, and a `#fragment` a heading (or an `id`)
of its target; a link to this repository on GitHub
(https://github.com/ibiki-rs/ibiki/blob/main/PATH) must name a PATH that
exists. In the built guide (target/book, or the folder given) every relative
`href` and `src` must name a file that exists, and a `#fragment` an `id` in
it. Other absolute URLs are not checked.

    python3 scripts/check-links.py [BOOK_HTML_DIR]

Exits 1, listing each broken link with its file and line, when any is.
"""

import html.parser
import re
import sys
import unicodedata
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
REPOSITORY = "https://github.com/ibiki-rs/ibiki"
SKIP_DIRS = {"target", "fuzz", ".git", "node_modules", "corpus"}

LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_ATTR = re.compile(r"""\b(?:href|src)\s*=\s*["']([^"']+)["']""")
HTML_ID = re.compile(r"""\bid\s*=\s*["']([^"']+)["']""")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def markdown_files():
    files = sorted(ROOT.glob("*.md"))
    for crate in sorted(ROOT.iterdir()):
        if crate.is_dir() and crate.name not in SKIP_DIRS and (crate / "README.md").is_file():
            files.append(crate / "README.md")
    files.extend(sorted((ROOT / "docs" / "src").rglob("*.md")))
    return files


def prose_lines(text):
    """(line number, line) outside fenced code blocks, inline code removed."""
    fence = None
    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.lstrip()
        match = re.match(r"(```+|~~~+)", stripped)
        if match:
            if fence is None:
                fence = match.group(1)
            elif stripped.startswith(fence):
                fence = None
            continue
        if fence is None:
            yield number, re.sub(r"(`+)(?:(?!\1).)+?\1", "", line)


def slug(heading):
    """GitHub's anchor for a heading (mdBook's agrees for ours)."""
    text = re.sub(r"<[^>]+>", "", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = text.lower()
    kept = []
    for ch in text:
        category = unicodedata.category(ch)
        if ch in " -_" or category[0] in "LN":
            kept.append(ch)
    return "".join(kept).replace(" ", "-")


_anchor_cache = {}


def markdown_anchors(path):
    if path not in _anchor_cache:
        text = path.read_text(encoding="utf-8")
        anchors, seen = set(), {}
        fence = None
        for line in text.split("\n"):
            stripped = line.lstrip()
            match = re.match(r"(```+|~~~+)", stripped)
            if match:
                fence = match.group(1) if fence is None else (None if stripped.startswith(fence) else fence)
                continue
            if fence is not None:
                continue
            heading = HEADING.match(line)
            if heading:
                base = slug(heading.group(2))
                n = seen.get(base, 0)
                seen[base] = n + 1
                anchors.add(base if n == 0 else f"{base}-{n}")
            anchors.update(HTML_ID.findall(line))
        _anchor_cache[path] = anchors
    return _anchor_cache[path]


def check_target(path, fragment, where, problems, kind):
    if not path.exists():
        problems.append(f"{where}: {kind} {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} does not exist")
        return
    if fragment and path.is_file():
        if path.suffix == ".md":
            anchors = markdown_anchors(path)
        elif path.suffix == ".html":
            anchors = html_ids(path)
        else:
            return
        if fragment not in anchors:
            problems.append(f"{where}: no #{fragment} in {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def check_markdown(problems):
    count = 0
    for path in markdown_files():
        text = path.read_text(encoding="utf-8")
        for number, line in prose_lines(text):
            targets = LINK.findall(line) + HTML_ATTR.findall(line)
            for target in targets:
                count += 1
                where = f"{path.relative_to(ROOT)}:{number}"
                check_markdown_link(path, target, where, problems)
    return count


def check_markdown_link(path, target, where, problems):
    parts = urlsplit(target)
    if target.startswith(REPOSITORY + "/blob/") or target.startswith(REPOSITORY + "/tree/"):
        rest = target[len(REPOSITORY) + 1:].split("/", 2)
        if len(rest) < 3:
            problems.append(f"{where}: {target} names no path")
            return
        file_part, _, fragment = rest[2].partition("#")
        check_target(ROOT / unquote(file_part), fragment, where, problems, "repository file")
        return
    if parts.scheme or target.startswith("//"):
        return
    if not parts.path:
        check_target(path, unquote(parts.fragment), where, problems, "file")
        return
    check_target((path.parent / unquote(parts.path)).resolve(), unquote(parts.fragment), where, problems, "link target")


class _Collector(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids = set()
        self.links = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value is None:
                continue
            if name in ("id", "name"):
                self.ids.add(value)
            elif name in ("href", "src"):
                self.links.append((self.getpos()[0], value))


_html_cache = {}


def parse_html(path):
    if path not in _html_cache:
        collector = _Collector()
        collector.feed(path.read_text(encoding="utf-8"))
        _html_cache[path] = collector
    return _html_cache[path]


def html_ids(path):
    return parse_html(path).ids


def check_html(book, problems):
    count = 0
    for path in sorted(book.rglob("*.html")):
        for number, target in parse_html(path).links:
            parts = urlsplit(target)
            if parts.scheme or target.startswith("//") or target in ("#", ""):
                continue
            count += 1
            where = f"{path.relative_to(book)}:{number}"
            file = path if not parts.path else (path.parent / unquote(parts.path)).resolve()
            if not file.exists():
                problems.append(f"{where}: {target} does not exist in the built guide")
                continue
            if parts.fragment and file.suffix == ".html" and unquote(parts.fragment) not in html_ids(file):
                problems.append(f"{where}: no #{parts.fragment} in {file.relative_to(book)}")
    return count


def main():
    book = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "target" / "book"
    problems = []
    checked = check_markdown(problems)
    if not (book / "index.html").is_file():
        problems.append(f"{book}: no built guide (run `mdbook build docs` first)")
    else:
        checked += check_html(book, problems)
    if problems:
        print(f"check-links: {len(problems)} broken link(s):", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        sys.exit(1)
    print(f"check-links: {checked} links checked, none broken")


if __name__ == "__main__":
    main()
