"""Rollout collection: envs and a policy in, `Episode`s out.

- `collect`: B envs stepped in lockstep, one batched `generate` per step (single- and
  multi-agent alike; `seats` holds what multi-agent envs add).
- `branching`: extra rollouts from cloned states (``tree`` and ``vine`` credit), built on the
  `continuations` runner.
- `workers`: envs held in Ray actors (``rollout.workers > 0``).
- `isolation`: each env in a worker process of its own (``rollout.isolation=process``), over
  OpenEnv-shaped messages; a worker that crashes, hangs, answers garbage or leaks fails only
  its episode.
- `failures`: why an episode failed (``crash``, ``timeout``, ``garbage``, ``memory``, ``error``).
"""

from creditgym.rollout.collect import (
    PromptFormat,
    RolloutTask,
    collect_episodes,
    group_tasks,
    make_envs,
)

__all__ = ["PromptFormat", "RolloutTask", "collect_episodes", "group_tasks", "make_envs"]
