"""Numbers in the words of the findings, the front page and the recommendation: one way to
write a speed-up, a share and a num_workers setting everywhere (single backticks mark code,
as the findings' Markdown and the report's reStructuredText both show it)."""

from __future__ import annotations


def times(value: float) -> str:
    """A speed-up or ratio: ``1.43x``."""
    return f"{value:.2f}x"


def percent(value: float) -> str:
    """A share: ``0.1`` -> ``10%``."""
    return f"{100 * value:.0f}%"


def workers(n) -> str:
    """A num_workers setting as code: ``num_workers=2`` in backticks."""
    return f"`num_workers={int(n)}`"
