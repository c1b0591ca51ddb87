"""ports.Lightsail over a boto3 Lightsail client: thin, typed, and patient where Lightsail is slow.

Every call is retried with backoff on throttling (`ThrottlingException`, "Rate exceeded"); nothing
else is retried here. botocore has no Lightsail waiters, so snapshot waits poll through
operations.retry.poll. Responses of GetInstanceAccessDetails also carry a temporary private key and
password: only the host keys are read from them, and no response is ever put into an error message.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from operations.errors import DeadlineExceeded, OpsError, TransientError
from operations.ports import HostKey, InstanceInfo, Lightsail, SnapshotInfo, StaticIpInfo
from operations.retry import Backoff, Clock, poll, retry
from operations.snapshot_names import validate_snapshot_name

THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "SlowDown",
    }
)
NOT_FOUND_CODES = frozenset({"NotFoundException", "DoesNotExist"})

CALL_BACKOFF = Backoff(first=2.0, factor=1.6, maximum=30.0)
"""Pauses between runs of one throttled API call."""
POLL_BACKOFF = Backoff(first=5.0, factor=1.5, maximum=30.0)
"""Pauses between looks at a snapshot (or host keys) that is not ready yet."""


def error_code(error: BaseException) -> str:
    """The AWS error code of a ClientError, or '' for anything else."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", ""))
    return ""


def _error_message(error: BaseException) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Message", ""))
    return str(error)


def is_throttling(error: BaseException) -> bool:
    """True for Lightsail's throttling answers (by code, or the "Rate exceeded" message)."""
    if not isinstance(error, ClientError):
        return False
    return error_code(error) in THROTTLING_CODES or "rate exceeded" in _error_message(error).lower()


def is_not_found(error: BaseException) -> bool:
    return error_code(error) in NOT_FOUND_CODES


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat()
    return str(value)


def _sort_key(value: Any) -> float:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            return 0.0
    return 0.0


def _snapshot_info(raw: dict[str, Any]) -> SnapshotInfo:
    return SnapshotInfo(
        name=raw["name"],
        state=str(raw.get("state", "")).lower(),
        progress=raw.get("progress"),
        created_at=_iso(raw.get("createdAt")),
        from_instance=raw.get("fromInstanceName"),
    )


class BotoLightsail:
    """Implements ports.Lightsail with a boto3 `lightsail` client passed in.

    `throttle_attempts` bounds the runs of one API call under throttling; `not_found_grace`
    is how long a snapshot may be invisible right after it was created.
    """

    def __init__(
        self,
        client: Any,
        clock: Clock | None = None,
        *,
        backoff: Backoff = CALL_BACKOFF,
        poll_backoff: Backoff = POLL_BACKOFF,
        throttle_attempts: int = 6,
        not_found_grace: float = 60.0,
        on_retry: Callable[[str], None] | None = None,
    ):
        self._client = client
        self._clock = clock or Clock()
        self._backoff = backoff
        self._poll_backoff = poll_backoff
        self._throttle_attempts = throttle_attempts
        self._not_found_grace = not_found_grace
        self._on_retry = on_retry

    # ------------------------------------------------------------ plumbing

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        """One API call, retried with backoff while Lightsail throttles; other errors raised."""
        method = getattr(self._client, operation)

        def report(attempt: int, error: BaseException, pause: float) -> None:
            if self._on_retry:
                self._on_retry(
                    f"Lightsail {operation} throttled (attempt {attempt}); retrying in {pause:.0f}s"
                )

        try:
            return retry(
                lambda: method(**params),
                is_transient=is_throttling,
                attempts=self._throttle_attempts,
                backoff=self._backoff,
                clock=self._clock,
                on_retry=report,
            )
        except ClientError as error:
            if is_throttling(error):
                raise TransientError(
                    f"Lightsail kept throttling {operation} after {self._throttle_attempts} tries",
                    cause=f"{error_code(error)}: {_error_message(error)}",
                    hint="wait a minute, then rerun the same command (with --resume for a rebuild)",
                ) from error
            raise

    def _fail(self, what: str, error: BaseException) -> OpsError:
        code = error_code(error) or type(error).__name__
        hint = "check the AWS credentials and region (AWS_PROFILE, AWS_REGION) and rerun"
        if code in {"AccessDeniedException", "UnauthenticatedException"}:
            hint = "the AWS credentials in use may not allow this Lightsail call: check AWS_PROFILE"
        return OpsError(f"{what} failed", cause=f"{code}: {_error_message(error)}", hint=hint)

    # ------------------------------------------------------------ instances and IPs

    def get_instance(self, name: str) -> InstanceInfo | None:
        """The instance, or None when Lightsail has no instance of that name."""
        try:
            raw = self._call("get_instance", instanceName=name)["instance"]
        except (ClientError, BotoCoreError) as error:
            if is_not_found(error):
                return None
            raise self._fail(f"looking up instance {name}", error) from error
        return InstanceInfo(
            name=raw["name"],
            state=str(raw.get("state", {}).get("name", "unknown")),
            public_ip=raw.get("publicIpAddress"),
            username=raw.get("username") or "",
            created_at=_iso(raw.get("createdAt")),
        )

    def get_static_ip(self, name: str) -> StaticIpInfo | None:
        """The static IP, or None when it does not exist."""
        try:
            raw = self._call("get_static_ip", staticIpName=name)["staticIp"]
        except (ClientError, BotoCoreError) as error:
            if is_not_found(error):
                return None
            raise self._fail(f"looking up static IP {name}", error) from error
        attached = (
            raw.get("attachedTo") if raw.get("isAttached", bool(raw.get("attachedTo"))) else None
        )
        return StaticIpInfo(
            name=raw["name"], ip_address=raw.get("ipAddress", ""), attached_to=attached
        )

    def host_keys(self, instance_name: str) -> list[HostKey]:
        """The SSH host keys Lightsail has witnessed on the instance (GetInstanceAccessDetails).

        The response also holds a temporary private key and password; they are dropped here.
        """
        try:
            details = self._call(
                "get_instance_access_details", instanceName=instance_name, protocol="ssh"
            )["accessDetails"]
        except (ClientError, BotoCoreError) as error:
            raise self._fail(f"reading the host keys of {instance_name}", error) from error
        keys: list[HostKey] = []
        for raw in details.get("hostKeys") or []:
            algorithm, public_key = raw.get("algorithm"), raw.get("publicKey")
            if algorithm and public_key:
                keys.append(HostKey(algorithm=str(algorithm), public_key=str(public_key)))
        return keys

    def wait_host_keys(
        self,
        instance_name: str,
        *,
        deadline_seconds: float,
        on_wait: Callable[[float, float], None] | None = None,
    ) -> list[HostKey]:
        """Poll host_keys until Lightsail reports at least one (a new instance has none yet)."""
        try:
            return poll(
                lambda: self.host_keys(instance_name) or None,
                what=f"the SSH host keys of {instance_name}",
                deadline_seconds=deadline_seconds,
                backoff=self._poll_backoff,
                clock=self._clock,
                on_wait=on_wait,
            )
        except DeadlineExceeded as error:
            raise DeadlineExceeded(
                f"Lightsail reported no SSH host keys for {instance_name} "
                f"within {deadline_seconds:.0f}s",
                hint=(
                    "aws lightsail get-instance-access-details --protocol ssh "
                    f"--instance-name {instance_name}   (then rerun with --resume)"
                ),
            ) from error

    def create_instance_from_snapshot(
        self, *, instance_name: str, snapshot_name: str, zone: str, bundle_id: str
    ) -> None:
        """CreateInstancesFromSnapshot for one instance."""
        validate_snapshot_name(snapshot_name)
        try:
            response = self._call(
                "create_instances_from_snapshot",
                instanceNames=[instance_name],
                availabilityZone=zone,
                bundleId=bundle_id,
                instanceSnapshotName=snapshot_name,
            )
        except (ClientError, BotoCoreError) as error:
            raise self._fail(
                f"creating instance {instance_name} from snapshot {snapshot_name}", error
            ) from error
        self._check_operations(response, f"creating instance {instance_name} from {snapshot_name}")

    def attach_static_ip(self, *, static_ip_name: str, instance_name: str) -> None:
        """AttachStaticIp."""
        try:
            response = self._call(
                "attach_static_ip", staticIpName=static_ip_name, instanceName=instance_name
            )
        except (ClientError, BotoCoreError) as error:
            raise self._fail(
                f"attaching static IP {static_ip_name} to {instance_name}", error
            ) from error
        self._check_operations(response, f"attaching {static_ip_name} to {instance_name}")

    @staticmethod
    def _check_operations(response: dict[str, Any], what: str) -> None:
        # Lightsail answers 200 with operations that may already say Failed.
        for operation in response.get("operations") or []:
            if str(operation.get("status", "")).lower() == "failed":
                raise OpsError(
                    f"{what}: Lightsail reports the operation failed",
                    cause=str(operation.get("errorDetails") or operation.get("errorCode") or ""),
                    hint="look at the operation in the Lightsail console, then rerun",
                )

    # ------------------------------------------------------------ snapshots

    def create_instance_snapshot(self, instance_name: str, snapshot_name: str) -> None:
        """CreateInstanceSnapshot, after checking the name the way Lightsail will."""
        validate_snapshot_name(snapshot_name)
        try:
            response = self._call(
                "create_instance_snapshot",
                instanceName=instance_name,
                instanceSnapshotName=snapshot_name,
            )
        except (ClientError, BotoCoreError) as error:
            raise self._fail(
                f"creating snapshot {snapshot_name} of {instance_name}", error
            ) from error
        self._check_operations(response, f"creating snapshot {snapshot_name}")

    def get_snapshot(self, snapshot_name: str) -> SnapshotInfo | None:
        """The snapshot, or None when Lightsail does not (yet) know it."""
        try:
            raw = self._call("get_instance_snapshot", instanceSnapshotName=snapshot_name)
        except (ClientError, BotoCoreError) as error:
            if is_not_found(error):
                return None
            raise self._fail(f"looking up snapshot {snapshot_name}", error) from error
        return _snapshot_info(raw["instanceSnapshot"])

    def wait_snapshot_available(
        self,
        snapshot_name: str,
        *,
        deadline_seconds: float,
        on_progress: Callable[[SnapshotInfo, float], None] | None = None,
    ) -> SnapshotInfo:
        """Poll until the snapshot is `available`; `error` fails at once, naming the snapshot.

        NotFound is tolerated for `not_found_grace` seconds (a fresh snapshot can be invisible);
        any state other than `available` keeps waiting, so an unknown state never passes.
        """
        start = self._clock.now()
        last: list[SnapshotInfo] = []

        def probe() -> SnapshotInfo | None:
            try:
                info = self.get_snapshot(snapshot_name)
            except TransientError:
                return None  # throttled past the per-call retries: the deadline still bounds us
            elapsed = self._clock.now() - start
            if info is None:
                if elapsed >= self._not_found_grace:
                    raise OpsError(
                        f"snapshot {snapshot_name} does not exist "
                        f"(still not found {elapsed:.0f}s after it was requested)",
                        hint="aws lightsail get-instance-snapshots  (created? in this region?)",
                    )
                return None
            last[:] = [info]
            if info.state == "available":
                return info
            if info.state == "error":
                raise OpsError(
                    f"snapshot {snapshot_name} is in state 'error'"
                    + (f" at {info.progress}" if info.progress else ""),
                    cause="Lightsail could not complete the snapshot: it is not a usable backup",
                    hint=(
                        "delete it with: aws lightsail delete-instance-snapshot "
                        f"--instance-snapshot-name {snapshot_name}; then take a new snapshot"
                    ),
                )
            if on_progress:
                on_progress(info, elapsed)
            return None

        try:
            return poll(
                probe,
                what=f"snapshot {snapshot_name}",
                deadline_seconds=deadline_seconds,
                backoff=self._poll_backoff,
                clock=self._clock,
            )
        except DeadlineExceeded as error:
            state = (
                f"last state {last[0].state}"
                + (f" {last[0].progress}" if last and last[0].progress else "")
                if last
                else "never seen"
            )
            raise DeadlineExceeded(
                f"snapshot {snapshot_name} was not available within {deadline_seconds:.0f}s "
                f"({state})",
                hint=(
                    "aws lightsail get-instance-snapshot --instance-snapshot-name "
                    f"{snapshot_name}; when it is available, rerun with --resume"
                ),
            ) from error

    def list_snapshots(self, prefix: str) -> list[SnapshotInfo]:
        """Every instance snapshot whose name starts with `prefix`, newest first (all pages)."""
        found: list[tuple[float, SnapshotInfo]] = []
        token: str | None = None
        while True:
            params = {"pageToken": token} if token else {}
            try:
                response = self._call("get_instance_snapshots", **params)
            except (ClientError, BotoCoreError) as error:
                raise self._fail("listing instance snapshots", error) from error
            for raw in response.get("instanceSnapshots") or []:
                if str(raw.get("name", "")).startswith(prefix):
                    found.append((_sort_key(raw.get("createdAt")), _snapshot_info(raw)))
            token = response.get("nextPageToken")
            if not token:
                break
        found.sort(key=lambda pair: pair[0], reverse=True)
        return [info for _, info in found]


def _implements_port(adapter: BotoLightsail) -> Lightsail:
    return adapter  # mypy checks here that the adapter satisfies ports.Lightsail
