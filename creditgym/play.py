"""`creditgym play`: a person plays an environment in the terminal.

Shows the task, the observation and the numbered admissible actions. Type an action (tab
completes it), or its number; `:expert` shows the expert's next action, `:reset` restarts,
`:quit` leaves.
"""

from __future__ import annotations

from collections.abc import Callable

from creditgym.envs import info as keys
from creditgym.rollout.collect import make_envs

__all__ = ["play"]


def _install_completion(get_actions: Callable[[], list[str]]) -> None:
    try:
        import readline
    except ImportError:  # not on every platform; completion is a nicety
        return

    def complete(text: str, state: int) -> str | None:
        line = readline.get_line_buffer()
        matches = [a for a in get_actions() + [":expert", ":reset", ":quit"] if a.startswith(line)]
        if state < len(matches):
            # readline replaces only the current word; return the rest of the match from it
            return matches[state][len(line) - len(text) :]
        return None

    readline.set_completer_delims("")
    readline.set_completer(complete)
    readline.parse_and_bind("tab: complete")


def play(
    env_id: str, seed: int = 0, split: str = "train", input_fn: Callable[[str], str] = input
) -> int:
    """Play `env_id` interactively; returns 0 when the player quits or input ends."""
    from rich.console import Console

    console = Console()
    env = make_envs(env_id, 1, split=split)[0]
    observation, info = env.reset(seed=seed)
    _install_completion(lambda: list(info.get(keys.ADMISSIBLE_ACTIONS) or []))
    total = 0.0
    while True:
        console.rule(f"[bold]{env_id}[/]  seed {seed}  return {total:g}")
        console.print(f"[bold]task:[/] {info.get(keys.TASK, '')}")
        console.print(observation)
        actions = list(info.get(keys.ADMISSIBLE_ACTIONS) or [])
        if actions:
            console.print("[dim]" + "  ".join(f"{i}) {a}" for i, a in enumerate(actions)) + "[/]")
        try:
            line = input_fn("> ").strip()
        except EOFError:
            return 0
        if line == ":quit":
            return 0
        if line == ":reset":
            seed += 1
            observation, info = env.reset(seed=seed)
            total = 0.0
            continue
        if line == ":expert":
            expert = getattr(env.unwrapped, "expert_action", None)
            console.print(f"expert: {expert() if expert else 'this env has no expert'}")
            continue
        if line.isdigit() and int(line) < len(actions):
            line = actions[int(line)]
        observation, reward, terminated, truncated, info = env.step(line)
        total += float(reward)
        if terminated or truncated:
            console.print(observation)
            outcome = "[green]won[/]" if info.get(keys.WON) else "[red]episode over[/]"
            console.print(f"{outcome}: return {total:g}. Starting the next task (seed {seed + 1}).")
            seed += 1
            observation, info = env.reset(seed=seed)
            total = 0.0
