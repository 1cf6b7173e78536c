/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The audit's probes: each looks at one piece of the live host (listening sockets through
 * sock_diag, the Docker daemon through its socket, the public TLS entry through OpenSSL) and
 * turns what it saw into the inputs of the controls engine (controls.h). The I/O is thin; the
 * decoding of what comes back (netlink messages, Docker JSON, dockerd's settings) is done by
 * pure functions with hard caps, which the unit tests and the fuzzers call directly.
 */
#pragma once

#include "ceredis.h"

#include "controls.h"
#include "docker-api.h"

#define PROBE_MAX_LISTENERS 65536u
#define PROBE_MAX_CMDLINE (128u * 1024u)
#define PROBE_MAX_DAEMON_JSON (1024u * 1024u)
#define PROBE_TLS_WARN_DAYS_DEFAULT 21u

/* --- listeners.c --- */

typedef struct ProbeListeners {
        ControlListener *items;
        size_t n, allocated;
} ProbeListeners;

/* Pure: decode a buffer of sock_diag (inet_diag) answers to a dump of `proto` (IPPROTO_TCP
 * or IPPROTO_UDP), appending listening sockets (TCP LISTEN; UDP unconnected) to `l`.
 * Returns 1 once NLMSG_DONE was seen, 0 when more is to come, -EBADMSG on a malformed
 * message, the kernel's error for NLMSG_ERROR, -E2BIG past PROBE_MAX_LISTENERS. */
int probe_listeners_parse(const void *buf, size_t len, uint8_t proto, ProbeListeners *l);

/* Dump TCP and UDP listeners, IPv4 and IPv6, of the current network namespace. */
int probe_listeners(ProbeListeners *ret);
void probe_listeners_done(ProbeListeners *l);

/* --- docker.c --- */

/* Pure: dockerd's settings from its command line (NUL-separated argv, as in
 * /proc/PID/cmdline) and, when not NULL, its daemon.json; the command line wins, as in
 * dockerd. Unset settings take dockerd's defaults (icc, iptables, userland-proxy all true).
 * -EBADMSG when daemon.json is not a JSON object or a setting is not a boolean. */
int probe_docker_settings_parse(const char *cmdline, size_t cmdline_len, const char *daemon_json,
                                size_t daemon_json_len, ControlDockerInfo *ret);
/* Pure: the --config-file of a command line ("/etc/docker/daemon.json" when absent) into buf. */
int probe_docker_config_path(const char *cmdline, size_t cmdline_len, char *buf, size_t size);

/* Read the containers (GET /containers/json) and dockerd's settings through `url`
 * ("unix:///run/docker.sock"). The daemon's pid comes from SO_PEERCRED on the socket. On
 * failure err says why. `info` may be left with unknown settings when /proc is not readable. */
int probe_docker(const char *url, DockerInventory *ret_inv, ControlDockerInfo *ret_info, char *err,
                 size_t err_size);

/* --- tls.c --- */

/* Connect to `target` ("ADDR:PORT", "[V6]:PORT"), handshake with SNI `name` (may be NULL),
 * verify the chain against `ca_file` (NULL: the system store), the name, TLS >= 1.2, no weak
 * cipher, and an expiry beyond `warn_days`. Every failed check is one reason in ret. A
 * negative return only when nothing could be probed (bad target, connection refused ...),
 * with err set. */
int probe_tls(const char *target, const char *name, const char *ca_file, unsigned warn_days,
              ControlTls *ret, char *err, size_t err_size);
