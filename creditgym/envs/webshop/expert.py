"""The scripted shopper. It reads the true goal, which an agent cannot.

On the search page it searches the instruction's key terms (`goals.suggested_query`). On a
results page it clicks the target product if listed, else the first listed product that can
still earn reward 1 (same type, the wanted attributes, price in bound, the wanted option
values on offer), else it turns the page; on the last page it takes the best product shown.
On the item page it clicks each wanted option value not yet chosen, then buys. From the
description or features page it goes back.

It also takes over from states it would never reach itself (after someone else's moves):
results of another query with nothing fitting shown send it back to search; a fitting product
on an earlier results page sends it back a page; an open item that cannot earn reward 1,
while a fitting one is in the results or the query was not its own, sends it back to them.
"""

from __future__ import annotations

from creditgym.envs.webshop.catalog import Catalog
from creditgym.envs.webshop.goals import Goal, suggested_query
from creditgym.envs.webshop.pages import BACK_TO_SEARCH, BUY_NOW, NEXT, PREV, Page
from creditgym.envs.webshop.reward import purchase_reward

__all__ = ["expert_action", "best_reward"]


def best_reward(catalog: Catalog, goal: Goal, index: int) -> float:
    """The reward of buying product `index` with the best options it offers."""
    offered = catalog.options(index)
    chosen = {kind: value for kind, value in goal.options if value in offered.get(kind, ())}
    return purchase_reward(catalog, goal, index, chosen).reward


def _fits(catalog: Catalog, goal: Goal, products: list[int]) -> bool:
    """Whether any of `products` is the target or can earn reward 1."""
    return goal.product in products or any(
        best_reward(catalog, goal, index) == 1.0 for index in products
    )


def _click(label: str) -> str:
    return f"click[{label.lower()}]"


def expert_action(
    page: Page, goal: Goal, catalog: Catalog, results: list[int], per_page: int
) -> str:
    """The expert's next action on `page` (always admissible there)."""
    if page.kind == "search":
        return f"search[{suggested_query(goal)}]"
    own_query = page.query == " ".join(suggested_query(goal).lower().split())  # as the env reads it
    if page.kind == "results":
        start = (page.results_page - 1) * per_page
        shown = results[start : start + per_page]
        if not shown:
            return _click(BACK_TO_SEARCH)
        if goal.product in shown:
            return _click(catalog.asin(goal.product))
        rewards = [best_reward(catalog, goal, index) for index in shown]
        if max(rewards) == 1.0:
            return _click(catalog.asin(shown[rewards.index(max(rewards))]))
        if not own_query:
            return _click(BACK_TO_SEARCH)
        if _fits(catalog, goal, results[:start]):
            return _click(PREV)
        if start + per_page >= len(results):
            return _click(catalog.asin(shown[rewards.index(max(rewards))]))
        return _click(NEXT)
    if page.kind == "item":
        if best_reward(catalog, goal, page.item) < 1.0 and (
            not own_query or _fits(catalog, goal, results)
        ):
            return _click(PREV)
        chosen = dict(page.options)
        offered = catalog.options(page.item)
        for kind, value in goal.options:
            if chosen.get(kind) != value and value in offered.get(kind, ()):
                return _click(value)
        return _click(BUY_NOW)
    return _click(PREV)
