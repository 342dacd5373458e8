"""The search-and-answer env (creditgym/SearchQA*): scoring, contract, tools, rewards, expert,
retrieval, splits and the BM25 cache."""

import subprocess
import sys

import gymnasium as gym
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import creditgym
from creditgym.envs import info as keys
from creditgym.envs.search import (
    ANSWER_ALIASES,
    DIFFICULTIES,
    EM,
    F1,
    TASK_ID,
    SearchQAEnv,
    WorldParams,
    best_scores,
    exact_match,
    f1_score,
    generate_questions,
    load_world,
    normalize_answer,
)
from creditgym.envs.search import index as search_index
from creditgym.envs.search.expert import UNKNOWN
from creditgym.envs.search.questions import _topic_splits
from creditgym.envs.search.world import generate_world

EASY, STANDARD = "creditgym/SearchQAEasy-v0", "creditgym/SearchQA-v0"


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("creditgym-cache")


@pytest.fixture(scope="module")
def easy(cache_dir):
    return creditgym.make(EASY, cache_dir=cache_dir)


def make(cache_dir, env_id=EASY, **kwargs) -> SearchQAEnv:
    return creditgym.make(env_id, cache_dir=cache_dir, **kwargs).unwrapped


def play_expert(env: SearchQAEnv, seed: int, options=None):
    """One expert episode; returns (actions, final reward, final info, all events)."""
    _, info = env.reset(seed=seed, options=options)
    actions, events = [], []
    while True:
        action = env.expert_action()
        assert action in info[keys.ADMISSIBLE_ACTIONS]
        actions.append(action)
        _, reward, terminated, truncated, info = env.step(action)
        events.extend(info[keys.EVENTS])
        if terminated or truncated:
            return actions, reward, info, events


# --- scoring (hand-worked) ---------------------------------------------------------------------


def test_normalisation_lowercases_and_drops_punctuation_articles_and_extra_spaces():
    assert normalize_answer("The  Orvel-Tides!") == "orveltides"
    assert normalize_answer("An apple a Day.") == "apple day"
    assert (
        normalize_answer("Theodore and the Anvil") == "theodore and anvil"
    )  # "the" only as a word
    assert normalize_answer(" the ") == ""


def test_exact_match_compares_normalised_strings():
    assert exact_match("the Brelvost.", "Brelvost") == 1.0
    assert exact_match("Brelvost city", "Brelvost") == 0.0


def test_f1_is_word_set_overlap():
    # prediction {talor, venmik}, truth {venmik}: precision 1/2, recall 1 -> 2/3
    assert f1_score("Talor Venmik", "Venmik") == pytest.approx(2 / 3)
    # "the" is dropped: prediction {city, of, brelvost}: precision 1/3, recall 1 -> 1/2
    assert f1_score("the city of Brelvost", "Brelvost") == pytest.approx(0.5)
    # sets, as IGPO computes it (SQuAD's multiset F1 would give 2/3 here)
    assert f1_score("venmik venmik", "venmik") == 1.0
    assert f1_score("Zinon", "Brelvost") == 0.0
    assert f1_score("", "Brelvost") == 0.0


def test_scores_are_the_best_over_aliases():
    aliases = ("Zinia", "Republic of Zinia")
    assert best_scores("Republic of Zinia", aliases) == (1.0, 1.0)
    # vs "zinia": P 1/2, R 1 -> 2/3; vs "republic of zinia": P 1, R 2/3 -> 4/5
    em, f1 = best_scores("Zinia Republic", aliases)
    assert em == 0.0 and f1 == pytest.approx(0.8)


# --- the contract ------------------------------------------------------------------------------


# check_env, info keys, determinism and the bad-action fuzz: tests/test_env_contract.py


def test_presets_are_registered_with_descriptions():
    assert {EASY, STANDARD} <= set(creditgym.envs.list_envs("creditgym"))
    assert "single-hop" in creditgym.envs.describe(EASY)


def test_same_seed_gives_same_question_and_same_transitions(cache_dir):
    first, second = make(cache_dir), make(cache_dir)
    actions = ["search[anything]", "nonsense", None]
    for seed in (0, 5, 17):
        trace = []
        for env in (first, second):
            obs, info = env.reset(seed=seed)
            run = [obs, info[TASK_ID]]
            for action in actions:
                action = action or info[keys.ADMISSIBLE_ACTIONS][1]
                obs, reward, terminated, truncated, info = env.step(action)
                run += [
                    obs,
                    reward,
                    terminated,
                    truncated,
                    info[keys.ANCHOR],
                    info[keys.ADMISSIBLE_ACTIONS],
                ]
            trace.append(run)
        assert trace[0] == trace[1]


def test_reset_seed_n_gives_question_n_of_the_split(cache_dir):
    env = make(cache_dir, split="test")
    for n in (0, 3, len(env.questions) + 3):
        _, info = env.reset(seed=n)
        assert info[TASK_ID] == env.questions[n % len(env.questions)].id


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(actions=st.lists(st.text(max_size=300), min_size=1, max_size=12))
def test_arbitrary_strings_never_raise_and_observations_stay_in_the_space(easy, actions):
    obs, info = easy.reset(seed=1)
    for action in actions:
        obs, reward, terminated, truncated, info = easy.step(action)
        assert easy.observation_space.contains(obs)
        assert set(keys.REQUIRED_KEYS) <= set(info)
        assert reward in (0.0, easy.unwrapped.format_penalty) or 0.0 <= reward <= 1.0
        if terminated or truncated:
            obs, info = easy.reset(seed=1)


def test_unparseable_action_is_invalid_costs_a_turn_and_names_the_formats(cache_dir):
    env = make(cache_dir)
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step("go north")
    assert not info[keys.VALID] and reward == 0.0 and not (terminated or truncated)
    assert "search[" in obs and "answer[" in obs
    assert (
        info[keys.SYMBOLIC_STATE]["turn"] == 1.0
        and info[keys.SYMBOLIC_STATE]["invalid_actions"] == 1.0
    )


# --- tools ---------------------------------------------------------------------------------------


def test_any_search_text_is_accepted_case_insensitively(cache_dir):
    env = make(cache_dir)
    env.reset(seed=0)
    obs, _, _, _, info = env.step("  SEARCH [ who invented the lantern? ] ")
    assert info[keys.VALID]
    obs, _, _, _, info = env.step("search[zzzz qqqq]")  # matches nothing: still a valid search
    assert info[keys.VALID] and obs.startswith("No passage matches")


def test_search_returns_top_k_passages_and_adds_them_to_the_anchor(cache_dir):
    env = make(cache_dir, top_k=2)
    _, info = env.reset(seed=0)
    question = env.question
    assert info[keys.ANCHOR] == frozenset({question.id})
    query = env.world.entities[question.topics[0]].name
    obs, _, _, _, info = env.step(f"search[{query}]")
    hits = env.index.search(query, 2)
    assert len(hits) == 2 and obs.count("Doc ") == 2
    assert info[keys.ANCHOR] == frozenset({question.id, *hits})
    _, _, _, _, again = env.step(f"search[{query}]")
    assert again[keys.ANCHOR] == info[keys.ANCHOR]
    assert (
        again[keys.ADMISSIBLE_ACTIONS] == info[keys.ADMISSIBLE_ACTIONS]
    )  # a function of the anchor


def test_admissible_actions_offer_searches_and_answers_for_names_and_years_seen(cache_dir):
    env = make(cache_dir)
    _, info = env.reset(seed=0)
    name, _ = env.question.mentions[0]
    assert f"search[{name}]" in info[keys.ADMISSIBLE_ACTIONS]
    assert f"answer[{name}]" in info[keys.ADMISSIBLE_ACTIONS]
    _, _, _, _, info = env.step(env.expert_action())
    for passage_id in info[keys.ANCHOR] - {env.question.id}:
        passage = env.corpus.passages[passage_id]
        for seen, _ in passage.mentions:
            assert f"answer[{seen}]" in info[keys.ADMISSIBLE_ACTIONS]
        for year in passage.years:
            assert f"answer[{year}]" in info[keys.ADMISSIBLE_ACTIONS]


def test_every_admissible_search_is_a_valid_action(cache_dir):
    env = make(cache_dir)
    env.reset(seed=2)
    _, _, _, _, info = env.step(env.expert_action())
    for action in [a for a in info[keys.ADMISSIBLE_ACTIONS] if a.startswith("search[")]:
        env.reset(seed=2)
        env.step(env.expert_action())
        assert env.step(action)[4][keys.VALID], action


# --- rewards and episode end ---------------------------------------------------------------------


def test_correct_answer_ends_with_reward_one_and_won(cache_dir):
    env = make(cache_dir)
    _, info = env.reset(seed=0)
    _, reward, terminated, truncated, info = env.step(f"answer[{info[keys.ANSWER]}]")
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert (
        info[keys.WON] and info[EM] == 1.0 and info[F1] == 1.0 and info[keys.EVENTS] == ["answered"]
    )


def test_partial_answer_earns_its_word_f1_and_does_not_win(cache_dir):
    env = make(cache_dir, split="test")
    _, info = env.reset(seed=0, options={"task_type": "single_hop"})
    truth = info[keys.ANSWER]
    _, reward, terminated, _, info = env.step(f"answer[{truth} Zzyx]")  # P 1/2 or 2/3, R 1
    words = len(normalize_answer(truth).split())
    assert terminated and not info[keys.WON]
    assert reward == pytest.approx(2 * words / (2 * words + 1)) == info[F1]


def test_wrong_answer_earns_zero_and_the_truth_is_never_shown(cache_dir):
    env = make(cache_dir)
    obs, info = env.reset(seed=4)
    truth = info[keys.ANSWER]
    assert truth not in obs and info[ANSWER_ALIASES][0] == truth
    obs, reward, terminated, _, info = env.step("answer[Nobody Atall]")
    assert reward == 0.0 and terminated and not info[keys.WON] and truth not in obs


@pytest.mark.parametrize("action", ["answer[]", "answer[  the ]", "ANSWER[?!]"])
def test_empty_final_answer_ends_with_the_format_penalty(cache_dir, action):
    env = make(cache_dir, format_penalty=-0.25)
    env.reset(seed=0)
    _, reward, terminated, truncated, info = env.step(action)
    assert (reward, terminated, truncated) == (-0.25, True, False)
    assert not info[keys.VALID] and info[keys.EVENTS] == [] and info[F1] == 0.0


def test_running_out_of_turns_truncates_with_reward_zero(cache_dir):
    env = make(cache_dir, max_turns=3)
    env.reset(seed=0)
    ends = [env.step("search[lanterns]")[1:4] for _ in range(3)]
    assert ends == [(0.0, False, False), (0.0, False, False), (0.0, False, True)]


def test_stepping_after_the_end_does_not_raise(cache_dir):
    env = make(cache_dir)
    env.reset(seed=0)
    env.step("answer[x]")
    obs, reward, terminated, _, info = env.step("search[x]")
    assert "over" in obs and reward == 0.0 and terminated and not info[keys.VALID]


# --- the expert and retrieval (the acceptance numbers) --------------------------------------------


@pytest.mark.parametrize("env_id", [EASY, STANDARD])
def test_expert_answers_at_least_98_percent_of_test_questions_exactly(env_id, cache_dir):
    env = make(cache_dir, env_id, split="test")
    results = [play_expert(env, seed)[2][EM] for seed in range(len(env.questions))]
    assert sum(results) / len(results) >= 0.98


@pytest.mark.parametrize("env_id", [EASY, STANDARD])
def test_bm25_puts_a_gold_passage_in_the_top_5_for_95_percent_of_expert_queries(env_id, cache_dir):
    env = make(cache_dir, env_id, split="test")
    hits = queries = 0
    for seed in range(len(env.questions)):
        env.reset(seed=seed)
        while (action := env.expert_action()).startswith("search["):
            top5 = env.index.search(action[len("search[") : -1], 5)
            hits += any(passage in env.question.gold_passages for passage in top5)
            queries += 1
            env.step(action)
    assert queries >= len(env.questions) and hits / queries >= 0.95


def test_expert_retrieves_gold_passages_in_hop_order_on_a_bridge_question(cache_dir):
    env = make(cache_dir)
    actions, reward, info, events = play_expert(env, 0, {"task_type": "bridge"})
    assert events == ["retrieved gold passage 1", "retrieved gold passage 2", "answered"]
    assert len(actions) == 3 and reward == 1.0
    assert (
        info[keys.SYMBOLIC_STATE]["gold_retrieved"]
        == info[keys.SYMBOLIC_STATE]["gold_total"]
        == 2.0
    )


def test_expert_answers_comparisons_with_the_older_name(cache_dir):
    env = make(cache_dir, STANDARD)
    actions, reward, info, _ = play_expert(env, 0, {"task_type": "comparison"})
    assert actions[-1] == f"answer[{info[keys.ANSWER]}]" and reward == 1.0
    assert info[keys.ANSWER] in env.question.text


def test_expert_learns_facts_only_from_retrieval(cache_dir):
    """With a search that returns nothing, the expert cannot know the answer."""
    env = make(cache_dir)
    env.reset(seed=0)
    env.index = type("NoHits", (), {"search": lambda self, query, k: []})()
    while (action := env.expert_action()).startswith("search["):
        env.step(action)
    assert action == f"answer[{UNKNOWN}]"


# --- world, questions, splits ---------------------------------------------------------------------


def test_world_is_a_pure_function_of_its_parameters():
    params = WorldParams(
        n_countries=3, n_cities=5, n_people=10, n_companies=4, n_works=4, n_distractors=3
    )
    same = generate_world(params), generate_world(params)
    other = generate_world(WorldParams(**{**params.__dict__, "seed": 1}))
    assert [e.name for e in same[0].entities] == [e.name for e in same[1].entities]
    assert same[0].facts == same[1].facts
    assert [e.name for e in other.entities] != [e.name for e in same[0].entities]


def test_every_fact_is_stated_in_its_gold_passage_with_its_keyword():
    world, corpus = load_world(DIFFICULTIES["easy"].world)
    for (subject, relation), passage_id in corpus.fact_passage.items():
        passage = corpus.passages[passage_id]
        assert world.value_text(world.facts[subject, relation]) in passage.text
        assert passage.title == world.entities[subject].name


def test_splits_name_disjoint_topics_and_questions_are_unique():
    world, corpus = load_world(DIFFICULTIES["standard"].world)
    mix = DIFFICULTIES["standard"].hop_mix
    topics = {
        split: {t for q in generate_questions(world, corpus, split, mix) for t in q.topics}
        for split in ("train", "valid", "test")
    }
    assert not topics["train"] & topics["test"] and not topics["train"] & topics["valid"]
    questions = generate_questions(world, corpus, "train", mix)
    assert len({q.id for q in questions}) == len(questions)
    assert set(_topic_splits(world).values()) == {"train", "valid", "test"}


def test_hop_mix_sets_the_task_type_proportions():
    world, corpus = load_world(DIFFICULTIES["standard"].world)
    questions = generate_questions(
        world, corpus, "train", {"single_hop": 0.4, "bridge": 0.4, "comparison": 0.2}
    )
    share = {
        t: sum(q.task_type == t for q in questions) / len(questions)
        for t in ("single_hop", "comparison")
    }
    assert share["single_hop"] == pytest.approx(0.4, abs=0.01) and share[
        "comparison"
    ] == pytest.approx(0.2, abs=0.01)
    easy_world, easy_corpus = load_world(DIFFICULTIES["easy"].world)
    easy_types = {
        q.task_type
        for q in generate_questions(easy_world, easy_corpus, "train", DIFFICULTIES["easy"].hop_mix)
    }
    assert easy_types == {"single_hop", "bridge"}


def test_bad_arguments_say_what_to_choose(cache_dir):
    with pytest.raises(ValueError, match="choose one of"):
        SearchQAEnv(difficulty="medium", cache_dir=cache_dir)
    with pytest.raises(ValueError, match="choose one of"):
        SearchQAEnv(split="dev", difficulty="easy", cache_dir=cache_dir)
    with pytest.raises(ValueError, match="unknown task types"):
        SearchQAEnv(difficulty="easy", hop_mix={"multi_hop": 1.0}, cache_dir=cache_dir)
    with pytest.raises(ValueError, match="every country needs a city"):
        WorldParams(n_countries=5, n_cities=3)
    with pytest.raises(ValueError, match="comparison"):
        SearchQAEnv(difficulty="easy", cache_dir=cache_dir).reset(
            options={"task_type": "comparison"}
        )


# --- the BM25 index cache -------------------------------------------------------------------------


def test_index_is_cached_on_disk_keyed_by_world_parameters(cache_dir):
    params = DIFFICULTIES["easy"].world
    _, corpus = load_world(params)
    built = search_index.load_index(corpus, params, cache_dir)
    folder = cache_dir / "search" / f"bm25-v{search_index.INDEX_VERSION}-{params.key()}"
    assert (folder / "creditgym.json").exists()
    search_index._load.cache_clear()  # as a new process would: load from disk, do not rebuild
    stamp = (folder / "creditgym.json").stat().st_mtime_ns
    loaded = search_index.load_index(corpus, params, cache_dir)
    assert (folder / "creditgym.json").stat().st_mtime_ns == stamp
    assert loaded.search("born founded", 10) == built.search("born founded", 10)
    assert params.key() != WorldParams(**{**params.__dict__, "seed": 1}).key()


def test_cache_root_follows_creditgym_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("CREDITGYM_CACHE", str(tmp_path))
    assert search_index.cache_root() == tmp_path


def test_importing_the_env_does_not_import_bm25s():
    code = "import sys, creditgym.envs.search; assert 'bm25s' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_make_without_reset_raises_reset_needed(cache_dir):
    with pytest.raises(gym.error.ResetNeeded):
        make(cache_dir).step("search[x]")
