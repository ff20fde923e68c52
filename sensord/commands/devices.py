"""``sensord devices``: the RTL-SDR dongles attached (index, serial, tuner, gains)."""

from __future__ import annotations

import argparse

from sensord.source.rtlsdr import import_pyrtlsdr

# librtlsdr's enum rtlsdr_tuner
TUNER_NAMES = {
    0: "unknown",
    1: "E4000",
    2: "FC0012",
    3: "FC0013",
    4: "FC2580",
    5: "R820T",
    6: "R828D",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("devices", help="list attached RTL-SDR dongles and their tuner gains")
    p.set_defaults(func=run)


def describe_devices() -> list[str]:
    """One line per attached dongle; opening each reads its tuner and gain list."""
    rtlsdr = import_pyrtlsdr()
    lines = []
    for index, serial in enumerate(rtlsdr.RtlSdr.get_device_serial_addresses()):
        try:
            sdr = rtlsdr.RtlSdr(device_index=index)
        except OSError as exc:
            lines.append(f"{index}  serial {serial or '-'}  (cannot open: {exc})")
            continue
        try:
            tuner = TUNER_NAMES.get(sdr.get_tuner_type(), "unknown")
            gains = " ".join(f"{g / 10:g}" for g in sdr.get_gains())
        finally:
            sdr.close()
        lines.append(f"{index}  serial {serial or '-'}  tuner {tuner}  gains_db {gains}")
    return lines


def run(args: argparse.Namespace) -> int:
    lines = describe_devices()
    if not lines:
        print("no RTL-SDR dongle attached")
        return 1
    print("\n".join(lines))
    return 0
