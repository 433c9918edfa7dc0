"""Exception hierarchy of the dp package. Messages name parameters, never secrets."""

from __future__ import annotations


class DpError(Exception):
    """Base class of every error raised by blindsum.dp."""


class DpParameterError(DpError, ValueError):
    """A mechanism or accounting parameter is outside its allowed range."""


class DpParameterWarning(UserWarning):
    """A parameter is allowed but makes the mechanism wasteful (e.g. sigma/gamma < 2)."""


class PrivacyBudgetExceeded(DpError):
    """Charging a round would take the ledger past its epsilon cap; nothing was recorded."""
