"""The import wizard's upload and mapping steps, with every kind of bad input."""

import os

import pytest

from tests.conftest import upload_csv
from webapp.models import Job


@pytest.fixture
def logged_in(auth, users):
    auth.login("user@example.org")
    return users["user"]


def uploads(app) -> list[str]:
    return sorted(os.listdir(app.config["UPLOADS_DIR"]))


@pytest.mark.parametrize("content,message", [
    (b"", "The file is empty."),
    (b"email,first_name\n", "The file has a header row but no data rows."),
    (b"email,first_name\r\n\r\n  \r\n", "The file has a header row but no data rows."),
    (b"email,zip\nann@example.org,12345\nb\xe9a@example.org,02134\n",
     "The file is not valid UTF-8 (line 3 has the byte 0xE9)"),
    (b"PK\x03\x04\x14\x00\x06\x00binary-xlsx", "This file is not a CSV file"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "This file is not a CSV file"),
])
def test_bad_files_are_refused_with_a_clear_message_and_nothing_kept(
        app, client, logged_in, content, message):
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
    response = upload_csv(client, "email,first_name\nzoe@example.org,Zo\xe9\n".encode("latin-1"),
                          encoding="latin-1")
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Zoé" in page


@pytest.mark.parametrize("content,delimiter_name", [
    ("\ufeffemail;first_name\nann@example.org;Ann\n", "semicolon"),
    ("email\tfirst_name\nann@example.org\tAnn\n", "tab"),
    ('email,first_name\nann@example.org,"Ann, Jr."\n', "comma"),
])
def test_bom_and_delimiters_are_detected(client, logged_in, content, delimiter_name):
    response = upload_csv(client, content)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"{delimiter_name} separated" in page
    assert "ann@example.org" in page
    # the BOM never reaches the header: the email column is recognised
    assert '<option selected value="email">' in page


def test_mapping_step_previews_rows_guesses_fields_and_flags_unknown_columns(client, logged_in):
    content = "E-mail,First Name,favourite colour\n" + "".join(
        f"p{i}@example.org,P{i},blue\n" for i in range(8))
    response = upload_csv(client, content)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "p0@example.org" in page and "p4@example.org" in page
    assert "p5@example.org" not in page  # a preview of the first five rows only
    assert "Unknown columns: favourite colour" in page
    assert '<option selected value="first_name">' in page


def test_mapping_without_email_is_refused_and_the_upload_kept(app, client, logged_in):
    response = upload_csv(client, "name,zip\nAnn,12345\n")
    url = response.headers["Location"]
    response = client.post(url, data={"name": "x", "col_0": "first_name", "col_1": "zip",
                                      "action": "save"})
    assert "Map one column to Email" in response.get_data(as_text=True)
    assert Job.query.count() == 0
    assert client.get(url).status_code == 200  # still there to fix


def test_field_mapped_twice_is_refused(client, logged_in):
    response = upload_csv(client, "email,a,b\nann@example.org,Ann,Bea\n")
    response = client.post(response.headers["Location"], data={
        "name": "x", "col_0": "email", "col_1": "first_name", "col_2": "first_name"})
    assert "First name is mapped to more than one column." in response.get_data(as_text=True)


def test_saving_the_mapping_creates_the_job(client, logged_in):
    response = upload_csv(client, "email,zip\nann@example.org,12345\n", name="Gala list")
    response = client.post(response.headers["Location"], data={
        "name": "Gala list", "col_0": "email", "col_1": "zip", "action": "save"})
    job = Job.query.one()
    assert response.headers["Location"] == f"/jobs/{job.id}"
    assert job.params["mapping"] == ["email", "zip"]
    assert job.owner_id == logged_in.id
    assert os.path.exists(job.params["path"])


def test_the_upload_counts_its_records_into_the_jobs_params(client, logged_in):
    text = 'email,address1\nann@example.org,"1 Main St\nApt 2"\n\nbob@example.org,x\n'
    response = upload_csv(client, text)
    client.post(response.headers["Location"], data={
        "name": "Gala list", "col_0": "email", "col_1": "address1", "action": "save"})
    assert Job.query.one().params["total_rows"] == 2  # the quoted newline and blank line aside


def test_another_users_upload_token_is_unknown(client, auth, users, logged_in):
    response = upload_csv(client, "email\nann@example.org\n")
    url = response.headers["Location"]
    auth.logout()
    auth.login("other@example.org")
    assert client.get(url).status_code == 404
