from tests.billing.conftest import billing_setup  # noqa: F401 - the pre-flight check needs a billable section
