"""What an entry point prints for a mistake in a file or on its command line: the message, no traceback.

The loaders already say what is wrong and where (``ConfigError``); a traceback around that message only
hides it. YAML syntax errors are shown as ``file:line:column: problem``, the way compilers report them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import yaml

from optimus_control.errors import OptimusError

EXIT_USAGE = 2  # a file or an argument is wrong; nothing ran
EXIT_FAILED = 1  # the run itself failed
_YAML_MARKER = ": not valid YAML:"  # how the loaders prefix a YAML error with the file it came from
USER_ERRORS = (OptimusError, yaml.YAMLError, OSError)


def describe(exc: BaseException) -> str:
    """One readable message for a user's mistake; YAML syntax errors as ``file:line:column: problem``."""
    cause = exc if isinstance(exc, yaml.YAMLError) else exc.__cause__
    if isinstance(cause, yaml.YAMLError):
        text = str(exc)
        source = text.split(_YAML_MARKER, 1)[0] if _YAML_MARKER in text else ""
        return _yaml_message(source, cause)
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    return str(exc)


def _yaml_message(source: str, exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        where = f"{source or 'YAML'}:{mark.line + 1}:{mark.column + 1}"
        problem = exc.problem or "syntax error"
        if exc.context and exc.context_mark is not None:
            problem += f" ({exc.context} at line {exc.context_mark.line + 1})"
        return f"{where}: not valid YAML: {problem}"
    if isinstance(exc, yaml.reader.ReaderError):
        return f"{source or 'YAML'}: not valid YAML: {exc.reason} (character {exc.position})"
    return f"{source or 'YAML'}: not valid YAML: {str(exc).splitlines()[0]}"


@contextmanager
def reported_as(prog: str) -> Iterator[None]:
    """Turn a user's mistake raised inside into ``prog: error: <message>`` on stderr and exit status 2."""
    try:
        yield
    except USER_ERRORS as exc:
        print(f"{prog}: error: {describe(exc)}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_USAGE) from None
