"""The guarded rebuild cycle: check, plan, snapshot, replace, re-protect, verify, record.

Each phase is a small method with a journal entry, so `--resume` continues at the phase that did
not finish. The orchestrator only talks to its adapters (engine, Lightsail, host, HTTP, clock):
the logic here is plain Python and runs in tests against the real engine and local servers.

Safety rules carried here rather than by a person:
- the protect bit goes off only for the `up` that replaces the instance, and every path out of
  `run()` (success, failure, stop) ends with the instance protected, or says loudly that it could
  not confirm it (exit code UNSAFE);
- the pre-rebuild snapshot's name is journaled before it is requested, so a resumed run never
  takes a second one;
- the plan guard must say "rebuild" before anything is changed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from operations import exitcodes, guard, postmortem
from operations.errors import (
    OpsError,
    StackLocked,
    StoppedByCheck,
    TransientError,
    UsageError,
)
from operations.host_checks import DataCheck, DataState
from operations.journal import Journal, Phase, RunState, Status, utc_now
from operations.ports import Engine, HttpProbe, Lightsail, PreviewResult, SnapshotInfo
from operations.progress import Progress
from operations.retry import Backoff, Clock, poll, retry
from operations.snapshot_names import post_install_snapshot_name, pre_rebuild_snapshot_name

# ---------------------------------------------------------------- what the driver needs


class Host(Protocol):
    """The instance as seen over SSH (operations/host.py wires the real one)."""

    def trust_instance(self, instance_name: str) -> None: ...  # pin host keys from Lightsail
    def wait_reachable(self) -> None: ...
    def data_check(self) -> DataCheck: ...
    def wait_cloud_init_done(self) -> str: ...  # raises OpsError unless cloud-init is done
    def require_modules_active(self, aliases: Sequence[str]) -> str: ...  # raises when not


@dataclass(frozen=True)
class Target:
    """What is rebuilt, from the stack's configuration."""

    stack: str
    instance_name: str
    static_ip_name: str
    hostname: str
    module_aliases: tuple[str, ...]
    availability_zone: str = "us-east-1a"
    bundle_id: str = "micro_3_0"

    @property
    def url(self) -> str:
        return f"https://{self.hostname}/"


@dataclass(frozen=True)
class Timing:
    """Deadlines and pauses; tests and the benchmark shrink them."""

    snapshot_deadline: float = 3600
    up_attempts: int = 3
    up_retry_pause: float = 60
    site_deadline: float = 300
    data_check_max_age: float = 120  # older than this, the data is checked again before destroy
    poll_backoff: Backoff = Backoff(first=5, factor=1.5, maximum=30)


@dataclass(frozen=True)
class Options:
    dry_run: bool = False
    backup_taken: bool = False
    trigger: str = ""
    rollback_on_failure: bool = False
    postmortem_dir: Path = Path("docs/ops/postmortems")
    # Type token -> guard role; None means the guard's own table of the real stack's types.
    guard_roles: Mapping[str, guard.Role] | None = None


@dataclass
class Adapters:
    engine: Engine
    lightsail: Lightsail
    host: Host
    http: HttpProbe
    progress: Progress
    clock: Clock = field(default_factory=Clock)
    wall_clock: Callable[[], datetime] = utc_now
    confirm: Callable[[str], bool] = lambda question: True
    # Saves the instance's state entry before the replacement (restore.py --state-from).
    save_instance_state: Callable[[Path], object] | None = None
    # Restores from the named snapshot and returns an account of it (--rollback-on-failure).
    rollback: Callable[[str], str] | None = None
    # A digest of the program and the stack's configuration (protect excluded): a change since
    # the plan makes the driver judge the plan again before it destroys anything.
    fingerprint: Callable[[], str] | None = None


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    state: RunState
    message: str
    postmortem: Path | None = None


class SnapshotCancelled(Exception):
    """The run stopped before the pre-rebuild snapshot finished; it goes on in Lightsail."""


# ---------------------------------------------------------------- the cycle


class Rebuild:
    """One run of the rebuild cycle, bound to its journal."""

    def __init__(self, target: Target, adapters: Adapters, journal: Journal, options: Options):
        self.target = target
        self.a = adapters
        self.journal = journal
        self.options = options
        self.timing = Timing()
        self._cancel = threading.Event()
        self._protect_touched = False
        self._planned_here = False  # the guard judged the plan in this process
        self._lock_seen = False

    # ------------------------------------------------------------ entry point

    def run(self) -> Outcome:
        say = self.a.progress.say
        journal = self.journal
        journal.state = RunState.RUNNING
        journal.facts.setdefault("trigger", self.options.trigger)
        if self.options.dry_run:
            journal.facts["dry_run"] = True  # never resumed as a real rebuild
        journal.save()
        resumed = journal.first_unfinished()
        if resumed is not None and resumed is not Phase.PREFLIGHT:
            say(f"resuming run {journal.run_id} at phase '{resumed.value}'")
        try:
            self._checks_plan_and_snapshot()
            if self.options.dry_run:
                return self._dry_run_outcome()
            self._confirm_destroy()
            self._phase(Phase.REPLACE, self._replace)
            self._phase(Phase.REPROTECT, self._reprotect)
            self._phase(Phase.VERIFY, self._verify)
            self._phase(Phase.POST_INSTALL, self._post_install)
        except StoppedByCheck as stop:
            self._cancel.set()
            journal.state = RunState.STOPPED
            journal.note(f"stopped: {stop.message}")
            if not self._replace_ever_started():
                self._make_sure_protected(after_failure=False)
                return Outcome(stop.exit_code, RunState.STOPPED, stop.render())
            # The replacement began in an earlier process: the bit must be in the state too.
            protected = self._make_sure_protected(after_failure=True)
            journal.facts["protected_after_stop"] = protected
            journal.save()
            if protected:
                line = f"instance {self.target.instance_name}: protected (confirmed in state)"
                return Outcome(stop.exit_code, RunState.STOPPED, stop.render() + "\n" + line)
            line = (
                f"instance {self.target.instance_name}: PROTECTION NOT CONFIRMED - run "
                f"`pulumi config set --stack {self.target.stack} freescout:protect true` and "
                f"`pulumi up --stack {self.target.stack} --target <instance URN>` now"
            )
            return Outcome(exitcodes.UNSAFE, RunState.STOPPED, stop.render() + "\n" + line)
        except OpsError as error:
            self._cancel.set()
            return self._failed(error)
        except KeyboardInterrupt:
            self._cancel.set()
            return self._failed(OpsError("interrupted by the operator (Ctrl-C)"))
        except Exception as error:  # noqa: BLE001 - any bug still ends with the instance protected
            self._cancel.set()
            wrapped = OpsError(f"unexpected error: {type(error).__name__}: {error}")
            wrapped.__cause__ = error
            return self._failed(wrapped)
        journal.state = RunState.SUCCEEDED
        path = self._write_postmortem("succeeded")
        journal.note("run succeeded")
        say(f"rebuild finished; postmortem at {path}")
        return Outcome(exitcodes.OK, RunState.SUCCEEDED, "rebuild succeeded", path)

    # ------------------------------------------------------------ phases 1-3 (overlapped)

    def _checks_plan_and_snapshot(self) -> None:
        """Pre-flight, plan and the pre-rebuild snapshot, the snapshot waited for in parallel."""
        needs_snapshot = (
            not self.options.dry_run and self.journal.status(Phase.SNAPSHOT) is not Status.DONE
        )
        if self.journal.status(Phase.PREFLIGHT) is not Status.DONE:
            self.journal.start(Phase.PREFLIGHT)
            try:
                self._instance_exists()
            except OpsError as error:
                self.journal.fail(Phase.PREFLIGHT, error.message)
                raise
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="snapshot") as pool:
            snapshot: Future[None] | None = None
            if needs_snapshot:
                # The checks and the preview only read, so the snapshot need not wait for them.
                snapshot = pool.submit(self._snapshot_phase)
            try:
                if self.journal.status(Phase.PREFLIGHT) is not Status.DONE:
                    self._phase(Phase.PREFLIGHT, self._data_check, started=True)
                self._phase(Phase.PLAN, self._plan)
                if snapshot is not None:
                    snapshot.result()
            except BaseException:
                # Ctrl-C or a failed check: stop waiting for the snapshot (it goes on in
                # Lightsail) instead of holding the operator until it is available.
                self._cancel.set()
                raise

    def _instance_exists(self) -> None:
        instance = self.a.lightsail.get_instance(self.target.instance_name)
        if instance is None:
            raise StoppedByCheck(
                f"instance {self.target.instance_name} does not exist in Lightsail",
                hint="nothing to rebuild: `pulumi up` creates it, or "
                "`python scripts/restore.py` restores it from a snapshot",
            )
        static_ip = self.a.lightsail.get_static_ip(self.target.static_ip_name)
        if static_ip is None:
            raise StoppedByCheck(
                f"static IP {self.target.static_ip_name} does not exist",
                hint="the DNS record points at it: investigate before any rebuild",
            )
        self.journal.facts["static_ip"] = static_ip.ip_address
        self.journal.facts["old_instance_created_at"] = instance.created_at
        self.a.progress.say(
            f"pre-flight: instance {instance.name} is {instance.state}; "
            f"static IP {static_ip.name} = {static_ip.ip_address}"
        )

    def _data_check(self, situation: str | None = None) -> None:
        host = self.a.host
        host.trust_instance(self.target.instance_name)
        host.wait_reachable()
        result = host.data_check()
        self.journal.facts["data_checked_at"] = self.a.wall_clock().isoformat()
        self.journal.facts["data_check"] = {
            "state": result.state.value,
            "conversations": result.conversations,
            "users": result.users,
        }
        self.a.progress.say(f"pre-flight: data check: {result.describe()}")
        if not result.blocks_destroy:
            return
        if self.options.backup_taken:
            self.a.progress.say("pre-flight: --backup-taken given: going on despite the data check")
            return
        what = (
            "the help desk holds real data"
            if result.state is DataState.HAS_DATA
            else f"the data check could not tell whether there is data ({result.detail})"
        )
        if situation:
            raise StoppedByCheck(
                f"{situation}, and {what}",
                hint="if it is this run's half-built replacement, resume with --backup-taken "
                f"(snapshot {self.journal.facts.get('snapshot_name')} holds the old data); "
                "otherwise start a new run, which checks and snapshots this instance",
            )
        raise StoppedByCheck(
            f"{what}: destroying the instance destroys its database",
            hint="dump the database first (freescout-backup-restore runbook), then rerun with "
            "--backup-taken",
        )

    def _plan(self, *, replacement_underway: bool = False) -> None:
        """Preview with protect off, judged by the guard; anything but "rebuild" stops.

        With `replacement_underway` (a resumed run whose replacement already began) the rest of
        a replacement may also judge "safe"; forbidden still stops.
        """
        engine = self.a.engine
        self.a.progress.say("plan: preview with the instance unprotected")
        self._protect_touched = True
        engine.set_protect(False)
        try:
            preview = engine.preview()
        finally:
            # Never leave the config unprotected between phases: a crash here must not leave a
            # stack whose next `pulumi up` would replace the instance.
            engine.set_protect(True)
        report = self._judge(preview)
        counts = dict(preview.change_summary or report.counts)
        self.journal.facts["plan_counts"] = counts
        self.journal.facts["verdict"] = report.verdict.name.lower()
        self.a.progress.say(f"plan: verdict {report.verdict.name.lower()}; changes {counts}")
        if report.verdict is guard.Verdict.FORBIDDEN:
            raise StoppedByCheck(
                "the plan would delete or replace something that must survive:\n"
                + guard.render(report, "text"),
                hint="fix the program or the configuration; nothing was changed",
            )
        acceptable = {guard.Verdict.REBUILD}
        if replacement_underway:
            acceptable.add(guard.Verdict.SAFE)
        if report.verdict not in acceptable:
            raise StoppedByCheck(
                "the plan does not replace the instance, so no rebuild is needed",
                hint="apply the change with a plain `pulumi up`",
            )
        if preview.error:
            raise StoppedByCheck(
                f"the preview with protect off still failed: {preview.error}",
                hint="run `pulumi preview` to see the engine's error; nothing was changed",
            )
        self._planned_here = True
        self.journal.facts["fingerprint"] = self._fingerprint()
        self.journal.save()

    def _judge(self, preview: PreviewResult) -> guard.Report:
        return guard.judge(
            preview.steps,
            errors=[preview.error] if preview.error else [],
            roles=self.options.guard_roles or guard.KNOWN_TYPES,
        )

    def _fingerprint(self) -> str | None:
        return self.a.fingerprint() if self.a.fingerprint else None

    def _check_again_before_destroy(self) -> None:
        """Right before the unprotected `up`: is the plan still the one judged, and is the
        instance that would be destroyed still empty?

        - The instance this run found still stands: the data check runs again when the last one
          is older than Timing.data_check_max_age (the snapshot wait and the prompt take minutes
          and tickets may arrive meanwhile); on a resumed run, or when the program or the stack
          file changed since the plan, the plan is judged again.
        - It is gone, or the instance standing is the one this run created: the replacement is
          underway; the rest of it may judge "safe", never "forbidden".
        - Another instance stands (restored since, or made by a run killed before it could note
          it): its data is checked first, and only an empty one goes on.
        """
        instance = self.a.lightsail.get_instance(self.target.instance_name)
        facts = self.journal.facts
        created = instance.created_at if instance else None
        plan_is_current = self._planned_here and self._fingerprint() == facts.get("fingerprint")
        if instance is not None and created == facts.get("old_instance_created_at"):
            if not plan_is_current or self._data_check_age() > self.timing.data_check_max_age:
                self.a.progress.say("replace: checking the data again right before the destroy")
                self._data_check()
            if not plan_is_current:
                self.a.progress.say("replace: judging the plan again (resumed or changed)")
                self._plan()
            return
        if instance is not None and created != facts.get("new_instance_created_at"):
            self.a.progress.say(
                "replace: the instance standing is not the one this run found: checking its data"
            )
            self._data_check(
                situation=(
                    "the instance standing is not the one this run found (restored since, or "
                    "the half-built replacement of a run killed mid-way)"
                ),
            )
        if not plan_is_current:
            self.a.progress.say("replace: judging the rest of the replacement")
            self._plan(replacement_underway=True)

    def _data_check_age(self) -> float:
        checked = self.journal.facts.get("data_checked_at")
        if not checked:
            return float("inf")
        then = datetime.fromisoformat(str(checked))
        return (self.a.wall_clock() - then).total_seconds()

    def _note_new_instance(self) -> None:
        """Remember the instance this run's `up` created, so a resume can tell it apart."""
        try:
            instance = self.a.lightsail.get_instance(self.target.instance_name)
        except Exception as error:  # noqa: BLE001 - only a note for a later resume
            self.journal.note(f"replace: could not read the new instance: {error}")
            return
        if (
            instance
            and instance.created_at
            and (instance.created_at != self.journal.facts.get("old_instance_created_at"))
        ):
            self.journal.facts["new_instance_created_at"] = instance.created_at
            self.journal.save()

    def _snapshot_phase(self) -> None:
        self._phase(Phase.SNAPSHOT, self._snapshot)

    def _snapshot(self) -> SnapshotInfo:
        name = self.journal.facts.get("snapshot_name")
        if not name:
            name = pre_rebuild_snapshot_name(self.a.wall_clock(), self.target.instance_name)
            # Journaled before the request: a resumed run reuses this name, never a second one.
            self.journal.facts["snapshot_name"] = name
            self.journal.save()
        return self._take_snapshot(name, "pre-rebuild snapshot")

    def _take_snapshot(self, name: str, label: str) -> SnapshotInfo:
        lightsail = self.a.lightsail
        if lightsail.get_snapshot(name) is None:
            self.a.progress.say(f"{label}: creating {name}")
            lightsail.create_instance_snapshot(self.target.instance_name, name)
        else:
            self.a.progress.say(f"{label}: {name} already requested; waiting for it")

        def on_progress(info: SnapshotInfo, elapsed: float) -> None:
            if self._cancel.is_set():
                raise SnapshotCancelled(name)
            self.a.progress.waiting(f"{label} {name}", elapsed, info.progress or info.state)

        try:
            info = lightsail.wait_snapshot_available(
                name, deadline_seconds=self.timing.snapshot_deadline, on_progress=on_progress
            )
        except SnapshotCancelled:
            self.a.progress.say(f"{label}: stopped waiting; {name} goes on in Lightsail")
            raise
        self.a.progress.say(f"{label}: {name} is available")
        return info

    # ------------------------------------------------------------ phases 4-7

    def _confirm_destroy(self) -> None:
        if self.journal.status(Phase.REPLACE) is Status.DONE:
            return
        question = (
            f"About to DESTROY and recreate instance {self.target.instance_name} "
            f"(snapshot {self.journal.facts.get('snapshot_name')} is available). Go on?"
        )
        if not self.a.confirm(question):
            raise StoppedByCheck(
                "the operator declined the replacement; nothing was changed",
                hint=f"resume later with: python scripts/rebuild.py --resume {self.journal.run_id}",
            )

    def _replace(self) -> None:
        engine = self.a.engine
        self._check_again_before_destroy()
        self._save_instance_state()
        self._protect_touched = True
        engine.set_protect(False)
        self.a.progress.say(f"replace: `up` with {self.target.instance_name} unprotected")

        def on_retry(attempt: int, error: BaseException, pause: float) -> None:
            self.journal.note(f"replace: transient failure (attempt {attempt}): {error}")
            self.a.progress.say(
                f"replace: transient SSH failure during provisioning; retrying in {pause:.0f}s"
            )

        pause = self.timing.up_retry_pause
        try:
            result = retry(
                lambda: engine.up(),
                is_transient=lambda error: isinstance(error, TransientError),
                attempts=self.timing.up_attempts,
                backoff=Backoff(first=pause, factor=1.0, maximum=pause),
                clock=self.a.clock,
                on_retry=on_retry,
            )
        finally:
            self._note_new_instance()
        self.journal.facts["replace_counts"] = dict(result.change_summary)

    def _save_instance_state(self) -> None:
        """Keep a copy of the instance's state entry beside the journal, for a restore."""
        if self.a.save_instance_state is None or self.journal.facts.get("instance_state"):
            return
        path = self.journal.path.parent / "instance-state.json"
        try:
            self.a.save_instance_state(path)
        except Exception as error:  # noqa: BLE001 - the snapshot is the backup; this is a help
            self.journal.note(f"replace: could not save the instance's state entry: {error}")
            self.a.progress.say("replace: warning: the instance's state entry was not saved")
            return
        self.journal.facts["instance_state"] = str(path)
        self.journal.save()

    def _reprotect(self) -> None:
        engine = self.a.engine
        engine.set_protect(True)
        self.a.progress.say("re-protect: `up` to write the protect bit into the state")
        engine.up()
        if not engine.instance_protected():
            raise OpsError(
                "the re-protect `up` finished but the state does not show the instance protected",
                hint="run `pulumi stack export` and check the instance's protect field",
            )
        preview = engine.preview()
        changes = [
            getattr(step, "urn", "?")
            for step in preview.steps
            if getattr(step, "op", "same") not in ("same", "read")
        ]
        if preview.error or changes:
            raise OpsError(
                "the instance is protected again, but the follow-up preview is not clean: "
                + (preview.error or ", ".join(changes)),
                hint="run `pulumi preview --diff` to see what differs",
            )
        self.a.progress.say("re-protect: protect bit confirmed; preview shows no changes")

    def _verify(self) -> None:
        host = self.a.host
        say = self.a.progress.say
        host.trust_instance(self.target.instance_name)  # a rebuilt host has new host keys
        host.wait_reachable()
        say(f"verify: {host.wait_cloud_init_done()}")
        status = self._site_status()
        say(f"verify: {self.target.url} answered {status}")
        say(f"verify: modules: {host.require_modules_active(self.target.module_aliases)}")
        self.journal.facts["modules_active_at"] = self.a.wall_clock().isoformat()

    def _site_status(self) -> int:
        last: list[int] = []

        def probe() -> int | None:
            try:
                status = self.a.http.status(self.target.url)
            except OpsError as error:
                last.append(-1)
                self.journal.note(f"verify: site not answering yet: {error.message}")
                return None
            last.append(status)
            return status if status in (200, 302) else None

        try:
            return poll(
                probe,
                what=f"{self.target.url} to answer 200 or 302",
                deadline_seconds=self.timing.site_deadline,
                backoff=self.timing.poll_backoff,
                clock=self.a.clock,
                on_wait=lambda elapsed, pause: self.a.progress.waiting("the site", elapsed),
            )
        except OpsError as error:
            raise OpsError(
                f"{self.target.url} did not answer 200 or 302 (last status: {last[-1:]})",
                hint="check the web server on the host",
            ) from error

    def _post_install(self) -> None:
        name = self.journal.facts.get("post_install_snapshot")
        if not name:
            name = post_install_snapshot_name(self.a.wall_clock(), self.target.instance_name)
            self.journal.facts["post_install_snapshot"] = name
            self.journal.save()
        self._take_snapshot(name, "post-install snapshot")

    # ------------------------------------------------------------ bookkeeping

    def _phase(self, phase: Phase, action: Callable[[], object], started: bool = False) -> object:
        if self.journal.status(phase) is Status.DONE:
            return None
        if not started:
            self.journal.start(phase)
        try:
            result = action()
        except SnapshotCancelled:
            self.journal.fail(phase, "stopped before it finished; it goes on in Lightsail")
            raise
        except OpsError as error:
            self.journal.fail(phase, error.message)
            raise
        except Exception as error:
            self.journal.fail(phase, f"{type(error).__name__}: {error}")
            raise
        self.journal.finish(phase)
        return result

    def _dry_run_outcome(self) -> Outcome:
        t = self.target
        lines = [
            "dry run: pre-flight and plan passed; nothing was changed. The real run would:",
            f"  3. snapshot {t.instance_name} as "
            f"{pre_rebuild_snapshot_name(self.a.wall_clock(), t.instance_name)} and wait for it",
            f"  4. set freescout:protect=false and `up` (replaces {t.instance_name}, "
            f"changes {self.journal.facts.get('plan_counts')})",
            "  5. set freescout:protect=true, `up`, confirm the protect bit, preview: no changes",
            f"  6. verify cloud-init done, {t.url} answers 200/302, modules active: "
            f"{', '.join(t.module_aliases) or 'none configured'}",
            "  7. take the post-install snapshot and write the postmortem",
        ]
        self.journal.state = RunState.DRY_RUN
        self.journal.note("dry run finished")
        return Outcome(exitcodes.OK, RunState.DRY_RUN, "\n".join(lines))

    def _make_sure_protected(self, *, after_failure: bool) -> bool | None:
        """End every run with protect on in config and, after a change, in the state.

        The bit is written by an `up`. A full `up` only when the guard finds nothing forbidden in
        what it would apply (an unguarded `up` after a failure must not apply a change the plan
        would have refused); else, or when it fails, an `up` targeted at the instance alone.
        """
        engine = self.a.engine
        if not self._protect_touched and not self._replace_ever_started():
            return None
        try:
            engine.set_protect(True)
        except Exception as error:  # noqa: BLE001 - report, then fall through to the check
            self.journal.note(f"protect: could not set config: {error}")
        if not after_failure or not self._replace_ever_started():
            return None
        if self._state_protected():
            return True
        if self._full_up_is_safe():
            self.a.progress.say("protect: writing the protect bit with `up`")
            try:
                engine.up()
            except Exception as error:  # noqa: BLE001 - fall back to a targeted up
                self._lock_seen |= isinstance(error, StackLocked)
                self.journal.note(f"protect: full `up` failed: {error}")
        if not self._state_protected():
            target = engine.instance_urn()
            if target:
                self.a.progress.say("protect: `up` targeted at the instance alone")
                try:
                    engine.up(targets=[target])
                except Exception as targeted_error:  # noqa: BLE001
                    self._lock_seen |= isinstance(targeted_error, StackLocked)
                    self.journal.note(f"protect: targeted `up` failed: {targeted_error}")
        return self._state_protected()

    def _replace_ever_started(self) -> bool:
        return int(self.journal.phases.get(Phase.REPLACE.value, {}).get("attempts", 0)) > 0

    def _full_up_is_safe(self) -> bool:
        """Judge what a full `up` would apply now (protect on); forbidden means targeted only."""
        try:
            preview = self.a.engine.preview()
        except Exception as error:  # noqa: BLE001 - no judgement, no full up
            self._lock_seen |= isinstance(error, StackLocked)
            self.journal.note(f"protect: preview before the protecting `up` failed: {error}")
            return False
        report = self._judge(preview)
        if report.verdict is guard.Verdict.FORBIDDEN:
            self.journal.note(
                "protect: the full `up` would apply a forbidden change; targeted only"
            )
            return False
        return True

    def _state_protected(self) -> bool:
        try:
            return bool(self.a.engine.instance_protected())
        except Exception as error:  # noqa: BLE001 - unknown counts as not protected
            self.journal.note(f"protect: could not read the state: {error}")
            return False

    def _failed(self, error: OpsError) -> Outcome:
        journal = self.journal
        failed_phase = next(
            (p for p in Phase if journal.status(p) in (Status.FAILED, Status.RUNNING)), None
        )
        protected = self._make_sure_protected(after_failure=True)
        journal.state = RunState.FAILED
        journal.facts["protected_after_failure"] = protected
        rollback_text = self._rollback_if_asked(failed_phase)
        path = None
        if journal.status(Phase.REPLACE) is not Status.PENDING:
            result = "rolled back" if journal.facts.get("rolled_back") else "partial"
            failure = error.message + (f"\n\n{rollback_text}" if rollback_text else "")
            path = self._write_postmortem(result, failure=failure)
        snapshot = journal.facts.get("snapshot_name")
        snapshot_state = self._snapshot_state(snapshot)
        lines = [error.render(), "", "where things stand:"]
        lines.append(f"  failed phase: {failed_phase.value if failed_phase else 'unknown'}")
        if protected is True:
            lines.append(f"  instance {self.target.instance_name}: protected (confirmed in state)")
        elif protected is None:
            lines.append(f"  instance {self.target.instance_name}: untouched, still protected")
        elif self._lock_seen:
            lines.append(
                f"  instance {self.target.instance_name}: PROTECTION NOT CONFIRMED: the stack is "
                "still locked by the interrupted update. Now run "
                f"`pulumi cancel --stack {self.target.stack} --yes`, then "
                f"`python scripts/rebuild.py --stack {self.target.stack} --resume {journal.run_id}`"
            )
        else:
            lines.append(
                f"  instance {self.target.instance_name}: PROTECTION NOT CONFIRMED - run "
                f"`pulumi config set --stack {self.target.stack} freescout:protect true && "
                f"pulumi up --stack {self.target.stack}` now"
            )
        lines.append(f"  pre-rebuild snapshot: {snapshot or 'none'} ({snapshot_state})")
        if rollback_text:
            lines.append("  rollback: " + rollback_text.replace("\n", "\n    "))
        if path:
            lines.append(f"  postmortem: {path}")
        lines.append(
            f"  next: python scripts/rebuild.py --stack {self.target.stack} "
            f"--resume {journal.run_id}"
        )
        if snapshot and journal.status(Phase.REPLACE) is not Status.PENDING:
            lines.append(
                f"  or roll back: python scripts/restore.py --stack {self.target.stack} "
                f"--snapshot {snapshot}"
            )
        journal.note(f"run failed: {error.message}")
        code = error.exit_code if protected is not False else exitcodes.UNSAFE
        if isinstance(error, UsageError):
            code = error.exit_code
        return Outcome(code, RunState.FAILED, "\n".join(lines), path)

    def _rollback_if_asked(self, failed_phase: Phase | None) -> str | None:
        """--rollback-on-failure: when verification failed, restore the pre-rebuild snapshot."""
        if not self.options.rollback_on_failure or failed_phase is not Phase.VERIFY:
            return None
        snapshot = self.journal.facts.get("snapshot_name")
        if self.a.rollback is None or not snapshot:
            return "not possible: no restore adapter or no pre-rebuild snapshot"
        self.a.progress.say(f"rollback: restoring from {snapshot}")
        self.journal.note(f"rollback: restoring from {snapshot}")
        try:
            account = self.a.rollback(snapshot)
        except OpsError as error:
            self.journal.note(f"rollback failed: {error.message}")
            return f"FAILED: {error.render()}"
        except Exception as error:  # noqa: BLE001 - reported, the run has failed already
            self.journal.note(f"rollback failed: {error}")
            return f"FAILED: {type(error).__name__}: {error}"
        self.journal.facts["rolled_back"] = True
        self.journal.note("rollback: done")
        return account

    def _snapshot_state(self, name: str | None) -> str:
        if not name:
            return "not taken"
        try:
            info = self.a.lightsail.get_snapshot(name)
        except Exception as error:  # noqa: BLE001 - only for the report
            return f"unknown: {error}"
        return info.state if info else "not found"

    def _write_postmortem(self, result: str, failure: str | None = None) -> Path:
        facts = self.journal.facts
        started = datetime.fromisoformat(self.journal.started_at.replace("Z", "+00:00"))
        minutes = None
        if facts.get("modules_active_at"):
            active = datetime.fromisoformat(facts["modules_active_at"])
            minutes = (active - started).total_seconds() / 60
        path = postmortem.write(
            self.options.postmortem_dir,
            postmortem.PostmortemFacts(
                started_at=started,
                trigger=str(facts.get("trigger") or ""),
                plan_counts=facts.get("plan_counts") or {},
                result=result,
                minutes_to_modules_active=minutes,
                snapshot_name=facts.get("snapshot_name"),
                post_install_snapshot=facts.get("post_install_snapshot"),
                run_id=self.journal.run_id,
                failure=failure,
            ),
        )
        facts["postmortem"] = str(path)
        self.journal.save()
        return path
