"""The access log's redaction of API keys and webhook secrets, as uvicorn's access line would carry them."""

from __future__ import annotations

import pytest

from search_service.api.log_redaction import redacted

KEY = "plq_469Eab-c_Zx9"


@pytest.mark.parametrize(
    ("logged", "shown"),
    [
        (f"/v1/x?api_key={KEY}", "/v1/x?api_key=plq_[redacted]"),
        (f"/v1/x?access_token=Bearer%20{KEY}&k=1", "/v1/x?access_token=Bearer%20plq_[redacted]&k=1"),
        (f"/v1/stores/{KEY}/listings", "/v1/stores/plq_[redacted]/listings"),
        # percent-encoded: the key was logged whole
        ("/v1/x?api_key=plq%5F469Eab-c_Zx9", "/v1/x?api_key=plq_[redacted]"),
        ("/v1/search?q=plq%5f469Eab%2Dc%5FZx9&limit=3", "/v1/search?q=plq_[redacted]&limit=3"),
        ("/v1/x?secret=whsec%5FAbC%2B%2F%3D", "/v1/x?secret=whsec_[redacted]"),
        ("/v1/x?secret=whsec_AbC+/=", "/v1/x?secret=whsec_[redacted]"),
        ("/v1/search?q=plq%20tools", "/v1/search?q=plq%20tools"),  # no key: left as it is
        # every byte encoded, encoded twice, or the prefix in capitals: the key was logged whole
        ("/v1/x?q=x&api_key=%70%6C%71%5F469Eab-c_Zx9", "/v1/x?q=x&api_key=plq_[redacted]"),
        ("/v1/x?api_key=plq%255F469Eab-c_Zx9&q=caf%C3%A9", "/v1/x?api_key=plq_[redacted]&q=café"),
        ("/v1/x?api_key=PLQ%5F469Eab-c_Zx9", "/v1/x?api_key=plq_[redacted]"),
        ("/v1/x?s=%77%68%73%65%63%5FAbC%2B%2F", "/v1/x?s=whsec_[redacted]"),
        ("/v1/search?q=caf%C3%A9%20plq", "/v1/search?q=caf%C3%A9%20plq"),  # no key: as sent
    ],
)
def test_keys_and_secrets_are_redacted_whatever_the_percent_encoding(logged: str, shown: str) -> None:
    assert redacted(logged) == shown
