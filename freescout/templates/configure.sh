#!/bin/sh
# Provisioning step 2 (remote, as root): set the managed passwords, mail and admin, then TLS.
# Arguments: host name, admin e-mail, PHP code that sets the admin user (no secret in any).
# Secrets arrive on stdin, one a line: database user password, database root password,
# admin password, mail token (may be empty). They never appear in arguments or the environment.
set -eu
SITE_HOST="$1"
ADMIN_EMAIL="$2"
ADMIN_PHP="$3"
APP_DIR="${FREESCOUT_DIR:-/var/www/html/freescout}"

fail() {
    printf 'configure: FAILED: %s\n' "$*" >&2
    exit 1
}

IFS= read -r db_password || fail "stdin ended before the database password"
IFS= read -r db_root_password || fail "stdin ended before the database root password"
IFS= read -r admin_password || fail "stdin ended before the admin password"
IFS= read -r mail_token || mail_token=""

# Generated passwords are letters and digits only, so they are safe inside SQL and .env lines.
for secret in "$db_password" "$db_root_password" "$admin_password"; do
    case "$secret" in
        '' | *[!A-Za-z0-9]*) fail "a password on stdin is empty or not alphanumeric" ;;
    esac
done
case "$mail_token" in
    *[!A-Za-z0-9-]*) fail "the mail token on stdin has characters other than letters, digits, '-'" ;;
esac

[ -f "$APP_DIR/vendor/autoload.php" ] || fail "no $APP_DIR/vendor/autoload.php: bootstrap unfinished"

# Rewrites KEY=... in .env with builtins only (no sed/awk: the value would show in their args).
env_set() {
    env_file="$APP_DIR/.env"
    tmp="$env_file.new"
    found=no
    : >"$tmp"
    chmod 0640 "$tmp"
    while IFS= read -r line || [ -n "$line" ]; do
        case "$line" in
            "$1="*)
                printf '%s=%s\n' "$1" "$2" >>"$tmp"
                found=yes
                ;;
            *) printf '%s\n' "$line" >>"$tmp" ;;
        esac
    done <"$env_file"
    if [ "$found" = no ]; then
        printf '%s=%s\n' "$1" "$2" >>"$tmp"
    fi
    chown www-data:www-data "$tmp"
    mv "$tmp" "$env_file"
}

mysql --protocol=socket -u root <<SQL || fail "could not set the database passwords"
ALTER USER 'freescout'@'localhost' IDENTIFIED BY '$db_password';
ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('$db_root_password');
FLUSH PRIVILEGES;
SQL
umask 077
printf '%s\n' "$db_password" >/root/.freescout_db_pass
umask 022
env_set DB_PASSWORD "$db_password"
env_set APP_URL "https://$SITE_HOST"

if [ -n "$mail_token" ]; then
    env_set MAIL_DRIVER smtp
    env_set MAIL_HOST smtp.postmarkapp.com
    env_set MAIL_PORT 587
    env_set MAIL_ENCRYPTION tls
    env_set MAIL_USERNAME "$mail_token"
    env_set MAIL_PASSWORD "$mail_token"
fi

cd "$APP_DIR"
printf '%s\n' "$admin_password" | runuser -u www-data -- php -r "$ADMIN_PHP" "$ADMIN_EMAIL" \
    || fail "could not set the admin user $ADMIN_EMAIL"

out=$(runuser -u www-data -- php artisan freescout:clear-cache 2>&1) || fail "clear-cache: $out"
case "$out" in
    *"Configuration cached successfully"*) ;;
    *) fail "clear-cache did not report 'Configuration cached successfully': $out" ;;
esac

certbot --apache --non-interactive --agree-tos --keep-until-expiring --redirect \
    -m "$ADMIN_EMAIL" -d "$SITE_HOST" || fail "certbot could not get a certificate for $SITE_HOST"
printf 'configure: done for %s\n' "$SITE_HOST"
