#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# A small HTTP stand-in for a service of the stack: busybox httpd on the service's port, whose
# pages say which service answered ("ceredis-testbed service=NAME") at /, /api/ and /health,
# and whose /cgi-bin/echo answers any method (a POST is a write for the L7 decoders).
# Usage: standin.sh NAME PORT
set -eu
name=$1
port=$2
www=/tmp/www
mkdir -p "$www/api" "$www/cgi-bin"
printf 'ceredis-testbed service=%s\n' "$name" >"$www/index.html"
cp "$www/index.html" "$www/api/index.html"
cp "$www/index.html" "$www/health"
cat >"$www/cgi-bin/echo" <<CGI
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
printf 'ceredis-testbed service=%s method=%s\n' '$name' "\$REQUEST_METHOD"
CGI
chmod 0755 "$www/cgi-bin/echo"
exec busybox httpd -f -p "$port" -h "$www"
