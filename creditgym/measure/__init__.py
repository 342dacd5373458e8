"""Measurement: how good a policy is, and how good its credit is.

- `evaluate`: success, return and steps on held-out splits (`creditgym eval`).
- `credit_report` (+ `credit_report_output`): credit fidelity against the envs' oracle labels
  and the policy's own Monte-Carlo advantages (`creditgym credit-report`).
- `monte_carlo` (+ `monte_carlo_team`): Monte-Carlo advantages from cloned states.
- `judge_eval`: a CALM judge scored against the envs' own subgoal events.
"""
