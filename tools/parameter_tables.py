#!/usr/bin/env python3
"""Print the README's parameter tables from the settings schemas, or rewrite them in a README.

    python tools/parameter_tables.py                 # one markdown table per node on stdout
    python tools/parameter_tables.py --write README.md

``--write`` replaces the text between ``<!-- parameters:<node>:begin -->`` and
``<!-- parameters:<node>:end -->``; nodes without markers get them in a section appended at the end.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from optimus_control.model.settings_schema import markdown_table
from optimus_control.node_settings import node_schemas


def begin_marker(node: str) -> str:
    return f"<!-- parameters:{node}:begin -->"


def end_marker(node: str) -> str:
    return f"<!-- parameters:{node}:end -->"


def tables() -> dict[str, str]:
    return {node: markdown_table(cls) for node, cls in node_schemas().items()}


def block(node: str, table: str) -> str:
    return f"{begin_marker(node)}\n{table}{end_marker(node)}"


def rewrite(text: str, generated: dict[str, str]) -> str:
    """``text`` with every node's marked block replaced (missing ones appended under a heading)."""
    missing = []
    for node, table in generated.items():
        pattern = re.compile(re.escape(begin_marker(node)) + r".*?" + re.escape(end_marker(node)), re.DOTALL)
        if pattern.search(text):
            text = pattern.sub(lambda _m, n=node, t=table: block(n, t), text)
        else:
            missing.append(node)
    if missing:
        text = text.rstrip("\n") + "\n\n## Node parameters\n" + "".join(
            f"\n### `{node}` (`config/{node}.yaml`)\n{block(node, generated[node])}\n" for node in missing)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", metavar="README", type=Path, help="rewrite the marked tables in this file")
    args = parser.parse_args(argv)
    generated = tables()
    if args.write is None:
        for node, table in generated.items():
            print(f"### `{node}`\n{block(node, table)}\n")
        return 0
    args.write.write_text(rewrite(args.write.read_text(), generated))
    print(f"{args.write}: parameter tables of {', '.join(generated)} written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
