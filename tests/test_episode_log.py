"""The episode log on disk and the viewer's reading of it (no browser: see test_viewer_browser)."""

from __future__ import annotations

import http.client
import json
import re
import threading

import numpy as np
import pytest
from conftest import episode

from creditgym.credit import assign_credit, compute_advantages
from creditgym.episode_log import (
    SCHEMA_VERSION,
    EpisodeLog,
    EpisodeWriter,
    assign_step_groups,
    episode_record,
    read_records,
    sample_tasks,
)
from creditgym.view import EpisodeStore, make_server


def _batch():
    episodes = [
        episode([0, 0, 1], anchors=["s0", "s1", "s2"], group="a"),
        episode([0, 0], anchors=["s0", "s3"], group="a"),
        episode([1], anchors=["t0"], group="b"),
        episode([0, 0], anchors=["t0", "t1"], group="b"),
    ]
    for e in episodes:
        e.task_id = f"train:{e.group_id}"
        e.metadata["task"] = f"task {e.group_id}"
        e.success = e.episode_return > 0
    return episodes


def test_assign_credit_breaks_the_turn_rewards_down_by_shaper():
    episodes = _batch()
    shapers = ["env", {"name": "env", "scale": 0.5}]
    credit = assign_credit(episodes, shapers=shapers, estimator="gigpo")
    assert list(credit.shaper_rewards) == ["env", "env#2"]
    np.testing.assert_allclose(credit.shaper_rewards["env#2"][0], [0, 0, 0.5])
    np.testing.assert_allclose(credit.turn_rewards[0], [0, 0, 1.5])
    expected = compute_advantages(_batch(), shapers=shapers, estimator="gigpo")
    for got, want in zip(credit.advantages, expected):
        np.testing.assert_array_equal(got, want)
    # GiGPO leaves each turn's step group: both episodes of group "a" start in s0
    assert episodes[0].turn_credit_details(0)["gigpo"]["step_group_size"] == 2


def test_a_record_has_every_turn_with_its_credit_and_no_nan():
    ep = _batch()[0]
    ep.turns[0].credit_details["calm"] = {"judged": True, "achieved": ["x"], "new": ["x"]}
    record = episode_record(
        ep,
        iteration=3,
        shaper_rewards={"env": np.array([0, 0, 1.0]), "calm": np.array([0.1, 0, 0])},
        advantages=[0.5, float("nan"), -0.25],
        estimator="grpo",
    )
    text = json.dumps(record, allow_nan=False)  # strict JSON: a browser can parse it
    assert json.loads(text)["schema_version"] == SCHEMA_VERSION
    assert record["shapers"] == ["env", "calm"]
    turn = record["turns"][0]
    assert turn["shaper_rewards"] == {"env": 0.0, "calm": 0.1}
    assert turn["turn_reward"] == pytest.approx(0.1)
    assert [t["advantage"] for t in record["turns"]] == [0.5, None, -0.25]
    assert turn["credit"]["calm"]["achieved"] == ["x"]
    assert record["return"] == 1.0 and record["length"] == 3 and record["task"] == "task a"


def test_step_groups_come_from_any_module_that_leaves_them_else_from_equal_anchors():
    def turn(anchor, credit=None):
        return {
            "anchor": anchor,
            "credit": credit or {},
            "step_group": None,
            "step_group_size": None,
        }

    own = {"my_estimator": {"step_group": 7, "step_group_size": 3}}
    records = [
        {"group_id": "a", "failed": False, "turns": [turn("s0", own), turn("s1")]},
        {"group_id": "a", "failed": False, "turns": [turn("s1"), turn("s2")]},
    ]
    assign_step_groups(records)
    first, second = records[0]["turns"], records[1]["turns"]
    assert (first[0]["step_group"], first[0]["step_group_size"]) == (7, 3)
    # equal anchors in one group share a negative id (never clashing with a module's own)
    assert first[1]["step_group"] == second[0]["step_group"] < 0
    assert first[1]["step_group_size"] == 2 and second[1]["step_group_size"] == 1


def test_the_sample_keeps_whole_tasks():
    episodes = _batch()
    chosen = sample_tasks(episodes, 2, seed=[0, 1])
    assert len(chosen) == 2
    assert len({episodes[i].task_id for i in chosen}) == 1  # the two episodes of one task
    assert sample_tasks(episodes, 1, seed=0) != []  # at least one task, even if larger than N
    assert sample_tasks(episodes, 0, seed=0) == []


def test_the_file_rotates_at_its_cap_keeping_the_newest(tmp_path):
    writer = EpisodeWriter(tmp_path / "episodes.jsonl", max_bytes=2000)
    for i in range(20):
        writer.write([{"schema_version": 1, "n": i, "pad": "x" * 300}])
    assert writer.path.stat().st_size <= 2000
    assert writer.rotated_path.stat().st_size <= 2000
    newest = [r["n"] for r in read_records(writer.path)]
    assert newest[-1] == 19
    assert [r["n"] for r in read_records(writer.rotated_path)][-1] == newest[0] - 1


def test_a_torn_last_line_is_skipped_and_bad_lines_counted(tmp_path):
    path = tmp_path / "episodes.jsonl"
    good = json.dumps(episode_record(_batch()[0], iteration=1))
    path.write_text(good + "\nnot json\n[1, 2]\n" + good + "\n" + good[:50])
    assert len(list(read_records(path))) == 2
    store = EpisodeStore(path)
    overview = store.overview()
    assert overview["episodes"] == 2
    assert any("2 line(s)" in notice for notice in overview["notices"])
    assert any("incomplete" in notice for notice in overview["notices"])
    with path.open("a") as f:  # the writer finishes the line: now it counts
        f.write(good[50:] + "\n")
    assert store.overview()["episodes"] == 3


def test_a_resumed_run_drops_the_iterations_it_redoes(tmp_path):
    credit = assign_credit(_batch(), estimator="grpo")
    first = EpisodeLog(tmp_path, per_iteration=4)
    for iteration in (1, 2, 3):
        first.log(iteration, _batch(), credit)
    resumed = EpisodeLog(tmp_path, per_iteration=4)  # the checkpoint was at iteration 1
    resumed.log(2, _batch(), credit)
    iterations = [r["iteration"] for r in read_records(tmp_path / "episodes.jsonl")]
    assert iterations == sorted(iterations) and set(iterations) == {1, 2}
    assert iterations.count(2) == iterations.count(1)


def _store(tmp_path) -> EpisodeStore:
    credit = assign_credit(_batch(), estimator="grpo")
    log = EpisodeLog(tmp_path, per_iteration=100)
    for iteration in (1, 2):
        log.log(iteration, _batch(), credit)
    (tmp_path / "metrics.jsonl").write_text('{"iteration": 1, "loss": NaN}\n')
    return EpisodeStore(tmp_path)


def test_the_store_filters_pages_and_groups(tmp_path):
    store = _store(tmp_path)
    assert store.page({})["total"] == 8
    assert store.page({"iteration": "2"})["total"] == 4
    assert store.page({"outcome": "success"})["total"] == 4
    assert store.page({"q": "TASK B"})["total"] == 4
    page = store.page({}, offset=6, limit=5)
    assert len(page["episodes"]) == 2 and page["episodes"][0]["iteration"] == 1  # newest first
    group = store.group(page["episodes"][0]["id"])
    assert len(group) == 2 and len({json.dumps(r["group_id"]) for r in group}) == 1


@pytest.fixture()
def server(tmp_path):
    server = make_server(_store(tmp_path), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _get(server, path, host=None):
    connection = http.client.HTTPConnection(*server.server_address[:2], timeout=10)
    headers = {"Host": host} if host else {}
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    return response.status, response.read(), dict(response.getheaders())


def test_the_server_answers_its_api_on_loopback(server):
    assert server.server_address[0] == "127.0.0.1"
    status, body, headers = _get(server, "/")
    assert status == 200 and "script-src 'nonce-" in headers["Content-Security-Policy"]
    status, body, _ = _get(server, "/api/episodes?iteration=1&limit=2")
    assert status == 200 and json.loads(body)["total"] == 4
    status, body, _ = _get(server, "/api/metrics")
    assert json.loads(body) == [{"iteration": 1, "loss": None}]  # NaN is not JSON


@pytest.mark.parametrize("path", ["/../../etc/passwd", "/static/../store.py", "/api/nothing"])
def test_the_server_serves_no_files_by_path(server, path):
    status, body, _ = _get(server, path)
    assert status == 404 and b"root:" not in body


def test_the_server_refuses_foreign_host_headers(server):
    status, _, _ = _get(server, "/api/overview", host="attacker.example:80")
    assert status == 403


def test_eval_save_episodes_then_view_export(tmp_path):
    from creditgym.cli import main

    episodes = tmp_path / "eval.jsonl"
    args = ["eval", "--env", "creditgym/HouseholdEasy-v0", "--agent", "expert", "--episodes", "2"]
    assert main([*args, "--save-episodes", str(episodes)]) == 0
    records = list(read_records(episodes))
    assert len(records) == 4  # 2 tasks x the env's 2 held-out splits
    assert all(r["source"] == "eval" and r["policy"] == "expert" and r["success"] for r in records)
    assert all(t["advantage"] is None for r in records for t in r["turns"])
    out = tmp_path / "eval.html"
    assert main(["view", str(episodes), "--export", str(out)]) == 0
    page = out.read_text()
    assert 'id="creditgym-data"' in page
    # nothing to fetch: the only URL is the SVG namespace, a name and never a request
    assert re.findall(r"https?://[^\s\"']+", page) == ["http://www.w3.org/2000/svg"]


# ---- what credit modules leave on the turn for the log -------------------------------------------


def test_calm_leaves_its_verdicts_on_each_turn():
    from creditgym.credit import CreditContext, OracleJudge, calm_rewards
    from creditgym.trajectory import Episode, Turn

    turns = [
        Turn(observation="o", action="a", info={"task": "t"}, next_info={"events": events})
        for events in (["found egg"], ["found egg", "took egg"], [])
    ]
    calm_rewards([Episode(turns=turns)], CreditContext(judge=OracleJudge()))
    assert [t.credit_details["calm"]["new"] for t in turns] == [["found egg"], ["took egg"], []]
    assert turns[1].credit_details["calm"]["achieved"] == ["found egg", "took egg"]


def test_igpo_leaves_each_gain_and_the_answer_scores_around_it():
    from creditgym.credit import CreditContext, information_gain
    from creditgym.trajectory import Episode, Turn

    class Scorer:
        def logprobs(self, prompts, continuations, *, add_eos=True):
            return [np.full(2, {"p0": np.log(0.1), "p1": np.log(0.4)}[p[:2]]) for p in prompts]

    turns = [Turn(observation="", action="x", prompt=p, info={"answer": "y"}) for p in ("p0", "p1")]
    rewards = information_gain([Episode(turns=turns)], CreditContext(scorer=Scorer()))
    gain = turns[0].credit_details["info_gain"]
    assert gain["gain"] == pytest.approx(rewards[0][0]) == pytest.approx(0.3)
    assert (gain["score_before"], gain["score_after"]) == (pytest.approx(0.1), pytest.approx(0.4))


def test_lare_leaves_the_factors_and_the_decoded_reward():
    from creditgym.credit import CreditContext, LatentReward, lare_rewards

    factors = LatentReward.trusted(lambda state, action: [len(action), 1.0])
    episodes = _batch()
    rewards = lare_rewards(episodes, CreditContext(extras={"lare": LatentReward(factors)}))
    turn = episodes[0].turns[2]
    assert turn.credit_details["lare"]["factors"] == [len(turn.action), 1.0]
    assert turn.credit_details["lare"]["decoded_reward"] == pytest.approx(rewards[0][2])


def test_a_broken_log_warns_once_and_training_goes_on(tmp_path):
    log = EpisodeLog(tmp_path, per_iteration=4)
    with pytest.warns(UserWarning, match="no longer logged"):
        assert log.log(1, _batch(), credit=object()) == 0  # not a credit breakdown
    assert log.log(2, _batch(), assign_credit(_batch())) == 0  # stopped, silently
