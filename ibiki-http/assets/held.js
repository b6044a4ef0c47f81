// The held replies: how many, and the list, oldest first with the newest
// last, shown a page at a time from the end. Each can be delivered by hand to
// a client (POST /api/admin/held/{id}/deliver), e.g. one sent to a number
// the provider spelled in a way no assignment matches.

import { api, el, replyItem, seg, start } from "./api.js";

const SHOWN = 50;
const list = document.getElementById("held");
const earlier = document.getElementById("held-earlier");
let all = [];
let shownFrom = 0;

start(() => {
  load();
  document.getElementById("held-refresh").addEventListener("click", load);
  earlier.addEventListener("click", showEarlier);
});

async function load() {
  const count = document.getElementById("held-count");
  const error = document.getElementById("held-error");
  const status = document.getElementById("held-status");
  status.textContent = "";
  status.dataset.state = "";
  error.textContent = "";
  count.textContent = "Counting…";
  const replies = [];
  let after = null;
  try {
    for (;;) {
      const query = after ? `?limit=1000&after=${seg(after)}` : "?limit=1000";
      const page = await api(`/api/admin/held${query}`);
      if (page.messages.length === 0) break;
      replies.push(...page.messages);
      after = page.next;
    }
  } catch (e) {
    if (e.status !== 401) error.textContent = `Held replies could not be loaded: ${e.message}`;
    count.textContent = "";
    return;
  }
  all = replies;
  showCount();
  shownFrom = Math.max(0, all.length - SHOWN);
  list.replaceChildren(...all.slice(shownFrom).map(heldItem));
  updateEarlier();
}

function showCount() {
  const n = all.length;
  document.getElementById("held-count").textContent =
    n === 0 ? "No held replies." : `${n.toLocaleString()} held repl${n === 1 ? "y" : "ies"}`;
}

function showEarlier() {
  const from = Math.max(0, shownFrom - SHOWN);
  list.prepend(...all.slice(from, shownFrom).map(heldItem));
  shownFrom = from;
  updateEarlier();
}

/** A held reply with its form: deliver it to the client named. */
function heldItem(reply) {
  const item = replyItem(reply);
  const id = `deliver-${reply.id}`;
  const input = el("input", {
    id,
    name: "userId",
    type: "text",
    "aria-required": "true",
    autocomplete: "off",
    spellcheck: "false",
    "aria-describedby": `${id}-error`,
  });
  const error = el("p", { id: `${id}-error`, class: "error", role: "alert" });
  const button = el("button", { type: "submit", class: "secondary", text: "Deliver" });
  const form = el(
    "form",
    { class: "deliver", autocomplete: "off" },
    el("label", { for: id, text: "Deliver to client" }),
    el("div", { class: "deliver-row" }, input, button),
    error,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const userId = input.value.trim();
    if (!userId) {
      error.textContent = "Enter the client's ID.";
      input.setAttribute("aria-invalid", "true");
      return;
    }
    error.textContent = "";
    input.removeAttribute("aria-invalid");
    button.disabled = true;
    try {
      await api(`/api/admin/held/${seg(String(reply.id))}/deliver`, { method: "POST", body: { userId } });
    } catch (e) {
      button.disabled = false;
      if (e.status === 401) return;
      error.textContent = `Not delivered: ${e.message}`;
      input.setAttribute("aria-invalid", "true");
      return;
    }
    delivered(reply, item, userId);
  });
  item.append(form);
  return item;
}

/** Takes a delivered reply off the list and says where it went. */
function delivered(reply, item, userId) {
  const at = all.indexOf(reply);
  if (at >= 0) {
    all.splice(at, 1);
    if (at < shownFrom) shownFrom -= 1;
  }
  item.remove();
  showCount();
  updateEarlier();
  const status = document.getElementById("held-status");
  status.textContent = `Delivered the reply from ${reply.from} to ${userId}.`;
  status.dataset.state = "saved";
}

function updateEarlier() {
  earlier.hidden = shownFrom === 0;
  earlier.textContent = `Show earlier replies (${shownFrom} more)`;
}

