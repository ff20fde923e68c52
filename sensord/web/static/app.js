/* sensord air picture: tracks over WebSocket, drawn with Leaflet on a vector basemap.
   Messages from /ws (see docs/web.md): snapshot (everything, on every connection),
   tracks (changed states and drops), receivers, zone_events. The page sends nothing. */
"use strict";

const COLORS = { adsb: "#1f5fbf", mlat: "#d9730d", radar: "#c0162c" };
const KIND_NAMES = { adsb: "ADS-B", mlat: "MLAT", radar: "radar only" };
const LABEL_ZOOM = 8;        // labels shown from this zoom, or with few tracks
const LABEL_MAX_TRACKS = 60;
const ERROR_ZOOM = 9;        // 95 % uncertainty drawn from this zoom
const TRAIL_POINTS = 120;
const LIST_PERIOD_MS = 1000; // the track list is redrawn at most this often
const LIST_MAX_ROWS = 200;   // rows drawn (the first of the sorted list); the rest counted

const state = {
  tracks: new Map(),   // track_id -> {d: payload, marker, trail, err}
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
window.sensord = { state, perf: { handleMs: [], frameMs: [], listMs: [] } };

const map = L.map("map", { preferCanvas: true, worldCopyJump: true, zoomControl: true })
  .setView([52.0, 4.5], 7);
window.sensord.map = map;
const canvas = L.canvas({ padding: 0.3 });
const layers = {
  zones: L.layerGroup().addTo(map),
  coverage: L.layerGroup().addTo(map),
  trails: L.layerGroup().addTo(map),
  errors: L.layerGroup().addTo(map),
  receivers: L.layerGroup().addTo(map),
  tracks: L.layerGroup().addTo(map),
};
let basemapLoaded = false;
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
  basemapLoaded = true;
}).catch(() => {});

function fmt(v, digits) {
  return v === null || v === undefined ? "" : Number(v).toFixed(digits || 0);
}
function esc(s) {
  return String(s === null || s === undefined ? "" : s)
    .replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
function hasPos(d) { return d.lat_deg !== null && d.lat_deg !== undefined && d.lon_deg !== null; }
function kindOf(d) { return d.source === "mlat" || d.source === "radar" ? d.source : "adsb"; }
function label(d) { return d.callsign || (d.icao ? d.icao : d.track_id); }

function arrowSvg(kind) {
  const c = COLORS[kind];
  const shape = kind === "radar"
    ? '<path d="M10 1 L17 10 L10 19 L3 10 Z" fill="' + c + '" stroke="#000" stroke-width="0.8"/>'
      + '<path d="M10 1 L10 -5" stroke="#000" stroke-width="1.5"/>'
    : '<path d="M10 1 L16 18 L10 14 L4 18 Z" fill="' + c + '" stroke="#000" stroke-width="0.8"/>';
  return '<svg width="20" height="20" viewBox="0 0 20 20">' + shape + "</svg>";
}

function makeMarker(id, d) {
  const kind = kindOf(d);
  const icon = L.divIcon({
    className: "",
    html: '<div class="ac k-' + kind + '" data-track="' + esc(id) + '">' + arrowSvg(kind)
      + '<span class="lbl"></span></div>',
    iconSize: [20, 20],
    iconAnchor: [10, 10],
  });
  const marker = L.marker([d.lat_deg, d.lon_deg], { icon, keyboard: false });
  marker.on("click", () => select(id));
  marker.addTo(layers.tracks);
  marker.kind = kind;
  return marker;
}

function styleMarker(t) {
  const el = t.marker.getElement();
  if (!el) return;
  const div = el.firstChild;
  const svg = div.firstChild;
  const heading = t.d.track_deg === null || t.d.track_deg === undefined ? 0 : t.d.track_deg;
  svg.style.transform = "rotate(" + heading + "deg)";
  div.lastChild.textContent = label(t.d) + " " + (t.d.alt_baro_ft === null ? "" : fmt(t.d.alt_baro_ft) + " ft");
  div.classList.toggle("coasting", t.d.status === "coasting");
  div.classList.toggle("sel", state.selected === t.d.track_id);
}

function upsert(d, trail) {
  const id = d.track_id;
  let t = state.tracks.get(id);
  const kind = kindOf(d);
  if (!t) {
    t = { d, marker: null, trail: null, err: null, seenWall: performance.now() };
    state.tracks.set(id, t);
  }
  t.d = d;
  t.seenWall = performance.now();
  if (hasPos(d)) {
    const ll = [d.lat_deg, d.lon_deg];
    if (t.marker && t.marker.kind !== kind) {
      layers.tracks.removeLayer(t.marker); t.marker = null;
      if (t.trail) t.trail.setStyle({ color: COLORS[kind] });
    }
    if (!t.marker) t.marker = makeMarker(id, d); else t.marker.setLatLng(ll);
    if (!t.trail) {
      t.trail = L.polyline(trail || [], { renderer: canvas, color: COLORS[kind], weight: 1.5,
        opacity: 0.7, interactive: false }).addTo(layers.trails);
    }
    const pts = t.trail.getLatLngs();
    const last = pts.length ? pts[pts.length - 1] : null;
    if (!last || last.lat !== ll[0] || last.lng !== ll[1]) {
      if (pts.length >= TRAIL_POINTS) { pts.shift(); t.trail.setLatLngs(pts); }
      t.trail.addLatLng(ll);
    }
    styleMarker(t);
    drawError(t);
  } else if (t.marker) {
    removeGraphics(t);
  }
}

function drawError(t) {
  const show = map.getZoom() >= ERROR_ZOOM && hasPos(t.d) && t.d.h_err95_m;
  if (!show) {
    if (t.err) { layers.errors.removeLayer(t.err); t.err = null; }
    return;
  }
  const ll = [t.d.lat_deg, t.d.lon_deg];
  if (!t.err) {
    t.err = L.circle(ll, { radius: t.d.h_err95_m, renderer: canvas, color: COLORS[kindOf(t.d)],
      weight: 1, fillOpacity: 0.08, interactive: false }).addTo(layers.errors);
  } else {
    t.err.setLatLng(ll); t.err.setRadius(t.d.h_err95_m);
  }
}

function removeGraphics(t) {
  if (t.marker) { layers.tracks.removeLayer(t.marker); t.marker = null; }
  if (t.trail) { layers.trails.removeLayer(t.trail); t.trail = null; }
  if (t.err) { layers.errors.removeLayer(t.err); t.err = null; }
}

function drop(id) {
  const t = state.tracks.get(id);
  if (!t) return;
  removeGraphics(t);
  state.tracks.delete(id);
  if (state.selected === id) select(null);
}

function select(id) {
  const prev = state.selected;
  state.selected = id;
  for (const key of [prev, id]) {
    const t = key && state.tracks.get(key);
    if (t && t.marker) styleMarker(t);
  }
  state.listDirty = true;
  renderDetail();
}

function renderDetail() {
  const box = document.getElementById("detail");
  const t = state.selected && state.tracks.get(state.selected);
  if (!t) { box.hidden = true; box.innerHTML = ""; return; }
  const d = t.d;
  const rows = [
    ["track", d.track_id], ["ICAO", d.icao || "none (no transponder)"], ["callsign", d.callsign],
    ["kind", KIND_NAMES[kindOf(d)]], ["status", d.status], ["squawk", d.squawk],
    ["category", d.category],
    ["position", hasPos(d) ? fmt(d.lat_deg, 5) + ", " + fmt(d.lon_deg, 5) : "none"],
    ["altitude", d.alt_baro_ft === null ? "" : fmt(d.alt_baro_ft) + " ft baro"
      + (d.alt_geom_ft === null ? "" : ", " + fmt(d.alt_geom_ft) + " ft geom")],
    ["speed", d.gs_kt === null ? "" : fmt(d.gs_kt, 1) + " kt, track " + fmt(d.track_deg, 1) + "\u00b0"],
    ["vertical rate", d.vrate_fpm === null ? "" : fmt(d.vrate_fpm) + " ft/min"],
    ["uncertainty (95 %)", (d.h_err95_m === null ? "" : fmt(d.h_err95_m) + " m horizontal")
      + (d.v_err95_m === null ? "" : ", " + fmt(d.v_err95_m) + " m vertical")],
    ["sources", KIND_NAMES[kindOf(d)]],
    ["sensors", (d.sensors || []).join(", ")],
    ["updates", d.n_updates],
    ["update age", fmt(Math.max(0, state.nowS - d.last_update_s), 1) + " s"],
    ["track age", fmt(d.age_s, 1) + " s"],
    ["time (UTC)", d.utc ? new Date(d.utc * 1000).toISOString().replace("T", " ").slice(0, 21) : ""],
  ];
  let html = '<button class="close" title="close">\u00d7</button><b>' + esc(label(d)) + "</b>"
    + '<table id="detail-fields">' + rows.filter(r => r[1] !== null && r[1] !== undefined && r[1] !== "")
      .map(r => "<tr><td>" + esc(r[0]) + "</td><td>" + esc(r[1]) + "</td></tr>").join("") + "</table>";
  const events = (d.events || []).slice().reverse();
  if (events.length) {
    html += "<div>last events</div><ul>" + events.map(e => "<li>" + fmt(e.t_s, 1) + " s: "
      + esc(e.event) + (e.zone ? " " + esc(e.zone) : "") + "</li>").join("") + "</ul>";
  }
  box.innerHTML = html;
  box.hidden = false;
  box.querySelector(".close").onclick = () => select(null);
}

function sortValue(d, key) {
  if (key === "age") return state.nowS - d.last_update_s;
  if (key === "hex") return d.hex || d.track_id;
  const v = d[key];
  return v === null || v === undefined ? null : v;
}

function renderList() {
  state.listDirty = false;
  const rows = [];
  const nopos = [];
  const counts = { adsb: 0, mlat: 0, radar: 0 };
  for (const t of state.tracks.values()) {
    counts[kindOf(t.d)] += 1;
    if (kindOf(t.d) === "radar" && !hasPos(t.d)) nopos.push(t.d); else rows.push(t.d);
  }
  const key = state.sortKey, dir = state.sortDir;
  rows.sort((a, b) => {
    const x = sortValue(a, key), y = sortValue(b, key);
    if (x === y) return 0;
    if (x === null) return 1;
    if (y === null) return -1;
    return (x < y ? -1 : 1) * dir;
  });
  const html = rows.slice(0, LIST_MAX_ROWS).map(d => '<tr data-track="' + esc(d.track_id) + '"'
    + (d.track_id === state.selected ? ' class="sel"' : "") + "><td>" + esc(d.hex) + "</td><td>"
    + esc(d.callsign) + '</td><td class="k-' + kindOf(d) + '">' + KIND_NAMES[kindOf(d)] + "</td><td>"
    + fmt(d.alt_baro_ft) + "</td><td>" + fmt(d.gs_kt) + "</td><td>" + fmt(d.track_deg)
    + "</td><td>" + fmt(d.h_err95_m) + "</td><td>" + fmt(Math.max(0, state.nowS - d.last_update_s), 1)
    + "</td></tr>").join("");
  document.querySelector("#tracks tbody").innerHTML = html;
  document.getElementById("ntracks").textContent = rows.length > LIST_MAX_ROWS
    ? rows.length + " (first " + LIST_MAX_ROWS + " listed)" : rows.length;
  document.getElementById("nopos").innerHTML = nopos.map(d => '<li data-track="' + esc(d.track_id)
    + '">' + esc(d.track_id) + (d.sensors && d.sensors.length ? " (" + esc(d.sensors.join(", ")) + ")" : "")
    + " " + esc(d.status) + "</li>").join("");
  document.getElementById("nnopos").textContent = nopos.length;
  document.getElementById("counts").textContent = "ADS-B " + counts.adsb + " \u00b7 MLAT "
    + counts.mlat + " \u00b7 radar " + counts.radar + " \u00b7 t = " + fmt(state.nowS, 1) + " s";
  document.querySelectorAll("#tracks th").forEach(th => {
    th.classList.toggle("asc", th.dataset.key === key && dir > 0);
    th.classList.toggle("desc", th.dataset.key === key && dir < 0);
  });
  map.getContainer().classList.toggle("labels",
    map.getZoom() >= LABEL_ZOOM || state.tracks.size <= LABEL_MAX_TRACKS);
  if (state.selected) renderDetail();
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
  const id = tr.dataset.track;
  select(id);
  const t = state.tracks.get(id);
  if (t && hasPos(t.d)) map.panTo([t.d.lat_deg, t.d.lon_deg]);
});
document.getElementById("nopos").addEventListener("click", ev => {
  const li = ev.target.closest("li");
  if (li) select(li.dataset.track);
});

function destination(lat, lon, bearingDeg, rangeM) {
  const R = 6371008.8, d = rangeM / R, b = bearingDeg * Math.PI / 180;
  const p1 = lat * Math.PI / 180, l1 = lon * Math.PI / 180;
  const p2 = Math.asin(Math.sin(p1) * Math.cos(d) + Math.cos(p1) * Math.sin(d) * Math.cos(b));
  const l2 = l1 + Math.atan2(Math.sin(b) * Math.sin(d) * Math.cos(p1), Math.cos(d) - Math.sin(p1) * Math.sin(p2));
  return [p2 * 180 / Math.PI, l2 * 180 / Math.PI];
}

function renderReceivers(list) {
  layers.receivers.clearLayers();
  layers.coverage.clearLayers();
  state.receivers.clear();
  const rd = (state.config && state.config.range_doppler) || [];
  const items = [];
  for (const r of list) {
    state.receivers.set(r.name, r);
    const cls = r.online ? "online" : "offline";
    L.marker([r.lat, r.lon], {
      icon: L.divIcon({ className: "", html: '<div class="rx ' + cls + '" data-receiver="' + esc(r.name) + '"></div>',
        iconSize: [10, 10], iconAnchor: [5, 5] }),
      title: r.name + " (" + cls + ")",
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
      + (r.sync ? ", sync " + esc(r.sync) : "")
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
    const perf = window.sensord.perf.handleMs;
    perf.push(performance.now() - t0);
    if (perf.length > 600) perf.shift();
  };
  socket.onclose = () => {
    state.connected = false;
    const c = document.getElementById("conn");
    c.textContent = "reconnecting"; c.className = "conn off";
    setTimeout(connect, retryMs);          // the daemon restarts: try again, gently
    retryMs = Math.min(retryMs * 2, 5000);
  };
}

map.on("zoomend", () => {
  for (const t of state.tracks.values()) drawError(t);
  state.listDirty = true;
});

let lastList = 0;
let lastFrame = performance.now();
function frame(now) {
  const frames = window.sensord.perf.frameMs;
  frames.push(now - lastFrame);
  if (frames.length > 600) frames.shift();
  lastFrame = now;
  if (state.listDirty && now - lastList >= LIST_PERIOD_MS) {
    lastList = now;
    const t0 = performance.now();
    renderList();
    const list = window.sensord.perf.listMs;
    list.push(performance.now() - t0);
    if (list.length > 600) list.shift();
  }
  requestAnimationFrame(frame);
}
requestAnimationFrame(frame);
connect();
