// The IPSX node dashboard. Plain JavaScript, no build step: it reads the
// node's public REST API (/v1) with the token the page carries, and
// follows the event stream (/v1/events) with fetch, resuming with
// Last-Event-ID after a break. Amounts are token base units (10^18 per
// token) as decimal strings; they are handled as BigInt, never floats.
"use strict";

const TOKEN = document.querySelector('meta[name="ipsx-token"]').content;
const $ = (sel) => document.querySelector(sel);
const UNIT = 10n ** 18n;

const state = {
  status: null,
  deals: new Map(), // id -> deal (without history)
  seen: new Map(),  // id -> {bytes, at}: for the traffic rate
  rate: new Map(),  // id -> bytes per second
  own: [],
  book: [],
  shard: "",
  rep: {},
  series: [], // {t, earned, spent}
  since: new Date(),
  offers: new Map(), // offer id -> offer, as seen in the book (for deals' places)
};

// ---- the API ----

async function api(method, path, body) {
  const opts = { method, headers: { Authorization: "Bearer " + TOKEN, Accept: "application/json" } };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const resp = await fetch(path, opts);
  if (resp.status === 401) {
    location.href = "/ui/login";
    throw new Error("logged out");
  }
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { /* not JSON */ }
  if (!resp.ok) {
    const err = new Error((data && data.error) || resp.statusText);
    err.code = data && data.code;
    throw err;
  }
  return data;
}

// ---- formatting ----

function big(s) {
  try { return BigInt(s || "0"); } catch (e) { return 0n; }
}

// tok formats base units as tokens, all significant decimals kept.
function tok(base) {
  let v = typeof base === "bigint" ? base : big(base);
  const neg = v < 0n;
  if (neg) v = -v;
  const whole = v / UNIT;
  let frac = (v % UNIT).toString().padStart(18, "0").replace(/0+$/, "");
  return (neg ? "-" : "") + whole.toString() + (frac ? "." + frac : "") + " tok";
}

// toBase reads "1.5" (tokens) as base units.
function toBase(s) {
  s = String(s).trim();
  if (!/^\d+(\.\d{1,18})?$/.test(s)) throw new Error(`"${s}" is not an amount of tokens (e.g. 10 or 0.5)`);
  const [w, f = ""] = s.split(".");
  return (BigInt(w) * UNIT + BigInt(f.padEnd(18, "0"))).toString();
}

function bytes(n) {
  n = Number(n || 0);
  const u = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return (i ? n.toFixed(1) : n.toFixed(0)) + " " + u[i];
}

function short(id) { return id ? id.slice(0, 10) : ""; }

function secs(s) {
  s = Number(s);
  if (s >= 86400 && s % 3600 === 0) return s / 3600 + "h";
  if (s >= 3600) return (s / 3600).toFixed(1) + "h";
  if (s >= 60) return Math.round(s / 60) + "m";
  return s + "s";
}

function when(t) {
  const d = typeof t === "number" ? new Date(t * 1000) : new Date(t);
  if (isNaN(d) || d.getFullYear() < 2000) return "";
  return d.toLocaleString();
}

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const k of kids) e.append(k);
  return e;
}

function td(text, cls) { return el("td", { text: text == null ? "" : String(text), class: cls || "" }); }

function dl(target, rows) {
  target.replaceChildren();
  for (const [k, v] of rows) {
    if (v === undefined || v === null || v === "") continue;
    target.append(el("dt", { text: k }), el("dd", { text: String(v) }));
  }
}

// confirmBox asks in a modal dialog; it resolves to true on Confirm.
function confirmBox(text) {
  const d = $("#confirm");
  $("#confirm-text").textContent = text;
  return new Promise((resolve) => {
    d.addEventListener("close", () => resolve(d.returnValue === "ok"), { once: true });
    d.returnValue = "";
    d.showModal();
  });
}

// ---- status, peers, wallet, exit ----

async function loadStatus() {
  const st = await api("GET", "/v1/status");
  state.status = st;
  let health = null;
  try { health = await (await fetch("/healthz")).json(); } catch (e) { /* shown as unknown */ }
  const listeners = (st.listeners || []).map((l) => `${l.name} ${l.addr}${l.public ? " (PUBLIC)" : ""}`).join(", ");
  const synced = (st.shards || []).filter((s) => s.synced).length;
  let chain = "none configured";
  if (st.chain) chain = st.chain.reachable ? `block ${st.chain.block} (chain ${st.chainId})` : "UNREACHABLE";
  let ready = "unknown";
  if (health) ready = health.ready ? "ready" : "not ready: " + health.checks.filter((c) => !c.ok).map((c) => c.name + " " + (c.detail || "")).join(", ");
  dl($("#status"), [
    ["version", st.version],
    ["address", st.address],
    ["peer id", st.peerId],
    ["reachability", st.reachability + (st.relayService ? ", relaying for others" : "")],
    ["public ip", st.publicIp],
    ["peers", st.peers],
    ["health", ready],
    ["chain", chain],
    ["shards", `${synced} of ${(st.shards || []).length} synced: ` + (st.shards || []).map((s) => `${s.country}${s.synced ? "" : " (syncing)"} ${s.peers} peers`).join(", ")],
    ["orders", `${st.orders} in the book, ${st.ownOrders} own`],
    ["listeners", listeners],
    ["proxy auth", st.proxy ? (st.proxy.auth ? "credentials required" : "OFF") : ""],
    ["up since", when(st.started) + " (" + st.uptime + ")"],
  ]);
  const ex = st.exit;
  $("#exit-card").hidden = !ex;
  if (ex) {
    dl($("#exit"), [
      ["egress IPs", (ex.egress || []).length ? ex.egress.join(", ") : "the OS's default route"],
      ["denied by default", (ex.defaultDeny || []).join("; ")],
      ["allowed (--exit-allow)", (ex.allow || []).join(", ") || "none"],
      ["denied (--exit-deny)", (ex.deny || []).join(", ") || "none"],
      ["loopback", ex.loopbackAllowed ? "ALLOWED (testnet only)" : ""],
    ]);
  }
  renderTabs();
}

async function loadPeers() {
  const { peers } = await api("GET", "/v1/peers");
  const tb = $("#peers tbody");
  tb.replaceChildren();
  for (const p of peers || []) {
    for (const c of p.conns || []) {
      tb.append(el("tr", {}, td(short(p.peerId) + "…", "mono"), td(c.relayed ? "relay" : "direct"), td(c.direction), td(c.addr, "mono"), td(when(c.opened))));
    }
  }
}

async function loadWallet() {
  try {
    const w = await api("GET", "/v1/wallet");
    dl($("#wallet"), [["address", w.address], ["wallet", tok(w.tokenBalance)], ["escrow, free", tok(w.escrowBalance)], ["escrow, reserved in deals", tok(w.reserved)]]);
    $("#wallet-form").hidden = false;
  } catch (e) {
    dl($("#wallet"), [["wallet", e.code === "no_chain" ? "no chain configured" : e.message]]);
    $("#wallet-form").hidden = true;
  }
}

async function walletTx(kind) {
  const out = $("#wallet-result");
  let amount;
  try { amount = toBase($("#wallet-amount").value); } catch (e) { out.textContent = e.message; return; }
  const what = kind === "deposit" ? `Deposit ${tok(amount)} from the wallet into the escrow?` : `Withdraw ${tok(amount)} of free escrow balance to the wallet?`;
  if (!(await confirmBox(what))) { out.textContent = "cancelled"; return; }
  out.textContent = "waiting for the receipt…";
  try {
    const r = await api("POST", "/v1/wallet/" + kind, { amount });
    out.textContent = `${kind} done in block ${r.block} (${short(r.txHash)}…)`;
    loadWallet();
  } catch (e) {
    out.textContent = kind + " failed: " + e.message;
  }
}

// ---- orders ----

function renderTabs() {
  const shards = ((state.status && state.status.shards) || []).map((s) => s.country);
  if (!state.shard && shards.length) state.shard = shards[0];
  const tabs = $("#book-tabs");
  tabs.replaceChildren();
  for (const cc of shards) {
    const b = el("button", { type: "button", text: cc, class: cc === state.shard ? "sel" : "" });
    b.setAttribute("data-shard", cc);
    b.addEventListener("click", () => { state.shard = cc; renderTabs(); loadBook(); });
    tabs.append(b);
  }
}

async function loadBook() {
  if (!state.shard) { renderBook(); return; }
  const body = await api("GET", "/v1/orders?country=" + encodeURIComponent(state.shard));
  state.book = body.orders || [];
  for (const o of state.book) if (o.kind === "offer") state.offers.set(o.id, o);
  state.rep = body.reputation || {};
  renderBook();
  renderOwn();
}

// Orders are in the wire form of docs/orders.md: the location's fields
// are flat; a request carries maxPricePerHour, maxPricePerGB, duration
// and minBandwidth where an offer has pricePerHour, pricePerGB, a
// duration range and bandwidth.
function place(o) {
  return [o.country, o.region, o.city].filter(Boolean).join(", ") + (o.asn ? ` AS${o.asn}` : "");
}

function priceH(o) { return o.kind === "request" ? o.maxPricePerHour : o.pricePerHour; }
function priceGB(o) { return o.kind === "request" ? o.maxPricePerGB : o.pricePerGB; }
function durationOf(o) { return o.kind === "offer" ? `${secs(o.minDuration)}–${secs(o.maxDuration)}` : secs(o.duration); }
function bandwidthOf(o) { return o.kind === "offer" ? o.bandwidth : o.minBandwidth || 0; }

function renderBook() {
  const tb = $("#book tbody");
  tb.replaceChildren();
  const me = state.status && state.status.address;
  for (const o of state.book) {
    const r = state.rep[o.maker];
    const tr = el("tr", { "data-order-id": o.id, "data-kind": o.kind },
      td(short(o.id) + "…", "mono"), td(o.kind), td(o.maker === me ? "this node" : short(o.maker) + "…", "mono"), td(place(o)), td(o.ipType),
      td(o.ips, "num"), td(tok(priceH(o)), "num"), td(tok(priceGB(o)), "num"),
      td(durationOf(o)), td(bandwidthOf(o), "num"), td(r ? `score ${r.score} (${r.completed} done)` : ""));
    tb.append(tr);
  }
  $("#book-empty").hidden = state.book.length > 0;
}

async function loadOwn() {
  const [offers, requests] = await Promise.all([api("GET", "/v1/offers"), api("GET", "/v1/requests")]);
  state.own = [...(offers.orders || []), ...(requests.orders || [])];
  renderOwn();
}

const LIVE = ["proposed", "accepted", "funded", "active"];

// whyNot says why an own order is not (or is) matched, as far as the
// dashboard can tell from the book it holds (the rules of docs: country,
// place, IP type, protocols, duration, bandwidth, prices).
function whyNot(o) {
  const deals = [...state.deals.values()].filter((d) => (o.kind === "request" ? d.requestId : d.offerId) === o.id);
  const live = deals.filter((d) => LIVE.includes(d.status));
  if (live.length) return live.map((d) => `deal ${short(d.id)} ${d.status}`).join(", ");
  if (o.kind === "offer") {
    return deals.length ? `${deals.length} deal(s) over; waiting for requests` : "waiting for a request to match";
  }
  const cc = o.country;
  if (cc !== state.shard) return `open the ${cc} tab to check the offers`;
  let offers = state.book.filter((x) => x.kind === "offer" && x.maker !== o.maker);
  if (!offers.length) return `no offers in ${cc}`;
  const steps = [
    ["in its region/city/ASN", (x) => (!o.region || o.region === x.region) && (!o.city || o.city === x.city) && (!o.asn || o.asn === x.asn)],
    [`of IP type ${o.ipType}`, (x) => o.ipType === "any" || x.ipType === o.ipType],
    [`with ${(o.protocols || ["tcp"]).join("+")}`, (x) => (o.protocols || ["tcp"]).every((p) => (x.protocols || ["tcp"]).includes(p))],
    [`for ${secs(o.duration)}`, (x) => x.minDuration <= o.duration && o.duration <= x.maxDuration],
    [`with ${o.minBandwidth || 0} Mbit/s`, (x) => x.bandwidth >= (o.minBandwidth || 0)],
    [`at ≤ ${tok(o.maxPricePerHour)} per IP-hour`, (x) => big(x.pricePerHour) <= big(o.maxPricePerHour)],
    [`at ≤ ${tok(o.maxPricePerGB)} per GB`, (x) => big(x.pricePerGB) <= big(o.maxPricePerGB)],
  ];
  for (const [what, ok] of steps) {
    const left = offers.filter(ok);
    if (!left.length) return `no offer in ${cc} ${what} (${offers.length} otherwise fit)`;
    offers = left;
  }
  const failed = deals.filter((d) => !LIVE.includes(d.status));
  if (failed.length) return `${offers.length} offer(s) fit; last deal ${failed[0].status}${failed[0].reason ? " (" + failed[0].reason + ")" : ""}`;
  return `${offers.length} offer(s) fit; negotiating`;
}

function renderOwn() {
  const tb = $("#own tbody");
  tb.replaceChildren();
  for (const o of state.own) {
    const cancel = el("button", { type: "button", class: "cancel-order", text: "cancel" });
    cancel.addEventListener("click", async () => {
      if (!(await confirmBox(`Cancel ${o.kind} ${short(o.id)}…? Peers drop it from their books.`))) return;
      try { await api("DELETE", "/v1/orders/" + o.id); } catch (e) { alertLine("#req-result", "cancel failed: " + e.message); }
      loadOwn();
    });
    tb.append(el("tr", { "data-order-id": o.id, "data-kind": o.kind },
      td(short(o.id) + "…", "mono"), td(o.kind), td(place(o)), td(o.ipType), td(o.ips, "num"),
      td(tok(priceH(o)), "num"), td(tok(priceGB(o)), "num"), td(durationOf(o)),
      td(when(o.expires)), el("td", { class: "match", text: whyNot(o) }), el("td", {}, cancel)));
  }
  $("#own-empty").hidden = state.own.length > 0;
}

function alertLine(sel, text) { $(sel).textContent = text; }

async function placeRequest(ev) {
  ev.preventDefault();
  const out = $("#req-result");
  try {
    const p = {
      country: $("#req-country").value.trim().toUpperCase(), ipType: $("#req-iptype").value,
      ips: Number($("#req-ips").value), duration: Number($("#req-duration").value),
      maxPricePerHour: toBase($("#req-max-hour").value), maxPricePerGB: toBase($("#req-max-gb").value),
    };
    const o = await api("POST", "/v1/requests", p);
    out.textContent = `request ${short(o.id)}… placed`;
    out.setAttribute("data-order-id", o.id);
    if (state.shard !== p.country && (state.status.shards || []).some((s) => s.country === p.country)) { state.shard = p.country; renderTabs(); }
    await loadOwn();
    loadBook();
  } catch (e) {
    out.textContent = "request refused: " + e.message;
  }
}

async function placeOffer(ev) {
  ev.preventDefault();
  const out = $("#off-result");
  try {
    const p = {
      country: $("#off-country").value.trim().toUpperCase(), ipType: $("#off-iptype").value, ips: Number($("#off-ips").value),
      pricePerHour: toBase($("#off-hour").value), pricePerGB: toBase($("#off-gb").value),
      minDuration: Number($("#off-min").value), maxDuration: Number($("#off-max").value), bandwidth: Number($("#off-bw").value),
    };
    const o = await api("POST", "/v1/offers", p);
    out.textContent = `offer ${short(o.id)}… published in ${o.country}`;
    loadOwn();
  } catch (e) {
    out.textContent = "offer refused: " + e.message;
  }
}

// ---- deals ----

async function loadDeals() {
  const { deals } = await api("GET", "/v1/deals");
  state.deals.clear();
  for (const d of deals || []) noteDeal(d);
  renderDeals();
}

// noteDeal keeps a deal and its traffic rate.
function noteDeal(d) {
  const now = Date.now();
  const prev = state.seen.get(d.id);
  if (prev && d.bytes !== prev.bytes && now > prev.at) {
    state.rate.set(d.id, ((d.bytes - prev.bytes) * 1000) / (now - prev.at));
  } else if (!LIVE.includes(d.status)) {
    state.rate.delete(d.id);
  }
  if (!prev || d.bytes !== prev.bytes) state.seen.set(d.id, { bytes: d.bytes, at: now });
  state.deals.set(d.id, d);
}

function counterpartyOf(d) { return d.role === "provider" ? d.requester : d.provider; }

function dealRow(d) {
  const tr = el("tr", { "data-deal-id": d.id, "data-request-id": d.requestId, "data-offer-id": d.offerId, "data-role": d.role });
  const close = el("button", { type: "button", class: "close", text: "close" });
  close.hidden = !LIVE.includes(d.status);
  close.addEventListener("click", async () => {
    const d2 = state.deals.get(d.id) || d;
    if (!(await confirmBox(`Close deal ${short(d.id)}…? Service stops; the provider settles with the last voucher (${tok(d2.paid)}).`))) return;
    try { noteDeal(await api("POST", `/v1/deals/${d.id}/close`)); renderDeals(); } catch (e) { alertLine("#req-result", "close failed: " + e.message); }
  });
  const offer = state.book.find((o) => o.id === d.offerId) || state.offers.get(d.offerId);
  const rate = state.rate.get(d.id);
  tr.append(td(short(d.id) + "…", "mono"), td(d.role),
    el("td", { class: "status status-" + d.status, text: d.status + (d.reason ? ` (${d.reason})` : "") + (d.pending ? ` · tx ${d.pending}` : "") }),
    td(short(counterpartyOf(d)) + "…", "mono"), td(offer ? place(offer) : ""),
    el("td", { class: "bytes num", text: bytes(d.bytes), "data-bytes": String(d.bytes || 0) }),
    td(rate ? bytes(rate) + "/s" : "", "num rate"),
    el("td", { class: "paid num", text: tok(d.paid), "data-value": d.paid || "0" }),
    el("td", { class: "settled num", text: d.settled ? tok(d.settled) : "", "data-value": d.settled || "0" }),
    td(when(d.deadline)), el("td", {}, close));
  return tr;
}

function renderDeals() {
  const tb = $("#deals tbody");
  const rows = [...state.deals.values()].sort((a, b) => (b.start || "").localeCompare(a.start || "") || a.id.localeCompare(b.id));
  tb.replaceChildren(...rows.map(dealRow));
  $("#deals-empty").hidden = rows.length > 0;
  renderTotals();
  renderOwn();
}

function totals() {
  let earned = 0n, spent = 0n, settled = 0n;
  for (const d of state.deals.values()) {
    if (d.role === "provider") {
      earned += big(d.paid);
      settled += big(d.settled);
    } else {
      spent += big(d.paid);
    }
  }
  return { earned, spent, settled };
}

function renderTotals() {
  const t = totals();
  for (const [sel, v] of [["#earned-total", t.earned], ["#spent-total", t.spent], ["#settled-total", t.settled]]) {
    $(sel).textContent = tok(v);
    $(sel).setAttribute("data-value", v.toString());
  }
  const last = state.series[state.series.length - 1];
  if (!last || last.earned !== t.earned || last.spent !== t.spent) {
    state.series.push({ t: Date.now(), earned: t.earned, spent: t.spent });
    if (state.series.length > 2000) state.series.shift();
  }
  renderChart();
}

// renderChart draws earned and spent (cumulative, since the page opened)
// as step lines in an SVG.
function renderChart() {
  const pts = state.series.concat([{ ...state.series[state.series.length - 1], t: Date.now() }]);
  const W = 600, H = 160, P = 28;
  const t0 = pts[0].t, t1 = Math.max(pts[pts.length - 1].t, t0 + 1000);
  let max = 1n;
  for (const p of pts) { if (p.earned > max) max = p.earned; if (p.spent > max) max = p.spent; }
  const x = (t) => P + ((t - t0) / (t1 - t0)) * (W - 2 * P);
  // Scale BigInts to the chart's height without losing small amounts.
  const y = (v) => H - P + 4 - Number((v * 10000n) / max) / 10000 * (H - 2 * P);
  const path = (key) => {
    let d = "";
    pts.forEach((p, i) => {
      d += i === 0 ? `M${x(p.t).toFixed(1)},${y(p[key]).toFixed(1)}` : `H${x(p.t).toFixed(1)}V${y(p[key]).toFixed(1)}`;
    });
    return d;
  };
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("preserveAspectRatio", "none");
  const line = (d, color, id) => {
    const p = document.createElementNS(ns, "path");
    p.setAttribute("d", d); p.setAttribute("fill", "none"); p.setAttribute("stroke", color); p.setAttribute("stroke-width", "2");
    p.setAttribute("id", id);
    svg.append(p);
  };
  const text = (tx, ty, s, anchor) => {
    const t = document.createElementNS(ns, "text");
    t.setAttribute("x", tx); t.setAttribute("y", ty); t.setAttribute("font-size", "10"); t.setAttribute("fill", "#6b7385");
    if (anchor) t.setAttribute("text-anchor", anchor);
    t.textContent = s;
    svg.append(t);
  };
  const axis = document.createElementNS(ns, "path");
  axis.setAttribute("d", `M${P},${P - 4}V${H - P + 4}H${W - P}`); axis.setAttribute("stroke", "#c9ced8"); axis.setAttribute("fill", "none");
  svg.append(axis);
  line(path("earned"), "#1f9d55", "chart-earned");
  line(path("spent"), "#c8333b", "chart-spent");
  text(P + 2, P - 8, tok(max));
  text(W - P, H - 8, new Date(t1).toLocaleTimeString(), "end");
  text(P, H - 8, new Date(t0).toLocaleTimeString());
  text(W - P, P - 8, "— earned   — spent", "end");
  $("#chart").replaceChildren(svg);
  $("#chart-note").textContent = "Cumulative voucher amounts of this node's deals since " + state.since.toLocaleTimeString() + " (green earned, red spent).";
}

// ---- the event stream ----

function setConn(on) {
  const c = $("#conn");
  c.textContent = on ? "live" : "offline";
  c.className = "pill " + (on ? "on" : "off");
}

let lastEventId = "";
let orderTimer = null;

function onEvent(type, ev) {
  switch (type) {
    case "deal.updated":
      noteDeal(ev.data);
      renderDeals();
      break;
    case "order.added":
    case "order.removed":
      clearTimeout(orderTimer);
      orderTimer = setTimeout(() => { loadBook(); loadOwn(); }, 200);
      break;
    case "stream.reset":
      loadAll();
      break;
  }
}

async function follow() {
  for (;;) {
    try {
      const headers = { Authorization: "Bearer " + TOKEN, Accept: "text/event-stream" };
      if (lastEventId) headers["Last-Event-ID"] = lastEventId;
      const resp = await fetch("/v1/events", { headers });
      if (resp.status === 401) { location.href = "/ui/login"; return; }
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      setConn(true);
      const reader = resp.body.getReader();
      const dec = new TextDecoder();
      let buf = "";
      read: for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true }).replace(/\r\n/g, "\n");
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let id = "", type = "", data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith("id: ")) id = line.slice(4);
            else if (line.startsWith("event: ")) type = line.slice(7);
            else if (line.startsWith("data: ")) data += line.slice(6);
          }
          if (!type) continue;
          if (id) lastEventId = id;
          let ev = null;
          try { ev = JSON.parse(data); } catch (e) { continue; }
          if (type === "error") { reader.cancel(); break read; } // the node drops this stream: resume
          try { onEvent(type, ev); } catch (e) { console.error(type, e); }
        }
      }
    } catch (e) {
      /* reconnect below */
    }
    setConn(false);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

// ---- start ----

async function loadAll() {
  try {
    await loadStatus();
    await loadDeals();
    await Promise.all([loadOwn(), loadBook(), loadPeers(), loadWallet()]);
  } catch (e) {
    console.error(e);
  }
}

$("#request-form").addEventListener("submit", placeRequest);
$("#offer-form").addEventListener("submit", placeOffer);
$("#deposit").addEventListener("click", () => walletTx("deposit"));
$("#withdraw").addEventListener("click", () => walletTx("withdraw"));
loadAll().then(() => {
  renderTotals();
  follow();
});
setInterval(() => { loadStatus().catch(() => {}); loadPeers().catch(() => {}); loadWallet().catch(() => {}); }, 10000);
setInterval(() => { renderDeals(); }, 5000);
