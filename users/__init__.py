"""User Service: login, tokens, users, roles and revocations (gRPC port 8000)."""
