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

__all__ = ["ActionTrie"]


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
