"""The sampler's tick on one redis-py connection: its commands written in one send and their
replies read back, without redis-py's Pipeline object around them.

A Pipeline costs ~0.7 ms of CPU a call when made once a second (its command stack, response
callbacks and retry layers are cold in the CPU's caches by then; ~0.1 ms in a tight loop), where
the same commands on a bare socket cost ~0.25 ms, most of it the two system calls. Going one level
down, to redis-py's ``Connection``, keeps what that library does well (URLs with TLS, unix sockets,
AUTH and the database number; connect and socket timeouts; the reply parser, hiredis where
installed) and drops only the per-call layers.

A failure (refused, reset, no answer within the pool's timeout) disconnects and raises; the next
call connects again. An error reply raises ``ReplyError`` once every reply has been read, so the
connection stays in step."""

from __future__ import annotations

from collections.abc import Sequence

import redis
from redis.exceptions import ResponseError as ReplyError

Arg = bytes | str | int | float
Command = Sequence[Arg]

__all__ = ["Command", "ReplyError", "RespPipe"]


class RespPipe:
    """``execute([("SET", key, value), ("PUBLISH", channel, data), ...])`` -> the replies, in order."""

    def __init__(self, pool: redis.ConnectionPool) -> None:
        # Its own connection, made like the pool's others but never handed out by it: the tick
        # thread is its only user.
        self._pool = pool
        self._connection: redis.connection.AbstractConnection | None = None

    def execute(self, commands: Sequence[Command]) -> list:
        if self._connection is None:
            self._connection = self._pool.make_connection()
        connection = self._connection
        replies: list = []
        try:
            # pack_commands() keeps large values in chunks of their own, which sendall() would
            # write one system call each; joined, the tick is one write.
            packed = [b"".join(connection.pack_commands(commands))]
            connection.send_packed_command(packed, check_health=False)
            for _ in commands:
                try:
                    replies.append(connection.read_response())
                except ReplyError as exc:  # read on: the next reply belongs to the next command
                    replies.append(exc)
        except BaseException:
            self.close()
            raise
        for reply in replies:
            if isinstance(reply, ReplyError):
                raise reply
        return replies

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.disconnect()
            finally:
                self._connection = None
