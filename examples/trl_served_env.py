"""Train with TRL's GRPOTrainer on a creditgym env served over OpenEnv.

TRL's environment pattern (``GRPOTrainer(environment_factory=...)``): the trainer builds one
environment object per rollout, calls its ``reset(**row)`` before generating (the returned text
is appended to the prompt) and offers its other public methods to the model as tools; reward
functions receive the environment objects as ``environments``. Here each object holds one
WebSocket session on a served creditgym env, so the household's own reward and ``won`` flag
score the episode:

    creditgym serve-env creditgym/HouseholdEasy-v0 --port 8001 --max-sessions 64 &
    python examples/trl_served_env.py --url http://127.0.0.1:8001 --model Qwen/Qwen3-0.6B

Not run in creditgym's tests: TRL is not installed there (``pip install trl datasets``; the
`environment_factory` argument needs a TRL release that has it). `HouseholdTools` and
`episode_reward`, the parts that talk to the server, are tested without TRL
(tests/test_openenv_serve.py).
"""

from __future__ import annotations

import argparse

import creditgym

SYSTEM = (
    "You are in a household. Solve the task by calling the `act` tool with one of the "
    "admissible commands at a time."
)


class HouseholdTools:
    """One rollout's environment for TRL: `reset` starts an episode on the server, `act` is the
    model's only tool."""

    def __init__(self, url: str) -> None:
        self.env = creditgym.make(f"openenv:{url}")
        self.reward = 0.0
        self.won = False
        self.done = False

    def reset(self, seed: int | None = None, **row: object) -> str:
        """Start the episode of task `seed` (a dataset column); returns what the model sees."""
        text, info = self.env.reset(seed=None if seed is None else int(seed))
        self.reward, self.won, self.done = 0.0, False, False
        return f"Task: {info['task']}\n{text}\n{_admissible(info)}"

    def act(self, command: str) -> str:
        """Carry out one household command.

        Args:
            command: one of the admissible commands, e.g. "go to countertop 1".

        Returns:
            What happened, and the commands admissible next.
        """
        if self.done:
            raise ValueError("the episode is over; stop calling act")
        text, reward, terminated, truncated, info = self.env.step(command)
        self.reward += reward
        self.won = bool(info["won"])
        self.done = terminated or truncated
        return text if self.done else f"{text}\n{_admissible(info)}"


def _admissible(info: dict) -> str:
    return "Admissible commands: " + "; ".join(info.get("admissible_actions", []))


def episode_reward(environments: list[HouseholdTools], **kwargs: object) -> list[float]:
    """The env's own return of each rollout's episode (1.0 for a solved household task)."""
    return [env.reward for env in environments]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8001", help="the serve-env server")
    parser.add_argument("--model", default="Qwen/Qwen3-0.6B")
    parser.add_argument("--tasks", type=int, default=256, help="training tasks (reset seeds)")
    parser.add_argument("--output-dir", default="runs/trl_household")
    args = parser.parse_args()

    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    dataset = Dataset.from_dict(
        {
            "prompt": [[{"role": "system", "content": SYSTEM}]] * args.tasks,
            "seed": list(range(args.tasks)),
        }
    )
    trainer = GRPOTrainer(
        model=args.model,
        reward_funcs=episode_reward,
        train_dataset=dataset,
        args=GRPOConfig(
            output_dir=args.output_dir,
            num_generations=8,
            max_completion_length=2048,  # the whole multi-turn episode
            per_device_train_batch_size=8,
            logging_steps=1,
        ),
        environment_factory=lambda: HouseholdTools(args.url),
    )
    trainer.train()


if __name__ == "__main__":
    main()
