"""DATABASE_URL with several hosts (libpq's multi-host URL, for a primary and its standbys):
Django's connections and the cluster's listening connection both get every host."""

from __future__ import annotations

from unittest import mock

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db.backends.postgresql.base import DatabaseWrapper

from jobplatform.settings.base import database_config, split_hosts
from jobs.runtime import broker

HA_URL = "postgres://app:s%40cret@db1.internal:5432,db2.internal:5433/jobs?target_session_attrs=read-write"


def test_database_config__multi_host_url_gives_host_and_port_lists():
    config = database_config(HA_URL)

    assert config["HOST"] == "db1.internal,db2.internal"
    assert config["PORT"] == "5432,5433"
    assert config["OPTIONS"]["target_session_attrs"] == "read-write"
    assert (config["USER"], config["PASSWORD"], config["NAME"]) == ("app", "s@cret", "jobs")


def test_database_config__single_host_url_is_dj_database_urls_own():
    config = database_config("postgres://app@db1.internal:6432/jobs")

    assert (config["HOST"], config["PORT"], config["NAME"]) == ("db1.internal", 6432, "jobs")
    assert "target_session_attrs" not in config["OPTIONS"]


@pytest.mark.parametrize(
    ("url", "hosts", "ports"),
    [
        ("postgres://u@h1,h2/db", "h1,h2", ""),  # every host on the default port
        ("postgres://u@h1,h2:5433/db", "h1,h2", ",5433"),  # an empty port is libpq's default
        ("postgres://u@[::1]:5432,[fd00::2]:5433/db", "::1,fd00::2", "5432,5433"),
        ("postgres://u@h%2Done:1,h2:2/db", "h-one,h2", "1,2"),
    ],
)
def test_split_hosts__host_and_port_lists(url, hosts, ports):
    one_host, got_hosts, got_ports = split_hosts(url)

    assert (got_hosts, got_ports) == (hosts, ports)
    assert "," not in one_host


@pytest.mark.parametrize("url", ["postgres://u@h1:5432,:5433/db", "postgres://u@h1:5432,h2:port/db"])
def test_split_hosts__a_malformed_host_is_refused(url):
    with pytest.raises(ImproperlyConfigured, match="multi-host"):
        split_hosts(url)


def test_django_hands_every_host_to_libpq():
    params = DatabaseWrapper(database_config(HA_URL), "ha").get_connection_params()

    assert params["host"] == "db1.internal,db2.internal"
    assert params["port"] == "5432,5433"
    assert params["target_session_attrs"] == "read-write"


def test_listening_connection__follows_the_multi_host_url():
    """The cluster's own LISTEN connection is opened from the same settings, so after a
    failover it reconnects to whichever host is the writable one."""
    with (
        mock.patch.object(broker, "connections", {"ha": DatabaseWrapper(database_config(HA_URL), "ha")}),
        mock.patch.object(broker.psycopg2, "connect") as connect,
        mock.patch.object(broker.db, "listen"),
    ):
        broker.Listener("key", "ha")._connect()

    kwargs = connect.call_args.kwargs
    assert kwargs["host"] == "db1.internal,db2.internal"
    assert kwargs["port"] == "5432,5433"
    assert kwargs["target_session_attrs"] == "read-write"
