// streamline review dashboard: plain JS, no dependencies. Data is only ever inserted as text.
"use strict";

const STATS_EVERY_MS = 3000;
const REVIEWS_EVERY_MS = 4000;
const store = window.sessionStorage;
const $ = (id) => document.getElementById(id);

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

function say(text, kind) {
  const message = $("message");
  message.textContent = text;
  message.className = kind || "";
}

// ---- the reviewer's session: the token, and the name the worker says it belongs to, for this tab only ----
function session() {
  return { reviewer: store.getItem("reviewer"), token: store.getItem("token") };
}

function showSession() {
  const { reviewer, token } = session();
  const active = Boolean(reviewer && token);
  $("login").hidden = active;
  $("session").hidden = !active;
  $("who").textContent = reviewer || "";
  $("locked").hidden = active;
  if (!active) {
    $("pending").hidden = true;
    $("empty").hidden = true;
    $("reviews-count").textContent = "";
  }
}

// Ask the worker whose token this is: the page never lets anyone type a name.
async function whoAmI() {
  store.removeItem("reviewer");
  if (!session().token) return;
  try {
    const { status, body } = await api("/reviewer");
    if (status === 200) store.setItem("reviewer", body.reviewer);
  } catch (error) {
    say("The worker is not answering.", "error");
  }
  showSession();
}

$("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  store.setItem("token", $("token").value.trim());
  $("token").value = "";
  say("");
  await whoAmI();
  refreshReviews();
});

$("logout").addEventListener("click", () => {
  store.removeItem("token");
  store.removeItem("reviewer");
  showSession();
  rows.forEach((row) => row.remove());
  rows.clear();
});

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${session().token}`, ...(options.headers || {}) };
  const response = await fetch(path, { ...options, headers });
  let body = {};
  try { body = await response.json(); } catch (ignored) { /* an empty or non-JSON answer */ }
  if (response.status === 401) {
    store.removeItem("token");
    store.removeItem("reviewer");
    showSession();
    say("The review token was refused: enter it again.", "error");
  } else if (response.status === 503) {
    say(body.error || "The review API is not available on this worker.", "error");
  }
  return { status: response.status, body };
}

// ---- pipeline stats ----
async function refreshStats() {
  try {
    const response = await fetch("/stats");
    const stats = await response.json();
    const reviews = stats.reviews || {};
    const decisions = reviews.decisions || {};
    $("s-rate").textContent = stats.rate_per_s;
    $("s-pending").textContent = reviews.pending ?? "–";
    $("s-oldest").textContent = duration(reviews.oldest_pending_age_s);
    $("s-decisions").textContent = `${decisions.approved || 0} / ${decisions.rejected || 0}`;
    $("s-dead").textContent = stats.dead_letters;
    $("s-uptime").textContent = duration(stats.uptime_s);
    const body = $("topics").querySelector("tbody");
    body.replaceChildren(...Object.entries(stats.topics).map(([name, counts]) => {
      const row = el("tr");
      row.append(el("td", name), el("td", counts.consumed), el("td", counts.produced));
      return row;
    }));
    $("stats-age").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    $("stats-age").textContent = "worker not answering";
  }
}

// ---- the pending list: rows are kept across refreshes, so a half-typed reason survives ----
const rows = new Map();

function historyCell(review) {
  const cell = el("td", undefined, "history");
  const net = Number(review.payout.net);
  const same = review.history.filter((p) => p.currency === review.payout.currency);
  if (!review.history.length) {
    cell.textContent = "no approved payouts yet";
    return cell;
  }
  cell.append(el("span", review.history.slice(0, 6).map((p) => `${p.net} ${p.currency}`).join(" · "), "spark"));
  if (same.length) {
    const largest = Math.max(...same.map((p) => Number(p.net)));
    cell.append(el("span", `${review.history.length} recent; this one is ${(net / largest).toFixed(1)}× the largest`));
  }
  return cell;
}

function newRow(review) {
  const payout = review.payout;
  const row = el("tr");
  row.dataset.payoutId = payout.payout_id;
  const id = el("td");
  id.append(el("code", payout.payout_id));
  const waiting = el("td");
  const reason = el("input");
  reason.placeholder = "reason (required)";
  reason.setAttribute("aria-label", `reason for ${payout.payout_id}`);
  const approve = el("button", "Approve", "approve");
  const reject = el("button", "Reject", "reject");
  approve.addEventListener("click", () => decide(row, "approve", reason, [approve, reject]));
  reject.addEventListener("click", () => decide(row, "reject", reason, [approve, reject]));
  const actions = el("td");
  const box = el("div", undefined, "decide");
  box.append(reason, approve, reject);
  actions.append(box);
  row.append(id, el("td", payout.seller_id), el("td", `${payout.net} ${payout.currency}`, "num"),
    waiting, historyCell(review), actions);
  row.waiting = waiting;
  return row;
}

function updateWaiting(row, review) {
  const seconds = (Date.now() - Date.parse(review.held_at)) / 1000;
  row.waiting.replaceChildren(el("span", duration(seconds)));
  if (review.escalated_at) row.waiting.append(el("span", "overdue", "badge overdue"));
}

function render(page) {
  const seen = new Set();
  const body = $("pending").querySelector("tbody");
  page.reviews.forEach((review) => { seen.add(review.payout.payout_id); });
  rows.forEach((row, id) => { if (!seen.has(id)) { row.remove(); rows.delete(id); } });
  page.reviews.forEach((review, index) => {
    const id = review.payout.payout_id;
    if (!rows.has(id)) rows.set(id, newRow(review));
    const row = rows.get(id);
    updateWaiting(row, review);
    // Move a row only when it is out of place: moving it would take the focus from its reason box.
    if (body.children[index] !== row) body.insertBefore(row, body.children[index] || null);
  });
  $("pending").hidden = rows.size === 0;
  $("empty").hidden = rows.size !== 0;
  const shown = page.total > page.reviews.length ? ` (oldest ${page.reviews.length} shown)` : "";
  $("reviews-count").textContent = `${page.total} waiting${shown}`;
}

async function refreshReviews() {
  if (!session().token || !session().reviewer) return;
  try {
    const { status, body } = await api("/reviews?limit=100");
    if (status === 200) render(body);
  } catch (error) {
    say("The worker is not answering.", "error");
  }
}

async function decide(row, decision, reason, buttons) {
  const id = row.dataset.payoutId;
  if (!reason.value.trim()) {
    say(`Give a reason before you ${decision} ${id}.`, "error");
    reason.focus();
    return;
  }
  buttons.forEach((button) => { button.disabled = true; });
  try {
    const { status, body } = await api(`/reviews/${encodeURIComponent(id)}/${decision}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ reason: reason.value.trim() }),
    });
    if (status === 200 || status === 202) {
      say(`${id}: ${body.status} by ${body.decision.reviewer}.`, "ok");
      row.remove();
      rows.delete(id);
    } else if (status !== 401 && status !== 503) {
      say(`${id}: ${body.error || `HTTP ${status}`}`, "error");
    }
  } finally {
    buttons.forEach((button) => { button.disabled = false; });
    refreshReviews();
  }
}

showSession();
refreshStats();
if (session().token && !session().reviewer) whoAmI().then(refreshReviews);
else refreshReviews();
setInterval(refreshStats, STATS_EVERY_MS);
setInterval(refreshReviews, REVIEWS_EVERY_MS);
