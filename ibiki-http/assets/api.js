// The dashboard's one way to talk to the server: the API with a bearer
// token (the operator's admin token, or on a client's inbox page that
// client's access key), kept in this tab's sessionStorage only (never in a
// URL or a cookie). Every text that comes from the server is put in the page with
// textContent (see `el`), never parsed as HTML: reply bodies and senders are
// written by strangers.

const TOKEN_KEY = "ibiki.accessKey";

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  location.reload();
}

/** An element with attributes and children; strings become text nodes. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = String(value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** An error answer of the API, or a network failure (status 0). */
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `the server answered ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

/** Calls the API; resolves to the JSON answer, rejects with ApiError. */
export async function api(path, { method = "GET", body } = {}) {
  const headers = { Authorization: `Bearer ${token()}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
  } catch (e) {
    throw new ApiError(0, { error: "network", message: "The server cannot be reached." });
  }
  let json = null;
  try {
    json = await response.json();
  } catch (e) {
    json = null;
  }
  if (response.status === 401) {
    signedOut();
    throw new ApiError(401, json);
  }
  if (response.status === 403 && !clientAllowed) {
    showSignIn("This page is the operator's: sign in with the admin token.");
    throw new ApiError(403, json);
  }
  if (!response.ok) throw new ApiError(response.status, json);
  return json;
}

/** `/api/...` path segment. */
export const seg = (text) => encodeURIComponent(text);

/** An instant (RFC 3339), in the reader's locale, exact in `datetime`. */
export function timeAt(instant) {
  const date = new Date(instant);
  const shown = Number.isNaN(date.getTime()) ? instant : date.toLocaleString();
  return el("time", { datetime: instant, title: instant, text: shown });
}

/** A reply's time, in the reader's locale, with the exact instant in `datetime`. */
export function timeOf(reply) {
  return timeAt(reply.receivedAt);
}

/**
 * How forwarding to a client's endpoint goes (`GET …/endpoint`), as a line
 * of nodes: "paused", "failing since <time>" or "delivering", then the
 * pending and failed counts.
 */
export function endpointState(endpoint) {
  let state = "ok";
  const said = [];
  if (!endpoint.enabled) {
    state = "paused";
    said.push("paused");
  }
  if (endpoint.failingSince) {
    if (state === "ok") state = "failing";
    said.push(said.length > 0 ? " · failing since " : "failing since ", timeAt(endpoint.failingSince));
  }
  if (said.length === 0) said.push("delivering");
  const counts = ` · ${endpoint.pending.toLocaleString()} pending · ${endpoint.failed.toLocaleString()} failed`;
  return el("span", { class: "endpoint-state", "data-state": state }, said, counts);
}

/** One reply, as an article: who, to which number, when, and the text. */
export function replyItem(reply) {
  return el(
    "li",
    { class: "reply" },
    el(
      "div",
      { class: "reply-meta" },
      el("span", { class: "reply-from", text: reply.from }),
      el("span", { class: "reply-arrow", "aria-hidden": "true", text: "→" }),
      el("span", { class: "visually-hidden", text: " to " }),
      el("span", { class: "reply-to", text: reply.to }),
      timeOf(reply),
    ),
    el("p", { class: "reply-body", text: reply.body === "" ? "(no text)" : reply.body }),
  );
}

let started = null;
let clientAllowed = false;

/** The token or key stopped working (revoked, or the server's changed). */
export function signedOut() {
  showSignIn("The token or key was refused. Sign in again.");
}

/** Who is signed in: "admin", or "client" for a client's access key. */
export async function callerRole() {
  try {
    await api("/api/admin/clients?limit=1");
    return "admin";
  } catch (e) {
    if (e.status === 403) return "client";
    throw e;
  }
}

function tokenInput() {
  return document.querySelector("#signin-form input[name=token]");
}

function showSignIn(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  document.getElementById("page").hidden = true;
  document.getElementById("signout").hidden = true;
  const section = document.getElementById("signin");
  section.hidden = false;
  const note = document.getElementById("signin-error");
  note.textContent = message || "";
  tokenInput().focus();
}

/**
 * Shows the sign-in form until a token works, then runs the page's `init`.
 * `check` is the call that proves a token; with `clients`, a client's key
 * signs in too (a 403 is then the page's to show, not a refusal).
 */
export function start(init, { check = "/api/admin/clients?limit=1", clients = false } = {}) {
  started = init;
  clientAllowed = clients;
  const form = document.getElementById("signin-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = tokenInput();
    const value = input.value.trim();
    if (!value) {
      document.getElementById("signin-error").textContent = `Enter the ${input.labels[0].textContent.toLowerCase()}.`;
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, value);
    input.value = "";
    try {
      await api(check);
    } catch (e) {
      if (e.status === 403 && clients) {
        enter();
        return;
      }
      if (e.status !== 401 && e.status !== 403) {
        document.getElementById("signin-error").textContent = e.message;
        sessionStorage.removeItem(TOKEN_KEY);
      }
      return;
    }
    enter();
  });
  document.getElementById("signout").addEventListener("click", signOut);
  if (token()) enter();
  else showSignIn();
}

function enter() {
  document.getElementById("signin").hidden = true;
  document.getElementById("page").hidden = false;
  document.getElementById("signout").hidden = false;
  started();
}
