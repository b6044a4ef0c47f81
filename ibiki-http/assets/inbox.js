// A client's inbox: its replies oldest first, the latest page shown, and new
// ones appended live.
//
// Live updates read `/api/clients/{userId}/events` (Server-Sent Events) with
// fetch, not EventSource: EventSource cannot send the Authorization header,
// and the alternatives (the token in the URL, where logs, history and
// Referer keep it, or a cookie, which any page can make the browser send)
// are what this dashboard must not do. fetch sends the bearer token like
// every other call; reconnecting resumes from the last event's id.
//
// A client signs in here with its own access key: the operator's navigation
// is hidden, and another client's inbox shows the server's 403, not data.

import { api, callerRole, replyItem, seg, signedOut, start, token } from "./api.js";

const SHOWN = 50;
const RETRY_MS = 1000;
const userId = decodeURIComponent(location.pathname.replace(/^\/inbox\//, ""));
const list = document.getElementById("inbox");
const earlier = document.getElementById("inbox-earlier");
const live = document.getElementById("live");
let all = [];
let shownFrom = 0;
let cursor = null;
const stop = new AbortController();

const numbersPath = `/api/clients/${seg(userId)}/phone-numbers`;

start(async () => {
  document.title = `Inbox of ${userId} · ibiki`;
  document.getElementById("inbox-title").textContent = `Inbox of ${userId}`;
  earlier.addEventListener("click", showEarlier);
  window.addEventListener("pagehide", () => stop.abort());
  const role = await callerRole().catch(() => "admin");
  document.getElementById("operator-nav").hidden = role !== "admin";
  document.getElementById("crumb").hidden = role !== "admin";
  if (!(await numbers())) return;
  if (await loadAll()) follow();
}, { check: numbersPath, clients: true });

/** Shows the client's numbers; false when this key may not open the inbox. */
async function numbers() {
  const target = document.getElementById("inbox-numbers");
  try {
    const answer = await api(numbersPath);
    target.textContent = answer.phoneNumbers.length === 0
      ? "No numbers assigned."
      : `Numbers: ${answer.phoneNumbers.join(", ")}`;
  } catch (e) {
    target.textContent = "";
    if (e.status === 403) {
      forbidden(e);
      return false;
    }
  }
  return true;
}

/** Another client's inbox: the server's refusal, and nothing else. */
function forbidden(e) {
  setLive("off", "Not live");
  document.getElementById("inbox-count").textContent = "";
  document.getElementById("inbox-error").textContent =
    `This access key cannot open the inbox of ${userId} (403: ${e.message}).`;
}

/** Reads the whole inbox, then shows its latest page. */
async function loadAll() {
  const error = document.getElementById("inbox-error");
  try {
    for (;;) {
      const query = cursor ? `?limit=1000&after=${seg(cursor)}` : "?limit=1000";
      const page = await api(`/api/clients/${seg(userId)}/messages${query}`);
      if (page.messages.length === 0) break;
      all.push(...page.messages);
      cursor = page.next;
    }
  } catch (e) {
    if (e.status === 403) forbidden(e);
    else if (e.status !== 401) error.textContent = `The inbox could not be loaded: ${e.message}`;
    setLive("off", "Not live");
    return false;
  }
  shownFrom = Math.max(0, all.length - SHOWN);
  list.replaceChildren(...all.slice(shownFrom).map(replyItem));
  updateCounts();
  return true;
}

function showEarlier() {
  const from = Math.max(0, shownFrom - SHOWN);
  list.prepend(...all.slice(from, shownFrom).map(replyItem));
  shownFrom = from;
  updateCounts();
}

function updateCounts() {
  const n = all.length;
  document.getElementById("inbox-count").textContent = `${n.toLocaleString()} repl${n === 1 ? "y" : "ies"}`;
  document.getElementById("inbox-empty").hidden = n > 0;
  earlier.hidden = shownFrom === 0;
  earlier.textContent = `Show earlier replies (${shownFrom} more)`;
}

function setLive(state, text) {
  live.dataset.state = state;
  live.textContent = text;
}

/** Follows the stream for as long as the page is open. */
async function follow() {
  while (!stop.signal.aborted) {
    try {
      await stream();
    } catch (e) {
      if (stop.signal.aborted) return;
      if (e && e.status === 401) {
        setLive("off", "Not live: sign in again");
        signedOut();
        return;
      }
      if (e && e.status === 403) {
        forbidden(e);
        return;
      }
    }
    setLive("connecting", "Reconnecting…");
    await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
  }
}

/** One connection: reads events until the server or the network ends it. */
async function stream() {
  const headers = { Authorization: `Bearer ${token()}`, Accept: "text/event-stream" };
  if (cursor) headers["Last-Event-ID"] = cursor;
  const response = await fetch(`/api/clients/${seg(userId)}/events`, {
    headers,
    cache: "no-store",
    credentials: "omit",
    signal: stop.signal,
  });
  if (!response.ok) {
    const error = new Error(`status ${response.status}`);
    error.status = response.status;
    throw error;
  }
  setLive("on", "Live");
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      dispatch(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
    }
  }
}

/** One event block of the stream (https://html.spec.whatwg.org/#event-stream-interpretation). */
function dispatch(block) {
  let id = null;
  let type = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "id") id = value;
    else if (field === "event") type = value;
    else if (field === "data") data.push(value);
  }
  if (type !== "reply" || data.length === 0) return;
  let reply;
  try {
    reply = JSON.parse(data.join("\n"));
  } catch (e) {
    return;
  }
  if (id) cursor = id;
  all.push(reply);
  const item = replyItem(reply);
  item.classList.add("fresh");
  list.append(item);
  updateCounts();
}

