"""The shop's pages: where the shopper is (`Page`), how an action string is read, and the text
a page renders to.

Observations follow WebShop's ``text`` observation mode (``convert_html_to_text(simple=True)``
in ``web_agent_site/envs/web_agent_text_env.py``): the page's visible text segments joined by
``" [SEP] "``. Buttons appear as their label (``Back to Search``, ``Next >``, ``< Prev``,
``Description``, ``Features``, ``Buy Now``), products on a results page as their id
(``B0K3X9Q2ZL``), and option values as themselves; the action that presses one is
``click[<label in lower case>]``. Two small additions to WebShop's simple mode: the item page
shows ``Selected: <kind>: <value>`` once options are chosen (WebShop's rich mode says "You have
clicked ..."), and the page after buying shows the score, as WebShop's done page does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from creditgym.envs.webshop.catalog import Catalog

__all__ = [
    "Page",
    "PAGE_KINDS",
    "parse_action",
    "render",
    "clickables",
    "BACK_TO_SEARCH",
    "NEXT",
    "PREV",
    "DESCRIPTION",
    "FEATURES",
    "BUY_NOW",
    "SEP",
]

SEP = " [SEP] "
PAGE_KINDS = ("search", "results", "item", "description", "features", "done")
BACK_TO_SEARCH, NEXT, PREV = "Back to Search", "Next >", "< Prev"
DESCRIPTION, FEATURES, BUY_NOW = "Description", "Features", "Buy Now"
_ACTION = re.compile(r"\s*(search|click)\s*\[(.*)\]\s*", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Page:
    """Where the shopper is; hashable, and the env's ``anchor``.

    ``results_page`` is 1-based (0 on the search page); ``item`` is a catalog index (-1 when
    no item is open); ``options`` are the chosen (kind, value) pairs, sorted by kind.
    """

    kind: str = "search"
    query: str = ""
    results_page: int = 0
    item: int = -1
    options: tuple[tuple[str, str], ...] = ()


def parse_action(action: str) -> tuple[str, str] | None:
    """``"click[Buy Now]"`` -> ``("click", "buy now")``; None if not ``search[...]``/``click[...]``.

    The argument is lower-cased with runs of whitespace collapsed, as WebShop lower-cases it.
    """
    match = _ACTION.fullmatch(action)
    if match is None:
        return None
    return match.group(1).lower(), " ".join(match.group(2).lower().split())


def _results_on_page(results: list[int], page: Page, per_page: int) -> list[int]:
    start = (page.results_page - 1) * per_page
    return results[start : start + per_page]


def clickables(page: Page, catalog: Catalog, results: list[int], per_page: int) -> list[str]:
    """Labels (lower case) that `click[...]` accepts on `page`, in page order."""
    if page.kind == "results":
        labels = [BACK_TO_SEARCH]
        if page.results_page > 1:
            labels.append(PREV)
        if page.results_page * per_page < len(results):
            labels.append(NEXT)
        labels += [catalog.asin(i) for i in _results_on_page(results, page, per_page)]
    elif page.kind == "item":
        values = [value for offered in catalog.options(page.item).values() for value in offered]
        labels = [BACK_TO_SEARCH, PREV, *values, DESCRIPTION, FEATURES, BUY_NOW]
    elif page.kind in ("description", "features"):
        labels = [BACK_TO_SEARCH, PREV]
    else:
        labels = []
    return [label.lower() for label in labels]


def render(
    page: Page, instruction: str, catalog: Catalog, results: list[int], per_page: int
) -> str:
    """The observation text of `page` (not of the "done" page, which the env writes)."""
    head = ["Instruction:", instruction]
    if page.kind == "search":
        return SEP.join(["WebShop", *head, "Search"])
    if page.kind == "results":
        segments = [
            *head,
            BACK_TO_SEARCH,
            f"Page {page.results_page} (Total results: {len(results)})",
        ]
        if page.results_page > 1:
            segments.append(PREV)
        if page.results_page * per_page < len(results):
            segments.append(NEXT)
        for index in _results_on_page(results, page, per_page):
            segments += [catalog.asin(index), catalog.title(index), f"${catalog.price(index):.2f}"]
        if not results:
            segments.append("No products match your search. Go back to search and try other words.")
        return SEP.join(segments)
    segments = [*head, BACK_TO_SEARCH, PREV]
    if page.kind == "item":
        for kind, values in catalog.options(page.item).items():
            segments += [kind, *values]
        if page.options:
            segments.append(
                "Selected: " + ", ".join(f"{kind}: {value}" for kind, value in page.options)
            )
        segments += [
            catalog.title(page.item),
            f"Price: ${catalog.price(page.item):.2f}",
            "Rating: N.A.",
            DESCRIPTION,
            FEATURES,
            BUY_NOW,
        ]
    elif page.kind == "description":
        segments.append(catalog.description(page.item))
    elif page.kind == "features":
        segments += list(catalog.features(page.item))
    return SEP.join(segments)
