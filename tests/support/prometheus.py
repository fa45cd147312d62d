"""A real Prometheus server scraping the mesh, and its HTTP API as the tests ask it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from bench._tools import require
from gateway.supervisor import free_ports
from tests.support.waiting import eventually

SCRAPE_SECONDS = 1


@dataclass
class Prometheus:
    url: str

    def query(self, expr: str) -> list[dict[str, object]]:
        """The result vector of an instant query."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "success", body
        assert body["data"]["resultType"] == "vector", body
        return list(body["data"]["result"])

    def values(self, expr: str, by: str) -> dict[str, float]:
        """An instant query's samples by the value of label ``by``."""
        return {
            str(sample["metric"].get(by, "")): float(sample["value"][1])
            for sample in self.query(expr)
        }

    def value(self, expr: str) -> float | None:
        found = self.query(expr)
        assert len(found) <= 1, found
        return float(found[0]["value"][1]) if found else None

    def targets_up(self) -> dict[str, str]:
        """Each scrape job's health (``up``, ``down``, ``unknown``)."""
        response = httpx.get(f"{self.url}/api/v1/targets", timeout=10)
        return {
            target["labels"]["job"]: target["health"]
            for target in response.json()["data"]["activeTargets"]
        }


def scrape_config(jobs: Mapping[str, str]) -> str:
    """A configuration scraping each URL every second, as the job it is named by."""
    lines = [
        "global:",
        f"  scrape_interval: {SCRAPE_SECONDS}s",
        f"  scrape_timeout: {SCRAPE_SECONDS}s",
        "scrape_configs:",
    ]
    for job, url in jobs.items():
        parts = urlsplit(url)
        lines += [
            f"  - job_name: {job}",
            f"    metrics_path: {parts.path}",
            "    static_configs:",
            f"      - targets: ['{parts.netloc}']",
        ]
    return "\n".join(lines) + "\n"


@contextmanager
def running_prometheus(jobs: Mapping[str, str], folder: Path) -> Iterator[Prometheus]:
    """Debian's ``prometheus`` scraping ``jobs`` (name to URL), every target up once it yields."""
    config = folder / "prometheus.yml"
    config.write_text(scrape_config(jobs))
    (port,) = free_ports(1)
    with (folder / "prometheus.log").open("w") as log:
        process = subprocess.Popen(
            [
                require("prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Prometheus(f"http://127.0.0.1:{port}")
    try:
        eventually(
            lambda: (
                set(server.targets_up().values()) == {"up"}
                and set(server.targets_up()) == set(jobs)
            ),
            timeout=30,
            interval=0.2,
            ignoring=(httpx.HTTPError, ValueError, KeyError),  # not ready: not JSON yet
            what="Prometheus to scrape every target",
        )
        yield server
    finally:
        process.terminate()
        process.wait(timeout=15)
