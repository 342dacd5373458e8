"""parse_action: from a raw response to the action sent to the env."""

from hypothesis import given, settings
from hypothesis import strategies as st

from creditgym.agents.parsing import ParsedAction, parse_action

ACTIONS = ["go to countertop 1", "take apple 1 from countertop 1", "inventory"]


def test_well_formed_response_gives_the_admissible_action():
    text = (
        "<think>The apple is on the countertop.</think>\n"
        "<action>take apple 1 from countertop 1</action>"
    )
    assert parse_action(text, ACTIONS) == ParsedAction("take apple 1 from countertop 1", True, "")


def test_case_and_whitespace_are_normalised_to_the_envs_spelling():
    text = "<think>go</think><action>  Go   TO\ncountertop 1. </action>"
    assert parse_action(text, ACTIONS) == ParsedAction("go to countertop 1", True, "")


def test_quotes_around_the_action_are_dropped():
    assert (
        parse_action("<think>x</think><action>'inventory'</action>", ACTIONS).action == "inventory"
    )


def test_missing_action_tags_is_invalid_and_sends_nothing():
    parsed = parse_action("<think>hmm</think> go to countertop 1", ACTIONS)
    assert parsed == ParsedAction("", False, "missing <action>...</action> tags around the action")


def test_missing_think_is_invalid_but_the_action_is_still_sent():
    parsed = parse_action("<action>inventory</action>", ACTIONS)
    assert parsed.action == "inventory"
    assert not parsed.valid
    assert "<think>" in parsed.reason


def test_think_is_not_needed_when_disabled():
    assert parse_action("<action>inventory</action>", ACTIONS, require_think=False).valid


def test_several_action_blocks_are_invalid_and_the_first_is_used():
    parsed = parse_action(
        "<think>a</think><action>inventory</action><action>go to countertop 1</action>", ACTIONS
    )
    assert parsed.action == "inventory"
    assert not parsed.valid
    assert "2 <action> blocks" in parsed.reason


def test_inadmissible_action_is_invalid_and_named_in_the_reason():
    parsed = parse_action("<think>a</think><action>fly to the moon</action>", ACTIONS)
    assert parsed.action == "fly to the moon"
    assert not parsed.valid
    assert "'fly to the moon' is not one of the 3 admissible actions" == parsed.reason


def test_cjk_characters_are_invalid_as_in_verl_agent():
    parsed = parse_action("<think>想一想</think><action>inventory</action>", ACTIONS)
    assert not parsed.valid
    assert "CJK" in parsed.reason


def test_empty_action_is_invalid():
    parsed = parse_action("<think>a</think><action>  </action>", ACTIONS)
    assert parsed == ParsedAction("", False, "the action is empty")


def test_bare_action_is_accepted_without_required_tags():
    assert parse_action("Inventory", ACTIONS, require_tags=False) == ParsedAction(
        "inventory", True, ""
    )


def test_tags_are_still_honoured_without_required_tags():
    assert (
        parse_action("sure: <action>inventory</action>", ACTIONS, require_tags=False).action
        == "inventory"
    )


def test_without_admissible_actions_any_nonempty_action_is_valid_and_lower_cased():
    assert parse_action("<think>a</think><action>Search[Apple Pie]</action>") == ParsedAction(
        "search[apple pie]", True, ""
    )


def test_several_problems_are_all_reported():
    parsed = parse_action("<action>jump</action><action>x</action>", ACTIONS)
    assert parsed.reason.split("; ") == [
        "found 2 <action> blocks, expected exactly one",
        "missing <think>...</think> reasoning before the action",
        "'jump' is not one of the 3 admissible actions",
    ]


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(
        alphabet=st.sampled_from(list("<>/actionthink ACTION\n\t.'\"xyz想")) | st.characters(),
        max_size=80,
    ),
    actions=st.none() | st.lists(st.text(max_size=12), max_size=5),
    require_tags=st.booleans(),
)
def test_parse_action_never_raises_and_invalid_always_has_a_reason(text, actions, require_tags):
    parsed = parse_action(text, actions, require_tags=require_tags)
    assert isinstance(parsed.action, str)
    assert parsed.valid == (parsed.reason == "")
    if parsed.valid and actions is not None:
        assert parsed.action in actions
