"""SMTP passwords are stored encrypted with ENCRYPTION_KEY (or a key derived from SECRET_KEY)."""
import pytest
from cryptography.fernet import Fernet

from structures import crypto
from tests.factories import OrganisationFactory


def test_round_trip_with_the_configured_key(settings):
    settings.ENCRYPTION_KEY = Fernet.generate_key().decode()
    token = crypto.encrypt("mot de passe é€")
    assert token != "mot de passe é€"
    assert crypto.decrypt(token) == "mot de passe é€"
    assert Fernet(settings.ENCRYPTION_KEY.encode()).decrypt(token.encode()).decode() == "mot de passe é€"


def test_without_encryption_key_a_key_is_derived_from_secret_key(settings):
    settings.ENCRYPTION_KEY = ""
    token = crypto.encrypt("abc")
    assert crypto.decrypt(token) == "abc"
    settings.SECRET_KEY = "another-secret-key-" * 4
    with pytest.raises(ValueError, match="ENCRYPTION_KEY a changé"):
        crypto.decrypt(token)


def test_a_changed_key_gives_a_clear_error(settings):
    settings.ENCRYPTION_KEY = Fernet.generate_key().decode()
    token = crypto.encrypt("abc")
    settings.ENCRYPTION_KEY = Fernet.generate_key().decode()
    with pytest.raises(ValueError, match="ne peut pas être déchiffré"):
        crypto.decrypt(token)


def test_empty_values_stay_empty():
    assert crypto.encrypt("") == ""
    assert crypto.decrypt("") == ""


@pytest.mark.django_db
def test_organisation_smtp_password_property(settings):
    settings.ENCRYPTION_KEY = Fernet.generate_key().decode()
    organisation = OrganisationFactory()
    organisation.smtp_password = "secret"
    organisation.save()
    organisation.refresh_from_db()
    assert organisation.smtp_password_encrypted.startswith("gAAAA")  # a Fernet token
    assert organisation.smtp_password == "secret"
