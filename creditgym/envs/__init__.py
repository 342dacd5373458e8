"""Environments: the registry, text-env conventions, and one sub-package per env family.

Importing this package registers the built-in families under the ``creditgym/`` namespace.
"""

from creditgym.envs import info
from creditgym.envs.registry import describe, list_envs, make, register

__all__ = ["info", "make", "register", "list_envs", "describe"]
