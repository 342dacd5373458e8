// creditgym view: episodes turn by turn with their credit, groups side by side, learning curves.
// Every string from an episode file is LLM or env output: it only ever reaches the page as a
// text node (el() below), never as HTML.
"use strict";

// ---- DOM helper: children are nodes or text, attributes are set one by one ---------------------
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "onclick") node.addEventListener("click", value);
    else if (key === "style") node.setAttribute("style", value);
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }
function fmt(x, digits = 3) {
  if (x === null || x === undefined) return "–";
  if (typeof x !== "number") return String(x);
  return Number.isInteger(x) ? String(x) : x.toFixed(digits);
}
// a failed episode with its reason (crash, timeout, garbage, memory, error), when the file has one
function failedText(s) { return s.failure ? "failed: " + s.failure : "failed"; }
function exact(x) { return x === null || x === undefined ? "" : String(x); }

// ---- data: the local server's API, or the data embedded in an exported file ------------------
function matches(s, f) {  // the same rules as creditgym/view/store.py's matches()
  if (f.iteration) {
    const shown = s.iteration === null ? "eval" : String(s.iteration);
    if (shown !== f.iteration) return false;
  }
  if (f.outcome === "success" && !s.success) return false;
  if (f.outcome === "failure" && (s.success || s.failed)) return false;
  if (f.outcome === "failed" && !s.failed) return false;
  if (f.task_type && s.task_type !== f.task_type) return false;
  if (f.env && s.env_id !== f.env) return false;
  if (f.agent && s.agent_id !== f.agent) return false;
  if (f.policy && s.policy !== f.policy) return false;
  const q = (f.q || "").trim().toLowerCase();
  if (q && !s.task.toLowerCase().includes(q) && !s.task_id.toLowerCase().includes(q)) return false;
  return true;
}

function embeddedApi(data) {
  const byId = new Map(data.summaries.map((s) => [s.id, s]));
  return {
    exported: true,
    overview: async () => data.overview,
    page: async (filters, offset, limit) => {
      const hits = data.summaries.filter((s) => matches(s, filters)).reverse();
      return { total: hits.length, offset, limit, episodes: hits.slice(offset, offset + limit) };
    },
    episode: async (id) => {
      const record = data.records[String(id)];
      if (!record) throw new Error("episode " + id + " is not in this export");
      return record;
    },
    group: async (id) => {
      const key = byId.get(id).group;
      return data.summaries.filter((s) => s.group === key && data.records[String(s.id)])
        .map((s) => data.records[String(s.id)]);
    },
    metrics: async () => data.metrics,
  };
}

function serverApi() {
  async function get(path, params) {
    const url = new URL(path, window.location.href);
    for (const [k, v] of Object.entries(params || {})) if (v !== "" && v !== undefined) url.searchParams.set(k, v);
    const response = await fetch(url);
    if (!response.ok) throw new Error(path + ": " + response.status + " " + (await response.text()));
    return response.json();
  }
  return {
    exported: false,
    overview: () => get("api/overview"),
    page: (filters, offset, limit) => get("api/episodes", { ...filters, offset, limit }),
    episode: (id) => get("api/episode", { id }),
    group: (id) => get("api/group", { id }),
    metrics: () => get("api/metrics"),
  };
}

const embedded = document.getElementById("creditgym-data");
const api = embedded ? embeddedApi(JSON.parse(embedded.textContent)) : serverApi();

// ---- state and layout --------------------------------------------------------------------------
const PAGE = 100;
const state = { filters: {}, offset: 0, selected: null, overview: null };
const $ = (id) => document.getElementById(id);

function showError(error) {
  clear($("detail")).appendChild(el("div", { class: "card ko", "data-testid": "error" }, String(error)));
}

function fillSelect(select, values, allLabel) {
  const current = select.value;
  clear(select).appendChild(el("option", { value: "" }, allLabel));
  for (const v of values) select.appendChild(el("option", { value: v }, v));
  select.value = values.includes(current) ? current : "";
}

async function loadOverview() {
  const o = await api.overview();
  state.overview = o;
  $("source").textContent = o.source + (api.exported ? " (exported)" : "");
  fillSelect($("f-iteration"), o.iterations, "all iterations");
  fillSelect($("f-task_type"), o.task_types, "all task types");
  fillSelect($("f-env"), o.envs, "all envs");
  fillSelect($("f-agent"), o.agents, "all agents");
  fillSelect($("f-policy"), o.policies, "all policies");
  const notices = clear($("notices"));
  for (const notice of o.notices) notices.appendChild(el("li", { "data-testid": "notice" }, notice));
  $("nav-curves").classList.toggle("hidden", !o.has_metrics);
}

function readFilters() {
  const f = {};
  for (const key of ["iteration", "outcome", "task_type", "env", "agent", "policy", "q"]) {
    const v = $("f-" + key).value;
    if (v) f[key] = v;
  }
  return f;
}

async function loadList() {
  const page = await api.page(state.filters, state.offset, PAGE);
  const body = clear($("episode-rows"));
  for (const s of page.episodes) {
    const row = el("tr", { class: "episode-row" + (s.id === state.selected ? " selected" : ""), "data-id": s.id,
                            onclick: () => { location.hash = "episode=" + s.id; } },
      el("td", {}, s.iteration === null ? "eval" : s.iteration),
      el("td", { class: "task", title: s.task }, s.task || s.task_id),
      el("td", {}, s.task_type),
      el("td", {}, s.agent_id === "agent" ? s.policy : s.agent_id),
      el("td", {}, fmt(s.return, 2)),
      el("td", { class: s.failed ? "ko" : s.success ? "ok" : "ko", "data-testid": "outcome" },
        s.failed ? failedText(s) : s.success ? "✓" : "✗"),
      el("td", {}, s.length));
    body.appendChild(row);
  }
  const last = Math.min(page.offset + page.episodes.length, page.total);
  $("count-text").textContent = page.total
    ? `${page.offset + 1}–${last} of ${page.total} episodes`
    : "no episode matches";
  $("count-text").setAttribute("data-total", page.total);
  $("prev").disabled = page.offset === 0;
  $("next").disabled = last >= page.total;
}

// ---- one episode, turn by turn ----------------------------------------------------------------
function advantageBar(value, scale) {
  const bar = el("div", { class: "bar", title: "advantage " + exact(value) }, el("div", { class: "zero" }));
  if (typeof value === "number" && scale > 0) {
    const width = Math.min(50, (50 * Math.abs(value)) / scale);
    bar.appendChild(el("div", { class: "fill " + (value >= 0 ? "pos" : "neg"),
      style: value >= 0 ? `left:50%;width:${width}%` : `left:${50 - width}%;width:${width}%` }));
  }
  return bar;
}

function returnsToGo(record) {
  const out = new Array(record.turns.length).fill(0);
  let acc = 0;
  for (let t = record.turns.length - 1; t >= 0; t--) {
    acc += record.turns[t].turn_reward || 0;
    out[t] = acc;
  }
  return out;
}

function creditDetails(credit) {
  const box = el("div", { class: "details" });
  if (credit.calm) {
    const c = credit.calm;
    box.appendChild(el("div", { "data-testid": "calm" }, "CALM judge: ",
      c.judged ? (c.achieved.length ? "achieved " + c.achieved.join("; ") : "no subgoal") : "no verdict",
      c.new && c.new.length ? " (new: " + c.new.join("; ") + ")" : ""));
  }
  if (credit.info_gain) {
    const g = credit.info_gain;
    box.appendChild(el("div", { "data-testid": "info-gain" },
      `IGPO gain ${fmt(g.gain, 4)} (answer score ${fmt(g.score_before, 4)} → ${fmt(g.score_after, 4)})`));
  }
  if (credit.lare) {
    const l = credit.lare;
    box.appendChild(el("div", { "data-testid": "lare" },
      `LaRe decoded reward ${fmt(l.decoded_reward, 4)}; factors [${(l.factors || []).map((x) => fmt(x, 2)).join(", ")}]`));
  }
  if (credit.gigpo) {
    const g = credit.gigpo;
    box.appendChild(el("div", { "data-testid": "gigpo" },
      `GiGPO A^E ${fmt(g.episode_advantage, 4)}, A^S ${fmt(g.step_advantage, 4)}`));
  }
  for (const [name, value] of Object.entries(credit)) {
    if (["calm", "info_gain", "lare", "gigpo"].includes(name)) continue;
    box.appendChild(el("div", {}, name + ": " + JSON.stringify(value)));
  }
  return box;
}

async function toggleStepPeers(record, turn, holder) {
  if (holder.firstChild) { clear(holder); return; }
  const group = await api.group(record.id);
  const peers = el("div", { class: "step-peers", "data-testid": "step-peers" },
    el("div", { class: "muted" }, `step group ${turn.step_group}: turns of this group's episodes from the same state (anchor), with their return from that turn on`));
  for (const other of group) {
    const rtg = returnsToGo(other);
    for (const t of other.turns) {
      if (t.step_group !== turn.step_group) continue;
      const me = other.id === record.id && t.t === turn.t;
      peers.appendChild(el("div", { class: "peer" + (me ? " muted" : ""), "data-episode": other.id,
                                    onclick: () => { location.hash = "episode=" + other.id; } },
        `episode ${other.id} turn ${t.t}: ${t.action}  →  return-to-go ${fmt(rtg[t.t], 3)}, advantage ${fmt(t.advantage, 4)}, episode return ${fmt(other.return, 2)}`,
        me ? " (this turn)" : ""));
    }
  }
  holder.appendChild(peers);
}

function renderEpisode(record) {
  const detail = clear($("detail"));
  const scale = Math.max(1e-9, ...record.turns.map((t) => Math.abs(t.advantage || 0)));
  const rtg = returnsToGo(record);
  detail.appendChild(el("div", { class: "card", "data-testid": "episode", "data-id": record.id },
    el("h2", {}, record.task || record.task_id),
    el("div", { class: "meta" },
      el("span", {}, "outcome ", el("b", { class: record.success ? "ok" : "ko", "data-testid": "outcome" },
        record.failed ? failedText(record) : record.success ? "success" : "failure")),
      el("span", {}, "return ", el("b", {}, fmt(record.return, 3))),
      el("span", {}, "turns ", el("b", {}, record.length)),
      el("span", {}, "iteration ", el("b", {}, record.iteration === null ? "eval" : record.iteration)),
      el("span", {}, "env ", el("b", {}, record.env_id)),
      el("span", {}, "task ", el("b", {}, record.task_id)),
      record.task_type ? el("span", {}, "type ", el("b", {}, record.task_type)) : null,
      el("span", {}, "agent ", el("b", {}, record.agent_id)),
      el("span", {}, "policy ", el("b", {}, record.policy)),
      el("span", {}, "credit ", el("b", {}, (record.shapers || []).join(" + ") + (record.estimator ? " → " + record.estimator : ""))),
      record.error ? el("span", { class: "ko" }, "error: " + record.error) : null),
    el("div", { style: "margin-top:6px" },
      el("button", { "data-testid": "open-group", onclick: () => { location.hash = "group=" + record.id; } }, "group view (episodes of this task side by side)"))));
  for (const turn of record.turns) {
    const peers = el("div", {});
    const shaped = Object.entries(turn.shaper_rewards || {});
    const numbers = el("table", {},
      el("tr", {}, el("td", {}, "env reward"), el("td", { class: "v" }, fmt(turn.reward, 4))),
      shaped.map(([name, value]) => el("tr", { "data-shaper": name }, el("td", {}, "  " + name), el("td", { class: "v" }, fmt(value, 4)))),
      el("tr", {}, el("td", {}, "turn reward"), el("td", { class: "v" }, fmt(turn.turn_reward, 4))),
      el("tr", {}, el("td", {}, "return-to-go"), el("td", { class: "v" }, fmt(rtg[turn.t], 4))),
      turn.progress !== null && turn.progress !== undefined
        ? el("tr", {}, el("td", {}, "progress (cost-to-go)"), el("td", { class: "v" }, `${turn.progress} (${turn.cost_to_go} → ${turn.next_cost_to_go})`))
        : null);
    detail.appendChild(el("div", { class: "card turn", "data-testid": "turn", "data-t": turn.t },
      el("div", { class: "t" }, "t" + turn.t),
      el("div", {},
        el("pre", { class: "observation" }, turn.observation),
        el("div", { class: "action" + (turn.valid ? "" : " invalid") }, "> " + turn.action, turn.valid ? "" : "  (invalid)"),
        turn.response && turn.response !== turn.action ? el("div", { class: "response" }, "response: ", el("span", {}, turn.response)) : null,
        creditDetails(turn.credit || {}),
        turn.step_group !== null && turn.step_group !== undefined
          ? el("div", { class: "details" },
              el("button", { "data-testid": "step-group", onclick: () => toggleStepPeers(record, turn, peers) },
                `step group: ${turn.step_group_size} turn(s) from this state`), peers)
          : null),
      el("div", { class: "numbers" },
        el("div", {}, "advantage ", el("span", { class: "advantage-value", "data-value": exact(turn.advantage) }, fmt(turn.advantage, 4))),
        advantageBar(turn.advantage, scale),
        numbers)));
  }
  if (record.final_observation) {
    detail.appendChild(el("div", { class: "card" }, el("div", { class: "muted" }, "final observation"),
      el("pre", {}, record.final_observation)));
  }
}

// ---- a group side by side ---------------------------------------------------------------------
function renderGroup(records, focusId) {
  const detail = clear($("detail"));
  if (!records.length) { detail.appendChild(el("div", { class: "card" }, "no episodes")); return; }
  const first = records[0];
  const turns = Math.max(...records.map((r) => r.turns.length));
  const scale = Math.max(1e-9, ...records.flatMap((r) => r.turns.map((t) => Math.abs(t.advantage || 0))));
  detail.appendChild(el("div", { class: "card", "data-testid": "group", "data-size": records.length },
    el("h2", {}, first.task || first.task_id),
    el("div", { class: "meta" },
      el("span", {}, el("b", {}, records.length), " episodes of task ", el("b", {}, first.task_id)),
      el("span", {}, "iteration ", el("b", {}, first.iteration === null ? "eval" : first.iteration)),
      el("span", {}, "success ", el("b", {}, records.filter((r) => r.success).length + "/" + records.length)),
      el("span", {}, "credit ", el("b", {}, (first.shapers || []).join(" + ") + (first.estimator ? " → " + first.estimator : ""))),
      el("span", { class: "muted" }, "click a turn to outline the turns from the same state (its step group)"))));
  const grid = el("div", { class: "group-grid", style: `grid-template-columns: 40px repeat(${records.length}, minmax(150px, 1fr))` });
  grid.appendChild(el("div", { class: "cell empty" }));
  for (const r of records) {
    grid.appendChild(el("div", { class: "cell head group-episode" + (r.id === focusId ? " same-step" : ""), "data-id": r.id,
                                 onclick: () => { location.hash = "episode=" + r.id; } },
      el("b", { class: r.success ? "ok" : "ko" }, r.success ? "✓ " : "✗ "),
      `episode ${r.id}`, el("br", {}), `return ${fmt(r.return, 2)}, ${r.length} turns`,
      r.agent_id !== "agent" ? el("div", {}, r.agent_id) : null, r.policy !== "policy" ? el("div", {}, r.policy) : null));
  }
  const cells = [];
  for (let t = 0; t < turns; t++) {
    grid.appendChild(el("div", { class: "rowlabel" }, "t" + t));
    for (const r of records) {
      const turn = r.turns[t];
      if (!turn) { grid.appendChild(el("div", { class: "cell empty" })); continue; }
      const cell = el("div", { class: "cell group-turn", "data-episode": r.id, "data-t": t, "data-step-group": exact(turn.step_group) },
        el("div", { class: "act" + (turn.valid ? "" : " ko") }, turn.action),
        el("div", {}, "A ", el("span", { class: "advantage-value", "data-value": exact(turn.advantage) }, fmt(turn.advantage, 3)),
          `  r ${fmt(turn.turn_reward, 2)}`),
        advantageBar(turn.advantage, scale));
      cell.addEventListener("click", () => {
        for (const c of cells) c.classList.toggle("same-step", turn.step_group !== null && c.getAttribute("data-step-group") === String(turn.step_group));
      });
      cells.push(cell);
      grid.appendChild(cell);
    }
  }
  detail.appendChild(grid);
}

// ---- learning curves (plain SVG) ---------------------------------------------------------------
const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function chart(rows, key) {
  const points = rows.filter((r) => typeof r[key] === "number" && typeof r.iteration === "number").map((r) => [r.iteration, r[key]]);
  const W = 380, H = 200, L = 48, R = 10, T = 10, B = 28;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, "data-metric": key, "data-points": points.length });
  if (!points.length) return root;
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  let [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  if (y0 === y1) { y0 -= 0.5; y1 += 0.5; }
  const X = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const Y = (y) => H - B - ((y - y0) / (y1 - y0)) * (H - T - B);
  root.appendChild(svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#8a93a6" }));
  root.appendChild(svg("line", { x1: L, y1: T, x2: L, y2: H - B, stroke: "#8a93a6" }));
  for (const v of [y0, (y0 + y1) / 2, y1]) {
    root.appendChild(svg("text", { x: L - 4, y: Y(v) + 4, "text-anchor": "end", "font-size": 10, fill: "#5b6475" }, fmt(v, 2)));
  }
  for (const v of [x0, x1]) {
    root.appendChild(svg("text", { x: X(v), y: H - B + 14, "text-anchor": "middle", "font-size": 10, fill: "#5b6475" }, fmt(v, 0)));
  }
  root.appendChild(svg("text", { x: (L + W - R) / 2, y: H - 2, "text-anchor": "middle", "font-size": 10, fill: "#5b6475" }, "iteration"));
  root.appendChild(svg("polyline", { points: points.map(([x, y]) => `${X(x)},${Y(y)}`).join(" "), fill: "none", stroke: "#3b6fd8", "stroke-width": 1.5 }));
  for (const [x, y] of points) root.appendChild(svg("circle", { cx: X(x), cy: Y(y), r: 2.2, fill: "#3b6fd8" }));
  return root;
}

let metricRows = null;
async function renderCurves() {
  const detail = clear($("detail"));
  if (metricRows === null) metricRows = await api.metrics();
  const keys = [...new Set(metricRows.flatMap((r) => Object.keys(r).filter((k) => typeof r[k] === "number" && k !== "iteration")))].sort();
  if (!keys.length) { detail.appendChild(el("div", { class: "card" }, "no metrics.jsonl next to these episodes")); return; }
  // success and return first (training, then held-out), then the loss: what a first look wants
  const preferred = [/^rollout\/success$/, /^eval\/.*\/success$/, /^rollout\/return$/, /loss$/];
  const chosen = new Set(preferred.flatMap((re) => keys.filter((k) => re.test(k))).slice(0, 6));
  const picker = el("div", { class: "card metric-picker" });
  const charts = el("div", { id: "curves" });
  function draw() {
    clear(charts);
    for (const key of keys.filter((k) => chosen.has(k))) {
      charts.appendChild(el("div", { class: "card chart", "data-testid": "chart" }, el("h3", {}, key), chart(metricRows, key)));
    }
  }
  for (const key of keys) {
    const box = el("input", { type: "checkbox", "data-metric": key });
    box.checked = chosen.has(key);
    box.addEventListener("change", () => { box.checked ? chosen.add(key) : chosen.delete(key); draw(); });
    picker.appendChild(el("label", {}, box, " " + key));
  }
  detail.appendChild(picker);
  detail.appendChild(charts);
  draw();
}

// ---- routing: #episode=ID, #group=ID, #curves ---------------------------------------------------
async function route() {
  const hash = location.hash.replace(/^#/, "");
  const [view, value] = hash.split("=");
  $("nav-episodes").classList.toggle("active", view !== "curves");
  $("nav-curves").classList.toggle("active", view === "curves");
  $("list-panel").classList.toggle("hidden", view === "curves");
  try {
    if (view === "episode") {
      state.selected = Number(value);
      renderEpisode(await api.episode(state.selected));
    } else if (view === "group") {
      state.selected = Number(value);
      renderGroup(await api.group(state.selected), state.selected);
    } else if (view === "curves") {
      await renderCurves();
    } else {
      clear($("detail")).appendChild(el("div", { class: "card muted" }, "pick an episode on the left"));
    }
    for (const row of document.querySelectorAll("tr.episode-row")) {
      row.classList.toggle("selected", Number(row.getAttribute("data-id")) === state.selected);
    }
  } catch (error) { showError(error); }
}

async function start() {
  for (const key of ["iteration", "outcome", "task_type", "env", "agent", "policy"]) {
    $("f-" + key).addEventListener("change", () => { state.filters = readFilters(); state.offset = 0; loadList().catch(showError); });
  }
  let timer = null;
  $("f-q").addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => { state.filters = readFilters(); state.offset = 0; loadList().catch(showError); }, 200);
  });
  $("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); loadList().catch(showError); });
  $("next").addEventListener("click", () => { state.offset += PAGE; loadList().catch(showError); });
  $("refresh").classList.toggle("hidden", api.exported);
  $("refresh").addEventListener("click", () => { loadOverview().then(loadList).catch(showError); });
  window.addEventListener("hashchange", route);
  try {
    await loadOverview();
    await loadList();
  } catch (error) { showError(error); }
  await route();
  document.body.setAttribute("data-ready", "1");
}

start();
