"""Shim: the Countdown teacher moved to :mod:`reasonloop.engines.countdown`.

shim: remove once upper floors import from reasonloop.engines.countdown
"""

from reasonloop.engines.countdown import Trace, answer_only, solve

__all__ = ["Trace", "answer_only", "solve"]
