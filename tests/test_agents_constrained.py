"""ActionTrie: which tokens may follow a prefix of an admissible action."""

from hypothesis import given
from hypothesis import strategies as st

from creditgym.agents.hf.constrained import ActionTrie

EOS = 0


def test_root_allows_the_first_token_of_every_action():
    trie = ActionTrie([[5, 6], [5, 7, 8], [9]], eos_token_id=EOS)
    assert trie.allowed_next_tokens([]) == [5, 9]


def test_shared_prefix_branches():
    trie = ActionTrie([[5, 6], [5, 7, 8]], eos_token_id=EOS)
    assert trie.allowed_next_tokens([5]) == [6, 7]


def test_complete_action_allows_only_eos():
    trie = ActionTrie([[5, 6], [5, 7, 8]], eos_token_id=EOS)
    assert trie.allowed_next_tokens([5, 6]) == [EOS]


def test_action_that_prefixes_another_allows_eos_or_continuing():
    trie = ActionTrie([[5], [5, 6]], eos_token_id=EOS)
    assert trie.allowed_next_tokens([5]) == [EOS, 6]


def test_after_eos_and_off_the_trie_nothing_is_allowed():
    trie = ActionTrie([[5, 6]], eos_token_id=EOS)
    assert trie.allowed_next_tokens([5, 6, EOS]) == []
    assert trie.allowed_next_tokens([7]) == []


def test_max_length_counts_the_eos():
    assert ActionTrie([[1], [2, 3, 4]], eos_token_id=EOS).max_length == 4


def test_contains_only_complete_sequences():
    trie = ActionTrie([[5, 6]], eos_token_id=EOS)
    assert [5, 6, EOS] in trie
    assert [5, 6] not in trie
    assert [5] not in trie


def test_from_actions_uses_the_given_encoder():
    trie = ActionTrie.from_actions(
        ["ab", "b"], encode=lambda s: [ord(c) for c in s], eos_token_id=EOS
    )
    assert trie.allowed_next_tokens([]) == [ord("a"), ord("b")]
    assert trie.size == 2


def test_action_for_names_the_action_a_sequence_spells():
    trie = ActionTrie.from_actions(
        ["ab", "b"], encode=lambda s: [ord(c) for c in s], eos_token_id=EOS
    )
    assert trie.action_for([ord("a"), ord("b"), EOS]) == "ab"
    assert trie.action_for([ord("b")]) == "b"
    assert trie.action_for([ord("a")]) is None


@given(st.lists(st.lists(st.integers(1, 6), max_size=5), min_size=1, max_size=8))
def test_walking_allowed_tokens_spells_exactly_the_stored_sequences(sequences):
    trie = ActionTrie(sequences, eos_token_id=EOS)
    spelled, stack = set(), [[]]
    while stack:
        prefix = stack.pop()
        for token in trie.allowed_next_tokens(prefix):
            if token == EOS:
                spelled.add(tuple(prefix))
            else:
                stack.append(prefix + [token])
    assert spelled == {tuple(s) for s in sequences}
