#!/bin/sh
# Provisioning step 1 (remote, as root): wait for cloud-init and the FreeScout bootstrap.
# cloud-init status: exit 0 done, 1 error, 2 degraded (recoverable; cloud-init 23.4 and later);
# with --wait the line may start with progress dots. Anything else is a failure, not a pass.
set -eu
BOOTSTRAP_LOG=/var/log/freescout-bootstrap.log
DONE_MARKER=/var/lib/freescout/bootstrap.done

fail() {
    printf 'wait-for-cloud-init: FAILED: %s\n' "$*" >&2
    exit 1
}

rc=0
out=$(cloud-init status --wait --long 2>&1) || rc=$?
printf '%s\n' "$out"
status=$(printf '%s\n' "$out" | sed -n 's/^\.*status: *//p' | head -n 1)
case "$rc:$status" in
    0:done) ;;
    2:degraded*) printf 'wait-for-cloud-init: degraded (recoverable errors above); going on\n' ;;
    *)
        tail -n 40 /var/log/cloud-init-output.log >&2 || true
        fail "cloud-init ended with status '$status' (exit $rc)"
        ;;
esac
if [ ! -f "$DONE_MARKER" ]; then
    tail -n 40 "$BOOTSTRAP_LOG" >&2 || true
    fail "the FreeScout bootstrap did not finish: see $BOOTSTRAP_LOG"
fi
printf 'wait-for-cloud-init: done; bootstrap finished at %s\n' "$(cat "$DONE_MARKER")"
