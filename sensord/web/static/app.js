/* sensord air picture: tracks over WebSocket, drawn on a vector basemap (Leaflet).
   Messages from /ws (see docs/web.md): snapshot (everything, on every connection),
   tracks (changed states and drops), receivers, zone_events. The page sends nothing.
   Messages only change state; the tracks are drawn on one canvas (tracklayer.js) at most
   once per animation frame, and the track list at most once a second. */
"use strict";

const COLORS = TRACK_COLORS;
const KIND_NAMES = { adsb: "ADS-B", mlat: "MLAT", radar: "radar only" };
const TRAIL_POINTS = 120;
const BAND_POINTS = 96;      // vertices per focal ellipse of a bistatic band
const COVERAGE_PERIOD_MS = 10000;  // a receiver's grown coverage is redrawn at most this often
const LIST_PERIOD_MS = 1000; // the track list is sorted and redrawn at most this often

const state = {
  tracks: new Map(),   // track_id -> {d: payload, kind, label, wx, wy, trail, band}
  receivers: new Map(),
  zones: [],
  nowS: 0,
  selected: null,
  sortKey: "alt_baro_ft",
  sortDir: -1,
  connected: false,
  config: null,
  messages: 0,
  listDirty: true,
};
// read by the browser tests and benchmarks/bench_web.py
const perf = { handleMs: [], listMs: [], drawMs: [] };
window.sensord = { state, perf };

const map = L.map("map", { preferCanvas: true, worldCopyJump: true, zoomControl: true })
  .setView([52.0, 4.5], 7);
const canvas = L.canvas({ padding: 0.3 });
const layers = {
  zones: L.layerGroup().addTo(map),
  coverage: L.layerGroup().addTo(map),
  receivers: L.layerGroup().addTo(map),
};
const trackLayer = new TrackCanvas(state.tracks).addTo(map);
Object.assign(window.sensord, {
  map,
  trackLayer,
  layers,
  /* Every track with a position: id, kind and its marker's page coordinates. */
  markers: () => Array.from(state.tracks.values()).filter(t => t.wx !== null)
    .map(t => Object.assign({ id: t.d.track_id, kind: t.kind }, trackLayer.pagePoint(t))),
  pixel: (lat, lon) => trackLayer.pixel(lat, lon),
});
let tileLayer = null;
let centred = false;

fetch("static/basemap.json").then(r => r.json()).then(geo => {
  L.geoJSON(geo, {
    renderer: canvas,
    interactive: false,
    style: f => f.properties.kind === "land"
      ? { stroke: false, fillColor: "#f1efe6", fillOpacity: 1 }
      : { color: "#8a8a80", weight: 0.8, fill: false },
  }).addTo(map).bringToBack();
}).catch(() => {});

// a tracker clock in UTC (a fusion node's, seconds since 1970) as a time of day, else seconds
function fmtClock(t) {
  if (t === null || t === undefined) return "";
  if (t > 1e9) return new Date(t * 1000).toISOString().slice(11, 21) + " UTC";
  return "t = " + fmt(t, 1) + " s";
}

function fmt(v, digits) {
  return v === null || v === undefined ? "" : Number(v).toFixed(digits || 0);
}
function esc(s) {
  return String(s === null || s === undefined ? "" : s)
    .replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
function hasPos(d) {
  return d.lat_deg !== null && d.lat_deg !== undefined && d.lon_deg !== null && d.lon_deg !== undefined;
}
function kindOf(d) { return d.source === "mlat" || d.source === "radar" ? d.source : "adsb"; }
function kindName(d) { return d.non_cooperative ? "non-cooperative" : KIND_NAMES[kindOf(d)]; }
function label(d) { return d.callsign || (d.icao ? d.icao : d.track_id); }
function flat(points) {
  const out = [];
  for (const [lat, lon] of points) out.push(worldX(lon), worldY(lat));
  return out;
}
function bandKey(b) {
  return [b.bistatic_range_m, b.bistatic_range_sigma_m].concat(b.tx || [], b.rx || []).join(",");
}

/* Take one track state: its place in world pixels, its trail, its bistatic band. */
function upsert(d, trail) {
  const id = d.track_id;
  let t = state.tracks.get(id);
  if (!t) {
    t = { d, kind: null, label: "", labelWidth: null, wx: null, wy: null, trail: null,
      band: null, bandKey: null };
    state.tracks.set(id, t);
    if (trail) t.trail = flat(trail.slice(-TRAIL_POINTS));
  }
  t.d = d;
  t.kind = kindOf(d);
  const text = label(d) + (d.alt_baro_ft === null || d.alt_baro_ft === undefined ? "" : " " + fmt(d.alt_baro_ft) + " ft");
  if (text !== t.label) { t.label = text; t.labelWidth = null; }
  if (hasPos(d)) {
    t.wx = worldX(d.lon_deg); t.wy = worldY(d.lat_deg);
    const p = t.trail || (t.trail = []);
    if (p.length < 2 || p[p.length - 2] !== t.wx || p[p.length - 1] !== t.wy) {
      p.push(t.wx, t.wy);
      if (p.length > 2 * TRAIL_POINTS) p.splice(0, 2);
    }
  } else {
    t.wx = t.wy = null; t.trail = null;
  }
  const key = !hasPos(d) && d.bistatic ? bandKey(d.bistatic) : null;
  if (key !== t.bandKey) {
    t.bandKey = key;
    const band = key === null ? null : bistaticBand(d.bistatic, BAND_POINTS);
    t.band = band && { outer: flat(band.outer), inner: flat(band.inner) };
  }
  trackLayer.dirty = true;
}

function drop(id) {
  if (!state.tracks.delete(id)) return;
  trackLayer.dirty = true;
  if (state.selected === id) select(null);
}

function select(id) {
  state.selected = id;
  trackLayer.selected = id;
  trackLayer.dirty = true;
  state.listDirty = true;
  renderDetail();
  wake();
}

function bistaticText(b) {
  return "range " + fmt(b.bistatic_range_m / 1000, 2) + " km (\u03c3 " + fmt(b.bistatic_range_sigma_m) + " m)"
    + ", rate " + fmt(b.range_rate_mps, 1) + " m/s (\u03c3 " + fmt(b.range_rate_sigma_mps, 1) + ")"
    + ", Doppler " + fmt(b.doppler_hz, 1) + " Hz";
}
function place(p) { return p ? fmt(p[0], 5) + ", " + fmt(p[1], 5) : ""; }

function renderDetail() {
  const box = document.getElementById("detail");
  const t = state.selected && state.tracks.get(state.selected);
  if (!t) { box.hidden = true; box.innerHTML = ""; box.dataset.html = ""; return; }
  const d = t.d, b = d.bistatic;
  const hasEllipse = d.err95_major_m !== null && d.err95_major_m !== undefined;
  const rows = [
    ["track", d.track_id], ["ICAO", d.icao || "none (no transponder)"], ["callsign", d.callsign],
    ["kind", KIND_NAMES[kindOf(d)]],
    ["non-cooperative", d.non_cooperative ? "yes: radar only, no transponder heard" : null],
    ["status", d.status], ["squawk", d.squawk], ["category", d.category],
    ["position", hasPos(d) ? fmt(d.lat_deg, 5) + ", " + fmt(d.lon_deg, 5)
      : b ? "none: on the bistatic band drawn" : "none"],
    ["altitude", d.alt_baro_ft === null || d.alt_baro_ft === undefined ? "" : fmt(d.alt_baro_ft) + " ft baro"
      + (d.alt_geom_ft === null || d.alt_geom_ft === undefined ? "" : ", " + fmt(d.alt_geom_ft) + " ft geom")],
    ["speed", d.gs_kt === null || d.gs_kt === undefined ? "" : fmt(d.gs_kt, 1) + " kt, track " + fmt(d.track_deg, 1) + "\u00b0"],
    ["vertical rate", d.vrate_fpm === null || d.vrate_fpm === undefined ? "" : fmt(d.vrate_fpm) + " ft/min"],
    ["uncertainty (95 %)", (d.h_err95_m === null || d.h_err95_m === undefined ? "" : fmt(d.h_err95_m) + " m horizontal")
      + (d.v_err95_m === null || d.v_err95_m === undefined ? "" : ", " + fmt(d.v_err95_m) + " m vertical")],
    ["95 % ellipse, semi-axes", hasEllipse ? fmt(d.err95_major_m) + " m \u00d7 " + fmt(d.err95_minor_m)
      + " m, major axis " + fmt(d.err95_orient_deg) + "\u00b0 from north" : null],
  ];
  if (b) {
    rows.push(["radar node", b.node],
      ["bistatic range", fmt(b.bistatic_range_m) + " m (\u03c3 " + fmt(b.bistatic_range_sigma_m) + " m)"],
      ["range rate", fmt(b.range_rate_mps, 1) + " m/s (\u03c3 " + fmt(b.range_rate_sigma_mps, 1) + " m/s)"],
      ["Doppler", fmt(b.doppler_hz, 1) + " Hz"],
      ["transmitter", place(b.tx)], ["receiver", place(b.rx)]);
  }
  rows.push(
    ["sources", KIND_NAMES[kindOf(d)]],
    ["sensors", (d.sensors || []).join(", ")],
    ["updates", d.n_updates],
    ["update age", fmt(Math.max(0, state.nowS - d.last_update_s), 1) + " s"],
    ["track age", fmt(d.age_s, 1) + " s"],
    ["time (UTC)", d.utc ? new Date(d.utc * 1000).toISOString().replace("T", " ").slice(0, 21) : ""]);
  let html = '<button class="close" title="close">\u00d7</button><b>' + esc(label(d)) + "</b>"
    + '<table id="detail-fields">' + rows.filter(r => r[1] !== null && r[1] !== undefined && r[1] !== "")
      .map(r => "<tr><td>" + esc(r[0]) + "</td><td>" + esc(r[1]) + "</td></tr>").join("") + "</table>";
  const events = (d.events || []).slice().reverse();
  if (events.length) {
    html += "<div>last events</div><ul>" + events.map(e => "<li>" + fmtClock(e.t_s) + ": "
      + esc(e.event) + (e.zone ? " " + esc(e.zone) : "") + "</li>").join("") + "</ul>";
  }
  if (html === box.dataset.html && !box.hidden) return;  // unchanged: no layout
  box.dataset.html = html;
  box.innerHTML = html;
  box.hidden = false;
  box.querySelector(".close").onclick = () => select(null);
}

/* Replace an element's HTML only when it changed (each change costs a layout). */
const shownHtml = new Map();
function setHtml(id, html) {
  if (shownHtml.get(id) === html) return;
  shownHtml.set(id, html);
  document.getElementById(id).innerHTML = html;
}

function sortValue(d, key) {
  if (key === "age") return state.nowS - d.last_update_s;
  if (key === "hex") return d.hex || d.track_id;
  const v = d[key];
  return v === null || v === undefined ? null : v;
}

/* The track list: sorted once a second; only the rows in view (and a few around them)
   are in the DOM, between two spacer rows, so a thousand tracks cost a screenful of rows. */
const listBox = document.querySelector("#tracks").parentElement;
const listBody = document.querySelector("#tracks tbody");
const LIST_OVERSCAN = 8;
let listRows = [];
let listHtml = "";
let rowPx = 18;           // measured from the first row drawn
let rowPxMeasured = false;
let rowsWanted = false;   // scrolled: redraw the rows in view on the next frame

function rowHtml(d) {
  return '<tr data-track="' + esc(d.track_id) + '"'
    + (d.track_id === state.selected ? ' class="sel"' : "") + "><td>" + esc(d.hex) + "</td><td>"
    + esc(d.callsign) + '</td><td class="k-' + kindOf(d) + '">' + kindName(d) + "</td><td>"
    + fmt(d.alt_baro_ft) + "</td><td>" + fmt(d.gs_kt) + "</td><td>" + fmt(d.track_deg)
    + "</td><td>" + fmt(d.h_err95_m) + "</td><td>" + fmt(Math.max(0, state.nowS - d.last_update_s), 1)
    + "</td></tr>";
}
function spacer(px) { return px > 0 ? '<tr class="pad"><td colspan="8" style="height:' + px + 'px"></td></tr>' : ""; }

function renderRows() {
  rowsWanted = false;
  const first = Math.max(0, Math.floor(listBox.scrollTop / rowPx) - LIST_OVERSCAN);
  const last = Math.min(listRows.length, first + Math.ceil(listBox.clientHeight / rowPx) + 2 * LIST_OVERSCAN);
  const html = spacer(first * rowPx) + listRows.slice(first, last).map(rowHtml).join("")
    + spacer((listRows.length - last) * rowPx);
  if (html === listHtml) return;  // the rows in view are unchanged: no DOM work
  listHtml = html;
  listBody.innerHTML = html;
  if (!rowPxMeasured) {  // reading a row's height forces a layout: once
    const row = listBody.querySelector("tr[data-track]");
    const px = row ? row.getBoundingClientRect().height : 0;
    if (px > 0) { rowPx = px; rowPxMeasured = true; }
  }
}
listBox.addEventListener("scroll", () => { rowsWanted = true; wake(); }, { passive: true });

function renderList() {
  state.listDirty = false;
  const rows = [];
  const nopos = [];
  const counts = { adsb: 0, mlat: 0, radar: 0 };
  for (const t of state.tracks.values()) {
    counts[t.kind] += 1;
    if (t.kind === "radar" && !hasPos(t.d)) nopos.push(t.d); else rows.push(t.d);
  }
  const key = state.sortKey, dir = state.sortDir;
  rows.sort((a, b) => {
    const x = sortValue(a, key), y = sortValue(b, key);
    if (x === y) return 0;
    if (x === null) return 1;
    if (y === null) return -1;
    return (x < y ? -1 : 1) * dir;
  });
  listRows = rows;
  renderRows();
  setHtml("ntracks", String(rows.length));
  setHtml("nopos", nopos.map(d => '<li data-track="' + esc(d.track_id)
    + '"' + (d.track_id === state.selected ? ' class="sel"' : "") + "><b>" + esc(d.track_id) + "</b>"
    + (d.bistatic ? " " + esc(d.bistatic.node) + ": " + esc(bistaticText(d.bistatic))
      : d.sensors && d.sensors.length ? " (" + esc(d.sensors.join(", ")) + ")" : "")
    + " \u00b7 " + esc(d.status) + "</li>").join(""));
  setHtml("nnopos", String(nopos.length));
  setHtml("counts", "ADS-B " + counts.adsb + " \u00b7 MLAT " + counts.mlat + " \u00b7 radar "
    + counts.radar + " \u00b7 " + fmtClock(state.nowS));
  document.querySelectorAll("#tracks th").forEach(th => {
    th.classList.toggle("asc", th.dataset.key === key && dir > 0);
    th.classList.toggle("desc", th.dataset.key === key && dir < 0);
  });
  if (state.selected) renderDetail();
}

/* Centre on a track: its position, or the whole band of a bistatic one. */
function showTrack(t) {
  if (hasPos(t.d)) map.panTo([t.d.lat_deg, t.d.lon_deg]);
  else if (t.d.bistatic) {
    const band = bistaticBand(t.d.bistatic, 32);
    if (band) map.fitBounds(band.outer, { maxZoom: 11 });
  }
}

document.querySelector("#tracks thead").addEventListener("click", ev => {
  const key = ev.target.dataset && ev.target.dataset.key;
  if (!key) return;
  if (state.sortKey === key) state.sortDir = -state.sortDir;
  else { state.sortKey = key; state.sortDir = key === "hex" || key === "callsign" ? 1 : -1; }
  renderList();
});
document.querySelector("#tracks tbody").addEventListener("click", ev => {
  const tr = ev.target.closest("tr");
  if (!tr) return;
  select(tr.dataset.track);
  const t = state.tracks.get(tr.dataset.track);
  if (t) showTrack(t);
});
document.getElementById("nopos").addEventListener("click", ev => {
  const li = ev.target.closest("li");
  if (!li) return;
  select(li.dataset.track);
  const t = state.tracks.get(li.dataset.track);
  if (t) showTrack(t);
});
map.on("click", ev => {
  const id = trackLayer.hit(ev.containerPoint);
  if (id !== null) select(id);
});
let hoverPoint = null;
map.on("mousemove", ev => { hoverPoint = ev.containerPoint; wake(); });
map.on("mouseout", () => { hoverPoint = null; map.getContainer().classList.remove("over-track"); });

/* Receivers are redrawn when their state changes, and for a grown coverage at most every
   COVERAGE_PERIOD_MS (redrawing the coverage redraws the basemap's canvas); in between only
   the range-Doppler pictures are renewed. */
let receiversShown = "";
let coverageShownAt = -Infinity;
function renderReceivers(list) {
  const rd = (state.config && state.config.range_doppler) || [];
  const json = JSON.stringify([list.map(r => Object.assign({}, r, { coverage_m: null })), rd]);
  const now = performance.now();
  if (json === receiversShown && now - coverageShownAt < COVERAGE_PERIOD_MS) {
    document.querySelectorAll("#receivers img").forEach(img => {
      img.src = img.src.replace(/\?t=\d+$/, "?t=" + Date.now());
    });
    return;
  }
  receiversShown = json;
  coverageShownAt = now;
  layers.receivers.clearLayers();
  layers.coverage.clearLayers();
  state.receivers.clear();
  const items = [];
  for (const r of list) {
    state.receivers.set(r.name, r);
    const cls = r.online ? "online" : "offline";
    let baseline = "";
    if (r.tx) {  // a radar node's transmitter: the baseline to it, and a mast
      L.polyline([r.tx, [r.lat, r.lon]], { renderer: canvas, color: COLORS.radar, weight: 1.5,
        opacity: 0.8, interactive: false }).addTo(layers.receivers);
      L.marker(r.tx, {
        icon: L.divIcon({ className: "", html: '<div class="txmark" data-tx="' + esc(r.name) + '"></div>',
          iconSize: [12, 12], iconAnchor: [6, 10] }),
        title: "transmitter of " + r.name, keyboard: false,
      }).addTo(layers.receivers);
      baseline = ", transmitter " + place(r.tx) + ", baseline "
        + fmt(rangeBearing(r.tx[0], r.tx[1], r.lat, r.lon)[0] / 1000, 1) + " km";
    }
    L.marker([r.lat, r.lon], {
      icon: L.divIcon({ className: "", html: '<div class="rx ' + cls + '" data-receiver="' + esc(r.name) + '"></div>',
        iconSize: [10, 10], iconAnchor: [5, 5] }),
      title: r.name + " (" + cls + ")", keyboard: false,
    }).addTo(layers.receivers);
    const bins = r.coverage_m || [];
    // measured coverage: the farthest track seen in each bearing sector, joined
    const step = 360 / Math.max(1, bins.length);
    const ring = [];
    bins.forEach((m, i) => { if (m > 0) ring.push(destination(r.lat, r.lon, (i + 0.5) * step, m)); });
    if (ring.length >= 3) {
      L.polygon(ring, { renderer: canvas, color: "#2e7d32", weight: 1, dashArray: "3 4",
        fillOpacity: 0.03, interactive: false }).addTo(layers.coverage);
    }
    items.push("<li>" + esc(r.name) + " (" + esc(r.kind) + ') <span class="state-' + cls + '">' + cls + "</span>"
      + (r.sync ? ", sync " + esc(r.sync) : "") + esc(baseline)
      + (rd.includes(r.name) ? '<br><img alt="range-Doppler map of ' + esc(r.name)
        + '" src="data/range_doppler/' + encodeURIComponent(r.name) + ".png?t=" + Date.now() + '">' : "")
      + "</li>");
    if (!centred && list.length) { map.setView([r.lat, r.lon], 7); centred = true; }
  }
  document.getElementById("receivers").innerHTML = items.join("");
}

function renderZones(zones) {
  layers.zones.clearLayers();
  state.zones = zones || [];
  const items = [];
  for (const z of state.zones) {
    const style = { color: z.noncooperative_only ? "#c0162c" : "#7b3fa0", weight: 2, dashArray: "6 4",
      fillOpacity: 0.06, renderer: canvas, interactive: false };
    const shape = z.center ? L.circle(z.center, Object.assign({ radius: z.radius_m }, style))
      : L.polygon(z.polygon, style);
    shape.addTo(layers.zones);
    const band = z.alt_min_ft === null && z.alt_max_ft === null ? "all altitudes"
      : (z.alt_min_ft === null ? "" : z.alt_min_ft + " ft") + "\u2013"
        + (z.alt_max_ft === null ? "" : z.alt_max_ft + " ft");
    items.push("<li>" + esc(z.name) + " " + esc(band) + (z.noncooperative_only ? ", non-cooperative only" : "")
      + ' <span class="zone-count" data-zone="' + esc(z.name) + '"></span></li>');
  }
  document.getElementById("zones").innerHTML = items.join("");
  document.getElementById("zones-box").hidden = !state.zones.length;
}

function onMessage(msg) {
  state.messages += 1;
  if (msg.type === "snapshot") {
    state.config = msg.config;
    document.getElementById("node").textContent = msg.config.node;
    if (msg.config.tile_url && !tileLayer) {
      tileLayer = L.tileLayer(msg.config.tile_url, { maxZoom: 18 }).addTo(map);
      tileLayer.bringToBack();
    }
    const keep = new Set(msg.tracks.map(d => d.track_id));
    for (const id of Array.from(state.tracks.keys())) if (!keep.has(id)) drop(id);
    state.nowS = msg.now_s;
    for (const d of msg.tracks) upsert(d, d.trail);
    renderZones(msg.config.zones);
    renderReceivers(msg.receivers);
  } else if (msg.type === "tracks") {
    state.nowS = Math.max(state.nowS, msg.now_s);
    for (const d of msg.tracks) upsert(d, null);
    for (const id of msg.dropped) drop(id);
  } else if (msg.type === "receivers") {
    renderReceivers(msg.receivers);
  }
  state.listDirty = true;
}

function record(list, value) {
  list.push(value);
  if (list.length > 600) list.shift();
}

let socket = null;
let retryMs = 500;
function connect() {
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host
    + location.pathname.replace(/[^/]*$/, "") + "ws";
  socket = new WebSocket(url);
  socket.onopen = () => {
    state.connected = true; retryMs = 500;
    const c = document.getElementById("conn");
    c.textContent = "live"; c.className = "conn on";
  };
  socket.onmessage = ev => {
    const t0 = performance.now();
    try { onMessage(JSON.parse(ev.data)); } catch (e) { console.error(e); }
    record(perf.handleMs, performance.now() - t0);
    wake();
  };
  socket.onclose = () => {
    state.connected = false;
    const c = document.getElementById("conn");
    c.textContent = "reconnecting"; c.className = "conn off";
    setTimeout(connect, retryMs);          // the daemon restarts: try again, gently
    retryMs = Math.min(retryMs * 2, 5000);
  };
}

map.on("zoomend", () => { state.listDirty = true; wake(); });

/* One animation frame does the drawing that is due: the tracks when they changed, else the
   list when it changed and a second has passed. No frame is asked for while nothing
   changes, so an idle page costs nothing. */
let lastList = -LIST_PERIOD_MS;
let frameAsked = false;
let listTimer = null;
function wake() {
  if (!frameAsked) { frameAsked = true; requestAnimationFrame(frame); }
}
function frame(now) {
  frameAsked = false;
  if (trackLayer.dirty) {
    const t0 = performance.now();
    trackLayer.redraw();
    record(perf.drawMs, performance.now() - t0);
    if (state.listDirty) wake();  // the list in a frame of its own
  } else if (state.listDirty) {
    const wait = lastList + LIST_PERIOD_MS - now;
    if (wait <= 0) {
      lastList = now;
      const t0 = performance.now();
      renderList();
      record(perf.listMs, performance.now() - t0);
    } else if (listTimer === null) {
      listTimer = setTimeout(() => { listTimer = null; wake(); }, wait);
    }
  }
  if (rowsWanted) renderRows();
  if (hoverPoint) {
    map.getContainer().classList.toggle("over-track", trackLayer.hit(hoverPoint) !== null);
    hoverPoint = null;
  }
}
wake();
connect();
