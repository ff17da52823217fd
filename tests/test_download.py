"""Downloads against a local HTTP server, and archive extraction (docs/data.md)."""

from __future__ import annotations

import hashlib
import io
import tarfile
import warnings
import zipfile

import pytest

from bractivate.data import (
    ChecksumError,
    DownloadError,
    FirstUseWarning,
    UnsafeArchiveError,
    UnverifiedDownloadError,
    download_files,
    extract,
    fetch,
    read_checksums,
    validate_entry,
)

from helpers import DIGEST, FAST, PAYLOAD, Server


@pytest.fixture
def server():
    srv = Server()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def test_fetch_downloads_and_verifies(server, tmp_path):
    server.routes["/f.bin"] = "ok"
    dest = fetch([server.url("/f.bin")], DIGEST, tmp_path / "f.bin", **FAST)
    assert dest.read_bytes() == PAYLOAD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_fetch_resumes_a_dropped_download_with_range(server, tmp_path):
    server.routes["/f.bin"] = "drop"
    dest = fetch([server.url("/f.bin")], DIGEST, tmp_path / "f.bin", **FAST)
    assert dest.read_bytes() == PAYLOAD
    assert server.requests == [("/f.bin", None), ("/f.bin", f"bytes={len(PAYLOAD) // 2}-")]
    assert not (tmp_path / "f.bin.part").exists()


def test_fetch_wrong_bytes_is_an_error_and_leaves_nothing(server, tmp_path):
    server.routes["/f.bin"] = "wrong"
    url = server.url("/f.bin")
    with pytest.raises(ChecksumError) as err:
        fetch([url], DIGEST, tmp_path / "f.bin", **FAST)
    message = str(err.value)
    assert url in message and DIGEST in message
    assert hashlib.sha256(b"not the file" * 100).hexdigest() in message
    assert list(tmp_path.iterdir()) == []


def test_fetch_without_a_recorded_digest_gives_it_and_uses_nothing(server, tmp_path):
    server.routes["/f.bin"] = "ok"
    url = server.url("/f.bin")
    with pytest.raises(UnverifiedDownloadError, match=f"{url} gave sha256 {DIGEST}"):
        fetch([url], None, tmp_path / "f.bin", **FAST)
    assert not (tmp_path / "f.bin").exists()
    assert (tmp_path / "f.bin.part").stat().st_size == len(PAYLOAD)
    # once the digest is recorded the kept download is verified, not fetched again
    dest = fetch([url], DIGEST, tmp_path / "f.bin", **FAST)
    assert dest.read_bytes() == PAYLOAD
    assert server.requests[-1] == ("/f.bin", f"bytes={len(PAYLOAD)}-")


def test_fetch_tries_the_next_url_after_a_404(server, tmp_path):
    server.routes["/mirror.bin"] = "ok"
    urls = [server.url("/missing.bin"), server.url("/mirror.bin")]
    dest = fetch(urls, DIGEST, tmp_path / "f.bin", **FAST)
    assert dest.read_bytes() == PAYLOAD
    assert [p for p, _ in server.requests] == ["/missing.bin", "/mirror.bin"]


def test_fetch_retries_server_errors_then_names_every_failure(server, tmp_path):
    server.routes["/f.bin"] = "500"
    with pytest.raises(DownloadError, match="HTTP 500") as err:
        fetch([server.url("/f.bin")], DIGEST, tmp_path / "f.bin", **FAST)
    assert not isinstance(err.value, ChecksumError)
    assert len(server.requests) == FAST["retries"] + 1
    assert not (tmp_path / "f.bin").exists()


def test_fetch_keeps_a_verified_file(server, tmp_path):
    (tmp_path / "f.bin").write_bytes(PAYLOAD)
    fetch([server.url("/f.bin")], DIGEST, tmp_path / "f.bin", **FAST)
    assert server.requests == []


def test_fetch_replaces_a_file_with_the_wrong_digest(server, tmp_path):
    server.routes["/f.bin"] = "ok"
    (tmp_path / "f.bin").write_bytes(b"stale")
    with pytest.warns(UserWarning, match="downloading it again"):
        fetch([server.url("/f.bin")], DIGEST, tmp_path / "f.bin", **FAST)
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD


@pytest.mark.parametrize("sha, urls", [("abc", ["http://x/f"]), (DIGEST, []), (DIGEST, ["ftp://x/f"])])
def test_fetch_rejects_bad_arguments(tmp_path, sha, urls):
    with pytest.raises(ValueError):
        fetch(urls, sha, tmp_path / "f.bin", **FAST)


def _dataset(server, sha256=None):
    """A served data set of three files, one a zip; ``sha256``: name -> digest in the entry."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("top/a.txt", b"inside")
    bodies = {"a.bin": PAYLOAD, "b.bin": PAYLOAD[::-1], "c.zip": archive.getvalue()}
    for name, body in bodies.items():
        server.routes[f"/{name}"] = "ok"
        server.bodies[f"/{name}"] = body
    entry = {"format": "pairs", "source": "download", "files": [
        {"name": name, "sha256": (sha256 or {}).get(name), "urls": [server.url(f"/{name}")]}
        for name in bodies]}
    return validate_entry("set", entry)["files"], {n: hashlib.sha256(b).hexdigest() for n, b in bodies.items()}


def test_null_digests_are_trusted_on_first_use_recorded_and_then_verified(server, tmp_path):
    files, digests = _dataset(server)
    raw, sums = tmp_path / "raw", tmp_path / "checksums" / "set.sha256"
    with pytest.warns(FirstUseWarning) as caught:
        assert download_files(files, raw, sums, **FAST) == digests
    warned = sorted(str(w.message) for w in caught if w.category is FirstUseWarning)
    assert len(warned) == 3  # one run, every file, each named with its digest
    for message, name in zip(warned, sorted(digests)):
        assert f"{raw / name}: no sha256 was recorded" in message and digests[name] in message
    assert sums.read_text() == "".join(f"{digests[n]}  {n}\n" for n in sorted(digests))  # sha256sum -c
    assert read_checksums(sums) == digests
    assert (raw / "b.bin").read_bytes() == PAYLOAD[::-1] and (raw / "top" / "a.txt").read_bytes() == b"inside"
    assert not list(raw.glob("*.part"))
    # a later run verifies against the record: no request, no warning
    served = len(server.requests)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert download_files(files, raw, sums, **FAST) == digests
    assert len(server.requests) == served


def test_a_changed_file_on_the_server_fails_against_the_record_naming_both_digests(server, tmp_path):
    files, digests = _dataset(server)
    sums = tmp_path / "set.sha256"
    with pytest.warns(FirstUseWarning):
        download_files(files, tmp_path / "first", sums, **FAST)
    server.bodies["/b.bin"] = server.bodies["/c.zip"] = b"changed" * 50
    with pytest.raises(ChecksumError) as err:  # a fresh machine: nothing downloaded yet
        download_files(files, tmp_path / "again", sums, **FAST)
    message, changed = str(err.value), hashlib.sha256(b"changed" * 50).hexdigest()
    assert "2 of 3 file(s) not verified" in message
    for name in ("b.bin", "c.zip"):  # every failure at once, with both digests
        assert f"expected {digests[name]}, got {changed}" in message
    assert (tmp_path / "again" / "a.bin").read_bytes() == PAYLOAD
    assert not (tmp_path / "again" / "b.bin").exists() and not (tmp_path / "again" / "top").exists()
    assert read_checksums(sums) == digests  # the record is not overwritten by the changed file


def test_a_digest_given_in_the_entry_is_checked_on_the_first_download(server, tmp_path):
    files, digests = _dataset(server, {"a.bin": "0" * 64})
    with pytest.raises(ChecksumError, match=f"expected {'0' * 64}, got {digests['a.bin']}"), \
            pytest.warns(FirstUseWarning):  # b.bin and c.zip are still fetched in the same run
        download_files(files, tmp_path / "raw", tmp_path / "set.sha256", **FAST)
    assert "a.bin" not in read_checksums(tmp_path / "set.sha256")
    # the entry and the record disagreeing is an error naming both, before any download
    (tmp_path / "set.sha256").write_text(f"{'1' * 64}  a.bin\n")
    served = len(server.requests)
    with pytest.raises(ChecksumError, match=f"config records sha256 {'0' * 64} but .* records {'1' * 64}"):
        download_files(files[:1], tmp_path / "raw", tmp_path / "set.sha256", **FAST)
    assert len(server.requests) == served


def test_strict_mode_refuses_unknown_digests_listing_every_one(server, tmp_path):
    files, digests = _dataset(server, {"a.bin": DIGEST})
    raw, sums = tmp_path / "raw", tmp_path / "set.sha256"
    with pytest.raises(UnverifiedDownloadError) as err:
        download_files(files, raw, sums, strict=True, **FAST)
    message = str(err.value)
    assert "2 of 3 file(s) not verified" in message and "strict mode" in message
    assert f"{digests['b.bin']}  b.bin" in message and f"{digests['c.zip']}  c.zip" in message
    assert sorted(p.name for p in raw.iterdir()) == ["a.bin", "b.bin.part", "c.zip.part"]  # unused
    assert read_checksums(sums) == {"a.bin": DIGEST}
    # recording the digests the error gave (as a user would) lets the kept downloads through
    sums.write_text(sums.read_text() + "".join(line.strip() + "\n" for line in message.splitlines()[-2:]))
    assert download_files(files, raw, sums, strict=True, **FAST) == digests
    assert (raw / "top" / "a.txt").read_bytes() == b"inside"


def test_a_malformed_checksum_file_is_named(tmp_path):
    (tmp_path / "set.sha256").write_text(f"{DIGEST}  a.bin\nnot-a-digest  b.bin\n")
    with pytest.raises(ValueError, match=r"set.sha256:2: sha256 of b.bin: expected 64 hexadecimal"):
        read_checksums(tmp_path / "set.sha256")


def _zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members:
            zf.writestr(zipfile.ZipInfo(name), data)
    return path


def _tar(path, members):
    """members: (name, data) files, or (name, ('sym'|'hard', target)) links."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if isinstance(data, tuple):
                info.type = tarfile.SYMTYPE if data[0] == "sym" else tarfile.LNKTYPE
                info.linkname = data[1]
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def test_extract_zip_and_tar(tmp_path):
    members = [("top/a.txt", b"a"), ("top/sub/b.txt", b"b")]
    for archive in (_zip(tmp_path / "x.zip", members), _tar(tmp_path / "x.tar.gz", members)):
        target = extract(archive, tmp_path / archive.name.split(".")[0] / archive.suffix[1:])
        assert (target / "top" / "a.txt").read_bytes() == b"a"
        assert (target / "top" / "sub" / "b.txt").read_bytes() == b"b"
    assert not [p for p in tmp_path.rglob("*") if ".extract" in p.name]


def test_extract_merges_into_an_existing_folder(tmp_path):
    target = tmp_path / "raw"
    target.mkdir()
    (target / "keep.txt").write_text("kept")
    extract(_zip(tmp_path / "x.zip", [("top/a.txt", b"a")]), target)
    assert (target / "keep.txt").read_text() == "kept"
    assert (target / "top" / "a.txt").read_bytes() == b"a"


def test_extract_keeps_links_that_stay_inside(tmp_path):
    archive = _tar(tmp_path / "x.tar.gz", [("d/a.txt", b"a"), ("d/link", ("sym", "a.txt"))])
    target = extract(archive, tmp_path / "out")
    assert (target / "d" / "link").read_bytes() == b"a"


@pytest.mark.parametrize(
    "kind, member",
    [
        ("zip", ("../x", b"evil")),
        ("zip", ("/abs", b"evil")),
        ("tar", ("../x", b"evil")),
        ("tar", ("/abs", b"evil")),
        ("tar", ("inner/../../x", b"evil")),
        ("tar", ("link", ("sym", "../../outside"))),
        ("tar", ("link", ("sym", "/etc/passwd"))),
        ("tar", ("link", ("hard", "../outside"))),
    ],
)
def test_extract_refuses_members_that_escape(tmp_path, kind, member):
    build = _zip if kind == "zip" else _tar
    archive = build(tmp_path / f"bad.{'zip' if kind == 'zip' else 'tar.gz'}", [("ok.txt", b"ok"), member])
    with pytest.raises(UnsafeArchiveError, match=repr(member[0]).replace(".", r"\.")):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "x").exists()
    assert not [p for p in tmp_path.iterdir() if ".extract" in p.name]


def test_extract_refuses_a_zip_symlink_that_escapes(tmp_path):
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = (0o120777 << 16)  # a symlink, as zip -y stores it
        zf.writestr(info, "../../etc/passwd")
    with pytest.raises(UnsafeArchiveError, match="'link'"):
        extract(archive, tmp_path / "out")


def test_extract_rejects_a_file_that_is_no_archive(tmp_path):
    (tmp_path / "x.zip").write_bytes(b"plain text")
    with pytest.raises(ValueError, match="not a zip or tar"):
        extract(tmp_path / "x.zip", tmp_path / "out")
