"""GET a JSON document from a tracing backend with the standard library.

Tempo, Jaeger and Phoenix are read with ``urllib.request``, not httpx: the
package declares no HTTP client among its dependencies (``requests`` arrives
only through the OTLP exporter's own dependencies, which may change), and
``sessions list --source tempo+http://...`` must work on a plain
``pip install alephant-otel``. A few GETs per command need nothing more.

Every failure becomes a :class:`~._spansource.SourceError`-style one-line
message naming the backend and its URL; the caller supplies the error class.
"""

from __future__ import annotations

import http.client
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlencode

__all__ = ["HttpGetter"]

_MAX_DETAIL: Final = 200


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect would carry the Authorization header (Phoenix's API key) to
    # whatever host it names; a backend URL that redirects is reported instead.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, socket.gaierror):
        return f"unknown host ({reason.strerror or reason})"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return str(reason) or type(reason).__name__


class HttpGetter:
    """GETs JSON from one backend base URL; errors are raised as ``error(message)``.

    Args:
        name: The backend's name in messages (``tempo``).
        base: Its base URL (``http://127.0.0.1:3200``).
        headers: Sent with every request.
        error: The exception class raised with a one-line message.
        timeout_s: Socket timeout for connecting and for each read.
    """

    def __init__(
        self,
        name: str,
        base: str,
        headers: Mapping[str, str],
        error: type[Exception],
        timeout_s: float,
    ) -> None:
        self.name = name
        self.base = base
        self.headers = dict(headers)
        self.error = error
        self.timeout_s = timeout_s
        # No ProxyHandler from the environment: a proxy variable must not reroute a loopback backend.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The decoded JSON object of ``GET base+path?params``."""
        url = self.base + path
        if params:
            url += "?" + urlencode(params)
        request = urllib.request.Request(url, headers=self.headers, method="GET")  # noqa: S310 (http(s) only: _parse_base)
        where = f"{self.name} at {self.base}"
        try:
            with self._opener.open(request, timeout=self.timeout_s) as resp:
                body = resp.read()
        except urllib.error.HTTPError as exc:
            with exc:
                detail = exc.read(_MAX_DETAIL * 2).decode("utf-8", "replace")
            detail = " ".join(detail.split())[:_MAX_DETAIL]
            if 300 <= exc.code < 400:
                detail = f"a redirect to {exc.headers.get('Location', '?')}: give that URL in --source"
            raise self.error(f"{where} answered {exc.code} for {path}: {detail}") from None
        except TimeoutError:
            raise self.error(f"{where} timed out after {self.timeout_s:.0f}s") from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise self.error(f"{where} timed out after {self.timeout_s:.0f}s") from None
            raise self.error(f"cannot reach {where}: {_reason(exc)}") from None
        except (OSError, ValueError, http.client.HTTPException) as exc:  # a reset connection, a bad response
            raise self.error(f"cannot reach {where}: {_reason(exc)}") from None
        try:
            doc = json.loads(body)
        except ValueError:
            raise self.error(f"{where} sent a response that is not JSON for {path}") from None
        if not isinstance(doc, dict):  # every API read here answers with an object
            raise self.error(f"{where} sent an unexpected JSON document for {path} (not an object)")
        return doc
