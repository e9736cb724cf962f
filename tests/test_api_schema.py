"""The API says what it does: schemathesis, with all its checks, finds no contract problem.

schemathesis (its command line, as anyone would run it) tests a real server on the test database
from the OpenAPI schema: every status, content type, header and body must be documented, every
request the schema allows must be accepted and every one it forbids refused, deleted objects must
be gone, credentials must be checked, and neither of two users may read the other's objects.
tests/schemathesis.toml holds the run's settings and says why wherever it adds something.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import PASSWORD, api_token

CONFIG = Path(__file__).with_name("schemathesis.toml")
ST = Path(sys.executable).with_name("st")


@pytest.fixture
def contract_env(live_platform, make_user, tmp_path):
    """The data and identities the run needs, as the environment tests/schemathesis.toml reads."""
    from accounts.services import token_create
    from backtest import market_services
    from etl.models import Branch, FileSource

    # The worker is not needed to answer API requests; without it queued jobs simply wait.
    live_platform.stop_worker()
    source = FileSource.objects.create(
        name="contract source", kind=FileSource.Kind.HTTP,
        # Nothing is fetched (no worker runs); the address would refuse anyway.
        list_url_template="http://127.0.0.1:9/{branch}/{pos}/{date}/", download_url_template="http://127.0.0.1:9/{name}",
    )
    Branch.objects.create(code="B01", name="Contract branch", source=source)
    instrument = market_services.instrument_create(symbol="BTCUSDT", kind="crypto", exchange="BINANCE")
    market_services.bars_generate(instrument=instrument, interval="1h", bars=300, start="2024-01-01", seed=1)

    identities = {
        "alice": make_user("alice"), "bob": make_user("bob"),
        "admin": make_user("admin1", is_admin=True), "root": make_user("root", is_root=True),
    }
    spare = make_user("spare")
    spare_token, _ = token_create(user=identities["alice"], name="spare")
    wfc = tmp_path / "auth.json"
    wfc.write_text(json.dumps({"auth": [
        {"name": name, "fixedHeaders": [{"name": "Authorization", "value": f"Token {api_token(user)}"}]}
        for name, user in identities.items()
    ]}))
    return {
        **os.environ, "CONTRACT_WFC": str(wfc), "CONTRACT_SPARE_USER": str(spare.pk),
        "CONTRACT_SPARE_TOKEN": str(spare_token.pk),
        "CONTRACT_BRANCH": "B01", "CONTRACT_SOURCE": source.name, "CONTRACT_SYMBOL": instrument.symbol,
        "CONTRACT_LOGIN": "alice", "CONTRACT_PASSWORD": PASSWORD,
    }


# Two halves of the API, so that `pytest -n 2` runs them side by side (each on its own server).
GROUPS = {
    "accounts-trades-scripts-analyzer": r"^/api/(auth|users|health|trades|scripts|runs|analyzer)/",
    "etl-market-backtest": r"^/api/(etl|market|backtest)/",
}


def test_every_operation_is_in_a_group(client, db):
    paths = client.get("/api/schema/?format=json").json()["paths"]
    left_out = [path for path in paths if not any(re.match(pattern, path) for pattern in GROUPS.values())]
    assert not left_out, f"add these to a group of GROUPS: {left_out}"


@pytest.mark.e2e
@pytest.mark.parametrize("group", list(GROUPS))
def test_api_contract_holds(live_platform, contract_env, tmp_path, report, group):
    reports = tmp_path / "reports"
    command = [
        str(ST), "--config-file", str(CONFIG), "run", f"{live_platform.url}/api/schema/",
        "--checks", "all", "--include-path-regex", GROUPS[group],
        "--no-color", "--report", "json", "--report-dir", str(reports),
    ]
    done = subprocess.run(command, env=contract_env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    summary = json.loads(next(reports.glob("json-*.json")).read_text())
    tested = summary["operations"]["tested"]
    report(f"schemathesis {group}: {tested} operations, {summary['test_cases']['generated']} requests, "
           f"{summary['test_cases']['unique_failures']} contract problems")
    assert summary["complete"] and summary["stop_reason"] == "completed", done.stdout[-3000:]
    assert tested == summary["operations"]["selected"] >= 20, done.stdout[-3000:]
    failures = [f"{f['code']} {f['title']}: {', '.join(map(str, f['operations']))}" for f in summary["failures"]]
    assert not failures and not summary["errors"], "\n".join(failures) + "\n\n" + done.stdout[-20000:]
    assert done.returncode == 0, done.stdout[-20000:]


def test_schema_and_docs_are_served_locally(client, db):
    schema_response = client.get("/api/schema/")
    assert schema_response.status_code == 200 and b"openapi" in schema_response.content
    docs = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in docs.lower()
    assert "cdn" not in docs.lower() and "https://" not in docs
