#!/bin/sh
# Provisioning step (remote, as root): install and activate one paid FreeScout module.
# Arguments: the module alias, PHP code that activates the license (module_activate.php).
# The license key arrives on stdin and goes straight to PHP's stdin; it is never an argument.
# FreeScout's installer exits 0 when it fails (unknown alias, symlink error), so the result is
# judged by its output, the public/modules/<alias> link and a re-read of `module:list`.
set -eu
ALIAS="$1"
ACTIVATE_PHP="$2"
APP_DIR="${FREESCOUT_DIR:-/var/www/html/freescout}"

fail() {
    printf 'module-install[%s]: FAILED: %s\n' "$ALIAS" "$*" >&2
    exit 1
}

case "$ALIAS" in
    '' | *[!a-z0-9]*) fail "the alias must be lower-case letters and digits" ;;
esac
cd "$APP_DIR" || fail "no $APP_DIR"
[ -f vendor/autoload.php ] || fail "no $APP_DIR/vendor/autoload.php: the bootstrap did not finish"

name=$(runuser -u www-data -- php -r "$ACTIVATE_PHP" "$ALIAS") \
    || fail "license activation or download failed (see the lines above)"
[ -n "$name" ] || fail "the activation printed no module name"

out=$(runuser -u www-data -- php artisan freescout:module-install "$ALIAS" 2>&1) \
    || fail "freescout:module-install exited non-zero: $out"
printf '%s\n' "$out"
case "$out" in
    *"Configuration cached successfully"*) ;;
    *) fail "the installer did not report 'Configuration cached successfully'" ;;
esac
[ -e "public/modules/$ALIAS" ] || fail "public/modules/$ALIAS is missing after the install"

# module:list prints a table; find the Name and Status columns in its header, then the row.
table=$(runuser -u www-data -- php artisan module:list 2>&1) || fail "module:list failed: $table"
status=$(printf '%s\n' "$table" | awk -F '|' -v want="$name" '
    { for (i = 1; i <= NF; i++) { cell[i] = $i; gsub(/^[ \t]+|[ \t]+$/, "", cell[i]) } }
    !namecol {
        for (i = 1; i <= NF; i++) {
            if (cell[i] == "Name") namecol = i
            if (cell[i] == "Status") statuscol = i
        }
        next
    }
    statuscol && cell[namecol] == want { print cell[statuscol]; exit }
')
case "$status" in
    Enabled | Active | enabled | active) ;;
    '') fail "module:list has no row for $name: $table" ;;
    *) fail "module:list shows $name as '$status', not Enabled" ;;
esac
printf 'module-install[%s]: %s is %s\n' "$ALIAS" "$name" "$status"
