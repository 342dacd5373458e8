#!/usr/bin/env bash
# Every `creditgym credit-report` behind the README's "Credit fidelity" table; each writes
# benchmarks/results/credit_report_<preset>_<agent>.{json,md} (and a .png for the household).
# Scripted agents take seconds to a minute each on one CPU core; the tiny-model ones minutes.
# Usage: bash benchmarks/credit_reports.sh [household|webshop|search|keyroom|coop|twx|checkpoint|learned|all]
#        (checkpoint: the quickstart policy after 10 iterations, runs/q10, trained first with
#         creditgym train configs/quickstart_rl.yaml train.iterations=10 run.threads=1 run.output_dir=runs/q10;
#         learned: the learning benchmark's "tight" policies, seed 0: its warm start and GRPO
#         after 20 iterations, trained first by benchmarks/learning.py --setting tight)
set -euo pipefail
export OMP_NUM_THREADS=1
OUT=benchmarks/results
what=${1:-all}

report() {  # name agent env methods [extra args...]
    local name=$1 agent=$2 env=$3 methods=$4
    shift 4
    local tag=${TAG:-${agent//:eps=0.5/_eps05}}
    creditgym credit-report --env "$env" --agent "$agent" --methods "$methods" --seed 0 \
        --json "$OUT/credit_report_${name}_${tag}.json" \
        --markdown "$OUT/credit_report_${name}_${tag}.md" "$@"
}

HOUSEHOLD="grpo,grpo:normalization=mean,gigpo,gigpo:normalization=mean_std,gigpo:step_weight=0.5,env+calm/grpo,env+calm/gigpo"
MC=(--mc 32 --mc-turns 256 --mc-gamma 0.95)

if [[ $what == household || $what == all ]]; then
    for agent in random expert:eps=0.5; do
        for preset in easy:HouseholdEasy medium:HouseholdMedium full:Household; do
            tag=${agent//:eps=0.5/_eps05}
            report "${preset%%:*}" "$agent" "creditgym/${preset#*:}-v0" "$HOUSEHOLD" \
                --groups 32 --group-size 8 "${MC[@]}" \
                --plot "$OUT/credit_report_${preset%%:*}_${tag}.png"
        done
    done
fi
if [[ $what == checkpoint || $what == all ]]; then
    TAG=q10 report easy runs/q10/checkpoints/iter_000010/model creditgym/HouseholdEasy-v0 \
        "$HOUSEHOLD" --groups 16 --group-size 8 --mc 8 --mc-turns 64 --mc-gamma 0.95 \
        --plot "$OUT/credit_report_easy_q10.png"
    TAG=q10_seed1 report easy runs/q10/checkpoints/iter_000010/model creditgym/HouseholdEasy-v0 \
        grpo,gigpo,gigpo:normalization=mean_std --groups 32 --group-size 8 --seed 1
fi
if [[ $what == learned || $what == all ]]; then
    # the Monte-Carlo yardstick on real runs' checkpoints, with the planner's and the
    # searcher's labels beside it (HouseholdEasy with the 8-step budget of the "tight" setting)
    runs=benchmarks/results/runs/learning/tight
    warm=$(ls -d $runs/warm-seed0-*/checkpoints/iter_000000/model | head -1)
    grpo=$(ls -d $runs/grpo-seed0-*/checkpoints/iter_000020/model | head -1)
    for pair in "warm:$warm" "grpo20:$grpo"; do
        TAG=tight_${pair%%:*} report easy "${pair#*:}" creditgym/HouseholdEasy-v0 \
            grpo,gigpo,gigpo:normalization=mean_std,turn_level --env-kwarg max_steps=8 \
            --groups 16 --group-size 8 --mc 8 --mc-turns 128 --mc-gamma 1
    done
fi
if [[ $what == webshop || $what == all ]]; then
    for agent in random expert:eps=0.5; do
        report webshop "$agent" creditgym/WebShopEasy-v0 \
            "grpo,gigpo,gigpo:normalization=mean_std,gigpo:step_weight=0.5" \
            --groups 16 --group-size 8 --mc 16 --mc-turns 128 --mc-gamma 0.95
    done
fi
if [[ $what == search || $what == all ]]; then
    for agent in random expert:eps=0.5; do
        report search "$agent" creditgym/SearchQAEasy-v0 "grpo,gigpo,gigpo:normalization=mean_std" \
            --groups 16 --group-size 8 --mc 16 --mc-turns 128 --mc-gamma 0.95
    done
    # IGPO needs the policy's log-probs: the untrained tiny model train starts from
    report search tiny creditgym/SearchQAEasy-v0 \
        "grpo,gigpo,igpo,env+info_gain:gain=log_prob_diff/discounted_group,env+info_gain/discounted_group:normalization=separate,env+info_gain:gain=log_prob_diff/discounted_group:normalization=separate,env+info_gain/gigpo" \
        --groups 16 --group-size 8 --mc 8 --mc-turns 32 --mc-gamma 0.95
fi
if [[ $what == keyroom || $what == all ]]; then  # NLE cannot clone a game: no Monte-Carlo
    for agent in random expert:eps=0.5; do
        report keyroom "$agent" creditgym/MiniHackKeyRoom-v0 \
            "grpo,gigpo,env+calm/grpo,env+calm/gigpo" --groups 8 --group-size 8 --judge oracle
    done
fi
if [[ $what == coop || $what == all ]]; then  # multi-agent: the team's labels and MC advantages
    for agent in random expert:eps=0.5; do
        report coop "$agent" creditgym/CoopHousehold-v0 \
            "grpo,gigpo,lare/discounted_group,lare:variant=rrd/discounted_group,lare/gigpo" \
            --groups 16 --group-size 8 --lare-factors hand --mc 16 --mc-turns 128 --mc-gamma 0.95 \
            --env-kwarg receptacles=3 --env-kwarg distractors=0 --env-kwarg max_steps=12
    done
fi
if [[ $what == twx || $what == all ]]; then  # a real engine: TextWorldExpress's coin game
    # (JVM engines: --batch-size keeps 8 engines at a time; the label is coin's omniscient
    # shortest path, CoinEnv.steps_to_go; --mc works too (clones replay) but ran over half an hour on 2 cores)
    report twx_coin expert:eps=0.5 creditgym/TWX-Coin-v0 "grpo,gigpo,gigpo:normalization=mean_std" \
        --groups 16 --group-size 8 --batch-size 8
fi
