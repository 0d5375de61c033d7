"""The route stage: the model name a caller gave → a ``Plan`` (ordered targets and policy).

An alias is a fallback chain with a policy, or an experiment whose arms are chains; a name that
is not an alias but looks like a target (``bedrock:…``, ``local:…``, ``variant:…``) is routed
as a chain of one with the default policy. ``variant:`` targets are left for the attempt stage
to resolve, one attempt at a time, through ``resolve``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from gateway.errors import Forbidden, InvalidRequest, NotFound
from gateway.pipeline.call import Call, Plan
from gateway.pipeline.experiments import Arm, Experiment
from gateway.pipeline.policy import RoutePolicy
from gateway.targets import Target, looks_like_target, parse_target

MAX_VARIANT_DEPTH = 4
ARM_HEADER = "x-strata-arm"


class LiveExperiments(Protocol):
    """Experiments kept in the state store: an in-memory snapshot, refreshed off the hot path."""

    def for_alias(self, alias: str) -> Experiment | None: ...

    def aliases(self) -> list[str]: ...


class VariantResolver(Protocol):
    def resolve(self, name: str) -> str | None:
        """The target string a variant points at, or None when there is no such variant."""
        ...


@dataclass(frozen=True)
class Route:
    """One alias of strata.yaml: ``targets`` in order, or an ``experiment`` choosing them."""

    name: str
    targets: tuple[Target, ...] = ()
    policy: RoutePolicy = field(default_factory=RoutePolicy)
    experiment: Experiment | None = None


class RouteStage:
    def __init__(
        self,
        routes: Mapping[str, Route],
        variants: VariantResolver | None = None,
        default_policy: RoutePolicy | None = None,
        live: LiveExperiments | None = None,
    ) -> None:
        self._routes = dict(routes)
        self._variants = variants
        self._default = default_policy or RoutePolicy()
        self.live = live

    @property
    def aliases(self) -> list[str]:
        if self.live is None:
            return sorted(self._routes)
        return sorted({*self._routes, *self.live.aliases()})

    def is_alias(self, name: str) -> bool:
        return name in self._routes or (self.live is not None and name in self.live.aliases())

    def experiment(self, alias: str) -> Experiment | None:
        """The experiment routing ``alias``: the store's, else strata.yaml's."""
        found = self.live.for_alias(alias) if self.live is not None else None
        if found is not None:
            return found
        route = self._routes.get(alias)
        return route.experiment if route else None

    def plan(self, call: Call) -> Plan:
        route = self._routes.get(call.model)
        live = self.live.for_alias(call.model) if self.live is not None else None
        if live is not None:
            policy = route.policy if route is not None else self._default
            arm = forced_arm(call, live) or live.choose(unit_of(call, live))
            return Plan(
                call.model, arm.targets, policy, self.resolve, arm.name, experiment=live.name
            )
        if route is None:
            if not looks_like_target(call.model):
                # Only the aliases this caller may use: a scoped key learns nothing of others.
                known = [a for a in self.aliases if call.principal.may_use(a, True)]
                raise NotFound(
                    f"unknown model {call.model!r}; known aliases: {', '.join(known)} "
                    "(or name a target such as bedrock:<modelId> or local:<base>)",
                    param="model",
                )
            target = parse_target(call.model)
            return Plan(None, (target,), self._default, self.resolve)
        if route.experiment is None:
            return Plan(route.name, route.targets, route.policy, self.resolve)
        arm = forced_arm(call, route.experiment) or route.experiment.choose(
            unit_of(call, route.experiment)
        )
        return Plan(
            route.name,
            arm.targets,
            route.policy,
            self.resolve,
            variant=arm.name,
            experiment=route.experiment.name,
        )

    def resolve(self, target: Target) -> Target:
        seen = 0
        while target.kind == "variant":
            seen += 1
            found = self._variants.resolve(target.model) if self._variants else None
            if found is None or seen > MAX_VARIANT_DEPTH:
                raise NotFound(f"unknown variant {target.model!r}", param="model")
            target = parse_target(found)
        return target


def forced_arm(call: Call, experiment: Experiment) -> Arm | None:
    """The arm an admin named in ``x-strata-arm`` (replay answers every row from every arm)."""
    name = call.hints.arm
    if name is None:
        return None
    if not call.principal.admin:
        raise Forbidden(f"{ARM_HEADER}: only admin keys may choose an arm", param=ARM_HEADER)
    arm = experiment.arms.get(name)
    if arm is None:
        raise InvalidRequest(
            f"{ARM_HEADER}: {name!r} is not a variant of {experiment.alias!r}; variants are "
            f"{', '.join(sorted(experiment.arms))}",
            param=ARM_HEADER,
        )
    return arm


def unit_of(call: Call, experiment: Experiment) -> str:
    """What an experiment is sticky by: the API key, the caller's user id (else the key), or
    each request on its own."""
    if experiment.sticky_by == "request":
        return call.request_id
    key = f"key:{call.principal.tenant}/{call.principal.key_id}"
    if experiment.sticky_by == "user" and call.hints.user:
        return f"user:{call.principal.tenant}/{call.hints.user}"
    return key
