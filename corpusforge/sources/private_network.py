"""Where a redirect or a ``next`` link may lead: the Private Network Access rule of browsers.

Every address a host resolves to is classed public < private (RFC 1918, ULA fc00::/7, CGNAT
100.64.0.0/10) < loopback. A target more private than the host the recipe names is refused (a
public API may not send the fetcher to 10.0.0.5 or 127.0.0.1; a test server on 127.0.0.1 may
send it to 127.0.0.2). Link-local (169.254.0.0/16 with the cloud metadata service, fe80::/10),
unspecified, multicast and reserved addresses are refused whatever the origin, and so is every
scheme but http and https. ``allow_private_redirects`` lifts the address rules, never the scheme rule.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

PUBLIC, PRIVATE, LOOPBACK, SPECIAL = 0, 1, 2, 3
CLASS_NAMES = {PUBLIC: "public", PRIVATE: "private", LOOPBACK: "loopback", SPECIAL: "link-local or reserved"}
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_SCHEMES = ("http", "https")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def address_class(addr: IPAddress) -> int:
    """PUBLIC, PRIVATE, LOOPBACK or SPECIAL for one address (IPv4-mapped IPv6 as its IPv4)."""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if addr.is_loopback:
        return LOOPBACK
    if addr.is_link_local or addr.is_unspecified or addr.is_multicast or addr.is_reserved:
        return SPECIAL
    if addr.is_private or addr in _CGNAT or not addr.is_global:
        return PRIVATE
    return PUBLIC


def resolve(host: str, port: int | None = None) -> list[IPAddress]:
    """Every address ``host`` resolves to, as the socket layer would connect to it (so decimal,
    octal and hex IPv4 forms such as ``2130706433`` or ``0x7f.1`` count as the address they mean).
    Raises ``OSError`` when the name does not resolve."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos))


def host_class(host: str, port: int | None = None) -> int:
    """The most private class among the addresses of ``host``."""
    return max(address_class(a) for a in resolve(host, port))


def refusal(target: str, configured: str, allow_private: bool = False) -> str | None:
    """Why the fetcher must not follow ``target`` from a source configured with URL ``configured``,
    or None when it may. ``target`` is shown as given; callers pass a redacted URL where it matters."""
    parts = urlsplit(target)
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        return f"scheme {scheme or '(none)'!r} is not followed (only http and https)"
    if not parts.hostname:
        return "no host"
    if allow_private:
        return None
    try:
        wanted = host_class(parts.hostname, parts.port)
    except (OSError, UnicodeError) as exc:
        return f"host {parts.hostname!r} does not resolve ({exc})"
    if wanted == SPECIAL:
        return f"host {parts.hostname!r} is a {CLASS_NAMES[SPECIAL]} address; allow_private_redirects: true follows it"
    home = urlsplit(configured)
    try:
        base = host_class(home.hostname, home.port) if home.hostname else PUBLIC
    except (OSError, UnicodeError):
        base = PUBLIC
    if wanted > base:
        return (f"host {parts.hostname!r} is {CLASS_NAMES[wanted]}, more private than the configured host "
                f"{home.hostname!r} ({CLASS_NAMES[base]}); allow_private_redirects: true follows it")
    return None
