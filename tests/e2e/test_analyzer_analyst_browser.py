"""In a real browser against a real server and worker: the built-in analyst answers a filtered count, a
grouped average and a scatter plot over a public dataset, with the numbers pandas computes."""

from pathlib import Path

import pandas as pd
import pytest

from tests.support import wait_until

pytestmark = pytest.mark.e2e

PENGUINS = Path(__file__).resolve().parents[2] / "analyzer" / "tests" / "eval" / "data" / "penguins.csv"
MASS = "Body Mass (g)"


def ask(page, question: str, answers_before: int):
    page.fill("[data-testid=chat-input]", question)
    page.click("[data-testid=chat-send]")
    page.wait_for_function(
        f"document.querySelectorAll('[data-testid=assistant-message].finished').length >= {answers_before + 1}",
        timeout=60000)
    return page.locator("[data-testid=assistant-message]").nth(answers_before)


def table_of(answer) -> list[dict]:
    table = answer.locator("[data-testid=query-result] table").first
    heads = table.locator("thead th").all_inner_texts()
    return [dict(zip(heads, row.locator("td").all_inner_texts())) for row in table.locator("tbody tr").all()]


def test_filtered_count_grouped_average_and_scatter(live_platform, browser_page, login_page, user):
    df = pd.read_csv(PENGUINS)
    page = browser_page
    login_page(page, live_platform, user)
    page.goto(live_platform.url + "/analyzer/")
    page.set_input_files("[data-testid=upload-input]", str(PENGUINS))
    page.click("[data-testid=upload-button]")  # a picked file waits for Upload
    page.wait_for_url("**/analyzer/sessions/*/")
    page.wait_for_selector("[data-testid=detected]", timeout=60000)
    page.wait_for_selector("[data-testid=assistant-message].finished", timeout=60000)  # the auto-analysis
    # Before the first question the page says who can answer and what each analyst can do.
    intro = page.locator("[data-testid=analysts-intro]")
    assert intro.is_visible() and "Built-in analyst" in intro.inner_text() and "Offline" in intro.inner_text()

    answer = ask(page, "How many female penguins weigh more than 4000 g?", 1)
    assert answer.locator("[data-testid=answered-by]").inner_text() == "Answered by Built-in analyst"
    assert not intro.is_visible()
    expected = int(((df["Sex"] == "FEMALE") & (df[MASS] > 4000)).sum())
    assert table_of(answer) == [{"count": str(expected)}]
    assert "SELECT count(*)" in answer.locator("[data-testid=query-result] pre").first.text_content()

    answer = ask(page, "average body mass by species", 2)
    shown = {r["Species"]: float(r[f"avg_{MASS}"]) for r in table_of(answer)}
    assert shown == pytest.approx(df.groupby("Species")[MASS].mean().to_dict())
    answer.locator("[data-testid=plot][data-rendered='1'] svg.marks").wait_for()
    assert answer.locator("[data-testid=plot] svg .mark-rect path").count() == 3  # one bar per species

    answer = ask(page, "scatter plot of flipper length against body mass", 3)
    answer.locator("[data-testid=plot][data-rendered='1'] svg.marks").wait_for()
    points = answer.locator("[data-testid=plot] svg .mark-symbol path").count()
    assert points == int((df["Flipper Length (mm)"].notna() & df[MASS].notna()).sum())

    # The system turns dark: every chart of the conversation is drawn again in the dark colours.
    assert answer.locator("[data-testid=plot]").get_attribute("data-scheme") == "light"
    page.emulate_media(color_scheme="dark")
    wait_until(lambda: page.locator("[data-testid=plot][data-scheme='dark']").count()
               == page.locator("[data-testid=plot]").count() >= 2, timeout=15, message="charts drawn dark")
    answer.locator("[data-testid=plot] svg.marks").wait_for()
    assert answer.locator("[data-testid=plot] svg .mark-symbol path").count() == points
