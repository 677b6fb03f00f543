"""Exceptions of the Diameter node's public API."""

from __future__ import annotations


class DiameterError(Exception):
    """Base class of the node's errors."""


class DiameterTimeout(DiameterError, TimeoutError):
    """No answer within the request's timeout; the pending entry has been freed.

    A subclass of the built-in ``TimeoutError`` (``asyncio.TimeoutError`` on Python >= 3.11).
    """


class PeerUnavailable(DiameterError):
    """No peer in the Open state matches the request's destination."""


class PeerClosed(DiameterError, ConnectionError):
    """The connection closed before the answer arrived (or before the request could be sent)."""


class CapabilitiesExchangeFailed(DiameterError):
    """The remote peer rejected our CER, or the CEA did not come in time."""

    def __init__(self, message: str, result_code: int | None = None) -> None:
        super().__init__(message)
        self.result_code = result_code


class AnswerError(DiameterError):
    """Raised by a handler to answer with ``result_code`` (and optionally Failed-AVP).

    ``failed_avp`` is the offending AVP (a ``diam.message.Avp`` or its wire bytes), placed inside
    Failed-AVP as RFC 6733 §7.5 asks; ``error_message`` becomes the Error-Message AVP. With a
    ``vendor_id`` (e.g. 10415 for TS 29.212/29.214 codes such as 5065) the code travels in
    Experimental-Result{Vendor-Id, Experimental-Result-Code} instead of Result-Code.
    """

    def __init__(
        self,
        result_code: int,
        failed_avp: object | None = None,
        error_message: str | None = None,
        *,
        vendor_id: int = 0,
    ) -> None:
        super().__init__(f"{result_code}: {error_message or ''}".rstrip(": "))
        self.result_code = int(result_code)
        self.failed_avp = failed_avp
        self.error_message = error_message
        self.vendor_id = vendor_id
