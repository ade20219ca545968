// The live page: polls /api/state, draws the plot, turns the head, shows the status; the controls post
// to /api/recenter and /api/set (the control socket's own handlers and ranges). The camera preview is
// an MJPEG stream the daemon encodes only while this page reads it.
import { createHead } from "./head.js";
import { drawPlot, WINDOW_S } from "./plot.js";

const POLL_MS = 100;
const $ = (id) => document.getElementById(id);
let since = -1, samples = [], head = null, sliders = [], editing = null, lastFilter = {};

function say(text, error = false) {
  const el = $("message");
  el.textContent = text;
  el.className = error ? "error" : "";
}

async function post(path, body) {
  try {
    const r = await fetch(path, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    const reply = await r.json();
    if (!reply.ok) say(reply.error, true);
    return reply;
  } catch (e) {
    say(`no answer from the daemon (${e.message})`, true);
    return { ok: false };
  }
}

// ---------------------------------------------------------------------------------------- sliders
const toValue = (s, pos) => {
  const f = pos / 1000;
  const v = s.log ? s.lo * Math.pow(s.hi / s.lo, f) : s.lo + (s.hi - s.lo) * f;
  return Number(v.toPrecision(4));
};
const toPos = (s, v) => {
  const f = s.log ? Math.log(Math.max(v, s.lo) / s.lo) / Math.log(s.hi / s.lo) : (v - s.lo) / (s.hi - s.lo);
  return Math.round(1000 * Math.min(1, Math.max(0, f)));
};

let setCount = 0;  // replies may arrive out of order: only the latest request's reply speaks

async function setParam(name, value) {
  const mine = ++setCount;
  const reply = await post("/api/set", { params: { [name]: value } });
  if (mine !== setCount) return;
  if (reply.ok) {
    lastFilter = reply.params;
    say(`${name} = ${reply.params[name]}`);
  }
  showFilter(lastFilter, true);
}

function buildSliders(specs) {
  const form = $("sliders");
  const kindLabel = document.createElement("label");
  kindLabel.textContent = "kind";
  const kind = document.createElement("select");
  kind.id = "filter-kind";
  for (const k of ["kalman", "none"]) kind.add(new Option(k, k));
  kind.addEventListener("change", () => setParam("kind", kind.value));
  form.append(kindLabel, kind, document.createElement("span"));
  for (const s of specs) {
    const label = document.createElement("label");
    label.textContent = s.name;
    label.title = `${s.help}; accepted ${s.lo_open ? "(" : "["}${s.range[0]}, ${s.range[1]}]`;
    label.htmlFor = `slider-${s.name}`;
    const range = document.createElement("input");
    Object.assign(range, { type: "range", min: 0, max: 1000, step: 1, id: `slider-${s.name}` });
    range.dataset.param = s.name;
    const number = document.createElement("input");
    Object.assign(number, { type: "number", step: "any", id: `value-${s.name}` });
    number.dataset.param = s.name;
    range.addEventListener("input", () => { editing = s.name; number.value = toValue(s, +range.value); });
    range.addEventListener("change", () => { editing = null; setParam(s.name, toValue(s, +range.value)); });
    number.addEventListener("focus", () => { editing = s.name; });
    number.addEventListener("change", () => {
      editing = null;
      const v = Number(number.value);
      if (number.value.trim() === "" || !isFinite(v)) say(`${s.name}: enter a number`, true);
      else setParam(s.name, v);
    });
    form.append(label, range, number);
    sliders.push({ spec: s, range, number });
  }
}

function showFilter(filter, force = false) {
  for (const { spec, range, number } of sliders) {
    if (!force && editing === spec.name) continue;
    const v = filter[spec.name];
    if (v === undefined) continue;
    range.value = toPos(spec, v);
    if (document.activeElement !== number || force) number.value = v;
  }
  const kind = $("filter-kind");
  if (kind && filter.kind && document.activeElement !== kind) kind.value = filter.kind;
}

// ------------------------------------------------------------------------------------------ state
const deg = (v) => (v >= 0 ? "+" : "") + v.toFixed(1);

function showStatus(st) {
  const badge = $("tracking");
  badge.textContent = st.tracking;
  badge.className = "badge " + (st.tracking === "lost" ? "lost" : st.tracking.includes("predicting")
    ? "predicting" : st.tracking.startsWith("face") ? "ok" : "");
  const rows = [
    ["frames per second", st.fps.toFixed(1)],
    ["capture -> publish", `${st.latency_median_ms.toFixed(1)} ms median, ${st.latency_p99_ms.toFixed(1)} ms p99`],
    ["CPU (100 = one core)", `${st.cpu_percent.toFixed(1)} %`],
    ["model", st.model], ["detector", st.detector], ["faces in view", st.faces],
    ["tracking", st.tracking + (st.recentered ? ", recentered" : "")],
    ["source", st.source], ["frames / drops", `${st.frames} / ${st.drops}`],
    ["preview", `${st.preview.encodes} frames encoded`],
  ];
  const body = $("status").tBodies[0];
  body.replaceChildren(...rows.map(([k, v]) => {
    const tr = document.createElement("tr");
    const a = document.createElement("td"), b = document.createElement("td");
    a.textContent = k; b.textContent = v;
    tr.append(a, b);
    return tr;
  }));
  const mirror = $("mirror");
  if (document.activeElement !== mirror) mirror.checked = !!st.mirror;
  lastFilter = st.filter;
  showFilter(st.filter);
}

async function poll() {
  try {
    const r = await fetch(`/api/state?since=${since}`, { cache: "no-store" });
    const state = await r.json();
    if (!state.ok) throw new Error(state.error);
    if (state.reset) samples = [];
    samples.push(...state.samples);
    since = state.seq;
    if (samples.length) {
      const tEnd = samples[samples.length - 1][1];
      let cut = 0;
      while (cut < samples.length && samples[cut][1] < tEnd - WINDOW_S) cut++;
      if (cut) samples.splice(0, cut);
      const last = samples[samples.length - 1];
      ["yaw", "pitch", "roll"].forEach((n, i) => { $(n).textContent = deg(last[3][i]); });
      document.body.dataset.seq = String(last[0]);
      document.body.dataset.yaw = String(last[3][0]);
    }
    $("pos").textContent = state.pos ? state.pos.map((v) => (v * 100).toFixed(1)).join(", ") + " cm" : "unknown";
    drawPlot($("plot"), samples);
    if (head) head.setQuaternion(state.q);
    showStatus(state.status);
  } catch (e) {
    say(`no state from the daemon (${e.message})`, true);
  }
  setTimeout(poll, POLL_MS);
}

// ---------------------------------------------------------------------------------------- preview
function startPreview() {
  const img = $("preview");
  img.addEventListener("error", () => setTimeout(() => { img.src = `/stream.mjpg?t=${Date.now()}`; }, 2000));
  img.src = "/stream.mjpg";
}

async function main() {
  head = createHead($("head3d"));
  document.body.dataset.head = head.kind;
  $("recenter").addEventListener("click", async () => {
    const reply = await post("/api/recenter", {});
    if (reply.ok) say("recentered: the current pose is straight ahead now");
  });
  $("uncenter").addEventListener("click", async () => {
    const reply = await post("/api/recenter", { reset: true });
    if (reply.ok) say("back to facing the camera");
  });
  $("mirror").addEventListener("change", async (ev) => {
    const reply = await post("/api/set", { params: { mirror: ev.target.checked } });
    if (reply.ok) say(`mirror ${reply.params.mirror ? "on" : "off"}`);
  });
  try {
    const r = await fetch("/api/controls");
    buildSliders((await r.json()).sliders);
  } catch (e) {
    say(`no controls (${e.message})`, true);
  }
  poll();
  if (document.readyState === "complete") startPreview();
  else window.addEventListener("load", startPreview);
}

main();
