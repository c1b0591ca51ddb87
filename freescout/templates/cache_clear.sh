#!/bin/sh
# Provisioning step (remote, as root): rebuild FreeScout's caches after the module installs.
set -eu
APP_DIR="${FREESCOUT_DIR:-/var/www/html/freescout}"
cd "$APP_DIR"
out=$(runuser -u www-data -- php artisan freescout:clear-cache 2>&1) || {
    printf 'cache-clear: FAILED: %s\n' "$out" >&2
    exit 1
}
printf '%s\n' "$out"
case "$out" in
    *"Configuration cached successfully"*) ;;
    *)
        printf "cache-clear: FAILED: no 'Configuration cached successfully' in the output\n" >&2
        exit 1
        ;;
esac
