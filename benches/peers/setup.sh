#!/bin/sh
# The peers of benches/peers/run.py, from Debian's packages and PyPI (run as root).
set -eu
apt-get install -y php-fpm php-sqlite3 nginx-light wrk
pip install django argon2-cffi gunicorn
