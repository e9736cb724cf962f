from django.contrib.staticfiles import finders


def test_favicon_points_at_the_platforms_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"].endswith("core/favicon.svg")
    icon = finders.find("core/favicon.svg")
    assert icon and open(icon).read().startswith("<svg")


def test_every_page_names_the_icon(client, user):
    client.force_login(user)
    assert 'rel="icon" href="/static/core/favicon.svg"' in client.get("/").content.decode()
