"""TOTP second factors over a real port.

Enrolment, the second login step, replays, recovery codes, the lockout, admin resets, roles
that require MFA, and the OAuth password grant.
"""

from __future__ import annotations

import json
import uuid

import grpc
import pytest
import sqlalchemy as sa
from google.api import httpbody_pb2

from tests.support.errors import error_info, violated_fields
from tests.support.mfa import totp_code
from tests.support.outbox import outbox_rows
from tests.support.users import bearer, rejected
from users.v1 import auth_service_pb2 as auth_pb
from users.v1 import resources_pb2 as resources
from users.v1 import user_service_pb2 as users_pb

PASSWORD = "violet tugboat ossifies slowly"


def _person(users, admin, roles=("viewer",)):
    name = f"mfa-{uuid.uuid4().hex[:8]}"
    user = users.users.CreateUser(
        users_pb.CreateUserRequest(
            user=resources.User(username=name), password=PASSWORD, roles=list(roles)
        ),
        metadata=bearer(admin.access_token),
        timeout=10,
    )
    return user, name


def _enrol(users, token):
    """Enrol and confirm TOTP with ``token`` as the bearer: the secret and the confirmation."""
    enrolment = users.auth.EnrollTotp(
        auth_pb.EnrollTotpRequest(), metadata=bearer(token), timeout=10
    )
    confirmed = users.auth.ConfirmTotp(
        auth_pb.ConfirmTotpRequest(totp_code=totp_code(enrolment.secret)),
        metadata=bearer(token),
        timeout=10,
    )
    return enrolment.secret, confirmed


def _verify(users, ticket, **code):
    return users.auth.VerifySecondFactor(
        auth_pb.VerifySecondFactorRequest(**code), metadata=bearer(ticket), timeout=10
    )


@pytest.fixture
def enrolled(users, admin):
    """A viewer with confirmed TOTP: (user, name, secret, recovery codes)."""
    user, name = _person(users, admin)
    secret, confirmed = _enrol(users, users.login(name, PASSWORD).access_token)
    return user, name, secret, list(confirmed.recovery_codes)


def test_enrolment_gives_a_provisioning_uri_and_a_qr_code_then_ten_recovery_codes(users, admin):
    user, name = _person(users, admin)
    token = users.login(name, PASSWORD).access_token
    enrolment = users.auth.EnrollTotp(
        auth_pb.EnrollTotpRequest(), metadata=bearer(token), timeout=10
    )
    assert enrolment.provisioning_uri.startswith(f"otpauth://totp/ontology-mesh:{name}?")
    assert f"secret={enrolment.secret}" in enrolment.provisioning_uri
    assert "issuer=ontology-mesh" in enrolment.provisioning_uri
    assert enrolment.qr_code_svg.startswith("<svg")
    wrong = rejected(
        users.auth.ConfirmTotp,
        auth_pb.ConfirmTotpRequest(totp_code="000000"),
        metadata=bearer(token),
        timeout=10,
    )
    assert wrong == (grpc.StatusCode.INVALID_ARGUMENT, "MFA_CODE_INVALID")
    confirmed = users.auth.ConfirmTotp(
        auth_pb.ConfirmTotpRequest(totp_code=totp_code(enrolment.secret)),
        metadata=bearer(token),
        timeout=10,
    )
    assert len(set(confirmed.recovery_codes)) == 10
    assert not confirmed.HasField("session")  # an access token's caller has a session
    read = users.users.GetUser(
        users_pb.GetUserRequest(user_id=user.user_id), metadata=bearer(token), timeout=10
    )
    assert read.mfa_enrolled
    again = rejected(
        users.auth.EnrollTotp, auth_pb.EnrollTotpRequest(), metadata=bearer(token), timeout=10
    )
    assert again == (grpc.StatusCode.FAILED_PRECONDITION, "MFA_ALREADY_ENROLLED")


def test_the_secret_is_never_answered_again_and_recovery_codes_are_stored_hashed(users, enrolled):
    user, _, secret, codes = enrolled
    engine = sa.create_engine(users.settings.database_url)
    with engine.connect() as conn:
        hashes = set(
            conn.exec_driver_sql(
                "SELECT code_hash FROM recovery_codes WHERE user_id = ?", (user.user_id,)
            ).scalars()
        )
    engine.dispose()
    assert len(hashes) == 10 and not hashes & set(codes)
    rows = outbox_rows(users.settings.database_url)
    assert not [r for r in rows if secret in str(r.data) or codes[0] in str(r.data)]


def test_login_asks_for_a_code_and_the_ticket_opens_one_session(users, enrolled):
    _, name, secret, codes = enrolled
    first = users.login(name, PASSWORD)
    assert first.required_action == auth_pb.REQUIRED_ACTION_VERIFY_SECOND_FACTOR
    assert first.refresh_token == ""
    # The ticket is no access token anywhere.
    assert rejected(
        users.auth.ValidateToken, auth_pb.ValidateTokenRequest(token=first.access_token)
    ) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_TYPE_MISMATCH")
    # The enrolment's code was of this step; the next step's is new.
    session = _verify(users, first.access_token, totp_code=totp_code(secret, steps_ahead=1))
    assert session.required_action == auth_pb.REQUIRED_ACTION_UNSPECIFIED
    assert session.refresh_token
    users.auth.ValidateToken(auth_pb.ValidateTokenRequest(token=session.access_token))
    # A right code with the spent ticket opens nothing, and does not spend the code.
    spent = rejected(
        users.auth.VerifySecondFactor,
        auth_pb.VerifySecondFactorRequest(recovery_code=codes[0]),
        metadata=bearer(first.access_token),
        timeout=10,
    )
    assert spent == (grpc.StatusCode.UNAUTHENTICATED, "MFA_TICKET_INVALID")
    assert _verify(users, users.login(name, PASSWORD).access_token, recovery_code=codes[0])


def test_a_code_is_refused_the_second_time_inside_its_window(users, enrolled):
    _, name, secret, _ = enrolled
    code = totp_code(secret, steps_ahead=1)
    _verify(users, users.login(name, PASSWORD).access_token, totp_code=code)
    replay = rejected(
        users.auth.VerifySecondFactor,
        auth_pb.VerifySecondFactorRequest(totp_code=code),
        metadata=bearer(users.login(name, PASSWORD).access_token),
        timeout=10,
    )
    assert replay == (grpc.StatusCode.UNAUTHENTICATED, "MFA_CODE_REUSED")


def test_a_recovery_code_works_once(users, enrolled):
    _, name, _, codes = enrolled
    session = _verify(users, users.login(name, PASSWORD).access_token, recovery_code=codes[3])
    assert session.refresh_token
    again = rejected(
        users.auth.VerifySecondFactor,
        auth_pb.VerifySecondFactorRequest(recovery_code=codes[3]),
        metadata=bearer(users.login(name, PASSWORD).access_token),
        timeout=10,
    )
    assert again == (grpc.StatusCode.UNAUTHENTICATED, "MFA_CODE_INVALID")


def test_wrong_codes_count_as_failed_logins_until_the_lockout(users, enrolled):
    _, name, secret, _ = enrolled
    ticket = users.login(name, PASSWORD).access_token
    for _ in range(users.settings.login_max_failures):
        wrong = rejected(
            users.auth.VerifySecondFactor,
            auth_pb.VerifySecondFactorRequest(totp_code="000000"),
            metadata=bearer(ticket),
            timeout=10,
        )
        assert wrong == (grpc.StatusCode.UNAUTHENTICATED, "MFA_CODE_INVALID")
    locked = rejected(
        users.auth.VerifySecondFactor,
        auth_pb.VerifySecondFactorRequest(totp_code=totp_code(secret, steps_ahead=1)),
        metadata=bearer(ticket),
        timeout=10,
    )
    assert locked == (grpc.StatusCode.UNAUTHENTICATED, "ACCOUNT_LOCKED")


def test_bad_requests_name_the_field_and_bad_tickets_say_so(users, enrolled):
    _, name, _, _ = enrolled
    ticket = users.login(name, PASSWORD).access_token
    with pytest.raises(grpc.RpcError) as both:
        _verify(users, ticket, totp_code="123456", recovery_code="abcd")
    assert both.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(both.value) == ["totp_code"]
    assert rejected(
        users.auth.VerifySecondFactor,
        auth_pb.VerifySecondFactorRequest(totp_code="123456"),
        metadata=bearer("not-a-token"),
        timeout=10,
    ) == (grpc.StatusCode.UNAUTHENTICATED, "MFA_TICKET_INVALID")
    assert rejected(
        users.auth.VerifySecondFactor, auth_pb.VerifySecondFactorRequest(totp_code="123456")
    ) == (grpc.StatusCode.UNAUTHENTICATED, "MFA_TICKET_INVALID")


def test_an_admin_reset_removes_totp_and_recovery_codes(users, admin, enrolled):
    user, name, _, codes = enrolled
    ticket = users.login(name, PASSWORD).access_token
    reset = users.users.ResetUserMfa(
        users_pb.ResetUserMfaRequest(user_id=user.user_id),
        metadata=bearer(admin.access_token),
        timeout=10,
    )
    assert not reset.mfa_enrolled
    assert rejected(
        users.auth.VerifySecondFactor,
        auth_pb.VerifySecondFactorRequest(recovery_code=codes[0]),
        metadata=bearer(ticket),
        timeout=10,
    ) == (grpc.StatusCode.FAILED_PRECONDITION, "MFA_NOT_ENROLLED")
    plain = users.login(name, PASSWORD)
    assert plain.required_action == auth_pb.REQUIRED_ACTION_UNSPECIFIED and plain.refresh_token
    (event,) = [
        r for r in outbox_rows(users.settings.database_url) if r.type == "users.user.mfa_reset"
    ][-1:]
    assert (event.subject, event.actor) == (f"users/{user.user_id}", "admin")
    assert event.data["client_address"] == "127.0.0.1"
    twice = rejected(
        users.users.ResetUserMfa,
        users_pb.ResetUserMfaRequest(user_id=user.user_id),
        metadata=bearer(admin.access_token),
        timeout=10,
    )
    assert twice == (grpc.StatusCode.FAILED_PRECONDITION, "MFA_NOT_ENROLLED")


def test_a_role_that_requires_mfa_makes_login_configure_totp_first(users, admin):
    _, name = _person(users, admin, roles=("auditor",))
    as_admin = bearer(admin.access_token)

    def require(required):
        return users.users.SetRoleMfaRequired(
            users_pb.SetRoleMfaRequiredRequest(name="auditor", mfa_required=required),
            metadata=as_admin,
            timeout=10,
        )

    assert require(True).mfa_required
    try:
        answer = users.login(name, PASSWORD)
        assert answer.required_action == auth_pb.REQUIRED_ACTION_CONFIGURE_TOTP
        assert answer.refresh_token == ""
        _, confirmed = _enrol(users, answer.access_token)
        assert len(confirmed.recovery_codes) == 10
        session = confirmed.session
        assert session.refresh_token and session.user.mfa_enrolled
        users.auth.ValidateToken(auth_pb.ValidateTokenRequest(token=session.access_token))
        # The ticket was spent on that session.
        assert rejected(
            users.auth.EnrollTotp,
            auth_pb.EnrollTotpRequest(),
            metadata=bearer(answer.access_token),
            timeout=10,
        ) == (grpc.StatusCode.FAILED_PRECONDITION, "MFA_ALREADY_ENROLLED")
        assert users.login(name, PASSWORD).required_action == (
            auth_pb.REQUIRED_ACTION_VERIFY_SECOND_FACTOR
        )
    finally:
        assert not require(False).mfa_required
    assert {
        r.name: r.mfa_required
        for r in users.users.ListRoles(
            users_pb.ListRolesRequest(), metadata=as_admin, timeout=10
        ).roles
    }["auditor"] is False


def test_only_a_holder_of_everything_sets_a_role_requirement(users, admin):
    _, name = _person(users, admin, roles=("viewer",))
    viewer = bearer(users.login(name, PASSWORD).access_token)
    assert (
        rejected(
            users.users.SetRoleMfaRequired,
            users_pb.SetRoleMfaRequiredRequest(name="viewer", mfa_required=True),
            metadata=viewer,
            timeout=10,
        )[0]
        == grpc.StatusCode.PERMISSION_DENIED
    )
    assert rejected(
        users.users.SetRoleMfaRequired,
        users_pb.SetRoleMfaRequiredRequest(name="no-such-role", mfa_required=True),
        metadata=bearer(admin.access_token),
        timeout=10,
    ) == (grpc.StatusCode.NOT_FOUND, "ROLE_NOT_FOUND")


def test_the_oauth_password_grant_does_not_skip_the_second_factor(users, enrolled):
    _, name, _, _ = enrolled
    with pytest.raises(grpc.RpcError) as caught:
        users.auth.IssueToken(
            auth_pb.IssueTokenRequest(
                form=httpbody_pb2.HttpBody(
                    content_type="application/x-www-form-urlencoded",
                    data=f"grant_type=password&username={name}&password={PASSWORD}".encode(),
                )
            ),
            timeout=10,
        )
    info = error_info(caught.value)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (info.reason, info.metadata["mesh_reason"]) == ("INVALID_GRANT", "MFA_REQUIRED")
    assert "/auth/login/mfa" in caught.value.details()


def test_the_totp_secret_is_sealed_at_rest_and_bound_to_its_user(users, admin, enrolled):
    """The row holds an envelope under the key-encryption key, not the secret.

    Copied into another user's row it does not open: that login is refused, never let in.
    """
    user, name, secret, _ = enrolled
    other, other_name = _person(users, admin)
    _enrol(users, users.login(other_name, PASSWORD).access_token)
    engine = sa.create_engine(users.settings.database_url)
    with engine.begin() as conn:
        (stored,) = conn.exec_driver_sql(
            "SELECT secret FROM totp_credentials WHERE user_id = ?", (user.user_id,)
        ).scalars()
        conn.exec_driver_sql(
            "UPDATE totp_credentials SET secret = ? WHERE user_id = ?", (stored, other.user_id)
        )
    engine.dispose()
    assert secret not in stored
    assert json.loads(stored)["kek"]
    ticket = users.login(name, PASSWORD).access_token
    assert _verify(users, ticket, totp_code=totp_code(secret, steps_ahead=1)).access_token
    moved = users.login(other_name, PASSWORD).access_token
    assert rejected(_verify, users, moved, totp_code=totp_code(secret)) == (
        grpc.StatusCode.INTERNAL,
        "MFA_SECRET_UNREADABLE",
    )
