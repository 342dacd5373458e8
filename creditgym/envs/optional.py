"""Import an optional dependency with an error that says which creditgym extra installs it;
and the error of an env whose separately downloaded game files are missing.

Environment families built on third-party games (TextWorld, MiniHack) register at
``import creditgym`` time without importing their game library; the library is imported by
the environment's constructor through `require`, so a user without it gets told how to fix it.
"""

from __future__ import annotations

import importlib
import shutil
from types import ModuleType

__all__ = ["JAVA_INSTALL", "JavaNotFound", "MissingGameData", "require", "require_java"]

#: How to install the Java runtime that ScienceWorld and TextWorldExpress start (Debian/Ubuntu).
JAVA_INSTALL = "apt-get install openjdk-17-jre-headless"


class MissingGameData(FileNotFoundError):
    """An env's game files, which the user downloads separately, are not on disk; the message
    says how to get them (tools that build every env, like the contract test, skip it)."""


def require(module: str, extra: str) -> ModuleType:
    """Import `module`, or raise `ImportError` naming ``pip install creditgym[<extra>]``.

    Args:
        module: the importable name (``"textworld"``, ``"minihack"``).
        extra: the creditgym extra that installs it (``"textworld"``, ``"minihack"``).
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"this environment needs the {module!r} package, which could not be imported "
            f"({type(error).__name__}: {error}). Install it with `pip install creditgym[{extra}]`."
        ) from error


class JavaNotFound(ImportError):
    """No ``java`` on PATH for an engine that runs on the JVM: a missing dependency like a
    missing extra (the CLI prints it as one line; the env contract test skips on it)."""


def require_java(engine: str, extra: str) -> str:
    """The path of the ``java`` executable, or raise `JavaNotFound` naming how to install it.

    Args:
        engine: the engine that needs Java, for the message (``"ScienceWorld"``).
        extra: the creditgym extra of that engine (``"scienceworld"``, ``"twx"``).
    """
    java = shutil.which("java")
    if java is None:
        raise JavaNotFound(
            f"{engine} runs on Java, and no `java` is on PATH. Install a Java runtime "
            f"(`{JAVA_INSTALL}` on Debian/Ubuntu, Java 11 or newer elsewhere), then "
            f"`pip install creditgym[{extra}]`."
        )
    return java
