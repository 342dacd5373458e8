"""The `creditgym` command line: `envs`, `play`, `eval`, `train`, `config`, `serve`, `serve-env`,
`judge-eval`, `credit-report`, `view`.

creditgym envs
creditgym play creditgym/HouseholdEasy-v0 --seed 3
creditgym eval --env creditgym/Household-v0 --agent expert --agent random --episodes 50
creditgym eval --env creditgym/HouseholdEasy-v0 --agent runs/quickstart --episodes 64
creditgym train configs/quickstart.yaml train.iterations=20 run.seed=1
creditgym train --help-config
creditgym config show configs/quickstart.yaml train.iterations=20
creditgym serve runs/quickstart/checkpoints/iter_000040/model --port 8000
creditgym serve-env creditgym/Household-v0 --port 8001 --max-sessions 64
creditgym judge-eval --env creditgym/MiniHackKeyRoom-v0 --judge smollm2 --episodes 20
creditgym view runs/quickstart
creditgym credit-report --env creditgym/HouseholdEasy-v0 --agent random --methods grpo,gigpo --mc 8
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]


def _console():
    from rich.console import Console

    # Piped output (CI logs, files) gets a wide console so result tables are not squeezed.
    return Console(width=None if sys.stdout.isatty() else 140)


def cmd_envs(args: argparse.Namespace) -> int:
    from rich.markup import escape
    from rich.table import Table

    from creditgym.envs.registry import describe, list_envs

    table = Table(title="registered creditgym environments")
    table.add_column("id")
    table.add_column("description")
    for env_id in list_envs():
        table.add_row(escape(env_id), escape(describe(env_id)))  # descriptions hold [extras]
    _console().print(table)
    return 0


def cmd_play(args: argparse.Namespace) -> int:
    from creditgym.play import play

    return play(args.env, seed=args.seed, split=args.split)


def cmd_eval(args: argparse.Namespace) -> int:
    from creditgym.agents.factory import load_policy, resolve_backend
    from creditgym.envs.registry import eval_splits
    from creditgym.measure.evaluate import evaluate, results_json, results_table
    from creditgym.rollout.collect import PromptFormat
    from creditgym.train.runs import trained_model

    console = _console()
    env_kwargs = dict(_parse_kv(item) for item in args.env_kwarg)
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


def cmd_export(args: argparse.Namespace) -> int:
    from creditgym.train.export import export_run

    out = export_run(args.run_dir, args.out, checkpoint=args.checkpoint)
    print(f"exported {args.run_dir} to {out} (model card: {out / 'README.md'})")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from rich.table import Table

    from creditgym.config import check_runnable, load_config

    if args.help_config:
        from creditgym.config_help import describe_fields

        print(describe_fields())
        return 0
    if args.config is None:
        raise ValueError("creditgym train needs a YAML config, e.g. configs/quickstart.yaml")
    config = load_config(args.config, args.overrides)
    check_runnable(config)  # env kwargs and the output directory, before anything runs

    from creditgym.train.distributed import shutdown
    from creditgym.train.trainer import train

    console = _console()
    result = train(config, console=console)
    shutdown()  # a no-op unless torchrun started several processes
    if result.checkpoint is None:  # another rank than 0 of a multi-process run: rank 0 reports
        return 0
    table = Table(
        title=f"held-out success on {config.env.id} ({config.eval.episodes} tasks per split)"
    )
    columns = {
        "random agent": result.random_baseline,
        "before training": result.initial,
        "after warm start": result.after_warm_start,
        f"after {result.iterations} iterations": result.final,
    }
    columns = {name: results for name, results in columns.items() if results}
    table.add_column("split")
    for name in columns:
        table.add_column(name, justify="right")
    for row in zip(*columns.values()):
        table.add_row(row[0].split, *(f"{result.success:.1%}" for result in row))
    console.print(table)
    console.print(
        f"trained {result.iterations} iterations, {result.env_steps} env steps "
        f"in {result.seconds / 60:.1f} min\n"
        f"learning curve: {result.plot}\ncheckpoint:     {result.checkpoint / 'model'}\n"
        f"metrics:        {result.output_dir / 'metrics.jsonl'}"
    )
    return 0


def cmd_config_show(args: argparse.Namespace) -> int:
    from creditgym.config import load_config
    from creditgym.config_help import annotated_yaml

    print(annotated_yaml(load_config(args.config, args.overrides)))
    return 0


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
    env_kwargs = dict(_parse_kv(item) for item in args.env_kwarg)
    serve_env(args.env, env_kwargs, args.host, args.port, limits)
    return 0


def cmd_judge_eval(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict

    from creditgym.credit_setup.judges import build_judge
    from creditgym.envs.registry import env_metadata
    from creditgym.measure.judge_eval import judge_dataset, score_judge, scores_table

    transitions, subgoals = judge_dataset(args.env, args.episodes, seed=args.seed)
    judge = build_judge(args.judge, legend=str(env_metadata(args.env).get("judge_legend", "")))
    scores = score_judge(judge, transitions, subgoals)
    title = (
        f"{args.judge} judge vs the env's events on {args.env}: "
        f"{len(transitions)} balanced transitions"
    )
    _console().print(scores_table(scores, title=title))
    if getattr(judge, "stats", None):
        _console().print(f"judge requests: {dict(judge.stats)}")
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(s) for s in scores], indent=2))
    return 0


def cmd_view(args: argparse.Namespace) -> int:
    from creditgym.view import EpisodeStore, export_html, make_server

    console = _console()
    store = EpisodeStore(Path(args.path))
    if args.export:
        done = export_html(store, args.export, limit=args.export_limit)
        left = f" ({done['left_out']} older ones left out)" if done["left_out"] else ""
        console.print(f"wrote {done['path']}: {done['episodes']} episodes{left}")
        for notice in store.overview()["notices"]:
            console.print(f"[yellow]note:[/] {notice}")
        return 0
    server = make_server(store, args.host, args.port)
    overview = store.overview()
    console.print(
        f"{overview['episodes']} episodes from {store.source} at [bold]{server.url}[/] "
        "(Ctrl-C stops)"
    )
    for notice in overview["notices"]:
        console.print(f"[yellow]note:[/] {notice}")
    if not args.no_browser:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def cmd_credit_report(args: argparse.Namespace) -> int:
    from creditgym.credit.specs import parse_methods
    from creditgym.measure.credit_report import run_credit_report
    from creditgym.measure.credit_report_output import (
        plot_report,
        report_json,
        report_markdown,
        report_table,
    )
    from creditgym.rollout.collect import PromptFormat

    console = _console()
    methods = parse_methods(args.methods)  # a malformed spec fails before any rollout
    agent = args.agent
    scripted = agent in ("expert", "random") or agent.startswith("expert:")
    policy_kwargs: dict = {"seed": args.seed} if scripted else {"temperature": args.temperature}
    if not scripted and not agent.startswith("openai:"):
        policy_kwargs["constrained"] = not args.free_form
    if agent == "tiny":  # the untrained model `creditgym train` starts from on this env
        from creditgym.config import TinyModelConfig
        from creditgym.train.corpus import tiny_env_corpus

        shape = TinyModelConfig()
        policy_kwargs.update(
            corpus=tiny_env_corpus([args.env]),
            vocab_size=shape.vocab_size,
            hidden_size=shape.hidden_size,
            num_layers=shape.num_layers,
            num_heads=shape.num_heads,
        )
    report = run_credit_report(
        args.env,
        agent,
        methods,
        groups=args.groups,
        group_size=args.group_size,
        mc=args.mc,
        mc_turns=args.mc_turns,
        mc_gamma=args.mc_gamma,
        seed=args.seed,
        split=args.split,
        env_kwargs=dict(_parse_kv(item) for item in args.env_kwarg),
        policy_kwargs=policy_kwargs,
        prompt_format=PromptFormat(
            template=args.template,
            history_length=args.history_length,
            require_tags=not scripted and args.free_form,
        ),
        settings={"judge": args.judge, "lare_factors": args.lare_factors},
        batch_size=args.batch_size,
    )
    command = _credit_report_command(args)
    console.print(report_table(report))
    for path, text in ((args.json, report_json), (args.markdown, report_markdown)):
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text(report, command))
            console.print(f"written: {path}")
    if args.plot:
        console.print(f"plot: {plot_report(report, args.plot)}")
    return 0


def _credit_report_command(args: argparse.Namespace) -> str:
    """The command line that reproduces a credit report (recorded in its JSON and markdown)."""
    import shlex

    words = ["creditgym", "credit-report", "--env", args.env, "--agent", args.agent]
    words += ["--methods", args.methods, "--groups", str(args.groups)]
    words += ["--group-size", str(args.group_size), "--seed", str(args.seed)]
    if args.mc:
        words += ["--mc", str(args.mc), "--mc-turns", str(args.mc_turns)]
        if args.mc_gamma != 1.0:
            words += ["--mc-gamma", str(args.mc_gamma)]
    if args.split != "train":
        words += ["--split", args.split]
    for item in args.env_kwarg:
        words += ["--env-kwarg", item]
    if any(name in args.methods for name in ("calm", "lare")):
        words += ["--judge", args.judge, "--lare-factors", args.lare_factors]
    if args.free_form:
        words.append("--free-form")
    return shlex.join(words)


def _parse_kv(item: str) -> tuple[str, object]:
    import yaml  # installed with omegaconf

    if "=" not in item:
        raise SystemExit(f"--env-kwarg {item!r} must look like key=value")
    key, value = item.split("=", 1)
    return key, yaml.safe_load(value)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="creditgym", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    envs = sub.add_parser("envs", help="list registered environments")
    envs.set_defaults(func=cmd_envs)

    play = sub.add_parser("play", help="play an environment in the terminal")
    play.add_argument("env", help="registered env id")
    play.add_argument("--seed", type=int, default=0)
    play.add_argument("--split", default="train")
    play.set_defaults(func=cmd_play)

    ev = sub.add_parser("eval", help="evaluate agents on held-out tasks and print a results table")
    ev.add_argument("--env", default="creditgym/Household-v0", help="registered env id")
    ev.add_argument(
        "--agent",
        action="append",
        help="expert | random | tiny | smollm2 | openai:<base_url> | a training run's directory "
        "(its latest checkpoint) or checkpoint | a model dir | an HF model name | any backend "
        "added with register_policy (repeat for several; default: expert and random)",
    )
    ev.add_argument("--episodes", type=int, default=50, help="episodes per split")
    ev.add_argument(
        "--splits", default="", help="comma-separated splits (default: the env's held-out ones)"
    )
    ev.add_argument("--batch-size", type=int, default=32, help="environments stepped in lockstep")
    ev.add_argument(
        "--env-kwarg", action="append", default=[], help="key=value passed to creditgym.make"
    )
    # The format options default to a training run's own (--agent RUN_DIR or one of its
    # checkpoints), so a model is scored in the format it was trained in; else to the defaults.
    ev.add_argument(
        "--template",
        choices=("compact", "verl-agent"),
        help="prompt template for model agents (default: the run's, else compact)",
    )
    ev.add_argument(
        "--history-length",
        type=int,
        help="previous turns a window prompt shows (default: the run's, else 2)",
    )
    ev.add_argument(
        "--constrained",
        action=argparse.BooleanOptionalAction,
        help="model agents sample only admissible actions (default: as the run trained, else no)",
    )
    ev.add_argument(
        "--context",
        choices=("window", "conversation"),
        help="window: a fresh prompt per decision; conversation: the episode as one chat "
        "(default: the run's policy.context, else window)",
    )
    ev.add_argument(
        "--think",
        action=argparse.BooleanOptionalAction,
        help="think-then-act responses <think>...</think><action>...</action> "
        "(default: the run's policy.think, else no)",
    )
    ev.add_argument(
        "--temperature",
        type=float,
        default=1.0,
        help="sampling temperature of model agents (0 = greedy)",
    )
    ev.add_argument("--seed", type=int, default=0, help="seed of the random agent")
    ev.add_argument("--json", help="also write the results as JSON to this path")
    ev.add_argument(
        "--save-episodes",
        metavar="PATH",
        help="also write every episode, turn by turn, as JSON Lines (open it with creditgym view)",
    )
    ev.set_defaults(func=cmd_eval)

    tr = sub.add_parser("train", help="train an agent from a YAML config")
    tr.add_argument("config", nargs="?", help="YAML config, e.g. configs/quickstart.yaml")
    tr.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.iterations=5")
    tr.add_argument(
        "--help-config",
        action="store_true",
        help="print every config field with its type, default, allowed values and help",
    )
    tr.set_defaults(func=cmd_train)

    ex = sub.add_parser(
        "export",
        help="write a trained run as a self-contained Hugging Face model directory with a card",
    )
    ex.add_argument("run_dir", help="the run directory (run.output_dir of creditgym train)")
    ex.add_argument("out", help="a new directory for the model, tokenizer and README.md")
    ex.add_argument(
        "--checkpoint", help="a checkpoint directory to export instead of the run's latest"
    )
    ex.set_defaults(func=cmd_export)

    cf = sub.add_parser("config", help="inspect configs")
    cf_sub = cf.add_subparsers(dest="config_command", required=True)
    show = cf_sub.add_parser(
        "show", help="print the resolved config as YAML, with each field's type and help"
    )
    show.add_argument("config", help="YAML config, e.g. configs/quickstart.yaml")
    show.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.iterations=5")
    show.set_defaults(func=cmd_config_show)

    from creditgym.agents.serve.options import add_server_arguments

    serve = sub.add_parser("serve", help="serve a policy over an OpenAI-compatible HTTP API")
    add_server_arguments(serve)  # model, --host (127.0.0.1), --port, --api-key, the limits
    serve.set_defaults(func=cmd_serve, serve_parser=serve)

    from creditgym.envs.openenv.options import add_serve_arguments

    serve_env = sub.add_parser(
        "serve-env", help="serve a registered env over OpenEnv's protocol (HTTP + WebSocket)"
    )
    add_serve_arguments(serve_env)  # env, --env-kwarg, --host, --port, --api-key, the limits
    serve_env.set_defaults(func=cmd_serve_env, serve_env_parser=serve_env)

    je = sub.add_parser(
        "judge-eval", help="score a CALM subgoal judge against the env's own events"
    )
    je.add_argument("--env", default="creditgym/MiniHackKeyRoom-v0", help="registered env id")
    je.add_argument(
        "--judge", default="oracle", help="oracle | openai:<base_url> | smollm2 | an HF model"
    )
    je.add_argument(
        "--episodes", type=int, default=20, help="expert and random episodes (seeds 0..N-1)"
    )
    je.add_argument(
        "--seed", type=int, default=0, help="seed of the random agent and the negative sample"
    )
    je.add_argument("--json", help="also write the scores as JSON to this path")
    je.set_defaults(func=cmd_judge_eval)

    vw = sub.add_parser(
        "view", help="browse a run's episodes, turn by turn with their credit, in a browser"
    )
    vw.add_argument("path", help="a run directory, or an episodes .jsonl file")
    vw.add_argument("--port", type=int, default=8765, help="port (0 = any free one)")
    vw.add_argument("--host", default="127.0.0.1", help="address to serve on")
    vw.add_argument("--no-browser", action="store_true", help="do not open a browser")
    vw.add_argument("--export", metavar="OUT.html", help="write one self-contained HTML file")
    vw.add_argument(
        "--export-limit", type=int, default=2000, help="newest episodes in an export (0 = all)"
    )
    vw.set_defaults(func=cmd_view)
    cr = sub.add_parser(
        "credit-report",
        help="score credit methods against the env's oracle progress labels on the same episodes",
        description="Roll out an agent on grouped tasks, compute every credit method on the same "
        "episodes and score it against the env's oracle progress labels d(s)-d(s') (and, with "
        "--mc K, Monte-Carlo advantages of the agent).",
    )
    cr.add_argument("--env", default="creditgym/HouseholdEasy-v0", help="registered env id")
    cr.add_argument(
        "--agent",
        default="random",
        help="random | expert | expert:eps=0.5 | tiny | a checkpoint dir | an HF model | "
        "openai:<url>",
    )
    cr.add_argument(
        "--methods",
        default="grpo,gigpo",
        help="comma-separated SHAPER[+SHAPER]/ESTIMATOR[:key=value] specs, e.g. "
        "grpo,gigpo:normalization=mean_std,env+calm/gigpo,lare/discounted_group,igpo",
    )
    cr.add_argument("--groups", type=int, default=8, help="tasks (episode groups)")
    cr.add_argument("--group-size", type=int, default=8, help="episodes per task")
    cr.add_argument(
        "--mc", type=int, default=0, help="K Monte-Carlo continuations per Q and V (0: none)"
    )
    cr.add_argument("--mc-turns", type=int, default=64, help="turns sampled for Monte-Carlo")
    cr.add_argument(
        "--mc-gamma", type=float, default=1.0, help="discount of the Monte-Carlo returns"
    )
    cr.add_argument("--seed", type=int, default=0, help="tasks, agent sampling and MC sample")
    cr.add_argument("--split", default="train", help="env split the tasks come from")
    cr.add_argument(
        "--env-kwarg", action="append", default=[], help="key=value passed to creditgym.make"
    )
    cr.add_argument("--judge", default="oracle", help="CALM's judge: oracle | a model spec")
    cr.add_argument(
        "--lare-factors", default="hand", help="LaRe's factors: hand | a .py file | llm:<model>"
    )
    cr.add_argument("--template", default="compact", help="prompt template for model agents")
    cr.add_argument("--history-length", type=int, default=2)
    cr.add_argument(
        "--free-form",
        action="store_true",
        help="model agents write free text (default: constrained to admissible actions)",
    )
    cr.add_argument("--temperature", type=float, default=1.0, help="model agents' temperature")
    cr.add_argument("--batch-size", type=int, default=64, help="envs stepped in lockstep")
    cr.add_argument("--json", help="write the report as JSON here")
    cr.add_argument("--markdown", help="write the table as markdown here")
    cr.add_argument("--plot", help="write a plot of advantage vs progress per method here")
    cr.set_defaults(func=cmd_credit_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from gymnasium.error import Error as GymnasiumError

    from creditgym.train.disk import DiskFullError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except DiskFullError as error:  # one line: which path, and that a rerun resumes
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (ValueError, LookupError, FileNotFoundError, GymnasiumError) as error:
        # Configuration mistakes (unknown env id, config key, agent name): one clear line on
        # stderr, no trace, never wrapped (plain print: messages may hold [brackets]).
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    except ImportError as error:
        if (error.name or "").startswith("creditgym"):
            raise  # our own module failing to import is a bug: show its traceback
        # an optional back-end that is not installed; the message says what to install
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
