"""Who may call this service: CDS Hooks 2.0 JWT verification against a registry of trusted EHRs.

Spec, "Trusting CDS Clients": the client signs a JWT with an asymmetric key (ES384 and RS384
recommended; never `none`, never a symmetric algorithm) carrying `iss`, `aud` (the URL called), `exp`,
`iat` and `jti`, and optionally `tenant`; a `jku` header names the key set. The service keeps an
allow-list of issuers and `jku` URLs. Every failure is a bare 401 for the caller; the reason goes to
the log, never the token.

Replay protection needs to see every `jti` across all worker processes, so seen ids live in a small
SQLite file (a rollback journal, no memory maps) rather than in one process's memory.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import jwt
import requests

from cds_service import metrics
from cds_service.cds_hooks.limits import fitted_key
from cds_service.errors import AuthenticationFailed, StorageUnavailable
from cds_service.fhir.bounded_read import BodyCutOff, BodyTooLarge, BodyTooSlow, read_bounded
from cds_service.storage.store import sqlite_pragmas

log = logging.getLogger(__name__)

ALLOWED_ALGORITHMS = frozenset({"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
REQUIRED_CLAIMS = ("iss", "aud", "exp", "iat", "jti")
JWKS_MAX_BYTES = 1024 * 1024  # a key set is a few KB


@dataclass(frozen=True)
class TrustedEhr:
    iss: str
    jwks: Mapping[str, Any] | None = None  # inline key set
    jwks_url: str | None = None
    allowed_jku: tuple[str, ...] = ()
    tenants: tuple[str, ...] = ()
    fhir_servers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Caller:
    ehr: TrustedEhr
    claims: Mapping[str, Any] = field(repr=False)


def caller_key(caller: Caller) -> str:
    """The calling EHR's identity for storage: its issuer, and the tenant when the token names one.
    Hashed when longer than the column (an issuer is a URL of any length)."""
    tenant = caller.claims.get("tenant")
    key = f"{caller.ehr.iss}|{tenant}" if isinstance(tenant, str) and tenant else caller.ehr.iss
    return fitted_key(key)


def load_registry(path: Path) -> dict[str, TrustedEhr]:
    data = json.loads(path.read_text())
    registry = {}
    for entry in data["ehrs"]:
        ehr = TrustedEhr(
            iss=entry["iss"],
            jwks=entry.get("jwks"),
            jwks_url=entry.get("jwks_url"),
            allowed_jku=tuple(entry.get("allowed_jku", [])),
            tenants=tuple(entry.get("tenants", [])),
            fhir_servers=tuple(entry.get("fhir_servers", [])),
        )
        if not (ehr.jwks or ehr.jwks_url or ehr.allowed_jku):
            raise ValueError(f"trusted EHR {ehr.iss!r} has no keys: give jwks, jwks_url or allowed_jku")
        registry[ehr.iss] = ehr
    return registry


class KeySets:
    """JWKS fetched with a short deadline and cached. An unknown `kid` triggers a refresh (key rotation) at most
    once per interval per URL; a failed fetch is remembered for the same interval (negative cache), and only
    one fetch per URL is in flight at a time, so tokens with made-up kids or a hanging key set URL cannot make
    us hammer the EHR or hold many workers: a caller waits for the one fetch at most the deadline."""

    def __init__(
        self, timeout_s: float = 3.0, refresh_interval_s: float = 60.0, session: requests.Session | None = None
    ):
        self.timeout_s = timeout_s
        self.refresh_interval_s = refresh_interval_s
        self.session = session or requests.Session()
        self._cache: dict[str, tuple[float, jwt.PyJWKSet]] = {}
        self._failed: dict[str, tuple[float, str]] = {}  # url -> (when, why): the negative cache
        self._lock = threading.Lock()
        self._fetching: dict[str, threading.Lock] = {}
        self.fetches = 0  # how many key set requests were sent (for tests and the log)

    def key(self, url: str, kid: str | None) -> jwt.PyJWK:
        found = self._cached_key(url, kid)
        if found is not None:
            return found
        with self._lock:
            in_flight = self._fetching.setdefault(url, threading.Lock())
        if not in_flight.acquire(timeout=self.timeout_s):
            raise AuthenticationFailed(f"key set at {url} is being fetched and did not arrive in time")
        try:
            found = self._cached_key(url, kid)  # fetched by the request we waited for
            if found is not None:
                return found
            keyset = self._fetch(url)
        finally:
            in_flight.release()
        found = _find(keyset, kid)
        if found is None:
            raise AuthenticationFailed(f"no key with kid {kid!r} in the key set at {url}")
        return found

    def _cached_key(self, url: str, kid: str | None) -> jwt.PyJWK | None:
        """A cached key, None when a fetch may help, or AuthenticationFailed when one must not be tried yet."""
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(url)
            failed = self._failed.get(url)
        if cached:
            found = _find(cached[1], kid)
            if found is not None:
                return found
            if now - cached[0] < self.refresh_interval_s:
                raise AuthenticationFailed(f"unknown kid {kid!r} for {url} (refresh rate-limited)")
        if failed and now - failed[0] < self.refresh_interval_s:
            raise AuthenticationFailed(f"key set at {url} failed recently ({failed[1]}); not fetched again yet")
        return None

    def _fetch(self, url: str) -> jwt.PyJWKSet:
        self.fetches += 1
        deadline = time.monotonic() + self.timeout_s
        try:
            # One deadline for the whole fetch: a server dripping a byte at a time gets no longer than a silent one.
            with self.session.get(url, timeout=self.timeout_s, allow_redirects=False, stream=True) as response:
                response.raise_for_status()
                body = read_bounded(response, deadline, JWKS_MAX_BYTES)
            keyset = jwt.PyJWKSet.from_dict(json.loads(body))
        except (requests.RequestException, ValueError, jwt.PyJWTError, BodyTooLarge, BodyTooSlow, BodyCutOff) as exc:
            with self._lock:
                self._failed[url] = (time.monotonic(), type(exc).__name__)
            raise AuthenticationFailed(f"key set at {url} could not be fetched: {type(exc).__name__}") from exc
        with self._lock:
            self._cache[url] = (time.monotonic(), keyset)
            self._failed.pop(url, None)
        return keyset


def _check_key_fits(key: jwt.PyJWK, alg: str) -> None:
    """The algorithm must match the key's type and, where the key declares one, its `alg` (a PS384 signature
    is not accepted for a key declared RS384; an RSA key is never read as an EC one)."""
    if key.key_type != KEY_TYPE_FOR.get(alg[:2]):
        raise AuthenticationFailed(f"algorithm {alg} does not fit a {key.key_type} key")
    declared = key.algorithm_name if "alg" in getattr(key, "_jwk_data", {}) else None
    if declared and declared != alg:
        raise AuthenticationFailed(f"algorithm {alg} is not the key's declared {declared}")


def _find(keyset: jwt.PyJWKSet, kid: str | None) -> jwt.PyJWK | None:
    if kid is None:
        return keyset.keys[0] if len(keyset.keys) == 1 else None
    return next((k for k in keyset.keys if k.key_id == kid), None)


class SeenTokens(Protocol):
    def first_use(self, iss: str, jti: str, expires: float) -> bool: ...


class ReplayGuard:
    """Remembers every accepted `jti` until its token expires, shared by all workers of one host through one
    SQLite file (with PostgreSQL, storage.Store keeps them in the shared database instead)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # The threads of one worker take turns (storage.Store says why: SQLite's lock polling sleeps).
        self._turn = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db:
            db.execute("CREATE TABLE IF NOT EXISTS seen_jti (iss TEXT, jti TEXT, expires REAL, PRIMARY KEY (iss, jti))")

    def _connect(self) -> sqlite3.Connection:
        # A locked file waits 1 s at most, then the caller falls back to its own record (DegradingReplayRecord).
        db = sqlite3.connect(self.path, timeout=1, isolation_level=None)
        try:
            sqlite_pragmas(db, 1.0)  # no shared memory map to fault on (storage.SQLITE_CONNECTION_PRAGMAS)
        except sqlite3.Error:
            db.close()
            raise
        return db

    def first_use(self, iss: str, jti: str, expires: float) -> bool:
        with self._turn, closing(self._connect()) as db:
            db.execute("DELETE FROM seen_jti WHERE expires < ?", (time.time(),))
            try:
                db.execute("INSERT INTO seen_jti VALUES (?, ?, ?)", (iss, jti, expires))
            except sqlite3.IntegrityError:
                return False
        return True


# JSON types the header fields and claims must have (RFC 7515 4.1, RFC 7519 4.1, CDS Hooks 2.0 "Trusting CDS
# Clients"): any other type is refused with a reason before it reaches a look-up or a comparison.
HEADER_STRINGS = ("alg", "kid", "jku", "typ")
CLAIM_STRINGS = ("iss", "sub", "jti", "tenant")


def _check_types(header: Mapping[str, Any], claims: Any) -> None:
    if not isinstance(claims, Mapping):
        raise AuthenticationFailed("the token's claims must be a JSON object")
    for name in HEADER_STRINGS:
        if name in header and not isinstance(header[name], str):
            raise AuthenticationFailed(f"header {name} must be a string")
    for name in CLAIM_STRINGS:
        if name in claims and not isinstance(claims[name], str):
            raise AuthenticationFailed(f"{name} must be a string")
    aud = claims.get("aud")
    if aud is not None and not (
        isinstance(aud, str) or (isinstance(aud, list) and all(isinstance(a, str) for a in aud))
    ):
        raise AuthenticationFailed("aud must be a string or an array of strings")


class DegradingReplayRecord:
    """Replay protection that degrades instead of failing: every accepted `jti` is checked against the shared
    record (all workers and instances) and kept in this process's own record too, until its token expires.
    When the shared record cannot answer (database down, file locked or read-only), this process's record
    decides alone: a replay to the same worker is still refused, one to another worker or instance is not
    (logged, and /readyz says so). When the shared record answers again it is used again."""

    LOCAL_MAX = 200_000  # entries at most; expired ones go first (tokens live 5 minutes: far fewer in practice)

    def __init__(self, shared: SeenTokens) -> None:
        self.shared = shared
        self._seen: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self.shared_down_since: float | None = None

    def first_use(self, iss: str, jti: str, expires: float) -> bool:
        first_here = self._remember(iss, jti, expires)
        try:
            first_anywhere = self.shared.first_use(iss, jti, expires)
        except (StorageUnavailable, sqlite3.Error, OSError) as exc:
            if self.shared_down_since is None:
                log.error(
                    "the shared replay record cannot be read: replays are refused per worker only",
                    extra={"reason": type(exc).__name__},
                )
                self.shared_down_since = time.time()
                metrics.REPLAY_FALLBACK.set(1)
            return first_here
        if self.shared_down_since is not None:
            log.warning("the shared replay record answers again")
            self.shared_down_since = None
            metrics.REPLAY_FALLBACK.set(0)
        return first_here and first_anywhere

    def _remember(self, iss: str, jti: str, expires: float) -> bool:
        now = time.time()
        with self._lock:
            if (iss, jti) in self._seen and self._seen[(iss, jti)] >= now:
                return False
            if len(self._seen) >= self.LOCAL_MAX:
                self._seen = {k: v for k, v in self._seen.items() if v >= now}
                while len(self._seen) >= self.LOCAL_MAX:  # still full of live tokens: the oldest go
                    self._seen.pop(next(iter(self._seen)))
            self._seen[(iss, jti)] = expires
            return True


# The key type each algorithm family needs: a token cannot choose how its key is read.
KEY_TYPE_FOR = {"ES": "EC", "RS": "RSA", "PS": "RSA"}


class Verifier:
    def __init__(
        self,
        registry: Mapping[str, TrustedEhr],
        replay: SeenTokens,
        keysets: KeySets,
        leeway_s: int = 30,
        max_lifetime_s: int = 300,
    ):
        self.registry = registry
        self.replay = replay
        self.keysets = keysets
        self.leeway_s = leeway_s
        self.max_lifetime_s = max_lifetime_s

    def verify(self, authorization: str | None, audience: str) -> Caller:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():  # the scheme is case-insensitive (RFC 7235)
            raise AuthenticationFailed("no bearer token")
        token = token.strip()
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise AuthenticationFailed(f"malformed token: {type(exc).__name__}") from exc
        _check_types(header, unverified)
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise AuthenticationFailed(f"algorithm {alg!r} is not allowed")
        if "typ" in header and str(header["typ"]).upper() != "JWT":
            # The spec fixes typ to JWT; the public sandbox leaves it out, so only a wrong value is refused.
            raise AuthenticationFailed(f"typ {header['typ']!r} is not JWT")
        for claim in ("exp", "iat"):
            if claim in unverified and (
                not isinstance(unverified[claim], int | float) or isinstance(unverified[claim], bool)
            ):
                raise AuthenticationFailed(f"{claim} must be a number (NumericDate)")
        ehr = self.registry.get(str(unverified.get("iss")))
        if ehr is None:
            raise AuthenticationFailed(f"issuer {unverified.get('iss')!r} is not registered")
        key = self._key(ehr, header)
        _check_key_fits(key, alg)
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=[alg],
                audience=audience,
                issuer=ehr.iss,
                leeway=self.leeway_s,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.PyJWTError as exc:
            raise AuthenticationFailed(f"token rejected: {type(exc).__name__}: {exc}") from exc
        if claims["iat"] > time.time() + self.leeway_s:
            raise AuthenticationFailed("iat is in the future")
        if claims["exp"] - claims["iat"] > self.max_lifetime_s:
            raise AuthenticationFailed(f"token lifetime exceeds {self.max_lifetime_s} s")
        tenant = claims.get("tenant")
        if tenant is not None and tenant not in ehr.tenants:
            raise AuthenticationFailed(f"tenant {tenant!r} is not registered for {ehr.iss}")
        if not self.replay.first_use(ehr.iss, str(claims["jti"]), float(claims["exp"]) + self.leeway_s):
            raise AuthenticationFailed("jti was already used (replay)")
        return Caller(ehr, claims)

    def _key(self, ehr: TrustedEhr, header: Mapping[str, Any]) -> jwt.PyJWK:
        """Pinned keys first: a registry entry's inline `jwks` or its `jwks_url` verifies a token whose `kid`
        it holds, even when the token also names a `jku` (the public CDS Hooks sandbox always does, and an
        EHR's key set URL may be unreachable from here). The `jku`, when on this issuer's allow-list, is
        fetched only for a `kid` the pinned keys do not hold (key rotation)."""
        kid = header.get("kid")
        jku = header.get("jku")
        if jku is not None and jku not in ehr.allowed_jku:
            # Exact match: a prefix would let any path on that host serve keys.
            raise AuthenticationFailed("jku is not on this issuer's allow-list")
        pinned = self._pinned(ehr, kid, fetch_url=jku is None or jku != ehr.jwks_url)
        if pinned is not None:
            return pinned
        if jku is not None:
            return self.keysets.key(jku, kid)
        if ehr.jwks is not None or ehr.jwks_url:
            raise AuthenticationFailed(f"no registered key with kid {kid!r}")
        raise AuthenticationFailed("jku missing and no key set registered for this issuer")

    def _pinned(self, ehr: TrustedEhr, kid: str | None, *, fetch_url: bool) -> jwt.PyJWK | None:
        if ehr.jwks is not None:
            found = _find(jwt.PyJWKSet.from_dict(dict(ehr.jwks)), kid)
            if found is not None:
                return found
        if ehr.jwks_url and fetch_url:
            try:
                return self.keysets.key(ehr.jwks_url, kid)
            except AuthenticationFailed as exc:
                log.info("pinned key set did not hold the key", extra={"reason": exc.reason})
        return None
