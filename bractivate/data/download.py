"""Checksummed, resumable, atomic downloads and safe archive extraction (docs/data.md).

``fetch`` streams a file over HTTP(S) to ``<dest>.part`` beside the destination, resumes that
partial file with a ``Range`` request after a dropped connection, retries each URL with
exponential back-off before moving on to the next mirror, and renames the partial file to
``dest`` only once its SHA-256 matches the one recorded for it. So a file at ``dest`` is
always complete and verified, or (``trust_first_use``) its digest is recorded from then on.

``download_files`` fetches every file of one data set in one run, checks each against the
digest in the config or in the data set's checksum file (``<sha256>  <name>`` lines, as
``sha256sum`` writes them), records the digest of a file that had none (trust on first use, with
a :class:`FirstUseWarning`), or in strict mode keeps such files unused and reports every missing
digest at once (docs/data.md).

``extract`` unpacks a zip or tar archive after checking every member: absolute paths, ``..``
components, links that point outside the target and special files are refused, naming the
member. Members are unpacked into a temporary folder and renamed into place.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import socket
import stat
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
import zipfile
from pathlib import Path, PurePosixPath
from typing import Iterable

from tqdm import tqdm

from bractivate.errors import UserError
from bractivate.io import write_text

CHUNK = 1 << 20
USER_AGENT = "bractivate/0.1 (Python urllib)"


class DownloadError(UserError, RuntimeError):
    """Every URL of a file failed; the message lists what happened at each."""


class ChecksumError(DownloadError):
    """A downloaded file does not have the SHA-256 recorded in the config."""


class UnverifiedDownloadError(DownloadError):
    """No SHA-256 is recorded for a file, so it is downloaded but never put in place.

    ``sha256`` is the digest of the download kept at ``part`` (None when several files are
    reported at once)."""

    def __init__(self, message: str, sha256: str | None = None, part: Path | None = None):
        super().__init__(message)
        self.sha256, self.part = sha256, part


class FirstUseWarning(UserWarning):
    """A file without a recorded SHA-256 was trusted on first use and its digest recorded."""


class UnsafeArchiveError(ValueError):
    """An archive member would land outside the extraction folder."""


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def check_sha256(value: str, what: str = "sha256") -> str:
    """Return ``value`` lower-cased if it is 64 hex digits, else raise ``ValueError``."""
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", value):
        raise ValueError(f"{what}: expected 64 hexadecimal digits, got {value!r}")
    return value.lower()


class _Retryable(Exception):
    """A failure worth trying the same URL again for (network trouble, 5xx, short body)."""


def _download_once(url: str, part: Path, timeout: float, progress: bool) -> None:
    """One HTTP request appending to ``part``; resumes from its size with a Range header."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:
            return  # the partial file is already whole; the checksum decides
        if err.code >= 500 or err.code in (408, 429):
            raise _Retryable(f"HTTP {err.code} {err.reason}") from err
        raise
    except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
        raise _Retryable(str(getattr(err, "reason", err)) or repr(err)) from err
    with response:
        if offset and response.status != 206:
            offset = 0  # the server ignored the Range header: start over
        elif offset and not response.headers.get("Content-Range", "").startswith(f"bytes {offset}-"):
            part.unlink()
            raise _Retryable(f"server answered Range {offset}- with {response.headers.get('Content-Range')!r}")
        length = response.headers.get("Content-Length")
        expected = int(length) if length is not None else None
        received = 0
        with open(part, "ab" if offset else "wb") as fh, tqdm(
            total=None if expected is None else offset + expected, initial=offset,
            unit="B", unit_scale=True, desc=part.name.removesuffix(".part"), disable=not progress,
        ) as bar:
            try:
                while block := response.read(CHUNK):
                    fh.write(block)
                    received += len(block)
                    bar.update(len(block))
            except (http.client.HTTPException, OSError, socket.timeout) as err:
                raise _Retryable(f"connection lost after {offset + received} bytes ({err!r})") from err
    if expected is not None and received < expected:
        raise _Retryable(f"connection closed after {received} of {expected} bytes")


def fetch(
    urls: str | Iterable[str],
    sha256: str | None,
    dest: str | os.PathLike,
    *,
    retries: int = 3,
    backoff: float = 1.0,
    timeout: float = 60,
    progress: bool = True,
    trust_first_use: bool = False,
) -> Path:
    """Download ``dest`` from the first URL that works and verify its SHA-256 (docs/data.md).

    Each URL is tried ``1 + retries`` times with back-off ``backoff * 2**k`` seconds on network
    errors and 5xx answers; a 4xx answer or a checksum mismatch moves on to the next URL. A file
    already at ``dest`` with the right digest is kept and nothing is downloaded.

    ``sha256=None`` (no digest recorded yet) downloads the file but keeps it at ``<dest>.part``
    and raises :class:`UnverifiedDownloadError` giving its digest, to be checked and recorded;
    the next call with that digest then finds the whole file there and only verifies it.
    With ``trust_first_use`` such a file is put in place instead (a file already there is kept);
    the caller records its digest.
    """
    urls = [urls] if isinstance(urls, str) else list(urls)
    if not urls:
        raise ValueError(f"{dest}: no URL to download from")
    if sha256 is not None:
        sha256 = check_sha256(sha256, f"{dest}: sha256")
    for url in urls:
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"{dest}: URL {url!r} is not http:// or https://")
    dest = Path(dest)
    if dest.exists():
        found = sha256_file(dest)
        if found == sha256 or (sha256 is None and trust_first_use):
            return dest
        if sha256 is None:
            raise UnverifiedDownloadError(
                f"{dest}: no sha256 recorded for this file; it has sha256 {found}: check it against "
                "the publisher and record it in the config", found, dest,
            )
        warnings.warn(f"{dest}: sha256 is {found}, expected {sha256}; downloading it again")
        dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    failures: list[str] = []
    mismatches = 0
    for url in urls:
        for attempt in range(retries + 1):
            try:
                _download_once(url, part, timeout, progress)
            except _Retryable as err:
                failures.append(f"{url}: attempt {attempt + 1}: {err}")
                if attempt < retries:
                    time.sleep(backoff * 2**attempt)
                continue
            except urllib.error.HTTPError as err:
                failures.append(f"{url}: HTTP {err.code} {err.reason}")
                break
            found = sha256_file(part)
            if sha256 is None and not trust_first_use:
                raise UnverifiedDownloadError(
                    f"{dest.name}: no sha256 recorded for this file; {url} gave sha256 {found}. "
                    f"Check it against the publisher and record it in the config; the download is "
                    f"kept at {part} and is used once the digest is recorded.", found, part,
                )
            if sha256 is None or found == sha256:
                os.replace(part, dest)
                return dest
            part.unlink()
            mismatches += 1
            failures.append(f"{url}: sha256 mismatch: expected {sha256}, got {found}")
            break
    error = ChecksumError if mismatches == len(urls) else DownloadError
    raise error(f"{dest.name}: download failed from every URL:\n  " + "\n  ".join(failures))


def read_checksums(path: str | os.PathLike) -> dict[str, str]:
    """``{name: sha256}`` from a checksum file of ``<sha256>  <name>`` lines; ``{}`` if absent."""
    path = Path(path)
    if not path.is_file():
        return {}
    digests = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        digest, _, name = line.partition(" ")
        name = name.strip().removeprefix("*")  # sha256sum's binary-mode marker
        if not name:
            raise ValueError(f"{path}:{number}: expected '<sha256>  <file name>', got {line!r}")
        digests[name] = check_sha256(digest, f"{path}:{number}: sha256 of {name}")
    return digests


def write_checksums(path: str | os.PathLike, digests: dict[str, str]) -> None:
    """Write ``digests`` as a checksum file that ``sha256sum -c`` reads, atomically."""
    write_text(path, "".join(f"{digests[name]}  {name}\n" for name in sorted(digests)))


def download_files(
    files: list[dict],
    raw_dir: str | os.PathLike,
    checksums: str | os.PathLike,
    *,
    strict: bool = False,
    progress: bool = False,
    **fetch_options,
) -> dict[str, str]:
    """Fetch and unpack every file of one data set into ``raw_dir``; return ``{name: sha256}``.

    ``files`` are validated entries (``name``, ``sha256``, ``urls``, ``extract``, ``into``). A
    file's digest is the one in its entry or, failing that, the one recorded in ``checksums``
    (the two must agree). Every file is attempted before anything is raised, so one run reports
    every problem. A file without a digest is trusted on first use: put in place, its digest
    written to ``checksums`` and a :class:`FirstUseWarning` issued naming file and digest. With
    ``strict`` it is kept at ``<name>.part`` instead, unused, and one
    :class:`UnverifiedDownloadError` lists every such file with its digest. Verified digests are
    written to ``checksums`` as soon as each file is done, so a later failure keeps them.
    Archives are unpacked once every file is verified (a ``.<name>.extracted`` marker holding
    the archive's digest stops a second run from unpacking again).
    """
    raw_dir, checksums = Path(raw_dir), Path(checksums)
    recorded = read_checksums(checksums)
    digests: dict[str, str] = {}
    problems: list[str] = []
    unverified: list[str] = []
    kinds: set[type] = set()
    for item in files:
        name, dest = item["name"], raw_dir / item["name"]
        expected = item["sha256"] or recorded.get(name)
        if item["sha256"] and recorded.get(name, item["sha256"]) != item["sha256"]:
            kinds.add(ChecksumError)
            problems.append(f"{name}: the config records sha256 {item['sha256']} but {checksums} records "
                            f"{recorded[name]}; correct or delete the wrong one")
            continue
        try:
            fetch(item["urls"], expected, dest, progress=progress,
                  trust_first_use=not strict, **fetch_options)
        except UnverifiedDownloadError as err:
            kinds.add(UnverifiedDownloadError)
            unverified.append(f"{err.sha256}  {name}")
            continue
        except DownloadError as err:
            kinds.add(type(err))
            problems.append(str(err))
            continue
        digests[name] = expected or sha256_file(dest)
        if expected is None:
            warnings.warn(FirstUseWarning(
                f"{dest}: no sha256 was recorded; trusted on first use, sha256 {digests[name]} "
                f"recorded in {checksums} (check it against the publisher; later runs verify against it)"
            ), stacklevel=2)
        if recorded.get(name) != digests[name]:
            recorded[name] = digests[name]
            write_checksums(checksums, recorded)
    if unverified:
        problems.append(
            f"no sha256 recorded for {len(unverified)} file(s), and strict mode refuses unknown digests; "
            f"each is kept at <name>.part in {raw_dir}, unused. Check these digests against the "
            f"publisher and add the lines to {checksums} (or set the config's sha256), then run "
            f"again; or set downloads.strict: false to trust them on first use:\n    "
            + "\n    ".join(unverified)
        )
    if problems:
        error = kinds.pop() if len(kinds) == 1 else DownloadError
        raise error(f"{raw_dir}: {len(files) - len(digests)} of {len(files)} file(s) not verified:\n  "
                    + "\n  ".join(problems))
    for item in files:
        if not item["extract"]:
            continue
        done = raw_dir / f".{item['name']}.extracted"
        if done.is_file() and done.read_text().strip() == digests[item["name"]]:
            continue
        extract(raw_dir / item["name"], raw_dir / item["into"])
        write_text(done, digests[item["name"]] + "\n")
    return digests


def _member_escapes(name: str) -> str | None:
    """Why the archive path ``name`` may not be unpacked, or None if it may."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return "absolute path"
    if ".." in re.split(r"[\\/]", name):
        return "'..' path component"
    return None


def _link_escapes(target: Path, member_dir: PurePosixPath, link: str, relative_to_member: bool) -> bool:
    """True when a link to ``link`` would resolve outside ``target``."""
    if link.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", link):
        return True
    base = target / member_dir if relative_to_member else target
    resolved = os.path.normpath(base / link)
    return os.path.commonpath([resolved, os.path.normpath(target)]) != os.path.normpath(target)


def _check_tar(tar: tarfile.TarFile, archive: Path, target: Path) -> None:
    for member in tar.getmembers():
        why = _member_escapes(member.name)
        if why is None and member.issym():
            if _link_escapes(target, PurePosixPath(member.name).parent, member.linkname, True):
                why = f"symlink to {member.linkname!r} points outside the target"
        elif why is None and member.islnk():
            if _link_escapes(target, PurePosixPath("."), member.linkname, False):
                why = f"hard link to {member.linkname!r} points outside the target"
        elif why is None and not (member.isfile() or member.isdir()):
            why = "special file (device or FIFO)"
        if why:
            raise UnsafeArchiveError(f"{archive}: refusing member {member.name!r}: {why}")


def _check_zip(zf: zipfile.ZipFile, archive: Path, target: Path) -> None:
    for info in zf.infolist():
        why = _member_escapes(info.filename)
        if why is None and stat.S_ISLNK(info.external_attr >> 16):
            link = zf.read(info).decode("utf-8", "replace")
            if _link_escapes(target, PurePosixPath(info.filename).parent, link, True):
                why = f"symlink to {link!r} points outside the target"
        if why:
            raise UnsafeArchiveError(f"{archive}: refusing member {info.filename!r}: {why}")


def extract(archive: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Unpack a zip or tar(.gz/.bz2/.xz) ``archive`` into the folder ``target`` (docs/data.md).

    Every member is checked first; an unsafe one raises :class:`UnsafeArchiveError` naming it and
    nothing is unpacked. Members go to a temporary folder beside ``target``, which is renamed to
    ``target`` when that does not exist yet; otherwise each top-level entry is renamed into
    ``target``, replacing an entry of the same name.
    """
    archive, target = Path(archive), Path(target)
    if not archive.is_file():
        raise FileNotFoundError(f"{archive}: archive not found")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".extract", dir=target.parent))
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                _check_zip(zf, archive, tmp)
                zf.extractall(tmp)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tar:
                _check_tar(tar, archive, tmp)
                tar.extractall(tmp, filter="data")
        else:
            raise ValueError(f"{archive}: not a zip or tar archive")
        if not target.exists():
            os.rename(tmp, target)
            return target
        for entry in tmp.iterdir():
            dest = target / entry.name
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest)
            elif dest.exists() or dest.is_symlink():
                dest.unlink()
            os.rename(entry, dest)
        return target
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
