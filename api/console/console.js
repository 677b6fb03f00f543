// OpenPCC operator console: vanilla JS over the management API (no build step, no CDN).
"use strict";

const POLL_MS = 2000;
const HISTORY = 150; // chart points (5 minutes at 2 s)
const $ = (id) => document.getElementById(id);
const state = { key: localStorage.getItem("openpcc.key") || "", view: "dashboard", timer: null,
  last: null, points: [], subscriber: null };

// ---- API -------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, detail) { super(detail); this.status = status; }
}

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${state.key}`, ...(options.headers || {}) };
  if (options.body) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) { signOut(); throw new ApiError(401, "sign in again"); }
  const text = await response.text();
  const body = text && response.headers.get("content-type")?.includes("json") ? JSON.parse(text) : text;
  if (!response.ok) {
    const detail = Array.isArray(body.detail)
      ? body.detail.map((d) => `${d.loc.slice(1).join(".")}: ${d.msg}`).join("; ") : body.detail;
    throw new ApiError(response.status, detail || response.statusText);
  }
  return body;
}

// ---- formatting (money stays an integer of minor units: no floating point) -----------------
function money(minor, currency = "") {
  const negative = minor < 0;
  const digits = String(Math.abs(minor)).padStart(3, "0");
  const text = `${digits.slice(0, -2)}.${digits.slice(-2)}`;
  return `${negative ? "−" : ""}${text}${currency ? " " + currency : ""}`;
}

function parseMoney(text) {
  const match = /^(\d+)(?:[.,](\d{1,2}))?$/.exec(text.trim());
  if (!match) return null;
  return parseInt(match[1], 10) * 100 + parseInt((match[2] || "0").padEnd(2, "0"), 10);
}

const rate = (bps) => bps == null ? "–" : bps >= 1e6 ? `${+(bps / 1e6).toFixed(1)} Mbit/s`
  : `${+(bps / 1e3).toFixed(1)} kbit/s`;
const when = (iso) => iso ? new Date(iso).toLocaleString([], { dateStyle: "short", timeStyle: "medium" }) : "–";
const since = (iso) => {
  const s = Math.max(0, Math.round((Date.now() - new Date(iso)) / 1000));
  return s < 60 ? `${s} s` : s < 3600 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${(s / 3600).toFixed(1)} h`;
};
const seconds = (s) => s < 1 ? `${Math.round(s * 1000)} ms` : s < 120 ? `${Math.round(s)} s` : `${Math.round(s / 60)} min`;

function cell(text, cls) {
  const td = document.createElement("td");
  if (cls) td.className = cls;
  if (text instanceof Node) td.append(text); else td.textContent = text ?? "–";
  return td;
}

function pill(text, cls) {
  const span = document.createElement("span");
  span.className = `pill ${cls || text}`;
  span.textContent = text;
  return span;
}

function fill(tableId, rows, emptyId) {
  const body = $(tableId).querySelector("tbody");
  body.replaceChildren(...rows);
  if (emptyId) $(emptyId).hidden = rows.length > 0;
}

// ---- chart: request rate and p99 latency per interval, drawn on a canvas ---------------------
function percentile(buckets, previous, q) {
  // Linear interpolation inside the bucket holding the q-quantile (as PromQL histogram_quantile).
  const count = (i) => buckets[i][1] - (previous ? previous[i][1] : 0);
  const total = count(buckets.length - 1);
  if (total <= 0) return null;
  const rank = q * total;
  for (let i = 0; i < buckets.length; i++) {
    if (count(i) < rank) continue;
    if (buckets[i][0] === "+Inf") return buckets[i - 1][0];
    const lower = i === 0 ? 0 : buckets[i - 1][0];
    const below = i === 0 ? 0 : count(i - 1);
    const inside = count(i) - below;
    return inside > 0 ? lower + ((buckets[i][0] - lower) * (rank - below)) / inside : buckets[i][0];
  }
  return null;
}

function drawChart() {
  const canvas = $("chart");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = 220;
  canvas.width = width * ratio; canvas.height = height * ratio;
  const g = canvas.getContext("2d");
  g.scale(ratio, ratio);
  g.clearRect(0, 0, width, height);
  const pad = { l: 46, r: 52, t: 10, b: 24 };
  const w = width - pad.l - pad.r, h = height - pad.t - pad.b;
  const pts = state.points;
  const maxRate = niceMax(Math.max(1, ...pts.map((p) => p.rate)));
  const maxLat = niceMax(Math.max(1, ...pts.map((p) => p.p99 ?? 0)));
  g.font = "11px system-ui, sans-serif"; g.strokeStyle = "#e3e7ef"; g.fillStyle = "#6b7487";
  for (let i = 0; i <= 4; i++) {
    const y = pad.t + h - (h * i) / 4;
    g.beginPath(); g.moveTo(pad.l, y); g.lineTo(pad.l + w, y); g.stroke();
    g.textAlign = "right"; g.fillText(fmtAxis((maxRate * i) / 4), pad.l - 6, y + 4);
    g.textAlign = "left"; g.fillText(fmtAxis((maxLat * i) / 4) + " ms", pad.l + w + 6, y + 4);
  }
  g.textAlign = "center";
  g.fillText(`last ${Math.round((HISTORY * POLL_MS) / 60000)} min`, pad.l + w / 2, height - 6);
  const x = (i) => pad.l + (w * (i + HISTORY - pts.length)) / (HISTORY - 1);
  const series = (key, max, color) => {
    g.strokeStyle = color; g.lineWidth = 2; g.beginPath();
    let started = false;
    pts.forEach((p, i) => {
      if (p[key] == null) { started = false; return; }
      const y = pad.t + h - (h * p[key]) / max;
      if (started) g.lineTo(x(i), y); else { g.moveTo(x(i), y); started = true; }
    });
    g.stroke();
  };
  series("rate", maxRate, "#2563eb");
  series("p99", maxLat, "#d97706");
}

function niceMax(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 2.5, 5, 10].map((m) => m * p).find((m) => m >= v);
}
const fmtAxis = (v) => v >= 100 ? Math.round(v) : +v.toFixed(2);

// ---- dashboard ---------------------------------------------------------------------------
async function refreshDashboard() {
  const [dash, sessions, peers] = await Promise.all([
    api("/api/v1/dashboard"), api("/api/v1/sessions?limit=200"), api("/api/v1/peers?limit=200"),
  ]);
  $("node-name").textContent = dash.node;
  const now = performance.now();
  if (state.last) {
    const dt = (now - state.last.at) / 1000;
    const p99 = percentile(dash.diameter.buckets, state.last.buckets, 0.99);
    state.points.push({ rate: (dash.diameter.requests - state.last.requests) / dt,
      p99: p99 == null ? null : p99 * 1000 });
    if (state.points.length > HISTORY) state.points.shift();
    const latest = state.points.at(-1);
    $("kpi-rate").textContent = latest.rate.toFixed(1);
    $("kpi-p99").textContent = latest.p99 == null ? "–" : `${+latest.p99.toFixed(2)} ms`;
  }
  state.last = { at: now, requests: dash.diameter.requests, buckets: dash.diameter.buckets };
  $("kpi-gx").textContent = dash.sessions.gx;
  $("kpi-rx").textContent = dash.sessions.rx;
  $("kpi-ro").textContent = dash.sessions.ro;
  $("kpi-peers").textContent = `${dash.peers.open} / ${dash.peers.total}`;
  $("kpi-outbox").textContent = dash.outbox.unsent;
  $("kpi-outbox-age").textContent = dash.outbox.unsent ? `oldest ${seconds(dash.outbox.oldest_unsent_age_seconds)}` : "all exported";
  drawChart();
  renderCalls(sessions);
  renderGx(sessions.gx);
  fill("peers", peers.items.map((p) => {
    const tr = document.createElement("tr");
    tr.append(cell(p.origin_host || "(capabilities exchange)"), cell(p.origin_realm), cell(pill(p.state)),
      cell(p.remote_address), cell(p.pending_requests, "num"));
    return tr;
  }), "peers-empty");
}

function renderCalls(sessions) {
  // A call: its Ro charging session, with the QoS of the Rx bearer of the same subscriber.
  const gxByMsisdn = new Map(sessions.gx.filter((g) => g.msisdn).map((g) => [g.msisdn, g]));
  const rxByGx = new Map(sessions.rx.map((r) => [r.gx_session_id, r]));
  const rows = sessions.ro.map((ro) => {
    const gx = ro.subscription_ids.map((id) => gxByMsisdn.get(id.replace(/\D/g, ""))).find(Boolean);
    const rule = gx && rxByGx.get(gx.session_id)?.rules.find((r) => r.gbr_ul != null);
    const held = ro.reservations.reduce((sum, r) => sum + r.amount, 0);
    const tr = document.createElement("tr");
    const stop = document.createElement("button");
    stop.className = "small"; stop.type = "button"; stop.textContent = "End";
    stop.onclick = () => terminate(ro.session_id);
    tr.append(cell(ro.subscriber), cell(ro.calling_party), cell(ro.called_party), cell(rule ? rule.qci : "–"),
      cell(rule ? `${rate(rule.gbr_ul)} / ${rate(rule.gbr_dl)}` : "–"),
      cell(money(ro.charged, ro.currency), "num charged"), cell(money(held, ro.currency), "num"),
      cell(since(ro.opened_at)), cell(stop));
    return tr;
  });
  fill("calls", rows, "calls-empty");
}

function renderGx(gx) {
  fill("gx", gx.map((g) => {
    const tr = document.createElement("tr");
    const throttled = g.reasons.length > 0;
    tr.append(cell(g.imsi), cell(g.apn), cell(g.ue_ipv4), cell(g.qci),
      cell(`${rate(g.ambr_ul)} / ${rate(g.ambr_dl)}`),
      cell(pill(throttled ? g.reasons.join(", ") : "normal", throttled ? "throttled" : "active")));
    return tr;
  }), "gx-empty");
}

async function terminate(sessionId) {
  if (!confirm(`End session ${sessionId}?`)) return;
  try { await api(`/api/v1/sessions/${encodeURIComponent(sessionId)}`, { method: "DELETE" }); }
  catch (e) { alert(e.message); }
  refreshDashboard();
}

// ---- subscribers -------------------------------------------------------------------------
async function refreshSubscriberList() {
  const page = await api("/api/v1/subscribers?limit=20");
  fill("sub-list", page.items.map((s) => {
    const tr = document.createElement("tr");
    tr.className = "clickable";
    tr.onclick = () => { location.hash = `#/subscribers/${encodeURIComponent(s.name)}`; };
    tr.append(cell(s.name), cell(s.msisdn.join(", ")), cell(s.imsi.join(", ")), cell(s.plan),
      cell(pill(s.status)));
    return tr;
  }));
}

async function showSubscriber(name) {
  const sub = await api(`/api/v1/subscribers/${encodeURIComponent(name)}`);
  const [account, history, cdrs] = await Promise.all([
    api(`/api/v1/accounts/${encodeURIComponent(sub.account)}`),
    api(`/api/v1/accounts/${encodeURIComponent(sub.account)}/history?limit=10`),
    sub.msisdn.length ? api(`/api/v1/cdrs?limit=10&subscriber=${encodeURIComponent(sub.msisdn[0])}`) : { items: [] },
  ]);
  state.subscriber = sub;
  $("sub-detail").hidden = false;
  $("sub-title").textContent = sub.name;
  const facts = [["Status", pill(sub.status)], ["Account", sub.account], ["Plan", sub.plan],
    ["Policy profile", sub.policy_profile || "–"], ["MSISDN", sub.msisdn.join(", ") || "–"],
    ["IMSI", sub.imsi.join(", ") || "–"], ["SIP URI", sub.sip_uris.join(", ") || "–"]];
  $("sub-facts").replaceChildren(...facts.flatMap(([k, v]) => {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); if (v instanceof Node) dd.append(v); else dd.textContent = v;
    return [dt, dd];
  }));
  $("topup-currency").textContent = account.currency;
  fill("balances", account.balances.map((b) => {
    const tr = document.createElement("tr");
    const fmt = (v) => b.kind === "monetary" ? money(v, account.currency) : `${v} ${b.unit}`;
    tr.append(cell(b.name), cell(b.kind), cell(fmt(b.amount), "num amount"), cell(fmt(b.reserved), "num"),
      cell(fmt(b.available), "num available"), cell(b.valid_until ? when(b.valid_until) : "–"));
    return tr;
  }));
  fill("history", history.items.map((j) => {
    const tr = document.createElement("tr");
    const change = j.delta_amount === 0 && j.delta_reserved !== 0
      ? `${money(Math.abs(j.delta_reserved))} ${j.delta_reserved > 0 ? "held" : "freed"}` : money(j.delta_amount);
    tr.append(cell(when(j.created_at)), cell(j.cause), cell(change, "num"),
      cell(j.reference || j.session_id || ""));
    return tr;
  }));
  fill("sub-cdrs", cdrs.items.map((c) => cdrRow(c, false)), "sub-cdrs-empty");
}

function cdrRow(c, full) {
  const r = c.record;
  const tr = document.createElement("tr");
  tr.append(cell(when(r.recordClosureTime)));
  if (full) tr.append(cell(c.partition_key), cell(r.recordType));
  tr.append(cell(r.calledPartyAddress || "–"), cell(`${r.duration} s`, "num"), cell(money(r.charge, r.currency), "num"));
  if (full) tr.append(cell(r.causeForRecordClosing), cell(c.sent_at ? pill("sent", "active") : pill("waiting", "throttled")));
  return tr;
}

// getRandomValues works on plain-HTTP origins too (randomUUID needs a secure context).
function randomKey() {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function topUp(event) {
  event.preventDefault();
  $("topup-result").textContent = ""; $("topup-error").textContent = "";
  const amount = parseMoney($("topup-amount").value);
  if (!amount) { $("topup-error").textContent = "Enter an amount like 10 or 10.50"; return; }
  // One Idempotency-Key per intended top-up: a retry of the same form (after a timeout or a lost
  // answer) is credited once; a changed amount or reason is a new top-up.
  const payload = JSON.stringify({ amount, reason: $("topup-reason").value });
  if (state.topup?.payload !== payload) state.topup = { payload, key: randomKey() };
  try {
    const change = await api(`/api/v1/accounts/${encodeURIComponent(state.subscriber.account)}/topups`, {
      method: "POST", body: payload, headers: { "Idempotency-Key": state.topup.key } });
    state.topup = null;
    $("topup-result").textContent = `Topped up ${money(amount)}: ${change.balance.name} is now ${money(change.balance.amount)}.`;
    $("topup-amount").value = ""; $("topup-reason").value = "";
    await showSubscriber(state.subscriber.name);
  } catch (e) { $("topup-error").textContent = e.message; }
}

async function find(event) {
  event.preventDefault();
  $("find-error").textContent = "";
  const kind = $("find-kind").value, value = $("find-value").value.trim();
  try {
    const sub = kind === "name" ? await api(`/api/v1/subscribers/${encodeURIComponent(value)}`)
      : await api(`/api/v1/subscribers/lookup?${kind}=${encodeURIComponent(value)}`);
    location.hash = `#/subscribers/${encodeURIComponent(sub.name)}`;
  } catch (e) { $("find-error").textContent = e.status === 404 ? "No such subscriber." : e.message; }
}

// ---- CDRs --------------------------------------------------------------------------------
async function refreshCdrs() {
  const [outbox, cdrs] = await Promise.all([api("/api/v1/cdrs/outbox"), api("/api/v1/cdrs?limit=50")]);
  $("ob-unsent").textContent = outbox.unsent;
  $("ob-age").textContent = outbox.unsent ? seconds(outbox.oldest_unsent_age_seconds) : "–";
  $("ob-total").textContent = outbox.total;
  fill("cdrs", cdrs.items.map((c) => cdrRow(c, true)), "cdrs-empty");
}

async function download(format) {
  const response = await fetch(`/api/v1/cdrs/download?format=${format}`, { headers: { Authorization: `Bearer ${state.key}` } });
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = `cdrs.${format}`;
  link.click();
  URL.revokeObjectURL(link.href);
}

// ---- navigation, sign-in, polling ----------------------------------------------------------
function signOut() {
  localStorage.removeItem("openpcc.key");
  state.key = "";
  route();
}

async function checkReady() {
  try {
    const ready = await (await fetch("/readyz")).json();
    $("ready-dot").className = `dot ${ready.ready ? "up" : "down"}`;
    $("ready-dot").title = ready.checks.map((c) => `${c.name}: ${c.detail}`).join("\n");
  } catch { $("ready-dot").className = "dot down"; }
}

async function tick() {
  clearTimeout(state.timer);
  try {
    if (state.view === "dashboard") await refreshDashboard();
    else if (state.view === "cdrs") await refreshCdrs();
    await checkReady();
  } catch (e) { console.warn(e); }
  if (state.key && state.view !== "subscribers") state.timer = setTimeout(tick, POLL_MS);
}

async function route() {
  const [, view = "dashboard", arg] = location.hash.split("/");
  const signedIn = Boolean(state.key);
  $("login").hidden = signedIn;
  $("logout").hidden = !signedIn;
  document.querySelectorAll(".view").forEach((v) => { v.hidden = !signedIn || v.id !== `view-${view}`; });
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.view === view));
  if (!signedIn) return;
  state.view = view;
  if (view === "subscribers") {
    $("sub-detail").hidden = !arg;
    try {
      await refreshSubscriberList();
      if (arg) await showSubscriber(decodeURIComponent(arg));
    } catch (e) { $("find-error").textContent = e.message; }
  }
  tick();
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  state.key = $("api-key").value.trim();
  try {
    await api("/api/v1/peers?limit=1");
    localStorage.setItem("openpcc.key", state.key);
    $("login-error").textContent = "";
    route();
  } catch (e) { $("login-error").textContent = e.status === 401 ? "That key is not valid." : e.message; state.key = ""; }
});
$("logout").addEventListener("click", signOut);
$("topup-form").addEventListener("submit", topUp);
$("find-form").addEventListener("submit", find);
$("dl-csv").addEventListener("click", (e) => { e.preventDefault(); download("csv"); });
$("dl-jsonl").addEventListener("click", (e) => { e.preventDefault(); download("jsonl"); });
window.addEventListener("hashchange", route);
window.addEventListener("resize", () => state.view === "dashboard" && drawChart());
route();
