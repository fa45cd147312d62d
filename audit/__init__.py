"""Audit Service: the durable, tamper-evident event log (gRPC port 8002)."""
