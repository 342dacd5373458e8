"""Environments: the registry, text-env conventions, and one sub-package per env family.

Importing this package registers the built-in families under the ``creditgym/`` namespace.
"""

from creditgym.envs import info
from creditgym.envs.registry import describe, list_envs, make, register
from creditgym.envs import household  # noqa: F401,E402  (registers creditgym/Household-*)
from creditgym.envs import webshop  # noqa: F401,E402  (registers creditgym/WebShop-*)
from creditgym.envs import search  # noqa: F401,E402  (registers creditgym/SearchQA-*)
from creditgym.envs import tw  # noqa: F401,E402  (registers creditgym/TextWorld*; imports textworld lazily)
from creditgym.envs import nethack  # noqa: F401,E402  (registers creditgym/MiniHack*; imports minihack lazily)
from creditgym.envs import coop  # noqa: F401,E402  (registers creditgym/CoopHousehold*; imports pettingzoo lazily)

__all__ = ["info", "make", "register", "list_envs", "describe"]
