"""The code_license step: detection on real repositories' files, classes, and the policy."""

import json
from pathlib import Path

import pytest

from corpusforge.document import Document
from corpusforge.privacy.code_license import CodeLicense, detect_license, license_class, parse_spdx

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def records() -> list[dict]:
    with open(DATA / "code" / "code.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def test_license_files_of_real_repositories_match_their_declared_license():
    found = {(r["repo"], r["path"]): detect_license(r["text"])["spdx"] for r in records() if r["language"] == "license"}
    assert found == {
        ("google/brotli", "LICENSE"): "MIT",
        ("BurntSushi/ripgrep", "COPYING"): "MIT OR Unlicense",
        ("BurntSushi/ripgrep", "LICENSE-MIT"): "MIT",
        ("BurntSushi/ripgrep", "UNLICENSE"): "Unlicense",
        ("pallets/click", "LICENSE.txt"): "BSD-3-Clause",
    }


def test_source_headers_agree_with_the_repository_license():
    # brotli's sources say "Distributed under MIT license"; one fuzzer carries Chromium's BSD header.
    detected = [(r["license"], detect_license(r["text"])) for r in records() if r["language"] != "license"]
    hits = [(declared, d["spdx"]) for declared, d in detected if d is not None]
    assert len(hits) == 169
    assert sorted(set(hits)) == [("MIT", "LicenseRef-BSD-style"), ("MIT", "MIT")]
    assert all(license_class(s) == "permissive" for _, s in hits)


@pytest.mark.parametrize("header, spdx, cls", [
    ("// SPDX-License-Identifier: GPL-2.0-or-later WITH Linux-syscall-note\n", "GPL-2.0-or-later", "copyleft"),
    ("# SPDX-License-Identifier: (MIT OR Apache-2.0)\n", "MIT OR Apache-2.0", "permissive"),
    ("/* SPDX-License-Identifier: MPL-2.0 */\n", "MPL-2.0", "weak_copyleft"),
    ("# Licensed under the Apache License, Version 2.0 (the \"License\");\n", "Apache-2.0", "permissive"),
    (" * it under the terms of the GNU General Public License as published by\n"
     " * the Free Software Foundation, either version 3 of the License, or\n", "GPL-3.0", "copyleft"),
    ("modify it under the terms of the GNU Lesser General Public\n"
     "License as published by the Free Software Foundation; either\nversion 2.1 of the License", "LGPL-2.1",
     "weak_copyleft"),
    ("the GNU Affero General Public License as published by", "AGPL-3.0", "copyleft"),
    ("This work is licensed under a Creative Commons Attribution-ShareAlike 4.0 International License.",
     "CC-BY-SA-4.0", "copyleft"),
    ("Permission to use, copy, modify, and/or distribute this software for any purpose with or without fee "
     "is hereby granted", "ISC", "permissive"),
    ("SPDX-License-Identifier: LicenseRef-Proprietary", "LicenseRef-Proprietary", "unknown"),
])
def test_header_is_identified_and_classified(header, spdx, cls):
    d = detect_license(header)
    assert (d["spdx"], d["class"]) == (spdx, cls)


def test_spdx_or_takes_the_freest_and_and_the_strictest():
    assert parse_spdx("MIT AND (GPL-2.0 OR BSD-3-Clause)") == ("AND", ["MIT", "GPL-2.0", "BSD-3-Clause"])
    assert detect_license("SPDX-License-Identifier: GPL-3.0-only OR MIT")["class"] == "permissive"
    assert detect_license("SPDX-License-Identifier: GPL-3.0-only AND MIT")["class"] == "copyleft"


def _doc(text: str) -> Document:
    return Document(text, "d", "mem://x")


def test_copyleft_is_dropped_when_not_allowed_and_metadata_is_kept():
    step = CodeLicense(allow_copyleft=False)
    gpl = _doc("# SPDX-License-Identifier: GPL-3.0-only\nprint(1)\n")
    mit = _doc("# SPDX-License-Identifier: MIT\nprint(1)\n")
    assert step.keep(gpl) == "license:copyleft"
    assert step.keep(mit) is None
    assert mit.metadata["license_detected"]["class"] == "permissive"


def test_allowed_list_accepts_one_allowed_alternative_of_an_or():
    step = CodeLicense(allowed=["MIT"])
    assert step.keep(_doc("SPDX-License-Identifier: Apache-2.0 OR MIT")) is None
    assert step.keep(_doc("SPDX-License-Identifier: Apache-2.0")) == "license:not_allowed"


def test_undetected_license_falls_back_to_a_metadata_field():
    step = CodeLicense(fallback_field="license", drop_undetected=True)
    doc = Document("fn main() {}", "d", "mem://x", metadata={"license": "Unlicense OR MIT"})
    assert step.keep(doc) is None
    assert doc.metadata["license_detected"]["evidence"] == "metadata:license"
    assert CodeLicense(drop_undetected=True).keep(_doc("fn main() {}")) == "license:undetected"
