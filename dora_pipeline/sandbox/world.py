"""A seeded, simulated delivery history: the single truth every sandbox emulator serves.

The history is generated once over a fixed horizon, event by event in time order, so it never
depends on the moment it is observed. `World.view(as_of)` then shows what an API would know at
`as_of`: later events are hidden and failures resolved after `as_of` are still open. Moving
`as_of` forward therefore grows the history exactly as time would, which is how incremental runs
are tested.

Each service lives in one or more tools (`ServiceSpec.tools`); every emulator renders its own view
of the same history. The rules the emulators rely on (documented in the README):
- a hotfix change has a `hotfix/` feature name, a rollback change a `revert/` feature name and a
  title starting with `Revert `; no other change does;
- a failure resolves within `MAX_RESOLUTION` of the deployment that caused it, or never;
- where no tool records a failure's cause (GitLab incidents), the cause is the latest counted
  deployment of the service before detection, which is what the window link recovers;
- services in a tool that cannot see emptiness (GitLab, Multitudes, CI jobs) have no empty
  deployments, and only tools that know pull requests (Gearset, GitLab, GitClear) expose changes.
"""

from __future__ import annotations

import hashlib
import heapq
import random
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

DEFAULT_SEED = 42
DEFAULT_START = datetime(2026, 5, 1, tzinfo=UTC)
DEFAULT_AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
DEFAULT_HORIZON_DAYS = 400
MAX_RESOLUTION = timedelta(days=10)

PRODUCTION = "production"
SUCCEEDED, PARTIAL, FAILED = "succeeded", "partially_succeeded", "failed"

_WORDS = (
    "billing invoice ledger search cart checkout login session cache quota report export "
    "import audit webhook sync profile payment refund tax catalog pricing alert schedule"
).split()
_VERBS = "Add Fix Improve Refactor Remove Speed up Validate Document Harden Rework".split()


@dataclass(frozen=True)
class Environment:
    env_id: str
    name: str
    is_production: bool


GEARSET, GITLAB, MULTITUDES, GITCLEAR, CI_JOBS = "gearset", "gitlab", "multitudes", "gitclear", "gearset_automation"
CHANGE_TOOLS = {GEARSET, GITLAB, GITCLEAR}
CAUSE_RECORDING_TOOLS = {GEARSET}
EMPTINESS_BLIND_TOOLS = {GITLAB, MULTITUDES, CI_JOBS}


@dataclass(frozen=True)
class ServiceSpec:
    """What the simulation is asked to build for one service."""

    name: str
    team: str
    tools: tuple[str, ...] = (GEARSET,)
    environments: tuple[str, ...] = ("integration", "uat", PRODUCTION)
    tracks_failures: bool = True
    merges_per_day: float = 3.0
    release_probability: float = 0.75
    # share of successful, non-empty production deployments that cause a failure
    failure_rate: float = 0.13
    # How the tools name it: GitLab's full project path (the project's name is its last segment)
    # and the Multitudes/GitClear repository; both default to `acme/<name>`.
    gitlab_path: str | None = None
    repository: str | None = None


@dataclass
class Service:
    name: str
    team: str
    service_id: str
    environments: list[Environment]
    tracks_failures: bool
    tools: tuple[str, ...]
    project_id: int
    gitlab_path: str | None = None
    repository: str | None = None

    @property
    def exposes_changes(self) -> bool:
        return bool(CHANGE_TOOLS & set(self.tools))

    @property
    def project_path(self) -> str:
        """GitLab's full project path of the service."""
        return self.gitlab_path or f"acme/{self.name}"

    @property
    def project_name(self) -> str:
        """GitLab's project name: the last segment of its path."""
        return self.project_path.rsplit("/", 1)[-1]

    @property
    def repository_path(self) -> str:
        """The repository Multitudes and GitClear know the service by."""
        return self.repository or f"acme/{self.name}"

    @property
    def production(self) -> Environment:
        return next(e for e in self.environments if e.is_production)


@dataclass(frozen=True)
class Change:
    change_id: str
    service: str
    number: int
    title: str
    feature_name: str
    author: str
    first_commit_at: datetime | None
    opened_at: datetime
    merged_at: datetime
    kind: str  # feature | backlog | hotfix | revert

    @property
    def merge_sha(self) -> str:
        """The merge commit every tool that knows the change reports for it."""
        return hashlib.sha1(self.change_id.encode()).hexdigest()


@dataclass(frozen=True)
class Deployment:
    deployment_id: str
    service: str
    environment: str
    env_id: str
    is_production: bool
    deployed_at: datetime
    status: str
    change_ids: tuple[str, ...]
    item_count: int
    revision: str
    is_fix: bool = False
    is_rollback: bool = False
    is_test: bool = False

    @property
    def is_empty(self) -> bool:
        return self.item_count == 0


@dataclass(frozen=True)
class Failure:
    failure_id: str
    service: str
    title: str
    severity: int
    detected_at: datetime
    resolved_at: datetime | None
    caused_by: str
    fixed_by: str | None


@dataclass
class World:
    """The whole history up to the horizon, or a view of it at `as_of`."""

    seed: int
    start: datetime
    as_of: datetime
    services: list[Service]
    changes: dict[str, Change]
    deployments: list[Deployment]
    failures: list[Failure]

    def view(self, as_of: datetime) -> World:
        """What the tools know at `as_of`."""
        deployments = [d for d in self.deployments if d.deployed_at <= as_of]
        changes = {k: c for k, c in self.changes.items() if c.merged_at <= as_of}
        failures = []
        for f in self.failures:
            if f.detected_at > as_of:
                continue
            if f.resolved_at is not None and f.resolved_at > as_of:
                f = replace(f, resolved_at=None, fixed_by=None)
            failures.append(f)
        return World(self.seed, self.start, as_of, self.services, changes, deployments, failures)

    def service(self, name: str) -> Service:
        return next(s for s in self.services if s.name == name)

    def services_in(self, tool: str) -> list[Service]:
        return [s for s in self.services if tool in s.tools]


DEFAULT_SERVICES = (
    ServiceSpec("billing-api", "payments"),
    ServiceSpec("checkout-web", "payments", merges_per_day=4.0, release_probability=0.85),
    ServiceSpec("crm-core", "customer", environments=("integration", PRODUCTION)),
    ServiceSpec("partner-portal", "customer", tracks_failures=False, release_probability=0.5),
    ServiceSpec("payments-gateway", "payments", tools=(GITLAB, MULTITUDES), environments=("staging", PRODUCTION)),
    ServiceSpec(
        "mobile-backend", "mobile", tools=(GITLAB,), environments=("staging", PRODUCTION), release_probability=0.6
    ),
    ServiceSpec(
        "insights-api",
        "data",
        tools=(GITCLEAR, MULTITUDES),
        environments=("staging", PRODUCTION),
        tracks_failures=False,
    ),
    ServiceSpec(
        "sf-release-org",
        "customer",
        tools=(CI_JOBS,),
        environments=("validation", PRODUCTION),
        tracks_failures=False,
        merges_per_day=2.0,
    ),
)


def scaled_services(copies: int, services: tuple[ServiceSpec, ...] = DEFAULT_SERVICES) -> tuple[ServiceSpec, ...]:
    """`copies` organisations like `services` side by side, each service renamed `<name>-<n>`
    from the second copy on (so ids, paths and histories differ): the sandbox at scale."""
    if copies < 1:
        raise ValueError("copies must be at least 1")
    return _first_services(copies * len(services), services)


def _first_services(count: int, services: tuple[ServiceSpec, ...]) -> tuple[ServiceSpec, ...]:
    """The first `count` services of `services` repeated, the n-th repetition's renamed `<name>-<n>`."""
    scaled = []
    for i in range(count):
        n, spec = divmod(i, len(services))
        spec = services[spec]
        if n:
            suffix = f"-{n + 1}"
            spec = replace(
                spec,
                name=spec.name + suffix,
                team=spec.team + suffix,
                gitlab_path=spec.gitlab_path and spec.gitlab_path + suffix,
                repository=spec.repository and spec.repository + suffix,
            )
        scaled.append(spec)
    return tuple(scaled)


@dataclass(frozen=True)
class OrgShape:
    """The size of the simulated organisation; every field left unset keeps the demo's.

    The benchmarks need the target's shape (few services with long, busy histories), not only
    more copies of the demo: how many services there are sets Gearset's pipelines and GitLab's
    projects, merges a day the changes and MR requests, the failure rate the incidents.
    """

    services: int = len(DEFAULT_SERVICES)
    days: int | None = None  # history before the as-of moment; default: since DEFAULT_START
    merges_per_day: float | None = None  # mean merges a weekday, every service; default: each its own
    failure_rate: float | None = None  # share of production releases that cause a failure

    # the history a shaped world keeps after its as-of moment, for runs that move it forward
    FUTURE_DAYS = 30

    def __post_init__(self) -> None:
        problems = [
            f"{name} must be {rule}, not {value}"
            for name, value, rule, ok in (
                ("services", self.services, "at least 1", self.services >= 1),
                ("days", self.days, "at least 1", self.days is None or self.days >= 1),
                ("merges_per_day", self.merges_per_day, "at least 0", (self.merges_per_day or 0) >= 0),
                ("failure_rate", self.failure_rate, "between 0 and 1", 0 <= (self.failure_rate or 0) <= 1),
            )
            if not ok
        ]
        if problems:
            raise ValueError("organisation shape: " + "; ".join(problems))

    def service_specs(self, templates: tuple[ServiceSpec, ...] = DEFAULT_SERVICES) -> tuple[ServiceSpec, ...]:
        changes = {
            name: value
            for name, value in (("merges_per_day", self.merges_per_day), ("failure_rate", self.failure_rate))
            if value is not None
        }
        return tuple(replace(spec, **changes) for spec in _first_services(self.services, templates))

    def history(self, as_of: datetime) -> tuple[datetime, int]:
        """The simulation's first day and its horizon in days, for a sandbox observing `as_of`."""
        if self.days is None:
            return DEFAULT_START, DEFAULT_HORIZON_DAYS
        first_day = as_of.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=self.days)
        return first_day, self.days + self.FUTURE_DAYS


def build_world(
    seed: int = DEFAULT_SEED,
    start: datetime = DEFAULT_START,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    services: tuple[ServiceSpec, ...] = DEFAULT_SERVICES,
) -> World:
    """Generate the full history; each service has its own random stream."""
    built = [_ServiceHistory(seed, i, spec, start, horizon_days).run() for i, spec in enumerate(services)]
    end = start + timedelta(days=horizon_days)
    world = World(seed, start, end, [], {}, [], [])
    for service, changes, deployments, failures in built:
        world.services.append(service)
        world.changes.update({c.change_id: c for c in changes})
        world.deployments.extend(deployments)
        world.failures.extend(failures)
    world.deployments.sort(key=lambda d: (d.deployed_at, d.deployment_id))
    world.failures.sort(key=lambda f: (f.detected_at, f.failure_id))
    return world


class _ServiceHistory:
    """Event-driven simulation of one service's pipeline.

    Changes merge into the first environment, are promoted one environment at a time on a
    schedule, and reach production on release days. Production deployments may fail (and are
    retried), be empty, or cause failures, which are remedied by a hotfix or a rollback
    deployment, resolved without a deployment, or left open.
    """

    def __init__(self, seed: int, index: int, spec: ServiceSpec, start: datetime, days: int):
        self.rng = random.Random(f"{seed}:{index}:{spec.name}")
        self.spec = spec
        self.start = start
        self.end = start + timedelta(days=days)
        self.service = Service(
            name=spec.name,
            team=spec.team,
            service_id=self._uuid(),
            environments=[Environment(self._uuid(), name, name == PRODUCTION) for name in spec.environments],
            tracks_failures=spec.tracks_failures,
            tools=spec.tools,
            project_id=1000 + index,
            gitlab_path=spec.gitlab_path,
            repository=spec.repository,
        )
        self.empty_releases = not (EMPTINESS_BLIND_TOOLS & set(spec.tools))
        self.changes: list[Change] = []
        self.change_index: dict[str, Change] = {}
        self.deployments: list[Deployment] = []
        self.failures: list[Failure] = []
        # pending[i]: changes ready to be deployed to environment i (merged, or live in i-1)
        self.pending: list[list[str]] = [[] for _ in spec.environments]
        self.events: list[tuple[datetime, int, str, tuple]] = []
        self._seq = 0
        self._pr_number = 100

    # -- helpers -------------------------------------------------------------------------------
    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _sha(self) -> str:
        return f"{self.rng.getrandbits(160):040x}"

    def _at(self, when: datetime, kind: str, *payload: object) -> None:
        self._seq += 1
        heapq.heappush(self.events, (when, self._seq, kind, payload))

    def _secs(self, lo: float, hi: float) -> timedelta:
        return timedelta(seconds=round(self.rng.uniform(lo, hi)))

    def _new_change(self, merged_at: datetime, kind: str, title: str | None = None) -> Change:
        self._pr_number += 1
        word = self.rng.choice(_WORDS)
        title = title or f"{self.rng.choice(_VERBS)} {word} {self.rng.choice(_WORDS)}"
        prefix = {"hotfix": "hotfix", "revert": "revert"}.get(kind, "feature")
        opened = merged_at - self._secs(1800, 3 * 86400)
        first_commit = opened - self._secs(600, 5 * 86400)
        if kind in ("feature", "backlog") and self.rng.random() < 0.06:
            first_commit = None
        change = Change(
            change_id=f"{self.spec.name}#{self._pr_number}",
            service=self.spec.name,
            number=self._pr_number,
            title=title,
            feature_name=f"{prefix}/{word}-{self._pr_number}",
            author=self.rng.choice(("ana", "bo", "chen", "dara", "eli", "fay")),
            first_commit_at=first_commit,
            opened_at=opened,
            merged_at=merged_at,
            kind=kind,
        )
        self.changes.append(change)
        self.change_index[change.change_id] = change
        return change

    # -- simulation ----------------------------------------------------------------------------
    def run(self) -> tuple[Service, list[Change], list[Deployment], list[Failure]]:
        # A backlog merged before the history starts: the first production deployment ships it
        # all at once (the `first_deployment_backlog` case of the definitions).
        for _ in range(self.rng.randint(8, 20)):
            merged = self.start - self._secs(5 * 86400, 200 * 86400)
            self.pending[0].append(self._new_change(merged, "backlog").change_id)
        day = self.start
        while day < self.end:
            self._plan_day(day)
            day += timedelta(days=1)
        while self.events:
            when, _, kind, payload = heapq.heappop(self.events)
            if when >= self.end:
                break
            getattr(self, f"_on_{kind}")(when, *payload)
        if not CAUSE_RECORDING_TOOLS & set(self.spec.tools):
            self._attribute_causes_by_window()
        return self.service, self.changes, self.deployments, self.failures

    def _attribute_causes_by_window(self) -> None:
        """Without a tool that records causes, the cause is the latest production release before
        detection (it is then also the deployment a Multitudes `is_failure` tag marks)."""
        counted = sorted(
            (
                d
                for d in self.deployments
                if d.is_production and d.status != FAILED and not d.is_empty and not d.is_test
            ),
            key=lambda d: (d.deployed_at, d.deployment_id),
        )
        for i, failure in enumerate(self.failures):
            cause = [d for d in counted if d.deployed_at <= failure.detected_at][-1]
            self.failures[i] = replace(failure, caused_by=cause.deployment_id)

    def _plan_day(self, day: datetime) -> None:
        weekday = day.weekday() < 5
        merges = self.rng.random() * 2 * self.spec.merges_per_day * (1.0 if weekday else 0.2)
        for _ in range(int(merges)):
            self._at(day + self._secs(8 * 3600, 19 * 3600), "merge")
        last = len(self.spec.environments) - 1
        for stage in range(last):
            hours = (10, 13, 16, 19) if stage == 0 else (20,)
            for h in hours:
                if stage == 0 or weekday:
                    self._at(day + timedelta(hours=h) + self._secs(0, 900), "promote", stage)
        if weekday and self.rng.random() < self.spec.release_probability:
            self._at(day + timedelta(hours=11) + self._secs(0, 5 * 3600), "promote", last)
        if MULTITUDES in self.spec.tools and self.rng.random() < 0.08:
            self._at(day + self._secs(6 * 3600, 22 * 3600), "test_deploy")

    def _on_test_deploy(self, when: datetime) -> None:
        """A pipeline test posted to Multitudes with `isTest` (counted nowhere)."""
        deployment = self._deploy(when, self.service.production, (), SUCCEEDED)
        self.deployments[-1] = replace(deployment, is_test=True, item_count=1)

    def _on_merge(self, when: datetime) -> None:
        self.pending[0].append(self._new_change(when, "feature").change_id)

    def _on_promote(self, when: datetime, stage: int) -> None:
        env = self.service.environments[stage]
        change_ids = tuple(self.pending[stage])
        if not change_ids and not (env.is_production and self.empty_releases and self.rng.random() < 0.12):
            return
        roll = self.rng.random()
        if env.is_production and change_ids:
            status = FAILED if roll < 0.08 else PARTIAL if roll < 0.13 else SUCCEEDED
        else:
            status = FAILED if roll < 0.04 else SUCCEEDED
        deployment = self._deploy(when, env, change_ids, status)
        if status == FAILED:
            if env.is_production:  # retried the same day with the same content
                self._at(when + self._secs(1800, 3 * 3600), "promote", stage)
            return
        self.pending[stage] = []
        if stage + 1 < len(self.pending):
            self.pending[stage + 1].extend(change_ids)
        if env.is_production:
            self._maybe_fail(deployment)

    def _deploy(
        self, when: datetime, env: Environment, change_ids: tuple[str, ...], status: str, kind: str = ""
    ) -> Deployment:
        items = sum(self.rng.randint(1, 12) for _ in change_ids)
        deployment = Deployment(
            deployment_id=self._uuid(),
            service=self.spec.name,
            environment=env.name,
            env_id=env.env_id,
            is_production=env.is_production,
            deployed_at=when,
            status=status,
            change_ids=change_ids,
            item_count=items,
            revision=self._sha(),
            is_fix=kind == "hotfix",
            is_rollback=kind == "revert",
        )
        self.deployments.append(deployment)
        return deployment

    def _maybe_fail(self, deployment: Deployment) -> None:
        if not self.spec.tracks_failures or deployment.is_empty or self.rng.random() > self.spec.failure_rate:
            return
        for _ in range(1 if self.rng.random() < 0.85 else 2):
            detected = deployment.deployed_at + self._secs(900, 2 * 86400)
            severity = self.rng.choices((1, 2, 3, 4), weights=(15, 30, 35, 20))[0]
            failure_id = self._uuid()
            title = f"{self.rng.choice(_WORDS).capitalize()} broken after release"
            outcome = self.rng.random()
            if outcome < 0.15:  # still open at the horizon
                self._record_failure(failure_id, title, severity, detected, None, deployment, None)
            elif outcome < 0.45:  # resolved without a deployment (config change, data fix)
                resolved = detected + self._secs(3600, 4 * 86400)
                self._record_failure(failure_id, title, severity, detected, resolved, deployment, None)
            else:
                kind = "hotfix" if self.rng.random() < 0.7 else "revert"
                remedy_at = detected + self._secs(3600, 3 * 86400)
                self._at(remedy_at, "remedy", kind, failure_id, title, severity, detected, deployment)

    def _on_remedy(
        self,
        when: datetime,
        kind: str,
        failure_id: str,
        title: str,
        severity: int,
        detected: datetime,
        caused_by: Deployment,
    ) -> None:
        if kind == "revert":
            reverted = self.change_index[caused_by.change_ids[0]]
            change_title = f'Revert "{reverted.title}"'
        else:
            change_title = f"Hotfix: {title.lower()}"
        change = self._new_change(when - self._secs(600, 5400), kind, change_title)
        fix = self._deploy(when, self.service.production, (change.change_id,), SUCCEEDED, kind)
        resolved = when + self._secs(300, 7200)
        self._record_failure(failure_id, title, severity, detected, resolved, caused_by, fix)
        self._maybe_fail(fix)

    def _record_failure(
        self,
        failure_id: str,
        title: str,
        severity: int,
        detected: datetime,
        resolved: datetime | None,
        caused_by: Deployment,
        fixed_by: Deployment | None,
    ) -> None:
        assert resolved is None or resolved - caused_by.deployed_at <= MAX_RESOLUTION
        self.failures.append(
            Failure(
                failure_id,
                self.spec.name,
                title,
                severity,
                detected,
                resolved,
                caused_by.deployment_id,
                fixed_by.deployment_id if fixed_by else None,
            )
        )
