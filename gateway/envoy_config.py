"""The gateway's Envoy configuration, built from the settings and the descriptor set.

``envoy.yaml`` at the root is this configuration rendered with the default settings (the
generate command writes it and the freshness check compares it); ``mesh up`` renders it again
with the ports it was given. Routes, the transcoded services and the JWT exemptions all come
from the descriptor set, so they cannot drift from the protos.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from ipaddress import ip_address
from typing import Any

from google.protobuf import descriptor_pb2

from common.tls import MutualTls
from gateway import descriptors, strict_input
from gateway.descriptors import BACKENDS, Method, Service
from gateway.settings import MeshSettings

Config = dict[str, Any]

JWKS_PATH = "/.well-known/jwks.json"
VERIFIER_KEY_PATH = "/api/v2/checkpoints:verifierKey"
EXEMPT_REST_PATHS = (
    "/auth/login",
    "/auth/refresh",
    "/auth/validate",
    "/auth/password:reset",
    "/oauth/token",
    "/oauth/introspect",
    "/.well-known/openid-configuration",
    JWKS_PATH,
    VERIFIER_KEY_PATH,
)
"""REST paths anyone may call; the RPCs bound to them are exempt in their native form too."""
HEALTH_PATH = "/health"
STATS_PATH = "/stats/prometheus"
"""The one path of Envoy's admin interface that its metrics listener passes on (read-only)."""
OPENAPI_PATH = "/openapi.json"
REFLECTION_SERVICE = "grpc.reflection.v1alpha.ServerReflection"
"""The reflection version our reflection server speaks; grpcurl falls back to it from v1."""
UNAUTHENTICATED_PREFIXES = (
    "/grpc.reflection.v1.ServerReflection/",
    f"/{REFLECTION_SERVICE}/",
)
"""Native paths without a token: reflection describes only public API shapes, and v1 must get
UNIMPLEMENTED (no route) rather than UNAUTHENTICATED for grpcurl to fall back to v1alpha."""
JWT_PROVIDER = "mesh"
BUFFER_FILTER = "envoy.filters.http.buffer"
ERROR_DOMAIN = "gateway.mesh"
REQUEST_HEADERS_KIB = 32
"""Most KiB of request headers Envoy takes (its default is 60); past it, 431."""
TRANSCODED_BYTES = 16 * 1024 * 1024
"""Most bytes of one REST call's message, and of its answer, the transcoder buffers: what the
services receive at most (``grpc.max_receive_message_length``)."""

GRPC_CONTENT_TYPE: Config = {"safe_regex": {"regex": r"application/grpc(\+.*)?"}}
"""What Envoy itself takes for gRPC: ``application/grpc`` or ``application/grpc+<codec>``, so
not ``application/grpc-web``, which no filter here speaks and which gets JSON errors like REST."""

METADATA_GUARD = r"""-- gRPC metadata keys are [0-9a-z_.-] and values printable ASCII; HTTP allows
-- more, and a service answers INTERNAL to a request carrying anything else: drop them.
function envoy_on_request(request_handle)
  local invalid = {}
  for key, value in pairs(request_handle:headers()) do
    if string.sub(key, 1, 1) ~= ":" and
        (string.find(key, "[^0-9a-z_.%-]") or string.find(value, "[^\t\32-\126]")) then
      table.insert(invalid, key)
    end
  end
  for _, key in ipairs(invalid) do
    request_handle:headers():remove(key)
  end
end
"""
STRICT_INPUT_FILTER = "mesh.strict_input"
SSE_FILTER = "mesh.sse_event_ids"
SSE_SCRIPT = "event_ids"
BROWSER_STREAMS = ("/audit.v1.AuditService/SubscribeEvents",)
"""Streams a browser opens with ``EventSource``. Each message is a resource named
``<collection>/<number>``: its server-sent event gets ``id: <number>``, where the browser
resumes (``Last-Event-ID``). A request with ``?ticket=`` passes the edge without a bearer
token; the service checks the ticket itself."""
SSE_EVENT_IDS = r"""-- The transcoder writes each message of a stream as `data: <json>` and a blank
-- line, and proto3 JSON prints fields in field-number order, so the message's first field,
-- its name `<collection>/<number>`, opens the line. Put `id: <number>` before it: a
-- browser's EventSource sends it back as Last-Event-ID when it reconnects. Inside the JSON
-- a quote is always escaped, so the pattern matches nowhere but at an event's start.
function envoy_on_response(response_handle)
  local content_type = response_handle:headers():get("content-type") or ""
  if string.sub(content_type, 1, 17) ~= "text/event-stream" then
    return
  end
  for chunk in response_handle:bodyChunks() do
    local text = chunk:getBytes(0, chunk:length())
    local with_ids, count = string.gsub(
      text, 'data: {"name":"([%w_-]+)/(%d+)"', 'id: %2\ndata: {"name":"%1/%2"')
    if count > 0 then
      chunk:setBytes(with_ids)
    end
  end
end
"""
OAUTH_FILTER = "mesh.oauth_errors"
OAUTH_METHODS = ("/users.v1.AuthService/IssueToken", "/users.v1.AuthService/IntrospectToken")
"""RPCs answering OAuth 2.0 clients, which read errors as RFC 6749 section 5.2 has them."""
OAUTH_ERRORS = r"""-- RFC 6749 section 5.2: a token endpoint's error is
-- {"error": ..., "error_description": ...}. The service's ErrorInfo reason is the error
-- code in upper case; the transcoder wrote the status as
-- {"code":..,"message":"..","details":[..]}, in which every quote inside a string is
-- escaped, so the message ends at the first `","details"`.
function envoy_on_response(response_handle)
  local headers = response_handle:headers()
  headers:replace("cache-control", "no-store")
  if headers:get(":status") == "200" then
    return
  end
  -- Before body(): once the body is buffered, the headers have gone on unchanged.
  if headers:get(":status") == "401" then
    headers:replace("www-authenticate", 'Basic realm="mesh"')
  end
  local body = response_handle:body()
  local text = body and body:getBytes(0, body:length()) or ""
  local reason = string.match(text, '"reason":"([A-Z_]+)"') or "SERVER_ERROR"
  local message = string.match(text, '^{"code":%d+,"message":"(.-)","details"') or ""
  local rewritten = '{"error":"' .. string.lower(reason) .. '","error_description":"' ..
    message .. '"}'
  if body then
    body:setBytes(rewritten)
  end
end
"""
HTTP_TO_GRPC: dict[int, tuple[int, str]] = {
    400: (3, "INVALID_ARGUMENT"),
    401: (16, "UNAUTHENTICATED"),
    404: (5, "NOT_FOUND"),
    413: (8, "RESOURCE_EXHAUSTED"),
    429: (8, "RESOURCE_EXHAUSTED"),
    431: (8, "RESOURCE_EXHAUSTED"),
    500: (13, "INTERNAL"),
    502: (14, "UNAVAILABLE"),
    503: (14, "UNAVAILABLE"),
    504: (4, "DEADLINE_EXCEEDED"),
}
"""gRPC code (and ErrorInfo reason) reported for each HTTP status Envoy answers by itself,
the inverse of the mapping the transcoder applies to upstream errors."""


def _typed(type_name: str, **fields: Any) -> Config:
    return {"@type": f"type.googleapis.com/{type_name}", **fields}


def _address(host: str, port: int) -> Config:
    return {"socket_address": {"address": host, "port_value": port}}


def _seconds(value: float) -> str:
    return f"{value:g}s"


MAX_DOWNSTREAM_CONNECTIONS = 10_000
UPSTREAM_REQUESTS = MAX_DOWNSTREAM_CONNECTIONS
"""Open requests (streams included) Envoy lets through to one service. Envoy's default, 1024,
would refuse streams the services accept (each allows ``MESH_MAX_STREAMS`` per streaming
method, and bounds what it holds itself); the downstream connection limit bounds the whole."""


RETRY_ALWAYS = "connect-failure,refused-stream"
"""Retried on every unary route: the request never reached a service (no connection, or the
HTTP/2 stream refused before any of it was read), so another replica may take it."""
RETRY_IDEMPOTENT = f"{RETRY_ALWAYS},reset,unavailable,cancelled"
"""Retried on idempotent methods only (:attr:`gateway.descriptors.Method.idempotent`): also a
connection lost mid-call (a replica killed), gRPC UNAVAILABLE (its database gone) and
CANCELLED (a call that raced a replica's stop), after which a write may or may not have
happened. Envoy's ``retry_on`` names
gRPC statuses (``unavailable``) beside the HTTP conditions; its ``retriable_status_codes``
are HTTP statuses, which a gRPC upstream never answers with."""


def _retry_policy(retry_on: str) -> Config:
    """Up to two more attempts, each on a host not tried yet, after 25 to 250 ms."""
    return {
        "retry_on": retry_on,
        "num_retries": 2,
        "retry_back_off": {"base_interval": "0.025s", "max_interval": "0.25s"},
        "retry_host_predicate": [
            {
                "name": "envoy.retry_host_predicates.previous_hosts",
                "typed_config": _typed(
                    "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
                ),
            }
        ],
        "host_selection_retry_max_attempts": 3,
    }


def _cluster(
    name: str, host: str, ports: Sequence[int], *, http2: bool, health_checked: bool
) -> Config:
    """A cluster of ``host`` on each of ``ports`` (one per replica)."""
    try:
        ip_address(host)
        discovery = "STATIC"
    except ValueError:
        discovery = "STRICT_DNS"
    protocol = (
        {
            "http2_protocol_options": {
                "connection_keepalive": {"interval": "30s", "timeout": "10s"},
            }
        }
        if http2
        else {"http_protocol_options": {}}
    )
    cluster: Config = {
        "name": name,
        "type": discovery,
        "connect_timeout": "1s",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": _typed(
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                explicit_http_config=protocol,
            )
        },
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {"endpoint": {"address": _address(host, port)}} for port in ports
                    ]
                }
            ],
        },
        "circuit_breakers": {
            "thresholds": [
                {
                    "max_connections": UPSTREAM_REQUESTS,
                    "max_pending_requests": UPSTREAM_REQUESTS,
                    "max_requests": UPSTREAM_REQUESTS,
                }
            ]
        },
    }
    if health_checked:
        # Checked every second whether or not traffic flows, so /health turns 503 within about
        # two seconds of a service going away (two failed checks, so one slow answer on a busy
        # machine does not flap it) and 200 again at the first SERVING answer.
        cluster["health_checks"] = [
            {
                "timeout": "2s",
                "interval": "1s",
                "no_traffic_interval": "1s",
                "unhealthy_threshold": 2,
                "healthy_threshold": 1,
                "grpc_health_check": {},
            }
        ]
        # A replica that fails calls (no connection, resets, UNAVAILABLE) between two health
        # checks is taken out of the balancing for 5 s, longer each time; at most half of
        # them, so a cluster never ejects its last replica.
        cluster["outlier_detection"] = {
            "consecutive_gateway_failure": 3,
            "consecutive_local_origin_failure": 3,
            "split_external_local_origin_errors": True,
            "consecutive_5xx": 0,
            "interval": "1s",
            "base_ejection_time": "5s",
            "max_ejection_percent": 50,
        }
    return cluster


def _tls_socket(context_type: str, **context: Any) -> Config:
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": _typed(
            f"envoy.extensions.transport_sockets.tls.v3.{context_type}", **context
        ),
    }


def _downstream_tls(settings: MeshSettings) -> Config:
    """The listener's TLS from the settings' files; ALPN offers h2 for gRPC, http/1.1 for REST."""
    if not settings.tls:
        return {}
    certificate = {
        "certificate_chain": {"filename": settings.tls_cert_file},
        "private_key": {"filename": settings.tls_key_file},
    }
    return {
        # A handshake begun and never finished holds a connection as well.
        "transport_socket_connect_timeout": _seconds(settings.headers_timeout_seconds),
        "transport_socket": _tls_socket(
            "DownstreamTlsContext",
            common_tls_context={
                "tls_certificates": [certificate],
                "alpn_protocols": ["h2", "http/1.1"],
            },
        ),
    }


def _upstream_mtls(tls: MutualTls) -> Config:
    """A service cluster's mutual TLS: Envoy's certificate, and the services' CA and name.

    Health checks go over the cluster's transport socket, so they are checked the same way.
    """
    return {
        "transport_socket": _tls_socket(
            "UpstreamTlsContext",
            sni=tls.server_name,
            common_tls_context={
                "tls_certificates": [
                    {
                        "certificate_chain": {"filename": str(tls.cert_file)},
                        "private_key": {"filename": str(tls.key_file)},
                    }
                ],
                "validation_context": {
                    "trusted_ca": {"filename": str(tls.ca_file)},
                    "match_typed_subject_alt_names": [
                        {"san_type": "DNS", "matcher": {"exact": tls.server_name}}
                    ],
                },
                "alpn_protocols": ["h2"],
            },
        )
    }


def _gateway_self(settings: MeshSettings) -> Config:
    """The cluster of the gateway's own listener, through which it fetches the JWKS.

    With TLS on, the connection is TLS too, to loopback and without checking the certificate:
    the certificate names the public host, not 127.0.0.1, and the peer is this very Envoy.
    """
    cluster = _cluster(
        "gateway_self",
        settings.gateway_local_host,
        [settings.gateway_port],
        http2=False,
        health_checked=False,
    )
    if settings.tls:
        cluster["transport_socket"] = _tls_socket("UpstreamTlsContext")
    return cluster


def _stream_route(name: str, path_match: Config, cluster: str) -> Config:
    """A route for a stream: no deadline, no idle cut-off, and no buffering of its body.

    The :data:`BROWSER_STREAMS` also run the script that numbers their events.
    """
    per_filter: Config = {
        BUFFER_FILTER: _typed(
            "envoy.extensions.filters.http.buffer.v3.BufferPerRoute", disabled=True
        )
    }
    if name in BROWSER_STREAMS:
        per_filter[SSE_FILTER] = _typed(
            "envoy.extensions.filters.http.lua.v3.LuaPerRoute", name=SSE_SCRIPT
        )
    return {
        "name": name,
        "match": {**path_match, "headers": _grpc_only()},
        "route": {"cluster": cluster, "timeout": "0s", "idle_timeout": "0s"},
        "typed_per_filter_config": per_filter,
    }


def _oauth_route(path: str, cluster: str, timeout: str) -> Config:
    """A route whose errors :data:`OAUTH_ERRORS` rewrites for OAuth 2.0 clients."""
    return {
        "name": path,
        "match": {"path": path, "headers": _grpc_only()},
        "route": {"cluster": cluster, "timeout": timeout},
        "typed_per_filter_config": {
            OAUTH_FILTER: _typed("envoy.extensions.filters.http.lua.v3.LuaPerRoute", name="errors")
        },
    }


def _grpc_only() -> list[Config]:
    """Routes for RPC paths match gRPC requests only (the transcoder sets this header too)."""
    return [{"name": "content-type", "string_match": GRPC_CONTENT_TYPE}]


def _routes(services: Iterable[Service], settings: MeshSettings, openapi: str) -> list[Config]:
    unary_timeout = _seconds(settings.unary_timeout_seconds)
    routes: list[Config] = [
        {
            "name": "openapi",
            "match": {
                "path": OPENAPI_PATH,
                "headers": [{"name": ":method", "string_match": {"exact": "GET"}}],
            },
            "direct_response": {"status": 200, "body": {"filename": openapi}},
            "response_headers_to_add": [
                {"header": {"key": "content-type", "value": "application/json"}}
            ],
        }
    ]
    for service in services:
        for method in service.methods:
            if method.streaming:
                routes.append(
                    _stream_route(method.grpc_path, {"path": method.grpc_path}, service.backend)
                )
            elif method.grpc_path in OAUTH_METHODS:
                routes.append(_oauth_route(method.grpc_path, service.backend, unary_timeout))
            elif method.idempotent:
                routes.append(
                    {
                        "name": method.grpc_path,
                        "match": {"path": method.grpc_path, "headers": _grpc_only()},
                        "route": {
                            "cluster": service.backend,
                            "timeout": unary_timeout,
                            "retry_policy": _retry_policy(RETRY_IDEMPOTENT),
                        },
                    }
                )
        routes.append(
            {
                "name": service.name,
                "match": {"prefix": f"/{service.name}/", "headers": _grpc_only()},
                "route": {
                    "cluster": service.backend,
                    "timeout": unary_timeout,
                    "retry_policy": _retry_policy(RETRY_ALWAYS),
                },
            }
        )
    routes.append(
        _stream_route(REFLECTION_SERVICE, {"prefix": f"/{REFLECTION_SERVICE}/"}, "reflection")
    )
    return routes


def _exempt_methods(services: Iterable[Service]) -> list[Method]:
    return [
        method
        for service in services
        for method in service.methods
        if any(binding.template in EXEMPT_REST_PATHS for binding in method.bindings)
    ]


def _ticket_paths(services: Iterable[Service]) -> list[str]:
    """The REST paths of the :data:`BROWSER_STREAMS`, which a ticket may open."""
    return [
        binding.template
        for service in services
        for method in service.methods
        if method.grpc_path in BROWSER_STREAMS
        for binding in method.bindings
    ]


def _jwt_authn(services: list[Service], settings: MeshSettings) -> Config:
    exempt_paths = [
        *EXEMPT_REST_PATHS,
        HEALTH_PATH,
        OPENAPI_PATH,
        *(method.grpc_path for method in _exempt_methods(services)),
    ]
    rules: list[Config] = [{"match": {"path": path}} for path in exempt_paths]
    rules += [{"match": {"prefix": prefix}} for prefix in UNAUTHENTICATED_PREFIXES]
    rules += [
        {"match": {"path": path, "query_parameters": [{"name": "ticket", "present_match": True}]}}
        for path in _ticket_paths(services)
    ]
    rules.append({"match": {"prefix": "/"}, "requires": {"provider_name": JWT_PROVIDER}})
    return _typed(
        "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
        providers={
            JWT_PROVIDER: {
                "issuer": settings.issuer,
                "audiences": [settings.audience],
                # The Authorization header only: no token in query strings or cookies.
                "from_headers": [{"name": "Authorization", "value_prefix": "Bearer "}],
                "forward": True,
                "remote_jwks": {
                    # Fetched through this very listener, which transcodes it onto the User
                    # Service's gRPC API; refetched in the background when the cache expires,
                    # and every quarter second while the User Service is not answering yet.
                    "http_uri": {
                        "uri": f"{settings.gateway_scheme}://{settings.gateway_local_host}:"
                        f"{settings.gateway_port}{JWKS_PATH}",
                        "cluster": "gateway_self",
                        "timeout": "2s",
                    },
                    "cache_duration": _seconds(settings.jwks_cache_seconds),
                    "async_fetch": {"fast_listener": True, "failed_refetch_duration": "0.25s"},
                },
                "jwt_cache_config": {"jwt_cache_size": 1000},
                "clock_skew_seconds": 30,
            }
        },
        rules=rules,
    )


def _transcoder(services: list[Service], descriptor: str) -> Config:
    return _typed(
        "envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder",
        proto_descriptor=descriptor,
        services=[s.name for s in services if any(m.bindings for m in s.methods)],
        print_options={
            "preserve_proto_field_names": True,
            "always_print_primitive_fields": True,
            "stream_sse_style_delimited": True,
        },
        request_validation_options={
            "reject_unknown_query_parameters": True,
            "reject_binding_body_field_collisions": True,
        },
        convert_grpc_status=True,
        # What one call may transcode each way. Left unset it is the stream's buffer limit
        # (1 MiB): a page of large objects answered 500, and a JSON body whose message is
        # larger than its text (Struct numbers are 9 bytes or more) 413.
        max_request_body_size=TRANSCODED_BYTES,
        max_response_body_size=TRANSCODED_BYTES,
        # A query string's "+" is a space, as browsers and HTTP clients encode one
        # (`?reason=one+off`); a literal plus arrives as %2B.
        query_param_unescape_plus=True,
    )


def _health_check(replicas: int) -> Config:
    """``/health`` is 200 while at least one replica of every service is healthy."""
    return _typed(
        "envoy.extensions.filters.http.health_check.v3.HealthCheck",
        pass_through_mode=False,
        headers=[{"name": ":path", "string_match": {"exact": HEALTH_PATH}}],
        cluster_min_healthy_percentages={
            backend: {"value": 100 // replicas} for backend in BACKENDS
        },
    )


def _local_reply_mappers() -> list[Config]:
    """Envoy's own error replies as ``{code, message, details}``, like transcoded errors.

    The first mapper matches native gRPC calls and changes nothing, so Envoy keeps answering
    those with grpc-status trailers. A REST call the transcoder has already turned into gRPC
    carries ``x-envoy-original-path``, which is how it is told apart from a native one.
    """
    native_grpc = {
        "and_filter": {
            "filters": [
                {
                    "header_filter": {
                        "header": {
                            "name": "content-type",
                            "string_match": GRPC_CONTENT_TYPE,
                        }
                    }
                },
                {
                    "header_filter": {
                        "header": {"name": "x-envoy-original-path", "present_match": False}
                    }
                },
            ]
        }
    }

    def status_is(op: str, code: int) -> Config:
        return {
            "status_code_filter": {
                "comparison": {
                    "op": op,
                    "value": {"default_value": code, "runtime_key": f"mesh.local_reply.{code}"},
                }
            }
        }

    def body(code: int, reason: str, message: str = "%LOCAL_REPLY_BODY%") -> Config:
        return {
            "json_format": {
                "code": code,
                "message": message,
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": reason,
                        "domain": ERROR_DOMAIN,
                        "metadata": {"envoy_details": "%RESPONSE_CODE_DETAILS%"},
                    },
                    {
                        "@type": "type.googleapis.com/google.rpc.RequestInfo",
                        "request_id": "%REQ(X-REQUEST-ID)%",
                    },
                ],
            }
        }

    unhealthy = {
        "and_filter": {
            "filters": [
                status_is("EQ", 503),
                {
                    "header_filter": {
                        "header": {"name": ":path", "string_match": {"exact": HEALTH_PATH}}
                    }
                },
            ]
        }
    }
    strict_refusal = {
        "metadata_filter": {
            "matcher": {
                "filter": STRICT_INPUT_FILTER,
                "path": [{"key": "refused"}],
                "value": {"bool_match": True},
            },
            "match_if_key_not_found": False,
        }
    }
    mappers: list[Config] = [
        {"filter": native_grpc},
        # The strict-input script writes its own {code, message, details}: keep it as it is.
        {"filter": strict_refusal},
        {
            # Envoy's only 403 of its own is jwt_authn refusing a token's audience; to a client
            # that is an invalid token like any other (RFC 6750), so 401 as for the rest.
            "filter": status_is("EQ", 403),
            "status_code": 401,
            "body_format_override": body(16, "UNAUTHENTICATED"),
        },
        {
            "filter": unhealthy,
            "body_format_override": body(14, "UNAVAILABLE", "not every service is SERVING"),
        },
    ]
    for status, (code, reason) in HTTP_TO_GRPC.items():
        message = (
            "no route for %REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"
            if status == 404
            else "%LOCAL_REPLY_BODY%"
        )
        mappers.append(
            {"filter": status_is("EQ", status), "body_format_override": body(code, reason, message)}
        )
    mappers.append({"filter": status_is("GE", 400), "body_format_override": body(2, "UNKNOWN")})
    return mappers


def _access_log() -> list[Config]:
    return [
        {
            "name": "envoy.access_loggers.stdout",
            # Health probes and the gateway's own JWKS refreshes come every few seconds and
            # say nothing worth keeping.
            "filter": {
                "header_filter": {
                    "header": {
                        "name": ":path",
                        "string_match": {
                            "safe_regex": {
                                "regex": f"^({re.escape(HEALTH_PATH)}|{re.escape(JWKS_PATH)})$"
                            }
                        },
                        "invert_match": True,
                    }
                }
            },
            "typed_config": _typed(
                "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
                log_format={
                    "json_format": {
                        "ts": "%START_TIME%",
                        # Without the query: a URL may carry a ticket (or, against advice,
                        # a token), which has no place in a log.
                        "path": "%PATH(NQ:ORIG_OR_PATH)%",
                        "upstream_path": "%REQ(:PATH)%",
                        "status": "%RESPONSE_CODE%",
                        "grpc_status": "%GRPC_STATUS%",
                        "details": "%RESPONSE_CODE_DETAILS%",
                        "duration_ms": "%DURATION%",
                        "upstream": "%UPSTREAM_CLUSTER%",
                        "request_id": "%REQ(X-REQUEST-ID)%",
                        "trace_id": "%TRACE_ID%",
                    }
                },
            ),
        }
    ]


def _metrics_listener(settings: MeshSettings) -> Config:
    """A listener passing ``GET /stats/prometheus`` to the admin interface, and no more.

    The admin interface itself can change Envoy (drain listeners, reset counters, quit), so it is
    never what a scraper reaches; this listener answers 404 to every other path and method.
    """
    routes = [
        {
            "name": "stats",
            "match": {
                "path": STATS_PATH,
                "headers": [{"name": ":method", "string_match": {"exact": "GET"}}],
            },
            "route": {"cluster": "admin", "timeout": "10s"},
        },
        {
            "name": "nothing_else",
            "match": {"prefix": "/"},
            "direct_response": {
                "status": 404,
                "body": {"inline_string": f"only GET {STATS_PATH} is served here\n"},
            },
        },
    ]
    manager = _typed(
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        stat_prefix="metrics",
        codec_type="HTTP1",
        normalize_path=True,
        merge_slashes=True,
        route_config={
            "name": "metrics",
            "virtual_hosts": [{"name": "metrics", "domains": ["*"], "routes": routes}],
        },
        http_filters=[
            {
                "name": "envoy.filters.http.router",
                "typed_config": _typed("envoy.extensions.filters.http.router.v3.Router"),
            }
        ],
    )
    return {
        "name": "metrics",
        "address": _address(settings.gateway_metrics_host, settings.gateway_metrics_port),
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": manager,
                    }
                ]
            }
        ],
    }


def _tracing(settings: MeshSettings) -> Config:
    """Envoy's OpenTelemetry tracer, when spans are exported: it starts or continues the trace.

    Without an exporter Envoy starts none (its tracer needs somewhere to send spans) and passes
    a client's ``traceparent`` on unchanged.
    """
    export = settings.traces
    if export is None:
        return {}
    if export.protocol == "grpc":
        sink: Config = {"grpc_service": {"envoy_grpc": {"cluster_name": "otlp"}, "timeout": "2s"}}
    else:
        sink = {
            "http_service": {"http_uri": {"uri": export.url, "cluster": "otlp", "timeout": "2s"}}
        }
    return {
        "tracing": {
            "random_sampling": {"value": export.sampling_percent},
            "provider": {
                "name": "envoy.tracers.opentelemetry",
                "typed_config": _typed(
                    "envoy.config.trace.v3.OpenTelemetryConfig", service_name="mesh-gateway", **sink
                ),
            },
        }
    }


def render(
    descriptor_set: descriptor_pb2.FileDescriptorSet,
    settings: MeshSettings,
    *,
    descriptor: str = "gateway/descriptor.pb",
    openapi: str = "gateway/openapi.json",
    check_bodies: bool = True,
    hosts: Mapping[str, str] | None = None,
) -> Config:
    """The whole bootstrap configuration.

    File paths are relative to Envoy's working folder unless given absolute. Without
    ``check_bodies`` (a benchmark's baseline only), bodies reach the transcoder unchecked.
    ``hosts`` names the host of a service (``users``, ``oms``, ``audit``) where it is not
    ``settings.upstream_host``; a name that is not an address becomes a STRICT_DNS cluster of
    every address it resolves to (a Kubernetes headless Service: one endpoint per pod).
    """
    hosts = hosts or {}
    services = descriptors.services(descriptor_set)
    routes = _routes(services, settings, openapi)
    checks = (
        []
        if not check_bodies
        else [
            {
                # After the buffer, so it reads whole (capped) bodies, and before the transcoder,
                # which would drop what it does not know (gateway/strict_input.py).
                "name": STRICT_INPUT_FILTER,
                "typed_config": _typed(
                    "envoy.extensions.filters.http.lua.v3.Lua",
                    default_source_code={
                        "inline_string": strict_input.render(descriptor_set, services)
                    },
                ),
            },
        ]
    )
    http_filters = [
        {
            "name": "envoy.filters.http.health_check",
            "typed_config": _health_check(settings.replicas),
        },
        {"name": "envoy.filters.http.jwt_authn", "typed_config": _jwt_authn(services, settings)},
        {
            # Caps request bodies (413 beyond it); streaming routes switch it off.
            "name": BUFFER_FILTER,
            "typed_config": _typed(
                "envoy.extensions.filters.http.buffer.v3.Buffer",
                max_request_bytes=settings.max_request_bytes,
            ),
        },
        *(checks if check_bodies else []),
        {
            # Before the transcoder, so that on the way out it sees the server-sent events the
            # transcoder wrote; it runs only on the routes that name its script.
            "name": SSE_FILTER,
            "typed_config": _typed(
                "envoy.extensions.filters.http.lua.v3.Lua",
                source_codes={SSE_SCRIPT: {"inline_string": SSE_EVENT_IDS}},
            ),
        },
        {
            # Also before the transcoder, and only on the routes of OAUTH_METHODS.
            "name": OAUTH_FILTER,
            "typed_config": _typed(
                "envoy.extensions.filters.http.lua.v3.Lua",
                source_codes={"errors": {"inline_string": OAUTH_ERRORS}},
            ),
        },
        {
            "name": "envoy.filters.http.grpc_json_transcoder",
            "typed_config": _transcoder(services, descriptor),
        },
        {
            "name": "envoy.filters.http.lua",
            "typed_config": _typed(
                "envoy.extensions.filters.http.lua.v3.Lua",
                default_source_code={"inline_string": METADATA_GUARD},
            ),
        },
        {
            "name": "envoy.filters.http.router",
            "typed_config": _typed("envoy.extensions.filters.http.router.v3.Router"),
        },
    ]
    connection_manager = _typed(
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        stat_prefix="gateway",
        codec_type="AUTO",
        normalize_path=True,
        merge_slashes=True,
        # The client address is the connection's: Envoy appends it to x-forwarded-for and
        # trusts no entry a client sent, so the services take the last entry as the client
        # address (common/origin.py) and nobody can choose what they record.
        use_remote_address=True,
        xff_num_trusted_hops=0,
        # Every request gets an x-request-id (a client's own is replaced, as it comes from
        # outside), passed to the service and returned to the client, who can quote it.
        always_set_request_id_in_response=True,
        # Request headers (a REST call's URL and query among them) past this get 431 here,
        # well inside what the services accept (common/server.py, SERVER_OPTIONS).
        max_request_headers_kb=REQUEST_HEADERS_KIB,
        # A client slow to send its headers, or keeping a connection with nothing on it,
        # would hold one of MAX_DOWNSTREAM_CONNECTIONS for as long as it liked.
        request_headers_timeout=_seconds(settings.headers_timeout_seconds),
        common_http_protocol_options={"idle_timeout": _seconds(settings.idle_timeout_seconds)},
        **_tracing(settings),
        access_log=_access_log(),
        http2_protocol_options={"max_concurrent_streams": 1000},
        route_config={
            "name": "mesh",
            "max_direct_response_body_size_bytes": 4 * 1024 * 1024,
            "virtual_hosts": [{"name": "mesh", "domains": ["*"], "routes": routes}],
        },
        http_filters=http_filters,
        local_reply_config={"mappers": _local_reply_mappers()},
    )
    host = settings.upstream_host
    clusters = [
        {
            **_cluster(
                backend,
                hosts.get(backend, host),
                settings.service_ports(backend),
                http2=True,
                health_checked=True,
            ),
            **(_upstream_mtls(settings.mtls) if settings.mtls else {}),
        }
        for backend in BACKENDS
    ]
    clusters.append(
        _cluster("reflection", host, [settings.reflection_port], http2=True, health_checked=True)
    )
    clusters.append(_gateway_self(settings))
    clusters.append(
        _cluster("admin", "127.0.0.1", [settings.admin_port], http2=False, health_checked=False)
    )
    if settings.traces is not None:
        otlp_host, otlp_port = settings.traces.host_port
        clusters.append(
            _cluster(
                "otlp",
                otlp_host,
                [otlp_port],
                http2=settings.traces.protocol == "grpc",
                health_checked=False,
            )
        )
    return {
        "admin": {"address": _address("127.0.0.1", settings.admin_port)},
        "overload_manager": {
            "resource_monitors": [
                {
                    "name": "envoy.resource_monitors.global_downstream_max_connections",
                    "typed_config": _typed(
                        "envoy.extensions.resource_monitors.downstream_connections.v3."
                        "DownstreamConnectionsConfig",
                        max_active_downstream_connections=MAX_DOWNSTREAM_CONNECTIONS,
                    ),
                }
            ]
        },
        "static_resources": {
            "listeners": [
                {
                    "name": "gateway",
                    "address": _address(settings.gateway_host, settings.gateway_port),
                    "filter_chains": [
                        {
                            **_downstream_tls(settings),
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": connection_manager,
                                }
                            ],
                        }
                    ],
                },
                _metrics_listener(settings),
            ],
            "clusters": clusters,
        },
    }
