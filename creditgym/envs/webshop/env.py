"""`WebShopEnv`: the Gymnasium class of the shopping environment."""

from __future__ import annotations

import string
from dataclasses import astuple
from typing import Any

import gymnasium as gym
import numpy as np

from creditgym.envs import info as keys
from creditgym.envs.oracle import restore_attributes, snapshot_attributes
from creditgym.envs.reset_args import reset_arguments
from creditgym.envs.spaces import text_space
from creditgym.envs.webshop.catalog import CatalogParams, load_catalog
from creditgym.envs.webshop.expert import best_reward, expert_action
from creditgym.envs.webshop.goals import SPLITS, Goal, make_goal, split_targets, suggested_query
from creditgym.envs.webshop.pages import (
    BACK_TO_SEARCH,
    BUY_NOW,
    DESCRIPTION,
    FEATURES,
    NEXT,
    PAGE_KINDS,
    PREV,
    SEP,
    Page,
    clickables,
    parse_action,
    render,
)
from creditgym.envs.webshop.reward import RewardDetails, purchase_reward
from creditgym.envs.webshop.search import load_search_engine

__all__ = ["WebShopEnv"]

_PRINTABLE = frozenset(string.printable) - frozenset("\r\x0b\x0c")
_MAX_PLAN = 1_000  # more expert actions than any results list can take: a planner bug


def _printable(text: str, limit: int = 60) -> str:
    """`text` cut to `limit` printable ASCII characters, safe to echo in an observation."""
    return "".join(ch for ch in text if ch in _PRINTABLE)[:limit]


class WebShopEnv(gym.Env):
    """Find and buy the product an instruction asks for, in a generated online shop.

    ## Description
    Our own engine after WebShop (Yao et al. 2022, arXiv 2207.01206). A seeded generator builds a
    catalog (10,000 products by default, up to a million) of typed products with titles, bullet
    features, descriptions, attributes ("gluten free"), options ("size: pack of 12") and prices;
    an instruction written from a target product asks for its type, 1-3 of its attributes, one
    value per option kind and a price bound. The agent searches (BM25 over the catalog, top 50,
    ten per page), opens items, chooses options and buys.

    ## Action space
    `text_space()`: a string. Two verbs, as in WebShop:
    * ``search[<any words>]`` on the search page: any text is accepted and searched. The
      admissible actions offer one concrete query, the instruction's key terms (attributes,
      type, option values), so a small model choosing among admissible actions can search.
    * ``click[<label>]``: a button, product id or option value shown on the page, in lower case
      (``click[next >]``, ``click[b0k3x9q2zl]``, ``click[pack of 12]``, ``click[buy now]``).
    Anything else leaves the page unchanged, costs a step, and says so (``valid=False``).

    ## Observation space
    `text_space()`: the page in WebShop's simple text mode, segments joined by ``" [SEP] "``,
    the instruction at the top of every page (see `pages.py`). Pages: search; results
    (``Back to Search``, ``< Prev``/``Next >``, then id, title, price of each product); item
    (option kinds and values, title, price, ``Description``, ``Features``, ``Buy Now``);
    description and features sub-pages (``< Prev`` returns to the item, options kept).

    ## Rewards
    0 until ``click[buy now]``, then WebShop's Eq. 1 (see `reward.py`):
    ``r_type * (|U_att ∩ Y_att| + |U_opt ∩ Y_opt| + 1[price <= bound]) / (|U_att| + |U_opt| + 1)``.

    ## Starting state
    The search page of an instruction drawn from the env's split: goal
    ``np_random.integers(num_goals)`` after ``reset(seed=...)``, or
    ``reset(options={"goal_index": k})`` for goal ``k`` exactly (evaluation sweeps).

    ## Episode end
    Terminated by buying. Truncated after ``max_steps`` steps (invalid actions count).

    ## Arguments
    * ``n_products`` (10000), ``catalog_seed`` (0), ``attributes_per_product`` (3),
      ``option_kinds`` (2), ``min_option_values`` (2), ``max_option_values`` (5): the catalog
      (`catalog.CatalogParams`); it and its search index are cached on disk.
    * ``goal_attributes`` ((1, 3)): fewest and most attributes an instruction names.
    * ``split`` ("train"): "train", "valid" or "test".
    * ``max_steps`` (15, as in WebShop): step budget.
    * ``results_per_page`` (10): products per results page.
    * ``cache_dir`` (None): cache folder; default ``$CREDITGYM_CACHE`` or ``~/.cache/creditgym``.

    ## Task types
    ``info["task_type"]`` is the target's category: "beauty & personal care", "grocery &
    gourmet food", "clothing, shoes & jewelry", "home & kitchen" or "electronics".

    ## Info keys
    * ``task``: the instruction. ``task_type``: the target's category. ``goal_index``.
    * ``admissible_actions``: the offered ``search[...]``, or ``click[...]`` of every clickable.
    * ``anchor``: the `pages.Page` as a tuple (page kind, query, results page, item index,
      chosen options). Goals are not part of it: compare anchors within one task.
    * ``won``: bought with reward 1.0. ``valid``: the last action was understood.
    * ``symbolic_state``: page_kind (index into `pages.PAGE_KINDS`), results_page,
      num_results, target_in_results, target_on_page, item_open, item_is_target,
      item_best_reward, options_chosen, goal_options_chosen, steps_taken, steps_left, bought.
    * ``events``: "searched", "target item in results", "clicked item", "clicked target item",
      "chose option size: large", "opened description", "opened features", "went back",
      "next page", "previous page", "back to search", "bought", "goal satisfied".
    * After buying, ``score`` (100 x reward) and ``reward_details`` (Eq. 1's parts); ``score``
      is 0 on truncation.

    ## Splits
    Target products are split 80/10/10 into train/valid/test by a seeded permutation, so
    test targets never occur in training goals; ``num_goals`` is the split's target count.

    ## The expert
    ``env.unwrapped.expert_action()`` (see `expert.py`) searches the instruction's key terms,
    clicks the target (or another product that can earn reward 1), chooses the wanted
    options and buys; it reads the true goal. ``env.unwrapped.steps_to_go()`` is the number
    of actions it takes from the current state to buy with reward 1 (0 once won; None once
    the episode ended without it, or where the expert would buy something worse, e.g. after
    a free-text search whose results hold no fitting product); the step budget is ignored.

    ## Cloning
    ``env.unwrapped.clone_state()`` snapshots the episode (page, results, purchase, steps, RNG,
    last observation and info; the catalog and index are shared); ``restore_state(snapshot)``
    returns that observation and info, and the env continues exactly as the original did.

    ## Version history
    * v0: initial version.
    """

    metadata = {"render_modes": ["ansi"], "eval_splits": ("valid", "test")}  # noqa: RUF012

    def __init__(
        self,
        n_products: int = 10_000,
        catalog_seed: int = 0,
        attributes_per_product: int = 3,
        option_kinds: int = 2,
        min_option_values: int = 2,
        max_option_values: int = 5,
        goal_attributes: tuple[int, int] = (1, 3),
        split: str = "train",
        max_steps: int = 15,
        results_per_page: int = 10,
        cache_dir: str | None = None,
        render_mode: str | None = None,
    ):
        if split not in SPLITS:
            raise ValueError(f"unknown webshop split {split!r}; expected one of {SPLITS}")
        if max_steps < 1 or results_per_page < 1:
            raise ValueError(
                f"max_steps={max_steps} and results_per_page={results_per_page} must both be >= 1"
            )
        lo, hi = goal_attributes
        if not 1 <= lo <= hi:
            raise ValueError(
                f"goal_attributes={goal_attributes!r}: expected (fewest, most) "
                "with 1 <= fewest <= most"
            )
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode={render_mode!r}; WebShopEnv supports None or 'ansi'")
        self.catalog = load_catalog(
            CatalogParams(
                n_products=n_products,
                seed=catalog_seed,
                attributes_per_product=attributes_per_product,
                option_kinds=option_kinds,
                min_option_values=min_option_values,
                max_option_values=max_option_values,
            ),
            cache_dir,
        )
        self.search_engine = load_search_engine(self.catalog, cache_dir)
        self.goal_attributes = (lo, hi)
        self.split = split
        self.num_goals = len(split_targets(self.catalog, split))
        self.max_steps = max_steps
        self.results_per_page = results_per_page
        self.render_mode = render_mode
        self.observation_space = text_space()
        self.action_space = text_space()

        self.goal: Goal | None = None
        self.page = Page()
        self.results: list[int] = []
        self.steps = 0
        self.purchase: RewardDetails | None = None
        self._observation = ""
        self._last_info: dict[str, Any] = {}
        self._plan_lengths: dict[tuple, int | None] = {}  # page -> expert's steps, per goal

    # --- Gymnasium API ----------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict]:
        seed, options = reset_arguments(seed, options, type(self).__name__)
        super().reset(seed=seed)
        options = options or {}
        goal_index = options.get("goal_index")
        if goal_index is None:
            goal_index = int(self.np_random.integers(self.num_goals))
        elif not isinstance(goal_index, (int, np.integer)) or goal_index < 0:
            raise ValueError(
                f"options['goal_index']={goal_index!r}: expected an int >= 0 "
                "(goals wrap modulo num_goals)"
            )
        self.goal = make_goal(self.catalog, self.split, int(goal_index), self.goal_attributes)
        self.page = Page()
        self.results = []
        self.steps = 0
        self.purchase = None
        self._plan_lengths = {}
        self._observation = self._render()
        self._last_info = self._info(valid=True, events=[])
        return self._observation, self._last_info

    def step(self, action: str) -> tuple[str, float, bool, bool, dict]:
        if self.goal is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        if self.purchase is not None:
            return (
                "The episode is over (you bought an item); call reset().",
                0.0,
                True,
                False,
                self._info(valid=False, events=[]),
            )
        self.steps += 1
        events: list[str] = []
        valid, problem = self._apply(action if isinstance(action, str) else "", events)
        reward = self.purchase.reward if self.purchase is not None else 0.0
        terminated = self.purchase is not None
        truncated = not terminated and self.steps >= self.max_steps
        self._observation = self._render() if valid else f"{problem}{SEP}{self._render()}"
        info = self._info(valid=valid, events=events)
        if terminated:
            info["score"] = 100.0 * reward
            info["reward_details"] = self.purchase.as_dict()
        elif truncated:
            info["score"] = 0.0
        self._last_info = info
        return self._observation, float(reward), terminated, truncated, info

    def render(self) -> str | None:
        return self._observation if self.render_mode == "ansi" else None

    def expert_action(self) -> str:
        """The scripted expert's next action (admissible, or the offered ``search[...]``)."""
        if self.goal is None:
            raise gym.error.ResetNeeded("call reset() before expert_action()")
        return expert_action(
            self.page, self.goal, self.catalog, self.results, self.results_per_page
        )

    def steps_to_go(self) -> int | None:
        """How many actions the expert takes from the current state to buy with reward 1.

        0 once won; None after a purchase that did not win, or where the expert's own
        continuation ends in a worse purchase. The expert is played out on the current state
        (and the state put back), so this is exactly its count; the step budget is ignored.
        """
        if self.goal is None:
            raise gym.error.ResetNeeded("call reset() before steps_to_go()")
        if self.purchase is not None:
            return 0 if self.purchase.reward == 1.0 else None
        key = astuple(self.page)
        if key not in self._plan_lengths:
            self._plan_lengths[key] = self._play_out_expert()
        return self._plan_lengths[key]

    def _play_out_expert(self) -> int | None:
        saved = (self.page, self.results, self.purchase)
        try:
            for steps in range(1, _MAX_PLAN + 1):
                valid, problem = self._apply(self.expert_action(), [])
                if not valid:
                    raise RuntimeError(f"the webshop expert's action was refused: {problem}")
                if self.purchase is not None:
                    return steps if self.purchase.reward == 1.0 else None
            raise RuntimeError(f"the webshop expert did not buy within {_MAX_PLAN} actions")
        finally:
            self.page, self.results, self.purchase = saved

    def clone_state(self) -> object:
        """An opaque snapshot of the episode (the catalog and search index are shared)."""
        if self.goal is None:
            raise gym.error.ResetNeeded("call reset() before clone_state()")
        return snapshot_attributes(
            self, (self.catalog, self.search_engine, self.goal, self._plan_lengths)
        )

    def restore_state(self, snapshot: object) -> tuple[str, dict[str, Any]]:
        """Return to `snapshot` (from `clone_state` of this env or one built alike); gives the
        observation and info of that moment, and the env continues exactly as it did then."""
        restore_attributes(self, snapshot)
        return self._observation, self._last_info

    # --- transitions --------------------------------------------------------------------------
    def _apply(self, action: str, events: list[str]) -> tuple[bool, str]:
        """Apply `action`; return (valid, what was wrong if not)."""
        parsed = parse_action(action)
        shown = _printable(action)
        if parsed is None:
            return False, f"Invalid action {shown!r}: write search[<words>] or click[<button>]."
        verb, arg = parsed
        page = self.page
        if verb == "search":
            if page.kind != "search":
                return (
                    False,
                    "Invalid action: search only works on the search page; "
                    "click[back to search] first.",
                )
            if not any(ch.isalnum() for ch in arg):
                return False, "Invalid action: search[...] needs some words to search for."
            self.results = self.search_engine.search(arg)
            self.page = Page("results", query=arg, results_page=1)
            events.append("searched")
            if self.goal.product in self.results:
                events.append("target item in results")
            return True, ""
        if arg not in clickables(page, self.catalog, self.results, self.results_per_page):
            return (
                False,
                f"Invalid action {shown!r}: there is no {_printable(arg)!r} to click on this page.",
            )
        self._click(arg, events)
        return True, ""

    def _click(self, label: str, events: list[str]) -> None:
        page = self.page
        if label == BACK_TO_SEARCH.lower():
            self.page, self.results = Page(), []
            events.append("back to search")
        elif page.kind == "results":
            if label in (NEXT.lower(), PREV.lower()):
                step = 1 if label == NEXT.lower() else -1
                self.page = Page("results", page.query, page.results_page + step)
                events.append("next page" if step == 1 else "previous page")
            else:
                item = self.catalog.index_of(label)
                self.page = Page("item", page.query, page.results_page, item)
                events.append("clicked item")
                if item == self.goal.product:
                    events.append("clicked target item")
        elif page.kind == "item":
            if label == PREV.lower():
                self.page = Page("results", page.query, page.results_page)
                events.append("went back")
            elif label in (DESCRIPTION.lower(), FEATURES.lower()):
                self.page = Page(label, page.query, page.results_page, page.item, page.options)
                events.append(f"opened {label}")
            elif label == BUY_NOW.lower():
                self.purchase = purchase_reward(
                    self.catalog, self.goal, page.item, dict(page.options)
                )
                self.page = Page("done", page.query, page.results_page, page.item, page.options)
                events.append("bought")
                if self.purchase.reward == 1.0:
                    events.append("goal satisfied")
            else:
                kind = next(
                    k for k, values in self.catalog.options(page.item).items() if label in values
                )
                chosen = dict(page.options) | {kind: label}
                self.page = Page(
                    "item", page.query, page.results_page, page.item, tuple(sorted(chosen.items()))
                )
                events.append(f"chose option {kind}: {label}")
        else:  # description / features: the only other button is < Prev
            self.page = Page("item", page.query, page.results_page, page.item, page.options)
            events.append("went back")

    # --- observation and info -----------------------------------------------------------------
    def _render(self) -> str:
        if self.page.kind == "done":
            chosen = ", ".join(f"{kind}: {value}" for kind, value in self.page.options) or "none"
            return SEP.join(
                [
                    "Thank you for shopping with us!",
                    "Instruction:",
                    self.goal.instruction,
                    "You bought:",
                    self.catalog.title(self.page.item),
                    f"Options: {chosen}",
                    "Your score (min 0.0, max 1.0)",
                    f"{self.purchase.reward:.4f}",
                ]
            )
        return render(
            self.page, self.goal.instruction, self.catalog, self.results, self.results_per_page
        )

    def _admissible_actions(self) -> list[str]:
        if self.page.kind == "search":
            return [f"search[{suggested_query(self.goal)}]"]
        return [
            f"click[{label}]"
            for label in clickables(self.page, self.catalog, self.results, self.results_per_page)
        ]

    def _symbolic_state(self) -> dict[str, float]:
        page, goal = self.page, self.goal
        start = (page.results_page - 1) * self.results_per_page
        item_open = page.item >= 0
        chosen = dict(page.options)
        return {
            "page_kind": float(PAGE_KINDS.index(page.kind)),
            "results_page": float(page.results_page),
            "num_results": float(len(self.results)),
            "target_in_results": float(goal.product in self.results),
            "target_on_page": float(
                page.kind == "results"
                and goal.product in self.results[start : start + self.results_per_page]
            ),
            "item_open": float(item_open),
            "item_is_target": float(page.item == goal.product),
            "item_best_reward": best_reward(self.catalog, goal, page.item) if item_open else 0.0,
            "options_chosen": float(len(chosen)),
            "goal_options_chosen": float(
                sum(chosen.get(kind) == value for kind, value in goal.options)
            ),
            "steps_taken": float(self.steps),
            "steps_left": float(self.max_steps - self.steps),
            "bought": float(self.purchase is not None),
        }

    def _info(self, valid: bool, events: list[str]) -> dict[str, Any]:
        return {
            keys.TASK: self.goal.instruction,
            keys.TASK_TYPE: self.goal.category_path[0],
            keys.ADMISSIBLE_ACTIONS: []
            if self.purchase is not None
            else self._admissible_actions(),
            keys.ANCHOR: astuple(self.page),
            keys.WON: self.purchase is not None and self.purchase.reward == 1.0,
            keys.VALID: valid,
            keys.SYMBOLIC_STATE: self._symbolic_state(),
            keys.EVENTS: events,
            "goal_index": self.goal.index,
        }
