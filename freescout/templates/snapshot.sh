#!/bin/sh
# Provisioning step (LOCAL, on the operator's machine): a manual Lightsail instance snapshot,
# waited for until it is available. Runs the aws CLI with the operator's credentials; the
# instance holds no AWS credential. Prints the snapshot name as the command's stdout.
# Arguments: instance name, label (pre-install / post-install), region, deadline in seconds.
set -eu
INSTANCE="$1"
LABEL="$2"
REGION="$3"
DEADLINE_SECONDS="$4"

fail() {
    printf 'snapshot: FAILED: %s\n' "$*" >&2
    exit 1
}

command -v aws >/dev/null 2>&1 || fail "the aws CLI is not installed on this machine"
# Snapshot names allow letters, digits, '-', '_', '.': no ':' or '+' from an ISO time.
name="$INSTANCE-$LABEL-$(date -u +%Y%m%dT%H%M%SZ)"
case "$name" in
    *[!A-Za-z0-9._-]*) fail "'$name' is not a valid snapshot name" ;;
esac
aws lightsail create-instance-snapshot --region "$REGION" \
    --instance-name "$INSTANCE" --instance-snapshot-name "$name" >/dev/null \
    || fail "create-instance-snapshot $name was refused"

end=$(($(date +%s) + DEADLINE_SECONDS))
while :; do
    # Right after creation the lookup may briefly answer NotFound: treat it as pending.
    state=$(aws lightsail get-instance-snapshot --region "$REGION" \
        --instance-snapshot-name "$name" --query instanceSnapshot.state --output text 2>/dev/null) \
        || state=pending
    case "$state" in
        available) break ;;
        error) fail "snapshot $name is in state error" ;;
    esac
    [ "$(date +%s)" -lt "$end" ] || fail "snapshot $name still '$state' after $DEADLINE_SECONDS s"
    sleep 15
done
printf '%s\n' "$name"
