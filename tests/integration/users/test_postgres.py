"""The same User Service on PostgreSQL: lockout under parallel attempts, refresh reuse, restart.

Each run gets a database of its own, created and dropped here, so it never touches others'.
"""

from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from tests.support.errors import reason
from tests.support.mfa import totp_code
from tests.support.postgres import scratch_database
from tests.support.users import (
    bearer,
    refresh_race,
    rejected,
    running_users,
    users_settings,
)
from users.v1 import auth_service_pb2 as auth_pb
from users.v1 import resources_pb2 as resources
from users.v1 import user_service_pb2 as users_pb

pytestmark = pytest.mark.postgres


@pytest.fixture
def postgres_url():
    with scratch_database("users") as url:
        yield url


def test_lockout_reuse_and_restart_on_postgres(tmp_path, postgres_url):
    settings = users_settings(tmp_path, database_url=postgres_url)
    with running_users(settings) as users:
        with ThreadPoolExecutor(max_workers=20) as pool:
            reasons = [
                reason
                for _, reason in pool.map(
                    lambda _: rejected(users.login, "svc-oms", "wrong guess!"), range(20)
                )
            ]
        assert reasons.count("INVALID_CREDENTIALS") == 5
        assert reasons.count("ACCOUNT_LOCKED") == 15
        session = users.login()
        users.auth.RefreshToken(
            auth_pb.RefreshTokenRequest(refresh_token=session.refresh_token), timeout=10
        )
        assert rejected(
            users.auth.RefreshToken,
            auth_pb.RefreshTokenRequest(refresh_token=session.refresh_token),
        ) == (grpc.StatusCode.UNAUTHENTICATED, "REFRESH_TOKEN_REUSED")
    with running_users(settings) as users:
        assert (
            rejected(
                users.auth.ValidateToken, auth_pb.ValidateTokenRequest(token=session.access_token)
            )[1]
            == "TOKEN_REVOKED"
        )
        assert rejected(users.login, "svc-oms", "wrong guess!")[1] == "ACCOUNT_LOCKED"


def test_two_admins_disabling_each_other_leave_one(tmp_path, postgres_url):
    with running_users(users_settings(tmp_path, database_url=postgres_url)) as users:
        first = users.login()
        second_user = users.users.CreateUser(
            users_pb.CreateUserRequest(
                user=resources.User(username="second-admin"),
                password="a long enough password",
                roles=["admin"],
            ),
            metadata=bearer(first.access_token),
            timeout=10,
        )
        second = users.login("second-admin", "a long enough password")
        calls = [
            (second.access_token, first.user.user_id),
            (first.access_token, second_user.user_id),
        ]

        def disable(call):
            token, target = call
            try:
                users.users.DisableUser(
                    users_pb.DisableUserRequest(user_id=target), metadata=bearer(token), timeout=10
                )
                return "OK"
            except grpc.RpcError as error:
                return reason(error)

        with ThreadPoolExecutor(max_workers=2) as pool:
            outcomes = list(pool.map(disable, calls))
        # One wins; the other is refused as the last admin, or finds its own token revoked.
        assert outcomes.count("OK") == 1
        assert {*outcomes} - {"OK"} <= {"LAST_ADMIN", "TOKEN_REVOKED"}


def test_racing_refreshes_never_fork_a_family_on_postgres(tmp_path, postgres_url):
    with running_users(users_settings(tmp_path, database_url=postgres_url)) as users:
        session = users.login()
        outcomes = refresh_race(users, session.refresh_token, callers=8)
        assert [o for o in outcomes if o.startswith("OK")] in ([], ["OK, then TOKEN_REVOKED"])
        assert {o for o in outcomes if not o.startswith("OK")} <= {
            "REFRESH_TOKEN_REUSED",
            "TOKEN_REVOKED",
        }


def test_a_refresh_racing_a_logout_leaves_no_live_token_on_postgres(tmp_path, postgres_url):
    with running_users(users_settings(tmp_path, database_url=postgres_url)) as users:
        for _ in range(5):
            session = users.login()
            with ThreadPoolExecutor(max_workers=2) as pool:
                logout = pool.submit(
                    users.auth.Logout,
                    auth_pb.LogoutRequest(),
                    metadata=bearer(session.access_token),
                    timeout=10,
                )
                refresh = pool.submit(
                    users.auth.RefreshToken,
                    auth_pb.RefreshTokenRequest(refresh_token=session.refresh_token),
                    timeout=10,
                )
                logout.result()
                try:
                    fresh = refresh.result()
                except grpc.RpcError as error:
                    assert reason(error) == "TOKEN_REVOKED"
                    continue
            # The refresh won the race: the logout still ended what it handed out.
            assert rejected(
                users.auth.ValidateToken, auth_pb.ValidateTokenRequest(token=fresh.access_token)
            ) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_REVOKED")
            assert rejected(
                users.auth.RefreshToken,
                auth_pb.RefreshTokenRequest(refresh_token=fresh.refresh_token),
            ) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_REVOKED")


def test_one_totp_code_raced_from_many_logins_opens_one_session(tmp_path, postgres_url):
    with running_users(users_settings(tmp_path, database_url=postgres_url)) as users:
        token = users.login().access_token
        secret = users.auth.EnrollTotp(
            auth_pb.EnrollTotpRequest(), metadata=bearer(token), timeout=10
        ).secret
        users.auth.ConfirmTotp(
            auth_pb.ConfirmTotpRequest(totp_code=totp_code(secret)),
            metadata=bearer(token),
            timeout=10,
        )
        tickets = [users.login().access_token for _ in range(4)]
        code = totp_code(secret, steps_ahead=1)

        def verify(ticket):
            try:
                users.auth.VerifySecondFactor(
                    auth_pb.VerifySecondFactorRequest(totp_code=code),
                    metadata=bearer(ticket),
                    timeout=10,
                )
            except grpc.RpcError as error:
                return reason(error)
            return "OK"

        with ThreadPoolExecutor(max_workers=len(tickets)) as pool:
            outcomes = sorted(pool.map(verify, tickets))
        assert outcomes == ["MFA_CODE_REUSED"] * 3 + ["OK"]


def test_a_permission_removed_during_logins_leaves_no_token_holding_it(tmp_path, postgres_url):
    with running_users(users_settings(tmp_path, database_url=postgres_url)) as users:
        admin = bearer(users.login().access_token)
        users.users.CreateRole(
            users_pb.CreateRoleRequest(
                role=resources.Role(name="shrinking", permissions=["audit:read", "schema:read"])
            ),
            metadata=admin,
            timeout=10,
        )
        users.users.CreateUser(
            users_pb.CreateUserRequest(
                user=resources.User(username="holder"),
                password="a long enough password",
                roles=["shrinking"],
            ),
            metadata=admin,
            timeout=10,
        )

        def shrink(_: int) -> None:
            users.users.UpdateRole(
                users_pb.UpdateRoleRequest(
                    role=resources.Role(name="shrinking", permissions=["schema:read"]),
                    update_mask=FieldMask(paths=["permissions"]),
                ),
                metadata=admin,
                timeout=10,
            )

        sessions = [users.login("holder", "a long enough password") for _ in range(4)]
        with ThreadPoolExecutor(max_workers=9) as pool:
            # Fewer logins at once than the lockout's limit of reserved attempts.
            issued = [
                pool.submit(users.login, "holder", "a long enough password") for _ in range(4)
            ] + [
                pool.submit(
                    users.auth.RefreshToken,
                    auth_pb.RefreshTokenRequest(refresh_token=s.refresh_token),
                    timeout=10,
                )
                for s in sessions
            ]
            pool.submit(shrink, 0).result()
            tokens = []
            for pair in issued:
                try:
                    tokens.append(pair.result().access_token)
                except grpc.RpcError as error:
                    assert reason(error) == "TOKEN_REVOKED"  # a refresh after the change
        for token in tokens:
            try:
                found = users.auth.ValidateToken(
                    auth_pb.ValidateTokenRequest(token=token), timeout=10
                )
            except grpc.RpcError as error:
                assert reason(error) == "TOKEN_REVOKED"
                continue
            assert list(found.permissions) == ["schema:read"]


def test_a_grant_racing_the_role_s_deletion_is_one_or_the_other(tmp_path, postgres_url):
    with running_users(users_settings(tmp_path, database_url=postgres_url)) as users:
        admin = bearer(users.login().access_token)
        user = users.users.CreateUser(
            users_pb.CreateUserRequest(
                user=resources.User(username="grantee"), password="a long enough password"
            ),
            metadata=admin,
            timeout=10,
        )
        for attempt in range(5):
            name = f"fleeting-{attempt}"
            users.users.CreateRole(
                users_pb.CreateRoleRequest(
                    role=resources.Role(name=name, permissions=["schema:read"])
                ),
                metadata=admin,
                timeout=10,
            )

            def outcome(call, request):
                try:
                    call(request, metadata=admin, timeout=10)
                    return "OK"
                except grpc.RpcError as error:
                    return reason(error)

            with ThreadPoolExecutor(max_workers=2) as pool:
                grant = pool.submit(
                    outcome,
                    users.users.SetUserRoles,
                    users_pb.SetUserRolesRequest(user_id=user.user_id, roles=[name]),
                )
                delete = pool.submit(
                    outcome, users.users.DeleteRole, users_pb.DeleteRoleRequest(name=name)
                )
                outcomes = (grant.result(), delete.result())
            assert outcomes in (("OK", "ROLE_IN_USE"), ("INVALID_ARGUMENT", "OK"))
            users.users.SetUserRoles(
                users_pb.SetUserRolesRequest(user_id=user.user_id, roles=[]),
                metadata=admin,
                timeout=10,
            )
