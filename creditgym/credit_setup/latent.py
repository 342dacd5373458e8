"""Build a `LatentReward` (requirement kind ``latent_reward``): a factor function and a decoder.

The config setting the requirement names (``credit.<setting>``) says where the factors come from:

* ``hand``: the env's hand-written factor function (its class ``metadata["latent_factors"]``,
  a ``module:function`` path), trusted and run in-process;
* a path to a ``.py`` file defining ``evaluate(state, action)``: run in the sandbox;
* ``llm:<model>``: an LLM writes the code from the task and the env's documented
  ``symbolic_state`` fields (``metadata["symbolic_state_doc"]``), verified in the sandbox
  (latent reward factors written by an LLM, arXiv 2412.11120). The accepted code and every
  round's error go to ``<run dir>/latent_factors.json``; if no round produced working code,
  training stops with that file's path in the message.
"""

from __future__ import annotations

import importlib
import json
import random
from pathlib import Path
from typing import Any

from creditgym.agents.factory import load_policy
from creditgym.cache import cache_root
from creditgym.credit import LatentReward, RunContext, sandboxed_factors, write_factor_code
from creditgym.credit.llm import CachedLLM
from creditgym.credit_setup.builders import register_builder
from creditgym.envs import info as keys
from creditgym.envs.registry import env_metadata, make

__all__ = ["build_latent_reward"]

# where the code-writing LLM's answers are cached, under the creditgym cache
_CODER_CACHE = "latent_factors"


@register_builder("latent_reward")
def _latent_reward_for_run(spec: Any, run: RunContext, where: str) -> LatentReward:
    if run.output_dir is None:
        raise ValueError("a latent reward model is built inside a run (it logs to the run dir)")
    return build_latent_reward(str(spec), run.env_id, run.output_dir, run.seed, where=where)


def _sample_states(env_id: str, count: int = 16, seed: int = 0) -> list[tuple[dict[str, Any], str]]:
    """(symbolic_state, action) pairs from random play, for verifying written code."""
    env, rng, samples = make(env_id), random.Random(seed), []
    multiagent = hasattr(env, "possible_agents")
    _, infos = env.reset(seed=seed)
    infos = infos if multiagent else {"agent": infos}
    while len(samples) < count:
        actions = {
            a: rng.choice(info.get(keys.ADMISSIBLE_ACTIONS) or ["look"])
            for a, info in infos.items()
        }
        if multiagent:
            _, _, terminations, truncations, infos = env.step(actions)
            over = not env.agents
        else:
            _, _, terminated, truncated, info = env.step(actions["agent"])
            infos, over = {"agent": info}, terminated or truncated
        samples += [
            (dict(infos[a].get(keys.SYMBOLIC_STATE, {})), actions[a]) for a in actions if a in infos
        ]
        if over:
            _, infos = env.reset(seed=rng.randrange(2**31))
            infos = infos if multiagent else {"agent": infos}
    env.close()
    return samples[:count]


def build_latent_reward(
    spec: str, env_id: str, out: Path, seed: int = 0, *, where: str = "factors"
) -> LatentReward:
    """The factor function `spec` names (see the module docstring) with a fresh decoder.

    `where` names the setting `spec` came from, for error messages.
    """
    metadata = env_metadata(env_id)
    if spec == "hand":
        path = metadata.get("latent_factors")
        if not path:
            raise ValueError(
                f"{where}=hand, but {env_id} has no hand-written factor function; "
                "give a .py file defining evaluate(state, action), or llm:<model>"
            )
        module, name = path.split(":")
        return LatentReward(
            LatentReward.trusted(getattr(importlib.import_module(module), name)), seed=seed
        )
    if spec.startswith("llm:"):
        client = load_policy(spec[len("llm:") :], **_text_options(spec[len("llm:") :]))
        env = make(env_id)
        _, info = env.reset(seed=seed)
        if hasattr(env, "possible_agents"):  # multi-agent: the first agent's view of the task
            info = info[env.possible_agents[0]]
        task = str(info.get(keys.TASK, ""))
        env.close()
        doc = str(metadata.get("symbolic_state_doc", "")) or "(undocumented: see the sample states)"
        result = write_factor_code(
            CachedLLM(client, cache_root() / _CODER_CACHE),
            task,
            doc,
            _sample_states(env_id, seed=seed),
        )
        log = out / "latent_factors.json"
        log.write_text(
            json.dumps({"model": spec, "code": result.code, "rounds": result.rounds}, indent=1)
        )
        if result.code is None:
            raise ValueError(
                f"{where}: {spec} wrote no working factor function; every attempt is in {log}"
            )
        return LatentReward(sandboxed_factors(result.code), seed=seed)
    code_path = Path(spec)
    if code_path.suffix != ".py" or not code_path.is_file():
        raise ValueError(f"{where}={spec!r}: use hand, llm:<model>, or an existing .py file")
    return LatentReward(sandboxed_factors(code_path.read_text()), seed=seed)


def _text_options(model: str) -> dict[str, Any]:
    # candidates should differ: sample; local models write free text, not admissible actions
    options: dict[str, Any] = {"temperature": 0.7}
    if model.startswith("openai:"):
        options["max_tokens"] = 512
    else:
        options.update(constrained=False, max_new_tokens=384)
    return options
