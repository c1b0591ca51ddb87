#!/bin/sh
# FreeScout bootstrap, run once by cloud-init as Lightsail user_data (under dash: POSIX sh only).
# Rendered by freescout/userdata.py. It holds no secret and no license key: the configure step
# sets every password over SSH. A change here replaces the instance (user_data is immutable).
set -eu

# Log everything to a file by redirection: a pipe into a logger would hide a failure from set -e.
exec >>/var/log/freescout-bootstrap.log 2>&1

# cloud-init runs this without HOME: composer refuses to run and set -u aborts on the first $HOME.
HOME=/root
COMPOSER_HOME=/root/.composer
COMPOSER_NO_INTERACTION=1
COMPOSER_ALLOW_SUPERUSER=1
DEBIAN_FRONTEND=noninteractive
export HOME COMPOSER_HOME COMPOSER_NO_INTERACTION COMPOSER_ALLOW_SUPERUSER DEBIAN_FRONTEND

SITE_HOST='@@HOSTNAME@@'
APP_DIR='@@APP_DIR@@'
REPO_URL='@@REPO_URL@@'
REPO_REF='@@REPO_REF@@'
STATE_DIR=/var/lib/freescout
DONE_MARKER="$STATE_DIR/bootstrap.done"

log() {
    printf '%s bootstrap: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"
}

fail() {
    log "FAILED: $*"
    exit 1
}

log "start for $SITE_HOST"
mkdir -p "$STATE_DIR" "$COMPOSER_HOME"
chmod 0700 "$STATE_DIR"

log "installing packages"
apt-get update -q
apt-get install -y -q git unzip curl composer apache2 mariadb-server certbot \
    python3-certbot-apache libapache2-mod-php php-cli php-mysql php-mbstring php-xml \
    php-imap php-zip php-gd php-curl php-intl php-bcmath

# The database and its user. The password made here never leaves the host; the configure step
# replaces it with the managed one (SSM) over SSH.
if [ ! -f /root/.freescout_db_pass ]; then
    umask 077
    head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >/root/.freescout_db_pass
    umask 022
fi
[ -s /root/.freescout_db_pass ] || fail "could not make a database password"
DB_PASS=$(cat /root/.freescout_db_pass)
mysql --protocol=socket -u root <<SQL
CREATE DATABASE IF NOT EXISTS freescout CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS 'freescout'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL PRIVILEGES ON freescout.* TO 'freescout'@'localhost';
FLUSH PRIVILEGES;
SQL

if [ ! -d "$APP_DIR/.git" ]; then
    log "cloning $REPO_URL ($REPO_REF) into $APP_DIR"
    mkdir -p "$(dirname "$APP_DIR")"
    git clone --depth 1 --branch "$REPO_REF" "$REPO_URL" "$APP_DIR"
fi
cd "$APP_DIR"

log "composer install"
composer install --no-dev --optimize-autoloader --no-interaction
[ -f vendor/autoload.php ] || fail "composer left no vendor/autoload.php in $APP_DIR"

if [ ! -f .env ]; then
    umask 027
    cat >.env <<ENV
APP_URL=https://$SITE_HOST
APP_KEY=
APP_ENV=production
APP_DEBUG=false
DB_CONNECTION=mysql
DB_HOST=localhost
DB_PORT=3306
DB_DATABASE=freescout
DB_USERNAME=freescout
DB_PASSWORD=$DB_PASS
ENV
    umask 022
fi
chown -R www-data:www-data "$APP_DIR"

log "artisan: key, migrations"
runuser -u www-data -- php artisan key:generate --force
runuser -u www-data -- php artisan migrate --force
runuser -u www-data -- php artisan storage:link || log "storage:link: already linked"

log "apache vhost for $SITE_HOST"
cat >/etc/apache2/sites-available/freescout.conf <<VHOST
<VirtualHost *:80>
    ServerName $SITE_HOST
    DocumentRoot $APP_DIR/public
    <Directory $APP_DIR/public>
        Options -Indexes +FollowSymLinks
        AllowOverride All
        Require all granted
    </Directory>
    ErrorLog \${APACHE_LOG_DIR}/freescout-error.log
    CustomLog \${APACHE_LOG_DIR}/freescout-access.log combined
</VirtualHost>
VHOST
a2enmod rewrite
a2ensite freescout
a2dissite 000-default || log "000-default: not enabled"
apache2ctl configtest
systemctl reload apache2

cat >/etc/cron.d/freescout <<CRON
* * * * * www-data cd $APP_DIR && php artisan schedule:run >/dev/null 2>&1
CRON

date -u +%Y-%m-%dT%H:%M:%SZ >"$DONE_MARKER"
log "done"
