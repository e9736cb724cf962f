"""Network is opt-in for everyone: an explicit grant, then a tick per run (API field `network`, page checkbox).

Root and admins hold every permission through `has_perm`; neither gets network
from that. Negative tests on every route that starts a run or shows one.
"""

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from scripts_runner import network, services
from scripts_runner.models import ScriptRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def script_of():
    def make(owner):
        services.script_access_set(user=owner, run=True)
        return services.script_create(owner=owner, name="n.py", code=b"print(1)\n")

    return make


def runs_url(script) -> str:
    return f"/api/scripts/{script.pk}/runs/"


def test_api_run_is_off_unless_asked_for_even_with_the_grant(auth_client, user, script_of):
    script = script_of(user)
    services.script_access_set(user=user, network=True)
    body = auth_client(user).post(runs_url(script), {}, format="json").json()
    assert body["network"] is False
    assert ScriptRun.objects.get(pk=body["id"]).network is False


def test_api_network_with_the_grant(auth_client, user, script_of):
    script = script_of(user)
    services.script_access_set(user=user, network=True)
    client = auth_client(user)
    response = client.post(runs_url(script), {"network": True}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["network"] is True
    assert client.get(f"/api/runs/{response.json()['id']}/").json()["network"] is True
    assert ScriptRun.objects.get().network is True


@pytest.mark.parametrize("who", ["user", "admin", "root"])
def test_api_network_without_the_grant_is_a_clear_400(auth_client, make_user, script_of, who):
    owner = make_user(who, is_admin=who == "admin", is_root=who == "root")
    assert who == "user" or owner.has_perm(services.NETWORK_PERMISSION)  # has_perm alone would say yes
    script = script_of(owner)
    response = auth_client(owner).post(runs_url(script), {"network": True}, format="json")
    assert response.status_code == 400
    assert "permission to use the network" in " ".join(response.json()["network"])
    assert not ScriptRun.objects.exists()


def test_root_with_the_grant_may_ask(auth_client, root_user, script_of):
    script = script_of(root_user)
    services.script_access_set(user=root_user, network=True)
    response = auth_client(root_user).post(runs_url(script), {"network": True}, format="json")
    assert response.status_code == 201 and response.json()["network"] is True


def test_grant_through_a_group_counts_and_revoking_ends_it(auth_client, user, script_of):
    script = script_of(user)
    group = Group.objects.create(name="netters")
    group.permissions.add(Permission.objects.get(codename="use_network", content_type__app_label="scripts_runner"))
    user.groups.add(group)
    client = auth_client(user)
    assert client.post(runs_url(script), {"network": True}, format="json").status_code == 201
    user.groups.remove(group)
    assert client.post(runs_url(script), {"network": True}, format="json").status_code == 400


def test_inactive_holder_is_refused(user):
    services.script_access_set(user=user, network=True)
    assert services.can_use_network(user)
    user.is_active = False
    user.save()
    assert not services.can_use_network(user)


@pytest.mark.parametrize("value", ["yes please", 2, [], {"a": 1}])
def test_api_network_must_be_a_boolean(auth_client, user, script_of, value):
    script = script_of(user)
    services.script_access_set(user=user, network=True)
    response = auth_client(user).post(runs_url(script), {"network": value}, format="json")
    assert response.status_code == 400 and "network" in response.json()
    assert not ScriptRun.objects.exists()


def test_api_networked_run_refused_when_pasta_or_nft_missing(auth_client, user, script_of, settings):
    script = script_of(user)
    services.script_access_set(user=user, network=True)
    settings.SCRIPTS_RUNNER_PASTA = "/nonexistent/pasta"
    response = auth_client(user).post(runs_url(script), {"network": True}, format="json")
    assert response.status_code == 400
    message = " ".join(response.json()["network"])
    assert "pasta" in message and "apt-get install passt nftables" in message
    assert not ScriptRun.objects.exists()
    # Without network the run still starts.
    assert auth_client(user).post(runs_url(script), {}, format="json").status_code == 201


def test_networked_run_never_falls_back_to_the_host_network(tmp_path, settings):
    """At the worker too: missing tools, or no sandbox, refuse the run instead of sharing the host's network."""
    from scripts_runner import sandbox

    settings.SCRIPTS_RUNNER_PASTA = "/nonexistent/pasta"
    with pytest.raises(network.NetworkUnavailable, match="apt-get install passt nftables"):
        sandbox.prepare(run_dir=tmp_path / "a", script_name="a.py", code=b"pass\n", args=[], env={}, network=True,
                        sandboxed=True)
    del settings.SCRIPTS_RUNNER_PASTA
    with pytest.raises(network.NetworkUnavailable, match="need the sandbox"):
        sandbox.prepare(run_dir=tmp_path / "b", script_name="a.py", code=b"pass\n", args=[], env={}, network=True,
                        sandboxed=False)


def test_networked_bwrap_never_shares_the_host_namespace(settings):
    """--share-net only ever runs inside the run's own namespace (the nsenter prefix), with its own resolver."""
    import tempfile
    from pathlib import Path

    from scripts_runner import conf, sandbox
    from scripts_runner.sandbox import mount_view

    # Run directories live in the run root (a root worker's runs read them through its view).
    conf.RUN_ROOT.mkdir(parents=True, exist_ok=True)
    tmp_path = Path(tempfile.mkdtemp(dir=conf.RUN_ROOT))
    launch = sandbox.prepare(run_dir=tmp_path, script_name="a.py", code=b"pass\n", args=[], env={}, network=True,
                             sandboxed=True)
    sandbox.release(launch)
    assert "--share-net" in launch.argv and launch.network
    assert launch.run_network is None  # made by start(), right before the run
    resolv = launch.argv.index(mount_view.in_view(mount_view.view(), tmp_path / "resolv.conf"))
    assert launch.argv[resolv + 1] == "/etc/resolv.conf"
    assert (tmp_path / "resolv.conf").read_text().startswith(f"nameserver {network.DNS_FORWARDER}\n")
    offline = sandbox.prepare(run_dir=tmp_path / "off", script_name="a.py", code=b"pass\n", args=[], env={},
                              network=False, sandboxed=True)
    sandbox.release(offline)
    assert "--share-net" not in offline.argv and not offline.network


# --- pages ---------------------------------------------------------------------------------------


def test_page_checkbox_only_for_granted_users(client, user, script_of):
    script = script_of(user)
    client.force_login(user)
    page = client.get(script.get_absolute_url())
    assert page.status_code == 200 and b'data-testid="run-network"' not in page.content
    services.script_access_set(user=user, network=True)
    page = client.get(script.get_absolute_url())
    assert b'name="network"' in page.content and b'data-testid="run-network"' in page.content


@pytest.mark.parametrize("who", ["user", "root"])
def test_page_network_without_grant_is_refused_with_a_message(client, make_user, script_of, who):
    owner = make_user(who, is_root=who == "root")
    script = script_of(owner)
    client.force_login(owner)
    page = client.get(script.get_absolute_url())
    assert b'data-testid="run-network"' not in page.content  # root has no checkbox without the grant either
    response = client.post(reverse("scripts_runner:script_run", args=[script.pk]), {"network": "on"}, follow=True)
    assert not ScriptRun.objects.exists()
    assert b"permission to use the network" in response.content


def test_page_run_with_and_without_network_says_which(client, user, script_of):
    script = script_of(user)
    services.script_access_set(user=user, network=True)
    client.force_login(user)
    client.post(reverse("scripts_runner:script_run", args=[script.pk]), {"args": "", "env": ""})
    client.post(reverse("scripts_runner:script_run", args=[script.pk]), {"args": "", "env": "", "network": "on"})
    offline, online = ScriptRun.objects.order_by("pk")
    assert (offline.network, online.network) == (False, True)
    assert b"no network" in client.get(offline.get_absolute_url()).content
    page = client.get(online.get_absolute_url()).content
    assert b"network on (own namespace behind NAT" in page
    fragment = client.get(online.get_absolute_url(), HTTP_HX_REQUEST="true").content
    assert b"network on" in fragment


def test_access_page_lets_root_grant_network_to_root(client, root_user):
    assert not services.can_use_network(root_user)
    client.force_login(root_user)
    page = client.get(reverse("scripts_runner:access")).content.decode()
    row = page[page.index(f'id="access-{root_user.pk}"'):].split("</tr>")[0]
    network_box = row[row.index('name="network"'):].split(">")[0]
    run_box = row[row.index('name="run"'):].split(">")[0]
    assert "disabled" not in network_box and "checked" not in network_box  # root may tick it, and it is off
    assert "disabled" in run_box and "checked" in run_box  # root always may run
    client.post(reverse("scripts_runner:access"), {"user": root_user.pk, "network": "on"})
    assert services.can_use_network(root_user)
    assert services.can_run(root_user)
    client.post(reverse("scripts_runner:access"), {"user": root_user.pk})
    assert not services.can_use_network(root_user)


def test_access_table_shows_network_only_for_holders(root_user, admin_user, user):
    services.script_access_set(user=user, network=True)
    rows = {row["user"].username: row for row in services.script_access_table()}
    assert rows["root"]["run"] and not rows["root"]["network"]
    assert not rows["admin1"]["network"]
    assert rows["alice"]["network"]


def test_admin_cannot_switch_network_on_for_a_run(client, admin_user, user, script_of):
    """The Django admin shows the run's network read-only."""
    run = services.script_run_create(script=script_of(user), user=user)
    client.force_login(admin_user)
    url = reverse("admin:scripts_runner_scriptrun_change", args=[run.pk])
    page = client.get(url)
    assert page.status_code == 200 and b'name="network"' not in page.content
    client.post(url, {"network": "on"})
    run.refresh_from_db()
    assert run.network is False
