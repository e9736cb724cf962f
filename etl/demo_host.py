"""A real HTTP POS host on 127.0.0.1 serving a directory tree, with fault injection.

Serves `manage.py etl_demo --serve` (the demo's POS host) and the tests. Layout on disk:
`<root>/<branch>/<pos>/<YYYYMMDD>/<files>`; URLs:
- `GET /list/<branch>/<pos>/<YYYYMMDD>`  → JSON `{"files": [{"name", "size", "modified"}]}`
  (or plain text with `?format=text`);
- `GET /files/<branch>/<pos>/<YYYYMMDD>/<name>` → the bytes.

`faults` changes behaviour at run time: `fail_next` (answer 503 to the next N
requests), `delay` (seconds before answering), `listing` (a JSON value to
answer instead of the real listing), `status` (answer this status always).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


class _Handler(BaseHTTPRequestHandler):
    server: PosHostServer

    def log_message(self, *args):  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/octet-stream") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self):  # noqa: N802
        host = self.server
        with host.lock:
            host.requests.append(self.path)
            host.auth_headers.append(self.headers.get("Authorization", ""))
            faults = host.faults
            if faults.get("fail_next", 0) > 0:
                faults["fail_next"] -= 1
                fail = True
            else:
                fail = False
        if faults.get("delay"):
            time.sleep(faults["delay"])
        if fail:
            return self._send(503, b"busy", "text/plain")
        if faults.get("status"):
            return self._send(int(faults["status"]), b"error", "text/plain")
        parts = [unquote(p) for p in urlsplit(self.path).path.split("/") if p]
        if len(parts) == 4 and parts[0] == "list":
            if "listing" in faults:
                return self._send(200, json.dumps(faults["listing"]).encode(), "application/json")
            folder = host.root.joinpath(*parts[1:])
            if not folder.is_dir():
                return self._send(404, b"no such day", "text/plain")
            entries = [
                {"name": p.name, "size": p.stat().st_size, "modified": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(p.stat().st_mtime))}
                for p in sorted(folder.iterdir()) if p.is_file()
            ]
            if "format=text" in (urlsplit(self.path).query or ""):
                return self._send(200, "\n".join(e["name"] for e in entries).encode(), "text/plain")
            return self._send(200, json.dumps({"files": entries}).encode(), "application/json")
        if len(parts) == 5 and parts[0] == "files":
            path = host.root.joinpath(*parts[1:])
            try:
                path.resolve().relative_to(host.root.resolve())
            except ValueError:
                return self._send(403, b"outside", "text/plain")
            if not path.is_file():
                return self._send(404, b"not found", "text/plain")
            return self._send(200, path.read_bytes())
        return self._send(404, b"unknown", "text/plain")


class PosHostServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path, port: int = 0):
        super().__init__(("127.0.0.1", port), _Handler)
        self.root = Path(root)
        self.faults: dict = {}
        self.requests: list[str] = []
        self.auth_headers: list[str] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True, name="pos-host")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def list_template(self) -> str:
        return self.url + "/list/{branch}/{pos}/{date}"

    @property
    def download_template(self) -> str:
        return self.url + "/files/{branch}/{pos}/{date}/{name}"

    def start(self) -> PosHostServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
