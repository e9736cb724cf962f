"""`/api/` answers with the API's sections and a link to its documentation, not a 404."""


def test_api_index_lists_sections_and_the_docs(db, user, auth_client):
    body = auth_client(user).get("/api/").json()
    assert body["docs"].endswith("/api/docs/") and body["schema"].endswith("/api/schema/")
    sections = body["sections"]
    for name in ("trades", "scripts", "etl", "backtest", "health"):
        assert name in sections, sorted(sections)
    assert "/api/trades/exports/" in sections["trades"]
    assert all("<" not in path for paths in sections.values() for path in paths)


def test_api_index_needs_credentials_like_the_rest(client, db):
    assert client.get("/api/").status_code == 401


def test_other_unknown_api_paths_are_still_json_404(client, db):
    response = client.get("/api/no-such-thing/")
    assert response.status_code == 404 and response.json() == {"detail": "Not found."}
