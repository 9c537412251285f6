<?php
// The peer the seed's product is: PHP-FPM behind nginx, file sessions, PDO SQLite. Two routes
// with the same shape as gatehouse's: POST /login (argon2id verify, a new session id) and
// GET /clientarea (the session's user and their clients from the database, rendered escaped).
$db = new PDO('sqlite:' . getenv('PEER_DB'));
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
session_start();

if ($path === '/login' && $_SERVER['REQUEST_METHOD'] === 'POST') {
    $q = $db->prepare('SELECT id, password_hash FROM users WHERE email = ?');
    $q->execute([strtolower(trim($_POST['email'] ?? ''))]);
    $user = $q->fetch(PDO::FETCH_ASSOC);
    if (!$user || !password_verify($_POST['password'] ?? '', $user['password_hash'])) {
        http_response_code(422);
        exit('Login details incorrect');
    }
    session_regenerate_id(true);
    $_SESSION['user_id'] = (int) $user['id'];
    header('Location: /clientarea', true, 303);
    exit;
}

if ($path === '/clientarea') {
    if (empty($_SESSION['user_id'])) {
        header('Location: /login', true, 303);
        exit;
    }
    $q = $db->prepare('SELECT first_name, last_name, email FROM users WHERE id = ?');
    $q->execute([$_SESSION['user_id']]);
    $user = $q->fetch(PDO::FETCH_ASSOC);
    $q = $db->prepare('SELECT c.id, c.name FROM memberships m JOIN clients c ON c.id = m.client_id WHERE m.user_id = ? ORDER BY c.id');
    $q->execute([$_SESSION['user_id']]);
    $clients = $q->fetchAll(PDO::FETCH_ASSOC);
    $h = fn($s) => htmlspecialchars($s, ENT_QUOTES);
    echo '<!doctype html><html><head><title>Client area</title></head><body><h1>Welcome, ', $h($user['first_name']), ' ',
        $h($user['last_name']), '</h1><p>', $h($user['email']), '</p><ul>';
    foreach ($clients as $c) {
        echo '<li>', $h($c['name']), ' (#', (int) $c['id'], ')</li>';
    }
    echo '</ul></body></html>';
    exit;
}
http_response_code(404);
