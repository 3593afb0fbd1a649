"""The supported subset of ROS 2 launch XML, checked when a file is loaded (before anything runs).

Every tag and attribute here has the name and meaning it has in ROS 2 (launch, launch_ros, Jazzy
frontend). Anything else is rejected with the file, the line and the offending tag, attribute or
substitution, instead of being silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from optimus_control.errors import LaunchError, suggest
from optimus_control.launch.substitutions import parse_template
from optimus_control.launch.xml_tree import Element

CONDITIONS = frozenset({"if", "unless"})


@dataclass(frozen=True)
class TagSpec:
    attributes: frozenset[str]
    required: frozenset[str] = frozenset()
    children: frozenset[str] = frozenset()
    literal: frozenset[str] = frozenset()  # attributes that take no substitutions
    is_action: bool = True  # actions accept if/unless
    nested: dict[str, TagSpec] = field(default_factory=dict)


def _spec(attrs: str, required: str = "", children: str = "", literal: str = "", action: bool = True) -> TagSpec:
    return TagSpec(
        frozenset(attrs.split()), frozenset(required.split()), frozenset(children.split()), frozenset(literal.split()), action
    )


_PROCESS_ATTRS = "name cwd output launch-prefix on_exit sigterm_timeout sigkill_timeout"

ACTIONS: dict[str, TagSpec] = {
    "arg": _spec("name default description", "name", "choice"),
    "let": _spec("name value", "name value"),
    "node": _spec(f"pkg exec exec_name namespace args ros_args {_PROCESS_ATTRS}", "exec", "param remap env"),
    "executable": _spec(f"cmd {_PROCESS_ATTRS}", "cmd", "env"),
    "include": _spec("file", "file", "arg"),
    "group": _spec("scoped forwarding", "", "keep", literal="scoped forwarding"),
    "push-ros-namespace": _spec("namespace", "namespace"),
    "push_ros_namespace": _spec("namespace", "namespace"),
    "set_parameter": _spec("name value", "name value"),
    "set_remap": _spec("from to", "from to"),
    "set_env": _spec("name value", "name value"),
    "unset_env": _spec("name", "name"),
    "log": _spec("message", "message"),
}

# Non-action children, by parent tag.
CHILDREN: dict[str, dict[str, TagSpec]] = {
    "arg": {"choice": _spec("value", "value", action=False)},
    "node": {
        "param": _spec("name value type from", "", "param", literal="type", action=False),
        "remap": _spec("from to", "from to", action=False),
        "env": _spec("name value", "name value", action=False),
    },
    "param": {"param": _spec("name value type", "name", "param", literal="type", action=False)},
    "executable": {"env": _spec("name value", "name value", action=False)},
    "include": {"arg": _spec("name value", "name value", action=False)},
    "group": {"keep": _spec("name value", "name value", action=False)},
}

PARAM_TYPES = ("str", "bool", "int", "float")


def check_file(root: Element) -> None:
    """Validate a whole launch file and parse all its attribute values; raises LaunchError."""
    if root.tag != "launch":
        raise LaunchError(f"{root.where}: the root tag must be <launch>, not <{root.tag}>")
    if root.attrs:
        raise LaunchError(f"{root.where}: <launch> takes no attributes (found '{next(iter(root.attrs))}')")
    for child in root.children:
        _check(child, parent=root, allowed=ACTIONS)


def _check(el: Element, parent: Element, allowed: dict[str, TagSpec]) -> None:
    spec = allowed.get(el.tag)
    if spec is None:
        where = "at the top level of <launch>" if parent.tag == "launch" else f"inside <{parent.tag}>"
        raise LaunchError(
            f"{el.where}: unsupported tag <{el.tag}> {where}{suggest(el.tag, allowed)}; "
            f"supported here: {', '.join('<' + t + '>' for t in allowed)}"
        )
    permitted = spec.attributes | (CONDITIONS if spec.is_action else frozenset())
    for attr, value in el.attrs.items():
        if attr not in permitted:
            raise LaunchError(
                f"{el.where}: <{el.tag}> has unsupported attribute '{attr}'{suggest(attr, permitted)}; "
                f"supported: {', '.join(sorted(permitted))}"
            )
        if attr in spec.literal:
            continue
        el.templates[attr] = parse_template(value, f"{el.where}: <{el.tag} {attr}=...>")
    missing = [a for a in sorted(spec.required) if a not in el.attrs]
    if missing:
        raise LaunchError(f"{el.where}: <{el.tag}> needs attribute '{missing[0]}'")
    if "if" in el.attrs and "unless" in el.attrs:
        raise LaunchError(f"{el.where}: <{el.tag}> has both 'if' and 'unless'; use one")
    _check_specifics(el)
    children = dict(CHILDREN.get(el.tag, {}))
    if el.tag == "group":
        children.update(ACTIONS)
    for child in el.children:
        if not children:
            raise LaunchError(f"{child.where}: <{el.tag}> takes no child tags (found <{child.tag}>)")
        _check(child, parent=el, allowed=children)


def _check_specifics(el: Element) -> None:
    if el.tag == "group":
        for attr in ("scoped", "forwarding"):
            if attr in el.attrs and el.attrs[attr].lower() not in ("true", "false"):
                raise LaunchError(f"{el.where}: <group {attr}=...> must be true or false, not {el.attrs[attr]!r}")
    if el.tag == "param":
        has_name, has_from = "name" in el.attrs, "from" in el.attrs
        if has_name == has_from:
            raise LaunchError(f"{el.where}: <param> needs exactly one of 'name' or 'from'")
        if has_from and (len(el.attrs) > 1 or el.children):
            raise LaunchError(f"{el.where}: <param from=...> takes no other attributes and no children")
        if has_name and ("value" in el.attrs) == bool(el.children):
            raise LaunchError(f"{el.where}: <param name=...> needs either a 'value' or nested <param> tags")
        if "type" in el.attrs and el.attrs["type"] not in PARAM_TYPES:
            raise LaunchError(
                f"{el.where}: <param type={el.attrs['type']!r}> is not supported; use one of {', '.join(PARAM_TYPES)}"
            )
