"""Pages: the keyset and numbered helpers, and the one pager every paged screen shows (a link
only where there is such a page)."""

import re
from types import SimpleNamespace

from tests.conftest import export_job
from webapp import audit
from webapp.engine.runs import start_run
from webapp.extensions import db
from webapp.models.people import Supporter
from webapp.paging import Keyset, NumberedPage


def rows(*ids):
    return [SimpleNamespace(id=number) for number in ids]


def test_a_keyset_page_from_the_top_has_only_an_older_page_when_more_rows_follow():
    page = Keyset(before=None, after=None, per_page=2).page(rows(9, 8, 7))
    assert [r.id for r in page.items] == [9, 8]
    assert page.prev_args is None and page.next_args == {"before": 8}
    assert Keyset(None, None, 2).page(rows(9, 8)).next_args is None


def test_a_keyset_page_after_an_id_reads_newest_first_with_both_neighbours():
    page = Keyset(before=None, after=5, per_page=2).page(rows(6, 7, 8))
    assert [r.id for r in page.items] == [7, 6]
    assert page.prev_args == {"after": 7} and page.next_args == {"before": 6}
    top = Keyset(before=None, after=5, per_page=2).page(rows(6, 7))
    assert top.prev_args is None and top.next_args == {"before": 6}


def test_an_empty_keyset_page_links_nowhere():
    page = Keyset(before=3, after=None, per_page=2).page([])
    assert page.prev_args is None and page.next_args is None


def test_a_numbered_page_links_to_the_pages_there_are():
    assert NumberedPage([], 1, 10, 0).pages == 1
    first = NumberedPage([], 1, 10, 25)
    assert first.pages == 3 and first.prev_args is None and first.next_args == {"page": 2}
    last = NumberedPage([], 3, 10, 25)
    assert last.prev_args == {"page": 2} and last.next_args is None


def links(html):
    """The pager's links: {label: href}."""
    nav = re.search(r'<nav class="pager" aria-label="Pages">(.*?)</nav>', html, re.S)
    found = re.findall(r'<a href="([^"]*)">([^<]*)</a>', nav.group(1)) if nav else []
    return {label: href.replace("&amp;", "&") for href, label in found}


def test_a_one_page_audit_log_shows_no_pager(client, auth, users):
    audit.record("run.retried", None, actor=users["user"], detail="only entry")
    auth.login(users["super_admin"].email)
    html = client.get("/admin/audit").get_data(as_text=True)
    assert "only entry" in html and "Newer" not in html and "Older" not in html


def test_supporters_page_both_ways_keeping_the_search(app, client, auth, users):
    app.config["PAGE_SIZE"] = 2
    for number in range(5):
        db.session.add(Supporter(email=f"ann{number}@example.org", last_name=f"Ann {number}"))
    db.session.add(Supporter(email="bob@example.org", last_name="Bob"))
    db.session.commit()
    auth.login(users["user"].email)
    first = client.get("/supporters/?q=ann").get_data(as_text=True)
    assert "ann4@" in first and "ann3@" in first and "bob@" not in first
    assert list(links(first)) == ["Older →"] and "q=ann" in links(first)["Older →"]
    second = client.get(links(first)["Older →"]).get_data(as_text=True)
    assert "ann2@" in second and "ann1@" in second
    assert list(links(second)) == ["← Newer", "Older →"]
    last = client.get(links(second)["Older →"]).get_data(as_text=True)
    assert "ann0@" in last and list(links(last)) == ["← Newer"]
    back = client.get(links(second)["← Newer"]).get_data(as_text=True)
    assert "ann4@" in back and "ann3@" in back and list(links(back)) == ["Older →"]


def test_the_monitor_pages_by_number_with_a_count(app, client, auth, users):
    app.config["PAGE_SIZE"] = 2
    job = export_job(users["user"], name="Paged")
    for _ in range(3):
        start_run(job, users["user"])
    auth.login(users["user"].email)
    first = client.get("/").get_data(as_text=True)
    assert "Page 1 of 2 (3 runs)" in first and links(first) == {"Older →": "/?page=2"}
    second = client.get("/?page=2").get_data(as_text=True)
    assert "Page 2 of 2 (3 runs)" in second and links(second) == {"← Newer": "/?page=1"}


def test_the_outbox_pages_by_number(app, client, auth, users):
    app.config["PAGE_SIZE"] = 2
    for number in range(3):
        with open(f"{app.config['OUTBOX_DIR']}/2026-01-0{number + 1}-message.eml", "w") as eml:
            eml.write(f"To: a@b.c\nSubject: Message {number}\nDate: today\n\nHello\n")
    auth.login(users["super_admin"].email)
    first = client.get("/admin/outbox").get_data(as_text=True)
    assert "Message 2" in first and "Message 0" not in first
    assert "Page 1 of 2 (3 messages)" in first and list(links(first)) == ["Older →"]
    second = client.get(links(first)["Older →"]).get_data(as_text=True)
    assert "Message 0" in second and list(links(second)) == ["← Newer"]
