"""Environments over the wire, on OpenEnv's protocol (HTTP + WebSocket sessions).

- `OpenEnvEnv` (``creditgym.make("openenv:http://host:port")``): any OpenEnv server as a
  Gymnasium text env (`client`, with `transport`'s URL and error helpers).
- ``creditgym serve-env ENV_ID``: a registered creditgym env served by OpenEnv's own server,
  its ``info`` carried in the observation (`wire`), with the ``/creditgym/*`` extension for
  clone/restore and the expert (`app`, `served`, `sessions`), behind an API key and size
  limits (`guard`, `options`).

Importing this package needs only Gymnasium; serving needs the ``[openenv]`` extra.
"""

from creditgym.envs.openenv.client import SCHEME, OpenEnvEnv, RemoteEnvError, server_metadata
from creditgym.envs.registry import register_scheme

register_scheme(SCHEME, OpenEnvEnv, server_metadata)

__all__ = ["OpenEnvEnv", "RemoteEnvError", "SCHEME"]
