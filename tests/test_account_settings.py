"""Account settings: the default country an import checks postal codes for."""

from webapp.models import AuditEntry
from webapp.models.settings import AccountSettings

SETTINGS = {"retention_days": "30", "audit_retention_days": "365"}


def test_the_default_country_is_the_united_states_until_an_admin_chooses_another(client, auth, users):
    assert AccountSettings.postal_country() == "US"  # no settings row yet
    auth.login(users["admin"].email)
    page = client.get("/admin/settings").get_data(as_text=True)
    assert '<label for="default_country">Default country for postal codes</label>' in page
    assert '<option selected value="US">United States (US)</option>' in page
    assert '<option value="CA">Canada (CA)</option>' in page
    response = client.post("/admin/settings", data={**SETTINGS, "default_country": "CA"})
    assert response.status_code == 302
    assert AccountSettings.postal_country() == "CA"
    changed = AuditEntry.query.filter_by(action="settings.changed").one()
    assert changed.detail == "Default country for postal codes: US → CA"


def test_a_country_that_is_not_in_the_list_is_refused(client, auth, users):
    auth.login(users["admin"].email)
    response = client.post("/admin/settings", data={**SETTINGS, "default_country": "XX"})
    assert response.status_code == 200 and "Not a valid choice" in response.get_data(as_text=True)
    assert AccountSettings.postal_country() == "US"


def test_a_settings_form_without_the_country_keeps_the_stored_one(client, auth, users):
    AccountSettings.get().default_country = "GB"
    auth.login(users["admin"].email)
    response = client.post("/admin/settings", data={**SETTINGS, "retention_days": "60"})
    assert response.status_code == 302
    assert AccountSettings.get().default_country == "GB"


def test_zero_days_is_out_of_range_not_missing(client, auth, users):
    auth.login(users["admin"].email)
    page = client.post("/admin/settings", data={**SETTINGS, "retention_days": "0"}).get_data(as_text=True)
    assert "Number must be between 1 and 3650." in page and "This field is required." not in page
