"""Interpret a launch XML file into the list of processes to start, with ROS 2 launch semantics.

Actions run in document order against a LaunchContext: `<arg>` sets a configuration only when it is
not set yet (command line and include arguments win), `<let>` always sets it, `<include>` sets its
arguments in the CURRENT scope and interprets the file there (unscoped, like ROS 2), a `<group>`
is scoped unless scoped="false". `<node>` becomes a command line `exec [args] [--ros-args ros_args]
--ros-args -r __node:=name -r __ns:=/ns -p global:=v ... --params-file f ... -r from:=to` in the order
launch_ros builds it: `<set_parameter>` globals first, then the node's `<param>` tags in document order,
each run of `<param name value>` tags written to a parameter file keyed by the node's full name (as
launch_ros does; see parameter_files.py for why `-p` would lose to a `/**/node` file).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from optimus_control.errors import LaunchError
from optimus_control.launch.context import LaunchContext, make_namespace_absolute, prefix_namespace
from optimus_control.launch.packages import resolve_executable
from optimus_control.launch.parameter_files import node_parameters_key, write_parameters_file
from optimus_control.launch.process_spec import DEFAULT_SIGKILL_TIMEOUT_S, DEFAULT_SIGTERM_TIMEOUT_S, ProcessSpec
from optimus_control.launch.substitutions import Template, evaluate_condition, evaluate_substitution
from optimus_control.launch.vocabulary import check_file
from optimus_control.launch.xml_tree import Element, parse_file

MAX_INCLUDE_DEPTH = 40
_NODE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NAMESPACE = re.compile(r"^/$|^(/[A-Za-z_][A-Za-z0-9_]*)+$")
# Environment the launcher adds for children unless already set: unbuffered Python output, so the
# prefixed lines appear when they are printed and not when a pipe buffer fills.
_CHILD_ENV_DEFAULTS = {"PYTHONUNBUFFERED": "1"}


def load_launch_file(path: str | Path) -> Element:
    """Parse and validate a launch file; LaunchError names file, line and offending tag/substitution."""
    if str(path).endswith((".py", ".yaml", ".yml")):
        raise LaunchError(f"{path}: optimus-launch runs XML launch files only (*.launch.xml), not Python or YAML ones")
    root = parse_file(path)
    check_file(root)
    return root


@dataclass
class DeclaredArgument:
    name: str
    default: str | None  # as written (substitutions unevaluated)
    description: str
    choices: list[str]
    where: str


class Interpreter:
    """Runs the actions of launch files; collects processes and `<log>` messages."""

    def __init__(self, context: LaunchContext, resolve_executables: bool = True):
        self.context = context
        self.resolve_executables = resolve_executables
        self.processes: list[ProcessSpec] = []
        self.messages: list[str] = []
        self._depth = 0
        self._cache: dict[Path, Element] = {}

    # --- files ---------------------------------------------------------------------------------

    def run_file(self, path: str | Path) -> None:
        path = Path(path).absolute()
        root = self._load(path)
        self._run_elements(root.children, path)

    def _load(self, path: Path) -> Element:
        if path not in self._cache:
            self._cache[path] = load_launch_file(path)
        return self._cache[path]

    def _run_elements(self, elements: list[Element], file: Path) -> None:
        saved = self.context.current_file
        self.context.current_file = file
        try:
            for el in elements:
                self._visit(el)
        finally:
            self.context.current_file = saved

    # --- helpers -------------------------------------------------------------------------------

    def _eval(self, el: Element, attr: str, default: str | None = None) -> str | None:
        template: Template | None = el.templates.get(attr)
        if template is None:
            return el.attrs.get(attr, default)
        return template.evaluate(self.context)

    def _require(self, el: Element, attr: str) -> str:
        value = self._eval(el, attr)
        assert value is not None  # vocabulary.check guarantees required attributes
        return value

    def _condition_holds(self, el: Element) -> bool:
        if "if" in el.attrs:
            return evaluate_condition(self._require(el, "if"), f"{el.where}: <{el.tag} if=...>")
        if "unless" in el.attrs:
            return not evaluate_condition(self._require(el, "unless"), f"{el.where}: <{el.tag} unless=...>")
        return True

    def _tokens(self, el: Element, attr: str) -> list[str]:
        """A command-line attribute split into arguments: literal text splits on spaces (shell
        quoting honoured), a substitution's value stays inside the argument it appears in."""
        template: Template | None = el.templates.get(attr)
        if template is None:
            return []
        tokens: list[str] = []
        current: str | None = None
        for part in template.parts:
            if not isinstance(part, str):
                current = (current or "") + evaluate_substitution(part, self.context)
                continue
            try:
                pieces = shlex.split(part)
            except ValueError as exc:
                raise el.fail(f"attribute '{attr}': {exc}") from None
            if part[:1].isspace() and current is not None:
                tokens.append(current)
                current = None
            for i, piece in enumerate(pieces):
                if i > 0 and current is not None:
                    tokens.append(current)
                    current = None
                current = (current or "") + piece
            if part[-1:].isspace() and current is not None:
                tokens.append(current)
                current = None
        if current is not None:
            tokens.append(current)
        return tokens

    def _timeout(self, el: Element, attr: str, default_s: float) -> float:
        value = self._eval(el, attr)
        if value is None:
            value = self.context.configurations.get(attr, str(default_s))
        try:
            seconds = float(value)
        except ValueError:
            raise el.fail(f"{attr}={value!r} is not a number of seconds") from None
        if seconds < 0:
            raise el.fail(f"{attr}={value!r} must be >= 0 s")
        return seconds

    # --- actions -------------------------------------------------------------------------------

    def _visit(self, el: Element) -> None:
        if not self._condition_holds(el):
            return
        handler = getattr(self, "_do_" + el.tag.replace("-", "_"))
        handler(el)

    def _do_arg(self, el: Element) -> None:
        name = self._require(el, "name")
        choices = [self._require(c, "value") for c in el.children]
        if name not in self.context.configurations:
            default = self._eval(el, "default")
            if default is None:
                description = el.attrs.get("description", "")
                raise el.fail(
                    f"required launch argument '{name}' was not provided"
                    f"{' (' + description + ')' if description else ''}; pass {name}:=<value>"
                )
            self.context.configurations[name] = default
        value = self.context.configurations[name]
        if choices and value not in choices:
            raise el.fail(f"argument '{name}' is {value!r}; valid choices are {choices}")

    def _do_let(self, el: Element) -> None:
        self.context.configurations[self._require(el, "name")] = self._require(el, "value")

    def _do_include(self, el: Element) -> None:
        location = self._require(el, "file")
        path = Path(location).expanduser()
        if not path.is_file():
            raise el.fail(f"included launch file {location!r} does not exist")
        if self._depth >= MAX_INCLUDE_DEPTH:
            raise el.fail(f"includes nested deeper than {MAX_INCLUDE_DEPTH} levels (an include cycle?)")
        root = self._load(path.absolute())
        passed = [(self._require(a, "name"), a) for a in el.children]
        # ROS 2 checks (best effort) that unconditional arguments without default are passed.
        passed_names = {n for n, _ in passed}
        for arg in _declared_arguments(root, conditional=False):
            if arg.default is None and arg.name not in passed_names:
                raise el.fail(f"included launch file {path} needs argument '{arg.name}' ({arg.where}); pass it "
                              f"with <arg name=\"{arg.name}\" value=\"...\"/>")
        for name, arg_el in passed:
            self.context.configurations[name] = self._require(arg_el, "value")
        self._depth += 1
        try:
            self._run_elements(root.children, path.absolute())
        finally:
            self._depth -= 1

    def _do_group(self, el: Element) -> None:
        scoped = el.attrs.get("scoped", "true").lower() == "true"
        forwarding = el.attrs.get("forwarding", "true").lower() == "true"
        keeps = {self._require(k, "name"): self._require(k, "value") for k in el.children if k.tag == "keep"}
        actions = [c for c in el.children if c.tag != "keep"]
        if not scoped:
            self.context.configurations.update(keeps)
            for child in actions:
                self._visit(child)
            return
        self.context.push()
        try:
            if forwarding:
                self.context.configurations.update(keeps)
            else:
                self.context.reset(keeps)
            for child in actions:
                self._visit(child)
        finally:
            self.context.pop()

    def _do_push_ros_namespace(self, el: Element) -> None:
        pushed = self._require(el, "namespace")
        namespace = make_namespace_absolute(prefix_namespace(self.context.scope.ros_namespace, pushed))
        if namespace is None or not _NAMESPACE.match(namespace):
            raise el.fail(f"resulting namespace {namespace!r} is invalid (pushed {pushed!r} onto "
                          f"{self.context.scope.ros_namespace!r})")
        self.context.scope.ros_namespace = namespace

    def _do_set_parameter(self, el: Element) -> None:
        self.context.scope.global_parameters.append((self._require(el, "name"), self._require(el, "value")))

    def _do_set_remap(self, el: Element) -> None:
        self.context.scope.global_remaps.append((self._require(el, "from"), self._require(el, "to")))

    def _do_set_env(self, el: Element) -> None:
        self.context.environment[self._require(el, "name")] = self._require(el, "value")

    def _do_unset_env(self, el: Element) -> None:
        self.context.environment.pop(self._require(el, "name"), None)

    def _do_log(self, el: Element) -> None:
        self.messages.append(self._require(el, "message"))

    def _do_node(self, el: Element) -> None:
        package = self._eval(el, "pkg")
        executable = self._require(el, "exec")
        name = self._eval(el, "name")
        if name is not None and not _NODE_NAME.match(name):
            raise el.fail(f"node name {name!r} is invalid (letters, digits and '_', not starting with a digit)")
        namespace = make_namespace_absolute(prefix_namespace(self.context.scope.ros_namespace, self._eval(el, "namespace")))
        if namespace is not None and not _NAMESPACE.match(namespace):
            raise el.fail(f"node namespace {namespace!r} is invalid")
        cmd = self._launch_prefix(el) + self._executable_argv(el, package, executable)
        cmd += self._tokens(el, "args")
        if "ros_args" in el.attrs:
            cmd += ["--ros-args", *self._tokens(el, "ros_args")]
        cmd.append("--ros-args")
        if name is not None:
            cmd += ["-r", f"__node:={name}"]
        if namespace is not None:
            cmd += ["-r", f"__ns:={namespace}"]
        for param_name, value in self.context.scope.global_parameters:
            cmd += ["-p", f"{param_name}:={value}"]
        parameter_files: dict[str, dict[str, object]] = {}
        cmd += self._parameter_arguments(el, name, namespace, parameter_files)
        remaps = list(self.context.scope.global_remaps)
        remaps += [(self._require(r, "from"), self._require(r, "to")) for r in el.children if r.tag == "remap"]
        for source, target in remaps:
            cmd += ["-r", f"{source}:={target}"]
        label = name or self._eval(el, "exec_name") or Path(executable).name
        self._add_process(el, label, cmd, node_name=name, namespace=namespace)
        self.processes[-1].parameter_files = parameter_files

    def _do_executable(self, el: Element) -> None:
        tokens = self._tokens(el, "cmd")
        if not tokens:
            raise el.fail("cmd is empty")
        program = tokens[0]
        if "/" not in program:
            found = shutil.which(program, path=self.context.environment.get("PATH"))
            if found is None and self.resolve_executables:
                raise el.fail(f"program {program!r} not found on PATH")
            program = found or program
        cmd = self._launch_prefix(el) + [program] + tokens[1:]
        self._add_process(el, self._eval(el, "name") or Path(tokens[0]).name, cmd)

    # --- node pieces ---------------------------------------------------------------------------

    def _launch_prefix(self, el: Element) -> list[str]:
        return self._tokens(el, "launch-prefix")

    def _executable_argv(self, el: Element, package: str | None, executable: str) -> list[str]:
        if package is None:
            found = executable if "/" in executable else shutil.which(executable, path=self.context.environment.get("PATH"))
            if found is None:
                if self.resolve_executables:
                    raise el.fail(f"executable {executable!r} not found on PATH (give pkg= to run a package's node)")
                found = executable
            return [found]
        if not self.resolve_executables:
            return [f"<{package}/{executable}>"]
        try:
            return resolve_executable(package, executable)
        except LaunchError as exc:
            raise el.fail(str(exc)) from None

    def _parameter_arguments(self, el: Element, name: str | None, namespace: str | None,
                             generated: dict[str, dict[str, object]]) -> list[str]:
        """`--params-file` arguments for the node's `<param>` tags in document order: a `from` file as
        given, each run of name/value tags as one generated file (contents also stored in `generated`)."""
        args: list[str] = []
        values: dict[str, object] = {}

        def flush() -> None:
            if not values:
                return
            key = node_parameters_key(name, namespace)
            path = str(write_parameters_file(key, dict(values), stem=name or "node"))
            generated[path] = {key: {"ros__parameters": dict(values)}}
            args.extend(["--params-file", path])
            values.clear()

        for param in (c for c in el.children if c.tag == "param"):
            if "from" in param.attrs:
                flush()
                path = Path(self._require(param, "from")).expanduser()
                if not path.is_file():
                    raise param.fail(f"parameter file {str(path)!r} does not exist")
                args += ["--params-file", str(path.absolute())]
            else:
                self._collect_parameter(param, "", values)
        flush()
        return args

    def _collect_parameter(self, el: Element, prefix: str, values: dict[str, object]) -> None:
        name = prefix + self._require(el, "name")
        nested = [c for c in el.children if c.tag == "param"]
        if nested:
            for child in nested:
                self._collect_parameter(child, name + ".", values)
            return
        values.pop(name, None)  # a repeated name moves to its latest place, like a later override
        values[name] = _typed_parameter_value(el, self._require(el, "value"))

    def _add_process(self, el: Element, label: str, cmd: list[str], node_name: str | None = None,
                     namespace: str | None = None) -> None:
        output = self._eval(el, "output", "log")
        if output not in ("screen", "log", "both"):
            raise el.fail(f"output={output!r} is not one of screen, log, both")
        on_exit = self._eval(el, "on_exit")
        if on_exit not in (None, "shutdown"):
            raise el.fail(f"on_exit={on_exit!r} is not supported (only on_exit=\"shutdown\")")
        env = dict(self.context.environment)
        for key, value in _CHILD_ENV_DEFAULTS.items():
            env.setdefault(key, value)
        env.update({self._require(e, "name"): self._require(e, "value") for e in el.children if e.tag == "env"})
        extra_env = {k: v for k, v in env.items() if os.environ.get(k) != v}
        taken = {p.label for p in self.processes}
        unique, n = label, 2
        while unique in taken:
            unique, n = f"{label}-{n}", n + 1
        self.processes.append(ProcessSpec(
            label=unique, cmd=cmd, env=env, where=el.where, cwd=self._eval(el, "cwd"), output=output,
            on_exit_shutdown=on_exit == "shutdown",
            sigterm_timeout_s=self._timeout(el, "sigterm_timeout", DEFAULT_SIGTERM_TIMEOUT_S),
            sigkill_timeout_s=self._timeout(el, "sigkill_timeout", DEFAULT_SIGKILL_TIMEOUT_S),
            node_name=node_name, namespace=namespace, extra_env=extra_env,
        ))


def _typed_parameter_value(el: Element, value: str) -> object:
    """The value with the type launch gives it: `type` when given, else what YAML reads (as rcl and
    launch_ros do), keeping the text when YAML reads something that is not a parameter value."""
    kind = el.attrs.get("type")
    if kind == "str":
        return value
    if kind is None:
        try:
            typed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        return typed if _is_parameter_value(typed) else value
    lowered = value.strip().lower()
    if kind == "bool":
        if lowered not in ("true", "false"):
            raise el.fail(f"value {value!r} is not a bool (true or false)")
        return lowered == "true"
    try:
        return int(value) if kind == "int" else float(value)
    except ValueError:
        raise el.fail(f"value {value!r} is not a{'n' if kind == 'int' else ''} {kind}") from None


def _is_parameter_value(value: object) -> bool:
    """A scalar ROS parameter type, or a non-empty list of one scalar type (a ROS array parameter)."""
    scalar = (bool, int, float, str)
    if isinstance(value, scalar):
        return True
    return isinstance(value, list) and bool(value) and all(isinstance(v, scalar) for v in value) \
        and len({type(v) for v in value}) == 1


def _declared_arguments(root: Element, conditional: bool = True) -> list[DeclaredArgument]:
    """`<arg>` declarations of one file, through groups (not includes), in document order."""
    found: list[DeclaredArgument] = []

    def walk(elements: list[Element], under_condition: bool) -> None:
        for el in elements:
            guarded = under_condition or "if" in el.attrs or "unless" in el.attrs
            if guarded and not conditional:
                continue
            if el.tag == "arg":
                found.append(DeclaredArgument(
                    el.attrs["name"], el.attrs.get("default"), el.attrs.get("description", ""),
                    [c.attrs["value"] for c in el.children], el.where))
            elif el.tag == "group":
                walk(el.children, guarded)

    walk(root.children, False)
    return found


def declared_arguments(path: str | Path, overrides: dict[str, str] | None = None) -> list[DeclaredArgument]:
    """Arguments a launch file accepts, including those of files it includes when their path can be
    evaluated without running anything (like `ros2 launch --show-args`); first declaration wins."""
    seen: dict[str, DeclaredArgument] = {}
    context = LaunchContext(overrides)

    def visit(file: Path, depth: int) -> None:
        root = load_launch_file(file)
        for arg in _declared_arguments(root):
            seen.setdefault(arg.name, arg)
        if depth >= MAX_INCLUDE_DEPTH:
            return
        for include in _includes(root.children):
            try:
                context.current_file = file
                target = Path(include.templates["file"].evaluate(context))
            except LaunchError:
                continue
            if target.is_file():
                visit(target.absolute(), depth + 1)

    visit(Path(path).absolute(), 0)
    return list(seen.values())


def _includes(elements: list[Element]) -> list[Element]:
    out: list[Element] = []
    for el in elements:
        if el.tag == "include":
            out.append(el)
        elif el.tag == "group":
            out += _includes(el.children)
    return out
