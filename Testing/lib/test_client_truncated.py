"""The stdlib client against a server that dies in the middle of its reply (what the kill harness caught: an engine
killed while it answered a submit left the client with an http.client.IncompleteRead instead of an EngineError)."""

from __future__ import annotations

import socket
import threading

import pytest

from MedSynthLib.client import EngineClient, EngineError


def _half_answering_server() -> tuple[str, threading.Thread, socket.socket]:
    """A server that reads one request, promises 100 bytes of JSON, sends 5 and closes the connection."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        for _ in range(2):  # one JSON call and one download
            connection, _ = listener.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"sta")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}", thread, listener


def test_a_reply_cut_short_is_one_engine_error_and_leaves_no_partial_download(tmp_path):
    url, thread, listener = _half_answering_server()
    try:
        client = EngineClient(url, token="t", timeout=5)
        with pytest.raises(EngineError) as info:
            client.submit("generate", {"n": 1})
        assert "stopped in the middle of its reply" in str(info.value) and "\n" not in str(info.value)
        with pytest.raises(EngineError):
            client.download("job-1", "case/case_t1.nii.gz", tmp_path)
        assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # neither the file nor its .partial
    finally:
        thread.join(5)
        listener.close()
