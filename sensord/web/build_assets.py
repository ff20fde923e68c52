"""Rebuild the page's third-party assets in ``sensord/web/static`` from npm packages.

    npm pack leaflet world-atlas
    python -m sensord.web.build_assets leaflet-1.9.4.tgz world-atlas-2.0.2.tgz

Copies Leaflet's script, style and licence (the page draws its own markers), and turns world-atlas's
Natural Earth 1:110m TopoJSON (public domain) into a small GeoJSON basemap: land polygons
and the coast and border lines, coordinates rounded to 0.01 degrees (about 1 km, finer
than 1:110m resolves). The results are committed, so installing sensord needs no npm.
"""

from __future__ import annotations

import argparse
import json
import tarfile
from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"
LEAFLET_FILES = {
    "package/dist/leaflet.js": "leaflet.js",
    "package/dist/leaflet.css": "leaflet.css",
    "package/LICENSE": "LICENSE-leaflet.txt",
}
ATLAS_TOPOLOGY = "package/countries-110m.json"
DIGITS = 2


def decode_arcs(topology: dict) -> list[list[tuple[float, float]]]:
    """The topology's arcs as absolute (lon, lat) lists (quantized, delta-encoded input)."""
    transform = topology.get("transform")
    arcs = []
    for arc in topology["arcs"]:
        points = []
        x = y = 0
        for dx, dy in arc:
            if transform:
                x, y = x + dx, y + dy
                (sx, sy), (tx, ty) = transform["scale"], transform["translate"]
                points.append((x * sx + tx, y * sy + ty))
            else:
                points.append((dx, dy))
        arcs.append(points)
    return arcs


def ring(arcs: list[list[tuple[float, float]]], indices: list[int]) -> list[list[float]]:
    """A closed ring from arc indices (``~i``: arc i reversed), shared points once."""
    out: list[list[float]] = []
    for index in indices:
        points = arcs[index] if index >= 0 else arcs[~index][::-1]
        for k, (lon, lat) in enumerate(points):
            if k == 0 and out:
                continue
            out.append([round(lon, DIGITS), round(lat, DIGITS)])
    return out


def basemap(topology: dict) -> dict:
    """Land (multipolygon) and all coast/border lines (each arc once) as GeoJSON."""
    arcs = decode_arcs(topology)
    polygons = []
    for geometry in topology["objects"]["countries"]["geometries"]:
        if geometry["type"] == "Polygon":
            parts = [geometry["arcs"]]
        elif geometry["type"] == "MultiPolygon":
            parts = geometry["arcs"]
        else:
            continue
        polygons.extend([[ring(arcs, r) for r in part] for part in parts])
    lines = []
    for arc in arcs:
        line: list[list[float]] = []
        for lon, lat in arc:
            point = [round(lon, DIGITS), round(lat, DIGITS)]
            if not line or point != line[-1]:
                line.append(point)
        if len(line) > 1:
            lines.append(line)
    return {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"kind": "land"},
             "geometry": {"type": "MultiPolygon", "coordinates": polygons}},
            {"type": "Feature", "properties": {"kind": "lines"},
             "geometry": {"type": "MultiLineString", "coordinates": lines}},
        ],
    }  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("leaflet_tgz", type=Path)
    p.add_argument("world_atlas_tgz", type=Path)
    args = p.parse_args()
    with tarfile.open(args.leaflet_tgz) as tar:
        for member, name in LEAFLET_FILES.items():
            (STATIC / name).write_bytes(tar.extractfile(member).read())  # type: ignore[union-attr]
    with tarfile.open(args.world_atlas_tgz) as tar:
        topology = json.load(tar.extractfile(ATLAS_TOPOLOGY))  # type: ignore[arg-type]
        licence = tar.extractfile("package/LICENSE").read()  # type: ignore[union-attr]
    (STATIC / "basemap.json").write_text(json.dumps(basemap(topology), separators=(",", ":")))
    (STATIC / "LICENSE-basemap.txt").write_bytes(
        b"basemap.json: Natural Earth 1:110m countries (public domain, naturalearthdata.com),\n"
        b"via the world-atlas npm package's TopoJSON, whose licence follows.\n\n" + licence
    )


if __name__ == "__main__":
    main()
