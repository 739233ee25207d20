"""The layer rules of DESIGN.md ("Layers", "Style"), enforced by parsing every module with ``ast``.

- ``protocols/`` imports only the stdlib, ``cryptography`` / ``Cryptodome`` and ``protocols.*``; no
  asyncio, sockets or clocks (sans-I/O: ``now`` is always passed in).
- ``campaign_core/`` imports only the stdlib, ``pydantic``, ``yaml``, ``protocols`` and itself; no
  asyncio, sockets or clocks.
- ``gateway/`` never imports ``simulators``.
- Nowhere: ``pickle`` / ``marshal`` / ``shelve``, ``eval`` / ``exec`` / ``__import__``; ``print``
  only in the CLIs (``gateway/cli.py``, ``simulators/cli.py``).

The optional C accelerators of the pure layers (``protocols/**/*.c``, ``campaign_core/*.c``) are held to
the same rule: no call of a C clock, socket, file or process function, no import of a Python module
from C, outside comments and strings (``check_c_source``).

A clock read is an import of ``time`` or an attribute named like a clock reader (``datetime.now``,
``date.today``, ``time.monotonic``, ...). Attributes of ``self`` / ``cls`` are exempt: an engine may
keep the ``now`` it was given. ``loop.time()`` needs ``asyncio``, which is banned anyway.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("protocols", "campaign_core", "gateway", "simulators")

# modules that do I/O or read the clock; banned in the pure layers
IO_AND_CLOCK_MODULES = frozenset({"asyncio", "socket", "socketserver", "selectors", "select", "ssl", "time"})
CLOCK_ATTRIBUTES = frozenset(
    {"now", "utcnow", "today", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns", "time_ns"}
)
UNSAFE_MODULES = frozenset({"pickle", "_pickle", "cPickle", "marshal", "shelve"})
UNSAFE_CALLS = frozenset({"eval", "exec", "__import__"})
PRINT_ALLOWED = frozenset({"gateway/cli.py", "simulators/cli.py"})

# top-level import names allowed besides the stdlib, per pure layer (the layer itself is implied)
PURE_LAYER_ALLOWED = {
    "protocols": frozenset({"protocols", "cryptography", "Cryptodome"}),
    "campaign_core": frozenset({"campaign_core", "protocols", "pydantic", "pydantic_core", "yaml"}),
}
# top-level packages each layer must never import
FORBIDDEN_LAYERS = {
    "protocols": frozenset({"gateway", "campaign_core", "simulators"}),
    "campaign_core": frozenset({"gateway", "simulators"}),
    "gateway": frozenset({"simulators"}),
    "simulators": frozenset(),
}


@dataclass(frozen=True, slots=True)
class Violation:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def _imports(tree: ast.Module, module: str) -> list[tuple[int, str]]:
    """Absolute names of every import in ``tree`` (``module`` is the dotted name of the file)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # relative: resolve against the importing module's package (``module`` of an
                # ``__init__.py`` ends in ``.__init__``, so dropping the last part works for both)
                package = module.split(".")[:-1]
                base = package[: len(package) - (node.level - 1)]
                found.append((node.lineno, ".".join([*base, node.module] if node.module else base)))
            else:
                assert node.module is not None
                found.append((node.lineno, node.module))
    return found


def _layer_of(relpath: str) -> str:
    return relpath.split("/", 1)[0]


def _module_name(relpath: str) -> str:
    return relpath.removesuffix(".py").replace("/", ".")


def check_imports(source: str, relpath: str) -> list[Violation]:
    """Layer rules for imports."""
    layer = _layer_of(relpath)
    tree = ast.parse(source, filename=relpath)
    violations: list[Violation] = []
    for line, name in _imports(tree, _module_name(relpath)):
        top = name.split(".", 1)[0]
        if top in FORBIDDEN_LAYERS.get(layer, frozenset()):
            violations.append(Violation(relpath, line, f"{layer} must not import {name}"))
        elif layer in PURE_LAYER_ALLOWED:
            if top in IO_AND_CLOCK_MODULES:
                violations.append(Violation(relpath, line, f"{layer} is sans-I/O: must not import {name}"))
            elif top not in sys.stdlib_module_names and top not in PURE_LAYER_ALLOWED[layer]:
                allowed = ", ".join(sorted(PURE_LAYER_ALLOWED[layer]))
                violations.append(
                    Violation(relpath, line, f"{layer} may import only the stdlib and {allowed}: not {name}")
                )
    return violations


def check_clock_reads(source: str, relpath: str) -> list[Violation]:
    """No clock reads in the pure layers (imports of ``time`` are reported by check_imports)."""
    if _layer_of(relpath) not in PURE_LAYER_ALLOWED:
        return []
    tree = ast.parse(source, filename=relpath)
    violations: list[Violation] = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in CLOCK_ATTRIBUTES
            and not (isinstance(node.value, ast.Name) and node.value.id in {"self", "cls"})
        ):
            violations.append(
                Violation(relpath, node.lineno, f"clock read .{node.attr}: take `now` as an argument")
            )
    return violations


def check_unsafe(source: str, relpath: str) -> list[Violation]:
    """No pickle-family modules and no dynamic code anywhere."""
    tree = ast.parse(source, filename=relpath)
    violations: list[Violation] = []
    for line, name in _imports(tree, _module_name(relpath)):
        if name.split(".", 1)[0] in UNSAFE_MODULES:
            violations.append(Violation(relpath, line, f"must not import {name} (unsafe deserialisation)"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _called_builtin(node.func) in UNSAFE_CALLS:
            violations.append(
                Violation(relpath, node.lineno, f"must not call {_called_builtin(node.func)}()")
            )
    return violations


def _called_builtin(func: ast.expr) -> str | None:
    """``eval`` for ``eval(...)`` and ``builtins.eval(...)``; None for anything else."""
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "builtins":
        return func.attr
    return None


def check_print(source: str, relpath: str) -> list[Violation]:
    """No print() in library code; the CLIs may print."""
    if relpath in PRINT_ALLOWED:
        return []
    tree = ast.parse(source, filename=relpath)
    return [
        Violation(relpath, node.lineno, "print() in library code: use logging or return the value")
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"
    ]


def _modules() -> list[str]:
    found: list[str] = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "__pycache__" not in path.parts:
                found.append(path.relative_to(ROOT).as_posix())
    return found


MODULES = _modules()


def _assert_clean(violations: list[Violation]) -> None:
    assert not violations, "\n" + "\n".join(map(str, violations))


def _read(relpath: str) -> str:
    return (ROOT / relpath).read_text(encoding="utf-8")


def test_modules_are_found() -> None:
    for package in PACKAGES:
        assert f"{package}/__init__.py" in MODULES


@pytest.mark.parametrize("relpath", MODULES)
def test_layer_imports(relpath: str) -> None:
    _assert_clean(check_imports(_read(relpath), relpath))


@pytest.mark.parametrize("relpath", MODULES)
def test_no_clock_reads(relpath: str) -> None:
    _assert_clean(check_clock_reads(_read(relpath), relpath))


@pytest.mark.parametrize("relpath", MODULES)
def test_no_unsafe_code(relpath: str) -> None:
    _assert_clean(check_unsafe(_read(relpath), relpath))


@pytest.mark.parametrize("relpath", MODULES)
def test_no_print(relpath: str) -> None:
    _assert_clean(check_print(_read(relpath), relpath))


# --- the C accelerators of the pure layers ------------------------------------------------------------

# C functions that read a clock, do I/O or reach outside the process, and the C API calls that import
# Python modules (from which asyncio, socket or time would come)
C_FORBIDDEN_CALLS = frozenset(
    {
        "time", "clock", "clock_gettime", "gettimeofday", "ftime", "localtime", "gmtime", "mktime",
        "_PyTime_GetSystemClock", "_PyTime_GetMonotonicClock", "_PyTime_GetPerfCounter", "PyTime_Time",
        "PyTime_Monotonic", "PyTime_PerfCounter",
        "socket", "connect", "bind", "listen", "accept", "send", "recv", "sendto", "recvfrom", "select", "poll",
        "epoll_wait", "fopen", "open", "read", "write", "fork", "system", "popen", "exec", "execv", "execve",
        "PyImport_Import", "PyImport_ImportModule", "PyImport_ImportModuleLevel", "PyImport_ImportModuleLevelObject",
        "PyImport_AddModule",
    }
)  # fmt: skip
_C_COMMENT_OR_STRING = re.compile(r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)
_C_CALL = re.compile(r"(?<![\w.>])([A-Za-z_]\w*)\s*\(")


def check_c_source(source: str, relpath: str) -> list[Violation]:
    """Calls of forbidden C functions in a C source of a pure layer (comments and strings blanked,
    line numbers kept)."""
    code = _C_COMMENT_OR_STRING.sub(lambda match: re.sub(r"[^\n]", " ", match.group(0)), source)
    found: list[Violation] = []
    for number, line in enumerate(code.splitlines(), start=1):
        for match in _C_CALL.finditer(line):
            if match.group(1) in C_FORBIDDEN_CALLS:
                found.append(
                    Violation(relpath, number, f"C call {match.group(1)}(): no clock, I/O or imports here")
                )
    return found


def _c_sources() -> list[str]:
    found: list[str] = []
    for package in PURE_LAYER_ALLOWED:
        found.extend(path.relative_to(ROOT).as_posix() for path in sorted((ROOT / package).rglob("*.c")))
    return found


C_SOURCES = _c_sources()


def test_c_sources_are_found() -> None:
    assert "campaign_core/_journey.c" in C_SOURCES
    assert "protocols/_slots.c" in C_SOURCES


@pytest.mark.parametrize("relpath", C_SOURCES)
def test_c_sources_of_pure_layers_call_no_clock_io_or_import(relpath: str) -> None:
    _assert_clean(check_c_source(_read(relpath), relpath))


@pytest.mark.parametrize(
    "source",
    [
        "static double now(void) { return (double)time(NULL); }\n",
        "int fd = socket(AF_INET, SOCK_STREAM, 0);\n",
        "struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);\n",
        'PyObject *m = PyImport_ImportModule("asyncio");\n',
        'FILE *f = fopen(path, "r");\n',
    ],
)
def test_c_rule_flags_violation(source: str) -> None:
    (violation,) = check_c_source(source, "campaign_core/x.c")
    assert violation.line == 1


@pytest.mark.parametrize(
    "source",
    [
        "/* time(NULL) would read the clock: not here */\n",
        'PyErr_SetString(PyExc_TypeError, "socket(...) and time() are not called");\n',
        "PyObject *when = PyNumber_Add(now, timeout); /* `now` is passed in */\n",
        "static int send_step(PyObject *engine); x->read_only = 1;\n",
        "int selected = poll_count + 1; s->time(x);\n",
    ],
)
def test_c_rule_allows(source: str) -> None:
    assert check_c_source(source, "campaign_core/x.c") == []


# --- the rules themselves: each must flag what it forbids and pass what it allows ---------------------

Check = Callable[[str, str], list[Violation]]

FLAGGED: list[tuple[Check, str, str]] = [
    (check_imports, "protocols/x.py", "import asyncio\n"),
    (check_imports, "protocols/x.py", "import socket\n"),
    (check_imports, "protocols/x.py", "from selectors import DefaultSelector\n"),
    (check_imports, "protocols/x.py", "import ssl\n"),
    (check_imports, "protocols/x.py", "import time\n"),
    (check_imports, "protocols/x.py", "from time import monotonic\n"),
    (check_imports, "protocols/x.py", "import yaml\n"),
    (check_imports, "protocols/x.py", "from gateway.smpp import Client\n"),
    (check_imports, "protocols/x.py", "import campaign_core\n"),
    (check_imports, "protocols/x.py", "from simulators import smsc\n"),
    (check_imports, "protocols/smpp/x.py", "def f():\n    import asyncio\n"),
    (check_imports, "campaign_core/x.py", "import asyncio\n"),
    (check_imports, "campaign_core/x.py", "import time\n"),
    (check_imports, "campaign_core/x.py", "import socket\n"),
    (check_imports, "campaign_core/x.py", "import gateway.cli\n"),
    (check_imports, "campaign_core/x.py", "from simulators.smsc import Smsc\n"),
    (check_imports, "campaign_core/x.py", "import requests\n"),
    (check_imports, "gateway/x.py", "from simulators.smsc import Smsc\n"),
    (check_imports, "gateway/x.py", "if True:\n    import simulators\n"),
    (check_clock_reads, "protocols/x.py", "import datetime\nx = datetime.datetime.now()\n"),
    (check_clock_reads, "protocols/x.py", "from datetime import datetime\nx = datetime.utcnow()\n"),
    (check_clock_reads, "campaign_core/x.py", "from datetime import date\nx = date.today()\n"),
    (check_clock_reads, "campaign_core/x.py", "x = t.monotonic()\n"),
    (check_clock_reads, "protocols/x.py", "x = clock.perf_counter\n"),
    (check_clock_reads, "protocols/x.py", "x = t.time_ns() + t.monotonic_ns()\n"),
    (check_unsafe, "gateway/x.py", "import pickle\n"),
    (check_unsafe, "simulators/x.py", "from marshal import loads\n"),
    (check_unsafe, "campaign_core/x.py", "import shelve\n"),
    (check_unsafe, "protocols/x.py", "x = eval('1')\n"),
    (check_unsafe, "gateway/x.py", "exec('x = 1')\n"),
    (check_unsafe, "gateway/x.py", "import builtins\nbuiltins.eval('1')\n"),
    (check_print, "protocols/x.py", "print('hi')\n"),
    (check_print, "gateway/smpp.py", "def f():\n    print('hi')\n"),
    (check_print, "simulators/smsc.py", "print()\n"),
]

ALLOWED: list[tuple[Check, str, str]] = [
    (check_imports, "protocols/x.py", "from __future__ import annotations\nimport struct, enum\n"),
    (check_imports, "protocols/x.py", "import datetime\nfrom dataclasses import dataclass\n"),
    (check_imports, "protocols/x.py", "from cryptography.hazmat.primitives.ciphers import Cipher\n"),
    (check_imports, "protocols/x.py", "from Cryptodome.Cipher import DES3\n"),
    (check_imports, "protocols/smpp/x.py", "from protocols.errors import DecodeError\n"),
    (check_imports, "protocols/smpp/x.py", "from . import constants\nfrom .tlv import Tlv\n"),
    (check_imports, "protocols/smpp/__init__.py", "from .pdu import SubmitSm\n"),
    (check_imports, "campaign_core/x.py", "import pydantic, yaml\nfrom protocols.smpp import SubmitSm\n"),
    (check_imports, "gateway/x.py", "import asyncio, socket, time\nfrom campaign_core import Engine\n"),
    (check_imports, "simulators/x.py", "import asyncio\nfrom gateway import cli\nimport protocols.smpp\n"),
    (check_clock_reads, "protocols/x.py", "def f(self, now):\n    self.now = now\n    return self.now\n"),
    (check_clock_reads, "protocols/x.py", "from datetime import datetime\nx = datetime(2024, 1, 1)\n"),
    (check_clock_reads, "gateway/x.py", "import time\nx = time.monotonic()\n"),
    (check_unsafe, "protocols/x.py", "import re\nx = re.compile('a')\ny = obj.eval()\n"),
    (check_print, "gateway/cli.py", "print('receipt')\n"),
    (check_print, "simulators/cli.py", "print('listening')\n"),
    (check_print, "gateway/x.py", "from pprint import pformat\nx = pformat({})\n"),
]


def _case_ids(cases: list[tuple[Check, str, str]]) -> list[str]:
    return [
        f"{check.__name__}-{relpath}-{source.splitlines()[-1].strip()}" for check, relpath, source in cases
    ]


@pytest.mark.parametrize(("check", "relpath", "source"), FLAGGED, ids=_case_ids(FLAGGED))
def test_rule_flags_violation(check: Check, relpath: str, source: str) -> None:
    violations = check(source, relpath)
    assert violations, f"{check.__name__} did not flag {source!r} in {relpath}"
    assert all(v.path == relpath and v.line >= 1 for v in violations)


@pytest.mark.parametrize(("check", "relpath", "source"), ALLOWED, ids=_case_ids(ALLOWED))
def test_rule_allows(check: Check, relpath: str, source: str) -> None:
    assert check(source, relpath) == []


def test_violation_names_file_and_line() -> None:
    (violation,) = check_imports("import struct\n\nimport asyncio\n", "protocols/smpp/session.py")
    assert str(violation).startswith("protocols/smpp/session.py:3: ")
    assert "asyncio" in violation.message
