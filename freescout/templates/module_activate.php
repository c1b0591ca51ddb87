// Run by a module step as `php -r CODE ALIAS`; the license key comes on stdin.
// FreeScout's own web flow, without the browser: activate the license for this site's URL,
// download and unpack the module when it is absent, record the license and mark it active.
// Prints the module's name (the Name column of `artisan module:list`) on stdout; never the key.
chdir(getenv('FREESCOUT_DIR') ?: '/var/www/html/freescout');
require 'vendor/autoload.php';
$app = require 'bootstrap/app.php';
$app->make(Illuminate\Contracts\Console\Kernel::class)->bootstrap();
$alias = $argv[1] ?? '';
$license = trim((string) fgets(STDIN));
$stop = static function (string $why, int $code) use ($alias) {
    fwrite(STDERR, "module-activate[{$alias}]: {$why}\n");
    exit($code);
};
if ($alias === '' || $license === '') {
    $stop('an alias argument and a license key on stdin are required', 2);
}
$params = ['license' => $license, 'module_alias' => $alias, 'url' => \App\Module::getAppUrl()];
$result = \App\Misc\WpApi::activateLicense($params);
if (\App\Misc\WpApi::$lastError) {
    $stop('license server: ' . \App\Misc\WpApi::$lastError['message'], 3);
}
if (empty($result['status']) || $result['status'] !== 'valid') {
    $stop('license not accepted: ' . ($result['error'] ?? $result['message'] ?? 'no status'), 3);
}
if (!\Module::findByAlias($alias)) {
    $details = \App\Misc\WpApi::getVersion($params);
    if (empty($details['download_link'])) {
        $stop('the license server gave no download link', 4);
    }
    $archive = \Module::getPath() . DIRECTORY_SEPARATOR . $alias . '.zip';
    \Helper::downloadRemoteFile($details['download_link'], $archive);
    \Helper::unzip($archive, \Module::getPath());
    \File::delete($archive);
    \Module::clearCache();
}
$module = \Module::findByAlias($alias);
if (!$module) {
    $stop('the module is not in ' . \Module::getPath() . ' after the download', 5);
}
\App\Module::activateLicense($alias, $license);
\App\Module::setActive($alias, true);
echo $module->getName(), "\n";
