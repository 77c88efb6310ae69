"""The ``code_license`` step: find a file's license, classify it, and apply a license policy.

Evidence, strongest first: an ``SPDX-License-Identifier:`` tag (taken as written, with OR/AND/WITH);
otherwise the texts and standard headers of common licenses found in the first ``scan_chars``
characters (a LICENSE file, or a comment header such as "Licensed under the Apache License,
Version 2.0"). Classes: permissive, weak_copyleft, copyleft, unknown.
"""

from __future__ import annotations

import re
from typing import Any

from corpusforge.document import Document
from corpusforge.registry import register
from corpusforge.step import Filter

PERMISSIVE, WEAK, COPYLEFT, UNKNOWN = "permissive", "weak_copyleft", "copyleft", "unknown"
_RANK = {PERMISSIVE: 0, WEAK: 1, COPYLEFT: 2, UNKNOWN: 3}

_CLASSES = {
    PERMISSIVE: ("MIT", "MIT-0", "Apache-2.0", "Apache-1.1", "BSD-2-Clause", "BSD-3-Clause", "BSD-4-Clause", "0BSD",
                 "ISC", "Unlicense", "CC0-1.0", "CC-BY-3.0", "CC-BY-4.0", "Zlib", "BSL-1.0", "Python-2.0", "PSF-2.0",
                 "WTFPL", "X11", "PostgreSQL", "NCSA", "LicenseRef-BSD-style", "LicenseRef-MIT-style"),
    WEAK: ("LGPL-2.0", "LGPL-2.1", "LGPL-3.0", "MPL-1.1", "MPL-2.0", "EPL-1.0", "EPL-2.0", "CDDL-1.0", "CDDL-1.1"),
    COPYLEFT: ("GPL-1.0", "GPL-2.0", "GPL-3.0", "AGPL-1.0", "AGPL-3.0", "CC-BY-SA-3.0", "CC-BY-SA-4.0", "OSL-3.0",
               "EUPL-1.1", "EUPL-1.2", "SSPL-1.0"),
}
_CLASS_OF = {spdx.lower(): cls for cls, ids in _CLASSES.items() for spdx in ids}


def license_class(spdx: str) -> str:
    """Class of one SPDX id; ``-only``, ``-or-later`` and ``+`` suffixes do not change it."""
    base = re.sub(r"(?:-only|-or-later|\+)$", "", spdx.strip()).lower()
    return _CLASS_OF.get(base, UNKNOWN)


# Full texts and standard notices, matched on the lower-cased text with whitespace and comment
# markers collapsed. Order matters: more specific licenses first (AGPL/LGPL before GPL, BSD-3 before 2).
_TEXTS: tuple[tuple[str, re.Pattern[str]], ...] = tuple((spdx, re.compile(rx)) for spdx, rx in (
    ("AGPL-3.0", r"gnu affero general public license"),
    ("LGPL-2.1", r"gnu lesser general public license,? (?:as published .{0,60})?version 2\.1|lesser general public license version 2\.1"),
    ("LGPL-3.0", r"gnu lesser general public license(?:,? version 3| as published .{0,80}version 3)|lesser general public license version 3"),
    ("LGPL-2.0", r"gnu library general public license"),
    ("GPL-3.0", r"gnu general public license(?: as published by the free software foundation)?,? (?:either )?version 3"
                r"|gnu general public license version 3|^\s*gnu general public license\s+version 3"),
    ("GPL-2.0", r"gnu general public license(?: as published by the free software foundation)?,? (?:either )?version 2"
                r"|gnu general public license version 2|^\s*gnu general public license\s+version 2"),
    ("MPL-2.0", r"mozilla public license,? v(?:ersion|\.) ?2\.0"),
    ("EPL-2.0", r"eclipse public license(?: -)? v(?:ersion|\.)? ?2\.0"),
    ("Apache-2.0", r"apache license,? version 2\.0|licensed under the apache license"),
    ("BSD-3-Clause", r"redistribution and use in source and binary forms.{0,900}(?:neither the name|the names? of (?:its|the) contributors may not)"),
    ("BSD-2-Clause", r"redistribution and use in source and binary forms, with or without modification, are permitted"),
    ("LicenseRef-BSD-style", r"governed by a bsd-style license"),
    ("MIT", r"permission is hereby granted, free of charge, to any person obtaining a copy"
            r"|(?:distributed|licensed|released) under (?:the )?mit license|\bthe mit license \(mit\)"
            r"|licensed under the .{0,40}\bmit licen[cs]es?\b"),
    ("ISC", r"permission to use, copy, modify, and(?:/or)? distribute this software for any purpose with or without fee"),
    ("Unlicense", r"this is free and unencumbered software released into the public domain|\bthe unlicense\b"),
    ("CC0-1.0", r"\bcc0 1\.0 universal|creative commons zero"),
    ("CC-BY-SA-4.0", r"creative commons attribution-sharealike 4\.0"),
    ("CC-BY-SA-3.0", r"creative commons attribution-sharealike 3\.0"),
    ("CC-BY-NC-4.0", r"creative commons attribution-noncommercial"),
    ("CC-BY-4.0", r"creative commons attribution 4\.0"),
    ("CC-BY-3.0", r"creative commons attribution 3\.0"),
    ("BSL-1.0", r"boost software license,? version 1\.0"),
    ("Zlib", r"this software is provided 'as-is', without any express or implied warranty.{0,400}altered source versions must be plainly marked"),
    ("WTFPL", r"do what the fuck you want to public license"),
))
_SPDX_TAG = re.compile(r"SPDX-License-Identifier:\s*([^\n]*?)\s*(?:\*/|-->|#\}|$)", re.MULTILINE)
_COMMENT = re.compile(r"(?m)^\s*(?://+|#+|\*+|/\*+|--|;+|%+|!)\s?")
_SPACE = re.compile(r"\s+")
_DUAL = re.compile(r"dual[- ]licensed|at your option|either (?:of )?(?:the )?(?:license|terms)|under the terms of either")
_EXPR_TOKEN = re.compile(r"\(|\)|[A-Za-z0-9.+:-]+")


def parse_spdx(expr: str) -> tuple[str, list[str]]:
    """(``"OR"`` or ``"AND"``, license ids) of an SPDX expression; ``WITH`` exceptions are dropped.

    Nested parentheses are flattened: the expression is OR if an OR joins terms at its outermost level.
    """
    tokens = _EXPR_TOKEN.findall(expr)
    ids, ops, depth, skip = [], [], 0, False
    for t in tokens:
        if t == "(":
            depth += 1
        elif t == ")":
            depth -= 1
        elif t.upper() in ("OR", "AND"):
            ops.append((depth, t.upper()))
        elif t.upper() == "WITH":
            skip = True
        elif skip:
            skip = False
        else:
            ids.append(t)
    top = min((d for d, _ in ops), default=0)
    return ("OR" if (top, "OR") in ops else "AND"), ids


def detect_license(text: str, scan_chars: int = 12_000) -> dict[str, Any] | None:
    """``{"spdx", "licenses", "op", "class", "evidence"}`` for ``text``, or None when nothing is found."""
    head = text[:scan_chars]
    if "SPDX-License-Identifier" in head:
        m = _SPDX_TAG.search(head)
        if m and m.group(1):
            op, ids = parse_spdx(m.group(1))
            if ids:
                return _result(ids, op, "spdx_tag")
    low = _SPACE.sub(" ", _COMMENT.sub(" ", head.lower()))
    found = [spdx for spdx, rx in _TEXTS if rx.search(low)]
    if "BSD-3-Clause" in found and "BSD-2-Clause" in found:
        found.remove("BSD-2-Clause")
    if not found:
        return None
    op = "OR" if len(found) > 1 and _DUAL.search(low) else "AND"
    return _result(found, op, "license_text")


def _result(ids: list[str], op: str, evidence: str) -> dict[str, Any]:
    classes = [license_class(i) for i in ids]
    pick = min if op == "OR" else max  # OR: the user may choose the freest; AND: all terms apply
    cls = pick(classes, key=_RANK.__getitem__)
    return {"spdx": f" {op} ".join(ids), "licenses": ids, "op": op, "class": cls, "evidence": evidence}


@register("code_license")
class CodeLicense(Filter):
    """Detect and classify each document's license into ``doc.metadata[metadata_key]``, then decide.

    Drops ``copyleft`` documents unless ``allow_copyleft`` (and ``weak_copyleft`` unless
    ``allow_weak_copyleft``); with ``allowed`` (SPDX ids), drops documents whose license is not
    among them (for OR expressions one allowed alternative is enough); ``drop_unknown`` drops
    documents whose license is found but unclassified, ``drop_undetected`` those with none found.
    ``fallback_field`` names a metadata field holding a repository-level SPDX expression that is
    used when the file itself carries no license evidence.
    """

    def __init__(
        self,
        allow_copyleft: bool = True,
        allow_weak_copyleft: bool = True,
        allowed: list[str] | None = None,
        drop_unknown: bool = False,
        drop_undetected: bool = False,
        fallback_field: str | None = None,
        metadata_key: str = "license_detected",
        scan_chars: int = 12_000,
    ):
        if scan_chars < 100:
            raise ValueError("scan_chars must be at least 100")
        self.allow_copyleft, self.allow_weak_copyleft = allow_copyleft, allow_weak_copyleft
        self.allowed = {a.lower() for a in allowed} if allowed is not None else None
        self.drop_unknown, self.drop_undetected = drop_unknown, drop_undetected
        self.fallback_field, self.metadata_key, self.scan_chars = fallback_field, metadata_key, scan_chars

    def keep(self, doc: Document) -> str | None:
        found = detect_license(doc.text, self.scan_chars)
        if found is None and self.fallback_field and isinstance(doc.metadata.get(self.fallback_field), str):
            op, ids = parse_spdx(doc.metadata[self.fallback_field])
            if ids:
                found = _result(ids, op, "metadata:" + self.fallback_field)
        if found is None:
            doc.metadata[self.metadata_key] = {"spdx": None, "class": UNKNOWN, "evidence": None}
            return "license:undetected" if self.drop_undetected else None
        doc.metadata[self.metadata_key] = found
        cls = found["class"]
        if cls == COPYLEFT and not self.allow_copyleft:
            return "license:copyleft"
        if cls == WEAK and not self.allow_weak_copyleft:
            return "license:weak_copyleft"
        if cls == UNKNOWN and self.drop_unknown:
            return "license:unknown"
        if self.allowed is not None:
            ok = [i.lower() in self.allowed for i in found["licenses"]]
            if not (any(ok) if found["op"] == "OR" else all(ok)):
                return "license:not_allowed"
        return None
