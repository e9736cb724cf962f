"""The example production files under deploy/ are parsed and checked against the code they start:
systemd units name commands and options that exist, the environment file sets only variables the
settings read, and the nginx site upgrades websockets and passes what the platform relies on."""

import re
import shlex
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
SETTINGS = Path(__file__).resolve().parent.parent / "config" / "settings.py"


def systemd_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """systemd's unit syntax: sections, `Key=value` lines (a key may repeat), `#`/`;` comments,
    a trailing backslash continues a line."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    text = re.sub(r"\\\n", " ", path.read_text())
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{path.name}:{number}: a setting outside any section"
        key, sep, value = line.partition("=")
        assert sep and key.strip() and re.fullmatch(r"[A-Za-z]+", key.strip()), f"{path.name}:{number}: {line!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def settings_variables() -> set[str]:
    text = SETTINGS.read_text()
    return set(re.findall(r"env\.\w+\(\s*\"([A-Z0-9_]+)\"", text)) | set(re.findall(r"environ(?:\.get)?\(?\[?\"([A-Z0-9_]+)\"", text))


@pytest.mark.parametrize("name", ["platform-web.service", "platform-worker.service"])
def test_systemd_units_are_well_formed_and_restart_on_failure(name):
    unit = systemd_unit(DEPLOY / name)
    assert set(unit) == {"Unit", "Service", "Install"}
    service = unit["Service"]
    assert service["EnvironmentFile"] == ["/etc/platform/platform.env"]
    assert service["Restart"] == ["on-failure"]
    assert int(service["TimeoutStopSec"][0]) <= 30
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    assert len(service["ExecStart"]) == 1


def test_web_unit_starts_uvicorn_with_options_uvicorn_accepts():
    import uvicorn

    argv = shlex.split(systemd_unit(DEPLOY / "platform-web.service")["Service"]["ExecStart"][0])
    assert argv[0].endswith("/uvicorn")
    context = uvicorn.main.make_context("uvicorn", argv[1:])  # uvicorn's own command line: raises on an unknown option
    assert context.params["app"] == "config.asgi:application"
    assert context.params["proxy_headers"] is True  # X-Forwarded-Proto decides https behind nginx
    from importlib import import_module

    module, _, attribute = context.params["app"].partition(":")
    assert callable(getattr(import_module(module), attribute))


def test_worker_unit_runs_the_cluster_and_lets_it_stop_its_own_workers():
    from django.core.management import get_commands

    service = systemd_unit(DEPLOY / "platform-worker.service")["Service"]
    argv = shlex.split(service["ExecStart"][0])
    assert argv[1:] == ["manage.py", "qcluster"] and "qcluster" in get_commands()
    # SIGTERM to the main process only: the platform's cluster stops its workers itself, in time.
    assert service["KillMode"] == ["mixed"] and service["KillSignal"] == ["SIGTERM"]
    assert get_commands()["qcluster"] == "core"  # the platform's cluster, not django-q2's own
    from django.conf import settings

    assert int(service["TimeoutStopSec"][0]) >= settings.WORKER_STOP_SECONDS + 10
    # Each host is its own worker instance, under a name that survives restarts.
    assert service["Environment"] == ["WORKER_ID=%H"] and "WORKER_ID" in settings_variables()


def test_environment_file_sets_only_variables_the_settings_read():
    read = settings_variables()
    names = []
    for line in (DEPLOY / "platform.env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, sep, _ = line.partition("=")
            assert sep, line
            names.append(name.strip())
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "Q_CLUSTER_NAME", "DJANGO_ALLOWED_HOSTS"} <= set(names)
    assert not set(names) - read, f"not read by config/settings.py: {sorted(set(names) - read)}"
    assert "DJANGO_DEBUG=false" in (DEPLOY / "platform.env.example").read_text()


def _directives(block, name):
    return [d for d in block if d["directive"] == name]


def test_nginx_site_parses_upgrades_websockets_and_passes_the_scheme(tmp_path):
    crossplane = pytest.importorskip("crossplane")
    # A site file lives inside nginx's http block, as sites-enabled/ is included there.
    main = tmp_path / "nginx.conf"
    main.write_text(f"events {{}}\nhttp {{\n    include {DEPLOY / 'nginx-platform.conf'};\n}}\n")
    parsed = crossplane.parse(str(main), strict=True, check_ctx=True, check_args=True)
    assert parsed["status"] == "ok", parsed["errors"]
    site = next(c for c in parsed["config"] if c["file"].endswith("nginx-platform.conf"))
    top = site["parsed"]
    upstream = _directives(top, "upstream")[0]
    assert upstream["args"] == ["platform_web"] and _directives(upstream["block"], "server")
    servers = _directives(top, "server")
    tls = next(s for s in servers if any("ssl" in d["args"] for d in _directives(s["block"], "listen")))
    assert _directives(tls["block"], "client_max_body_size")[0]["args"] == ["1g"]
    locations = {tuple(d["args"]): d["block"] for d in _directives(tls["block"], "location")}
    ws, rest = locations[("/ws/",)], locations[("/",)]
    headers = {tuple(d["args"][:1]): d["args"][1] for d in _directives(ws, "proxy_set_header")}
    assert headers[("Upgrade",)] == "$http_upgrade" and headers[("Connection",)] == "upgrade"
    assert _directives(ws, "proxy_http_version")[0]["args"] == ["1.1"]
    from django.conf import settings

    forwarded = settings.SECURE_PROXY_SSL_HEADER[0].removeprefix("HTTP_").replace("_", "-").lower()
    for block in (ws, rest):
        assert _directives(block, "proxy_pass")[0]["args"] == ["http://platform_web"]
        set_headers = {d["args"][0].lower(): d["args"][1] for d in _directives(block, "proxy_set_header")}
        assert set_headers[forwarded] == "$scheme" and set_headers["host"] == "$host"
    plain = next(s for s in servers if s is not tls)
    plain_locations = {tuple(d["args"]): d["block"] for d in _directives(plain["block"], "location")}
    assert ("=", "/healthz") in plain_locations  # the load balancer's probe over plain HTTP
