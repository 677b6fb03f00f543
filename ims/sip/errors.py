"""The one error type the SIP parser raises; the transport turns it into a 400 with a Warning."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ims.sip.headers import Headers


class SipError(ValueError):
    """Malformed or unacceptable SIP input.

    ``status`` is the response code to answer with (400 unless noted), ``reason`` a precise text
    for the Warning header (RFC 3261 §20.43, warn-code 399), ``headers`` whatever header section
    was parsed before the failure, so the transport can still address a response.
    """

    def __init__(
        self,
        reason: str,
        status: int = 400,
        headers: Headers | None = None,
        is_request: bool | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.headers = headers
        self.is_request = is_request
