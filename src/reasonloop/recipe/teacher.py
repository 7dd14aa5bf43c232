"""Shim: the Countdown teacher engine moved to :mod:`reasonloop.engines.countdown` (engine spec
``countdown``, loaded by :func:`reasonloop.engines.load_engine`).

shim: remove once upper floors import from reasonloop.engines.countdown
"""

from reasonloop.engines.countdown import SPEC, CountdownTeacher

__all__ = ["SPEC", "CountdownTeacher"]
