"""Lightweight markup to readable plain text: Markdown, reStructuredText, XML.

Headings are kept as their own lines (without ``#`` or underlines), link and emphasis syntax
is removed, code blocks keep their content. Pure regular expressions: no dependency.
"""

from __future__ import annotations

import re

from corpusforge.extract.base import Extracted, ExtractionError

_MD_RULES = [
    (re.compile(r"^[ \t]{0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$", re.M), r"\2"),  # ATX headings
    (re.compile(r"^[ \t]{0,3}(?:[-*_][ \t]*){3,}$", re.M), ""),  # horizontal rules
    (re.compile(r"^(?:=+|-+)[ \t]*$", re.M), ""),  # setext heading underlines
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # images -> alt text
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # inline links
    (re.compile(r"\[([^\]]+)\]\[[^\]]*\]"), r"\1"),  # reference links
    (re.compile(r"^[ \t]{0,3}\[[^\]]+\]:[ \t]+\S+.*$", re.M), ""),  # link definitions
    (re.compile(r"<(https?://[^>]+)>"), r"\1"),  # autolinks
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),  # bold
    (re.compile(r"(?<![\w*])([*_])(?=\S)(.+?)(?<=\S)\1(?![\w*])"), r"\2"),  # italics
    (re.compile(r"~~(.+?)~~"), r"\1"),
    (re.compile(r"`([^`\n]+)`"), r"\1"),  # inline code
    (re.compile(r"^[ \t]{0,3}>[ \t]?", re.M), ""),  # block quotes
    (re.compile(r"^([ \t]*)(?:[-*+]|\d+[.)])[ \t]+\[[ xX]\][ \t]+", re.M), r"\1"),  # task list boxes
    (re.compile(r"^[ \t]*\|?[ \t]*:?-{3,}:?[ \t]*(?:\|[ \t]*:?-{3,}:?[ \t]*)*\|?[ \t]*$", re.M), ""),  # table rules
    (re.compile(r"<!--.*?-->", re.S), ""),
    (re.compile(r"</?[A-Za-z][^>\n]*>"), ""),  # inline HTML tags
]
_FENCE = re.compile(r"^[ \t]{0,3}(```|~~~)[^\n]*\n(.*?)^[ \t]{0,3}\1[ \t]*$", re.M | re.S)
_FRONT_MATTER = re.compile(r"\A---\n.*?\n---\n", re.S)


def _squeeze(text: str) -> str:
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def markdown_to_text(md: str) -> str:
    md = _FRONT_MATTER.sub("", md.replace("\r\n", "\n"))
    blocks: list[str] = []

    def stash(m: re.Match[str]) -> str:
        blocks.append(m.group(2).rstrip("\n"))
        return f"\x00{len(blocks) - 1}\x00"

    md = _FENCE.sub(stash, md)
    for pattern, repl in _MD_RULES:
        md = pattern.sub(repl, md)
    md = re.sub(r"^[ \t]*\|(.*)\|[ \t]*$", lambda m: "\t".join(c.strip() for c in m.group(1).split("|")), md, flags=re.M)
    md = re.sub(r"\x00(\d+)\x00", lambda m: blocks[int(m.group(1))], md)
    return _squeeze(md)


_RST_ADORN = re.compile(r"^([=\-`:'\"~^_*+#<>.])\1{2,}[ \t]*$", re.M)
_RST_RULES = [
    (re.compile(r"^\.\. (?:_[^:]+|\|[^|]+\|)?:.*$", re.M), ""),  # targets, substitution defs
    (re.compile(r"^\.\. [a-zA-Z-]+::.*$", re.M), ""),  # directive lines (content is kept)
    (re.compile(r"^\.\.(?: .*)?$", re.M), ""),  # comments
    (re.compile(r"^[ \t]+:[a-zA-Z-]+:.*$", re.M), ""),  # directive options
    (re.compile(r":[a-zA-Z:]+:`([^`<]+?)\s*(?:<[^>]*>)?`"), r"\1"),  # roles
    (re.compile(r"`([^`<]+?)\s*<[^>]+>`__?"), r"\1"),  # hyperlinks
    (re.compile(r"``([^`]+)``"), r"\1"),
    (re.compile(r"`([^`]+)`_{0,2}"), r"\1"),
    (re.compile(r"\*\*(.+?)\*\*"), r"\1"),
    (re.compile(r"(?<!\w)\*(\S.*?)\*(?!\w)"), r"\1"),
    (re.compile(r"::[ \t]*$", re.M), ":"),
]


def rst_to_text(rst: str) -> str:
    rst = _RST_ADORN.sub("", rst.replace("\r\n", "\n"))
    for pattern, repl in _RST_RULES:
        rst = pattern.sub(repl, rst)
    return _squeeze(rst)


def xml_to_text(raw: bytes) -> str:
    """Text content of every element, one element's direct text per line."""
    from lxml import etree

    parser = etree.XMLParser(recover=True, resolve_entities=False, no_network=True, huge_tree=True)
    try:
        root = etree.fromstring(raw, parser)
    except etree.XMLSyntaxError as exc:
        raise ExtractionError(f"unreadable XML ({exc})") from None
    if root is None:
        raise ExtractionError("unreadable XML (no root element)")
    lines = []
    for node in root.iter():
        if not isinstance(node.tag, str):  # comments, processing instructions
            continue
        for piece in (node.text, node.tail if node is not root else None):
            if piece and piece.strip():
                lines.append(" ".join(piece.split()))
    return "\n".join(lines)


def extract_markup(text: str, family: str) -> Extracted:
    out = markdown_to_text(text) if family == "markdown" else rst_to_text(text)
    if not out.strip():
        raise ExtractionError(f"{family} file has no text")
    return Extracted(out, {"format": family})
