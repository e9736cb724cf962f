"""The page value formats (core/templatetags/platform_format.py), and the pages that show them."""

from datetime import date, datetime, timedelta, timezone as dt_timezone

import pytest
from django.template import Context, Template
from django.urls import reverse

from core.templatetags.platform_format import chips, duration, num, weekdays, when


@pytest.mark.parametrize(("value", "text"), [
    (timedelta(seconds=5.304381), "5.3 s"), (0.14, "140 ms"), (timedelta(seconds=125), "2 min 05 s"),
    (timedelta(hours=1, minutes=2, seconds=10), "1 h 02 min"), (timedelta(days=2, hours=3), "2 d 3 h"),
    (None, ""), (-1, ""),
])
def test_duration_reads_like_a_person_wrote_it(value, text):
    assert duration(value) == text


def test_when_names_the_zone_and_keeps_the_instant(settings):
    settings.TIME_ZONE = "UTC"
    moment = datetime(2024, 5, 1, 13, 45, 9, tzinfo=dt_timezone.utc)
    assert when(moment) == '<time datetime="2024-05-01T13:45:09+00:00">2024-05-01 13:45 UTC</time>'
    assert "13:45:09 UTC" in when(moment, "s")
    assert when(None) == ""


def test_weekdays_are_named_not_numbered():
    assert weekdays([6, 5]) == "Sat, Sun"
    assert weekdays([0]) == "Mon"
    assert weekdays(["x", 9]) == ""


def test_parameters_and_grids_show_as_chips_and_escape_names():
    html = str(chips({"fast": [5, 10], "slow": {"start": 20, "stop": 60, "step": 20}, "<b>": True}))
    assert '<span class="chip-name">fast</span> 5, 10</span>' in html
    assert '<span class="chip-name">slow</span> 20 … 60 step 20</span>' in html
    assert "&lt;b&gt;" in html and "<b>" not in html
    assert "{" not in html and "[" not in html
    assert "none" in str(chips({}))


def test_numbers_have_separators_and_a_dash_when_missing():
    assert num(1234567) == "1,234,567"
    assert num(1234.5678) == "1,234.57"
    assert num(None) == "—"


def test_filters_load_in_a_template():
    out = Template("{% load platform_format %}{{ d|duration }} {{ days|weekdays }}").render(
        Context({"d": timedelta(seconds=5.3), "days": [6]}))
    assert out == "5.3 s Sun"


@pytest.mark.django_db
def test_branches_table_reads_kind_and_closed_days_in_words(client, user):
    from etl.models import Branch

    Branch.objects.create(code="O01", name="Old", is_new_branch=False, closed_weekdays=[6, 0],
                          closed_dates=["2024-12-25"], opened_on=date(2024, 1, 1))
    Branch.objects.create(code="N01", name="New", is_new_branch=True)
    client.force_login(user)
    html = client.get(reverse("etl:branch_list")).content.decode()
    assert "old <span class=\"muted\">(semicolon-separated, cp1252, DD/MM/YYYY dates)</span>" in html
    assert "new <span class=\"muted\">(comma-separated, UTF-8, ISO dates)</span>" in html
    assert "every Mon, Sun; 1 other day" in html
    assert "UTF-8 ISO)" not in html and "6, 0" not in html


def test_params_text_reads_like_the_chips():
    from core.templatetags.platform_format import params_text

    assert params_text({"fast": 5, "slow": 30.0, "allow_short": False}) == "fast 5 · slow 30 · allow_short no"
    assert params_text({}) == "" and params_text(None) == ""
