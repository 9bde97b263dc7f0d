"""The widget suite's Chromium page (loopback only), for the other browser tests."""

from __future__ import annotations

from tests.browser.test_widget import page, requests_made

__all__ = ["page", "requests_made"]
