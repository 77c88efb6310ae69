"""Secrets in URLs, replaced by ``REDACTED`` in every copy of a recipe or location the run writes.

A URL may carry a credential: ``user:password@`` userinfo, or a query (or fragment) parameter such
as ``api_key``, ``token``, ``access_token``, ``sig`` or an AWS/GCS presigned ``X-Amz-Signature`` /
``X-Amz-Credential``. The value is replaced and the parameter name kept, so a reader still sees
what was sent. Only copies are redacted (``recipe.yaml``, the plan, tracker params, quarantine
locations, document URIs); requests and the recipe fingerprint use the real values.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any
from urllib.parse import unquote_plus

REDACTED = "REDACTED"

# Parameter names (lower case, without "-", "_", ".") that hold a secret, and endings that mark one
# (api_key, client_secret, refresh_token, X-Amz-Signature, X-Amz-Credential, X-Amz-Security-Token).
_SECRET_NAMES = frozenset({"key", "token", "sig", "signature", "secret", "password", "passwd", "pwd", "pass",
                           "auth", "authorization", "credential", "credentials", "session", "sessionid", "jwt"})
_SECRET_ENDINGS = ("key", "token", "secret", "signature", "sig", "password", "passwd", "credential",
                   "credentials")
# Schemes whose bare userinfo is an account name, not a credential (ssh://git@host/...).
_ACCOUNT_SCHEMES = frozenset({"ssh", "git", "git+ssh", "sftp"})

_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s'\"<>`]+")
_QUERY = re.compile(r"\?([^\s'\"<>`#]*)")
_AUTHORITY = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*)://([^/?#]*)")


def is_secret_name(name: str) -> bool:
    """Whether a query parameter called ``name`` carries a credential."""
    n = re.sub(r"[-_.\s]", "", name).lower()
    return n in _SECRET_NAMES or n.endswith(_SECRET_ENDINGS)


def _redact_pairs(text: str) -> str:
    """``a=1&api_key=x`` -> ``a=1&api_key=REDACTED`` (``;`` separates pairs too)."""
    out = []
    for piece in re.split(r"([&;])", text):
        name, eq, _ = piece.partition("=")
        out.append(f"{name}={REDACTED}" if eq and is_secret_name(unquote_plus(name)) else piece)
    return "".join(out)


@lru_cache(maxsize=4096)
def redact_url(url: str) -> str:
    """``url`` with its userinfo password and secret query/fragment values replaced by REDACTED;
    the rest of the string is kept byte for byte. A string that is not a URL comes back unchanged."""
    m = _AUTHORITY.match(url)
    if not m:
        return url
    scheme, authority = m.group(1), m.group(2)
    if "@" in authority:
        userinfo, host = authority.rsplit("@", 1)
        user, colon, _ = userinfo.partition(":")
        if colon:
            userinfo = f"{user}:{REDACTED}"
        elif scheme.lower() not in _ACCOUNT_SCHEMES:
            userinfo = REDACTED  # a bare token as user name (https://TOKEN@host/)
        authority = f"{userinfo}@{host}"
    rest = url[m.end():]
    rest, hash_, fragment = rest.partition("#")
    path, qmark, query = rest.partition("?")
    query = _redact_pairs(query) if qmark else query
    fragment = _redact_pairs(fragment) if hash_ and "=" in fragment else fragment
    return f"{scheme}://{authority}{path}{qmark}{query}{hash_}{fragment}"


def redact_text(text: str) -> str:
    """Every URL inside ``text`` (a log line, a quarantine location or reason) redacted, and the
    query of a schemeless path (``data.jsonl?api_key=...``, a part key relative to its source)."""
    if "://" in text:
        text = _URL.sub(lambda m: redact_url(m.group(0)), text)
    if "?" in text:
        text = _QUERY.sub(lambda m: "?" + _redact_pairs(m.group(1)), text)
    return text


def redact_secrets(data: Any) -> Any:
    """A copy of ``data`` (a recipe or plan as plain JSON-like data) with every URL redacted, and
    the secret-named values of any ``params`` mapping (query parameters of a ``rest_api`` source)."""
    if isinstance(data, str):
        return redact_text(data)
    if isinstance(data, dict):
        out = {}
        for k, v in data.items():
            if k == "params" and isinstance(v, dict):
                out[k] = {name: REDACTED if is_secret_name(str(name)) and isinstance(value, (str, int, float))
                          else redact_secrets(value) for name, value in v.items()}
            else:
                out[k] = redact_secrets(v)
        return out
    if isinstance(data, (list, tuple)):
        return [redact_secrets(v) for v in data]
    return data
