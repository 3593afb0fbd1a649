"""The README's parameter tables are the ones generated from the settings schemas.

Regenerate them with ``python tools/parameter_tables.py --write README.md`` after changing a schema.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from optimus_control.model.settings_schema import markdown_table
from optimus_control.node_settings import node_schemas

REPO = Path(__file__).resolve().parents[1]


def _tool():
    spec = importlib.util.spec_from_file_location("parameter_tables", REPO / "tools" / "parameter_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("node", sorted(node_schemas()))
def test_readme_holds_the_generated_parameter_table(node):
    tool, text = _tool(), (REPO / "README.md").read_text()
    begin, end = tool.begin_marker(node), tool.end_marker(node)
    assert begin in text and end in text, (f"README.md has no {begin} ... {end} block: run "
                                           f"`python tools/parameter_tables.py --write README.md`")
    block = text.split(begin, 1)[1].split(end, 1)[0]
    assert block == "\n" + markdown_table(node_schemas()[node]), (
        f"README.md's {node} parameter table is not the schema's: run `python tools/parameter_tables.py --write README.md`")


def test_write_mode_replaces_marked_blocks_and_appends_missing_ones():
    tool = _tool()
    generated = {"sim": "| new |\n", "perception": "| p |\n"}
    text = f"intro\n{tool.begin_marker('sim')}\n| old |\n{tool.end_marker('sim')}\ntail\n"
    out = tool.rewrite(text, generated)
    assert out.startswith(f"intro\n{tool.begin_marker('sim')}\n| new |\n{tool.end_marker('sim')}\ntail\n")
    assert "## Node parameters" in out and f"{tool.begin_marker('perception')}\n| p |\n" in out
    assert tool.rewrite(out, generated) == out
