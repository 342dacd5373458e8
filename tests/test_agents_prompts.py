"""Prompt templates: what the model sees each turn."""

import pytest

from creditgym.agents.prompts import COMPACT_MARKER, ROLE, build_prompt, chat_messages

TASK = "put a clean apple in diningtable."
HISTORY = [
    ("You are in the middle of a room.", "go to countertop 1"),
    (
        "You arrive at countertop 1. On the countertop 1, you see a apple 1.",
        "take apple 1 from countertop 1",
    ),
    ("You pick up the apple 1 from the countertop 1.", "go to sinkbasin 1"),
]
ACTIONS = ["clean apple 1 with sinkbasin 1", "go to diningtable 1", "inventory"]


def test_verl_agent_prompt_has_the_reference_structure_in_order():
    prompt = build_prompt(TASK, "You arrive at sinkbasin 1.", HISTORY, ACTIONS, history_length=2)
    parts = [
        ROLE,
        f"Your task is to: {TASK}",
        "Before this step you have taken 3 step(s). Here are the last 2 observation(s)",
        (
            "[Observation 2: 'You arrive at countertop 1. On the countertop 1, "
            "you see a apple 1.', Action 2: 'take apple 1 from countertop 1']"
        ),
        (
            "[Observation 3: 'You pick up the apple 1 from the countertop 1.', "
            "Action 3: 'go to sinkbasin 1']"
        ),
        "You are now at step 4 and your current observation is: You arrive at sinkbasin 1.",
        (
            "Your admissible actions in this situation are: ['clean apple 1 with sinkbasin 1', "
            "'go to diningtable 1', 'inventory']."
        ),
        "<think> </think>",
        "<action> </action>",
    ]
    positions = [prompt.index(part) for part in parts]
    assert positions == sorted(positions)
    assert "Observation 1:" not in prompt


def test_verl_agent_prompt_without_history_states_the_observation_only():
    prompt = build_prompt(TASK, "You are in the middle of a room.", (), ACTIONS)
    assert "Your current observation is: You are in the middle of a room." in prompt
    assert "step(s)" not in prompt


def test_prompt_without_admissible_actions_leaves_the_list_out():
    prompt = build_prompt(TASK, "obs", (), None)
    assert "admissible" not in prompt
    assert "<action> </action>" in prompt


def test_compact_prompt_is_regular_and_ends_with_the_marker():
    prompt = build_prompt(
        TASK, "You arrive at sinkbasin 1.", HISTORY, ACTIONS, template="compact", history_length=1
    )
    assert prompt == (
        f"task: {TASK}\n"
        "observation: You pick up the apple 1 from the countertop 1.\n"
        "action: go to sinkbasin 1\n"
        "observation: You arrive at sinkbasin 1.\n"
        "admissible: clean apple 1 with sinkbasin 1 | go to diningtable 1 | inventory\n"
        "action:"
    )
    assert prompt.endswith(COMPACT_MARKER)


def test_history_length_zero_shows_no_history_but_counts_steps():
    prompt = build_prompt(TASK, "now", HISTORY, ACTIONS, history_length=0)
    assert "go to countertop 1'" not in prompt
    assert "step 4" in prompt


def test_chat_messages_split_role_into_system_message():
    messages = chat_messages(TASK, "now", HISTORY, ACTIONS)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"] == ROLE
    assert build_prompt(TASK, "now", HISTORY, ACTIONS) == ROLE + " " + messages[1]["content"]


def test_compact_chat_messages_are_one_user_message():
    messages = chat_messages(TASK, "now", (), ACTIONS, template="compact")
    assert messages == [
        {"role": "user", "content": build_prompt(TASK, "now", (), ACTIONS, template="compact")}
    ]


def test_unknown_template_error_lists_the_choices():
    with pytest.raises(ValueError, match="verl-agent, compact"):
        build_prompt(TASK, "now", template="fancy")
