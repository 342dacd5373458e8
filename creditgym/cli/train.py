"""`creditgym train` (a run from a YAML config, and its summary table), `creditgym config show`
and `creditgym export` (a trained run as a Hugging Face model directory)."""

from __future__ import annotations

import argparse

from creditgym.cli.common import make_console

__all__ = ["cmd_train", "cmd_config_show", "cmd_export"]


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

    console = make_console()
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


def cmd_export(args: argparse.Namespace) -> int:
    from creditgym.train.export import export_run

    out = export_run(args.run_dir, args.out, checkpoint=args.checkpoint)
    print(f"exported {args.run_dir} to {out} (model card: {out / 'README.md'})")
    return 0
