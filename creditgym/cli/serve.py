"""`creditgym serve` (a policy over an OpenAI-compatible API) and `creditgym serve-env` (an env
over OpenEnv's protocol)."""

from __future__ import annotations

import argparse

from creditgym.cli.common import parse_kv

__all__ = ["cmd_serve", "cmd_serve_env"]


def cmd_serve(args: argparse.Namespace) -> int:
    from creditgym.agents.serve.server import run

    options = {}
    if args.model == "tiny":  # the tiny model fitted on every env's text, as `load_tiny()` builds
        from creditgym.train.corpus import tiny_env_corpus

        options["corpus"] = tiny_env_corpus()
    return run(args, args.serve_parser, policy_options=options)


def cmd_serve_env(args: argparse.Namespace) -> int:
    from creditgym.envs.openenv.options import limits_from_args

    try:
        from creditgym.envs.openenv.app import serve_env
    except ImportError as error:
        if (error.name or "").startswith("creditgym"):
            raise
        raise ImportError(
            f"creditgym serve-env needs OpenEnv: pip install 'creditgym[openenv]' ({error})",
            name=error.name,
        ) from error
    try:
        limits = limits_from_args(args)
    except ValueError as error:
        args.serve_env_parser.error(f"--{str(error).replace('_', '-')}")
    env_kwargs = dict(parse_kv(item) for item in args.env_kwarg)
    serve_env(args.env, env_kwargs, args.host, args.port, limits)
    return 0
