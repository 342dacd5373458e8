"""Advantage estimators: summed turn rewards in, one advantage per turn out.

One module per method, registered by name on import: `grpo`, `gigpo`, `rloo`,
`reinforce_pp`, `turn_level`, `empg`, `discounted_group` (IGPO), `ppo` (with its `critic`),
`tree` and `vine`.
"""
