"""Device provisioning: Mosquitto password lines as mosquitto_passwd writes them, ACL lines."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.provision import acl_lines, check_password_line, mosquitto_password_line

PASSWD = shutil.which("mosquitto_passwd")


def test_the_line_has_mosquitto_2s_shape() -> None:
    line = mosquitto_password_line("DEV-0001", "secret")
    user, rest = line.split(":", 1)
    empty, tag, iterations, salt, digest = rest.split("$")
    assert (user, empty, tag, iterations) == ("DEV-0001", "", "7", "101")
    assert len(base64.b64decode(salt)) == 12
    assert len(base64.b64decode(digest)) == 64
    assert mosquitto_password_line("DEV-0001", "secret") != line  # a fresh salt each time


def test_a_known_vector() -> None:
    # PBKDF2-HMAC-SHA512("secret", salt=12 zero bytes, 101 iterations), computed independently
    # with OpenSSL: openssl kdf -keylen 64 -kdfopt digest:SHA512 -kdfopt pass:secret
    #   -kdfopt hexsalt:000000000000000000000000 -kdfopt iter:101 PBKDF2
    line = mosquitto_password_line("u", "secret", salt=bytes(12))
    openssl = (
        "18A8B8A83CA4F72E045A660FC281B667AF310D2E2079922D04E2FEAFD3B3A111"
        "5439FB72CDAD1B04D60F8B8DAB6C1330B363932EC7F162F69B7BFE307951352D"
    )
    assert line == "u:$7$101$AAAAAAAAAAAAAAAA$" + base64.b64encode(bytes.fromhex(openssl)).decode()
    assert check_password_line(line, "secret")
    assert not check_password_line(line, "Secret")


@pytest.mark.skipif(PASSWD is None, reason="mosquitto_passwd is not installed")
@pytest.mark.parametrize("password", ["secret", "pässwörd with spaces", "x" * 200])
def test_lines_agree_with_the_real_mosquitto_passwd(tmp_path: Path, password: str) -> None:
    assert PASSWD is not None
    target = tmp_path / "passwd"
    subprocess.run([PASSWD, "-c", "-b", str(target), "DEV-9", password], check=True)
    theirs = target.read_text().strip()
    salt = base64.b64decode(theirs.split("$")[3])
    assert mosquitto_password_line("DEV-9", password, salt=salt) == theirs
    assert check_password_line(theirs, password)
    assert not check_password_line(theirs, password + "!")


@settings(max_examples=50, deadline=None)
@given(text=st.text(max_size=80))
def test_checking_a_hostile_line_never_raises(text: str) -> None:
    assert check_password_line(text, "secret") in (True, False)


@pytest.mark.parametrize("user", ["", "a:b", "a b", "a\nb"])
def test_unusable_usernames_are_refused(user: str) -> None:
    with pytest.raises(ValueError):
        mosquitto_password_line(user, "secret")


def test_acl_lines_let_a_device_publish_only_its_own_topics() -> None:
    assert acl_lines("DEV-0001") == [
        "user DEV-0001",
        "topic write waste/v1/devices/DEV-0001/telemetry",
        "topic write waste/v1/devices/DEV-0001/lock",
        "topic write waste/v1/devices/DEV-0001/status",
    ]
    with pytest.raises(ValueError):
        acl_lines("DEV/#")


def test_simulate_needs_an_admin_token(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from waste.cli import app

    monkeypatch.delenv("WASTE_ADMIN_TOKEN", raising=False)
    result = CliRunner().invoke(app, ["devices", "simulate", "--trips", "1"])
    assert result.exit_code == 2
    assert "admin-token" in result.output
