"""The client side of the User Service that the other services use.

Tokens are verified locally (:class:`common.auth.TokenVerifier`): keys come from GetJwks,
fetched again on an unknown ``kid``, and revocations from a WatchRevocations stream that a
background task follows, resuming by sequence after a disconnect. How far that view is
trusted (``docs/users.md``, "Following revocations"):

- until the stream has caught up once, verification fails closed (UNAVAILABLE) and the server
  reports NOT_SERVING;
- while the stream is connected and caught up, revocations are checked in memory;
- while it is not, but the User Service answers, each token is confirmed with ValidateToken,
  the answer kept for at most a second;
- only while the User Service cannot be reached at all do locally verified tokens keep
  working: nothing can be revoked then.

:class:`ServiceTokenSource` logs a service account in and keeps its access token fresh; the
revocation stream and the calls to the Audit Service carry it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import grpc
from prometheus_client.core import Metric

from common import errors, times
from common.auth import JwksKeyProvider, RevokedSet, TokenVerifier
from common.channels import create_channel
from common.config import RuntimeSettings, env_str
from common.metrics import gauge
from common.server import MeshServer
from common.status import from_rpc_error
from common.tls import MutualTls
from users.v1 import auth_service_pb2 as auth_pb
from users.v1 import auth_service_pb2_grpc as auth_grpc
from users.v1 import user_service_pb2_grpc as users_grpc

log = logging.getLogger("mesh.users_client")

SERVICE_NAMES = ("users.v1.AuthService", "users.v1.UserService")
SERVICE_ACCOUNTS_FILE = "service-accounts.json"
"""``{"svc-oms": "<password>", ...}``, written (mode 0600) by the User Service at first start in
its data folder and read by :class:`ServiceTokenSource`."""
CONFIRM_SECONDS = 0.5
"""How long a ValidateToken answer stands in for the revocation stream while it is down."""
_CONFIRMATIONS = 10_000
_UNREACHABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def users_address() -> str:
    """Where the User Service listens (``MESH_USERS_ADDR``, default ``127.0.0.1:8000``)."""
    return env_str("MESH_USERS_ADDR", "127.0.0.1:8000")


class TokenSource(Protocol):
    """A bearer token of a service account; invalidated when a peer refuses it."""

    async def token(self) -> str: ...

    def invalidate(self) -> None: ...


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


@dataclass
class _Confirmation:
    asked_at: float
    """``time.monotonic()`` when the User Service was asked."""
    answer: asyncio.Future[errors.MeshError | None]


class RevocationWatcher:
    """Follows WatchRevocations and answers revocation checks (a ``RevocationCheck``)."""

    def __init__(
        self,
        stub: auth_grpc.AuthServiceStub,
        tokens: TokenSource,
        *,
        retry_seconds: float = 0.1,
        max_retry_seconds: float = 1.0,
        clock: Callable[[], int] = times.now,
    ) -> None:
        self._stub = stub
        self._tokens = tokens
        self._retry_seconds = retry_seconds
        self._max_retry_seconds = max_retry_seconds
        self._clock = clock
        self._revoked = RevokedSet()
        self._sequence = 0
        self._ready = asyncio.Event()
        self._live = False
        self._stale_since = time.monotonic()
        self._confirmations: dict[str, _Confirmation] = {}

    @property
    def live(self) -> bool:
        """Whether the stream is connected and caught up, so memory is the whole answer."""
        return self._live

    def samples(self) -> list[Metric]:
        """Whether the view is current and for how long it has not been, for ``Metrics.sample``."""
        return [
            gauge(
                "mesh_revocation_stream_up",
                "1 while the revocation stream is connected and caught up, else 0.",
                int(self._live),
            ),
            gauge(
                "mesh_revocation_stream_lag_seconds",
                "How long the revocation view has not been known current (0 while it is).",
                0.0 if self._live else time.monotonic() - self._stale_since,
            ),
        ]

    async def wait_ready(self) -> None:
        """Return once the stream has caught up with the stored revocations."""
        await self._ready.wait()

    def is_revoked(self, *, session_id: str, token_id: str) -> bool:
        if not self._ready.is_set():
            raise errors.Unavailable(
                "revocations from the User Service are not known yet",
                reason="REVOCATIONS_UNAVAILABLE",
            )
        return self._revoked.covers(session_id=session_id, token_id=token_id)

    async def confirm(self, token: str) -> None:
        if self._live:
            return
        now = time.monotonic()
        known = self._confirmations.get(token)
        if known is None or now - known.asked_at >= CONFIRM_SECONDS:
            known = _Confirmation(now, asyncio.ensure_future(self._ask(token)))
            self._remember(token, known)
        error = await asyncio.shield(known.answer)
        if error is not None:
            raise error

    async def _ask(self, token: str) -> errors.MeshError | None:
        """The User Service's verdict on ``token``; None when it cannot be reached at all."""
        try:
            await self._stub.ValidateToken(
                auth_pb.ValidateTokenRequest(token=token), timeout=CONFIRM_SECONDS
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _UNREACHABLE:
                return None
            refused = from_rpc_error(exc)
            if isinstance(refused, errors.Unauthenticated):
                return refused
            return errors.Unavailable(
                "the User Service could not confirm the token", reason="REVOCATIONS_UNAVAILABLE"
            )
        return None

    def _remember(self, token: str, confirmation: _Confirmation) -> None:
        if len(self._confirmations) >= _CONFIRMATIONS:
            cutoff = confirmation.asked_at - CONFIRM_SECONDS
            for key in [k for k, c in self._confirmations.items() if c.asked_at <= cutoff]:
                del self._confirmations[key]
            if len(self._confirmations) >= _CONFIRMATIONS:
                self._confirmations.clear()
        self._confirmations[token] = confirmation

    async def run(self) -> None:
        """Follow the stream until cancelled; back within a second of the User Service."""
        retry = self._retry_seconds
        while True:
            try:
                if await self._follow():
                    retry = self._retry_seconds
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                    self._tokens.invalidate()
                log.warning(
                    "revocation stream broken; resuming",
                    extra={"code": exc.code().name, "after_sequence": self._sequence},
                )
            except errors.MeshError as exc:
                log.warning("cannot follow revocations", extra={"error": exc.message})
            finally:
                if self._live:
                    self._stale_since = time.monotonic()
                self._live = False
            await asyncio.sleep(retry)
            retry = min(retry * 2, self._max_retry_seconds)

    async def _follow(self) -> bool:
        """One stream, until it ends; whether it caught up."""
        call = self._stub.WatchRevocations(
            auth_pb.WatchRevocationsRequest(after_sequence=self._sequence),
            metadata=bearer(await self._tokens.token()),
            wait_for_ready=True,
        )
        caught_up = False
        async for response in call:
            now = self._clock()
            for revocation in response.revocations:
                self._revoked.add(
                    session_id=revocation.session_id,
                    token_id=revocation.token_id,
                    expires_ns=times.from_timestamp(revocation.expire_time),
                    now_ns=now,
                )
                self._sequence = revocation.sequence
            self._revoked.forget_expired(now)
            if response.caught_up and not self._live:
                caught_up = self._live = True
                self._confirmations.clear()
                self._ready.set()
        return caught_up


class UsersClient:
    """A channel to the User Service and its stubs; create it inside the loop that uses it."""

    def __init__(self, target: str, tls: MutualTls | None = None) -> None:
        self.channel = create_channel(target, service_names=SERVICE_NAMES, tls=tls)
        self.auth = auth_grpc.AuthServiceStub(self.channel)
        self.users = users_grpc.UserServiceStub(self.channel)

    async def jwks(self) -> dict[str, Any]:
        """The User Service's JWKS document; UNAVAILABLE when it cannot be reached."""
        try:
            response = await self.auth.GetJwks(auth_pb.GetJwksRequest(), timeout=5)
        except grpc.aio.AioRpcError as exc:
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

    async def close(self) -> None:
        await self.channel.close()


class ServiceTokenSource:
    """An access token for a service account, logged in lazily and refreshed before expiry."""

    def __init__(
        self,
        client: UsersClient,
        username: str,
        password: str | Callable[[], str],
        *,
        margin_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock`` measures the tokens' lifetimes from when they were received."""
        self._client = client
        self._username = username
        self._password = password if callable(password) else lambda: password
        self._margin = margin_seconds
        self._clock = clock
        self._lock = asyncio.Lock()
        self._access = ""
        self._access_expires = 0.0
        self._refresh = ""
        self._refresh_expires = 0.0

    @classmethod
    def from_env(
        cls, client: UsersClient, *, default_username: str, data_dir: Path
    ) -> ServiceTokenSource:
        """Credentials from ``MESH_SERVICE_USERNAME``/``MESH_SERVICE_PASSWORD``.

        Else from the service-accounts file the User Service wrote in the shared data folder.
        """
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

    async def token(self) -> str:
        async with self._lock:
            now = self._clock()
            if self._access and now < self._access_expires - self._margin:
                return self._access
            if self._refresh and now < self._refresh_expires - self._margin:
                try:
                    self._store(
                        await self._client.auth.RefreshToken(
                            auth_pb.RefreshTokenRequest(refresh_token=self._refresh),
                            timeout=10,
                            wait_for_ready=True,
                        ),
                        now,
                    )
                    return self._access
                except grpc.aio.AioRpcError:
                    log.info("service token refresh failed; logging in again")
            try:
                response = await self._client.auth.Login(
                    auth_pb.LoginRequest(username=self._username, password=self._password()),
                    timeout=10,
                    wait_for_ready=True,
                )
            except grpc.aio.AioRpcError as exc:
                raise errors.Unavailable(
                    f"cannot log in as service account {self._username!r}",
                    reason="SERVICE_LOGIN_FAILED",
                ) from exc
            self._store(response, now)
            return self._access

    def invalidate(self) -> None:
        """Forget the tokens, e.g. after a call was refused as revoked; the next call logs in."""
        self._access = self._refresh = ""

    def _store(
        self, response: auth_pb.LoginResponse | auth_pb.RefreshTokenResponse, now: float
    ) -> None:
        self._access = response.access_token
        self._access_expires = now + response.expires_in
        self._refresh = response.refresh_token
        self._refresh_expires = now + response.refresh_expires_in


@dataclass(frozen=True)
class UsersConnection:
    """What a service needs of the User Service: a verifier and a service account's tokens.

    The verifier follows the User Service's revocations; the tokens are for calls to other
    services.
    """

    client: UsersClient
    tokens: ServiceTokenSource
    revocations: RevocationWatcher
    verifier: TokenVerifier

    def attach(self, server: MeshServer) -> None:
        """Follow revocations while ``server`` runs; it reports NOT_SERVING until caught up."""
        server.readiness = self.revocations.wait_ready
        server.metrics.sample(self.revocations.samples)
        server.background.append(self.revocations.run)
        server.on_stop.append(self.client.close)


def connect_users(
    runtime: RuntimeSettings, *, target: str, default_username: str, data_dir: Path
) -> UsersConnection:
    """Wire a service to the User Service at ``target``; call inside the server's event loop.

    It acts as service account ``default_username`` (or ``MESH_SERVICE_USERNAME``).
    """
    client = UsersClient(target, runtime.tls)
    tokens = ServiceTokenSource.from_env(
        client, default_username=default_username, data_dir=data_dir
    )
    revocations = RevocationWatcher(client.auth, tokens)
    verifier = TokenVerifier(
        issuer=runtime.issuer,
        audience=runtime.audience,
        keys=JwksKeyProvider(client.jwks),
        revocations=revocations,
        cache_entries=runtime.token_cache_entries,
    )
    return UsersConnection(client, tokens, revocations, verifier)
