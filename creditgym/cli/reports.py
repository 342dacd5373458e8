"""Looking at credit and runs: `creditgym credit-report` (credit methods scored against the env's
oracle progress), `creditgym judge-eval` (a CALM judge against the env's events) and
`creditgym view` (a run's episodes in a browser)."""

from __future__ import annotations

import argparse
from pathlib import Path

from creditgym.cli.common import make_console, parse_kv

__all__ = ["cmd_credit_report", "cmd_judge_eval", "cmd_view"]


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

    console = make_console()
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
        env_kwargs=dict(parse_kv(item) for item in args.env_kwarg),
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
    make_console().print(scores_table(scores, title=title))
    if getattr(judge, "stats", None):
        make_console().print(f"judge requests: {dict(judge.stats)}")
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(s) for s in scores], indent=2))
    return 0


def cmd_view(args: argparse.Namespace) -> int:
    from creditgym.view import EpisodeStore, export_html, make_server

    console = make_console()
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
