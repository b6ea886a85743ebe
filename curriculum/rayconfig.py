"""The settings of the Ray rollout workers (``curriculum.ray``); Ray itself is imported only where they run."""

from __future__ import annotations

from pydantic import Field
from upbringing.curriculum.frozen import Frozen


class RayConfig(Frozen):
    """Rollout workers on Ray (``curriculum.vec_env: ray``): actors that each step a share of a chunk's envs."""

    workers: int = Field(default=2, gt=0, description="Ray actors holding the envs; each steps its envs in turn.")
    envs_per_worker: int | None = Field(
        default=None, gt=0, description="Envs each actor holds; None = curriculum.n_envs / workers (must divide)."
    )
    address: str | None = Field(
        default=None,
        description="Ray cluster to join (host:port, auto); None = the one this process joined, RAY_ADDRESS, or a "
        "local Ray sized to the machine.",
    )
    cpus_per_worker: float | None = Field(
        default=None, ge=0.0, description="CPUs Ray reserves per actor; None = Ray's default for actors (none)."
    )

    def per_worker(self, n_envs: int) -> int:
        """Envs per actor for ``n_envs`` envs in all."""
        return self.envs_per_worker if self.envs_per_worker is not None else n_envs // self.workers
