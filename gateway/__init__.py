"""The gateway side of the mesh: code generation, the Envoy launcher and the ``mesh`` command."""
