"""Where a file's bytes come from: a local path, an http(s) URL, or any fsspec URL (``s3://``...).

The reader only ever needs four things from a file, so that is all a source offers: its size and
version identity, ``read(start, end)`` of one byte range, ``blocks(start, end)`` streaming a long
span (the planning scan), and ``current_version()`` to ask again. A chunk task on any host reads
its own range and nothing else, so worker hosts need no shared folder when the file is a URL.

- Local paths are plain file reads (seek + read on one descriptor): nothing changes for them, and
  their version is (size, modification time in ns).
- ``http://`` and ``https://`` use the standard library's ``http.client``: every read is a
  ``GET`` with ``Range: bytes=a-b`` answered ``206 Partial Content`` (RFC 9110 §14), checked
  against the ``Content-Range`` total and the ``ETag`` (else ``Last-Modified``) first seen, so a
  file replaced on the server is noticed on the next response. A server that answers a range
  request with ``200`` (no range support) is refused: we would download the whole file per chunk.
  Redirects are followed only to the same scheme, host and port, and only under an allowed prefix.
- Any other scheme goes through fsspec when the optional ``remote`` extra is installed (``s3://``
  needs s3fs): ``info()`` gives the size and ETag, ``cat_file(start, end)`` a range.

What may be read is decided by :class:`UrlPolicy`: an allow-list of URL prefixes (empty: every URL
refused), a size limit, and connect/read timeouts. Without a policy, URLs are refused.
"""

from __future__ import annotations

import http.client
import os
import posixpath
import re
import ssl
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

HTTP_SCHEMES = ("http", "https")
MAX_URL_CHARS = 1024  # what etl_jobs.source_path holds
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+)://")  # two letters at least: "C:\..." is a path
_CONTENT_RANGE = re.compile(r"^bytes\s+(\d+)-(\d+)/(\d+|\*)$")
_UNSATISFIED_RANGE = re.compile(r"^bytes\s+\*/(\d+)$")
_REDIRECTS = (301, 302, 303, 307, 308)
_USER_AGENT = "nhis-screening (range reader)"


# --- errors --------------------------------------------------------------------------------------


class SourceError(Exception):
    """A source that cannot be read; ``code`` names the problem, the message is for a person."""

    code = "source_error"

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code


class SourceRefused(SourceError):
    """Not allowed or not usable as it is (prefix, redirect, size, no range support...): retrying won't help."""

    code = "source_refused"


class SourceNotFound(SourceError):
    """The server or store says there is no such file."""

    code = "file_not_found"


class SourceUnavailable(SourceError):
    """Unreachable, timed out, or a server error: may work later."""

    code = "source_unreachable"


class SourceChanged(SourceError):
    """The bytes served are not those of the version first seen (size or validator differ)."""

    code = "source_changed"


# --- identity and policy ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceVersion:
    """What identifies one version of a file: size, plus mtime (local) or a validator (remote).

    ``tag`` is ``etag:<ETag>`` when the server sends an ETag, else ``last-modified:<date>``, else
    None (then only the size and the per-range checksums taken at planning can tell a change).
    """

    size: int
    mtime_ns: int | None = None
    tag: str | None = None


@dataclass(frozen=True)
class UrlPolicy:
    """Which URLs may be read and how: the same confinement as NHIS_DATA_DIR gives local paths."""

    prefixes: tuple[str, ...] = ()  # normalised (see normalise_url); empty: URLs are refused
    max_bytes: int | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    max_redirects: int = 3

    def check(self, url: str) -> str:
        """The normalised URL if it is allowed; SourceRefused (code url_not_allowed) otherwise."""
        try:
            normal = normalise_url(url)
        except ValueError as exc:
            raise SourceRefused(f"{_shorten(url)}: {exc}", "bad_url") from None
        if not self.prefixes:
            raise SourceRefused("URLs are not accepted here: NHIS_INGEST_URL_PREFIXES is empty (set it to the "
                                "URL prefixes files may be read from)", "url_not_allowed")
        if not any(under_prefix(normal, prefix) for prefix in self.prefixes):
            raise SourceRefused(f"{_shorten(normal)} is not under an allowed URL prefix "
                                f"(NHIS_INGEST_URL_PREFIXES: {', '.join(self.prefixes)})", "url_not_allowed")
        return normal


def is_url(location: str | os.PathLike) -> bool:
    """A ``scheme://`` string (a Windows drive letter is not a scheme)."""
    return isinstance(location, str) and _SCHEME.match(location) is not None


def url_scheme(url: str) -> str:
    match = _SCHEME.match(url)
    return match.group(1).lower() if match else ""


def normalise_url(url: str) -> str:
    """Lower-case scheme and host, no default port, no fragment, no credentials, no dot segments.

    Raises ValueError naming what is wrong. Dot segments are refused rather than resolved, so a
    prefix check cannot be walked out of (``/nhis/../secret``), also when percent-encoded.
    """
    text = url.strip()
    if len(text) > MAX_URL_CHARS:
        raise ValueError(f"URLs longer than {MAX_URL_CHARS} characters are not accepted")
    if any(ord(c) < 33 or ord(c) == 127 for c in text):
        raise ValueError("a URL may not contain spaces or control characters")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if not scheme or not is_url(text):
        raise ValueError("not a URL (expected scheme://...)")
    if scheme == "file":
        raise ValueError("file:// URLs are not accepted; give a path under NHIS_DATA_DIR instead")
    if parts.fragment or text.endswith("#"):
        raise ValueError("a URL fragment (#...) is not part of a file's address")
    if parts.username is not None or parts.password is not None:
        raise ValueError("credentials in a URL are not accepted (they would be stored with the job)")
    host = (parts.hostname or "").lower()
    if not host:
        raise ValueError("the URL names no host (or bucket)")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the URL has a bad port") from None
    netloc = f"[{host}]" if ":" in host else host  # an IPv6 literal keeps its brackets
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        netloc = f"{netloc}:{port}"
    if any(segment in (".", "..") for segment in unquote(parts.path).split("/")):
        raise ValueError("'.' and '..' path segments are not accepted")
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def under_prefix(url: str, prefix: str) -> bool:
    """Whether a normalised URL lies under a normalised prefix, on a path boundary.

    ``https://h/nhis/`` allows ``https://h/nhis/2024.csv``; ``https://h/nhis`` allows itself and
    what lies under ``/nhis/`` but not ``/nhis-private``; ``https://h`` never allows ``https://h.evil``.
    """
    if url == prefix:
        return True
    if prefix.endswith("/"):
        return url.startswith(prefix)
    return url.startswith(prefix + "/") or url.startswith(prefix + "?")


def _shorten(url: str, limit: int = 120) -> str:
    return url if len(url) <= limit else url[: limit - 1] + "…"


# --- the sources -----------------------------------------------------------------------------------


class Source(ABC):
    """One open file; ``version`` is the version this handle reads (asked once, then kept)."""

    location: str  # the path or the URL, as stored with a job
    name: str  # what messages call it: the file name

    @property
    @abstractmethod
    def version(self) -> SourceVersion: ...

    @abstractmethod
    def current_version(self) -> SourceVersion:
        """Ask again (stat, or a new request); used to see a change after a long read."""

    @abstractmethod
    def read(self, start: int, end: int) -> bytes:
        """Bytes [start, end), fewer only at the end of the file."""

    @abstractmethod
    def blocks(self, start: int, end: int, block_bytes: int) -> Iterator[bytes]:
        """Bytes [start, end) as consecutive blocks of at most block_bytes (the last may be short)."""

    def close(self) -> None:  # noqa: B027 - nothing to release by default
        pass

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LocalSource(Source):
    """A local file, read with plain seek + read on one descriptor (raises OSError as open() does)."""

    def __init__(self, path: str | os.PathLike):
        self.location = os.fspath(path)
        self.name = Path(self.location).name
        self._fh = open(self.location, "rb")  # noqa: SIM115 - closed by close()
        self._version: SourceVersion | None = None

    @property
    def version(self) -> SourceVersion:
        if self._version is None:
            self._version = self._stat()
        return self._version

    def current_version(self) -> SourceVersion:
        return self._stat()

    def _stat(self) -> SourceVersion:
        st = os.fstat(self._fh.fileno())
        return SourceVersion(size=st.st_size, mtime_ns=st.st_mtime_ns)

    def read(self, start: int, end: int) -> bytes:
        if end <= start:
            return b""
        self._fh.seek(start)
        return self._fh.read(end - start)

    def blocks(self, start: int, end: int, block_bytes: int) -> Iterator[bytes]:
        self._fh.seek(start)
        pos = start
        while pos < end:
            block = self._fh.read(min(block_bytes, end - pos))
            if not block:
                return  # the file shrank: the caller's version check reports it
            pos += len(block)
            yield block

    def close(self) -> None:
        self._fh.close()


class HttpSource(Source):
    """An http(s) URL read with byte-range GETs over one kept-alive connection."""

    def __init__(self, url: str, policy: UrlPolicy):
        self.policy = policy
        self.location = policy.check(url)
        self.name = posixpath.basename(unquote(urlsplit(self.location).path)) or self.location
        self._url = self.location  # after same-origin redirects
        self._conn: http.client.HTTPConnection | None = None
        self._origin: tuple[str, str, int] | None = None
        self._version: SourceVersion | None = None

    # -- identity --
    @property
    def version(self) -> SourceVersion:
        if self._version is None:
            self._version = self._probe()
        return self._version

    def current_version(self) -> SourceVersion:
        return self._probe()

    def _probe(self) -> SourceVersion:
        """One GET of the first byte: proves range support and gives size and validator."""
        response, version = self._get(0, 0, check=False)
        try:
            response.read()
        except (OSError, http.client.HTTPException) as exc:
            self._drop()
            raise SourceUnavailable(f"{self.name}: {_describe(exc)}") from None
        limit = self.policy.max_bytes
        if limit is not None and version.size > limit:
            raise SourceRefused(f"{self.name} is {version.size:,} bytes, larger than the limit of {limit:,} "
                                "(NHIS_INGEST_URL_MAX_MB)", "file_too_large")
        return version

    # -- reads --
    def read(self, start: int, end: int) -> bytes:
        end = min(end, self.version.size)
        if end <= start:
            return b""
        response, _ = self._get(start, end - 1)
        try:
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self._drop()
            raise SourceUnavailable(f"{self.name}: bytes {start:,}-{end:,}: {_describe(exc)}") from None
        if len(data) != end - start:
            self._drop()
            raise SourceUnavailable(f"{self.name}: bytes {start:,}-{end:,}: got {len(data):,} bytes")
        return data

    def blocks(self, start: int, end: int, block_bytes: int) -> Iterator[bytes]:
        end = min(end, self.version.size)
        if end <= start:
            return
        response, _ = self._get(start, end - 1)
        pos, done = start, False
        try:
            while pos < end:
                try:
                    block = response.read(min(block_bytes, end - pos))
                except (OSError, http.client.HTTPException) as exc:
                    raise SourceUnavailable(f"{self.name}: at byte {pos:,}: {_describe(exc)}") from None
                if not block:
                    raise SourceUnavailable(f"{self.name}: the response ended at byte {pos:,} of {end:,}")
                pos += len(block)
                yield block
            done = True
        finally:
            if not done:  # the rest of the body was not read: this connection cannot be reused
                self._drop()

    # -- HTTP --
    def _get(self, first: int, last: int, check: bool = True) -> tuple[http.client.HTTPResponse, SourceVersion]:
        """GET bytes first..last (inclusive), following same-origin redirects; a 206 with its body unread."""
        url = self._url
        for _hop in range(self.policy.max_redirects + 1):
            response = self._send(url, first, last)
            status = response.status
            if status in _REDIRECTS:
                location = response.getheader("Location")
                self._drop()  # the redirect's body is not read; a fresh connection follows
                url = self._redirect_target(url, location)
                continue
            if status == 206:
                version = self._checked_version(response, first, last)
            elif status == 416 and first == 0 and _empty_file(response):
                version = SourceVersion(size=0, tag=_validator(response))
            else:
                self._drop()
                raise self._status_error(status, response)
            if url != self._url:
                self._url = url  # later requests go straight to where the file is
            if check and self._version is not None and (version.size, version.tag) != (
                    self._version.size, self._version.tag):
                self._drop()
                raise SourceChanged(_change_message(self.name, self._version, version))
            return response, version
        raise SourceRefused(f"{self.name}: more than {self.policy.max_redirects} redirects", "too_many_redirects")

    def _send(self, url: str, first: int, last: int) -> http.client.HTTPResponse:
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = {"Range": f"bytes={first}-{last}", "Accept-Encoding": "identity", "User-Agent": _USER_AGENT}
        for attempt in (1, 2):
            conn, reused = self._connection(parts)
            try:
                conn.request("GET", target, headers=headers)
                return conn.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self._drop()
                if reused and attempt == 1:
                    continue  # a kept-alive connection the server had closed: try once on a new one
                raise SourceUnavailable(f"{self.name}: {_describe(exc)}") from None
            except (OSError, http.client.HTTPException) as exc:
                self._drop()
                raise SourceUnavailable(f"{self.name}: cannot reach {parts.hostname}: {_describe(exc)}") from None
        raise AssertionError("unreachable")

    def _connection(self, parts) -> tuple[http.client.HTTPConnection, bool]:
        scheme = parts.scheme
        port = parts.port or (443 if scheme == "https" else 80)
        origin = (scheme, parts.hostname, port)
        if self._conn is not None and self._origin == origin and self._conn.sock is not None:
            return self._conn, True
        self._drop()
        if scheme == "https":
            conn = http.client.HTTPSConnection(parts.hostname, port, timeout=self.policy.connect_timeout,
                                               context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(parts.hostname, port, timeout=self.policy.connect_timeout)
        try:
            conn.connect()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise SourceUnavailable(f"{self.name}: cannot connect to {parts.hostname}:{port}: "
                                    f"{_describe(exc)}") from None
        conn.sock.settimeout(self.policy.read_timeout)  # connect had its own timeout; reads get theirs
        self._conn, self._origin = conn, origin
        return conn, False

    def _redirect_target(self, url: str, location: str | None) -> str:
        if not location:
            raise SourceUnavailable(f"{self.name}: a redirect without a Location header")
        target = urljoin(url, location)
        here, there = urlsplit(url), urlsplit(target)
        try:
            same = (here.scheme, here.hostname, here.port or _default_port(here.scheme)) == (
                there.scheme.lower(), (there.hostname or "").lower(),
                there.port or _default_port(there.scheme.lower()))
        except ValueError:  # a bad port in the Location header
            same = False
        if not same:
            raise SourceRefused(
                f"{self.name}: the server redirects to another host ({there.scheme}://{there.netloc}); "
                "redirects are followed only on the same host: give the final URL", "redirect_refused")
        try:
            return self.policy.check(target)
        except SourceRefused as exc:
            raise SourceRefused(f"{self.name}: the server redirects outside the allowed prefixes: {exc}",
                                "redirect_refused") from None

    def _checked_version(self, response: http.client.HTTPResponse, first: int, last: int) -> SourceVersion:
        encoding = (response.getheader("Content-Encoding") or "identity").strip().lower()
        if encoding != "identity":
            self._drop()
            raise SourceRefused(f"{self.name}: the server sent the range {encoding}-encoded; byte ranges must "
                                "address the file itself", "range_not_supported")
        match = _CONTENT_RANGE.match((response.getheader("Content-Range") or "").strip())
        if match is None or match.group(3) == "*":
            self._drop()
            raise SourceRefused(f"{self.name}: the server's range answer gives no file size (Content-Range: "
                                f"{response.getheader('Content-Range')!r})", "range_not_supported")
        start, stop, size = int(match.group(1)), int(match.group(2)), int(match.group(3))
        if start != first or stop != min(last, size - 1):
            self._drop()
            raise SourceRefused(f"{self.name}: asked for bytes {first}-{last}, the server sent {start}-{stop}",
                                "range_not_supported")
        return SourceVersion(size=size, tag=_validator(response))

    def _status_error(self, status: int, response: http.client.HTTPResponse) -> SourceError:
        if status == 200:
            return SourceRefused(f"{self.name}: the server does not support byte ranges (it answered a Range "
                                 "request with the whole file); serve the file from a server that does, "
                                 "or put it under NHIS_DATA_DIR", "range_not_supported")
        if status == 416:
            return SourceChanged(f"{self.name}: the server says the range is past the end of the file; "
                                 "the file is shorter than when it was planned")
        if status in (404, 410):
            return SourceNotFound(f"{self.name}: the server has no such file (HTTP {status})")
        if status in (401, 403):
            return SourceRefused(f"{self.name}: access denied (HTTP {status}); the URL must be readable without "
                                 "credentials, or presigned", "access_denied")
        if status >= 500 or status in (408, 429):
            return SourceUnavailable(f"{self.name}: the server answered HTTP {status} {response.reason}")
        return SourceRefused(f"{self.name}: the server answered HTTP {status} {response.reason}", "http_error")

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn, self._origin = None, None

    def close(self) -> None:
        self._drop()


def _empty_file(response: http.client.HTTPResponse) -> bool:
    """A 416 whose Content-Range says the file has no bytes at all (``bytes */0``)."""
    match = _UNSATISFIED_RANGE.match((response.getheader("Content-Range") or "").strip())
    return match is not None and int(match.group(1)) == 0


def _default_port(scheme: str) -> int | None:
    return {"http": 80, "https": 443}.get(scheme)


def _validator(response: http.client.HTTPResponse) -> str | None:
    etag = response.getheader("ETag")
    if etag:
        return f"etag:{etag.strip()}"
    modified = response.getheader("Last-Modified")
    return f"last-modified:{modified.strip()}" if modified else None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text


def _change_message(name: str, before: SourceVersion, after: SourceVersion) -> str:
    if before.size != after.size:
        return f"{name} changed: it was {before.size:,} bytes, it is now {after.size:,}"
    return f"{name} changed: its version was {before.tag}, it is now {after.tag}"


class FsspecSource(Source):
    """Any fsspec URL (s3://, gs://, az://...) through the optional ``remote`` extra."""

    def __init__(self, url: str, policy: UrlPolicy):
        self.policy = policy
        self.location = policy.check(url)
        self.name = posixpath.basename(unquote(urlsplit(self.location).path)) or self.location
        scheme = url_scheme(self.location)
        try:
            import fsspec
        except ImportError:
            raise SourceRefused(f"{scheme}:// URLs need the optional 'remote' extra (pip install "
                                "'nhis-screening[remote]'); http(s) URLs and local paths work without it",
                                "url_scheme_unavailable") from None
        options: dict = {}
        if scheme in ("s3", "s3a"):  # botocore's own timeouts, from the same settings as HTTP
            options["config_kwargs"] = {"connect_timeout": policy.connect_timeout,
                                        "read_timeout": policy.read_timeout}
        try:
            self._fs, self._path = fsspec.core.url_to_fs(self.location, **options)
        except (ImportError, ValueError) as exc:  # unknown protocol, or its package is not installed
            raise SourceRefused(f"{scheme}:// URLs cannot be read here: {exc}", "url_scheme_unavailable") from None
        self._version: SourceVersion | None = None

    @property
    def version(self) -> SourceVersion:
        if self._version is None:
            self._version = self.current_version()
        return self._version

    def current_version(self) -> SourceVersion:
        info = self._call(self._fs.info, self._path)
        if info.get("type") == "directory":
            raise SourceNotFound(f"{self.name}: this is a folder, not a file")
        size = int(info.get("size") or 0)
        limit = self.policy.max_bytes
        if limit is not None and size > limit:
            raise SourceRefused(f"{self.name} is {size:,} bytes, larger than the limit of {limit:,} "
                                "(NHIS_INGEST_URL_MAX_MB)", "file_too_large")
        return SourceVersion(size=size, tag=self._tag(info))

    def _tag(self, info: dict) -> str | None:
        for key in ("ETag", "etag", "md5Hash", "content_md5"):
            if info.get(key):
                return f"etag:{info[key]}"
        for key in ("LastModified", "last_modified", "mtime", "updated", "created"):
            if info.get(key):
                return f"last-modified:{info[key]}"
        return None

    def read(self, start: int, end: int) -> bytes:
        end = min(end, self.version.size)
        if end <= start:
            return b""
        data = self._call(self._fs.cat_file, self._path, start=start, end=end)
        if len(data) != end - start:
            raise SourceChanged(f"{self.name}: bytes {start:,}-{end:,} gave {len(data):,} bytes; "
                                "the file is shorter than when it was planned")
        return data

    def blocks(self, start: int, end: int, block_bytes: int) -> Iterator[bytes]:
        pos = start
        while pos < end:
            block = self.read(pos, min(pos + block_bytes, end))
            if not block:
                return
            pos += len(block)
            yield block

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except FileNotFoundError:
            raise SourceNotFound(f"{self.name}: no such file") from None
        except PermissionError as exc:
            raise SourceRefused(f"{self.name}: access denied ({exc})", "access_denied") from None
        except SourceError:
            raise
        except Exception as exc:  # each backend has its own errors (botocore, aiohttp...)
            raise SourceUnavailable(f"{self.name}: {_describe(exc)}") from None


def open_source(location: str | os.PathLike | Source, policy: UrlPolicy | None = None) -> Source:
    """A local path, an http(s) URL, or an fsspec URL; URLs must pass ``policy`` (default: refused)."""
    if isinstance(location, Source):
        return location
    if not is_url(location):
        return LocalSource(location)
    policy = policy or UrlPolicy()
    if url_scheme(location) in HTTP_SCHEMES:
        return HttpSource(location, policy)
    return FsspecSource(location, policy)
