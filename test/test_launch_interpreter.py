"""Launch XML semantics of optimus-launch, checked on the resolved process list (nothing is started).

The expectations are those of ROS 2 launch / launch_ros: argument precedence, group scoping, unscoped
includes, if/unless, namespaces, parameters and remaps turned into --ros-args in launch_ros order.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from launch_fixtures.prefixes import make_prefix

from optimus_control.errors import LaunchError
from optimus_control.launch import LaunchContext
from optimus_control.launch.interpreter import Interpreter
from optimus_control.launch.packages import find_package_share, resolve_executable
from optimus_control.launch.substitutions import parse_template
from optimus_control.model import share_dir

PKG = "fixture_pkg"


@pytest.fixture()
def prefix(tmp_path, monkeypatch) -> Path:
    """A colcon-layout prefix with executables talker and listener of fixture_pkg, on AMENT_PREFIX_PATH."""
    path = make_prefix(tmp_path, PKG, ["talker", "listener"])
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(path))
    return path


def write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text('<?xml version="1.0"?>\n<launch>\n' + textwrap.dedent(body) + "</launch>\n")
    return path


def resolve(path: Path, **arguments: str) -> Interpreter:
    interpreter = Interpreter(LaunchContext(arguments))
    interpreter.run_file(path)
    return interpreter


def one(interpreter: Interpreter, label: str):
    matches = [p for p in interpreter.processes if p.label == label]
    assert len(matches) == 1, [p.label for p in interpreter.processes]
    return matches[0]


# --- substitutions ----------------------------------------------------------------------------


def test_substitutions_nest_and_quote(tmp_path):
    context = LaunchContext({"which": "b", "b": "inner value", "x": "X"})
    template = parse_template("pre-$(var $(var which))-'$(var x)' \\$(var x) $ 5", "t:1")
    assert template.evaluate(context) == "pre-inner value-'X' $(var x) $ 5"
    quoted = parse_template("$(env OPTIMUS_TEST_UNSET_VAR 'a default with $(var x)')", "t:1")
    assert quoted.evaluate(context) == "a default with X"


def test_env_substitution_reads_environment_and_fails_without_default(monkeypatch):
    monkeypatch.setenv("OPTIMUS_TEST_SET_VAR", "from-env")
    context = LaunchContext({})
    assert parse_template("$(env OPTIMUS_TEST_SET_VAR fallback)", "t:1").evaluate(context) == "from-env"
    with pytest.raises(LaunchError, match="OPTIMUS_TEST_UNSET_VAR"):
        parse_template("$(env OPTIMUS_TEST_UNSET_VAR)", "t:1").evaluate(context)


def test_boolean_substitutions():
    context = LaunchContext({"t": "True", "f": "0"})
    assert parse_template("$(not $(var f))", "t:1").evaluate(context) == "true"
    assert parse_template("$(and $(var t) $(var f))", "t:1").evaluate(context) == "false"
    assert parse_template("$(or $(var t) $(var f))", "t:1").evaluate(context) == "true"


def test_unsupported_substitution_names_file_line_and_substitution(tmp_path, prefix):
    path = write(tmp_path, "bad_subst.launch.xml", """\
        <arg name="a" default="1"/>
        <let name="b" value="$(command 'ls -l')"/>
    """)
    with pytest.raises(LaunchError) as err:
        resolve(path)
    message = str(err.value)
    assert f"{path}:4" in message and "$(command" in message and "unsupported substitution" in message


def test_substitution_arity_is_checked(tmp_path, prefix):
    path = write(tmp_path, "arity.launch.xml", '<let name="b" value="$(var a b)"/>\n')
    with pytest.raises(LaunchError, match=r"arity.launch.xml:3.*\$\(var \.\.\.\) takes 1 argument"):
        resolve(path)


def test_undefined_var_names_the_variable_and_where(tmp_path, prefix):
    path = write(tmp_path, "undef.launch.xml", """\
        <arg name="scene" default="x"/>
        <node pkg="fixture_pkg" exec="talker" name="talker">
          <param name="p" value="$(var scnee)"/>
        </node>
    """)
    with pytest.raises(LaunchError) as err:
        resolve(path)
    message = str(err.value)
    assert f"{path}:5" in message and "'scnee'" in message and "did you mean 'scene'" in message


# --- vocabulary -------------------------------------------------------------------------------


def test_unsupported_tag_names_file_line_and_tag_before_resolving(tmp_path, prefix):
    path = write(tmp_path, "bad_tag.launch.xml", """\
        <node pkg="fixture_pkg" exec="talker" name="talker"/>
        <group>
          <node_container pkg="x" exec="y"/>
        </group>
    """)
    with pytest.raises(LaunchError) as err:
        resolve(path)
    assert f"{path}:5" in str(err.value) and "<node_container>" in str(err.value)


def test_unsupported_tag_in_a_false_branch_is_still_an_error(tmp_path, prefix):
    path = write(tmp_path, "bad_branch.launch.xml", """\
        <group if="false">
          <timer period="1.0"/>
        </group>
    """)
    with pytest.raises(LaunchError, match=r"bad_branch.launch.xml:4.*<timer>"):
        resolve(path)


def test_unsupported_attribute_names_it(tmp_path, prefix):
    path = write(tmp_path, "bad_attr.launch.xml", '<node pkg="fixture_pkg" exec="talker" respawn="true"/>\n')
    with pytest.raises(LaunchError, match=r"bad_attr.launch.xml:3.*'respawn'"):
        resolve(path)


def test_ros1_style_attributes_are_rejected_with_a_hint(tmp_path, prefix):
    path = write(tmp_path, "ros1.launch.xml", '<node pkg="fixture_pkg" type="talker" exec="talker"/>\n')
    with pytest.raises(LaunchError, match="'type'"):
        resolve(path)


def test_malformed_xml_names_the_line(tmp_path, prefix):
    path = tmp_path / "broken.launch.xml"
    path.write_text("<launch>\n  <arg name='a' default='1'>\n</launch>\n")
    with pytest.raises(LaunchError, match=r"broken.launch.xml:3: not well-formed"):
        resolve(path)


# --- arguments, let, conditions ---------------------------------------------------------------


def test_command_line_argument_overrides_default_and_let_overrides_both(tmp_path, prefix):
    path = write(tmp_path, "args.launch.xml", """\
        <arg name="a" default="default-a"/>
        <arg name="b" default="default-b"/>
        <arg name="c" default="$(var a)-c"/>
        <let name="d" value="$(var b)"/>
        <node pkg="fixture_pkg" exec="talker" name="talker" args="$(var a) $(var b) $(var c) $(var d)"/>
    """)
    talker = one(resolve(path, a="cli-a"), "talker")
    assert talker.cmd[1:5] == ["cli-a", "default-b", "cli-a-c", "default-b"]


def test_missing_required_argument_and_bad_choice_are_errors(tmp_path, prefix):
    path = write(tmp_path, "req.launch.xml", """\
        <arg name="needed" description="something"/>
        <arg name="mode" default="lockstep">
          <choice value="lockstep"/>
          <choice value="realtime"/>
        </arg>
    """)
    with pytest.raises(LaunchError, match="required launch argument 'needed'"):
        resolve(path)
    with pytest.raises(LaunchError, match=r"'mode' is 'fast'; valid choices are \['lockstep', 'realtime'\]"):
        resolve(path, needed="1", mode="fast")
    resolve(path, needed="1", mode="realtime")


@pytest.mark.parametrize(("value", "started"), [("true", True), ("True", True), ("1", True), ("false", False),
                                                ("FALSE", False), ("0", False)])
def test_if_and_unless_read_true_false_1_0(tmp_path, prefix, value, started):
    path = write(tmp_path, "cond.launch.xml", """\
        <arg name="flag" default="true"/>
        <node pkg="fixture_pkg" exec="talker" name="on" if="$(var flag)"/>
        <node pkg="fixture_pkg" exec="talker" name="off" unless="$(var flag)"/>
    """)
    labels = {p.label for p in resolve(path, flag=value).processes}
    assert labels == ({"on"} if started else {"off"})


def test_condition_that_is_not_a_boolean_is_an_error(tmp_path, prefix):
    path = write(tmp_path, "cond_bad.launch.xml", '<node pkg="fixture_pkg" exec="talker" if="yes"/>\n')
    with pytest.raises(LaunchError, match=r"cond_bad.launch.xml:3.*'yes' is not a boolean"):
        resolve(path)


# --- scoping --------------------------------------------------------------------------------


def test_scoped_group_undoes_its_changes_and_unscoped_group_keeps_them(tmp_path, prefix):
    path = write(tmp_path, "scope.launch.xml", """\
        <let name="x" value="outer"/>
        <group>
          <let name="x" value="scoped"/>
          <node pkg="fixture_pkg" exec="talker" name="inside" args="$(var x)"/>
        </group>
        <node pkg="fixture_pkg" exec="talker" name="after_scoped" args="$(var x)"/>
        <group scoped="false">
          <let name="x" value="unscoped"/>
        </group>
        <node pkg="fixture_pkg" exec="talker" name="after_unscoped" args="$(var x)"/>
    """)
    interp = resolve(path)
    assert one(interp, "inside").cmd[1] == "scoped"
    assert one(interp, "after_scoped").cmd[1] == "outer"
    assert one(interp, "after_unscoped").cmd[1] == "unscoped"


def test_group_without_forwarding_sees_only_keep(tmp_path, prefix):
    path = write(tmp_path, "fwd.launch.xml", """\
        <let name="x" value="outer"/>
        <group forwarding="false">
          <keep name="y" value="$(var x)-kept"/>
          <node pkg="fixture_pkg" exec="talker" name="kept" args="$(var y)"/>
        </group>
        <group forwarding="false">
          <node pkg="fixture_pkg" exec="talker" name="blind" args="$(var x)"/>
        </group>
    """)
    with pytest.raises(LaunchError, match=r"fwd.launch.xml:9.*'x' is not set"):
        resolve(path)


def test_include_passes_arguments_and_does_not_scope(tmp_path, prefix):
    write(tmp_path, "child.launch.xml", """\
        <arg name="who" default="child_default"/>
        <let name="leaked" value="from-child"/>
        <node pkg="fixture_pkg" exec="talker" name="$(var who)"/>
    """)
    path = write(tmp_path, "parent.launch.xml", """\
        <include file="$(dirname)/child.launch.xml">
          <arg name="who" value="first"/>
        </include>
        <node pkg="fixture_pkg" exec="listener" name="after" args="$(var leaked) $(var who)"/>
        <group>
          <include file="$(dirname)/child.launch.xml">
            <arg name="who" value="second"/>
          </include>
        </group>
        <node pkg="fixture_pkg" exec="listener" name="after_group" args="$(var who)"/>
    """)
    interp = resolve(path)
    assert {p.label for p in interp.processes} == {"first", "after", "second", "after_group"}
    assert one(interp, "after").cmd[1:3] == ["from-child", "first"]  # <include> leaks, like ROS 2
    assert one(interp, "after_group").cmd[1] == "first"  # ... unless wrapped in a <group>


def test_parent_configuration_reaches_include_unless_passed(tmp_path, prefix):
    write(tmp_path, "child.launch.xml", """\
        <arg name="who" default="child_default"/>
        <node pkg="fixture_pkg" exec="talker" name="$(var who)"/>
    """)
    path = write(tmp_path, "parent.launch.xml", """\
        <arg name="who" default="from_parent"/>
        <group><include file="$(dirname)/child.launch.xml"/></group>
    """)
    assert [p.label for p in resolve(path).processes] == ["from_parent"]


def test_include_of_missing_file_or_missing_required_argument(tmp_path, prefix):
    write(tmp_path, "needs.launch.xml", '<arg name="must"/>\n')
    path = write(tmp_path, "inc.launch.xml", '<include file="$(dirname)/needs.launch.xml"/>\n')
    with pytest.raises(LaunchError, match=r"inc.launch.xml:3.*needs argument 'must'"):
        resolve(path)
    path = write(tmp_path, "inc2.launch.xml", '<include file="$(dirname)/nothere.launch.xml"/>\n')
    with pytest.raises(LaunchError, match=r"inc2.launch.xml:3.*does not exist"):
        resolve(path)


# --- nodes: namespaces, parameters, remaps, environment --------------------------------------


def test_node_command_line_follows_launch_ros_order(tmp_path, prefix):
    params = tmp_path / "p.yaml"
    params.write_text("/**:\n  ros__parameters:\n    a: 1\n")
    path = write(tmp_path, "node.launch.xml", f"""\
        <arg name="ns" default="robot1"/>
        <group>
          <push-ros-namespace namespace="$(var ns)"/>
          <set_parameter name="use_sim_time" value="true"/>
          <set_remap from="/tf" to="tf"/>
          <node pkg="fixture_pkg" exec="talker" name="talker" args="--flag 'two words'"
                ros_args="--log-level debug">
            <param from="{params}"/>
            <param name="rate_hz" value="250"/>
            <param name="label" value="1000" type="str"/>
            <param name="ratio" value="2" type="float"/>
            <param name="enabled" value="True" type="bool"/>
            <param name="gains">
              <param name="kp" value="10.5"/>
            </param>
            <remap from="joint_states" to="/robot/joint_states"/>
          </node>
        </group>
        <node pkg="fixture_pkg" exec="listener"/>
    """)
    interp = resolve(path)
    talker = one(interp, "talker")
    generated = talker.cmd[talker.cmd.index("-r", talker.cmd.index(str(params))) - 1]
    assert talker.cmd == [
        str(prefix / "lib" / PKG / "talker"), "--flag", "two words", "--ros-args", "--log-level", "debug",
        "--ros-args", "-r", "__node:=talker", "-r", "__ns:=/robot1", "-p", "use_sim_time:=true",
        "--params-file", str(params), "--params-file", generated, "-r", "/tf:=tf",
        "-r", "joint_states:=/robot/joint_states",
    ]
    # name/value tags go in one file keyed by the node's full name, typed as launch_ros types them
    assert yaml.safe_load(Path(generated).read_text()) == {"/robot1/talker": {"ros__parameters": {
        "rate_hz": 250, "label": "1000", "ratio": 2.0, "enabled": True, "gains.kp": 10.5}}}
    assert talker.parameter_files == {generated: yaml.safe_load(Path(generated).read_text())}
    assert talker.namespace == "/robot1"
    # Outside the group: no namespace pushed, no global parameters or remaps, no node name.
    listener = one(interp, "listener")
    assert listener.cmd == [str(prefix / "lib" / PKG / "listener"), "--ros-args"]


@pytest.mark.parametrize(("pushed", "node_ns", "expected"), [
    (["a"], None, "/a"), (["a", "b"], None, "/a/b"), (["a"], "c", "/a/c"), (["a"], "/abs", "/abs"),
    ([""], None, "/"), (["/x", ""], None, "/x"), (["a", "/y"], "z", "/y/z"), ([], "rel", "/rel"),
])
def test_namespaces_compose_like_launch_ros(tmp_path, prefix, pushed, node_ns, expected):
    pushes = "".join(f'<push-ros-namespace namespace="{ns}"/>' for ns in pushed)
    attr = f' namespace="{node_ns}"' if node_ns is not None else ""
    path = write(tmp_path, "ns.launch.xml", f'<group>{pushes}<node pkg="fixture_pkg" exec="talker" name="n"{attr}/></group>\n')
    node = one(resolve(path), "n")
    assert node.namespace == expected
    assert ["-r", f"__ns:={expected}"] == node.cmd[node.cmd.index("__node:=n") + 1:][:2]


def test_push_ros_namespace_is_popped_at_group_end(tmp_path, prefix):
    path = write(tmp_path, "pop.launch.xml", """\
        <group><push_ros_namespace namespace="inner"/></group>
        <node pkg="fixture_pkg" exec="talker" name="n"/>
    """)
    node = one(resolve(path), "n")
    assert node.namespace is None and "__ns:=/inner" not in node.cmd


def test_environment_set_env_is_scoped_and_node_env_added(tmp_path, prefix, monkeypatch):
    monkeypatch.setenv("OPTIMUS_TEST_BASE", "base")
    path = write(tmp_path, "env.launch.xml", """\
        <group>
          <set_env name="OPTIMUS_TEST_GROUP" value="g"/>
          <unset_env name="OPTIMUS_TEST_BASE"/>
          <node pkg="fixture_pkg" exec="talker" name="inside">
            <env name="OPTIMUS_TEST_NODE" value="n"/>
          </node>
        </group>
        <node pkg="fixture_pkg" exec="talker" name="outside"/>
    """)
    interp = resolve(path)
    inside, outside = one(interp, "inside").env, one(interp, "outside").env
    assert inside["OPTIMUS_TEST_GROUP"] == "g" and inside["OPTIMUS_TEST_NODE"] == "n"
    assert "OPTIMUS_TEST_BASE" not in inside
    assert outside["OPTIMUS_TEST_BASE"] == "base" and "OPTIMUS_TEST_GROUP" not in outside


def test_process_options_and_timeouts_from_attributes_or_launch_configurations(tmp_path, prefix):
    path = write(tmp_path, "opts.launch.xml", """\
        <node pkg="fixture_pkg" exec="talker" name="a" on_exit="shutdown" output="screen"
              sigterm_timeout="1.5" sigkill_timeout="0.5"/>
        <node pkg="fixture_pkg" exec="talker" name="b"/>
    """)
    interp = resolve(path, sigterm_timeout="2")
    a, b = one(interp, "a"), one(interp, "b")
    assert (a.on_exit_shutdown, a.output, a.sigterm_timeout_s, a.sigkill_timeout_s) == (True, "screen", 1.5, 0.5)
    assert (b.on_exit_shutdown, b.output, b.sigterm_timeout_s, b.sigkill_timeout_s) == (False, "log", 2.0, 5.0)


def test_bad_process_options_are_errors(tmp_path, prefix):
    for attrs, pattern in [('on_exit="restart"', "on_exit='restart'"), ('output="console"', "output='console'"),
                           ('sigterm_timeout="soon"', "not a number")]:
        path = write(tmp_path, "badopt.launch.xml", f'<node pkg="fixture_pkg" exec="talker" {attrs}/>\n')
        with pytest.raises(LaunchError, match=pattern):
            resolve(path)


def test_missing_parameter_file_is_an_error(tmp_path, prefix):
    path = write(tmp_path, "pf.launch.xml", f'<node pkg="fixture_pkg" exec="talker"><param from="{tmp_path}/no.yaml"/></node>\n')
    with pytest.raises(LaunchError, match=r"pf.launch.xml:3.*parameter file"):
        resolve(path)


def test_duplicate_labels_are_made_unique(tmp_path, prefix):
    path = write(tmp_path, "dup.launch.xml", """\
        <node pkg="fixture_pkg" exec="talker"/>
        <node pkg="fixture_pkg" exec="talker"/>
    """)
    assert [p.label for p in resolve(path).processes] == ["talker", "talker-2"]


# --- packages ---------------------------------------------------------------------------------


def test_unknown_executable_or_package_is_a_clear_error(tmp_path, prefix):
    path = write(tmp_path, "exe.launch.xml", '<node pkg="fixture_pkg" exec="talkr"/>\n')
    with pytest.raises(LaunchError, match=r"exe.launch.xml:3.*'talkr' of package 'fixture_pkg' not found.*did you mean 'talker'"):
        resolve(path)
    path = write(tmp_path, "pkg.launch.xml", '<node pkg="no_such_pkg_xyz" exec="talker"/>\n')
    with pytest.raises(LaunchError, match=r"pkg.launch.xml:3.*no_such_pkg_xyz"):
        resolve(path)


def test_find_pkg_share_uses_the_ament_index_and_our_share_dir(tmp_path, prefix):
    assert find_package_share(PKG) == prefix / "share" / PKG
    assert find_package_share("optimus_control") == share_dir()
    with pytest.raises(LaunchError, match="no_such_pkg_xyz"):
        find_package_share("no_such_pkg_xyz")


def test_pip_layout_entry_point_runs_with_this_python(tmp_path, monkeypatch):
    """A distribution's console script, without a script file in <prefix>/bin, runs via sys.executable."""
    module_dir = tmp_path / "site"
    (module_dir / "fake_entry_mod").mkdir(parents=True)
    (module_dir / "fake_entry_mod" / "__init__.py").write_text(
        "import sys\ndef main():\n    print('ENTRY', sys.argv[1:])\n    return 3\n")
    dist_info = module_dir / "fake_entry_pkg-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake_entry_pkg\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text("[console_scripts]\nfake_tool_xyz = fake_entry_mod:main\n")
    monkeypatch.syspath_prepend(str(module_dir))
    monkeypatch.setenv("AMENT_PREFIX_PATH", "")
    argv = resolve_executable("fake_entry_pkg", "fake_tool_xyz")
    assert argv[0] == sys.executable
    run = subprocess.run([*argv, "--ros-args", "-r", "__node:=x"], capture_output=True, text=True, timeout=60,
                         env={"PYTHONPATH": str(module_dir)})
    assert run.returncode == 3 and "ENTRY ['--ros-args', '-r', '__node:=x']" in run.stdout


def test_colcon_layout_wins_over_pip_layout(tmp_path, monkeypatch):
    prefix = make_prefix(tmp_path, "optimus_control", ["sim"], with_share=False)
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(prefix))
    assert resolve_executable("optimus_control", "sim") == [str(prefix / "lib" / "optimus_control" / "sim")]


def test_executable_tag_and_log(tmp_path, prefix):
    path = write(tmp_path, "exe_tag.launch.xml", """\
        <arg name="who" default="world"/>
        <log message="hello $(var who)"/>
        <let name="script" value="echo $(var who)"/>
        <executable cmd="sh -c $(var script)" name="shell" output="screen" on_exit="shutdown">
          <env name="OPTIMUS_TEST_X" value="1"/>
        </executable>
    """)
    interp = resolve(path)
    shell = one(interp, "shell")
    assert Path(shell.cmd[0]).name == "sh" and shell.cmd[1:] == ["-c", "echo world"]
    assert shell.env["OPTIMUS_TEST_X"] == "1" and shell.on_exit_shutdown
    assert interp.messages == ["hello world"]
