"""The command line's parser: every subcommand, its arguments and the handler it runs
(`creditgym.cli.envs`, `.evaluate`, `.train`, `.serve`, `.reports`)."""

from __future__ import annotations

import argparse

from creditgym.cli.envs import cmd_envs, cmd_play
from creditgym.cli.evaluate import cmd_eval
from creditgym.cli.reports import cmd_credit_report, cmd_judge_eval, cmd_view
from creditgym.cli.serve import cmd_serve, cmd_serve_env
from creditgym.cli.train import cmd_config_show, cmd_export, cmd_train

__all__ = ["USAGE", "build_parser"]

#: `creditgym --help`'s description: the commands, with an example of each.
USAGE = """\
The `creditgym` command line: `envs`, `play`, `eval`, `train`, `config`, `serve`, `serve-env`,
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="creditgym", description=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter
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
