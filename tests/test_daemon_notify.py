"""sd_notify datagrams to a real socket: path and abstract (@) names, watchdog interval."""

import os
import socket

from sensord.daemon.notify import Notifier


def receive_all(sock: socket.socket) -> list[str]:
    sock.settimeout(0.5)
    got = []
    try:
        while True:
            got.append(sock.recv(4096).decode())
    except TimeoutError:
        return got


def test_notify_to_a_socket_path(tmp_path):
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        n = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "4000000"})
        assert n.enabled and n.watchdog_interval_s == 2.0
        n.ready("samples flowing")
        n.watchdog()
        n.stopping()
        assert receive_all(sock) == ["READY=1\nSTATUS=samples flowing", "WATCHDOG=1", "STOPPING=1"]


def test_notify_to_an_abstract_socket():
    name = f"sensord-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        Notifier({"NOTIFY_SOCKET": "@" + name}).ready()
        assert receive_all(sock) == ["READY=1"]


def test_without_systemd_nothing_is_sent_and_a_vanished_socket_is_no_error(tmp_path):
    quiet = Notifier({})
    assert not quiet.enabled and quiet.watchdog_interval_s is None
    quiet.ready()
    gone = Notifier({"NOTIFY_SOCKET": str(tmp_path / "absent")})
    gone.watchdog()  # systemd may be gone at shutdown: ignored, no exception
    other_pid = Notifier({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"})
    assert other_pid.watchdog_interval_s is None  # the watchdog is meant for another process
