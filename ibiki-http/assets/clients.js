// The clients page: one row per client with its numbers, saved on blur or
// Enter, its endpoint (where its replies are also posted: set, paused,
// removed, and how forwarding to it goes) and its access keys (created,
// shown once, revoked); the "Add client" form; "Find a client", by the
// start of its id or by a number it owns, which narrows the table to what
// it found.

import { api, el, endpointState, seg, start } from "./api.js";

const PAGE = 50;
const PLACEHOLDER = "+1111, +2222, +3333";

const tbody = document.querySelector("#clients tbody");
const more = document.getElementById("clients-more");
// The table lists the clients whose id starts with `prefix` ("" for all),
// page by page from `after`.
let prefix = "";
let after = null;
let rowCount = 0;

// Endpoints: each row reads its client's endpoint when it comes into view,
// a few rows at a time, so a page of 50 clients never sends 50 requests at
// once (nor any for rows nobody scrolls to).
const ENDPOINT_READS = 4;
const waiting = [];
let reading = 0;
let forwarding = true;
const cellOf = new WeakMap();
const inView = "IntersectionObserver" in window
  ? new IntersectionObserver(
    (entries) => {
      for (const entry of entries) {
        if (!entry.isIntersecting) continue;
        inView.unobserve(entry.target);
        readSoon(cellOf.get(entry.target));
      }
    },
    { rootMargin: "100% 0px" },
  )
  : null;

start(() => {
  loadPage();
  more.addEventListener("click", loadPage);
  document.getElementById("add-form").addEventListener("submit", addClient);
  document.getElementById("find-form").addEventListener("submit", find);
  document.getElementById("find-clear").addEventListener("click", showAll);
});

async function loadPage() {
  const error = document.getElementById("clients-error");
  error.textContent = "";
  more.disabled = true;
  let query = `?limit=${PAGE}`;
  if (prefix) query += `&prefix=${seg(prefix)}`;
  if (after) query += `&after=${seg(after)}`;
  let page;
  try {
    page = await api(`/api/admin/clients${query}`);
  } catch (e) {
    if (e.status !== 401) error.textContent = `Clients could not be loaded: ${e.message}`;
    more.disabled = false;
    return null;
  }
  for (const client of page.clients) {
    if (!rowOf(client.userId)) tbody.append(row(client.userId, client.phoneNumbers));
  }
  if (page.next) after = page.next;
  more.hidden = page.clients.length < PAGE;
  more.disabled = false;
  document.getElementById("clients-empty").hidden = tbody.rows.length > 0 || prefix !== "";
  return page;
}

/** Starts the table over, listing the clients whose id starts with `from`. */
async function relist(from) {
  prefix = from;
  after = null;
  tbody.replaceChildren();
  const filter = document.getElementById("list-filter");
  filter.hidden = from === "";
  filter.textContent = from === "" ? "" : `Clients whose ID starts with “${from}”.`;
  document.getElementById("find-clear").hidden = from === "";
  return loadPage();
}

function showAll() {
  document.getElementById("find-query").value = "";
  document.getElementById("find-result").textContent = "";
  relist("");
}

/** A number's owner, or null when the text is no number (or nobody owns it). */
async function ownerOf(text) {
  if (!/^\+?[\d\s().-]{6,}$/.test(text)) return null;
  try {
    return await api(`/api/admin/routes/${seg(text)}`);
  } catch (e) {
    if (e.status === 422 || e.status === 400) return null;
    throw e;
  }
}

/** "Find a client": by a number it owns, else by the start of its id. */
async function find(event) {
  event.preventDefault();
  const text = document.getElementById("find-query").value.trim();
  const result = document.getElementById("find-result");
  result.dataset.state = "";
  if (!text) {
    showAll();
    return;
  }
  result.textContent = "Searching…";
  try {
    const route = await ownerOf(text);
    if (route && route.userId !== null) {
      await relist(route.userId);
      for (const tr of [...tbody.rows]) if (tr.dataset.userId !== route.userId) tr.remove();
      more.hidden = true;
      document.getElementById("list-filter").textContent = `The owner of ${route.phoneNumber}.`;
      result.replaceChildren(
        el("strong", { text: route.phoneNumber }),
        " is assigned to ",
        el("a", { href: `/inbox/${seg(route.userId)}`, text: route.userId }),
        ".",
      );
      return;
    }
    const page = await relist(text);
    const n = page ? page.clients.length : 0;
    const unowned = route ? [el("strong", { text: route.phoneNumber }), " is not assigned: its replies are held. "] : [];
    const found = n === 0
      ? `No client's ID starts with “${text}”.`
      : `${n}${n === PAGE ? "+" : ""} client${n === 1 ? "" : "s"} whose ID starts with “${text}”.`;
    result.replaceChildren(...unowned, found);
  } catch (e) {
    result.dataset.state = "error";
    result.textContent = e.status === 401 ? "Sign in again." : e.message;
  }
}

function rowOf(userId) {
  return [...tbody.rows].find((r) => r.dataset.userId === userId);
}

/**
 * A client's row: its id, the numbers field with its state, its endpoint,
 * its keys, the inbox link.
 */
function row(userId, numbers) {
  rowCount += 1;
  const id = `numbers-${rowCount}`;
  const input = el("input", {
    id,
    class: "numbers",
    type: "text",
    value: numbers.join(", "),
    placeholder: PLACEHOLDER,
    "aria-label": `Assigned numbers for ${userId}`,
    "aria-describedby": `${id}-status ${id}-problems`,
    autocomplete: "off",
    spellcheck: "false",
  });
  const status = el("div", { id: `${id}-status`, class: "status", "aria-live": "polite" });
  const problems = el("ul", { id: `${id}-problems`, class: "problems", hidden: true });
  const field = { userId, input, status, problems, saved: input.value, saving: null, tried: null };
  // Leaving the field saves a change once; Enter saves again, e.g. after a
  // store failure.
  input.addEventListener("blur", () => {
    if (input.value !== field.tried) save(field);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      save(field, true);
    } else if (event.key === "Escape" && !field.saving) {
      input.value = field.saved;
      clearState(field);
    }
  });
  const tr = el(
    "tr",
    {},
    el("th", { scope: "row", class: "client", id: `${id}-client`, text: userId }),
    el("td", { class: "field" }, input, status, problems),
    endpointCell(userId, id),
    keysCell(userId),
    el("td", { class: "open" }, el("a", { href: `/inbox/${seg(userId)}`, text: "Inbox" })),
  );
  tr.dataset.userId = userId;
  return tr;
}

function clearState(field) {
  field.status.textContent = "";
  field.status.dataset.state = "";
  field.problems.hidden = true;
  field.problems.replaceChildren();
  field.input.removeAttribute("aria-invalid");
}

/** Saves the field's text as the client's whole set, unless unchanged. */
async function save(field, again = false) {
  const text = field.input.value;
  if (text === field.saving || (text === field.saved && !again)) return;
  field.saving = text;
  field.tried = text;
  clearState(field);
  setState(field, "saving", "Saving…");
  try {
    const answer = await api("/api/admin/update-phone-numbers", {
      method: "POST",
      body: { userId: field.userId, phoneNumbers: text },
    });
    const shown = answer.phoneNumbers.join(", ");
    field.saved = shown;
    // The operator may have typed on while it saved: keep that text.
    if (field.input.value === text) field.input.value = shown;
    setState(field, "saved", savedMessage(answer));
  } catch (e) {
    showError(field, e);
  } finally {
    field.saving = null;
  }
}

function savedMessage(answer) {
  const n = answer.count;
  let message = n === 0
    ? "Saved: no numbers left (the client leaves this list when it reloads)"
    : `Saved: ${n} number${n === 1 ? "" : "s"}`;
  if (answer.released > 0) {
    const r = answer.released;
    message += `, ${r} held repl${r === 1 ? "y" : "ies"} released to the inbox`;
  }
  return `${message}.`;
}

function setState(field, state, text) {
  field.status.dataset.state = state;
  field.status.textContent = text;
}

/** An error next to the field: each bad entry, each conflict, or the message. */
function showError(field, e) {
  if (e.status === 401) {
    setState(field, "error", "Not saved: sign in again.");
    return;
  }
  const body = e.body || {};
  const items = [];
  if (Array.isArray(body.invalid)) {
    setState(field, "error", "Not saved: fix these entries. Nothing was changed.");
    for (const entry of body.invalid) {
      const what = entry.input === "" ? `Entry ${entry.index + 1} is empty` : `“${entry.input}”`;
      items.push(el("li", {}, el("strong", { text: what }), ` ${entry.reason}`));
    }
  } else if (Array.isArray(body.conflicts)) {
    setState(field, "error", "Not saved: another client owns these numbers. Nothing was changed.");
    for (const conflict of body.conflicts) {
      items.push(
        el(
          "li",
          {},
          el("strong", { text: conflict.phoneNumber }),
          " is assigned to ",
          el("a", { href: `/inbox/${seg(conflict.userId)}`, text: conflict.userId }),
        ),
      );
    }
  } else {
    setState(field, "error", `Not saved: ${e.message}`);
  }
  if (items.length > 0) {
    field.problems.replaceChildren(...items);
    field.problems.hidden = false;
  }
  field.input.setAttribute("aria-invalid", "true");
}

/** "Add client": refuses an existing id (the update replaces a whole set). */
async function addClient(event) {
  event.preventDefault();
  const userInput = document.getElementById("add-user");
  const numbersInput = document.getElementById("add-numbers");
  const status = document.getElementById("add-status");
  const problems = document.getElementById("add-problems") || el("ul", { id: "add-problems", class: "problems" });
  status.after(problems);
  const field = { userId: userInput.value.trim(), input: numbersInput, status, problems };
  clearState(field);
  if (!field.userId) {
    setState(field, "error", "Enter a user ID.");
    userInput.focus();
    return;
  }
  if (!numbersInput.value.trim()) {
    setState(field, "error", "Enter at least one number.");
    numbersInput.focus();
    return;
  }
  setState(field, "saving", "Adding…");
  try {
    const existing = await api(`/api/admin/clients/${seg(field.userId)}/phone-numbers`);
    if (existing.phoneNumbers.length > 0) {
      setState(field, "error", `${field.userId} already exists: edit its numbers in the list.`);
      const input = rowOf(field.userId)?.querySelector("input");
      if (input) input.focus();
      return;
    }
    const answer = await api("/api/admin/update-phone-numbers", {
      method: "POST",
      body: { userId: field.userId, phoneNumbers: numbersInput.value },
    });
    const tr = row(answer.userId, answer.phoneNumbers);
    const before = [...tbody.rows].find((r) => r.dataset.userId > answer.userId);
    tbody.insertBefore(tr, before || null);
    tr.classList.add("fresh");
    document.getElementById("clients-empty").hidden = true;
    setState(field, "saved", `Added ${answer.userId}. ${savedMessage(answer)}`);
    userInput.value = "";
    numbersInput.value = "";
  } catch (e) {
    showError(field, e);
  }
}

/**
 * A client's access keys: "New key" shows a key once, with a copy button;
 * the list (loaded when opened) revokes them.
 */
function keysCell(userId) {
  const list = el("ul", { class: "keys", "aria-label": `Access keys of ${userId}` });
  const state = el("div", { class: "status", role: "status" });
  const details = el("details", { class: "keys" }, el("summary", { text: "Keys" }), list);
  details.addEventListener("toggle", () => {
    if (details.open) loadKeys(userId, list, state);
  });
  const reveal = el("div", { class: "key-reveal", hidden: true });
  const create = el("button", { type: "button", class: "secondary small", text: "New key" });
  create.addEventListener("click", () => newKey(userId, { create, reveal, details, list, state }));
  return el("td", { class: "keys-cell" }, create, reveal, state, details);
}

async function newKey(userId, { create, reveal, details, list, state }) {
  create.disabled = true;
  state.dataset.state = "";
  state.textContent = "Creating…";
  try {
    const key = await api(`/api/admin/clients/${seg(userId)}/keys`, { method: "POST" });
    const code = el("code", { class: "key", text: key.key });
    const copy = el("button", { type: "button", class: "secondary small", text: "Copy" });
    copy.addEventListener("click", () => copyText(key.key, code, copy));
    reveal.replaceChildren(
      el("p", { text: `New key for ${userId}. Copy it now: it is shown only once.` }),
      code,
      copy,
    );
    reveal.hidden = false;
    state.textContent = "";
    details.open = true;
    await loadKeys(userId, list, state);
  } catch (e) {
    state.dataset.state = "error";
    state.textContent = e.status === 401 ? "Sign in again." : `No key created: ${e.message}`;
  } finally {
    create.disabled = false;
  }
}

/** Copies with the clipboard API; where it is refused, selects the text. */
async function copyText(text, code, button) {
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = "Copied";
  } catch (e) {
    getSelection().selectAllChildren(code);
    button.textContent = "Press Ctrl+C";
  }
}

async function loadKeys(userId, list, state) {
  try {
    const answer = await api(`/api/admin/clients/${seg(userId)}/keys`);
    list.replaceChildren(...answer.keys.map((key) => keyItem(userId, key, state)));
    if (answer.keys.length === 0) list.replaceChildren(el("li", { class: "hint", text: "No keys." }));
  } catch (e) {
    state.dataset.state = "error";
    state.textContent = e.status === 401 ? "Sign in again." : `Keys could not be loaded: ${e.message}`;
  }
}

function keyItem(userId, key, state) {
  const used = key.lastUsedAt ? `last used ${new Date(key.lastUsedAt).toLocaleString()}` : "never used";
  const revoke = el("button", { type: "button", class: "secondary small", text: "Revoke" });
  const item = el(
    "li",
    {},
    el("code", { text: `${key.prefix}…` }),
    el("span", { class: "hint", text: ` created ${new Date(key.createdAt).toLocaleString()}, ${used} ` }),
    revoke,
  );
  revoke.addEventListener("click", async () => {
    revoke.disabled = true;
    try {
      await api(`/api/admin/clients/${seg(userId)}/keys/${key.id}`, { method: "DELETE" });
      item.remove();
      state.dataset.state = "saved";
      state.textContent = `Revoked ${key.prefix}…: it opens nothing from now on.`;
    } catch (e) {
      revoke.disabled = false;
      state.dataset.state = "error";
      state.textContent = e.status === 401 ? "Sign in again." : `Not revoked: ${e.message}`;
    }
  });
  return item;
}

/**
 * A client's endpoint: the URL field with **Save endpoint** (Enter too;
 * an empty field removes the endpoint), how forwarding to it goes, its
 * deliveries, pausing, and the signing secret once, when it is created.
 */
function endpointCell(userId, rowId) {
  const id = `${rowId}-endpoint`;
  const input = el("input", {
    id,
    class: "endpoint-url",
    type: "url",
    placeholder: "https://example.com/sms",
    "aria-describedby": `${rowId}-client ${id}-state ${id}-status`,
    autocomplete: "off",
    spellcheck: "false",
  });
  const save = el("button", { type: "button", class: "secondary small", text: "Save endpoint" });
  const actions = el("span", { class: "endpoint-actions" });
  const state = el("div", { id: `${id}-state`, class: "endpoint-line hint" });
  const status = el("div", { id: `${id}-status`, class: "status", "aria-live": "polite" });
  const reveal = el("div", { class: "key-reveal", hidden: true });
  const td = el(
    "td",
    { class: "endpoint-cell" },
    el("label", { for: id, class: "cell-label", text: "Endpoint URL" }),
    input,
    el("div", { class: "endpoint-bar" }, save, actions),
    state,
    status,
    reveal,
  );
  // `read`: the endpoint was read (`endpoint` is it, or null for none);
  // `typed`: the field holds text not saved yet.
  const cell = { userId, td, input, save, actions, state, status, reveal, endpoint: null, read: false, saving: false, typed: false };
  cellOf.set(td, cell);
  save.addEventListener("click", () => saveEndpoint(cell));
  input.addEventListener("input", () => {
    cell.typed = true;
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      saveEndpoint(cell);
    } else if (event.key === "Escape" && !cell.saving) {
      input.value = cell.endpoint ? cell.endpoint.url : "";
      cell.typed = false;
      setState(cell, "", "");
      input.removeAttribute("aria-invalid");
    }
  });
  if (!forwarding) td.hidden = true;
  else if (inView) inView.observe(td);
  else readSoon(cell);
  return td;
}

function readSoon(cell) {
  waiting.push(cell);
  pump();
}

function pump() {
  while (forwarding && reading < ENDPOINT_READS && waiting.length > 0) {
    const cell = waiting.shift();
    if (!cell.td.isConnected) continue;
    reading += 1;
    readEndpoint(cell).finally(() => {
      reading -= 1;
      pump();
    });
  }
}

/** Reads the endpoint (404: none) and shows it; false when it could not. */
async function readEndpoint(cell) {
  let endpoint;
  try {
    endpoint = await api(`/api/admin/clients/${seg(cell.userId)}/endpoint`);
  } catch (e) {
    if (e.body.error === "forwarding_not_enabled") {
      noForwarding();
      return false;
    }
    if (e.status !== 404) {
      cell.state.textContent = e.status === 401 ? "Sign in again." : `The endpoint could not be read: ${e.message}`;
      return false;
    }
    endpoint = null;
  }
  showEndpoint(cell, endpoint);
  return true;
}

/** This server forwards nothing: no endpoint column. */
function noForwarding() {
  forwarding = false;
  waiting.length = 0;
  for (const node of document.querySelectorAll(".endpoint-col, #clients .endpoint-cell")) node.hidden = true;
}

/** The endpoint's URL in the field, and its state under it. */
function showEndpoint(cell, endpoint) {
  cell.endpoint = endpoint;
  cell.read = true;
  // Text typed and not saved yet stays.
  if (!cell.typed) cell.input.value = endpoint ? endpoint.url : "";
  if (!endpoint) {
    cell.state.replaceChildren("No endpoint.");
    cell.actions.replaceChildren();
    return;
  }
  const pause = el("button", { type: "button", class: "link", text: endpoint.enabled ? "Pause" : "Resume" });
  pause.addEventListener("click", () => setEnabled(cell, pause, !endpoint.enabled));
  cell.state.replaceChildren(endpointState(endpoint));
  cell.actions.replaceChildren(el("a", { href: `/clients/${seg(cell.userId)}/deliveries`, text: "Deliveries" }), pause);
}

/** Saves the field: PUT (the answer that creates it has the secret), or DELETE when empty. */
async function saveEndpoint(cell) {
  if (cell.saving) return;
  cell.saving = true;
  cell.save.disabled = true;
  cell.input.removeAttribute("aria-invalid");
  // Saved before its row was read: whether there is an endpoint (and
  // whether it is paused) decides what saving means. (Reading it fills an
  // untouched field.)
  if (!cell.read && !(await readEndpoint(cell))) {
    cell.saving = false;
    cell.save.disabled = false;
    return;
  }
  const url = cell.input.value.trim();
  if (url === "" && !cell.endpoint) {
    cell.saving = false;
    cell.save.disabled = false;
    setState(cell, "error", "Enter the URL the client's replies are posted to.");
    cell.input.setAttribute("aria-invalid", "true");
    return;
  }
  setState(cell, "saving", "Saving…");
  try {
    if (url === "") {
      await api(`/api/admin/clients/${seg(cell.userId)}/endpoint`, { method: "DELETE" });
      cell.typed = false;
      cell.reveal.hidden = true;
      showEndpoint(cell, null);
      setState(cell, "saved", "Endpoint removed: replies are no longer forwarded (they stay in the inbox).");
      return;
    }
    const enabled = cell.endpoint ? cell.endpoint.enabled : true;
    const answer = await api(`/api/admin/clients/${seg(cell.userId)}/endpoint`, {
      method: "PUT",
      body: { url, enabled },
    });
    if (cell.input.value.trim() === url) {
      cell.input.value = answer.url;
      cell.typed = false;
    }
    if (answer.secret) {
      showSecret(cell, answer.secret);
      setState(cell, "saved", "Endpoint created: each new reply is posted there.");
    } else {
      setState(cell, "saved", "Endpoint saved.");
    }
  } catch (e) {
    setState(cell, "error", e.status === 401 ? "Not saved: sign in again." : `Not saved: ${e.message}`);
    if (e.status === 422 || e.status === 400) cell.input.setAttribute("aria-invalid", "true");
    return;
  } finally {
    cell.saving = false;
    cell.save.disabled = false;
  }
  await readEndpoint(cell);
}

/** Pauses (replies queue) or resumes forwarding; the button keeps the focus. */
async function setEnabled(cell, button, enabled) {
  const focused = document.activeElement === button;
  button.disabled = true;
  try {
    await api(`/api/admin/clients/${seg(cell.userId)}/endpoint`, {
      method: "PUT",
      body: { url: cell.endpoint.url, enabled },
    });
    setState(cell, "saved", enabled ? "Resumed." : "Paused: replies queue until it is resumed.");
  } catch (e) {
    button.disabled = false;
    setState(cell, "error", e.status === 401 ? "Sign in again." : `Not changed: ${e.message}`);
    return;
  }
  await readEndpoint(cell);
  if (focused) cell.actions.querySelector("button")?.focus();
}

/** The signing secret, shown when the endpoint is created, with Copy. */
function showSecret(cell, secret) {
  const code = el("code", { class: "key", text: secret });
  const copy = el("button", { type: "button", class: "secondary small", text: "Copy" });
  copy.addEventListener("click", () => copyText(secret, code, copy));
  cell.reveal.replaceChildren(
    el("p", { text: `Signing secret of ${cell.userId}'s endpoint: the client checks each request with it. Copy it now.` }),
    code,
    copy,
  );
  cell.reveal.hidden = false;
}
