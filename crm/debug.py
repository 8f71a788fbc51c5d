"""Django's DEBUG error page at a bounded cost (`DEFAULT_EXCEPTION_REPORTER`).

Django prints every local variable of every frame in full (pprint) before it trims the
text. A request body nested 500 levels deep that ended in a RecursionError gave about
1,000 frames each holding part of it: the page took more than three minutes to render
and weighed 3.5 MB, holding a worker all along. Here a variable is shown within
`reprlib`'s limits (a few levels, items and characters), and a traceback longer than
`HEAD_FRAMES + TAIL_FRAMES` keeps its first and last frames and says how many it left out.
"""

import reprlib
from typing import Any

from django.views.debug import ExceptionReporter

HEAD_FRAMES = 20
TAIL_FRAMES = 40


def _bounded_repr() -> reprlib.Repr:
    shown = reprlib.Repr()
    shown.maxlevel = 3
    shown.maxdict = shown.maxlist = shown.maxtuple = shown.maxset = shown.maxfrozenset = shown.maxdeque = 10
    shown.maxarray = 10
    shown.maxlong = 100
    shown.maxstring = shown.maxother = 1000
    return shown


BOUNDED = _bounded_repr()


class Shown:
    """A variable as already shown: pprint prints it as it is."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


class BoundedExceptionReporter(ExceptionReporter):
    def get_traceback_frames(self) -> list[dict[str, Any]]:
        frames = super().get_traceback_frames()
        if len(frames) > HEAD_FRAMES + TAIL_FRAMES:
            left_out = len(frames) - HEAD_FRAMES - TAIL_FRAMES
            gap = {
                **frames[HEAD_FRAMES],
                "function": f"[{left_out} frames left out of this page]",
                "pre_context": [],
                "context_line": "",
                "post_context": [],
                "vars": [],
                "colno": "",
                "tb_area_colno": "",
            }
            frames = [*frames[:HEAD_FRAMES], gap, *frames[-TAIL_FRAMES:]]
        for frame in frames:
            if "vars" in frame:
                frame["vars"] = [(name, Shown(BOUNDED.repr(value))) for name, value in frame["vars"]]
        return frames
