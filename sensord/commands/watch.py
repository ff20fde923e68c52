"""``sensord watch``: the live track table from a broker alone (what ``sensord run`` publishes)."""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import aiomqtt
from rich.console import Console
from rich.live import Live

from sensord.errors import UserError
from sensord.geo import Site
from sensord.ui.table import TrackBoard, make_console, update_from_payload


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("watch", help="show the live track table from MQTT")
    p.add_argument("--host", default="127.0.0.1", help="broker host (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=1883, help="broker port (default 1883)")
    p.add_argument("--node", default="rx0", help="sensor node name (default rx0)")
    p.add_argument("--prefix", default="sensord", help="topic prefix (default sensord)")
    p.add_argument("--site", help="receiver LAT,LON for distances (deg)")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--plain", action="store_true", help="one line per update, no live table")
    p.set_defaults(func=run)


def _site(text: str | None) -> Site | None:
    if text is None:
        return None
    try:
        lat, lon = (float(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"--site {text!r}: expected LAT,LON in degrees") from None
    return Site(lat, lon, 0.0)


def apply_status(board: TrackBoard, payload: bytes) -> str | None:
    """The node's status: offline marks every retained state stale; returns a line, or None."""
    try:
        state = json.loads(payload).get("state") if payload else None
    except (ValueError, AttributeError):
        return "status: unreadable payload ignored"
    was_stale, board.stale = board.stale, state == "offline"
    if board.stale and not was_stale:
        return "node offline: the track states shown are its last, not live (stale)"
    if was_stale and not board.stale:
        return "node online"
    return None


def apply_message(board: TrackBoard, topic: str, payload: bytes) -> str | None:
    """Apply one tracks/<id> or status message to the board; returns a plain text line, or
    None."""
    if topic.endswith("/status"):
        return apply_status(board, payload)
    track_id = topic.rsplit("/", 1)[-1]
    if not payload:  # empty retained payload: the track was dropped
        board.drop(track_id)
        return f"{track_id} dropped"
    try:
        update = update_from_payload(json.loads(payload))
    except (ValueError, KeyError, TypeError):
        return f"{track_id}: unreadable payload ignored"
    board.update([update])
    row = {r[0]: r for r in board.rows()}.get(update.icao or update.track_id)
    return " ".join(field or "-" for field in row) if row else None


async def _watch(args: argparse.Namespace, board: TrackBoard, console: Console) -> None:
    base = f"{args.prefix}/{args.node}"
    deadline = None if args.duration is None else time.monotonic() + args.duration
    live = None if args.plain or not console.is_terminal else Live(board.table(), console=console)
    try:
        async with aiomqtt.Client(args.host, args.port, identifier=None) as client:
            await client.subscribe(f"{base}/status", qos=1)
            await client.subscribe(f"{base}/tracks/+", qos=1)
            if live:
                live.start()
            messages = aiter(client.messages)
            while deadline is None or time.monotonic() < deadline:
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    msg = await asyncio.wait_for(anext(messages), timeout)
                except TimeoutError:
                    break
                line = apply_message(board, str(msg.topic), bytes(msg.payload or b""))
                if live:
                    live.update(
                        board.table(title=f"sensord watch {args.host}:{args.port} {args.node}")
                    )
                elif line:
                    console.print(line, highlight=False, soft_wrap=True)
    except aiomqtt.MqttError as exc:
        raise UserError(f"broker {args.host}:{args.port}: {exc}") from None
    finally:
        if live:
            live.stop()


def run(args: argparse.Namespace) -> int:
    board = TrackBoard(_site(args.site))
    console = make_console()
    asyncio.run(_watch(args, board, console))
    console.print(board.table(title=f"sensord watch {args.node}"))
    return 0
