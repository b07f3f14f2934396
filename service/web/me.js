// The end user's memory page. The app links here as /me#token=<user token>: a fragment never reaches the
// server or its logs. The token moves to sessionStorage and out of the address bar at once.
import { ApiError, call, download } from "/web/api.js";
import { el, notify, show } from "/web/dom.js";

const TOKEN = "heedful.userToken";
const PAGE = 200;
const STATUS_ORDER = { active: 0, disabled: 1, superseded: 2 };

const token = takeToken();
const userId = token ? claimedUser(token) : null;
const userPath = userId ? `/v1/users/${encodeURIComponent(userId)}` : null;

function takeToken() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const fresh = fragment.get("token");
  if (fresh) {
    sessionStorage.setItem(TOKEN, fresh);
    // Out of the address bar and the history: not bookmarked, copied along or read over a shoulder.
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem(TOKEN);
}

function claimedUser(jwt) {
  // Read, not verified: the server checks the token on every call; the page only needs the id for /v1/users/{id}.
  try {
    const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(part), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes)).sub ?? null;
  } catch {
    return null;
  }
}

async function load() {
  const [state, memories] = await Promise.all([call(userPath, token), listAll()]);
  renderState(state);
  renderMemories(memories);
}

async function listAll() {
  const all = [];
  let cursor = null;
  do {
    const query = new URLSearchParams({ limit: String(PAGE) });
    if (cursor) query.set("cursor", cursor);
    const page = await call(`/v1/memories?${query}`, token);
    all.push(...page.memories);
    cursor = page.next_cursor;
  } while (cursor);
  return all.sort((a, b) => STATUS_ORDER[a.status] - STATUS_ORDER[b.status] || b.created_at.localeCompare(a.created_at));
}

function renderState(state) {
  document.getElementById("controls").hidden = false;
  document.getElementById("pause").hidden = state.paused;
  document.getElementById("resume").hidden = !state.paused;
  const held = `${state.memories} ${state.memories === 1 ? "memory" : "memories"} (${state.active_memories} in use), from ${state.conversations} ${state.conversations === 1 ? "conversation" : "conversations"}.`;
  document.getElementById("state").dataset.paused = String(state.paused);
  show("state", state.paused ? `Remembering is paused: new conversations are not stored. ${held}` : held);
}

function renderMemories(memories) {
  const list = document.getElementById("memories");
  if (memories.length === 0) {
    list.replaceChildren(el("li", { class: "empty-state", text: "Nothing is remembered about you." }));
    return;
  }
  list.replaceChildren(...memories.map(memoryItem));
}

function memoryItem(m) {
  const badge = m.status === "active" ? null : el("span", { class: `badge ${m.status}`, text: m.status });
  return el("li", { class: "memory", dataset: { id: m.id, status: m.status } },
    el("div", { class: "memory-head" },
      el("div", {},
        el("p", { class: "memory-text", text: m.text }),
        el("p", { class: "memory-meta" }, `${m.kind} · since ${new Date(m.created_at).toLocaleDateString()} `, badge)),
      el("div", { class: "actions" },
        toggleButton(m),
        el("button", { type: "button", class: "danger delete", text: "Delete", "aria-label": `Delete: ${m.text}`, onclick: () => remove(m) }))),
    el("ul", { class: "evidence", "aria-label": "Your words" },
      ...m.evidence.map((e) => el("li", {},
        el("blockquote", { class: "quote", text: e.quote }),
        el("div", { class: "source", text: `from conversation ${e.conversation_id}` })))));
}

function toggleButton(m) {
  if (m.status === "superseded") return null; // replaced by a newer memory; only deleting applies
  const next = m.status === "active" ? "disabled" : "active";
  const label = next === "disabled" ? "Disable" : "Enable";
  return el("button", { type: "button", class: "toggle", text: label, onclick: () => act(async () => {
    await call(`/v1/memories/${encodeURIComponent(m.id)}`, token, { method: "PATCH", body: { status: next } });
    await load();
  }, next === "disabled" ? "Disabled: it will not be used." : "Enabled again.") });
}

function remove(m) {
  return act(async () => {
    await call(`/v1/memories/${encodeURIComponent(m.id)}`, token, { method: "DELETE" });
    await load();
  }, "Deleted.");
}

async function exportAll() {
  const blob = await download("/v1/memories/export", token);
  const link = el("a", { href: URL.createObjectURL(blob), download: "memories.json", hidden: "" });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

async function eraseEverything() {
  const report = await call("/v1/memories", token, { method: "DELETE" });
  document.getElementById("confirm").hidden = true;
  document.getElementById("controls").hidden = true; // the user no longer exists for this app
  delete document.getElementById("state").dataset.paused;
  renderMemories([]);
  show("state", `Deleted ${report.memories_deleted} ${report.memories_deleted === 1 ? "memory" : "memories"} and the conversations they came from.`);
}

async function act(work, done) {
  const buttons = [...document.querySelectorAll("button")];
  buttons.forEach((b) => { b.disabled = true; });
  try {
    await work();
    if (done) notify(done, "done");
  } catch (error) {
    fail(error);
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}

function fail(error) {
  if (error instanceof ApiError && error.status === 401) {
    sessionStorage.removeItem(TOKEN);
    return lockout("This link has expired. Open your memories again from the app.");
  }
  notify(error instanceof ApiError ? error.message : "Could not reach the service; try again.", "error");
}

function lockout(message) {
  document.getElementById("controls").hidden = true;
  delete document.getElementById("state").dataset.paused;
  document.getElementById("memories").replaceChildren();
  show("state", "");
  notify(message, "error");
}

document.getElementById("pause").addEventListener("click", () =>
  act(async () => renderState(await call(`${userPath}/pause`, token, { method: "POST" })), "Paused."));
document.getElementById("resume").addEventListener("click", () =>
  act(async () => renderState(await call(`${userPath}/resume`, token, { method: "POST" })), "Remembering again."));
document.getElementById("export").addEventListener("click", () => act(exportAll, "Exported as memories.json."));
document.getElementById("delete-all").addEventListener("click", () => {
  document.getElementById("confirm").hidden = false;
  document.getElementById("confirm-delete-all").focus();
});
document.getElementById("cancel-delete-all").addEventListener("click", () => {
  document.getElementById("confirm").hidden = true;
});
document.getElementById("confirm-delete-all").addEventListener("click", () => act(eraseEverything, "Everything was deleted."));

// A fresh link opened in this same tab only changes the fragment: start over with the new token.
window.addEventListener("hashchange", () => {
  if (new URLSearchParams(location.hash.slice(1)).has("token")) {
    takeToken();
    location.reload();
  }
});

if (!token || !userId) {
  lockout("Open this page from the app you use: it gives you a private link to your memories.");
} else {
  notify("Loading…");
  load().then(() => notify(""), (error) => {
    // 404: the app never sent this user's conversations, or everything was erased: nothing is held
    if (error instanceof ApiError && error.status === 404) {
      renderMemories([]);
      return notify("");
    }
    fail(error);
  });
}
