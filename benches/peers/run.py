#!/usr/bin/env python3
"""gatehouse beside the stacks users run today, on this machine, in one run.

    benches/peers/setup.sh                # once: Debian's php-fpm, nginx and wrk; Django from PyPI
    python3 benches/peers/run.py          # builds gatehouse (release) first
    python3 benches/peers/run.py --rounds 5 --seconds 10

Three services on loopback, each with one user (argon2id, m=19456 KiB, t=2, p=1 — gatehouse's
policy) who belongs to one client:

- gatehouse: `gatehouse serve`, SQLite, database sessions;
- PHP: PHP-FPM (static pool, 2 × cores + 1 children) behind nginx, file sessions, PDO SQLite
  (benches/peers/php/index.php);
- Django: gunicorn (2 × cores + 1 sync workers), database sessions, SQLite
  (benches/peers/django/peer.py).

Two loads from wrk, interleaved (gatehouse, PHP, Django; then again, `--rounds` times), so a
noisy neighbour hurts all three alike:

- page: an authenticated GET /clientarea (the user and their clients from the database) from 64
  keep-alive connections;
- login: POST /login with the right password (verify, new session, 303) from 4 × cores
  connections.

Prints, per stack, min/median/max of each load and gatehouse's ratio to each peer (min/median/max
of the per-round ratios). The load generator shares the cores with the servers: the figures are
this machine's, not a ceiling; the ratios are the point. Exits 2 when a tool is missing.
"""
import argparse
import http.client
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
GATEHOUSE = os.path.join(ROOT, "target", "release", "gatehouse")
EMAIL, PASSWORD = "bench@example.com", "correct horse battery"
CORES = os.cpu_count() or 1
WORKERS = 2 * CORES + 1
TOOLS = {"php-fpm8.2": "apt-get install php-fpm php-sqlite3", "nginx": "apt-get install nginx-light",
         "wrk": "apt-get install wrk", "gunicorn": "pip install gunicorn"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port, what, proc, seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} exited with status {proc.returncode} before it listened on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"{what} did not listen on 127.0.0.1:{port} within {seconds} s")


def peer_database(path, password_hash):
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, email TEXT UNIQUE NOT NULL, first_name TEXT NOT NULL,
                                          last_name TEXT NOT NULL, password_hash TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS clients (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS memberships (client_id INTEGER NOT NULL, user_id INTEGER NOT NULL,
                                                PRIMARY KEY (client_id, user_id));
        CREATE INDEX IF NOT EXISTS memberships_user ON memberships (user_id);
        PRAGMA journal_mode = WAL;
    """)
    db.execute("INSERT INTO users VALUES (1, ?, 'Bench', 'Mark', ?)", (EMAIL, password_hash))
    db.execute("INSERT INTO clients VALUES (1, 'Bench Mark')")
    db.execute("INSERT INTO memberships VALUES (1, 1)")
    db.commit()
    db.close()


class Stack:
    """A running service: its base URL, how to log in, and its processes."""

    def __init__(self, name, port, procs):
        self.name, self.port, self.procs = name, port, procs

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()

    def login_request(self):
        """(extra Cookie header, form fields) for a POST /login that succeeds."""
        return "", {"email": EMAIL, "password": PASSWORD}

    def session_cookie(self):
        cookie, fields = self.login_request()
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Host": f"127.0.0.1:{self.port}"}
        if cookie:
            headers["Cookie"] = cookie
        c.request("POST", "/login", urllib.parse.urlencode(fields), headers)
        r = c.getresponse()
        r.read()
        if r.status != 303:
            sys.exit(f"{self.name}: logging in answered {r.status}, not 303")
        for name, value in r.getheaders():
            if name.lower() == "set-cookie":
                return value.split(";")[0]
        sys.exit(f"{self.name}: logging in set no cookie")


class Gatehouse(Stack):
    def login_request(self):
        """The login form's CSRF token and its cookie (they stay valid together: a stateless HMAC)."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        c.request("GET", "/login", headers={"Host": f"127.0.0.1:{self.port}"})
        r = c.getresponse()
        body = r.read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', body).group(1)
        cookie = next(v.split(";")[0] for k, v in r.getheaders() if k.lower() == "set-cookie")
        return cookie, {"csrf_token": token, "email": EMAIL, "password": PASSWORD}


def start_gatehouse(tmp, env):
    port = free_port()
    config = os.path.join(tmp, "gatehouse.yaml")
    with open(config, "w") as f:
        f.write(f'system_url: "http://127.0.0.1:{port}/"\ndata_dir: "{tmp}/gatehouse-data"\n'
                f'database_url: "sqlite://{tmp}/gatehouse-data/gatehouse.db"\n'
                "security:\n  lockout: { max_failures: 100, ip_max_failures: 1000000, window: 1m, lock: 1m }\n"
                "sessions:\n  ip_check: false\nserver:\n  max_connections_per_ip: 0\n")
    run = lambda *a: subprocess.run([GATEHOUSE, "--config", config, *a], env=env, check=True, stdout=subprocess.DEVNULL)
    run("migrate")
    run("client", "add", "--email", EMAIL, "--first-name", "Bench", "--last-name", "Mark", "--company", "Bench Mark",
        "--password", PASSWORD)
    proc = subprocess.Popen([GATEHOUSE, "--config", config, "serve", "--listen", f"127.0.0.1:{port}"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(port, "gatehouse serve", proc)
    return Gatehouse("gatehouse", port, [proc])


def start_php(tmp):
    d = os.path.join(tmp, "php")
    os.makedirs(os.path.join(d, "sessions"))
    php_hash = subprocess.run(
        ["php", "-r", "echo password_hash($argv[1], PASSWORD_ARGON2ID, "
                      "['memory_cost' => 19456, 'time_cost' => 2, 'threads' => 1]);", PASSWORD],
        capture_output=True, text=True, check=True).stdout
    peer_database(os.path.join(d, "peer.db"), php_hash)
    with open(os.path.join(d, "fpm.conf"), "w") as f:
        f.write(f"[global]\npid = {d}/fpm.pid\nerror_log = {d}/fpm.log\ndaemonize = no\n"
                f"[bench]\nlisten = {d}/fpm.sock\npm = static\npm.max_children = {WORKERS}\n"
                f"env[PEER_DB] = {d}/peer.db\nphp_admin_value[session.save_path] = {d}/sessions\n"
                "php_admin_value[opcache.enable] = 1\n")
    port = free_port()
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(f"user root;\ndaemon off;\nworker_processes {CORES};\npid {d}/nginx.pid;\nerror_log {d}/nginx.log;\n"
                "events { worker_connections 4096; }\n"
                f"http {{ access_log off; client_body_temp_path {d}; fastcgi_temp_path {d};\n"
                f"  server {{ listen 127.0.0.1:{port}; location / {{ include /etc/nginx/fastcgi_params;\n"
                f"    fastcgi_param SCRIPT_FILENAME {HERE}/php/index.php; fastcgi_pass unix:{d}/fpm.sock; }} }} }}\n")
    fpm = subprocess.Popen(["php-fpm8.2", "--nodaemonize", "--allow-to-run-as-root", "-y", f"{d}/fpm.conf"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    nginx = subprocess.Popen(["nginx", "-c", f"{d}/nginx.conf", "-p", d], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    wait_for(port, "nginx", nginx)
    deadline = time.monotonic() + 10
    while not os.path.exists(f"{d}/fpm.sock"):
        if time.monotonic() > deadline or fpm.poll() is not None:
            sys.exit(f"php-fpm did not start: see {d}/fpm.log")
        time.sleep(0.05)
    return Stack("PHP-FPM + nginx", port, [fpm, nginx])


def start_django(tmp, env):
    d = os.path.join(tmp, "django")
    os.makedirs(d)
    from argon2 import PasswordHasher
    django_hash = "argon2" + PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1).hash(PASSWORD)
    db = os.path.join(d, "peer.db")
    peer_database(db, django_hash)
    env = dict(env, PEER_DB=db, PYTHONPATH=os.path.join(HERE, "django"))
    subprocess.run([sys.executable, "-c", "import peer; from django.core.management import call_command; "
                                          "call_command('migrate', verbosity=0)"], env=env, check=True)
    port = free_port()
    proc = subprocess.Popen(["gunicorn", "--workers", str(WORKERS), "--bind", f"127.0.0.1:{port}", "--log-level",
                             "warning", "peer:application"], env=env, stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(d, "gunicorn.log"), "w"))
    wait_for(port, "gunicorn", proc)
    return Stack("Django + gunicorn", port, [proc])


def seconds(text):
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def wrk(stack, connections, duration, script_dir, method="GET", path="/clientarea", cookie="", body=""):
    """Requests per second and p99 latency (ms); exits if any answer was not the expected one."""
    script = os.path.join(script_dir, f"{stack.port}-{method}.lua")
    with open(script, "w") as f:
        expected = 200 if method == "GET" else 303
        f.write(f'wrk.method = "{method}"\nwrk.body = [[{body}]]\n'
                'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
                f'wrk.headers["Cookie"] = [[{cookie}]]\n'
                f'unexpected = 0\nfunction response(status, headers, body)\n'
                f'  if status ~= {expected} then unexpected = unexpected + 1 end\nend\n')
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", script,
                          f"http://127.0.0.1:{stack.port}{path}"], capture_output=True, text=True, check=True).stdout
    if "Non-2xx or 3xx responses" in out or "Socket errors" in out:
        sys.exit(f"{stack.name}: {method} {path} had failures:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = seconds(re.search(r"99%\s+(\S+)", out).group(1)) * 1000
    return rps, p99


def spread(values):
    return f"{min(values):>8.0f} {statistics.median(values):>8.0f} {max(values):>8.0f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5, help="length of each load")
    parser.add_argument("--no-build", action="store_true")
    args = parser.parse_args()
    missing = [f"{tool} ({how})" for tool, how in TOOLS.items() if shutil.which(tool) is None]
    try:
        import argon2  # noqa: F401
        import django  # noqa: F401
    except ImportError:
        missing.append("Django and argon2-cffi (pip install django argon2-cffi)")
    if missing:
        print("missing: " + "; ".join(missing) + "\nrun benches/peers/setup.sh", file=sys.stderr)
        sys.exit(2)
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)

    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    with tempfile.TemporaryDirectory() as tmp:
        stacks = []
        try:
            stacks = [start_gatehouse(tmp, env), start_php(tmp), start_django(tmp, env)]
            results = {s.name: {"page": [], "p99": [], "login": []} for s in stacks}
            print(f"peers benchmark — {CORES} cores, {args.rounds} rounds of {args.seconds} s per load, interleaved")
            for n in range(args.rounds):
                for s in stacks:
                    rps, p99 = wrk(s, 64, args.seconds, tmp, cookie=s.session_cookie())
                    cookie, fields = s.login_request()
                    logins, _ = wrk(s, 4 * CORES, args.seconds, tmp, "POST", "/login", cookie,
                                    urllib.parse.urlencode(fields))
                    r = results[s.name]
                    r["page"].append(rps), r["p99"].append(p99), r["login"].append(logins)
                    print(f"  round {n + 1}: {s.name:<18} page {rps:8.0f} req/s (p99 {p99:6.1f} ms)  "
                          f"logins {logins:6.1f}/s", flush=True)
        finally:
            for s in stacks:
                s.stop()

    print(f"\n{'':<20}{'GET /clientarea req/s':>27}  {'p99 ms':>7}  {'POST /login per s':>27}")
    print(f"{'':<20}{'min   median      max':>27}  {'median':>7}  {'min   median      max':>27}")
    for name, r in results.items():
        print(f"{name:<20}{spread(r['page']):>27}  {statistics.median(r['p99']):>7.1f}  {spread(r['login']):>27}")
    ours = results["gatehouse"]
    for name, r in results.items():
        if name == "gatehouse":
            continue
        page = [a / b for a, b in zip(ours["page"], r["page"])]
        login = [a / b for a, b in zip(ours["login"], r["login"])]
        print(f"gatehouse ÷ {name:<18} page {min(page):.2f} / {statistics.median(page):.2f} / {max(page):.2f}×   "
              f"logins {min(login):.2f} / {statistics.median(login):.2f} / {max(login):.2f}×  (min / median / max)")


if __name__ == "__main__":
    main()
