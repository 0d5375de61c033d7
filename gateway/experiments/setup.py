"""Opening the experiments service for the lifespan: strata.yaml's seeds, what a routable
target is on this gateway, and where decisions are linked into the variant registry."""

from __future__ import annotations

from contextlib import AsyncExitStack

from gateway.accounting.store import Database
from gateway.config import GatewayConfig
from gateway.errors import InvalidRequest
from gateway.experiments.lineage import linker
from gateway.experiments.service import Experiments
from gateway.experiments.spec import CheckTarget, seeded_record
from gateway.experiments.store import ExperimentRecord
from gateway.settings import Settings
from gateway.targets import parse_target
from gateway.variants import RegistryResolver


def seeds(config: GatewayConfig) -> list[ExperimentRecord]:
    out = []
    for alias, entry in config.aliases.items():
        section = entry.experiment
        if section is None:
            continue
        chains = {name: [str(t) for t in v.chain()] for name, v in section.variants.items()}
        weights = {name: v.weight for name, v in section.variants.items()}
        out.append(seeded_record(alias, section.sticky_by, section.salt, chains, weights))
    return out


def target_checker(config: GatewayConfig, variants: RegistryResolver) -> CheckTarget:
    def check(text: str) -> None:
        target = parse_target(text)  # InvalidRequest naming what is wrong
        if target.kind == "local":
            base = config.local.bases.get(target.model)
            if base is None:
                raise InvalidRequest(
                    f"local base {target.model!r} is not defined under local.bases (known: "
                    f"{', '.join(sorted(config.local.bases))})"
                )
            if target.adapter and target.adapter not in base.adapters:
                raise InvalidRequest(
                    f"adapter {target.adapter!r} is not defined under "
                    f"local.bases.{target.model}.adapters"
                )
        elif target.kind == "variant" and variants.resolve(target.model) is None:
            known = variants.names()
            raise InvalidRequest(
                f"no variant {target.model!r} in the registry (known: "
                f"{', '.join(known) or 'none'}; add one with `strata variants add`)"
            )

    return check


async def open_experiments(
    stack: AsyncExitStack,
    settings: Settings,
    config: GatewayConfig,
    db: Database,
    variants: RegistryResolver,
) -> Experiments:
    return await Experiments.open(
        stack,
        db,
        seeds(config),
        target_checker(config, variants),
        refresh_s=settings.experiments_refresh_s,
        lineage=linker(variants),
    )
