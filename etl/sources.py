"""Source adapters: where POS export files are listed and downloaded from.

Two implementations of one small interface:
- `HttpSource`: URL templates for the listing and the download, optional
  basic-auth credentials, timeouts, retries with exponential backoff on 5xx
  and connection errors, a per-host rate limit;
- `DirectorySource`: `<root>/<branch>/<pos>/<YYYYMMDD>/<files>` on a mounted share.

Everything a remote host says is untrusted: names must be plain file names,
links may not leave the host, sizes are capped while streaming.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time as time_module
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import quote, urljoin, urlsplit

import httpx

from etl import conf
from etl.parsing import is_safe_name


class SourceError(Exception):
    """The host answered but the answer is unusable (4xx, bad listing…)."""


class TransientSourceError(SourceError):
    """Network trouble or a 5xx that outlasted the retries: trying later may work."""


class FileTooLarge(SourceError):
    pass


@dataclass
class RemoteEntry:
    name: str
    size: int | None = None
    modified: str | None = None
    location: str = ""

    def as_dict(self) -> dict:
        return {"name": self.name, "size": self.size, "modified": self.modified}


@dataclass
class Listing:
    entries: list[RemoteEntry] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)


class Source(Protocol):
    #: Requests repeated after a transient error, for the job's counts.
    retries_used: int

    def list_files(self, *, branch: str, pos: int, work_date: date) -> Listing: ...

    def download(self, *, entry: RemoteEntry, out: BinaryIO, max_bytes: int) -> int: ...

    def close(self) -> None: ...


# --- rate limit ------------------------------------------------------------------
# Requests to one host are spaced at least 1/per_second apart (a token bucket holding one token).
# With Redis configured the spacing is shared by every worker process on every host, through one
# atomic script on Redis's own clock; on the embedded default it holds within the process.

_rate_lock = threading.Lock()
_next_slot: dict[str, float] = {}

# KEYS[1]: the host's next free slot, in microseconds of Redis's clock. ARGV[1]: the interval.
# Returns how long the caller waits for its slot, in microseconds.
_SHARED_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local slot = tonumber(redis.call('GET', KEYS[1]) or '0')
if slot < now then slot = now end
local after = slot + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%.0f', after), 'PX', math.ceil((after - now) / 1000) + 1000)
return slot - now
"""
_shared = threading.local()


def _shared_wait_seconds(host: str, interval: float) -> float | None:
    """The wait for this request's slot from the shared limiter; None when Redis is not configured
    or cannot be reached (then the process's own limiter spaces requests, and a warning says so)."""
    from django.conf import settings

    url = getattr(settings, "REDIS_URL", "")
    if not url:
        return None
    try:
        script = getattr(_shared, "script", None)
        if script is None or _shared.url != url:
            import redis

            client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
            _shared.script, _shared.url = client.register_script(_SHARED_SLOT), url
            script = _shared.script
        key = f"{settings.Q_CLUSTER_NAME}:etl:rate:{host}"
        return int(script(keys=[key], args=[int(interval * 1_000_000)])) / 1_000_000
    except Exception as exc:
        import logging

        logging.getLogger(__name__).warning("shared rate limit unavailable (%s); limiting within this process", exc)
        _shared.script = None
        return None


def _rate_wait(host: str, per_second: float) -> None:
    """Wait for this request's slot to `host`: at least 1/per_second after the one before."""
    if per_second <= 0:
        return
    interval = 1.0 / per_second
    wait = _shared_wait_seconds(host, interval)
    if wait is None:
        with _rate_lock:
            now = time_module.monotonic()
            slot = max(now, _next_slot.get(host, 0.0))
            _next_slot[host] = slot + interval
        wait = slot - now
    if wait > 0:
        time_module.sleep(wait)


# --- HTTP ----------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{(branch|pos|date|date_iso|name)\}")


def fill_template(template: str, **values: str) -> str:
    """Substitute the known placeholders only (URL-quoted); never str.format on operator text."""
    return _PLACEHOLDER.sub(lambda m: quote(str(values.get(m.group(1), "")), safe=""), template)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


class HttpSource:
    def __init__(
        self,
        *,
        list_url_template: str,
        download_url_template: str,
        listing_format: str = "json",
        username: str = "",
        password: str = "",
        timeout: float | None = None,
        retries: int | None = None,
        backoff: float | None = None,
        rate_limit: float | None = None,
    ):
        if not list_url_template or not download_url_template:
            raise SourceError("The HTTP source needs a listing URL template and a download URL template.")
        self.list_url_template = list_url_template
        self.download_url_template = download_url_template
        self.listing_format = listing_format
        self.retries = conf.HTTP_RETRIES if retries is None else retries
        self.backoff = conf.HTTP_BACKOFF if backoff is None else backoff
        self.rate_limit = conf.HTTP_RATE_LIMIT if rate_limit is None else rate_limit
        self.retries_used = 0
        auth = (username, password) if username else None
        self.client = httpx.Client(
            timeout=conf.HTTP_TIMEOUT if timeout is None else timeout,
            auth=auth,
            follow_redirects=False,
            headers={"User-Agent": "platform-etl/1"},
        )

    def close(self) -> None:
        self.client.close()

    # One request with retries; `consume(response)` reads the body inside the stream.
    def _request(self, url: str, consume):
        host = urlsplit(url).netloc
        last_error = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self.retries_used += 1
                time_module.sleep(self.backoff * (2 ** (attempt - 1)))
            _rate_wait(host, self.rate_limit)
            try:
                with self.client.stream("GET", url) as response:
                    if response.status_code >= 500:
                        last_error = f"HTTP {response.status_code} from {host}"
                        continue
                    return consume(response)
            except httpx.TimeoutException:
                last_error = f"timed out talking to {host}"
            except httpx.TransportError as exc:
                last_error = f"cannot reach {host}: {type(exc).__name__}"
        raise TransientSourceError(f"{last_error} (after {self.retries + 1} attempts)")

    def _values(self, branch: str, pos: int, work_date: date) -> dict:
        return {"branch": branch, "pos": str(pos), "date": work_date.strftime("%Y%m%d"), "date_iso": work_date.isoformat()}

    def list_files(self, *, branch: str, pos: int, work_date: date) -> Listing:
        values = self._values(branch, pos, work_date)
        url = fill_template(self.list_url_template, **values)

        def read(response: httpx.Response):
            if response.status_code == 404:
                return None
            if response.status_code >= 300:
                raise SourceError(f"listing answered HTTP {response.status_code}")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > conf.MAX_LISTING_BYTES:
                    raise SourceError(f"listing is larger than {conf.MAX_LISTING_BYTES} bytes")
            return bytes(body)

        body = self._request(url, read)
        listing = Listing()
        if body is None:
            return listing
        for item in self._parse_listing(body):
            self._add_entry(listing, item, values, base_url=url)
        return listing

    def _parse_listing(self, body: bytes) -> list:
        text = body.decode("utf-8", errors="replace")
        if self.listing_format == "json":
            try:
                data = json.loads(text)
            except ValueError as exc:
                raise SourceError(f"listing is not valid JSON: {exc}") from None
            if isinstance(data, dict):
                data = data.get("files", [])
            if not isinstance(data, list):
                raise SourceError("JSON listing must be a list of files or an object with a 'files' list")
            items = data
        else:
            items = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
        if len(items) > conf.MAX_LISTING_ENTRIES:
            raise SourceError(f"listing has {len(items)} entries; at most {conf.MAX_LISTING_ENTRIES} are accepted")
        return items

    def _add_entry(self, listing: Listing, item, values: dict, *, base_url: str) -> None:
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            listing.rejected.append({"name": str(item)[:100], "reason": "entry without a file name"})
            return
        name = item["name"].strip()
        if not is_safe_name(name):
            listing.rejected.append({"name": name[:100], "reason": "not a plain file name (points outside the host folder)"})
            return
        location = fill_template(self.download_url_template, name=name, **values)
        if item.get("url"):
            candidate = urljoin(base_url, str(item["url"]))
            if _origin(candidate) != _origin(location):
                listing.rejected.append({"name": name, "reason": "download link points outside the host"})
                return
            location = candidate
        size = item.get("size")
        size = size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None
        modified = item.get("modified")
        modified = str(modified)[:40] if modified is not None else None
        listing.entries.append(RemoteEntry(name=name, size=size, modified=modified, location=location))

    def download(self, *, entry: RemoteEntry, out: BinaryIO, max_bytes: int) -> int:
        def read(response: httpx.Response) -> int:
            if response.status_code != 200:
                raise SourceError(f"download of {entry.name} answered HTTP {response.status_code}")
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise FileTooLarge(f"{entry.name} is {declared} bytes; the cap is {max_bytes}")
            out.seek(0)
            out.truncate()
            total = 0
            for chunk in response.iter_bytes():
                total += len(chunk)
                if total > max_bytes:
                    raise FileTooLarge(f"{entry.name} is larger than the cap of {max_bytes} bytes")
                out.write(chunk)
            return total

        return self._request(entry.location, read)


# --- directory -------------------------------------------------------------------


class DirectorySource:
    def __init__(self, *, root: str):
        if not root or not os.path.isabs(root):
            raise SourceError("The directory source needs an absolute root path.")
        self.root = Path(root).resolve()
        self.retries_used = 0

    def close(self) -> None:
        pass

    def _inside(self, path: Path) -> bool:
        try:
            path.resolve().relative_to(self.root)
            return True
        except (ValueError, OSError):
            return False

    def list_files(self, *, branch: str, pos: int, work_date: date) -> Listing:
        listing = Listing()
        day_dir = self.root / branch / str(pos) / work_date.strftime("%Y%m%d")
        if not self._inside(day_dir):
            raise SourceError("branch folder points outside the source root")
        if not day_dir.is_dir():
            if not self.root.is_dir():
                raise TransientSourceError(f"source root {self.root} is not reachable")
            return listing
        with os.scandir(day_dir) as it:
            items = sorted(it, key=lambda e: e.name)
        if len(items) > conf.MAX_LISTING_ENTRIES:
            raise SourceError(f"folder has {len(items)} entries; at most {conf.MAX_LISTING_ENTRIES} are accepted")
        for item in items:
            path = Path(item.path)
            if not is_safe_name(item.name):
                listing.rejected.append({"name": item.name[:100], "reason": "not a plain file name"})
            elif item.is_symlink() and not self._inside(path):
                listing.rejected.append({"name": item.name, "reason": "link points outside the source root"})
            elif item.is_file():
                stat = item.stat()
                modified = time_module.strftime("%Y-%m-%dT%H:%M:%S", time_module.gmtime(stat.st_mtime))
                listing.entries.append(RemoteEntry(name=item.name, size=stat.st_size, modified=modified, location=str(path)))
        return listing

    def download(self, *, entry: RemoteEntry, out: BinaryIO, max_bytes: int) -> int:
        path = Path(entry.location)
        if not self._inside(path):
            raise SourceError(f"{entry.name} points outside the source root")
        try:
            size = path.stat().st_size
            if size > max_bytes:
                raise FileTooLarge(f"{entry.name} is {size} bytes; the cap is {max_bytes}")
            total = 0
            out.seek(0)
            out.truncate()
            with path.open("rb") as src:
                while chunk := src.read(1024 * 1024):
                    total += len(chunk)
                    if total > max_bytes:
                        raise FileTooLarge(f"{entry.name} is larger than the cap of {max_bytes} bytes")
                    out.write(chunk)
        except FileNotFoundError:
            raise SourceError(f"{entry.name} vanished before it was read") from None
        except OSError as exc:
            raise TransientSourceError(f"cannot read {entry.name}: {exc.strerror or exc}") from None
        return total


def source_for(file_source) -> Source:
    """The adapter for a `FileSource` row."""
    if file_source is None:
        raise SourceError("The branch has no file source configured.")
    if file_source.kind == "directory":
        return DirectorySource(root=file_source.root_path)
    return HttpSource(
        list_url_template=file_source.list_url_template,
        download_url_template=file_source.download_url_template,
        listing_format=file_source.listing_format,
        username=file_source.username,
        password=file_source.password,
        timeout=file_source.timeout_seconds,
        retries=file_source.max_retries,
        rate_limit=file_source.rate_limit_per_second,
    )
