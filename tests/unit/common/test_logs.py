"""Log records as one JSON object per line, with ``extra=`` fields as top-level keys."""

import json
import logging

from common.logs import JsonFormatter


def test_record_becomes_one_json_object_with_extras():
    record = logging.LogRecord("mesh.rpc", logging.INFO, __file__, 1, "rpc %s", ("done",), None)
    record.method = "/users.v1.AuthService/Login"
    line = JsonFormatter("users").format(record)
    entry = json.loads(line)
    assert "\n" not in line
    assert entry["service"] == "users"
    assert entry["msg"] == "rpc done"
    assert entry["method"] == "/users.v1.AuthService/Login"
    assert entry["level"] == "INFO"
