/* Every track on one canvas: bistatic bands, 95 % ellipses, trails, markers and labels,
   redrawn in one pass (at most once per animation frame, when something changed) instead
   of one DOM element per track. Positions are kept in world pixels at zoom 0 (geo.js), so
   a redraw only scales and shifts them. Clicks are hit-tested here (nearest marker). */
"use strict";

const TRACK_COLORS = { adsb: "#1f5fbf", mlat: "#d9730d", radar: "#c0162c" };
const ARROW = [[0, -9], [6, 8], [0, 4], [-6, 8]];         // nose up: heading 0
const DIAMOND = [[0, -9], [7, 0], [0, 9], [-7, 0]];       // radar only
const HIT_RADIUS_PX = 12;
const TRAIL_STEP_PX = 2;
const SPRITE_HALF_PX = 16;   // marker pictures are 32 px squares, centred on the track
const SPRITE_STEP_DEG = 3;
const LABEL_FONT = "11px system-ui, sans-serif";

function rgba(hex, alpha) {
  const n = parseInt(hex.slice(1), 16);
  return "rgba(" + (n >> 16) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + alpha + ")";
}

/* Add one polygon of world-zoom-0 points [x0, y0, x1, y1, ...] to the current path. */
function polygonPath(ctx, pts, k, ox, oy) {
  ctx.moveTo(pts[0] * k - ox, pts[1] * k - oy);
  for (let i = 2; i < pts.length; i += 2) ctx.lineTo(pts[i] * k - ox, pts[i + 1] * k - oy);
  ctx.closePath();
}

const TrackCanvas = L.Layer.extend({
  options: {
    padding: 0.1,       // drawn this far beyond the view, so a pan shows no empty edge
    errorZoom: 9,       // 95 % ellipses from this zoom
    labelZoom: 8,       // labels from this zoom, or with few tracks
    labelMaxTracks: 60,
  },

  /* tracks: Map id -> {d, kind, wx, wy, trail: [x, y, ...], band: {outer, inner}}. */
  initialize(tracks, options) {
    L.setOptions(this, options);
    this.tracks = tracks;
    this.selected = null;
    this.dirty = true;
    this.drawnMarkers = 0;
    this._sprites = new Map();  // kind, fading, heading step -> a marker's picture
  },

  onAdd(map) {
    const pane = map.getPane("tracks") || map.createPane("tracks");
    pane.style.zIndex = 450;  // over the basemap, zones and baselines; under receivers
    this._canvas = L.DomUtil.create("canvas", "track-canvas leaflet-zoom-animated", pane);
    this._ctx = this._canvas.getContext("2d");
    map.on("viewreset moveend resize", this._reset, this);
    map.on("zoomanim", this._animateZoom, this);
    this._reset();
  },

  onRemove(map) {
    map.off("viewreset moveend resize", this._reset, this);
    map.off("zoomanim", this._animateZoom, this);
    L.DomUtil.remove(this._canvas);
  },

  /* The view moved or zoomed: place the canvas over it (plus padding) and draw now. */
  _reset() {
    const map = this._map, size = map.getSize(), pad = this.options.padding;
    const min = map.containerPointToLayerPoint(size.multiplyBy(-pad)).round();
    const w = Math.round(size.x * (1 + 2 * pad)), h = Math.round(size.y * (1 + 2 * pad));
    const ratio = window.devicePixelRatio || 1;
    this._min = min;
    this._bounds = L.latLngBounds(map.layerPointToLatLng(min),
      map.layerPointToLatLng(min.add([w, h])));
    L.DomUtil.setPosition(this._canvas, min);
    if (this._w !== w || this._h !== h || this._ratio !== ratio) {
      this._canvas.width = Math.round(w * ratio); this._canvas.height = Math.round(h * ratio);
      this._canvas.style.width = w + "px"; this._canvas.style.height = h + "px";
      if (this._ratio !== ratio) this._sprites.clear();
      this._w = w; this._h = h; this._ratio = ratio;
    }
    this.redraw();
  },

  _animateZoom(e) {
    const map = this._map;
    const offset = map._latLngBoundsToNewLayerBounds(this._bounds, e.zoom, e.center).min;
    L.DomUtil.setTransform(this._canvas, offset, map.getZoomScale(e.zoom));
  },

  /* Canvas pixel = world0 * k - (ox, oy). */
  _frame() {
    const map = this._map, origin = map.getPixelOrigin();
    return { k: Math.pow(2, map.getZoom()), ox: origin.x + this._min.x, oy: origin.y + this._min.y };
  },

  redraw() {
    if (!this._map || this._map._animatingZoom) { this.dirty = true; return; }
    this.dirty = false;
    const ctx = this._ctx, map = this._map, zoom = map.getZoom();
    const { k, ox, oy } = this._frame();
    ctx.setTransform(this._ratio, 0, 0, this._ratio, 0, 0);
    ctx.clearRect(0, 0, this._w, this._h);
    const w = this._w, h = this._h, m = 20;
    const visible = [];
    for (const t of this.tracks.values()) {
      if (t.wx === null) continue;
      const x = t.wx * k - ox, y = t.wy * k - oy;
      t.cx = x; t.cy = y;
      if (x > -m && y > -m && x < w + m && y < h + m) visible.push(t);
    }
    this._bands(ctx, k, ox, oy);
    if (zoom >= this.options.errorZoom) this._ellipses(ctx, visible, zoom);
    this._trails(ctx, k, ox, oy);
    this._markers(ctx, visible);
    if (zoom >= this.options.labelZoom || this.tracks.size <= this.options.labelMaxTracks) {
      this._labels(ctx, visible);
    }
    this.drawnMarkers = visible.length;
  },

  /* Bistatic tracks (no position): the +-2 sigma band between two focal ellipses. */
  _bands(ctx, k, ox, oy) {
    const c = TRACK_COLORS.radar;
    ctx.setLineDash([5, 4]);
    for (const t of this.tracks.values()) {
      if (!t.band) continue;
      const sel = t.d.track_id === this.selected;
      ctx.beginPath();
      polygonPath(ctx, t.band.outer, k, ox, oy);
      polygonPath(ctx, t.band.inner, k, ox, oy);
      ctx.fillStyle = rgba(c, sel ? 0.22 : 0.1);
      ctx.fill("evenodd");
      ctx.strokeStyle = c; ctx.lineWidth = sel ? 2 : 1;
      ctx.stroke();
    }
    ctx.setLineDash([]);
  },

  /* The 95 % ellipse (semi-axes, major axis clockwise from north), or the circle of
     h_err95_m when the track has no ellipse. One path per kind. */
  _ellipses(ctx, visible, zoom) {
    for (const kind in TRACK_COLORS) {
      ctx.beginPath();
      let any = false;
      for (const t of visible) {
        if (t.kind !== kind) continue;
        const d = t.d, ppm = pixelsPerMetre(d.lat_deg, zoom);
        let rx, ry, rot;
        if (d.err95_major_m && d.err95_minor_m !== null && d.err95_minor_m !== undefined
            && d.err95_orient_deg !== null && d.err95_orient_deg !== undefined) {
          rx = d.err95_major_m * ppm; ry = d.err95_minor_m * ppm;
          rot = (d.err95_orient_deg - 90) * RAD;  // from north clockwise -> from +x clockwise
        } else if (d.h_err95_m) {
          rx = ry = d.h_err95_m * ppm; rot = 0;
        } else continue;
        if (rx < 1) continue;
        ctx.moveTo(t.cx + rx * Math.cos(rot), t.cy + rx * Math.sin(rot));
        ctx.ellipse(t.cx, t.cy, rx, Math.max(ry, 0.5), rot, 0, 2 * Math.PI);
        any = true;
      }
      if (!any) continue;
      ctx.fillStyle = rgba(TRACK_COLORS[kind], 0.08); ctx.fill();
      ctx.strokeStyle = TRACK_COLORS[kind]; ctx.lineWidth = 1; ctx.globalAlpha = 0.8;
      ctx.stroke(); ctx.globalAlpha = 1;
    }
  },

  /* Trails, one path per kind; a point closer than TRAIL_STEP_PX to the last one drawn is
     skipped (at zoom 7 two minutes of flight are a dozen pixels, not 120 segments). */
  _trails(ctx, k, ox, oy) {
    ctx.lineWidth = 1.5; ctx.globalAlpha = 0.7;
    for (const kind in TRACK_COLORS) {
      ctx.beginPath();
      for (const t of this.tracks.values()) {
        const p = t.trail, n = p ? p.length : 0;
        if (t.kind !== kind || n < 4) continue;
        let lx = p[0] * k - ox, ly = p[1] * k - oy;
        ctx.moveTo(lx, ly);
        for (let i = 2; i < n; i += 2) {
          const x = p[i] * k - ox, y = p[i + 1] * k - oy;
          if (Math.abs(x - lx) + Math.abs(y - ly) < TRAIL_STEP_PX && i < n - 2) continue;
          ctx.lineTo(x, y); lx = x; ly = y;
        }
      }
      ctx.strokeStyle = TRACK_COLORS[kind];
      ctx.stroke();
    }
    ctx.globalAlpha = 1;
  },

  /* Arrows (ADS-B, MLAT) and diamonds with a heading tick (radar), rotated to the track
     over ground: copies of small pictures drawn once per kind, fading and 3-degree step
     (a copy costs far less than filling and stroking a path). */
  _markers(ctx, visible) {
    for (const t of visible) {
      const heading = Math.round((t.d.track_deg || 0) / SPRITE_STEP_DEG) % (360 / SPRITE_STEP_DEG);
      const sprite = this._sprite(t.kind, t.d.status === "coasting", heading);
      ctx.drawImage(sprite, Math.round(t.cx) - SPRITE_HALF_PX, Math.round(t.cy) - SPRITE_HALF_PX,
        2 * SPRITE_HALF_PX, 2 * SPRITE_HALF_PX);
    }
    const sel = this.selected && this.tracks.get(this.selected);
    if (sel && sel.wx !== null && visible.includes(sel)) {
      ctx.beginPath(); ctx.arc(sel.cx, sel.cy, 13, 0, 2 * Math.PI);
      ctx.lineWidth = 2; ctx.strokeStyle = "#000"; ctx.stroke();
    }
  },

  _sprite(kind, faded, step) {
    const key = kind + (faded ? "-" : "+") + step;
    let sprite = this._sprites.get(key);
    if (sprite) return sprite;
    const r = this._ratio || 1, size = 2 * SPRITE_HALF_PX;
    sprite = document.createElement("canvas");
    sprite.width = sprite.height = Math.ceil(size * r);
    const g = sprite.getContext("2d"), a = step * SPRITE_STEP_DEG * RAD;
    g.setTransform(r * Math.cos(a), r * Math.sin(a), -r * Math.sin(a), r * Math.cos(a),
      r * SPRITE_HALF_PX, r * SPRITE_HALF_PX);  // scaled, rotated to the heading, centred
    g.globalAlpha = faded ? 0.5 : 1;
    g.beginPath();
    const shape = kind === "radar" ? DIAMOND : ARROW;
    shape.forEach(([x, y], i) => (i ? g.lineTo(x, y) : g.moveTo(x, y)));
    g.closePath();
    g.fillStyle = TRACK_COLORS[kind]; g.fill();
    g.lineWidth = 0.8; g.strokeStyle = "#000"; g.stroke();
    if (kind === "radar") {
      g.beginPath(); g.moveTo(0, -9); g.lineTo(0, -15); g.lineWidth = 1.5; g.stroke();
    }
    this._sprites.set(key, sprite);
    return sprite;
  },

  _labels(ctx, visible) {
    ctx.font = LABEL_FONT; ctx.textBaseline = "middle";
    ctx.beginPath();
    for (const t of visible) {
      if (t.labelWidth === null) t.labelWidth = ctx.measureText(t.label).width;
      ctx.rect(t.cx + 12, t.cy - 7, t.labelWidth + 4, 14);
    }
    ctx.fillStyle = "rgba(255,255,255,0.75)"; ctx.fill();
    ctx.fillStyle = "#222";
    for (const t of visible) ctx.fillText(t.label, t.cx + 14, t.cy);
  },

  /* The track under a container point: the nearest marker within HIT_RADIUS_PX, else a
     bistatic band containing the point; null if none. */
  hit(point) {
    const map = this._map, { k, ox, oy } = this._frame();
    const pane = map._getMapPanePos(), min = this._min;
    const px = point.x - pane.x - min.x, py = point.y - pane.y - min.y;  // canvas pixels
    let best = null, bestD2 = HIT_RADIUS_PX * HIT_RADIUS_PX;
    for (const t of this.tracks.values()) {
      if (t.wx === null) continue;
      const dx = t.wx * k - ox - px, dy = t.wy * k - oy - py, d2 = dx * dx + dy * dy;
      if (d2 < bestD2) { best = t; bestD2 = d2; }
    }
    if (best) return best.d.track_id;
    const ll = map.containerPointToLatLng(point), tol = 6 / pixelsPerMetre(ll.lat, map.getZoom());
    for (const t of this.tracks.values()) {
      const b = t.band && t.d.bistatic;
      if (!b) continue;
      const sum = rangeBearing(b.tx[0], b.tx[1], ll.lat, ll.lng)[0]
        + rangeBearing(ll.lat, ll.lng, b.rx[0], b.rx[1])[0]
        - rangeBearing(b.tx[0], b.tx[1], b.rx[0], b.rx[1])[0];
      if (Math.abs(sum - b.bistatic_range_m) <= 2 * (b.bistatic_range_sigma_m || 0) + tol) {
        return t.d.track_id;
      }
    }
    return null;
  },

  /* A track's marker in page coordinates (for tests and benchmarks), or null. */
  pagePoint(t) {
    if (t.wx === null || !this._map) return null;
    const { k, ox, oy } = this._frame(), rect = this._canvas.getBoundingClientRect();
    return { x: rect.left + t.wx * k - ox, y: rect.top + t.wy * k - oy };
  },

  /* The canvas's RGBA at a place (tests read what was drawn there). */
  pixel(lat, lon) {
    const { k, ox, oy } = this._frame(), r = this._ratio;
    const x = Math.round((worldX(lon) * k - ox) * r), y = Math.round((worldY(lat) * k - oy) * r);
    if (x < 0 || y < 0 || x >= this._canvas.width || y >= this._canvas.height) return null;
    return Array.from(this._ctx.getImageData(x, y, 1, 1).data);
  },
});
