/* Geometry for the air picture: great-circle steps on a spherical Earth, Web Mercator
   "world pixels" at zoom 0 (Leaflet's EPSG:3857: the world is 256 px wide), and the
   ground ellipse of a bistatic range. */
"use strict";

const EARTH_R_M = 6371008.8;     // mean radius, for ranges and bearings
const MERCATOR_R_M = 6378137;    // Web Mercator's sphere, for metres per pixel
const MERCATOR_MAX_LAT = 85.0511287798;
const RAD = Math.PI / 180;

/* The point rangeM from (lat, lon) along the initial bearing bearingDeg: [lat, lon]. */
function destination(lat, lon, bearingDeg, rangeM) {
  const d = rangeM / EARTH_R_M, b = bearingDeg * RAD;
  const p1 = lat * RAD, l1 = lon * RAD;
  const p2 = Math.asin(Math.sin(p1) * Math.cos(d) + Math.cos(p1) * Math.sin(d) * Math.cos(b));
  const l2 = l1 + Math.atan2(Math.sin(b) * Math.sin(d) * Math.cos(p1),
    Math.cos(d) - Math.sin(p1) * Math.sin(p2));
  return [p2 / RAD, l2 / RAD];
}

/* Great-circle distance (m) and initial bearing (degrees from north) from 1 to 2. */
function rangeBearing(lat1, lon1, lat2, lon2) {
  const p1 = lat1 * RAD, p2 = lat2 * RAD, dl = (lon2 - lon1) * RAD;
  const a = Math.sin((p2 - p1) / 2) ** 2 + Math.cos(p1) * Math.cos(p2) * Math.sin(dl / 2) ** 2;
  const rangeM = 2 * EARTH_R_M * Math.asin(Math.min(1, Math.sqrt(a)));
  const y = Math.sin(dl) * Math.cos(p2);
  const x = Math.cos(p1) * Math.sin(p2) - Math.sin(p1) * Math.cos(p2) * Math.cos(dl);
  return [rangeM, ((Math.atan2(y, x) / RAD) % 360 + 360) % 360];
}

/* World pixels at zoom 0: multiply by 2^zoom and subtract the map's pixel origin. */
function worldX(lon) { return 256 * (lon / 360 + 0.5); }
function worldY(lat) {
  const s = Math.sin(Math.max(-MERCATOR_MAX_LAT, Math.min(MERCATOR_MAX_LAT, lat)) * RAD);
  return 256 * (0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI));
}

/* Screen pixels per metre on the ground at latitude lat and zoom. */
function pixelsPerMetre(lat, zoom) {
  return 256 * Math.pow(2, zoom) / (2 * Math.PI * MERCATOR_R_M * Math.cos(lat * RAD));
}

/* The ground ellipse of the points p with |tx - p| + |p - rx| = sumM (foci tx and rx,
   [lat, lon, ...]), as n [lat, lon] points. A sum below the baseline gives the baseline. */
function focalEllipse(tx, rx, sumM, n) {
  const [baseM, bearing] = rangeBearing(tx[0], tx[1], rx[0], rx[1]);
  const mid = destination(tx[0], tx[1], bearing, baseM / 2);
  const axisDeg = baseM > 0 ? rangeBearing(mid[0], mid[1], rx[0], rx[1])[1] : 0;
  const a = Math.max(sumM, baseM) / 2, c = baseM / 2;
  const b = Math.sqrt(Math.max(0, a * a - c * c));
  const out = [];
  for (let k = 0; k < n; k++) {
    const t = 2 * Math.PI * k / n;
    const u = a * Math.cos(t), v = b * Math.sin(t);  // along and across the baseline
    out.push(destination(mid[0], mid[1], axisDeg + Math.atan2(v, u) / RAD, Math.hypot(u, v)));
  }
  return out;
}

/* The +-2 sigma band of a bistatic track (its `bistatic` field) as two focal ellipses,
   outer and inner, [lat, lon] points each; null when the field lacks a key it needs. */
function bistaticBand(b, n) {
  if (!b || !b.tx || !b.rx || b.bistatic_range_m === null || b.bistatic_range_m === undefined) {
    return null;
  }
  const baseM = rangeBearing(b.tx[0], b.tx[1], b.rx[0], b.rx[1])[0];
  const twoSigma = 2 * (b.bistatic_range_sigma_m || 0);
  return {
    outer: focalEllipse(b.tx, b.rx, baseM + b.bistatic_range_m + twoSigma, n),
    inner: focalEllipse(b.tx, b.rx, baseM + Math.max(0, b.bistatic_range_m - twoSigma), n),
  };
}
