"""A real User Service for tests: settings on a temporary data folder, started on port 0."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc

from common.config import RuntimeSettings
from common.users_client import SERVICE_ACCOUNTS_FILE
from tests.support.errors import reason
from tests.support.servers import RunningServer
from tests.support.waiting import eventually
from users.server import build_server
from users.settings import Settings
from users.v1 import auth_service_pb2 as auth_pb
from users.v1 import auth_service_pb2_grpc as auth_grpc
from users.v1 import user_service_pb2_grpc as users_grpc

ADMIN_PASSWORD = "admin-password-for-tests"
KEY_ENCRYPTION_KEY = bytes(range(32))


def users_settings(data_dir: Path, **overrides: object) -> Settings:
    settings = Settings(
        runtime=dataclasses.replace(
            RuntimeSettings.from_env(),
            grace_seconds=0.5,
            issuer="ontology-mesh",
            audience="ontology-mesh",
        ),
        listen="127.0.0.1:0",
        data_dir=data_dir,
        database_url=f"sqlite:///{data_dir / 'users.db'}",
        keys_dir=data_dir / "keys",
        key_encryption_key=KEY_ENCRYPTION_KEY,
        access_token_seconds=300,
        refresh_token_seconds=3600,
        session_max_seconds=86400,
        login_max_failures=5,
        lockout_seconds=60,
        login_max_locks=3,
        login_failure_reset_seconds=3600,
        password_hash_profile="test",
        password_min_length=12,
        password_min_score=3,
        password_history=5,
        reset_token_seconds=900,
        mfa_ticket_seconds=300,
        public_url="http://127.0.0.1:8080",
        admin_password=ADMIN_PASSWORD,
        revocation_poll_seconds=0.1,
    )
    return dataclasses.replace(settings, **overrides)  # type: ignore[arg-type]


@dataclass
class RunningUsers:
    server: RunningServer
    channel: grpc.Channel
    settings: Settings

    @property
    def target(self) -> str:
        return self.server.target

    @property
    def auth(self) -> auth_grpc.AuthServiceStub:
        return auth_grpc.AuthServiceStub(self.channel)

    @property
    def users(self) -> users_grpc.UserServiceStub:
        return users_grpc.UserServiceStub(self.channel)

    def login(
        self, username: str = "admin", password: str = ADMIN_PASSWORD
    ) -> auth_pb.LoginResponse:
        return self.auth.Login(
            auth_pb.LoginRequest(username=username, password=password), timeout=10
        )

    def service_login(self, username: str = "svc-oms") -> auth_pb.LoginResponse:
        """A session of a built-in service account, whose password first start wrote."""
        passwords = json.loads((self.settings.data_dir / SERVICE_ACCOUNTS_FILE).read_text())
        return self.login(username, passwords[username])


@contextlib.contextmanager
def running_users(settings: Settings, *, audit_target: str | None = None) -> Iterator[RunningUsers]:
    server = RunningServer(lambda: build_server(settings, audit_target=audit_target))
    channel = grpc.insecure_channel(server.target)
    try:
        yield RunningUsers(server=server, channel=channel, settings=settings)
    finally:
        channel.close()
        server.stop()


def bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


def rejected(call: object, *args: object, **kwargs: object) -> tuple[grpc.StatusCode, str]:
    """Make a call that must fail; its status code and ErrorInfo reason."""
    try:
        call(*args, **kwargs)  # type: ignore[operator]
    except grpc.RpcError as error:
        return error.code(), reason(error)  # type: ignore[attr-defined]
    raise AssertionError("the call succeeded")


def refresh_race(users: RunningUsers, refresh_token: str, *, callers: int) -> list[str]:
    """Spend one refresh token from many threads at once; each outcome as a reason or "OK".

    At most one may win, and since the others present a spent token the whole session must end
    with them, the winner's new tokens included: a family never forks.
    """

    def spend(_: int) -> str:
        try:
            fresh = users.auth.RefreshToken(
                auth_pb.RefreshTokenRequest(refresh_token=refresh_token), timeout=10
            )
        except grpc.RpcError as error:
            return reason(error)
        check = auth_pb.ValidateTokenRequest(token=fresh.access_token)

        def refusal() -> str | None:
            try:
                users.auth.ValidateToken(check, timeout=10)
            except grpc.RpcError as error:
                return reason(error)
            return None

        try:
            return f"OK, then {eventually(refusal, timeout=10)}"
        except AssertionError:
            return "OK, and still valid"

    with ThreadPoolExecutor(max_workers=callers) as pool:
        return list(pool.map(spend, range(callers)))
