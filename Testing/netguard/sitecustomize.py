"""A network guard for child processes in the no-network test: with this folder first on PYTHONPATH, Python loads
it at start-up, and every socket connection or name lookup that leaves the machine is refused and recorded.

It appends to the file named by ``MEDSYNTH_NET_LOG``: ``armed <pid>`` once per process (the proof it ran), and
``refused <pid> <address>`` for every attempt, so an attempt the program swallowed still fails the test.
"""

from __future__ import annotations

import ipaddress
import os
import socket

_LOG = os.environ.get("MEDSYNTH_NET_LOG")
_LOCAL_NAMES = {None, "", "localhost", "localhost.localdomain", "ip6-localhost"}


def _record(line: str) -> None:
    if _LOG:
        with open(_LOG, "a") as handle:
            handle.write(f"{line} {os.getpid()}\n")


def _local(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _check(sock: socket.socket, address: object) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not _local(address[0]):  # type: ignore[index]
        _record(f"refused {address!r}")
        raise ConnectionRefusedError(f"network access to {address!r} is refused by the test's guard")


_connect, _connect_ex, _sendto, _getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto, socket.getaddrinfo


def _guarded_connect(self: socket.socket, address: object) -> None:
    _check(self, address)
    return _connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    _check(self, address)
    return _connect_ex(self, address)


def _guarded_sendto(self: socket.socket, data: bytes, *args: object) -> int:
    _check(self, args[-1])
    return _sendto(self, data, *args)


def _guarded_getaddrinfo(host: object, *args: object, **kwargs: object) -> list:
    if not _local(host):
        _record(f"refused lookup {host!r}")
        raise socket.gaierror(socket.EAI_NONAME, f"name lookup of {host!r} is refused by the test's guard")
    return _getaddrinfo(host, *args, **kwargs)


if _LOG:
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    socket.socket.sendto = _guarded_sendto  # type: ignore[method-assign]
    socket.getaddrinfo = _guarded_getaddrinfo
    _record("armed")
