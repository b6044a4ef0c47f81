// A client's deliveries: each reply forwarded to its endpoint, oldest first,
// a page at a time, filtered by status, each with a Retry button
// (POST /api/admin/deliveries/{id}/retry) after which its row follows the
// new attempt until its outcome is recorded. The endpoint's own state heads
// the page.
//
// A delivery's last error is the endpoint's response body (or the
// connection error): written by the client's system, so it is only ever
// inserted as text.

import { api, el, endpointState, seg, start, timeAt } from "./api.js";

const PAGE = 50;
// How long a retried row follows its new attempt: the longest attempt (the
// server's --delivery-timeout, 15 s by default) and a margin.
const FOLLOW_MS = 30_000;
const FOLLOW_EVERY_MS = 500;
const SHOWN_ERROR = 120;
const STATUSES = ["pending", "delivered", "failed"];

const userId = decodeURIComponent(location.pathname.replace(/^\/clients\//, "").replace(/\/deliveries$/, ""));
const tbody = document.querySelector("#deliveries tbody");
const more = document.getElementById("deliveries-more");
const filter = document.getElementById("status-filter");
// The listing shown: deliveries with status `status` ("" for all), page by
// page from `after`.
let status = "";
let after = null;
// Each shown delivery's row, by id: its elements and the query of the page
// it came from (to read it again after a retry).
const rows = new Map();

start(() => {
  document.title = `Deliveries of ${userId} · ibiki`;
  document.getElementById("deliveries-title").textContent = `Deliveries of ${userId}`;
  const asked = new URLSearchParams(location.search).get("status");
  status = STATUSES.includes(asked) ? asked : "";
  filter.value = status;
  filter.addEventListener("change", () => {
    status = filter.value;
    const url = new URL(location.href);
    if (status) url.searchParams.set("status", status);
    else url.searchParams.delete("status");
    history.replaceState(null, "", url);
    relist();
  });
  document.getElementById("filter-form").addEventListener("submit", (event) => event.preventDefault());
  document.getElementById("deliveries-refresh").addEventListener("click", () => {
    loadEndpoint();
    relist();
  });
  more.addEventListener("click", loadPage);
  loadEndpoint();
  relist();
});

/** The endpoint's URL and state above the table. */
async function loadEndpoint() {
  const summary = document.getElementById("endpoint-summary");
  try {
    const endpoint = await api(`/api/admin/clients/${seg(userId)}/endpoint`);
    const parts = [
      el("span", { class: "label", text: "Endpoint" }),
      " ",
      el("code", { class: "endpoint-url", text: endpoint.url }),
      " ",
      endpointState(endpoint),
    ];
    if (endpoint.lastDeliveredAt) parts.push(el("span", { class: "hint" }, " · last delivered ", timeAt(endpoint.lastDeliveredAt)));
    summary.replaceChildren(...parts);
  } catch (e) {
    if (e.status === 401) return;
    summary.textContent = e.body.error === "endpoint_not_found"
      ? `${userId} has no endpoint: its replies are not forwarded. Set one on the clients page.`
      : `The endpoint could not be read: ${e.message}`;
  }
}

function relist() {
  after = null;
  rows.clear();
  tbody.replaceChildren();
  document.getElementById("deliveries-status").textContent = "";
  return loadPage();
}

function query(from, which = status, limit = PAGE) {
  let text = `?limit=${limit}`;
  if (which) text += `&status=${seg(which)}`;
  if (from) text += `&after=${seg(from)}`;
  return `/api/admin/clients/${seg(userId)}/deliveries${text}`;
}

async function loadPage() {
  const error = document.getElementById("deliveries-error");
  const empty = document.getElementById("deliveries-empty");
  error.textContent = "";
  more.disabled = true;
  const from = after;
  const shownStatus = status;
  let page;
  try {
    page = await api(query(from));
  } catch (e) {
    if (e.status !== 401) error.textContent = `Deliveries could not be loaded: ${e.message}`;
    more.disabled = false;
    return;
  }
  // The filter changed while this page loaded: its rows are not wanted.
  if (shownStatus !== status || from !== after) return;
  for (const delivery of page.deliveries) {
    if (rows.has(delivery.id)) continue;
    const entry = row(delivery, from);
    rows.set(delivery.id, entry);
    tbody.append(entry.tr);
  }
  if (page.next) after = page.next;
  more.hidden = page.deliveries.length < PAGE;
  more.disabled = false;
  empty.hidden = rows.size > 0;
  empty.textContent = status ? `No ${status} deliveries.` : "No deliveries yet.";
  document.getElementById("deliveries-scroll").hidden = rows.size === 0;
}

/** A delivery's row; `from` is the `after` of the page it came from. */
function row(delivery, from) {
  const head = el("th", { scope: "row", id: `delivery-${delivery.id}`, class: "num", text: String(delivery.id) });
  const retry = el("button", {
    type: "button",
    class: "secondary small",
    text: "Retry",
    "aria-describedby": `delivery-${delivery.id}`,
  });
  const note = el("div", { class: "status", "aria-live": "polite" });
  const retryCell = el("td", { class: "retry" }, retry, note);
  const tr = el("tr", {}, head, retryCell);
  const entry = { id: delivery.id, from, status, tr, retry, note, retryCell, cells: [], delivery, retrying: false };
  retry.addEventListener("click", () => retryDelivery(entry));
  render(entry, delivery);
  return entry;
}

const dash = () => el("span", { class: "none", text: "—" });

/** Fills a row's cells from `delivery` (the Retry cell, maybe focused, stays). */
function render(entry, delivery) {
  entry.delivery = delivery;
  const cells = [
    el("td", { class: "message-id" }, delivery.messageId ?? dash()),
    el("td", {}, el("span", { class: "badge", "data-status": delivery.status, text: delivery.status })),
    el("td", { class: "num", text: String(delivery.attempts) }),
    el("td", { class: "when" }, delivery.lastAttemptAt ? timeAt(delivery.lastAttemptAt) : dash()),
    el("td", { class: "when" }, delivery.nextAttemptAt ? timeAt(delivery.nextAttemptAt) : dash()),
    el("td", { class: "num" }, delivery.lastStatus === null ? dash() : String(delivery.lastStatus)),
    el("td", { class: "last-error" }, errorText(delivery.lastError)),
  ];
  for (const cell of entry.cells) cell.remove();
  entry.cells = cells;
  entry.retryCell.before(...cells);
  entry.tr.dataset.status = delivery.status;
}

/** The last error, cut visibly when long; the whole text a click away. */
function errorText(text) {
  if (text === null || text === undefined) return dash();
  const oneLine = text.replace(/\s+/g, " ").trim();
  if (oneLine.length <= SHOWN_ERROR) return el("span", { class: "error-text", text: oneLine || "(empty body)" });
  return el(
    "details",
    { class: "error-text" },
    el("summary", {}, `${oneLine.slice(0, SHOWN_ERROR)}…`, el("span", { class: "visually-hidden", text: " (show all)" })),
    el("pre", { text }),
  );
}

/** Retries a delivery now, then follows its row until the attempt is recorded. */
async function retryDelivery(entry) {
  const { retry, note } = entry;
  if (entry.retrying) return;
  const before = entry.delivery.lastAttemptAt;
  // Busy, not disabled: a disabled button would drop the keyboard focus.
  entry.retrying = true;
  retry.setAttribute("aria-disabled", "true");
  note.dataset.state = "saving";
  note.textContent = "Retrying…";
  let outcome;
  try {
    render(entry, await api(`/api/admin/deliveries/${seg(String(entry.id))}/retry`, { method: "POST" }));
    outcome = await follow(entry, before);
  } catch (e) {
    note.dataset.state = "error";
    note.textContent = e.status === 401 ? "Sign in again." : `Not retried: ${e.message}`;
    return;
  } finally {
    entry.retrying = false;
    retry.removeAttribute("aria-disabled");
  }
  const said = document.getElementById("deliveries-status");
  if (!outcome) {
    note.dataset.state = "";
    note.textContent = "Due now; not attempted yet.";
    said.textContent = `Delivery ${entry.id} is due now; its attempt has not been recorded yet.`;
    return;
  }
  if (outcome.status === "delivered") {
    note.dataset.state = "saved";
    note.textContent = "Delivered.";
  } else {
    note.dataset.state = "error";
    note.textContent = `Failed again${outcome.lastStatus === null ? "" : ` (${outcome.lastStatus})`}.`;
  }
  said.textContent = outcome.status === "delivered"
    ? `Delivery ${entry.id}: delivered.`
    : `Delivery ${entry.id}: the attempt failed; it is ${outcome.status}.`;
  if (entry.status && outcome.status !== entry.status) {
    said.textContent += ` It no longer matches the “${entry.status}” filter and leaves the list when it is refreshed.`;
  }
  loadEndpoint();
}

/**
 * Reads the row again until its last attempt differs from `before` (an
 * attempt was recorded): the delivery as read then, or null after
 * FOLLOW_MS.
 */
async function follow(entry, before) {
  const until = Date.now() + FOLLOW_MS;
  while (Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, FOLLOW_EVERY_MS));
    let found;
    try {
      found = await read(entry);
    } catch (e) {
      if (e.status === 401) return null;
      continue;
    }
    if (!found) continue;
    render(entry, found);
    // Set when an attempt's outcome is recorded (not when it starts).
    if (found.lastAttemptAt !== before) return found;
  }
  return null;
}

/**
 * The delivery as it is now: read from the page its row came from; a
 * retried delivery may have left the status filter, so then from the
 * unfiltered listing after the same position.
 */
async function read(entry) {
  const filtered = await api(query(entry.from, entry.status));
  const found = filtered.deliveries.find((d) => d.id === entry.id);
  if (found || !entry.status) return found;
  const all = await api(query(entry.from, "", 1000));
  return all.deliveries.find((d) => d.id === entry.id);
}
