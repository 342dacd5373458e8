"""Environments: the registry, text-env conventions, and one sub-package per env family.

Importing this package registers the built-in families under the ``creditgym/`` namespace.
"""

from creditgym.envs import (
    alfworld,  # noqa: F401,E402  (registers creditgym/ALFWorld*; imports alfworld lazily)
    coop,  # noqa: F401,E402  (registers creditgym/CoopHousehold*; imports pettingzoo lazily)
    household,  # noqa: F401,E402  (registers creditgym/Household-*)
    info,
    nethack,  # noqa: F401,E402  (registers creditgym/MiniHack*; imports minihack lazily)
    openenv,  # noqa: F401,E402  (makes "openenv:<url>" ids build remote envs)
    sciworld,  # noqa: F401,E402  (registers creditgym/ScienceWorld-v0; imports it lazily)
    search,  # noqa: F401,E402  (registers creditgym/SearchQA-*)
    tw,  # noqa: F401,E402  (registers creditgym/TextWorld*; imports textworld lazily)
    twx,  # noqa: F401,E402  (registers creditgym/TWX-*; imports textworld_express lazily)
    webshop,  # noqa: F401,E402  (registers creditgym/WebShop-*)
)
from creditgym.envs.registry import describe, list_envs, make, register

__all__ = ["info", "make", "register", "list_envs", "describe"]
