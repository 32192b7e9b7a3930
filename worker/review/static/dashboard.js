// streamline review dashboard: plain JS, no dependencies. Data is only ever inserted as text.
"use strict";

const STATS_EVERY_MS = 3000;
const REVIEWS_EVERY_MS = 4000;
const CHART_EVERY_MS = 5000;
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
  $("search").hidden = !active;
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
  refreshAll();
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
    $("s-here").textContent = reviews.pending ?? "–";
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
  const groups = Object.entries(review.history_by_currency || {});
  if (!groups.length) {
    cell.textContent = "no approved payouts yet";
    return cell;
  }
  // Each currency on its own line: amounts in different currencies are never compared.
  groups.forEach(([currency, payouts]) => {
    cell.append(el("span", `${currency}: ${payouts.slice(0, 5).map((p) => p.net).join(" · ")}`, "spark"));
  });
  const compared = review.comparison;
  if (compared) {
    cell.append(el("span", `this one is ${compared.ratio}× the largest of ${compared.count} recent ` +
      `${compared.currency} payouts (${compared.largest} ${compared.currency})`, "ratio"));
  } else {
    cell.append(el("span", `no recent ${review.payout.currency} payouts to compare with`, "ratio"));
  }
  return cell;
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "–";
}

function newRow(review) {
  const payout = review.payout;
  const row = el("tr");
  row.dataset.payoutId = payout.payout_id;
  const id = el("td", undefined, "ids");
  const open = el("button", payout.payout_id, "link dark code");
  open.title = "show its journey";
  open.addEventListener("click", () => showJourney(payout.payout_id));
  id.append(open, el("span", `order ${payout.order_id}`), el("span", `seller ${payout.seller_id}`),
    el("span", `customer ${payout.customer_id || "–"}`));
  const amounts = el("td", undefined, "num amounts");
  amounts.append(el("span", `${payout.gross} gross`), el("span", `− ${payout.fee} fee`),
    el("b", `${payout.net} ${payout.currency}`));
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
  row.append(id, amounts, el("td", when(payout.order_created_at)), waiting, historyCell(review), actions);
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
  const which = $("overdue").checked ? "overdue" : "waiting";
  $("reviews-count").textContent = `${page.total} ${which}${shown}`;
}

// Counts from every worker (the list's own totals), so the cards agree with the list.
async function refreshReviews() {
  if (!session().token || !session().reviewer) return;
  try {
    const overdue = $("overdue").checked ? "&overdue=1" : "";
    const { status, body } = await api(`/reviews?limit=100${overdue}`);
    if (status !== 200) return;
    render(body);
    const all = overdue ? (await api("/reviews?limit=1")).body : body;
    const late = overdue ? body : (await api("/reviews?limit=1&overdue=1")).body;
    $("s-pending").textContent = all.total ?? "–";
    $("s-overdue").textContent = late.total ?? "–";
  } catch (error) {
    say("The worker is not answering.", "error");
  }
}

// ---- the "decided" tab: the latest decisions of every worker ----
async function refreshDecided() {
  if (!session().token || !session().reviewer || $("decided-panel").hidden) return;
  const { status, body } = await api("/decisions");
  if (status !== 200) return;
  $("decided").querySelector("tbody").replaceChildren(...body.decisions.map((d) => {
    const row = el("tr");
    row.dataset.payoutId = d.payout_id;
    const id = el("td", undefined, "ids");
    const open = el("button", d.payout_id, "link dark code");
    open.addEventListener("click", () => showJourney(d.payout_id));
    id.append(open, el("span", `order ${d.order_id} · seller ${d.seller_id}`));
    row.append(id, el("td", `${d.net} ${d.currency}`, "num"),
      el("td", d.decision === "approve" ? "approved" : "rejected", `verdict ${d.decision}`),
      el("td", d.reviewer), el("td", d.reason), el("td", when(d.decided_at)));
    return row;
  }));
  $("none-decided").hidden = body.decisions.length !== 0;
}

function showTab(decided) {
  $("tab-waiting").setAttribute("aria-selected", String(!decided));
  $("tab-decided").setAttribute("aria-selected", String(decided));
  $("waiting-panel").hidden = decided;
  $("overdue-filter").hidden = decided;
  $("decided-panel").hidden = !decided;
  if (decided) refreshDecided(); else refreshReviews();
}

$("tab-waiting").addEventListener("click", () => showTab(false));
$("tab-decided").addEventListener("click", () => showTab(true));
$("overdue").addEventListener("change", refreshReviews);

// ---- the chart: orders/s and the review queue over the last hour, inline SVG ----
function points(samples, value, max, start, span) {
  return samples.map((s) => {
    const x = ((s.at - start) / span) * 600;
    const y = 135 - (value(s) / (max || 1)) * 125;
    return `${x.toFixed(1)},${y.toFixed(1)}`;
  }).join(" ");
}

async function refreshChart() {
  if (!session().token || !session().reviewer) return;
  const { status, body } = await api("/activity");
  if (status !== 200) return;
  const samples = body.samples;
  const end = Date.now() / 1000;
  const start = end - 3600;
  const shown = samples.filter((s) => s.at >= start);
  const maxOrders = Math.max(0, ...shown.map((s) => s.orders_per_s));
  const maxQueue = Math.max(0, ...shown.map((s) => s.queue));
  $("line-orders").setAttribute("points", points(shown, (s) => s.orders_per_s, maxOrders, start, 3600));
  $("line-queue").setAttribute("points", points(shown, (s) => s.queue, maxQueue, start, 3600));
  $("max-orders").textContent = maxOrders.toFixed(1);
  $("max-queue").textContent = maxQueue;
  $("chart-note").textContent = shown.length ? `${shown.length} samples` : "no samples yet";
}

// ---- search: an order id, a payout id or a seller opens the journey ----
async function findJourneys(query) {
  if (query.startsWith("po-")) {
    const { status, body } = await api(`/payouts/${encodeURIComponent(query)}`);
    return status === 200 ? [body] : [];
  }
  for (const kind of ["orders", "sellers"]) {
    const { status, body } = await api(`/${kind}/${encodeURIComponent(query)}`);
    if (status === 200) return body.payouts;
  }
  return [];
}

function field(list, name, value) {
  list.append(el("dt", name), el("dd", value === null || value === undefined || value === "" ? "–" : String(value)));
}

function journeyCard(j) {
  const card = el("article", undefined, "journey");
  card.dataset.payoutId = j.payout_id;
  card.append(el("h3", `${j.payout_id} · ${j.status}`));
  const list = el("dl");
  const order = j.order || {}, fee = j.fee || {}, screening = j.screening || {};
  const review = j.review || {}, settlement = j.settlement || {};
  field(list, "order", `${j.order_id || "–"} of seller ${j.seller_id || "–"}, customer ${j.customer_id || "–"}`);
  field(list, "read from", `${order.topic || "–"}[${order.partition ?? "–"}]@${order.offset ?? "–"}, created ${when(order.created_at)}`);
  field(list, "fee", `${fee.gross || "–"} ${j.currency || ""} × ${fee.rate || "–"} + ${fee.fixed || "–"} = ${fee.fee || "–"}; net ${fee.net || "–"}`);
  field(list, "screening", screening.outcome ? `${screening.outcome} (threshold ${screening.threshold || "–"}), ${when(screening.at)}` : "");
  if (j.review) {
    field(list, "review", `held ${when(review.held_at)}${review.escalated_at ? `, escalated ${when(review.escalated_at)}` : ""}`);
    if (review.decision) field(list, "decision", `${review.decision} by ${review.decided_by}, ${when(review.decided_at)}: ${review.reason}`);
  }
  field(list, "settlement", [settlement.state, ...(settlement.steps || []).map((s) => `${s.step} ${when(s.at)}`)].join(" · "));
  field(list, "trace", j.trace_id);
  card.append(list);
  return card;
}

async function showJourney(query) {
  $("journey-of").textContent = query;
  $("journey").hidden = false;
  const found = await findJourneys(query);
  $("journeys").replaceChildren(...(found.length ? found.map(journeyCard) : [el("p", `Nothing is known of ${query}.`, "hint")]));
}

$("search").addEventListener("submit", (event) => {
  event.preventDefault();
  const query = $("query").value.trim();
  if (query) showJourney(query);
});
$("journey-close").addEventListener("click", () => { $("journey").hidden = true; });

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
function refreshAll() {
  refreshReviews();
  refreshDecided();
  refreshChart();
}

if (session().token && !session().reviewer) whoAmI().then(refreshAll);
else refreshAll();
setInterval(refreshStats, STATS_EVERY_MS);
setInterval(() => { refreshReviews(); refreshDecided(); }, REVIEWS_EVERY_MS);
setInterval(refreshChart, CHART_EVERY_MS);
