"""Charts in chromium against the real product (issue 13): a job with a few finished runs shows
its runs chart drawn by the vendored Chart.js under the server's Content-Security-Policy (no
refusal, no script error), and "Show the figures as a table" opens the same figures as a table."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Account, Server, _create_user, log_in
from tests.e2e.test_csp import watch
from tests.e2e.test_foundation import create_export, expect_state

pytestmark = pytest.mark.e2e

RUNS = 3
DURATION = re.compile(r"^(\d+ s|\d+ min \d{2} s|\d+ h \d{2} min)$")


@pytest.fixture(scope="module")
def charter(server: Server) -> Account:
    """This module's own user: the job and its runs are only these tests'."""
    return _create_user(server, "charts@example.org", "charts-secret-password-7")


def run_again(page: Page) -> None:
    """From a run's page: its job's page, Run now, and wait until the new run completes."""
    page.get_by_role("button", name="Job", exact=True).click()
    page.get_by_role("button", name="Run now").click()
    expect_state(page, "Completed")


def test_a_jobs_page_draws_its_runs_chart_and_shows_its_figures_as_a_table(page: Page, charter: Account):
    problems: list[str] = []
    watch(page, problems, "charts")
    log_in(page, charter)
    create_export(page, "Chart export")
    expect_state(page, "Completed")
    for _ in range(RUNS - 1):
        run_again(page)
    page.get_by_role("button", name="Job", exact=True).click()
    expect(page.get_by_role("heading", name="Chart export", exact=True)).to_be_visible()

    # The chart: a canvas with a name for screen readers, drawn by Chart.js from /static.
    figure = page.get_by_role("figure")
    expect(figure).to_contain_text(f"Run time and exported supporters of the last {RUNS} finished runs")
    canvas = figure.get_by_role("img")
    expect(canvas).to_be_visible()
    expect(canvas).to_have_attribute(
        "aria-label", re.compile(rf"of the last {RUNS} finished runs, #1 to #{RUNS}")
    )
    box = canvas.bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 100
    page.wait_for_function("el => window.Chart && window.Chart.getChart(el)", arg=canvas.element_handle())
    drawn = canvas.evaluate(
        """canvas => {
            const chart = window.Chart.getChart(canvas);
            const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
            let inked = 0;
            for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) inked++;
            return {labels: chart.data.labels, counts: chart.data.datasets[1].data, inked: inked};
        }"""
    )
    assert drawn["labels"] == [f"#{n}" for n in range(1, RUNS + 1)]
    assert drawn["inked"] > 1000  # axes, bars and a line, not a blank canvas
    scripts = page.locator("script[src]").evaluate_all("scripts => scripts.map(s => s.src)")
    assert any(src.endswith("/static/vendor/chart.umd.min.js") for src in scripts)
    assert all(src.startswith(page.url.split("/jobs/")[0] + "/static/") for src in scripts)  # no CDN

    # The same figures as a table, one row a run, behind "Show the figures as a table".
    table = figure.get_by_role("table")
    expect(table).to_be_hidden()
    figures = figure.get_by_role("group")  # the <details>, opened by its <summary>
    figures.get_by_text("Show the figures as a table", exact=True).click()
    expect(figures).to_have_attribute("open", "")
    expect(table).to_be_visible()
    expect(table.get_by_role("rowheader")).to_have_text([f"#{n}" for n in range(1, RUNS + 1)])
    last = table.get_by_role("row").filter(has=page.get_by_role("rowheader", name=f"#{RUNS}"))
    cells = last.get_by_role("cell")
    assert DURATION.match(cells.nth(1).inner_text().strip())
    assert cells.nth(2).inner_text().strip() == f"{drawn['counts'][-1]:,}"
    expect(cells.nth(3)).to_have_text("completed")

    assert problems == []
