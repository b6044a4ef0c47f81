// The clients page: one row per client with its numbers, saved on blur or
// Enter, and its access keys (created, shown once, revoked); the "Add
// client" form; "Find a client", by the start of its id or by a number it
// owns, which narrows the table to what it found.

import { api, el, seg, start } from "./api.js";

const PAGE = 50;
const PLACEHOLDER = "+1111, +2222, +3333";

const tbody = document.querySelector("#clients tbody");
const more = document.getElementById("clients-more");
// The table lists the clients whose id starts with `prefix` ("" for all),
// page by page from `after`.
let prefix = "";
let after = null;
let rowCount = 0;

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

/** A client's row: its id, the numbers field with its state, the inbox link. */
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
    el("th", { scope: "row", class: "client", text: userId }),
    el("td", { class: "field" }, input, status, problems),
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
    copy.addEventListener("click", () => copyKey(key.key, code, copy));
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

/** Copies with the clipboard API; where it is refused, selects the key. */
async function copyKey(text, code, button) {
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
