"""creditgym: multi-turn text and tool environments for LLM agents, with turn-level credit.

>>> import creditgym
>>> env = creditgym.make("creditgym/Household-v0")
>>> obs, info = env.reset(seed=0)
"""

from creditgym.envs.registry import describe, list_envs, make, register
from creditgym.version import __version__

__all__ = ["make", "register", "list_envs", "describe", "__version__"]
