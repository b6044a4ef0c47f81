// The held replies: how many, and the list, oldest first with the newest
// last, shown a page at a time from the end.

import { api, replyItem, seg, start } from "./api.js";

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
  const n = all.length;
  count.textContent = n === 0 ? "No held replies." : `${n.toLocaleString()} held repl${n === 1 ? "y" : "ies"}`;
  shownFrom = Math.max(0, n - SHOWN);
  list.replaceChildren(...all.slice(shownFrom).map(replyItem));
  updateEarlier();
}

function showEarlier() {
  const from = Math.max(0, shownFrom - SHOWN);
  list.prepend(...all.slice(from, shownFrom).map(replyItem));
  shownFrom = from;
  updateEarlier();
}

function updateEarlier() {
  earlier.hidden = shownFrom === 0;
  earlier.textContent = `Show earlier replies (${shownFrom} more)`;
}

