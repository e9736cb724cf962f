"""No production code asks a stored file for a local path: on S3 there is none, and on several hosts with
local disks it would be another host's. Work that needs a local file takes core.filecache's copy."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("core", "accounts", "trades", "scripts_runner", "etl", "analyzer", "backtest", "config")
FORBIDDEN = [
    (re.compile(r"\b\w*storage\w*\.path\("), "a storage's .path()"),
    (re.compile(r"\.(file|field|fieldfile)\.path\b"), "a FieldFile's .path"),
    (re.compile(r"\bMEDIA_ROOT\b"), "MEDIA_ROOT (local disk only)"),
]
# Settings define MEDIA_ROOT; the job reporter strips it (with other host folders) from error texts.
ALLOWED = {("config/settings.py", "MEDIA_ROOT (local disk only)"), ("config/settings_test.py", "MEDIA_ROOT (local disk only)"),
           ("core/jobkit.py", "MEDIA_ROOT (local disk only)")}


def _production_files():
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            if "/tests/" in rel or "/migrations/" in rel:
                continue
            yield rel, path.read_text()


def test_no_code_asks_a_stored_file_for_its_local_path():
    found = []
    for rel, text in _production_files():
        for number, line in enumerate(text.splitlines(), start=1):
            for pattern, what in FORBIDDEN:
                if pattern.search(line) and (rel, what) not in ALLOWED:
                    found.append(f"{rel}:{number}: {what}: {line.strip()}")
    assert found == []


def test_the_check_finds_what_it_looks_for():
    lines = ["x = default_storage.path(name)", "frame = parse(job.file.path)", "root = settings.MEDIA_ROOT"]
    assert [what for line in lines for pattern, what in FORBIDDEN if pattern.search(line)] == [
        "a storage's .path()", "a FieldFile's .path", "MEDIA_ROOT (local disk only)"]
