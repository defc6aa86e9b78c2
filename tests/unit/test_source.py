"""Sources: a local file and an HTTP URL read with byte ranges (a real server in a thread) give the
same bytes and the same planned chunks; the URL allow-list, redirects, range support, size limit,
timeouts and changed files are enforced; fsspec URLs work with the extra and are refused clearly
without it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pandas as pd
import pytest

from shared.data.reader import (
    EmptyFileError,
    FileChangedError,
    NotCsvError,
    inspect_file,
    read_range,
    scan_file,
)
from shared.data.source import (
    FsspecSource,
    HttpSource,
    LocalSource,
    SourceChanged,
    SourceNotFound,
    SourceRefused,
    SourceUnavailable,
    UrlPolicy,
    normalise_url,
    open_source,
    under_prefix,
)
from tests.support.files import sample_file
from tests.support.range_server import RangeServer


@pytest.fixture
def served(tmp_path):
    """A 1,500-row NHIS file in a folder served over HTTP with byte ranges."""
    folder = tmp_path / "served"
    path = sample_file(folder, 1_500, name="nhis-2022.csv", year=2022, seed=5)
    with RangeServer(folder) as server:
        yield server, path


def policy_for(server: RangeServer, **kw) -> UrlPolicy:
    return UrlPolicy(prefixes=(normalise_url(server.url("")),), **kw)


def touch_later(path, data: bytes) -> None:
    """Rewrite the file with a modification time surely different from before."""
    before = os.stat(path).st_mtime_ns
    path.write_bytes(data)
    os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))


# --- the same bytes from a file and from a URL ------------------------------------------------------


def test_local_and_http_sources_give_the_same_bytes(served):
    server, path = served
    data = path.read_bytes()
    with LocalSource(path) as local, HttpSource(server.url(path.name), policy_for(server)) as remote:
        assert local.version.size == remote.version.size == len(data)
        assert local.version.mtime_ns == os.stat(path).st_mtime_ns and remote.version.mtime_ns is None
        assert remote.version.tag.startswith('etag:"')
        for start, end in ((0, 1), (17, 4_000), (len(data) - 10, len(data)), (len(data) - 10, len(data) + 50)):
            assert local.read(start, end) == remote.read(start, end) == data[start:end]
        assert b"".join(remote.blocks(100, len(data), 4096)) == data[100:]
        assert [len(b) for b in remote.blocks(0, 10_000, 4096)] == [4096, 4096, 10_000 - 8192]
    ranges = server.ranged_gets(path.name)
    assert "bytes=17-3999" in ranges and "bytes=100-" + str(len(data) - 1) in ranges
    assert all(status == 206 for _, _, status in server.requests)  # never the whole file


def test_a_file_planned_and_read_over_http_gives_the_local_result(served):
    server, path = served
    local_layout = inspect_file(path)
    local_scan = scan_file(local_layout, target_rows=400)
    with HttpSource(server.url(path.name), policy_for(server)) as source:
        layout = inspect_file(source)
        scan = scan_file(layout, target_rows=400, source=source)
        assert [(r.start, r.end, r.checksum) for r in scan.ranges] == [
            (r.start, r.end, r.checksum) for r in local_scan.ranges]
        assert scan.profile.to_dict() == local_scan.profile.to_dict()
        assert scan.version == source.version.tag and scan.mtime_ns is None
        options = scan.read_options(2022)
        for r in scan.ranges:
            remote = read_range(layout, r, options.for_range(r), source=source)
            local = read_range(local_layout, r, local_scan.read_options(2022).for_range(r))
            pd.testing.assert_frame_equal(remote.frame, local.frame)
            pd.testing.assert_frame_equal(remote.rejects, local.rejects)
    for r in scan.ranges:  # each chunk read was one request for exactly its bytes
        assert f"bytes={r.start}-{r.end - 1}" in server.ranged_gets(path.name)


def test_without_an_etag_the_version_is_last_modified(tmp_path):
    path = sample_file(tmp_path, 50, name="a.csv")
    with RangeServer(tmp_path, etag=False) as server, HttpSource(server.url("a.csv"), policy_for(server)) as src:
        assert src.version.tag.startswith("last-modified:") and src.version.tag.endswith("GMT")
        assert src.version.size == path.stat().st_size


# --- a file that changes -------------------------------------------------------------------------


def test_a_url_replaced_after_planning_fails_its_chunks(served):
    server, path = served
    policy = policy_for(server)
    with HttpSource(server.url(path.name), policy) as source:
        layout = inspect_file(source)
        scan = scan_file(layout, target_rows=400, source=source)
    options = scan.read_options(2022)
    data = path.read_bytes()
    touch_later(path, data.replace(b"\n2022,", b"\n2021,", 1))  # same size, new bytes and ETag
    with HttpSource(server.url(path.name), policy) as source, pytest.raises(FileChangedError, match="version"):
        read_range(layout, scan.ranges[0], options, source=source)
    # a handle that saw the old version notices the new one on its next response
    touch_later(path, data)
    with HttpSource(server.url(path.name), policy) as source:
        source.read(0, 10)
        touch_later(path, data + b"2022,1,1,1,1\n")
        with pytest.raises(SourceChanged, match="bytes"):
            source.read(10, 20)


def test_the_checksum_catches_a_change_the_server_does_not_announce(served):
    """Same size and ETag, different bytes (a server whose validator is weak): the CRC-32 decides."""
    server, path = served
    server.etag = False
    with HttpSource(server.url(path.name), policy_for(server)) as source:
        layout = inspect_file(source)
        scan = scan_file(layout, target_rows=400, source=source)
    stat = os.stat(path)
    data = bytearray(path.read_bytes())
    r = scan.ranges[1]
    data[r.start + 5] = ord("9") if data[r.start + 5] != ord("9") else ord("8")
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # Last-Modified unchanged too
    with HttpSource(server.url(path.name), policy_for(server)) as source, pytest.raises(FileChangedError,
                                                                                         match="checksum"):
        read_range(layout, r, scan.read_options(2022), source=source)


# --- confinement ----------------------------------------------------------------------------------


def test_urls_are_refused_without_prefixes_and_naming_the_setting(served):
    server, path = served
    with pytest.raises(SourceRefused, match="NHIS_INGEST_URL_PREFIXES") as info:
        open_source(server.url(path.name), UrlPolicy())
    assert info.value.code == "url_not_allowed"
    with pytest.raises(SourceRefused):
        inspect_file(server.url(path.name))  # the reader alone never reads a URL without a policy
    assert not server.requests


@pytest.mark.parametrize(("url", "prefix", "allowed"), [
    ("https://files.example.org/nhis/2024.csv", "https://files.example.org/nhis/", True),
    ("https://FILES.example.org:443/nhis/2024.csv", "https://files.example.org/nhis/", True),
    ("https://files.example.org/nhis/2024.csv?X-Amz-Signature=abc", "https://files.example.org/nhis", True),
    ("https://files.example.org/nhis-private/2024.csv", "https://files.example.org/nhis", False),
    ("https://files.example.org.evil.net/nhis/2024.csv", "https://files.example.org", False),
    ("http://files.example.org/nhis/2024.csv", "https://files.example.org/nhis/", False),
    ("https://files.example.org:8443/nhis/2024.csv", "https://files.example.org/nhis/", False),
    ("s3://bucket/nhis/2024.csv", "s3://bucket/nhis/", True),
    ("s3://bucket2/nhis/2024.csv", "s3://bucket/", False),
])
def test_prefixes_match_on_boundaries(url, prefix, allowed):
    assert under_prefix(normalise_url(url), normalise_url(prefix)) is allowed
    policy = UrlPolicy(prefixes=(normalise_url(prefix),))
    if allowed:
        assert policy.check(url) == normalise_url(url)
    else:
        with pytest.raises(SourceRefused, match="not under an allowed URL prefix"):
            policy.check(url)


@pytest.mark.parametrize(("url", "reason"), [
    ("https://files.example.org/nhis/../secret.csv", "'..'"),
    ("https://files.example.org/nhis/%2e%2e/secret.csv", "'..'"),
    ("https://user:pw@files.example.org/nhis/a.csv", "credentials"),
    ("file:///etc/passwd", "file://"),
    ("https://files.example.org/nhis/a.csv#frag", "fragment"),
    ("https:///nhis/a.csv", "no host"),
    ("https://files.example.org/nhis/a b.csv", "spaces"),
])
def test_urls_that_could_escape_a_prefix_are_refused(url, reason):
    policy = UrlPolicy(prefixes=("https://files.example.org/",))
    with pytest.raises(SourceRefused, match=reason):
        policy.check(url)


def test_a_redirect_to_another_host_is_refused(tmp_path, served):
    server, path = served
    with RangeServer(server.folder) as other:
        policy = UrlPolicy(prefixes=(normalise_url(server.url("")), normalise_url(other.url(""))))
        server.redirects["/moved.csv"] = other.url(path.name)  # another port: another origin
        server.redirects["/renamed.csv"] = server.url(path.name, host="localhost")  # another host name
        for name in ("moved.csv", "renamed.csv"):
            with HttpSource(server.url(name), policy) as source, pytest.raises(SourceRefused) as info:
                source.current_version()
            assert info.value.code == "redirect_refused" and "another host" in str(info.value)
        assert not other.requests


def test_a_redirect_on_the_same_host_is_followed_under_the_prefixes(served):
    server, path = served
    server.redirects["/nhis/latest.csv"] = f"/{path.name}"
    server.redirects["/nhis/elsewhere.csv"] = "/private/secret.csv"
    policy = UrlPolicy(prefixes=(normalise_url(server.url("nhis/")), normalise_url(server.url(path.name))))
    with HttpSource(server.url("nhis/latest.csv"), policy) as source:
        assert source.read(0, 50) == path.read_bytes()[:50]
    with HttpSource(server.url("nhis/elsewhere.csv"), policy) as source, pytest.raises(SourceRefused) as info:
        source.current_version()
    assert info.value.code == "redirect_refused" and "outside the allowed prefixes" in str(info.value)


def test_a_server_without_range_support_is_refused_clearly(tmp_path):
    sample_file(tmp_path, 200, name="a.csv")
    with RangeServer(tmp_path, ranges=False) as server:
        with HttpSource(server.url("a.csv"), policy_for(server)) as source, pytest.raises(SourceRefused) as info:
            source.current_version()
    assert info.value.code == "range_not_supported"
    assert "does not support byte ranges" in str(info.value)


def test_missing_too_large_empty_and_not_csv(tmp_path):
    sample_file(tmp_path, 200, name="a.csv")
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "page.csv").write_bytes(b"\x1f\x8b\x08\x00" + bytes(100))
    with RangeServer(tmp_path) as server:
        with HttpSource(server.url("nope.csv"), policy_for(server)) as source, pytest.raises(SourceNotFound):
            source.current_version()
        small = policy_for(server, max_bytes=1000)
        with HttpSource(server.url("a.csv"), small) as source, pytest.raises(SourceRefused) as info:
            source.current_version()
        assert info.value.code == "file_too_large" and "NHIS_INGEST_URL_MAX_MB" in str(info.value)
        with HttpSource(server.url("empty.csv"), policy_for(server)) as source:
            assert source.version.size == 0
            with pytest.raises(EmptyFileError):
                inspect_file(source)
        with HttpSource(server.url("page.csv"), policy_for(server)) as source, pytest.raises(NotCsvError):
            inspect_file(source)


def test_unreachable_and_silent_servers_fail_within_the_timeouts():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, not listening: connection refused
        policy = UrlPolicy(prefixes=(f"http://127.0.0.1:{port}/",), connect_timeout=1, read_timeout=1)
        with HttpSource(f"http://127.0.0.1:{port}/a.csv", policy) as source, pytest.raises(SourceUnavailable,
                                                                                           match="cannot connect"):
            source.current_version()
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # accepts the connection in the backlog, never answers
        port = silent.getsockname()[1]
        policy = UrlPolicy(prefixes=(f"http://127.0.0.1:{port}/",), connect_timeout=1, read_timeout=0.3)
        with HttpSource(f"http://127.0.0.1:{port}/a.csv", policy) as source, pytest.raises(SourceUnavailable,
                                                                                           match="timed out"):
            source.current_version()


# --- fsspec ---------------------------------------------------------------------------------------


def test_fsspec_urls_read_ranges_like_a_file(tmp_path):
    fsspec = pytest.importorskip("fsspec")
    path = sample_file(tmp_path, 1_200, name="nhis.csv", year=2022, seed=9)
    fs = fsspec.filesystem("memory")
    fs.pipe("/nhis-test/nhis.csv", path.read_bytes())
    try:
        policy = UrlPolicy(prefixes=("memory://nhis-test/",))
        with open_source("memory://nhis-test/nhis.csv", policy) as source:
            assert isinstance(source, FsspecSource)
            assert source.version.size == path.stat().st_size and source.version.tag
            assert b"".join(source.blocks(0, source.version.size, 1000)) == path.read_bytes()
            layout = inspect_file(source)
            scan = scan_file(layout, target_rows=500, source=source)
            frames = [read_range(layout, r, scan.read_options(2022), source=source).frame for r in scan.ranges]
        local = inspect_file(path)
        expected = [read_range(local, r, scan_file(local, target_rows=500).read_options(2022)).frame
                    for r in scan_file(local, target_rows=500).ranges]
        for got, want in zip(frames, expected, strict=True):
            pd.testing.assert_frame_equal(got, want)
        with open_source("memory://nhis-test/missing.csv", policy) as source, pytest.raises(SourceNotFound):
            source.current_version()
    finally:
        fs.rm("/nhis-test", recursive=True)


def test_without_the_remote_extra_fsspec_urls_are_refused_and_the_rest_works(served, monkeypatch):
    server, path = served
    monkeypatch.setitem(sys.modules, "fsspec", None)  # import fsspec now raises ImportError
    policy = UrlPolicy(prefixes=("s3://bucket/", normalise_url(server.url(""))))
    with pytest.raises(SourceRefused, match=r"'remote' extra") as info:
        open_source("s3://bucket/nhis/2024.csv", policy)
    assert info.value.code == "url_scheme_unavailable"
    with open_source(server.url(path.name), policy) as source:
        assert inspect_file(source).n_fields > 20


def test_the_core_imports_no_fsspec():
    code = ("import sys, shared.data.source, shared.data.reader, shared.etl.jobs, shared.etl.chunk; "
            "assert 'fsspec' not in sys.modules, 'fsspec imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
