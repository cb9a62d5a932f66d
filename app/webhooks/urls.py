"""Which receiver URLs a webhook may have (SSRF guard), checked on create and PATCH and again
before every delivery (DNS can change between the two).

Only `http` and `https`; `https` only outside dev. The host's every address (after DNS
resolution) must be public: loopback, private, link-local (cloud metadata 169.254.169.254
included), unspecified, multicast, reserved and shared (100.64/10) ranges are refused, IPv4 and
IPv6, and an IPv6 address that embeds an IPv4 one is judged by that one. `localhost` is refused
by name. `PIM_WEBHOOK_ALLOW_PRIVATE=true` (dev and tests) lifts the address and scheme checks.
Redirects are never followed (httpx's default), so a public receiver cannot bounce a delivery
inward.
"""

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from app.errors import BadRequest, ErrorCode

MAX_URL_LENGTH = 2048
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


class UrlRefused(BadRequest):
    code = ErrorCode.webhook_url_refused

    def __init__(self, detail: str):
        super().__init__(detail, param="url")


def _refused_address(address: str) -> str | None:
    """Why the address may not receive webhooks (None: it may)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            return _refused_address(str(embedded))
    for name in ("loopback", "unspecified", "link_local", "private", "multicast", "reserved"):
        if getattr(ip, f"is_{name}"):
            return f"{name.replace('_', '-')} address {ip}"
    if not ip.is_global:
        return f"non-public address {ip}"
    return None


def split_url(url: str, *, allow_private: bool, require_https: bool) -> tuple[str, int]:
    """The host and port of an acceptable URL (syntax and scheme checks only)."""
    if len(url) > MAX_URL_LENGTH:
        raise UrlRefused(f"url: longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused(f"url: not a URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise UrlRefused("url: only http and https URLs can receive webhooks")
    if parts.scheme != "https" and require_https and not allow_private:
        raise UrlRefused("url: must be https")
    host = parts.hostname
    if not host:
        raise UrlRefused("url: has no host")
    if parts.username or parts.password:
        raise UrlRefused("url: must not carry credentials")
    return host, port or (443 if parts.scheme == "https" else 80)


async def check_url(url: str, *, allow_private: bool, require_https: bool) -> None:
    """Raise `UrlRefused` (a 400) unless `url` may receive webhooks now (see the module)."""
    host, port = split_url(url, allow_private=allow_private, require_https=require_https)
    if allow_private:
        return
    name = host.rstrip(".").lower()
    if name in _LOCAL_NAMES or name.endswith(".localhost"):
        raise UrlRefused(f"url: {host} is a loopback name")
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (socket.gaierror, UnicodeError) as exc:
        raise UrlRefused(f"url: {host} does not resolve ({exc})") from None
    for info in infos:
        reason = _refused_address(str(info[4][0]))
        if reason is not None:
            raise UrlRefused(f"url: {host} resolves to a {reason}")
