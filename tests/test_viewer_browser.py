"""`creditgym view` in a real browser (headless Chromium) on a run directory made by training.

Skipped only where Chromium is not installed and this is not CI (in CI, CI=true, it fails).
"""

from __future__ import annotations

import json
import os

import pytest
from _browser import browser_missing, chromium, serving, wait_ready
from conftest import TINY

from creditgym.config import load_config
from creditgym.train.trainer import train
from creditgym.view import EpisodeStore, export_html

MISSING = browser_missing()
if MISSING and os.environ.get("CI", "").lower() != "true":
    pytest.skip(f"no browser: {MISSING}", allow_module_level=True)

GROUP_SIZE = 3
HOSTILE = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """Two iterations of a tiny model with CALM (oracle judge) shaping under GiGPO."""
    out = tmp_path_factory.mktemp("viewer") / "run"
    config = load_config(
        None,
        TINY
        + [
            "env.id=creditgym/HouseholdEasy-v0",
            "env.kwargs={max_steps: 6}",
            "rollout.groups=4",
            f"rollout.group_size={GROUP_SIZE}",
            "eval.episodes=4",
            "eval.every=0",
            "train.iterations=2",
            "run.log_episodes=6",
            "run.threads=1",
            "credit.shapers=[env, calm]",
            "credit.estimator={name: gigpo}",
            f"run.output_dir={out}",
        ],
    )
    train(config)
    return out


@pytest.fixture(scope="module")
def records(run_dir):
    return [json.loads(line) for line in (run_dir / "episodes.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def browser():
    with chromium() as driver:
        yield driver


def _rows(driver):
    return driver.find_elements("css selector", "tr.episode-row")


def _count(driver) -> int:
    return int(driver.find_element("css selector", "#count-text").get_attribute("data-total"))


def test_the_list_shows_every_logged_episode(run_dir, records, browser):
    with serving(run_dir) as url:
        browser.get(url)
        wait_ready(browser)
        assert len(records) == 12  # 2 iterations x 2 whole groups of 3
        assert _count(browser) == len(records)
        assert len(_rows(browser)) == len(records)


def test_an_iteration_filter_narrows_the_list(run_dir, records, browser):
    from selenium.webdriver.support.ui import Select, WebDriverWait

    with serving(run_dir) as url:
        browser.get(url)
        wait_ready(browser)
        Select(browser.find_element("id", "f-iteration")).select_by_value("1")
        first = sum(r["iteration"] == 1 for r in records)
        WebDriverWait(browser, 10).until(lambda d: _count(d) == first)
        assert 0 < first < len(records)
        assert len(_rows(browser)) == first


def test_an_episode_shows_the_advantages_in_the_file(run_dir, records, browser):
    with serving(run_dir) as url:
        browser.get(url)
        wait_ready(browser)
        _rows(browser)[0].click()  # the newest episode: the last line of the file
        from selenium.webdriver.support.ui import WebDriverWait

        newest = str(len(records) - 1)
        WebDriverWait(browser, 10).until(  # the episode comes from a request to the server
            lambda d: any(
                e.get_attribute("data-id") == newest
                for e in d.find_elements("css selector", "[data-testid=episode]")
            )
        )
        turns = browser.find_elements("css selector", "[data-testid=turn]")
        expected = records[-1]["turns"]
        assert len(turns) == len(expected)
        shown = [
            float(t.find_element("css selector", ".advantage-value").get_attribute("data-value"))
            for t in turns
        ]
        assert shown == [turn["advantage"] for turn in expected]
        text = browser.find_element("css selector", "[data-testid=episode]").text
        assert "env + calm → gigpo" in text
        # each shaper's contribution and the judge's verdict are on the turn
        assert turns[0].find_element("css selector", "[data-shaper=calm]")
        assert turns[0].find_element("css selector", "[data-testid=calm]")


def test_a_step_group_lists_the_turns_from_the_same_state(run_dir, records, browser):
    with serving(run_dir) as url:
        browser.get(url + f"#episode={len(records) - 1}")
        wait_ready(browser)
        first_turn = browser.find_element("css selector", "[data-testid=turn][data-t='0']")
        first_turn.find_element("css selector", "[data-testid=step-group]").click()
        from selenium.webdriver.support.ui import WebDriverWait

        # the peers come from a request to the server: wait for them
        peers = WebDriverWait(browser, 10).until(
            lambda d: d.find_elements("css selector", "[data-testid=step-peers] .peer")
        )
        assert len(peers) == records[-1]["turns"][0]["step_group_size"]
        # every episode of a group starts from the same state: all G are in its first step group
        # (with any later turn that came back to that state)
        assert len({peer.get_attribute("data-episode") for peer in peers}) == GROUP_SIZE


def test_the_group_view_shows_the_g_episodes_side_by_side(run_dir, records, browser):
    with serving(run_dir) as url:
        browser.get(url + f"#group={len(records) - 1}")
        wait_ready(browser)
        group = browser.find_element("css selector", "[data-testid=group]")
        assert group.get_attribute("data-size") == str(GROUP_SIZE)
        assert len(browser.find_elements("css selector", ".group-episode")) == GROUP_SIZE


def test_the_learning_curves_are_drawn_from_metrics(run_dir, browser):
    with serving(run_dir) as url:
        browser.get(url + "#curves")
        wait_ready(browser)
        chart = browser.find_element("css selector", "svg[data-metric='rollout/success']")
        assert chart.get_attribute("data-points") == "2"


def test_the_export_opens_without_a_server(run_dir, records, browser, tmp_path):
    out = tmp_path / "export.html"
    export_html(EpisodeStore(run_dir), out)
    browser.get(out.as_uri() + f"#episode={len(records) - 1}")
    wait_ready(browser)
    assert _count(browser) == len(records)
    shown = browser.find_elements("css selector", "[data-testid=turn] .advantage-value")
    assert [float(s.get_attribute("data-value")) for s in shown] == [
        t["advantage"] for t in records[-1]["turns"]
    ]
    assert not browser.find_elements("css selector", "[data-testid=error]")


def _hostile_file(records, path):
    record = json.loads(json.dumps(records[-1]))
    record["task"] = HOSTILE + "</script>"
    record["turns"][0]["observation"] = HOSTILE
    record["turns"][0]["action"] = HOSTILE
    record["turns"][0]["credit"]["calm"]["achieved"] = [HOSTILE]
    path.write_text(json.dumps(record) + "\n")


@pytest.mark.parametrize("how", ["served", "exported"])
def test_hostile_text_is_shown_as_text(records, browser, tmp_path, how):
    episodes = tmp_path / "hostile.jsonl"
    _hostile_file(records, episodes)
    if how == "served":
        with serving(episodes) as url:
            browser.get(url + "#episode=0")
            wait_ready(browser)
            _check_inert(browser)
    else:
        out = tmp_path / "hostile.html"
        export_html(EpisodeStore(episodes), out)
        browser.get(out.as_uri() + "#episode=0")
        wait_ready(browser)
        _check_inert(browser)


def _check_inert(browser):
    assert browser.execute_script("return window.__xss") is None
    assert not browser.find_elements("css selector", "#detail img, #episode-rows img")
    assert HOSTILE in browser.find_element("css selector", "[data-testid=turn] pre").text
    assert HOSTILE in browser.find_element("css selector", "tr.episode-row").get_attribute(
        "innerText"
    ) or HOSTILE[:20] in browser.find_element(
        "css selector", "tr.episode-row td.task"
    ).get_attribute("title")
