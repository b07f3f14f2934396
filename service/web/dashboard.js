// The operations dashboard: polls /v1/ops/stats with the operator's app key and shows the numbers.
// Rates are computed here, from counter deltas between polls, over the last minute of samples.
import { ApiError, call } from "/web/api.js";
import { el, notify, show } from "/web/dom.js";

const KEY = "heedful.opsKey";
const POLL_MS = 5000;
// A minute of samples: steadier than one poll interval, yet a burst still shows within seconds.
const WINDOW_MS = 60_000;

let timer = undefined;
let busy = false;
let samples = []; // {t, ingested, processed, errors}, oldest first

function connect(key) {
  sessionStorage.setItem(KEY, key);
  document.getElementById("key-form").hidden = true;
  document.getElementById("connected").hidden = false;
  notify("Connecting…");
  poll();
}

function forget(message, kind = "error") {
  clearTimeout(timer);
  sessionStorage.removeItem(KEY);
  samples = [];
  document.getElementById("key-form").hidden = false;
  document.getElementById("connected").hidden = true;
  notify(message, kind);
}

async function poll() {
  clearTimeout(timer);
  const key = sessionStorage.getItem(KEY);
  if (!key || busy) return;
  if (document.hidden) {
    timer = setTimeout(poll, POLL_MS); // nobody is looking: ask again later
    return;
  }
  busy = true;
  try {
    render(await call("/v1/ops/stats", key));
    notify(`Live: updates every ${POLL_MS / 1000} s.`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return forget(`The key was refused: ${error.message}`);
    if (error instanceof ApiError && error.status === 403) return forget("That is a user token: the dashboard needs an app API key.");
    notify(`Could not update: ${error.message}`, "error");
  } finally {
    busy = false;
  }
  timer = setTimeout(poll, POLL_MS);
}

function render(stats) {
  const t = Date.parse(stats.generated_at);
  const processed = Object.values(stats.ingestion.conversations_processed).reduce((a, b) => a + b, 0);
  record({ t, ingested: stats.ingestion.conversations_ingested, processed, errors: stats.errors });

  show("updated-at", new Date(t).toLocaleTimeString());
  show("ingest-rate", rate("ingested"));
  show("process-rate", rate("processed"));
  show("ingested-total", count(stats.ingestion.conversations_ingested));
  show("stream-length", count(stats.stream.length));
  show("lag", stats.stream.lag === null ? "unknown" : count(stats.stream.lag));
  show("pending", stats.stream.pending === null ? "no group" : count(stats.stream.pending));
  show("dead-letter-count", count(stats.stream.dead_letters));

  const v = stats.verifier;
  show("accept-rate", percent(v.accept_rate));
  show("verdicts", `${count(v.accepted)} accepted · ${count(v.refined)} refined · ${count(v.dropped)} dropped`);
  show("contradicted", `${count(v.contradicted)} flipped preferences sent back (${count(v.contradicted_model_passed)} the model passed)`);

  const s = stats.selector;
  show("selection-rate", percent(s.selection_rate));
  show("selection-note", `${count(s.selected)} of ${count(s.considered)} kept · humans choose ~${percent(s.human_rate, 0)}`);
  document.getElementById("selection-fill").style.width = `${Math.min(s.selection_rate ?? 0, 1) * 100}%`;
  document.getElementById("human-mark").style.left = `${s.human_rate * 100}%`;

  fill("latency", 5, "no requests yet", stats.latency.map((r) =>
    el("tr", {}, el("td", { text: r.route }), el("td", { text: r.method }), el("td", { class: "num", text: count(r.requests) }),
      el("td", { class: "num", text: millis(r.p50_ms) }), el("td", { class: "num", text: millis(r.p95_ms) }))));

  fill("errors", 3, "no errors", Object.entries(stats.errors).map(([kind, total]) =>
    el("tr", {}, el("td", { text: kind }), el("td", { class: "num", text: count(total) }),
      el("td", { class: "num", text: errorsLately(kind) }))));

  // Conversation id and error only: the endpoint never sends whose conversation it was.
  fill("dead-letters", 3, "none", stats.dead_letter_entries.map((d) =>
    el("tr", {}, el("td", { text: new Date(d.at).toLocaleString() }), el("td", { text: d.conversation }),
      el("td", { class: "error-text", text: d.error }))));
}

function record(sample) {
  const last = samples.at(-1);
  // A counter that went down means a different process answered (a restart, another replica): start over.
  if (last && (sample.ingested < last.ingested || sample.processed < last.processed)) samples = [];
  samples.push(sample);
  // Keep exactly one sample at or before the window's start, so the window spans the whole minute.
  while (samples.length > 2 && sample.t - samples[1].t >= WINDOW_MS) samples.shift();
}

function rate(field) {
  if (samples.length < 2) return "—";
  const first = samples[0];
  const last = samples.at(-1);
  const seconds = (last.t - first.t) / 1000;
  if (seconds <= 0) return "—";
  const perSecond = (last[field] - first[field]) / seconds;
  return perSecond.toFixed(perSecond < 10 ? 2 : 1);
}

function errorsLately(kind) {
  if (samples.length < 2) return "—";
  return count((samples.at(-1).errors[kind] ?? 0) - (samples[0].errors[kind] ?? 0));
}

function fill(tableId, columns, emptyText, rows) {
  const body = document.querySelector(`#${tableId} tbody`);
  if (rows.length === 0) {
    body.replaceChildren(el("tr", { class: "empty" }, el("td", { colspan: String(columns), text: emptyText })));
  } else {
    body.replaceChildren(...rows);
  }
}

const count = (n) => n.toLocaleString("en-US");
const percent = (x, digits = 1) => (x === null ? "—" : `${(x * 100).toFixed(digits)}%`);

function millis(ms) {
  if (ms === null) return "—";
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  return `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
}

document.getElementById("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = document.getElementById("key");
  const key = input.value.trim();
  input.value = "";
  if (key) connect(key);
});
document.getElementById("refresh").addEventListener("click", () => poll());
document.getElementById("forget").addEventListener("click", () => forget("Key forgotten.", "info"));
document.addEventListener("visibilitychange", () => { if (!document.hidden) poll(); });

if (sessionStorage.getItem(KEY)) connect(sessionStorage.getItem(KEY));
