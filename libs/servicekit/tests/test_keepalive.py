"""The servers accept the keepalive pings our own channels send.

A channel made by servicekit.channels pings every ``KEEPALIVE_TIME_MS`` while a call is
open. gRPC servers by default refuse pings more often than every five minutes and answer
with GOAWAY ``too_many_pings``, which dropped careplan's long-lived referral event stream
and the fronts' connections every few minutes. The server's ping policy must admit the
channels' interval, with or without calls in flight."""

from __future__ import annotations

from servicekit import channels, server


def test_the_server_permits_the_pings_of_our_channels() -> None:
    options = dict(server.transport_options(server.ServerSettings()))
    assert options["grpc.keepalive_permit_without_calls"] == 1
    assert options["grpc.http2.min_ping_interval_without_data_ms"] == server.MIN_PING_INTERVAL_MS
    assert server.MIN_PING_INTERVAL_MS < channels.KEEPALIVE_TIME_MS
