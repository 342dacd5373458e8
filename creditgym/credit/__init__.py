"""Credit assignment: turn-reward shapers and advantage estimators.

Two stages, each picked by name from the config::

    credit:
      shapers: [env]                                  # summed turn rewards
      estimator: {name: gigpo, gamma: 0.95, step_weight: 1.0}

and callable without the trainer::

    from creditgym.credit import compute_advantages
    advantages = compute_advantages(episodes, shapers=["env"], estimator="grpo")

Built in: shapers ``env``, ``info_gain`` (IGPO), ``calm`` (CALM) and ``lare`` (LaRe);
estimators ``grpo``, ``gigpo``, ``discounted_group`` (IGPO), ``rloo``, ``reinforce_pp``
(REINFORCE++), ``turn_level`` (MT-GRPO-style), ``empg``, ``ppo`` (turn-level GAE with a
critic), ``tree`` (tree advantages over shared prefixes) and ``vine`` (VinePPO's Monte-Carlo
values, from ``rollout.branch.mode=vine``). Add yours with
`register_shaper` / `register_estimator`; one that needs outside things or keeps state declares
it (`creditgym.credit.modules`).
"""

from creditgym.credit.api import (
    CreditBreakdown,
    assign_credit,
    check_credit_config,
    compute_advantages,
    shape_rewards,
)
from creditgym.credit.batch import discounted_returns
from creditgym.credit.context import CreditContext, LogProbScorer
from creditgym.credit.estimators.discounted_group import discounted_group_advantages
from creditgym.credit.estimators.empg import empg_advantages
from creditgym.credit.estimators.gigpo import GiGPOTerms, gigpo_advantages, gigpo_terms, step_groups
from creditgym.credit.estimators.grpo import grpo_advantages
from creditgym.credit.estimators.ppo import PPOEstimator, turn_gae
from creditgym.credit.estimators.reinforce_pp import reinforce_pp_advantages
from creditgym.credit.estimators.rloo import rloo_advantages
from creditgym.credit.estimators.tree import tree_advantages
from creditgym.credit.estimators.turn_level import turn_level_advantages
from creditgym.credit.estimators.vine import vine_advantages
from creditgym.credit.metrics import agreement_with_grpo, credit_metrics
from creditgym.credit.modules import CreditModule, Requirement, RunContext, StatefulModule
from creditgym.credit.registry import (
    CreditConfigError,
    get_estimator,
    get_shaper,
    list_estimators,
    list_shapers,
    register_estimator,
    register_shaper,
)
from creditgym.credit.shapers.calm import (
    LLMJudge,
    OracleJudge,
    Transition,
    calm_rewards,
    episode_transitions,
)
from creditgym.credit.shapers.env import env_rewards  # built-ins register on import
from creditgym.credit.shapers.igpo import answer_scores, information_gain
from creditgym.credit.shapers.lare import LatentReward, lare_rewards, sandboxed_factors
from creditgym.credit.shapers.lare_coder import write_factor_code

__all__ = [
    "compute_advantages",
    "assign_credit",
    "CreditBreakdown",
    "shape_rewards",
    "check_credit_config",
    "CreditContext",
    "LogProbScorer",
    "CreditConfigError",
    "register_shaper",
    "register_estimator",
    "get_shaper",
    "get_estimator",
    "list_shapers",
    "list_estimators",
    "discounted_returns",
    "env_rewards",
    "grpo_advantages",
    "gigpo_advantages",
    "gigpo_terms",
    "GiGPOTerms",
    "step_groups",
    "calm_rewards",
    "LLMJudge",
    "OracleJudge",
    "Transition",
    "episode_transitions",
    "lare_rewards",
    "LatentReward",
    "sandboxed_factors",
    "information_gain",
    "answer_scores",
    "discounted_group_advantages",
    "rloo_advantages",
    "reinforce_pp_advantages",
    "turn_level_advantages",
    "empg_advantages",
    "credit_metrics",
    "agreement_with_grpo",
    "write_factor_code",
    "CreditModule",
    "Requirement",
    "RunContext",
    "StatefulModule",
    "tree_advantages",
    "vine_advantages",
    "PPOEstimator",
    "turn_gae",
]
