"""`creditgym eval`: agents on held-out tasks, a results table; a training run's checkpoint is
scored in the prompt format it was trained in."""

from __future__ import annotations

import argparse
from pathlib import Path

from creditgym.cli.common import make_console, parse_kv

__all__ = ["cmd_eval", "EVAL_FORMAT_DEFAULTS"]


def cmd_eval(args: argparse.Namespace) -> int:
    from creditgym.agents.factory import load_policy, resolve_backend
    from creditgym.envs.registry import eval_splits
    from creditgym.measure.evaluate import evaluate, results_json, results_table
    from creditgym.rollout.collect import PromptFormat
    from creditgym.train.runs import trained_model

    console = make_console()
    env_kwargs = dict(parse_kv(item) for item in args.env_kwarg)
    splits = args.splits.split(",") if args.splits else eval_splits(args.env)
    episode_file = _episode_file(args.save_episodes) if args.save_episodes else None
    results = []
    for agent in args.agent or ["expert", "random"]:
        trained = trained_model(agent)
        backend = resolve_backend(trained.model)
        options = _format_options(args, trained.config)
        if trained.source is not None:
            console.print(
                f"{agent}: {trained.model}, in the format it was trained in "
                f"({trained.source}): context={options.context}, think={options.think}, "
                f"template={options.template}, history_length={options.history_length}, "
                f"constrained={options.constrained}"
            )
        policy = load_policy(trained.model, **_model_kwargs(backend.cli_options, options))
        model_based = backend.text_model
        prompt_format = PromptFormat(
            template=options.template,
            history_length=options.history_length,
            require_tags=model_based and not options.constrained,
            context=options.context,
            think=model_based and options.think,  # scripted agents answer with bare actions
        )
        results += evaluate(
            policy,
            args.env,
            splits,
            args.episodes,
            agent=agent,
            env_kwargs=env_kwargs,
            batch_size=args.batch_size,
            prompt_format=prompt_format,
            save_episodes=episode_file,
        )
    console.print(results_table(results, title=f"{args.env}: {args.episodes} episodes per split"))
    if episode_file is not None:
        console.print(f"episodes written to {episode_file.path} (`creditgym view` shows them)")
    if args.json:
        Path(args.json).write_text(results_json(results))
        console.print(f"results written to {args.json}")
    return 0


def _episode_file(path: str):
    """A fresh episode file for `eval --save-episodes` (an older one at `path` is replaced)."""
    from creditgym.episode_log import EpisodeWriter

    writer = EpisodeWriter(path)
    writer.path.unlink(missing_ok=True)
    return writer


#: `creditgym eval`'s prompt-format options: the default of each when the agent is not a
#: training run's checkpoint (one that is takes the run's ``policy`` section instead).
EVAL_FORMAT_DEFAULTS = {
    "template": "compact",
    "history_length": 2,
    "constrained": False,
    "context": "window",
    "think": False,
    "think_tokens": 256,
    "max_context_tokens": 0,
}


def _format_options(args: argparse.Namespace, run_config: object | None) -> argparse.Namespace:
    """`args` with each prompt-format option not given on the command line filled in: from the
    training run's ``policy`` section when the agent is a run's checkpoint, else the defaults."""
    options = argparse.Namespace(**vars(args))
    for name, default in EVAL_FORMAT_DEFAULTS.items():
        if getattr(args, name, None) is None:
            trained = getattr(run_config, "policy", None)
            setattr(options, name, getattr(trained, name) if trained is not None else default)
    return options


def _model_kwargs(options: tuple[str, ...], args: argparse.Namespace) -> dict:
    """The command line's sampling options the agent's backend declares it takes."""
    given = {
        "temperature": args.temperature,
        "constrained": args.constrained,
        "seed": args.seed,
        "think": args.think,
        "think_tokens": args.think_tokens,
        "max_context_tokens": args.max_context_tokens,
    }
    return {name: given[name] for name in options if name in given}
