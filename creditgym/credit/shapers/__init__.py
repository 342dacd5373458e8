"""Turn-reward shapers: one reward per turn, summed before the estimator.

One module per method, registered by name on import: `env` (the environment's own reward),
`igpo` (information gain), `calm` (LLM-judged subgoals) and `lare` (LLM-written latent reward
code, written by `lare_coder` and run in `creditgym.credit.sandbox`).
"""
