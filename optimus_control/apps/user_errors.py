"""What an entry point prints for a mistake in a file or on its command line: the message, no traceback.

The loaders already say what is wrong and where (``ConfigError`` with the file and line); a traceback
around that message only hides it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from optimus_control.errors import OptimusError

EXIT_USAGE = 2  # a file or an argument is wrong; nothing ran
EXIT_FAILED = 1  # the run itself failed
USER_ERRORS = (OptimusError, OSError)


def describe(exc: BaseException) -> str:
    """One readable line for a user's mistake."""
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    return str(exc)


@contextmanager
def reported_as(prog: str) -> Iterator[None]:
    """Turn a user's mistake raised inside into ``prog: error: <message>`` on stderr and exit status 2."""
    try:
        yield
    except USER_ERRORS as exc:
        print(f"{prog}: error: {describe(exc)}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_USAGE) from None
