import pytest


@pytest.fixture
def validate_through_smtp(eager_celery, django_capture_on_commit_callbacks):
    """Validate a run with the association's SMTP account pointed at a real local server (aiosmtpd);
    returns the server (its ``received`` messages)."""
    from reminders.services.runs import run_validate_start
    from tests.mailing.servers import SmtpServer

    def validate(run, organisation):
        with SmtpServer() as server:
            organisation.smtp_host, organisation.smtp_port, organisation.smtp_security = (
                "127.0.0.1", server.port, "none")
            organisation.save()
            with django_capture_on_commit_callbacks(execute=True):
                run_validate_start(run=run)
        return server

    return validate
