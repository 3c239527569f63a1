"""Static code-safety rules over every Python file of the repository (ast, not grep).

superd runs as root and must take data, never code (docs/ARCHITECTURE.md): no object
deserializers that run code, no eval/exec, no shell, no call-by-name from
data, and every subprocess it or frontd starts must be one whose arguments
we have checked. Each rule is one test naming ``file:line`` of every breach;
each rule also proves, on a small synthetic snippet, that it catches what it
is meant to (a rule that finds nothing in the tree could otherwise be a rule
that can find nothing).

Deliberate exceptions are allow-list entries naming file and function, each
with why it is safe: never a blanket skip. An entry that no longer matches a
site fails too, so the list cannot rot into a silent exemption.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SKIPPED_DIRS = frozenset({".venv", "build", ".git", "__pycache__"})
# Code that runs as a daemon (superd, and frontd which feeds it) or in them.
PRODUCT_DIRS = ("superd", "frontd", "configurators", "netlink", "persistence", "shared")

CODE_DESERIALIZERS = frozenset(
    {"pickle", "_pickle", "cPickle", "marshal", "shelve", "dill", "cloudpickle", "jsonpickle"}
)
PICKLE_FUNCTIONS = frozenset({"read_pickle", "to_pickle"})  # pandas and the like
SUBPROCESS_FUNCTIONS = frozenset(
    {"run", "Popen", "call", "check_call", "check_output", "getoutput", "getstatusoutput"}
)
SHELL_FUNCTIONS = frozenset(
    {"os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput",
     "asyncio.create_subprocess_shell", "commands.getoutput"}
)  # fmt: skip
OS_EXEC_PREFIXES = ("os.exec", "os.spawn", "os.posix_spawn")

# getattr/attrgetter/import by a non-literal name in product code:
# (file, function) → why the name cannot come from a request.
DYNAMIC_NAME_ALLOWED: dict[tuple[str, str], str] = {
    ("configurators/iproute2_netlink.py", "Kernel.request"):
        "getattr(self.ipr, method): every caller passes a literal method name "
        "('link', 'addr', 'route', 'rule'), which test_kernel_request_methods_are_"
        "literals checks; no request value reaches it",
    ("frontd/api.py", "HostApi.table"):
        "getattr(self, attr) over the constant ENGINE_METHODS/LOCAL_METHODS tables, "
        "once at start-up; the JSON-RPC method name only selects from the built table",
}  # fmt: skip

# Every subprocess call site in product code: (file, function) → why its
# arguments are checked.
SUBPROCESS_ALLOWED: dict[tuple[str, str], str] = {
    ("configurators/dhcp.py", "_popen_dhclient"):
        "its two callers (DhcpClients._spawn, _release) pass argv from _dhclient_args: "
        "fixed flags, paths under the configured run dir, device through "
        "validate_nic_name (in _files: no '-', '/', NUL), family through "
        "_check_family; fixed env",
    ("configurators/dhcp.py", "DhcpClients._run_hook"):
        "runs our own hook by path with no arguments; env carries the validated "
        "device and a reason every caller passes as a literal",
    ("configurators/ifcfg_apply.py", "run_command"):
        "argv is [configured absolute ifup/ifdown path, device] and the device "
        "went through ifcfg_format.file_name (_checked: no '-' first, no '/'); "
        "list argv, no shell",
    ("configurators/iproute2_team.py", "TeamApplier._run"):
        "argv from _start (teamd, fixed flags, paths under the configured run dir named "
        "after validate_bond_name) and teamdctl (the bond through validate_bond_name, "
        "literal subcommands, ports through validate_nic_name: never starting with '-')",
}  # fmt: skip


# -- the tree ----------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    path: str  # relative to the repository, with '/'
    tree: ast.Module

    @property
    def is_product(self) -> bool:
        return self.path.split("/", 1)[0] in PRODUCT_DIRS


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    function: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line} ({self.function or 'module'}): {self.message}"


def python_files(root: Path = REPO) -> Iterator[Path]:
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if not any(p in SKIPPED_DIRS or p.endswith(".egg-info") for p in parts[:-1]):
            yield path


@cache
def sources() -> tuple[Source, ...]:
    found = []
    for path in python_files():
        rel = path.relative_to(REPO).as_posix()
        found.append(Source(rel, ast.parse(path.read_bytes(), filename=rel)))
    assert len(found) > 50, "the walk found too few files: wrong root?"
    return tuple(found)


def parse(code: str, path: str = "superd/synthetic.py") -> Source:
    return Source(path, ast.parse(code))


def dotted(node: ast.AST) -> str:
    """``a.b.c`` for a name/attribute chain, '' for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def is_literal_str(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


class Walker(ast.NodeVisitor):
    """Every node with its enclosing ``Class.function`` and the module's
    import aliases (``import subprocess as sp``, ``from os import system``),
    so a rule sees ``sp.run`` as ``subprocess.run``."""

    def __init__(self) -> None:
        self.stack: list[str] = []
        self.aliases: dict[str, str] = {}
        self.nodes: list[tuple[ast.AST, str]] = []

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.aliases[alias.asname or alias.name.split(".")[0]] = (
                alias.name if alias.asname else alias.name.split(".")[0]
            )
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            self.aliases[alias.asname or alias.name] = f"{node.module or ''}.{alias.name}"
        self.generic_visit(node)

    def _scope(self, node: ast.AST, name: str) -> None:
        self.stack.append(name)
        self.generic_visit(node)
        self.stack.pop()

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._scope(node, node.name)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._scope(node, node.name)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._scope(node, node.name)

    def generic_visit(self, node: ast.AST) -> None:
        self.nodes.append((node, ".".join(self.stack)))
        super().generic_visit(node)


@cache
def walk(source: Source) -> Walker:
    walker = Walker()
    walker.visit(source.tree)
    return walker


def calls(source: Source) -> Iterator[tuple[ast.Call, str, str]]:
    """(call, its callee's full dotted name after aliases, enclosing function)."""
    walker = walk(source)
    for node, function in walker.nodes:
        if isinstance(node, ast.Call):
            name = dotted(node.func)
            head, _, rest = name.partition(".")
            full = walker.aliases.get(head, head) + (f".{rest}" if rest else "")
            yield node, full, function


def keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


# -- the rules ------------------------------------------------------------------

Rule = Callable[[Source], list[Finding]]


def rule_code_deserializers(source: Source) -> list[Finding]:
    """pickle and kin turn bytes into calls: no import, no use."""
    out = []
    walker = walk(source)
    for node, function in walker.nodes:
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = [node.module or ""]
        for module in modules:
            if module.split(".")[0] in CODE_DESERIALIZERS:
                out.append(Finding(source.path, node.lineno, function, f"imports {module}"))
    for call, name, function in calls(source):
        module, last = name.split(".", 1)[0], name.rsplit(".", 1)[-1]
        if name in ("__import__", "importlib.import_module") and call.args:
            first = call.args[0]
            if is_literal_str(first):
                module = str(first.value).split(".", 1)[0]  # type: ignore[attr-defined]
        if module in CODE_DESERIALIZERS or last in PICKLE_FUNCTIONS:
            out.append(Finding(source.path, call.lineno, function, f"calls {name}"))
        allow = keyword(call, "allow_pickle")
        if allow is not None and not (isinstance(allow, ast.Constant) and allow.value is False):
            out.append(Finding(source.path, call.lineno, function, f"{name}(allow_pickle=...)"))
    return out


def rule_eval_exec(source: Source) -> list[Finding]:
    """eval/exec of anything: superd and frontd never run text as code."""
    return [
        Finding(source.path, call.lineno, function, f"calls {name}()")
        for call, name, function in calls(source)
        if name in ("eval", "exec", "builtins.eval", "builtins.exec")
    ]


def rule_compile_of_non_literal(source: Source) -> list[Finding]:
    """The builtin compile() only of a literal (re.compile is not this rule's)."""
    return [
        Finding(source.path, call.lineno, function, "compile() of a non-literal source")
        for call, name, function in calls(source)
        if name in ("compile", "builtins.compile")
        and not (call.args and is_literal_str(call.args[0]))
    ]


def rule_shell(source: Source) -> list[Finding]:
    """No shell: shell=True, os.system, os.popen and the *output helpers."""
    out = []
    for call, name, function in calls(source):
        shell = keyword(call, "shell")
        if shell is not None and not (isinstance(shell, ast.Constant) and not shell.value):
            out.append(Finding(source.path, call.lineno, function, f"{name}(..., shell=...)"))
        elif name in SHELL_FUNCTIONS:
            out.append(Finding(source.path, call.lineno, function, f"calls {name}"))
    return out


def rule_dynamic_names(source: Source) -> list[Finding]:
    """Product code: no attribute or module chosen by a non-literal name
    (getattr/setattr/delattr/hasattr, attrgetter, methodcaller, imports),
    unless allow-listed with its reason."""
    if not source.is_product:
        return []
    out = []
    for call, name, function in calls(source):
        if name in ("getattr", "setattr", "delattr", "hasattr"):
            target = call.args[1] if len(call.args) > 1 else keyword(call, "name")
        elif name in ("operator.attrgetter", "operator.methodcaller", "__import__",
                      "importlib.import_module"):  # fmt: skip
            target = call.args[0] if call.args else None
        else:
            continue
        if not is_literal_str(target) and (source.path, function) not in DYNAMIC_NAME_ALLOWED:
            out.append(Finding(source.path, call.lineno, function, f"{name}() by a non-literal"))
    return out


def subprocess_sites(source: Source) -> list[Finding]:
    """Every call that starts a process, whatever its arguments."""
    out = []
    for call, name, function in calls(source):
        module, _, func = name.rpartition(".")
        if (
            (module == "subprocess" and func in SUBPROCESS_FUNCTIONS)
            or name.startswith(OS_EXEC_PREFIXES)
            or name.startswith("asyncio.create_subprocess")
            or name in ("os.system", "os.popen", "pty.spawn")
        ):
            out.append(Finding(source.path, call.lineno, function, f"starts a process: {name}"))
    return out


def rule_unlisted_subprocess(source: Source) -> list[Finding]:
    """Product code: each subprocess call site is allow-listed with why its
    arguments are checked."""
    if not source.is_product:
        return []
    return [f for f in subprocess_sites(source) if (f.path, f.function) not in SUBPROCESS_ALLOWED]


def breaches(rule: Rule) -> list[str]:
    return [str(finding) for source in sources() for finding in rule(source)]


# -- the tree obeys each rule -------------------------------------------------------


def test_no_code_deserializer_is_imported_or_used() -> None:
    assert not breaches(rule_code_deserializers), "\n".join(breaches(rule_code_deserializers))


def test_no_eval_or_exec() -> None:
    assert not breaches(rule_eval_exec), "\n".join(breaches(rule_eval_exec))


def test_compile_only_of_literals() -> None:
    found = breaches(rule_compile_of_non_literal)
    assert not found, "\n".join(found)


def test_no_shell() -> None:
    assert not breaches(rule_shell), "\n".join(breaches(rule_shell))


def test_no_call_by_name_in_product_code() -> None:
    assert not breaches(rule_dynamic_names), "\n".join(breaches(rule_dynamic_names))


def test_every_subprocess_call_in_product_code_is_allow_listed() -> None:
    found = breaches(rule_unlisted_subprocess)
    assert not found, "not in SUBPROCESS_ALLOWED (say why its arguments are checked):\n" + (
        "\n".join(found)
    )


def test_allow_lists_name_only_existing_sites() -> None:
    """A stale entry would silently exempt the next code of that name."""
    dynamic = {
        (source.path, function)
        for source in sources()
        if source.is_product
        for call, name, function in calls(source)
        if name in ("getattr", "setattr", "delattr", "hasattr", "operator.attrgetter",
                    "operator.methodcaller", "__import__", "importlib.import_module")
    }  # fmt: skip
    spawning = {
        (f.path, f.function) for s in sources() if s.is_product for f in subprocess_sites(s)
    }
    assert not set(DYNAMIC_NAME_ALLOWED) - dynamic, set(DYNAMIC_NAME_ALLOWED) - dynamic
    assert not set(SUBPROCESS_ALLOWED) - spawning, set(SUBPROCESS_ALLOWED) - spawning


def test_kernel_request_methods_are_literals() -> None:
    """What makes Kernel.request's getattr safe: its ``method`` argument
    (third positional, or ``method=``) is a literal at every call site."""
    found = []
    for source in sources():
        if not source.path.startswith("configurators/"):
            continue
        for call, name, function in calls(source):
            if not name.endswith(".request") or name.startswith(("urllib", "requests")):
                continue
            method = call.args[2] if len(call.args) > 2 else keyword(call, "method")
            if not is_literal_str(method):
                found.append(f"{source.path}:{call.lineno} ({function}): method not a literal")
    assert not found, "\n".join(found)
    assert sum(
        1 for s in sources() if s.path.startswith("configurators/")
        for _, name, _ in calls(s) if name.endswith(".request")
    ) >= 5, "no Kernel.request call found: the check above checked nothing"  # fmt: skip


# -- each rule catches what it is for ----------------------------------------------


@pytest.mark.parametrize(
    "rule, code",
    [
        (rule_code_deserializers, "import pickle\n"),
        (rule_code_deserializers, "import marshal as m\n"),
        (rule_code_deserializers, "from shelve import open as o\n"),
        (rule_code_deserializers, "import pickle as p\np.loads(b'')\n"),
        (rule_code_deserializers, "m = __import__('pickle')\n"),
        (rule_code_deserializers, "import numpy\nnumpy.load('f', allow_pickle=True)\n"),
        (rule_code_deserializers, "import pandas\npandas.read_pickle('f')\n"),
        (rule_eval_exec, "eval(data)\n"),
        (rule_eval_exec, "def f(x):\n    exec(x)\n"),
        (rule_eval_exec, "import builtins\nbuiltins.eval('1')\n"),
        (rule_compile_of_non_literal, "compile(text, 'f', 'exec')\n"),
        (rule_shell, "import subprocess\nsubprocess.run('ls', shell=True)\n"),
        (rule_shell, "import subprocess as sp\nsp.Popen(cmd, shell=flag)\n"),
        (rule_shell, "import os\nos.system('ls')\n"),
        (rule_shell, "from os import popen\npopen('ls')\n"),
        (rule_shell, "import subprocess\nsubprocess.getoutput('ls')\n"),
        (rule_dynamic_names, "def dispatch(self, verb):\n    return getattr(self, verb)()\n"),
        (rule_dynamic_names, "import operator\noperator.methodcaller(name)(obj)\n"),
        (rule_dynamic_names, "import importlib\nimportlib.import_module(mod)\n"),
        (rule_unlisted_subprocess, "import subprocess\nsubprocess.run(['ip', dev])\n"),
        (rule_unlisted_subprocess, "from subprocess import Popen\nPopen(['ip'])\n"),
        (rule_unlisted_subprocess, "import os\nos.execv('/bin/ip', args)\n"),
    ],
    ids=["import-pickle", "import-marshal-as", "from-shelve", "pickle-loads", "dunder-import",
         "allow-pickle", "read-pickle", "eval", "exec-in-function", "builtins-eval",
         "compile-variable", "shell-true", "shell-variable", "os-system", "from-os-popen",
         "getoutput", "getattr-dispatch", "methodcaller", "import-module", "subprocess-run",
         "from-subprocess-popen", "os-execv"],
)  # fmt: skip
def test_rule_catches_a_synthetic_offence(rule: Rule, code: str) -> None:
    findings = rule(parse(code))
    assert findings, f"{rule.__name__} missed:\n{code}"
    assert all(f.path == "superd/synthetic.py" and f.line >= 1 for f in findings)


@pytest.mark.parametrize(
    "rule, code",
    [
        (rule_code_deserializers, "import json\njson.loads('{}')\n"),
        (rule_eval_exec, "import ast\nast.literal_eval('1')\n"),
        (rule_compile_of_non_literal, "import re\nre.compile(p)\ncompile('1', 'f', 'eval')\n"),
        (rule_shell, "import subprocess\nsubprocess.run(['ip', 'link'], shell=False)\n"),
        (rule_dynamic_names, "getattr(obj, 'name', None)\n"),
        (rule_unlisted_subprocess, "import subprocess\nsubprocess.TimeoutExpired\n"),
    ],
    ids=["json", "literal-eval", "re-compile", "shell-false", "getattr-literal", "no-call"],
)  # fmt: skip
def test_rule_leaves_safe_code_alone(rule: Rule, code: str) -> None:
    assert rule(parse(code)) == []


def test_allow_list_exempts_only_its_own_function() -> None:
    """An entry is (file, function): the same call elsewhere in the file is flagged."""
    code = (
        "class Kernel:\n"
        "    def request(self, method):\n"
        "        return getattr(self.ipr, method)\n"
        "    def other(self, method):\n"
        "        return getattr(self.ipr, method)\n"
    )
    findings = rule_dynamic_names(parse(code, "configurators/iproute2_netlink.py"))
    assert [(f.line, f.function) for f in findings] == [(5, "Kernel.other")]


def test_rules_leave_test_code_to_the_tests() -> None:
    """Call-by-name and subprocesses are product rules; tests may drive both."""
    code = "import subprocess\nsubprocess.run(['ip', ns])\ngetattr(obj, name)\n"
    source = parse(code, "tests/functional/helper.py")
    assert rule_dynamic_names(source) == [] and rule_unlisted_subprocess(source) == []
    assert rule_shell(parse("import os\nos.system('x')\n", "tests/x.py")), "shell: everywhere"
