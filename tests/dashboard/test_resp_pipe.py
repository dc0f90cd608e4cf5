"""The sampler's bare-socket Redis pipeline, against the suite's real Redis."""

from __future__ import annotations

import socket

import pytest
import redis

from dashboard import resp_pipe
from dashboard.resp_pipe import RespPipe, pack


def test_it_sends_commands_in_one_trip_and_reads_each_reply(redis_url):
    pipe = RespPipe(redis_url, timeout_s=2.0)
    try:
        replies = pipe.execute(
            [
                pack("SET", "resp-pipe:k", "välue", "EX", 60),
                pack("GET", "resp-pipe:k"),
                pack("GET", "resp-pipe:missing"),
                pack("RPUSH", "resp-pipe:list", b"\r\n", 1.5),
                pack("LRANGE", "resp-pipe:list", 0, -1),
                pack("DEL", "resp-pipe:list"),
            ]
        )
    finally:
        pipe.close()
    assert replies == [b"OK", "välue".encode(), None, 2, [b"\r\n", b"1.5"], 1]
    assert redis.Redis.from_url(redis_url).ttl("resp-pipe:k") > 0


def test_an_error_reply_raises_after_every_reply_is_read_and_the_socket_stays_usable(redis_url):
    pipe = RespPipe(redis_url, timeout_s=2.0)
    try:
        with pytest.raises(resp_pipe.ReplyError, match="unknown command"):
            pipe.execute([pack("NO-SUCH-COMMAND"), pack("PING")])
        assert pipe.execute([pack("PING")]) == [b"PONG"]
    finally:
        pipe.close()


def test_a_large_value_arrives_whole(redis_url):
    pipe = RespPipe(redis_url, timeout_s=2.0)
    value = b"x" * 300_000
    try:
        assert pipe.execute([pack("SET", "resp-pipe:big", value), pack("GET", "resp-pipe:big")]) == [
            b"OK",
            value,
        ]
    finally:
        pipe.close()


def test_it_selects_the_database_of_the_url(redis_url):
    other = redis_url.rsplit("/", 1)[0] + "/3"
    pipe = RespPipe(other, timeout_s=2.0)
    try:
        pipe.execute([pack("SET", "resp-pipe:db", "3")])
    finally:
        pipe.close()
    assert redis.Redis.from_url(other).get("resp-pipe:db") == b"3"
    assert redis.Redis.from_url(redis_url).get("resp-pipe:db") is None


def test_a_redis_that_is_gone_raises_and_the_next_call_connects_again(redis_url):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pipe = RespPipe(("127.0.0.1", port), timeout_s=0.5)
    with pytest.raises(OSError):
        pipe.execute([pack("PING")])
    pipe._address = redis_url  # Redis is back (at the address the next connect reads)
    assert pipe.execute([pack("PING")]) == [b"PONG"]
    pipe.close()


def test_it_leaves_tls_and_other_schemes_to_redis_py():
    assert resp_pipe.supports("redis://h:1/0") and resp_pipe.supports("unix:///tmp/r.sock")
    assert resp_pipe.supports(("127.0.0.1", 6379))
    assert not resp_pipe.supports("rediss://h:1/0")
