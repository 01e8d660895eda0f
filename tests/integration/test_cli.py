"""The `gateway` command as a newcomer meets it, run in-process (`gateway.cli.main`)."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
from typing import Any

import pytest

from gateway.cli import main
from gateway.settings import Settings
from tests.conftest import gateway_env
from workflows.credentials import new_master_key


class Ran:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def gateway(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Any:
    """Run `gateway ARGS` in this process, on the session's servers, with `env` added."""

    def run(*args: str, **env: str) -> Ran:
        for name in list(os.environ):
            if name.startswith("GATEWAY_"):
                monkeypatch.delenv(name)
        for name, value in {**gateway_env(settings), **env}.items():
            if name.startswith("GATEWAY_") or name in env:
                monkeypatch.setenv(name, value)
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return Ran(code, out, err)

    return run


@pytest.mark.parametrize("url", ["mysql://u:hunter2@localhost/db", "not a url"])
def test_a_database_url_that_is_not_postgresql_is_one_line_naming_it_and_exit_2(
    gateway: Any, url: str
) -> None:
    ran = gateway("keys", "list", GATEWAY_DATABASE_URL=url)
    assert ran.code == 2
    [line] = ran.err.strip().splitlines()
    assert "GATEWAY_DATABASE_URL" in line and "postgresql://" in line
    assert "hunter2" not in ran.err and "Traceback" not in ran.err


def test_a_redis_url_that_is_not_redis_is_refused_the_same_way(gateway: Any) -> None:
    ran = gateway("keys", "list", GATEWAY_REDIS_URL="http://localhost:6379")
    assert ran.code == 2
    [line] = ran.err.strip().splitlines()
    assert "GATEWAY_REDIS_URL" in line and "redis://" in line


def test_an_unknown_gateway_variable_is_warned_about_with_the_closest_known(gateway: Any) -> None:
    ran = gateway("keys", "list", GATEWAY_PROT="9000")
    assert ran.code == 0, ran.err
    assert "GATEWAY_PROT is not a gateway setting (did you mean GATEWAY_PORT?)" in ran.err


def test_serve_on_a_busy_port_says_so_before_starting_anything(gateway: Any) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ran = gateway("serve", GATEWAY_PORT=str(port))
    assert ran.code == 2
    [line] = ran.err.strip().splitlines()
    assert f"port {port}" in line and "in use" in line and "GATEWAY_PORT" in line
    assert "Sandbox gateway" not in ran.out


def test_serve_help_lists_its_environment(gateway: Any) -> None:
    ran = gateway("serve", "--help")
    assert ran.code == 0
    for variable in (
        "GATEWAY_PORT",
        "GATEWAY_DATABASE_URL",
        "GATEWAY_REDIS_URL",
        "GATEWAY_DATA_DIR",
    ):
        assert variable in ran.out


def test_a_key_revoked_by_its_whole_value_is_revoked_without_echoing_it(gateway: Any) -> None:
    name = f"rv-{secrets.token_hex(4)}"
    assert gateway("merchants", "create", name).code == 0
    created = gateway("keys", "create", "--merchant", name)  # --mode defaults to sandbox
    assert created.code == 0, created.err
    key = created.out.strip()
    assert key.startswith("gw_sandbox_")
    key_id = key.split("_")[2]
    secret = key.split("_", 3)[3]
    revoked = gateway("keys", "revoke", key)
    assert revoked.code == 0, revoked.err
    assert revoked.out.strip() == f"revoked {key_id}"
    assert secret not in revoked.out + revoked.err
    again = gateway("keys", "revoke", key_id)
    assert again.code == 0
    assert again.out.startswith(f"{key_id} was already revoked on ")


def test_merchants_list_and_show_tell_routing_accounts_and_keys(gateway: Any) -> None:
    name = f"ls-{secrets.token_hex(4)}"
    gateway("merchants", "create", name)
    key = gateway("keys", "create", "--merchant", name).out.strip()
    listing = gateway("merchants", "list")
    assert listing.code == 0
    [row] = [line for line in listing.out.splitlines() if line.startswith(name + " ")]
    assert "sandbox" in row and "on request" in row
    shown = gateway("merchants", "show", name)
    assert shown.code == 0
    assert "processor sandbox, capture on request" in shown.out
    assert "processor accounts: none" in shown.out and "active API keys: 1" in shown.out
    assert key not in listing.out + shown.out
    missing = gateway("merchants", "show", "nobody-" + secrets.token_hex(4))
    assert missing.code == 1 and "no merchant named" in missing.err


def test_a_processor_account_cannot_take_a_built_in_processors_name(gateway: Any) -> None:
    name = f"bn-{secrets.token_hex(4)}"
    gateway("merchants", "create", name)
    env = {"GATEWAY_SECRET_KEY": new_master_key(), "STRIPE_KEY": "sk_test_" + "x" * 24}
    add = ("processors", "add", "--merchant", name, "--type", "stripe", "--secret-key-env")
    refused = gateway(*add, "STRIPE_KEY", "--name", "sandbox", **env)
    assert refused.code == 1 and "built-in processor" in refused.err


def test_a_processor_account_is_removed_unless_payments_go_to_it(gateway: Any) -> None:
    name = f"rm-{secrets.token_hex(4)}"
    gateway("merchants", "create", name)
    env = {"GATEWAY_SECRET_KEY": new_master_key(), "STRIPE_KEY": "sk_test_" + "x" * 24}
    add = ("processors", "add", "--merchant", name, "--type", "stripe", "--secret-key-env")
    assert gateway(*add, "STRIPE_KEY", "--name", "stripe-main", **env).code == 0
    assert gateway("merchants", "configure", name, "--processor", "stripe-main").code == 0
    routed = gateway("processors", "remove", "--merchant", name, "--name", "stripe-main")
    assert routed.code == 1 and "route them elsewhere first" in routed.err
    gateway("merchants", "configure", name, "--processor", "sandbox")
    removed = gateway("processors", "remove", "--merchant", name, "--name", "stripe-main")
    assert removed.code == 0, removed.err
    assert "stripe-main" not in gateway("merchants", "show", name).out
    again = gateway("processors", "remove", "--merchant", name, "--name", "stripe-main")
    assert again.code == 1 and "no processor account" in again.err


def test_a_reader_that_goes_away_ends_the_output_quietly(settings: Settings) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line is written (`| head`)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "gateway", "serve", "--help"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env=gateway_env(settings),
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr
    assert done.returncode == 1  # the output was cut short: not a success, not a crash


def test_revoking_an_unknown_whole_key_names_it_without_any_of_its_secret(gateway: Any) -> None:
    secret = "Abc_" + "x" * 20 + "_Zq9_" + "y" * 12  # token_urlsafe secrets may hold '_'
    ran = gateway("keys", "revoke", f"gw_sandbox_aaaaaaaaaaaaaaaa_{secret}")
    assert ran.code == 1 and "no API key" in ran.err
    assert "gw_sandbox_aaaaaaaaaaaaaaaa_..." in ran.err
    for part in secret.split("_"):
        assert part not in ran.err + ran.out
