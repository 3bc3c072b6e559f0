"""The import wizard's upload and mapping steps, with every kind of bad input."""

import os
import time

import pytest
from markupsafe import escape

from tests.conftest import upload_csv
from webapp.models import Job
from webapp.storage import current_storage


@pytest.fixture
def logged_in(auth, users):
    auth.login("user@example.org")
    return users["user"]


def uploads(app) -> list[str]:
    return sorted(os.listdir(app.config["UPLOADS_DIR"]))


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", "The file is empty."),
        (b"email,first_name\n", "The file has a header row but no data rows."),
        (b"email,first_name\r\n\r\n  \r\n", "The file has a header row but no data rows."),
        (
            b"email,zip\nann@example.org,12345\nb\xe9a@example.org,02134\n",
            "The file is not valid UTF-8 (line 3 has the byte 0xE9)",
        ),
        (b"PK\x03\x04\x14\x00\x06\x00binary-xlsx", "This file is not a CSV file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "This file is not a CSV file"),
    ],
)
def test_bad_files_are_refused_with_a_clear_message_and_nothing_kept(
    app, client, logged_in, content, message
):
    response = upload_csv(client, content)
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert uploads(app) == []
    assert Job.query.count() == 0


def test_upload_over_the_size_limit_is_refused_and_nothing_half_written(app, client, logged_in):
    app.config["MAX_CONTENT_LENGTH"] = 2048
    big = "email\n" + "".join(f"person{i}@example.org\n" for i in range(500))
    response = upload_csv(client, big)
    assert response.status_code == 413
    page = response.get_data(as_text=True)
    assert "larger than the upload limit of 2 KB" in page
    assert "Nothing was saved" in page
    assert uploads(app) == []
    assert Job.query.count() == 0


def test_latin1_file_is_accepted_when_asked_for(client, logged_in):
    response = upload_csv(
        client, "email,first_name\nzoe@example.org,Zo\xe9\n".encode("latin-1"), encoding="latin-1"
    )
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Zoé" in page and "This file looks like UTF-8" not in page


def test_a_utf8_file_read_as_latin1_is_warned_about_on_the_mapping_page(client, logged_in):
    response = upload_csv(client, "email,first_name\njose@example.org,José\n", encoding="latin-1")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "JosÃ©" in page  # what would be stored
    assert "This file looks like UTF-8, but it was read as Latin-1" in page
    assert '<a href="/jobs/new/import">Upload it again</a>' in page
    late = "email,first_name\n" + "a@example.org,Ann\n" * 20_000 + "jose@example.org,José\n"  # past 256 KB
    page = client.get(upload_csv(client, late, encoding="latin-1").headers["Location"]).get_data(as_text=True)
    assert "This file looks like UTF-8, but it was read as Latin-1" in page
    plain = upload_csv(client, "email,first_name\njo@example.org,Jo\n", encoding="latin-1")  # ASCII only
    assert "This file looks like UTF-8" not in client.get(plain.headers["Location"]).get_data(as_text=True)


@pytest.mark.parametrize(
    "content,delimiter_name",
    [
        ("\ufeffemail;first_name\nann@example.org;Ann\n", "semicolon"),
        ("email\tfirst_name\nann@example.org\tAnn\n", "tab"),
        ('email,first_name\nann@example.org,"Ann, Jr."\n', "comma"),
    ],
)
def test_bom_and_delimiters_are_detected(client, logged_in, content, delimiter_name):
    response = upload_csv(client, content)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"{delimiter_name} separated" in page
    assert "ann@example.org" in page
    # the BOM never reaches the header: the email column is recognised
    assert '<option selected value="email">' in page


def test_mapping_step_previews_rows_guesses_fields_and_flags_unknown_columns(client, logged_in):
    content = "E-mail,First Name,favourite colour\n" + "".join(
        f"p{i}@example.org,P{i},blue\n" for i in range(8)
    )
    response = upload_csv(client, content)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "p0@example.org" in page and "p4@example.org" in page
    assert "p5@example.org" not in page  # a preview of the first five rows only
    assert "Unknown columns: favourite colour" in page
    assert '<option selected value="first_name">' in page


def test_mapping_without_email_is_refused_and_the_upload_kept(app, client, logged_in):
    response = upload_csv(client, "name,zip\nAnn,12345\n")
    url = response.headers["Location"]
    response = client.post(url, data={"name": "x", "col_0": "first_name", "col_1": "zip", "action": "save"})
    assert "Map one column to Email" in response.get_data(as_text=True)
    assert Job.query.count() == 0
    assert client.get(url).status_code == 200  # still there to fix


def test_field_mapped_twice_is_refused(client, logged_in):
    response = upload_csv(client, "email,a,b\nann@example.org,Ann,Bea\n")
    response = client.post(
        response.headers["Location"],
        data={"name": "x", "col_0": "email", "col_1": "first_name", "col_2": "first_name"},
    )
    assert "First name is mapped to more than one column." in response.get_data(as_text=True)


def test_saving_the_mapping_creates_the_job(client, logged_in):
    response = upload_csv(client, "email,zip\nann@example.org,12345\n", name="Gala list")
    response = client.post(
        response.headers["Location"],
        data={"name": "Gala list", "col_0": "email", "col_1": "zip", "action": "save"},
    )
    job = Job.query.one()
    assert response.headers["Location"] == f"/jobs/{job.id}"
    assert job.params["mapping"] == ["email", "zip"]
    assert job.owner_id == logged_in.id
    assert os.path.exists(current_storage().path(job.params["path"]))


def test_the_upload_counts_its_records_into_the_jobs_params(client, logged_in):
    text = 'email,address1\nann@example.org,"1 Main St\nApt 2"\n\nbob@example.org,x\n'
    response = upload_csv(client, text)
    client.post(
        response.headers["Location"],
        data={"name": "Gala list", "col_0": "email", "col_1": "address1", "action": "save"},
    )
    assert Job.query.one().params["total_rows"] == 2  # the quoted newline and blank line aside


def test_another_users_upload_token_is_unknown(client, auth, users, logged_in):
    response = upload_csv(client, "email\nann@example.org\n")
    url = response.headers["Location"]
    auth.logout()
    auth.login("other@example.org")
    assert client.get(url).status_code == 404


def refused(app, client, content, message):
    response = upload_csv(client, content)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert str(escape(message)) in page
    assert uploads(app) == []  # nothing half-written: not the file, not its record
    assert Job.query.count() == 0


def test_a_file_of_100000_columns_is_refused_before_the_mapping_page(app, client, logged_in):
    refused(
        app,
        client,
        "," * 99_999 + "\nann@example.org\n",
        "The file has 100,000 columns; at most 1,000 are supported.",
    )


def test_a_file_of_1001_columns_is_refused_and_one_of_1000_is_mapped_quickly(app, client, logged_in):
    names = ["email", *(f"extra {i}" for i in range(999))]
    refused(
        app,
        client,
        ",".join([*names, "one more"]) + "\nann@example.org\n",
        "The file has 1,001 columns; at most 1,000 are supported.",
    )
    row = ",".join(["ann@example.org", *(f"value {i}" for i in range(999))])
    response = upload_csv(client, ",".join(names) + "\n" + (row + "\n") * 10)
    started = time.perf_counter()
    page = client.get(response.headers["Location"])
    assert time.perf_counter() - started < 1  # 0.06 s; it was 0.5 s
    assert page.status_code == 200
    assert page.get_data(as_text=True).count("<select ") == 1000


def test_a_nul_byte_anywhere_is_refused_with_its_line(app, client, logged_in):
    rows = "".join(f"p{i}@example.org,Person {i}\n" for i in range(5000))  # past 64 KB
    refused(
        app,
        client,
        "email,first_name\n" + rows + "nul@example.org,N\x00l\n",
        "Line 5,002 holds a NUL byte (0x00)",
    )


def test_an_over_long_line_is_refused_with_its_number(app, client, logged_in):
    refused(
        app,
        client,
        "email,note\nann@example.org,x\nbob@example.org," + "y" * 1_100_000,
        "Line 3 is longer than 1 MB, the most one line may hold.",
    )


def test_a_quote_never_closed_is_refused_with_the_line_it_opens_on(app, client, logged_in):
    refused(
        app,
        client,
        'email,note\nann@example.org,"Apt 4\nBoston"\nbob@example.org,"oops\ncy@example.org,x\n',
        'The quote (") that opens a field on line 4 is never closed',
    )


def test_a_quote_never_closed_in_a_large_file_is_refused_at_the_field_limit(app, client, logged_in):
    rows = "".join(f"p{i}@example.org,Person {i:0900}\n" for i in range(1200))  # ~1.1 MB
    refused(
        app,
        client,
        'email,note\nann@example.org,"oops\n' + rows,
        "The record that starts on line 2 has a field of more than 1,048,576 characters "
        '(it runs on to line 1,136): is a closing quote (") missing?',
    )


def test_long_cells_are_cut_short_on_the_mapping_page(client, logged_in):
    response = upload_csv(client, "email,note\nann@example.org," + "z" * 5000 + "\n")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "z" * 199 + "…" in page
    assert "z" * 200 not in page
