import os
import tempfile
from pathlib import Path

import pytest
from django.conf import settings


def screenshot_path(name: str) -> Path:
    """README screenshots are refreshed only on request (SEJOUR_SCREENSHOTS=1 ./dev test tests/browser);
    otherwise they go to a temporary folder, so a test run never changes the working tree."""
    if os.environ.get("SEJOUR_SCREENSHOTS"):
        return Path(settings.BASE_DIR) / "docs" / "screenshots" / name
    return Path(tempfile.gettempdir()) / "sejour-screenshots" / name


@pytest.fixture
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1280, "height": 800}, "locale": "fr-FR"}
