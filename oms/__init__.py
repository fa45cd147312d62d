"""Ontology Metadata Service: the ontology schema on branches (gRPC port 8001)."""
