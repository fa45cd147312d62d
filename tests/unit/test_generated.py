"""Generated code and the descriptor set must match the protos."""

from gateway.codegen import stale_files


def test_generated_code_is_fresh():
    assert stale_files() == []
