"""Generation throughput of the tiny HF policy on CPU: tokens/s, free-form and constrained.

    python benchmarks/agents_generate.py                 # about a minute on two cores
    python benchmarks/agents_generate.py --batches 16 --repeats 1 --env creditgym/HouseholdEasy-v0
    python benchmarks/agents_generate.py --threads 1     # on a shared, busy machine

Builds the default tiny agent (tokenizer fitted to the env's text, Llama-style model, random
init) in a temporary directory, collects real compact prompts and admissible-action lists by
playing the env with a random agent, then times `HFPolicy.generate` at each batch size.
Free-form decoding runs to `--max-new-tokens` unless EOS comes first; constrained decoding
samples one admissible action per prompt, a few tokens, so its time is mostly the prompt's
forward pass and responses/s is the figure to compare. Rates are generated tokens (EOS included)
per wall second and per CPU second of this process (`time.process_time`, summed over torch's
threads), the latter less skewed by other jobs on a shared machine.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time

import torch

import creditgym
from creditgym.agents.hf.policy import HFPolicy
from creditgym.agents.hf.tiny import build_tiny_agent, count_parameters
from creditgym.agents.prompts import build_prompt
from creditgym.envs import info as keys
from creditgym.train.corpus import tiny_env_corpus


def env_prompts(env_id: str, count: int, seed: int = 0) -> tuple[list[str], list[list[str]]]:
    """`count` compact prompts (with two turns of history) and their admissible actions."""
    rng = random.Random(seed)
    env = creditgym.make(env_id)
    prompts, admissible = [], []
    observation, info = env.reset(seed=seed)
    history: list[tuple[str, str]] = []
    while len(prompts) < count:
        actions = list(info[keys.ADMISSIBLE_ACTIONS])
        prompts.append(
            build_prompt(info[keys.TASK], observation, history, actions, template="compact")
        )
        admissible.append(actions)
        action = rng.choice(actions)
        history.append((observation, action))
        observation, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            observation, info = env.reset(seed=seed + len(prompts))
            history = []
    return prompts, admissible


def measure(
    policy: HFPolicy, prompts: list[str], admissible: list[list[str]] | None, repeats: int
) -> tuple[float, float, float]:
    """(tokens per wall second, tokens per CPU second, mean response tokens)."""
    policy.generate(prompts[:2], admissible[:2] if admissible else None)  # warm-up
    tokens, wall, cpu = 0, 0.0, 0.0
    for _ in range(repeats):
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        generations = policy.generate(prompts, admissible)
        wall += time.perf_counter() - wall_start
        cpu += time.process_time() - cpu_start
        tokens += sum(len(g.token_ids) for g in generations)
    return tokens / wall, tokens / cpu, tokens / (repeats * len(prompts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--env", default="creditgym/Household-v0", help="env whose text and prompts to use"
    )
    parser.add_argument(
        "--batches", type=int, nargs="+", default=[16, 64], help="batch sizes to time"
    )
    parser.add_argument("--max-new-tokens", type=int, default=32, help="free-form response budget")
    parser.add_argument("--repeats", type=int, default=3, help="timed generate calls per setting")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (0: torch's default)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)  # on a busy machine one thread often beats two

    with tempfile.TemporaryDirectory() as folder:
        build_start = time.perf_counter()
        directory = build_tiny_agent(folder, tiny_env_corpus([args.env], episodes_per_env=50))
        build_seconds = time.perf_counter() - build_start
        free = HFPolicy.from_pretrained(directory, device="cpu", max_new_tokens=args.max_new_tokens)
    constrained = HFPolicy(free.model, free.tokenizer, device="cpu", constrained=True)
    prompts, admissible = env_prompts(args.env, max(args.batches))
    prompt_tokens = sum(len(free.encode_prompt(p)) for p in prompts) / len(prompts)
    print(
        f"tiny agent for {args.env}: {count_parameters(free.model):,} parameters, "
        f"vocab {len(free.tokenizer)}, "
        f"built in {build_seconds:.1f} s; prompts {prompt_tokens:.0f} tokens on average; "
        f"torch threads {torch.get_num_threads()}"
    )
    print(
        f"{'mode':<12}{'batch':>6}{'tokens/s':>10}{'tokens/CPU-s':>14}{'responses/s':>13}{'tokens/response':>17}"
    )
    for batch in args.batches:
        for name, policy, actions in (
            ("free-form", free, None),
            ("constrained", constrained, admissible),
        ):
            rate, cpu_rate, length = measure(
                policy, prompts[:batch], actions[:batch] if actions else None, args.repeats
            )
            print(
                f"{name:<12}{batch:>6}{rate:>10.0f}{cpu_rate:>14.0f}"
                f"{rate / length:>13.1f}{length:>17.1f}"
            )


if __name__ == "__main__":
    main()
