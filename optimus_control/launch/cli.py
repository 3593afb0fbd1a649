"""`optimus-launch`: run ROS 2 launch XML files where the ROS 2 launch system is not installed.

    optimus-launch sim.launch.xml scene:=sorting_cell gui:=true
    optimus-launch optimus_control factory_demo.launch.xml job:=sort_by_colour
    optimus-launch ./my.launch.xml --show-args
    optimus-launch sim.launch.xml --print        # resolve and show the command lines, start nothing

Exit status: 0 on a clean run or a requested shutdown; 1 when a launched process failed (exited
non-zero without being asked to stop; its own error message is repeated at the end of the output);
2 when the launch file or the command line is wrong (reported before anything starts).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from optimus_control.errors import LaunchError, suggest
from optimus_control.launch.context import LaunchContext
from optimus_control.launch.interpreter import Interpreter, declared_arguments
from optimus_control.launch.packages import OWN_PACKAGE, find_package_share
from optimus_control.launch.supervisor import Supervisor

EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="optimus-launch",
        description="Run a ROS 2 launch XML file (same files and arguments as `ros2 launch`).",
        epilog="A bare file name is looked up in the launch/ directory of optimus_control. Exit status: 0 "
               "after a clean run or a requested shutdown, 1 when a launched process failed (its error message "
               "is repeated at the end), 2 when the launch file or the command line is wrong (nothing is started "
               "then).",
    )
    parser.add_argument("target", nargs="+", metavar="ARG",
                        help="a launch file path, a file name in optimus_control's launch/, or a package and a "
                             "file name; then launch arguments as name:=value")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-s", "--show-args", "--show-arguments", action="store_true",
                       help="list the launch arguments with defaults and descriptions, then exit")
    group.add_argument("-p", "--print", dest="print_only", action="store_true",
                       help="print the processes that would be started (command lines), then exit")
    return parser


def split_target(items: list[str]) -> tuple[list[str], dict[str, str]]:
    """Positional words and `name:=value` overrides, in the way `ros2 launch` separates them."""
    words: list[str] = []
    overrides: dict[str, str] = {}
    for item in items:
        if ":=" in item:
            name, _, value = item.partition(":=")
            if not name:
                raise LaunchError(f"malformed launch argument {item!r}; expected name:=value")
            overrides[name] = value
        elif overrides:
            raise LaunchError(f"unexpected {item!r} after launch arguments; give the file first")
        else:
            words.append(item)
    return words, overrides


def find_launch_file(words: list[str]) -> Path:
    """The launch file named by `file` or `package file`, like ros2 launch."""
    if len(words) == 1:
        path = Path(words[0]).expanduser()
        if path.is_file():
            return path
        if "/" in words[0]:
            raise LaunchError(f"launch file {words[0]!r} does not exist")
        return _find_in_package(OWN_PACKAGE, words[0])
    if len(words) == 2:
        return _find_in_package(words[0], words[1])
    raise LaunchError(f"expected a launch file or a package and a launch file, got {' '.join(words)!r}")


def _find_in_package(package: str, name: str) -> Path:
    share = find_package_share(package)
    direct = share / "launch" / name
    if direct.is_file():
        return direct
    matches = sorted(p for p in share.rglob(name) if p.is_file())
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise LaunchError(f"several files named {name!r} in {share}: {', '.join(map(str, matches))}")
    available = sorted(p.name for p in (share / "launch").glob("*.launch.xml"))
    raise LaunchError(
        f"no launch file {name!r} in package {package!r} ({share}){suggest(name, available)}; "
        f"available: {', '.join(available) or 'none'}"
    )


def show_arguments(path: Path, overrides: dict[str, str]) -> str:
    lines = ["Arguments (pass arguments as '<name>:=<value>'):", ""]
    arguments = declared_arguments(path, overrides)
    for arg in arguments:
        lines.append(f"    '{arg.name}':")
        lines.append(f"        {arg.description or 'no description given'}")
        if arg.choices:
            lines.append(f"        Valid choices are: {arg.choices}")
        lines.append(f"        (default: '{arg.default}')" if arg.default is not None else "        (required)")
        lines.append("")
    if not arguments:
        lines.append("    No arguments.")
    return "\n".join(lines)


def resolve(path: Path, overrides: dict[str, str], resolve_executables: bool = True) -> Interpreter:
    """Interpret a launch file with command-line overrides; the result lists the processes to start."""
    interpreter = Interpreter(LaunchContext(overrides), resolve_executables=resolve_executables)
    interpreter.run_file(path)
    return interpreter


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_intermixed_args(argv)
    try:
        words, overrides = split_target(args.target)
        path = find_launch_file(words)
        if args.show_args:
            print(show_arguments(path, overrides))
            return 0
        interpreter = resolve(path, overrides)
        declared = {a.name for a in declared_arguments(path, overrides)}
        for name in overrides:
            if name not in declared:
                print(f"[WARN] [optimus-launch]: argument '{name}' is not declared by {path.name} or the files it "
                      f"includes{suggest(name, declared)}", file=sys.stderr)
    except LaunchError as exc:
        print(f"optimus-launch: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.print_only:
        for message in interpreter.messages:
            print(f"[INFO] [launch.user]: {message}")
        for spec in interpreter.processes:
            print(spec.describe())
        return 0
    supervisor = Supervisor(interpreter.processes)
    for message in interpreter.messages:
        print(f"[INFO] [launch.user]: {message}", flush=True)
    code = supervisor.run()
    for failure in supervisor.failures:
        print(f"optimus-launch: error: {failure.describe()}", file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
