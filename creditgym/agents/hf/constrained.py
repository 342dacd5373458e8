"""A prefix trie over the token ids of the admissible actions, for constrained decoding.

Each action is stored as its token ids followed by EOS. While sampling, the policy asks the
trie which tokens may come next after the tokens generated so far and renormalises its
distribution over those (per-token prefix-constrained sampling), so every finished response is
exactly one admissible action. A probe that instead scored whole actions by their sequence
log-probability never learned from a random init, because the shortest actions always won;
per-token constrained sampling learned at once.

The token ids must be those of the action tokenised *alone* (``encode(action)``), the same
way the policy tokenises every response, so a constrained sample re-tokenises to itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

__all__ = ["ActionTrie", "ThinkActConstraint"]


class ActionTrie:
    """Prefix trie of token-id sequences, each closed by `eos_token_id`.

    >>> trie = ActionTrie([[5, 6], [5, 7, 8]], eos_token_id=0)
    >>> trie.allowed_next_tokens([])
    [5]
    >>> trie.allowed_next_tokens([5])
    [6, 7]
    >>> trie.allowed_next_tokens([5, 6])
    [0]
    """

    def __init__(self, sequences: Iterable[Sequence[int]], eos_token_id: int) -> None:
        self.eos_token_id = int(eos_token_id)
        self._root: dict[int, dict] = {}
        self._names: dict[tuple[int, ...], str] = {}
        self.max_length = 0  # longest sequence including its EOS
        self.size = 0
        for sequence in sequences:
            self._insert([int(token) for token in sequence] + [self.eos_token_id])

    @classmethod
    def from_actions(
        cls, actions: Iterable[str], encode: Callable[[str], Sequence[int]], eos_token_id: int
    ) -> ActionTrie:
        """Build from action strings with `encode` (the policy's response tokeniser, no EOS).

        The trie remembers each action's spelling, for `action_for`.
        """
        trie = cls((), eos_token_id)
        for action in actions:
            tokens = [int(token) for token in encode(action)]
            trie._insert(tokens + [trie.eos_token_id])
            trie._names.setdefault(tuple(tokens), action)
        return trie

    def action_for(self, token_ids: Sequence[int]) -> str | None:
        """The action string a complete sequence (EOS optional) was built from, if known."""
        tokens = list(token_ids)
        if tokens and tokens[-1] == self.eos_token_id:
            tokens.pop()
        return self._names.get(tuple(tokens))

    def _insert(self, tokens: list[int]) -> None:
        node = self._root
        for token in tokens:
            node = node.setdefault(token, {})
        self.max_length = max(self.max_length, len(tokens))
        self.size += 1

    def _node(self, prefix_ids: Sequence[int]) -> dict[int, dict] | None:
        node = self._root
        for token in prefix_ids:
            node = node.get(int(token))
            if node is None:
                return None
        return node

    def allowed_next_tokens(self, prefix_ids: Sequence[int]) -> list[int]:
        """Token ids that continue some sequence after `prefix_ids`, sorted.

        Empty when `prefix_ids` is complete (ends with EOS) or is not a prefix of any sequence.
        """
        node = self._node(prefix_ids)
        return sorted(node) if node else []

    def __contains__(self, token_ids: Sequence[int]) -> bool:
        """True if `token_ids` is a complete stored sequence (with its EOS)."""
        node = self._node(token_ids)
        return (
            node is not None
            and node == {}
            and len(token_ids) > 0
            and token_ids[-1] == self.eos_token_id
        )


class ThinkActConstraint:
    """Decoding rules of a think-then-act response, ``<think>...</think><action>...</action>``.

    The opening ``<think>`` is forced; the thinking then runs free (only the stop tokens are
    held back) until its text contains ``</think>`` or `think_tokens` tokens are spent, when
    ``</think>`` is forced. After it, `action` (a trie over the tagged admissible actions, each
    ``<action>a</action>`` + EOS) constrains the rest; without one the rest is free for up to
    `free_tokens` tokens. Every rule is a function of the tokens generated so far, so scoring a
    response recomputes exactly the masks it was sampled under.
    """

    def __init__(
        self,
        *,
        decode: Callable[[Sequence[int]], str],
        open_ids: Sequence[int],
        close_ids: Sequence[int],
        close_text: str,
        think_tokens: int,
        stop_ids: Iterable[int],
        action: ActionTrie | None = None,
        free_tokens: int = 0,
    ) -> None:
        if think_tokens < 1:
            raise ValueError(f"think_tokens must be >= 1, got {think_tokens}")
        self.decode = decode
        self.open_ids, self.close_ids = list(open_ids), list(close_ids)
        self.close_text = close_text
        self.think_tokens = int(think_tokens)
        self.blocked_when_free = sorted(set(stop_ids))
        self.action = action
        self.size = 1 if action is None else action.size
        tail = action.max_length if action is not None else free_tokens
        self.max_length = len(self.open_ids) + self.think_tokens + len(self.close_ids) + tail

    def _think_end(self, thought: Sequence[int]) -> int | None:
        """Tokens of thinking up to and including the one that completes ``</think>``."""
        if self.close_text not in self.decode(thought):
            return None
        low, high = 1, len(thought)  # the smallest prefix whose text holds the closing tag
        while low < high:
            middle = (low + high) // 2
            if self.close_text in self.decode(thought[:middle]):
                high = middle
            else:
                low = middle + 1
        return low

    def _phase(self, prefix_ids: Sequence[int]) -> tuple[str, list[int] | None]:
        """("forced" or "action", the allowed tokens), ("think", None) or ("free", None)."""
        opened = len(self.open_ids)
        if len(prefix_ids) < opened:
            return "forced", [self.open_ids[len(prefix_ids)]]
        thought = list(prefix_ids[opened : opened + self.think_tokens])
        end = self._think_end(thought)
        if end is None:
            if len(thought) < self.think_tokens:
                return "think", None
            rest = list(prefix_ids[opened + self.think_tokens :])
            if len(rest) < len(self.close_ids):
                return "forced", [self.close_ids[len(rest)]]
            rest = rest[len(self.close_ids) :]
        else:
            rest = list(prefix_ids[opened + end :])
        if self.action is None:
            return "free", None
        return "action", self.action.allowed_next_tokens(rest)

    def allowed_next_tokens(self, prefix_ids: Sequence[int]) -> list[int] | None:
        """The allowed next tokens, or None where any token may come (see `blocked_tokens`)."""
        return self._phase(prefix_ids)[1]

    def blocked_tokens(self, prefix_ids: Sequence[int]) -> list[int]:
        """Tokens held back although the response is free: the stop tokens while thinking."""
        return self.blocked_when_free if self._phase(prefix_ids)[0] == "think" else []
