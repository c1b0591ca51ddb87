// Run by the configure step as `php -r CODE EMAIL`; the password comes on stdin.
// Creates or updates the FreeScout admin with that e-mail. Never prints the password.
chdir(getenv('FREESCOUT_DIR') ?: '/var/www/html/freescout');
require 'vendor/autoload.php';
$app = require 'bootstrap/app.php';
$app->make(Illuminate\Contracts\Console\Kernel::class)->bootstrap();
$email = $argv[1] ?? '';
$password = trim((string) fgets(STDIN));
if ($email === '' || $password === '') {
    fwrite(STDERR, "set-admin: an e-mail argument and a password on stdin are required\n");
    exit(2);
}
$user = \App\User::where('email', $email)->first();
if (!$user) {
    $user = new \App\User();
    $user->email = $email;
    $user->first_name = 'Help desk';
    $user->last_name = 'Admin';
}
$user->role = \App\User::ROLE_ADMIN;
$user->password = \Hash::make($password);
$user->save();
echo "set-admin: admin {$email} is set\n";
