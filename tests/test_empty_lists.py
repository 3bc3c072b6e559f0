"""An empty list's one row spans exactly the table's columns, for every role (a column such as
Owner is shown to super admins only)."""

from __future__ import annotations

import re

import pytest

PAGES = ["/jobs/", "/groups/", "/campaigns/", "/supporter-deletes/", "/history"]


@pytest.mark.parametrize("who", ["user@example.org", "super@example.org"])
@pytest.mark.parametrize("path", PAGES)
def test_the_empty_row_spans_the_columns(client, auth, users, who, path):
    auth.login(who)
    page = client.get(path)
    assert page.status_code == 200, path
    html = page.get_data(as_text=True)
    table = re.search(r"<table.*?</table>", html, re.DOTALL).group(0)
    header = re.search(r"<thead>.*?</thead>", table, re.DOTALL).group(0)
    spans = re.findall(r'<td colspan="(\d+)" class="muted">', table)
    assert spans, (path, "no empty row")
    assert int(spans[0]) == len(re.findall(r"<th[\s>]", header)), (path, who)
