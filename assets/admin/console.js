// Topkart's admin console: one page, no framework, no asset from another host. It speaks the
// public API (API.md) with an admin's access token, follows each deal's stock over its event
// stream, and charts this node's /metrics.
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);
const TOKEN_KEY = "topkart-admin-token";
let token = sessionStorage.getItem(TOKEN_KEY);
let streams = new Map(); // deal id → EventSource
let deals = new Map(); // deal id → the deal as last listed

// ---- talking to the API ------------------------------------------------------------------

class ApiError extends Error {}

async function api(method, path, body) {
  const headers = { accept: "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(`/api/v1${path}`, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (response.status === 401 && path !== "/auth/login") {
    signOut("Your session ended: sign in again.");
    throw new ApiError("signed out");
  }
  if (!response.ok) {
    // The error envelope: its message, and every wrong field.
    const fields = data && data.errors
      ? " — " + Object.entries(data.errors).map(([f, p]) => `${f}: ${p.join(", ")}`).join("; ")
      : "";
    throw new ApiError(`${data ? data.message : response.statusText}${fields}`);
  }
  return data;
}

function notify(message, ok = false) {
  const notice = $("#notice");
  notice.textContent = message;
  notice.className = ok ? "ok" : "";
  notice.hidden = !message;
}

async function attempt(action, done) {
  try {
    await action();
    if (done) notify(done, true);
  } catch (error) {
    if (error.message !== "signed out") notify(error.message);
  }
}

// ---- signing in --------------------------------------------------------------------------

$("#sign-in").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.target;
  attempt(async () => {
    const pair = await api("POST", "/auth/login", {
      username: form.username.value, password: form.password.value,
    });
    token = pair.access_token;
    const me = await api("GET", "/users/me");
    if (me.user_type !== "admin") {
      token = null;
      throw new ApiError(`${me.username} is not an admin: the console is for admins.`);
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    form.reset();
    notify("");
    enter();
  });
});

function signOut(message) {
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  for (const source of streams.values()) source.close();
  streams.clear();
  $("#nav").hidden = true;
  document.querySelectorAll("main > section").forEach((s) => (s.hidden = s.id !== "sign-in-page"));
  notify(message || "");
}
$("#sign-out").addEventListener("click", () => signOut("Signed out."));

function enter() {
  $("#nav").hidden = false;
  show("deals");
  startMetrics();
}

// ---- pages -------------------------------------------------------------------------------

const loaders = { deals: loadDeals, orders: loadOrders, cluster: loadCluster, performance: drawCharts };

function show(page) {
  document.querySelectorAll("main > section").forEach((s) => (s.hidden = s.id !== `${page}-page`));
  document.querySelectorAll("#nav button[data-page]").forEach((b) =>
    b.classList.toggle("active", b.dataset.page === page));
  attempt(loaders[page]);
}
document.querySelectorAll("#nav button[data-page]").forEach((button) =>
  button.addEventListener("click", () => { notify(""); show(button.dataset.page); }));

// ---- deals -------------------------------------------------------------------------------

const utc = (rfc3339) => rfc3339 ? rfc3339.replace("T", " ").replace(/(\.\d+)?Z$/, "") : "";

async function allPages(path) {
  const results = [];
  let page = 1;
  for (; page <= 20; page++) {
    const separator = path.includes("?") ? "&" : "?";
    const data = await api("GET", `${path}${separator}page=${page}&page_size=100`);
    results.push(...data.results);
    if (!data.next) break;
  }
  return results;
}

async function loadDeals() {
  const list = await allPages("/deals?status=all");
  const body = $("#deals tbody");
  body.replaceChildren();
  const listed = new Set();
  deals = new Map();
  for (const deal of list.sort((a, b) => b.id - a.id)) {
    deals.set(deal.id, deal);
    listed.add(deal.id);
    const row = document.createElement("tr");
    row.dataset.dealId = deal.id;
    row.innerHTML = `
      <td>${deal.id}</td><td class="name"></td>
      <td>${deal.final_price} <s class="hint">${deal.actual_price}</s></td>
      <td><span class="status"></span></td>
      <td><div class="stock"><div class="track"><div class="fill"></div></div><span class="label"></span></div></td>
      <td class="hint">${utc(deal.starts_at)} → ${utc(deal.expires_at)}${deal.recurrence === "daily" ? " (daily)" : ""}</td>
      <td class="actions"><button class="secondary edit">Edit</button><button class="danger toggle"></button></td>`;
    $(".name", row).textContent = deal.product_name;
    paintStock(row, deal);
    $(".edit", row).addEventListener("click", () => editDeal(deals.get(deal.id)));
    $(".toggle", row).addEventListener("click", () => {
      const current = deals.get(deal.id);
      const action = current.status === "CLOSED" ? "open" : "close";
      attempt(async () => {
        const changed = await api("POST", `/deals/${deal.id}/${action}`);
        deals.set(deal.id, changed);
        paintStock(row, changed);
      }, `Deal ${deal.id} ${action === "open" ? "opened" : "closed"}.`);
    });
    body.append(row);
    follow(deal.id);
  }
  for (const [id, source] of streams) {
    if (!listed.has(id)) { source.close(); streams.delete(id); }
  }
}

// A deal's row shows its status, its units left, and a bar of what is left.
function paintStock(row, deal) {
  const status = $(".status", row);
  status.textContent = deal.status;
  status.className = `status ${deal.status}`;
  const share = deal.total_units > 0 ? deal.available_units / deal.total_units : 0;
  const fill = $(".fill", row);
  fill.style.width = `${(share * 100).toFixed(1)}%`;
  row.dataset.available = deal.available_units;
  row.dataset.status = deal.status;
  $(".label", row).textContent = `${deal.available_units} / ${deal.total_units} left`;
  $(".toggle", row).textContent = deal.status === "CLOSED" ? "Open" : "Close";
}

// Live stock: the deal's event stream moves its bar (at most ten updates a second).
function follow(dealId) {
  if (streams.has(dealId)) return;
  const source = new EventSource(`/api/v1/deals/${dealId}/events`);
  // The stream's events are named `stock` (see the OpenAPI document).
  source.addEventListener("stock", (message) => {
    const live = JSON.parse(message.data);
    const deal = deals.get(dealId);
    const row = document.querySelector(`#deals tr[data-deal-id="${dealId}"]`);
    if (!deal || !row) return;
    Object.assign(deal, {
      status: live.status, available_units: live.available_units, total_units: live.total_units,
    });
    paintStock(row, deal);
  });
  streams.set(dealId, source);
}

const toLocalInput = (rfc3339) => rfc3339 ? rfc3339.replace(/(\.\d+)?Z$/, "") : "";
const fromLocalInput = (value) => value ? `${value.length === 16 ? value + ":00" : value}Z` : null;

function editDeal(deal) {
  const form = $("#deal-form");
  form.reset();
  form.hidden = false;
  $("#deal-form-title").textContent = deal ? `Edit deal ${deal.id}` : "New deal";
  form.id.value = deal ? deal.id : "";
  if (deal) {
    form.product_name.value = deal.product_name;
    form.actual_price.value = deal.actual_price;
    form.final_price.value = deal.final_price;
    form.total_units.value = deal.total_units;
    form.starts_at.value = toLocalInput(deal.starts_at);
    form.expires_at.value = toLocalInput(deal.expires_at);
    form.per_customer_limit.value = deal.per_customer_limit ?? "";
    form.daily.checked = deal.recurrence === "daily";
  } else {
    const inAnHour = new Date(Date.now() + 3600 * 1000).toISOString();
    form.expires_at.value = inAnHour.slice(0, 19);
  }
  form.product_name.focus();
}
$("#new-deal").addEventListener("click", () => editDeal(null));
$("#deal-form-cancel").addEventListener("click", () => ($("#deal-form").hidden = true));

$("#deal-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.target;
  const fields = {
    product_name: form.product_name.value.trim(),
    actual_price: form.actual_price.value.trim(),
    final_price: form.final_price.value.trim(),
    total_units: Number(form.total_units.value),
    expires_at: fromLocalInput(form.expires_at.value),
    per_customer_limit: form.per_customer_limit.value ? Number(form.per_customer_limit.value) : null,
    recurrence: form.daily.checked ? "daily" : "none",
  };
  const starts = fromLocalInput(form.starts_at.value);
  if (starts) fields.starts_at = starts;
  const id = form.id.value;
  attempt(async () => {
    if (id) {
      // Only what changed: a resize or a new window is a change the engine checks on its own.
      const before = deals.get(Number(id));
      const changes = {};
      for (const [key, value] of Object.entries(fields)) {
        const old = key.endsWith("_at") ? before[key] && fromLocalInput(toLocalInput(before[key])) : before[key];
        if (value !== old && !(value === null && old === undefined)) changes[key] = value;
      }
      await api("PATCH", `/deals/${id}`, changes);
    } else {
      if (fields.per_customer_limit === null) delete fields.per_customer_limit;
      await api("POST", "/deals", fields);
    }
    form.hidden = true;
    await loadDeals();
  }, id ? `Deal ${id} saved.` : "Deal created.");
});

// ---- orders ------------------------------------------------------------------------------

async function loadOrders() {
  const status = $("#order-status").value;
  const data = await api("GET", `/orders?page_size=100${status ? `&status=${status}` : ""}`);
  const body = $("#orders tbody");
  body.replaceChildren();
  for (const order of data.results) {
    const row = document.createElement("tr");
    row.dataset.orderId = order.id;
    row.dataset.status = order.status;
    row.innerHTML = `<td>${order.id}</td><td>${order.deal_id}</td><td>${order.customer_id}</td>
      <td>${order.quantity}</td><td>${order.total_price}</td><td><span class="status">${order.status}</span></td>
      <td class="hint">${utc(order.created_at)}</td><td class="actions"></td>`;
    const actions = $(".actions", row);
    const button = (label, className, run, done) => {
      const b = document.createElement("button");
      b.textContent = label;
      b.className = className;
      b.addEventListener("click", () => attempt(async () => { await run(); await loadOrders(); }, done));
      actions.append(b);
    };
    const setStatus = (to) => api("PATCH", `/orders/${order.id}/status`, { status: to });
    if (order.status === "OPEN") {
      button("Approve", "approve", () => setStatus("APPROVED"), `Order ${order.id} approved.`);
    }
    if (order.status === "APPROVED") {
      button("Fulfil", "fulfil secondary", () => setStatus("FULFILLED"), `Order ${order.id} fulfilled.`);
    }
    if (order.status === "OPEN" || order.status === "APPROVED") {
      button("Cancel", "cancel danger", () => api("POST", `/orders/${order.id}/cancel`), `Order ${order.id} cancelled.`);
    }
    body.append(row);
  }
  $("#orders-count").textContent = `${data.count} order(s)${data.next ? ", the newest 100 shown" : ""}.`;
}
$("#order-status").addEventListener("change", () => attempt(loadOrders));
$("#orders-refresh").addEventListener("click", () => attempt(loadOrders));

// ---- cluster -----------------------------------------------------------------------------

async function loadCluster() {
  const view = await api("GET", "/cluster");
  $("#cluster-mode").textContent = view.mode === "cluster"
    ? `Cluster mode: ${view.nodes.length} live node(s); this answer came from ${view.node_id}.`
    : `Single node (${view.node_id}): no Redis, every deal is sold here.`;
  const rows = (selector, items, cells) => {
    const body = $(`${selector} tbody`);
    body.replaceChildren();
    for (const item of items) {
      const row = document.createElement("tr");
      for (const cell of cells(item)) {
        const td = document.createElement("td");
        td.textContent = cell;
        row.append(td);
      }
      body.append(row);
    }
  };
  rows("#nodes", view.nodes, (n) => [n.id, n.url, n.deals_owned, utc(n.last_seen)]);
  rows("#owners", view.deals, (d) => [d.deal_id, d.owner ?? "— (moving)", d.epoch]);
}

// ---- performance -------------------------------------------------------------------------

const samples = []; // {at, requests, orders, buckets}
let metricsTimer = null;

function parseMetrics(text) {
  const series = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = line.match(/^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/);
    if (!match) continue;
    const labels = {};
    for (const pair of (match[2] || "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]] = pair[2];
    series.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return series;
}

async function sampleMetrics() {
  const response = await fetch("/metrics");
  if (!response.ok) return;
  const series = parseMetrics(await response.text());
  const sum = (name, keep = () => true) =>
    series.filter((s) => s.name === name && keep(s.labels)).reduce((a, s) => a + s.value, 0);
  const buckets = series
    .filter((s) => s.name === "topkart_http_request_duration_seconds_bucket"
      && s.labels.route === "/api/v1/orders" && s.labels.method === "POST")
    .map((s) => ({ le: s.labels.le === "+Inf" ? Infinity : Number(s.labels.le), count: s.value }))
    .sort((a, b) => a.le - b.le);
  samples.push({
    at: Date.now(),
    requests: sum("topkart_http_requests_total"),
    orders: sum("topkart_orders_placed_total"),
    buckets,
  });
  if (samples.length > 91) samples.shift();
  if (!$("#performance-page").hidden) drawCharts();
}

function startMetrics() {
  if (metricsTimer) return;
  const tick = () => attempt(sampleMetrics);
  tick();
  metricsTimer = setInterval(tick, 2000);
}

// The q-quantile of the requests between two samples, from their histogram buckets.
function quantile(before, after, q) {
  const deltas = after.buckets.map((b, i) => ({ le: b.le, count: b.count - ((before.buckets[i] || {}).count || 0) }));
  const total = deltas.length ? deltas[deltas.length - 1].count : 0;
  if (total <= 0) return null;
  let lower = 0, below = 0;
  for (const bucket of deltas) {
    if (bucket.count >= q * total) {
      if (bucket.le === Infinity) return lower;
      const within = bucket.count - below;
      return lower + (bucket.le - lower) * (within > 0 ? (q * total - below) / within : 0);
    }
    lower = bucket.le; below = bucket.count;
  }
  return lower;
}

function drawCharts() {
  const points = [];
  for (let i = 1; i < samples.length; i++) {
    const [a, b] = [samples[i - 1], samples[i]];
    const secs = (b.at - a.at) / 1000;
    const p50 = quantile(a, b, 0.5), p99 = quantile(a, b, 0.99);
    points.push({
      at: b.at,
      rps: (b.requests - a.requests) / secs, ops: (b.orders - a.orders) / secs,
      p50: p50 === null ? null : p50 * 1000, p99: p99 === null ? null : p99 * 1000,
    });
  }
  chart($("#throughput-chart"), points, [["rps", "requests/s"], ["ops", "orders/s"]]);
  chart($("#latency-chart"), points, [["p50", "p50 ms"], ["p99", "p99 ms"]]);
  const last = points[points.length - 1];
  $("#performance-now").textContent = last
    ? `Last 2 s: ${last.rps.toFixed(0)} requests/s, ${last.ops.toFixed(0)} orders/s` +
      (last.p99 === null ? "" : `, order p50 ${last.p50.toFixed(2)} ms, p99 ${last.p99.toFixed(2)} ms`)
    : "Collecting…";
}

// A line chart with a time axis (seconds ago), a value axis and a legend.
function chart(svg, points, lines) {
  const [w, h, left, bottom, top] = [640, 200, 48, 22, 18];
  const max = Math.max(1, ...points.flatMap((p) => lines.map(([k]) => p[k] ?? 0)));
  const now = points.length ? points[points.length - 1].at : Date.now();
  const span = 180;
  const x = (at) => left + (w - left - 8) * (1 - Math.min(span, (now - at) / 1000) / span);
  const y = (v) => h - bottom - (h - bottom - top) * (v / max);
  let out = `<line class="axis" x1="${left}" y1="${h - bottom}" x2="${w - 8}" y2="${h - bottom}"/>`
    + `<line class="axis" x1="${left}" y1="${top}" x2="${left}" y2="${h - bottom}"/>`;
  for (const f of [0, 0.5, 1]) {
    out += `<text x="${left - 4}" y="${y(max * f) + 3}" text-anchor="end">${(max * f).toPrecision(3)}</text>`;
  }
  for (const ago of [180, 120, 60, 0]) {
    out += `<text x="${x(now - ago * 1000)}" y="${h - 6}" text-anchor="middle">${ago ? `-${ago} s` : "now"}</text>`;
  }
  lines.forEach(([key, label], i) => {
    const path = points.filter((p) => p[key] !== null).map((p) => `${x(p.at).toFixed(1)},${y(p[key]).toFixed(1)}`).join(" ");
    if (path) out += `<polyline class="s${i}" points="${path}"/>`;
    // Each sample as a dot too: a lone sample between quiet ones still shows.
    for (const p of points.filter((p) => p[key] !== null)) {
      out += `<circle class="s${i}" cx="${x(p.at).toFixed(1)}" cy="${y(p[key]).toFixed(1)}" r="2"/>`;
    }
    out += `<line class="s${i}" x1="${left + 10 + i * 110}" y1="9" x2="${left + 28 + i * 110}" y2="9"/>`
      + `<text x="${left + 32 + i * 110}" y="12">${label}</text>`;
  });
  svg.innerHTML = out;
}

// ---- start -------------------------------------------------------------------------------

if (token) {
  api("GET", "/users/me").then((me) => (me.user_type === "admin" ? enter() : signOut()))
    .catch(() => signOut());
} else {
  signOut();
}
