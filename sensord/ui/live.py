"""The live track table and the run summary as a sink (``sensord replay`` and ``demo``)."""

from __future__ import annotations

from rich.console import Console, Group
from rich.live import Live
from rich.progress import Progress

from sensord.sinks.base import Step
from sensord.ui.summary import RunSummary
from sensord.ui.table import TrackBoard


class LiveTableSink:
    """Feeds the summary and the board (which reads the fan-out's track table).

    On a terminal: the progress bar and, with ``show_table``, the live table. Without
    one, with ``show_table``: one line per track status change.
    """

    name = "table"
    queue_max = 1024  # the summary counts every step: large enough that a replay never drops

    def __init__(
        self,
        board: TrackBoard,
        summary: RunSummary,
        console: Console,
        progress: Progress,
        show_table: bool,
    ) -> None:
        self.board = board
        self.summary = summary
        self.console = console
        self.progress = progress
        self.show_table = show_table
        self._live: Live | None = None

    async def start(self) -> None:
        if self.console.is_terminal:
            self._live = Live(Group(self.progress), console=self.console, refresh_per_second=4)
            self._live.start()

    async def handle(self, step: Step) -> None:
        self.board.observe(step.updates)
        self.summary.add_frames(step.frames)
        self.summary.add_updates(step.updates, [self.board.range_m(u) for u in step.updates])
        if self._live is not None:
            shown = (self.progress, self.board.table()) if self.show_table else (self.progress,)
            self._live.update(Group(*shown))
        elif self.show_table:
            for change in step.changes:
                u = change.update
                who = f"{u.icao or u.track_id} {u.callsign or ''}"
                line = f"{self.board.now_s:8.2f} s {who} {u.status.value}"
                self.console.print(line, highlight=False)

    async def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
