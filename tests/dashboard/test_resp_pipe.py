"""The sampler's one-send Redis pipeline on a redis-py connection, against real Redis servers."""

from __future__ import annotations

import socket
import subprocess
import time

import pytest
import redis

from dashboard.resp_pipe import ReplyError, RespPipe


def pipe_for(url: str, **kwargs) -> RespPipe:
    return RespPipe(redis.ConnectionPool.from_url(url, socket_timeout=2.0, **kwargs))


def test_it_sends_commands_in_one_trip_and_reads_each_reply(redis_url):
    pipe = pipe_for(redis_url)
    try:
        replies = pipe.execute(
            [
                ("SET", "resp-pipe:k", "välue", "EX", 60),
                ("GET", "resp-pipe:k"),
                ("GET", "resp-pipe:missing"),
                ("RPUSH", "resp-pipe:list", b"\r\n", 1.5),
                ("LRANGE", "resp-pipe:list", 0, -1),
                ("DEL", "resp-pipe:list"),
            ]
        )
    finally:
        pipe.close()
    assert replies == [b"OK", "välue".encode(), None, 2, [b"\r\n", b"1.5"], 1]
    assert redis.Redis.from_url(redis_url).ttl("resp-pipe:k") > 0


def test_an_error_reply_raises_after_every_reply_is_read_and_the_connection_stays_in_step(redis_url):
    pipe = pipe_for(redis_url)
    try:
        with pytest.raises(ReplyError, match="unknown command"):
            pipe.execute([("NO-SUCH-COMMAND",), ("SET", "resp-pipe:after", "1")])
        assert redis.Redis.from_url(redis_url).get("resp-pipe:after") == b"1"  # the second still ran
        assert pipe.execute([("PING",)]) == [b"PONG"]
    finally:
        pipe.close()


def test_it_selects_the_database_of_the_url(redis_url):
    other = redis_url.rsplit("/", 1)[0] + "/3"
    pipe = pipe_for(other)
    try:
        pipe.execute([("SET", "resp-pipe:db", "3")])
    finally:
        pipe.close()
    assert redis.Redis.from_url(other).get("resp-pipe:db") == b"3"
    assert redis.Redis.from_url(redis_url).get("resp-pipe:db") is None


def test_a_dropped_connection_raises_once_and_the_next_call_connects_again(redis_url):
    pipe = pipe_for(redis_url)
    try:
        pipe.execute([("CLIENT", "SETNAME", "resp-pipe-victim")])
        admin = redis.Redis.from_url(redis_url)
        victim = next(c for c in admin.client_list() if c["name"] == "resp-pipe-victim")
        admin.client_kill_filter(_id=victim["id"])
        with pytest.raises(redis.ConnectionError):
            pipe.execute([("PING",)])
        assert pipe.execute([("PING",)]) == [b"PONG"]
    finally:
        pipe.close()


def test_a_redis_that_asks_for_a_password_gets_the_urls(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--requirepass",
            "s3cret",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                redis.Redis(port=port, password="s3cret").ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        refused = pipe_for(f"redis://127.0.0.1:{port}/0")
        with pytest.raises(redis.AuthenticationError):
            refused.execute([("PING",)])
        pipe = pipe_for(f"redis://:s3cret@127.0.0.1:{port}/0")
        try:
            assert pipe.execute([("SET", "k", "v"), ("GET", "k")]) == [b"OK", b"v"]
        finally:
            pipe.close()
    finally:
        server.terminate()
        server.wait()
