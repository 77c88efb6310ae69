"""The ``secrets`` step: redact credentials (API keys, tokens, private keys, passwords) from text.

Provider formats are matched by their documented prefixes; a generic rule catches values assigned
to secret-looking names (``password=``, ``api_key:``, ``token = "..."``) when the value looks
random. Values that are plainly not secrets are skipped: hex digests of md5/sha1/sha256/sha512
length (and git hashes), UUIDs, SRI integrity strings (``sha384-...``), variable references.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from corpusforge.privacy.redact import SpanRedactor
from corpusforge.registry import register


@dataclass(frozen=True, slots=True)
class SecretSpan:
    start: int
    end: int
    kind: str


# (kind, cheap substring that must be present, pattern; group "s" is the secret if present)
_RULES: tuple[tuple[str, tuple[str, ...], re.Pattern[str]], ...] = (
    ("private_key", ("PRIVATE KEY",), re.compile(
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")),
    ("aws_access_key", ("AKIA", "ASIA", "ABIA", "ACCA", "A3T"), re.compile(r"\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b")),
    ("aws_secret_key", ("aws", "AWS"), re.compile(
        r"(?i:aws)[\w.-]{0,20}?(?i:secret)[\w.-]{0,20}[\"']?\s*[:=]\s*[\"']?(?P<s>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])")),
    ("github_token", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), re.compile(r"gh[pousr]_[A-Za-z0-9]{36,255}\b")),
    ("github_token", ("github_pat_",), re.compile(r"\bgithub_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}\b")),
    ("slack_token", ("xox",), re.compile(r"\bxox[abposr]-(?:[0-9]{10,13}-){1,3}[A-Za-z0-9-]{10,48}\b")),
    ("slack_webhook", ("hooks.slack.com",), re.compile(
        r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/]{20,120}")),
    ("stripe_key", ("_live_", "_test_"), re.compile(r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{20,247}\b")),
    ("google_api_key", ("AIza",), re.compile(r"\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])")),
    ("openai_key", ("sk-",), re.compile(r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,200}(?![A-Za-z0-9_-])")),
    ("jwt", ("eyJ",), re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    ("connection_password", ("://",), re.compile(
        r"\b[a-zA-Z][a-zA-Z0-9+.-]{1,20}://[^\s:/@'\"]{1,64}:(?P<s>[^\s@/'\"]{1,128})@[\w.-]+")),
)

_NAME = (r"(?:password|passwd|pwd|pass|secret|api[_-]?key|apikey|access[_-]?key|secret[_-]?key|"
         r"auth[_-]?token|access[_-]?token|token|client[_-]?secret|private[_-]?key|credentials?)")
# Found in the lower-cased text (a case-insensitive regex is 6x slower); the value is read from the original.
_ASSIGN_KEY = re.compile(_NAME + r"[\w-]*[\"']?\s*(?::=|=>|[:=])\s*")
_ASSIGN_KEY_ANYCASE = re.compile("(?i)" + _ASSIGN_KEY.pattern)
_VALUE = re.compile(r"(?P<q>[\"'`])(?P<qs>[^\"'`\s]{6,200})(?P=q)|(?P<us>[^\s\"'`,;()\[\]{}<>]{8,200})")
_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{7,8}|[0-9a-fA-F]{32}|[0-9a-fA-F]{40}|[0-9a-fA-F]{56}|[0-9a-fA-F]{64}|[0-9a-fA-F]{96}|[0-9a-fA-F]{128}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_SRI = re.compile(r"sha(?:256|384|512)-[A-Za-z0-9+/]+=*")
_PLACEHOLDER = re.compile(r"(?i)^(?:\$\{?\w+\}?|%\(?\w+\)?s?|<[^>]*>|\{\{.*\}\}|x+|\*+|\.+|your[_-].*|changeme|"
                          r"password|secret|example.*|dummy.*|test.*|null|none|true|false|redacted|os\.environ.*|"
                          r"process\.env.*|env\..*|getenv.*|self\..*|config\..*|settings\..*)$")


def shannon_entropy(s: str) -> float:
    """Bits per character of ``s``'s own character distribution."""
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values())


def not_a_secret(value: str) -> bool:
    """Hashes, UUIDs, SRI strings, placeholders and identifiers are values, not credentials."""
    return bool(
        _HEX_DIGEST.fullmatch(value) or _UUID.fullmatch(value) or _SRI.fullmatch(value) or _PLACEHOLDER.match(value)
    )


class SecretDetector:
    """Every rule over one text; the generic assignment rule needs ``min_entropy`` bits/char."""

    def __init__(self, kinds: tuple[str, ...] | None = None, assignments: bool = True, min_entropy: float = 3.0):
        self.rules = [r for r in _RULES if kinds is None or r[0] in kinds]
        self.assignments, self.min_entropy = assignments, min_entropy

    def find(self, text: str) -> list[SecretSpan]:
        spans: list[SecretSpan] = []
        for kind, needles, rx in self.rules:
            if not any(n in text for n in needles):
                continue
            for m in rx.finditer(text):
                if m.start() and (text[m.start() - 1].isalnum() or text[m.start() - 1] in "_-"):
                    continue  # "task-..." is not "sk-..."
                if "s" in rx.groupindex:
                    if m.group("s") is None or not_a_secret(m.group("s")):
                        continue
                    spans.append(SecretSpan(m.start("s"), m.end("s"), kind))
                else:
                    spans.append(SecretSpan(m.start(), m.end(), kind))
        if self.assignments and ("=" in text or ":" in text):
            lower = text.lower()
            keys = _ASSIGN_KEY.finditer(lower) if len(lower) == len(text) else _ASSIGN_KEY_ANYCASE.finditer(text)
            for k in keys:
                m = _VALUE.match(text, k.end())
                if m is None:
                    continue
                g = "qs" if m.group("qs") is not None else "us"
                value = m.group(g)
                if not_a_secret(value) or shannon_entropy(value) < self.min_entropy:
                    continue
                if g == "us" and not (any(c.isdigit() for c in value) and any(c.isalpha() for c in value)):
                    continue  # an unquoted word (password = request.form) is code, not a secret
                spans.append(SecretSpan(m.start(g), m.end(g), "assigned_secret"))
        if len(spans) > 1:
            spans.sort(key=lambda s: (s.start, s.start - s.end))
            merged = [spans[0]]
            for s in spans[1:]:
                if s.start < merged[-1].end:
                    if s.end > merged[-1].end:
                        merged[-1] = SecretSpan(merged[-1].start, s.end, merged[-1].kind)
                else:
                    merged.append(s)
            spans = merged
        return spans


@register("secrets")
class Secrets(SpanRedactor):
    """Replace credentials with ``<SECRET>`` (or ``<SECRET:github_token>`` with ``typed``), or drop.

    ``kinds`` limits the provider rules (default: all); ``assignments`` enables the generic
    ``name = "value"`` rule, which needs ``min_entropy`` bits per character (default 3.0).
    """

    reason_prefix = "secret"
    metadata_key = "secrets"

    def __init__(
        self,
        mode: Literal["placeholder", "drop"] = "placeholder",
        typed: bool = False,
        kinds: list[str] | None = None,
        assignments: bool = True,
        min_entropy: float = 3.0,
    ):
        known = {r[0] for r in _RULES}
        if kinds is not None and set(kinds) - known:
            raise ValueError(f"unknown secret kinds {sorted(set(kinds) - known)}; allowed: {', '.join(sorted(known))}")
        self.mode, self.typed = mode, typed
        self.detector = SecretDetector(tuple(kinds) if kinds is not None else None, assignments, min_entropy)

    def placeholder(self, sp: SecretSpan) -> str:
        return f"<SECRET:{sp.kind}>" if self.typed else "<SECRET>"

    def kind_of(self, sp: SecretSpan) -> str:
        return sp.kind
