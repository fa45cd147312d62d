"""The client side of the User Service that the other services use.

``UsersClient.verifier()`` verifies tokens locally: keys from GetJwks (refetched on an unknown
``kid``) and revocations from a WatchRevocations stream that a daemon thread follows, resuming
by sequence after a disconnect, so a revoked token stops working within a moment. Until the
stream has caught up once, the revocation state is unknown and verification fails closed
(UNAVAILABLE) rather than accepting a token that may be revoked.

``ServiceTokenSource`` logs a service account in and keeps its access token fresh for calls
between services.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from common import errors
from common.auth import JwksKeyProvider, RevokedSet, TokenVerifier
from common.channels import create_channel
from common.config import RuntimeSettings, env_str
from users.v1 import auth_service_pb2 as auth_pb
from users.v1 import auth_service_pb2_grpc as auth_grpc
from users.v1 import user_service_pb2_grpc as users_grpc

log = logging.getLogger("mesh.users_client")

SERVICE_NAMES = ("users.v1.AuthService", "users.v1.UserService")
SERVICE_ACCOUNTS_FILE = "service-accounts.json"
"""Written (mode 0600) by the User Service at first start in its data folder."""


def users_address() -> str:
    """Where the User Service listens (``MESH_USERS_ADDR``, default ``127.0.0.1:8000``)."""
    return env_str("MESH_USERS_ADDR", "127.0.0.1:8000")


class RevocationWatcher:
    """Follows WatchRevocations and answers ``is_revoked`` (a ``RevocationCheck``) from memory."""

    def __init__(
        self,
        stub: auth_grpc.AuthServiceStub,
        *,
        initial_backoff: float = 0.1,
        max_backoff: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._stub = stub
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff
        self._clock = clock
        self._revoked = RevokedSet()
        self._sequence = 0
        self._ready = threading.Event()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._call: Any = None
        self._thread: threading.Thread | None = None

    @property
    def sequence(self) -> int:
        """The last revocation sequence received; a reconnect resumes after it."""
        return self._sequence

    def wait_ready(self, timeout: float) -> bool:
        """Whether the stream has caught up with the stored revocations at least once."""
        return self._ready.wait(timeout)

    def is_revoked(self, *, session_id: str, token_id: str, issued_at: int) -> bool:
        if not self._ready.is_set():
            raise errors.Unavailable(
                "revocations from the User Service are not known yet",
                reason="REVOCATIONS_UNAVAILABLE",
            )
        return self._revoked.covers(session_id=session_id, token_id=token_id)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="revocation-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        with self._lock:
            if self._call is not None:
                self._call.cancel()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        backoff = self._initial_backoff
        while not self._stopped.is_set():
            try:
                self._follow()
                # The server ended the stream (e.g. it is shutting down): pause, then resume.
                backoff = self._initial_backoff
                if self._stopped.wait(backoff):
                    return
            except grpc.RpcError as exc:
                if self._stopped.is_set():
                    return
                code = exc.code() if isinstance(exc, grpc.Call) else None
                log.warning(
                    "revocation stream broken; resuming",
                    extra={"code": str(code), "after_sequence": self._sequence},
                )
                if self._stopped.wait(backoff):
                    return
                backoff = min(backoff * 2, self._max_backoff)

    def _follow(self) -> None:
        request = auth_pb.WatchRevocationsRequest(after_sequence=self._sequence)
        with self._lock:
            if self._stopped.is_set():
                return
            self._call = self._stub.WatchRevocations(request)
        for response in self._call:
            now = self._clock()
            for revocation in response.revocations:
                self._revoked.add(
                    session_id=revocation.session_id,
                    token_id=revocation.token_id,
                    expires_at=revocation.expire_time.ToMicroseconds() / 1_000_000,
                    now=now,
                )
                self._sequence = revocation.sequence
            if response.caught_up:
                self._ready.set()
            self._revoked.forget_expired(now)


class UsersClient:
    """A channel to the User Service, its stubs, and a token verifier built on it."""

    def __init__(self, target: str) -> None:
        self.channel = create_channel(target, service_names=SERVICE_NAMES)
        self.auth = auth_grpc.AuthServiceStub(self.channel)
        self.users = users_grpc.UserServiceStub(self.channel)
        self.revocations = RevocationWatcher(self.auth)

    def jwks(self) -> dict[str, Any]:
        """The User Service's JWKS document; UNAVAILABLE when it cannot be reached."""
        try:
            response = self.auth.GetJwks(auth_pb.GetJwksRequest(), timeout=5)
        except grpc.RpcError as exc:
            raise errors.Unavailable(
                "cannot fetch signing keys from the User Service", reason="USERS_UNAVAILABLE"
            ) from exc
        return {
            "keys": [
                {
                    "kty": key.kty,
                    "crv": key.crv,
                    "x": key.x,
                    "y": key.y,
                    "kid": key.kid,
                    "alg": key.alg,
                    "use": key.use,
                }
                for key in response.keys
            ]
        }

    def verifier(self, settings: RuntimeSettings) -> TokenVerifier:
        return TokenVerifier(
            issuer=settings.issuer,
            audience=settings.audience,
            keys=JwksKeyProvider(self.jwks),
            revocations=self.revocations,
        )

    def start(self) -> None:
        """Start following revocations; verification fails closed until the stream catches up."""
        self.revocations.start()

    def close(self) -> None:
        self.revocations.stop()
        self.channel.close()


class ServiceTokenSource:
    """An access token for a service account, logged in lazily and refreshed before expiry."""

    def __init__(
        self,
        client: UsersClient,
        username: str,
        password: str | Callable[[], str],
        *,
        margin_seconds: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._username = username
        self._password = password if callable(password) else lambda: password
        self._margin = margin_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._access = ""
        self._access_expires = 0.0
        self._refresh = ""
        self._refresh_expires = 0.0

    @classmethod
    def from_env(
        cls, client: UsersClient, *, default_username: str, data_dir: Path
    ) -> ServiceTokenSource:
        """Credentials from ``MESH_SERVICE_USERNAME``/``MESH_SERVICE_PASSWORD``, else the
        service-accounts file the User Service wrote in the shared data folder."""
        username = env_str("MESH_SERVICE_USERNAME", default_username)
        password = env_str("MESH_SERVICE_PASSWORD", "")
        if password:
            return cls(client, username, password)
        path = data_dir / SERVICE_ACCOUNTS_FILE

        def from_file() -> str:
            # Read at login time: on one machine the User Service may write it after we start.
            try:
                return str(json.loads(path.read_text())[username])
            except (OSError, ValueError, KeyError) as exc:
                raise errors.Unavailable(
                    f"no password for service account {username!r}: set MESH_SERVICE_PASSWORD "
                    f"or start the User Service once with this data folder ({path})",
                    reason="SERVICE_CREDENTIALS_MISSING",
                ) from exc

        return cls(client, username, from_file)

    def token(self) -> str:
        with self._lock:
            now = self._clock()
            if self._access and now < self._access_expires - self._margin:
                return self._access
            if self._refresh and now < self._refresh_expires - self._margin:
                try:
                    self._store(
                        self._client.auth.RefreshToken(
                            auth_pb.RefreshTokenRequest(refresh_token=self._refresh), timeout=10
                        ),
                        now,
                    )
                    return self._access
                except grpc.RpcError:
                    log.info("service token refresh failed; logging in again")
            try:
                response = self._client.auth.Login(
                    auth_pb.LoginRequest(username=self._username, password=self._password()),
                    timeout=10,
                )
            except grpc.RpcError as exc:
                raise errors.Unavailable(
                    f"cannot log in as service account {self._username!r}",
                    reason="SERVICE_LOGIN_FAILED",
                ) from exc
            self._store(response, now)
            return self._access

    def metadata(self) -> list[tuple[str, str]]:
        """Call metadata carrying the token."""
        return [("authorization", f"Bearer {self.token()}")]

    def invalidate(self) -> None:
        """Forget the tokens, e.g. after a call was refused as revoked; the next call logs in."""
        with self._lock:
            self._access = self._refresh = ""

    def _store(
        self, response: auth_pb.LoginResponse | auth_pb.RefreshTokenResponse, now: float
    ) -> None:
        self._access = response.access_token
        self._access_expires = now + response.expires_in
        self._refresh = response.refresh_token
        self._refresh_expires = now + response.refresh_expires_in
