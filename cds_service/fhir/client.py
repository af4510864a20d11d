"""A small FHIR R4 REST client for reading the EHR's FHIR server.

One ``requests.Session`` per worker process (connection pooling), the EHR's bearer token on every call,
``Accept: application/fhir+json``, connect/read timeouts, bounded paging, and a retry with back-off
only for idempotent GETs that failed to connect or were told to come back later (429/503 with
``Retry-After``). Redirects are never followed: a FHIR server that redirects elsewhere could send the
EHR's token to a host nobody allowed.

Every call carries the hook call's deadline (a ``time.monotonic()`` instant): each request gets the
remaining budget as its timeouts, its body is read in chunks with the deadline and a size bound checked
after each, and retries happen only within the budget. A server that drips one byte a second, stalls its
headers, or floods a gigabyte cannot hold the answer past the deadline or the worker's memory past the bound.

Failures are raised as ``FhirAccessError`` with a reason that is safe to show to the caller: it never
contains the token or a response body.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import orjson
import requests

from cds_service import metrics
from cds_service.domain.facts import as_list
from cds_service.errors import DisallowedFhirServer, FhirAccessError
from cds_service.fhir.bounded_read import BodyCutOff, BodyTooLarge, BodyTooSlow, read_bounded
from cds_service.settings import Settings

FHIR_JSON = "application/fhir+json"
RETRYABLE_STATUSES = frozenset({429, 503})


def check_fhir_server(url: str, settings: Settings, allowed: tuple[str, ...] | None = None) -> str:
    """Return the normalised base URL, or raise before any request is sent (SSRF guard). The allow-list is
    compared with normalised URLs: `http://host/fhir/../../admin` is `http://host/admin`, whatever its spelling."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in {"http", "https"} or not parts.netloc:
        raise DisallowedFhirServer("fhirServer must be an absolute http(s) URL")
    if parts.scheme.lower() == "http" and not settings.allow_insecure_fhir_http:
        raise DisallowedFhirServer("fhirServer must use https")
    if parts.username or parts.password or "@" in parts.netloc:
        raise DisallowedFhirServer("fhirServer must not carry credentials")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise DisallowedFhirServer("fhirServer is a base URL: it has no query or fragment")
    try:
        base = normalised_url(url)
    except ValueError as exc:
        raise DisallowedFhirServer(f"fhirServer {exc}") from exc
    prefixes = settings.allowed_fhir_servers if allowed is None else allowed
    if not any(_has_prefix(base, normalised_url(prefix)) for prefix in prefixes):
        raise DisallowedFhirServer("fhirServer is not on this service's allow-list of FHIR servers")
    return base


DEFAULT_PORTS = {"http": 80, "https": 443}
ENCODED_DOT = re.compile("%2e", re.IGNORECASE)


def normalised_url(url: str) -> str:
    """The URL as a server would resolve it (RFC 3986 6.2.2): scheme and host lower-cased, the default port
    dropped, percent-encoded dots decoded and dot segments removed, repeated slashes folded, no trailing slash.
    An encoded slash or a backslash in the path, which servers resolve differently, is refused (ValueError)."""
    parts = urlsplit(url)
    if re.search("%2f|%5c", parts.path, re.IGNORECASE) or "\\" in parts.path:
        raise ValueError("has an encoded slash or a backslash in its path")
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError("has a port that is not a number") from exc
    shown = f"[{host}]" if ":" in host else host  # an IPv6 literal keeps its brackets
    netloc = shown if port in (None, DEFAULT_PORTS.get(scheme)) else f"{shown}:{port}"
    segments: list[str] = []
    for segment in ENCODED_DOT.sub(".", parts.path).split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    path = "/" + "/".join(segments) if segments else ""
    query = f"?{parts.query}" if parts.query else ""
    return f"{scheme}://{netloc}{path}{query}"


def _has_prefix(url: str, prefix: str) -> bool:
    prefix = prefix.rstrip("/")
    # A prefix matches at a path or query boundary only: "https://ehr.example" must not allow
    # "https://ehr.example.evil".
    return url == prefix or url.startswith((prefix + "/", prefix + "?"))


@dataclass(frozen=True)
class SearchResult:
    resources: list[dict[str, Any]]
    truncated: bool  # a page or resource bound cut the result
    requests: int


class FhirClient:
    def __init__(self, settings: Settings, session: requests.Session | None = None) -> None:
        self.settings = settings
        self.session = session or _new_session(settings.fhir_concurrency)

    def read_json(self, url: str, token: str | None, deadline: float | None = None) -> dict[str, Any]:
        """GET one URL and return its JSON object, retrying only where that is safe and the budget allows;
        each read is counted by its outcome (the metrics)."""
        try:
            body = self._read_json(url, token, deadline)
        except FhirAccessError as exc:
            metrics.FHIR_FETCHES.labels(exc.kind).inc()
            raise
        metrics.FHIR_FETCHES.labels("ok").inc()
        return body

    def _read_json(self, url: str, token: str | None, deadline: float | None) -> dict[str, Any]:
        headers = {"Accept": FHIR_JSON}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        deadline = deadline if deadline is not None else time.monotonic() + self.settings.hook_deadline_s
        attempt = 0
        while True:
            left = _left(deadline)
            timeout = (min(self.settings.fhir_connect_timeout_s, left), min(self.settings.fhir_read_timeout_s, left))
            try:
                response = self.session.get(url, headers=headers, timeout=timeout, allow_redirects=False, stream=True)
            except requests.Timeout as exc:
                # A read timeout means the server is slow, not absent: retrying would only double the wait.
                raise FhirAccessError("the FHIR server did not answer in time", kind="timeout") from exc
            except requests.ConnectionError as exc:
                backoff = 0.05 * 2 ** (attempt + 1)
                if attempt < self.settings.fhir_retries and backoff < deadline - time.monotonic():
                    attempt += 1
                    time.sleep(backoff)
                    continue
                raise FhirAccessError("the FHIR server could not be reached", kind="unreachable") from exc
            if response.status_code in RETRYABLE_STATUSES and attempt < self.settings.fhir_retries:
                wait = _retry_after(response.headers.get("Retry-After"))
                if wait is not None and wait <= self.settings.fhir_max_retry_after_s and wait < _left(deadline):
                    response.close()
                    attempt += 1
                    time.sleep(wait)
                    continue
            with response:
                content = self._read_body(response, deadline)
            return _json_or_raise(response, content)

    def _read_body(self, response: requests.Response, deadline: float) -> bytes:
        """The body within the call's deadline and the size bound (decompressed), checked after each read."""
        limit = self.settings.fhir_max_response_bytes
        try:
            return read_bounded(response, deadline, limit)
        except BodyTooLarge as exc:
            raise FhirAccessError(f"the FHIR server's answer is larger than {limit} bytes", kind="too_large") from exc
        except BodyTooSlow as exc:
            raise FhirAccessError("the FHIR server did not answer in time", kind="timeout") from exc
        except BodyCutOff as exc:
            raise FhirAccessError("the FHIR server's answer was cut off before its end") from exc

    def search(self, base: str, query: str, token: str | None, deadline: float | None = None) -> SearchResult:
        """Run a search (``Type?params``) and follow ``next`` links within the configured bounds."""
        url = normalised_url(urljoin(base + "/", query))
        if not _has_prefix(url, base):  # the templates' tokens are URL-encoded; this holds it whatever they hold
            raise FhirAccessError("a query would leave the FHIR server's base")
        return self.follow(base, self.read_json(url, token, deadline), token, requests_made=1, deadline=deadline)

    def follow(
        self,
        base: str,
        bundle: Mapping[str, Any],
        token: str | None,
        *,
        requests_made: int = 0,
        deadline: float | None = None,
    ) -> SearchResult:
        """Collect a searchset's resources, fetching further pages from ``base`` only."""
        resources: list[dict[str, Any]] = []
        pages = 1
        page: Mapping[str, Any] | None = bundle
        truncated = False
        while page is not None:
            if page.get("resourceType") == "OperationOutcome":
                raise FhirAccessError("the FHIR server answered with an OperationOutcome")
            if page.get("resourceType") != "Bundle":
                # A read, not a search: the resource itself.
                return SearchResult([dict(page)], False, requests_made)
            for entry in as_list(page.get("entry")):
                resource = entry.get("resource") if isinstance(entry, Mapping) else None
                if not isinstance(resource, Mapping):
                    continue
                search = entry.get("search")
                if isinstance(search, Mapping) and search.get("mode") == "outcome":
                    continue
                if len(resources) >= self.settings.fhir_max_resources:
                    truncated = True
                    break
                resources.append(dict(resource))
            next_url = _next_link(page)
            if truncated or next_url is None:
                break
            if pages >= self.settings.fhir_max_pages:
                truncated = True
                break
            try:
                next_url = normalised_url(next_url)
            except ValueError as exc:
                raise FhirAccessError(f"a paging link {exc}") from exc
            if not _has_prefix(next_url, base):
                # Never send the token to a host the paging link points at but the EHR did not name.
                raise FhirAccessError("a paging link pointed outside the FHIR server")
            page = self.read_json(next_url, token, deadline)
            pages += 1
            requests_made += 1
        return SearchResult(resources, truncated, requests_made)


def _new_session(pool_size: int) -> requests.Session:
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.trust_env = False  # proxies from the environment must not see the EHR's token
    return session


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP-date: too far away to wait for on a hook call


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise FhirAccessError("the hook call's time budget for FHIR reading ran out", kind="timeout")
    return left


def _json_or_raise(response: requests.Response, content: bytes) -> dict[str, Any]:
    status = response.status_code
    if status in {401, 403}:
        raise FhirAccessError(f"the FHIR server refused access (HTTP {status})", status=status)
    if 300 <= status < 400:
        raise FhirAccessError(f"the FHIR server redirected (HTTP {status}); redirects are not followed", status=status)
    if status == 404:
        raise FhirAccessError("the FHIR server has no such resource (HTTP 404)", status=status)
    if status >= 400:
        raise FhirAccessError(f"the FHIR server failed (HTTP {status})", status=status)
    try:
        body = orjson.loads(content)
    except ValueError as exc:
        raise FhirAccessError(
            "the FHIR server sent a response that is not JSON", status=status, kind="invalid"
        ) from exc
    if not isinstance(body, dict):
        raise FhirAccessError("the FHIR server sent JSON that is not a FHIR resource", status=status, kind="invalid")
    return body


def _next_link(bundle: Mapping[str, Any]) -> str | None:
    for link in as_list(bundle.get("link")):
        if isinstance(link, Mapping) and link.get("relation") == "next" and isinstance(url := link.get("url"), str):
            return url
    return None
