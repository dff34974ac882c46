"""Account rules in the service layer (the page, CLI and API all go through these)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from wabulk.auth import service as users
from wabulk.auth import setup_code, throttle
from wabulk.errors import Conflict, PermissionDenied, ValidationError
from wabulk.models import Event, LoginFailure, Role, utcnow

PASSWORD = "correct horse battery"


def _auth(session, email, password=PASSWORD, address="10.0.0.1"):
    return users.authenticate(session, email, password, address, attempts_per_minute=5)


def test_first_admin_needs_the_setup_code(migrated_db) -> None:
    with migrated_db.session() as session:
        code = setup_code.issue(session)
    with (
        pytest.raises(ValidationError, match="setup code is not right"),
        migrated_db.session() as s,
    ):
        users.create_first_admin(s, "boss@example.com", PASSWORD, "AAAA-BBBB-CCCC")
    with migrated_db.session() as session:
        # Typed in lower case with spaces: still accepted.
        admin = users.create_first_admin(
            session, "Boss@Example.com", PASSWORD, code.lower().replace("-", " ")
        )
    assert admin.role is Role.ADMIN
    assert admin.email == "boss@example.com"
    with migrated_db.session() as session:
        assert not setup_code.matches(session, code)  # one-time
        with pytest.raises(PermissionDenied):
            users.create_first_admin(session, "thief@example.com", PASSWORD, code)


def test_a_new_setup_code_replaces_the_old_one(migrated_db) -> None:
    with migrated_db.session() as session:
        first = setup_code.issue(session)
        second = setup_code.issue(session)
        assert first != second
        assert not setup_code.matches(session, first)
        assert setup_code.matches(session, second)


def test_sign_in_with_right_and_wrong_password(migrated_db) -> None:
    with migrated_db.session() as session:
        users.create_user(session, None, "op@example.com", PASSWORD, Role.OPERATOR)
    with migrated_db.session() as session:
        assert _auth(session, " OP@example.com ").email == "op@example.com"
    for wrong in [("op@example.com", "nope-nope-nope"), ("ghost@example.com", PASSWORD)]:
        with pytest.raises(users.InvalidCredentials), migrated_db.session() as session:
            _auth(session, *wrong)


def test_sixth_failure_in_a_minute_is_throttled_per_account(migrated_db) -> None:
    with migrated_db.session() as session:
        users.create_user(session, None, "op@example.com", PASSWORD, Role.OPERATOR)
    for i in range(5):
        with migrated_db.session() as session:
            with pytest.raises(users.InvalidCredentials):
                _auth(session, "op@example.com", "wrong-password", address=f"10.0.0.{i}")
            session.commit()
    with migrated_db.session() as session, pytest.raises(users.LoginThrottled) as caught:
        # Even the right password, from a new address: the account is locked for the minute.
        _auth(session, "op@example.com", PASSWORD, address="10.9.9.9")
    assert "Try again in" in str(caught.value)
    assert 1 <= caught.value.wait_seconds <= 61


def test_failures_are_throttled_per_address_across_accounts(migrated_db) -> None:
    for i in range(5):
        with migrated_db.session() as session:
            with pytest.raises(users.InvalidCredentials):
                _auth(session, f"guess{i}@example.com", "x" * 10, address="203.0.113.7")
            session.commit()
    with migrated_db.session() as session, pytest.raises(users.LoginThrottled):
        _auth(session, "another@example.com", "x" * 10, address="203.0.113.7")
    with migrated_db.session() as session, pytest.raises(users.InvalidCredentials):
        _auth(session, "another@example.com", "x" * 10, address="203.0.113.8")


def test_failures_older_than_a_minute_do_not_count(migrated_db) -> None:
    keys = throttle.keys_for("op@example.com", "10.0.0.1")
    old = utcnow() - timedelta(seconds=61)
    with migrated_db.session() as session:
        for _ in range(5):
            throttle.record_failure(session, keys, now=old)
    with migrated_db.session() as session:
        assert throttle.seconds_until_allowed(session, keys, 5) == 0
        assert session.scalar(select(func.count()).select_from(LoginFailure)) == 10


def test_disabled_user_cannot_sign_in(migrated_db) -> None:
    with migrated_db.session() as session:
        admin = users.create_user(session, None, "admin@example.com", PASSWORD, Role.ADMIN)
        op = users.create_user(session, None, "op@example.com", PASSWORD, Role.OPERATOR)
        users.set_active(session, admin, op.id, False)
    with pytest.raises(users.InvalidCredentials), migrated_db.session() as session:
        _auth(session, "op@example.com")


def test_only_admins_manage_users(migrated_db) -> None:
    with migrated_db.session() as session:
        op = users.create_user(session, None, "op@example.com", PASSWORD, Role.OPERATOR)
        viewer = users.create_user(session, None, "v@example.com", PASSWORD, Role.VIEWER)
        with pytest.raises(PermissionDenied):
            users.create_user(session, op, "x@example.com", PASSWORD, Role.ADMIN)
        with pytest.raises(PermissionDenied):
            users.change_role(session, op, viewer.id, Role.ADMIN)
        with pytest.raises(PermissionDenied):
            users.set_active(session, viewer, op.id, False)
        with pytest.raises(PermissionDenied):
            users.reset_password(session, op, viewer.id, "another password")


def test_the_last_active_admin_cannot_be_demoted_or_disabled(migrated_db) -> None:
    with migrated_db.session() as session:
        a1 = users.create_user(session, None, "a1@example.com", PASSWORD, Role.ADMIN)
        with pytest.raises(Conflict, match="only active administrator"):
            users.change_role(session, a1, a1.id, Role.OPERATOR)
        with pytest.raises(Conflict, match="your own account"):
            users.set_active(session, a1, a1.id, False)
        a2 = users.create_user(session, a1, "a2@example.com", PASSWORD, Role.ADMIN)
        users.change_role(session, a2, a1.id, Role.VIEWER)
        with pytest.raises(Conflict, match="only active administrator"):
            users.set_active(session, None, a2.id, False)


def test_bad_input_gets_a_clear_message(migrated_db) -> None:
    with migrated_db.session() as session:
        with pytest.raises(ValidationError, match="at least 8") as short:
            users.create_user(session, None, "a@example.com", "short", Role.ADMIN)
        assert short.value.field == "password"
        with pytest.raises(ValidationError) as bad_email:
            users.create_user(session, None, "not-an-email", PASSWORD, Role.ADMIN)
        assert bad_email.value.field == "email"
        with pytest.raises(ValidationError, match="Unknown role 'boss'"):
            users.create_user(session, None, "b@example.com", PASSWORD, "boss")
        users.create_user(session, None, "c@example.com", PASSWORD, Role.VIEWER)
        with pytest.raises(Conflict, match="already exists"):
            users.create_user(session, None, "C@EXAMPLE.com", PASSWORD, Role.VIEWER)


def test_changes_are_recorded_as_events_without_secrets(migrated_db) -> None:
    with migrated_db.session() as session:
        admin = users.create_user(session, None, "a@example.com", PASSWORD, Role.ADMIN)
        op = users.create_user(session, admin, "op@example.com", PASSWORD, Role.OPERATOR)
        users.change_role(session, admin, op.id, Role.VIEWER)
        users.reset_password(session, admin, op.id, "brand new password")
    with migrated_db.session() as session:
        texts = session.scalars(select(Event.text).order_by(Event.id)).all()
    assert texts[-3:] == [
        "a@example.com added op@example.com as operator.",
        "a@example.com changed op@example.com from operator to viewer.",
        "a@example.com set a new password for op@example.com.",
    ]
    assert not any(PASSWORD in t or "brand new password" in t for t in texts)


def test_change_own_password_checks_the_current_one(migrated_db) -> None:
    with migrated_db.session() as session:
        user = users.create_user(session, None, "a@example.com", PASSWORD, Role.VIEWER)
        with pytest.raises(ValidationError, match="current password"):
            users.change_own_password(session, user, "wrong", "a whole new password")
        users.change_own_password(session, user, PASSWORD, "a whole new password")
    with migrated_db.session() as session:
        assert _auth(session, "a@example.com", "a whole new password")


def test_timezone_must_be_a_real_zone(migrated_db) -> None:
    with migrated_db.session() as session:
        user = users.create_user(session, None, "a@example.com", PASSWORD, Role.VIEWER)
        with pytest.raises(ValidationError, match="not a timezone"):
            users.set_timezone(session, user, "Mars/Olympus")
        users.set_timezone(session, user, "Asia/Kolkata")
        assert user.timezone == "Asia/Kolkata"
