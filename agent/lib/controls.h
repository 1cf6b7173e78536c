/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The controls engine: from what the probes gathered (the policy, the live ruleset compared
 * with it, the Docker inventory, the listening sockets, the TLS probe, the daemon's settings
 * and the violations and journaled writes of the event log) to one ControlResult per control id of SPEC section 2
 * (NET-1 ... AI-3) plus the CIS Docker Benchmark networking items. Pure: no I/O, so every
 * verdict can be unit-tested from fixtures; a probe that could not run is an input too, and
 * its control becomes `error`, never a silent pass.
 */
#pragma once

#include "ceredis.h"

#include "docker-api.h"
#include "event.h"
#include "policy.h"

#define CONTROLS_MAX_EVIDENCE 256u /* lines per control; more are summarised */
#define CONTROLS_MAX_LINE 512u

typedef enum ControlStatus {
        CONTROL_PASS,
        CONTROL_FAIL,
        CONTROL_MANUAL,
        CONTROL_ERROR,
        _CONTROL_STATUS_MAX,
} ControlStatus;

typedef struct ControlResult {
        char id[32];     /* "NET-1", "CIS-2.1" ... */
        char title[128];
        ControlStatus status;
        char **evidence; /* one sentence each */
        size_t n_evidence;
} ControlResult;

/* A listening socket, as probes/listeners.c reads it from sock_diag. */
typedef struct ControlListener {
        uint8_t proto; /* IPPROTO_TCP or IPPROTO_UDP */
        int family;    /* AF_INET or AF_INET6 */
        uint8_t addr[16];
        uint16_t port;
} ControlListener;

/* What probes/tls.c found on the public entry. */
typedef struct ControlTls {
        char target[128];    /* "203.0.113.10:443 (name vps1.example)" */
        bool ok;             /* handshake done and every check passed */
        char reasons[8][256]; /* one failure reason each */
        size_t n_reasons;
        char protocol[32];   /* "TLSv1.3" */
        char cipher[64];
        char not_after[32];  /* RFC 3339 */
        long days_left;
} ControlTls;

/* What probes/docker.c read from GET /info (CIS section 2). */
typedef struct ControlDockerInfo {
        bool icc_known, icc;                   /* default bridge enable_icc */
        bool iptables_known, iptables;
        bool userland_proxy_known, userland_proxy;
} ControlDockerInfo;

typedef struct ControlInputs {
        const Policy *policy;
        size_t host;                 /* index into policy->hosts */

        /* nft_verify() of the compiled policy in the audited namespace: 0 equal, 1 differs,
         * negative errno when it could not be compared (-ENOENT: nothing applied). */
        int ruleset;
        const char *ruleset_detail;  /* the difference or the reason, may be NULL */

        /* Docker: NULL containers with docker_error set when the socket could not be read. */
        const DockerInventory *containers;
        const ControlDockerInfo *docker_info;
        const DockerNetworks *networks;
        const char *docker_error;

        const ControlListener *listeners;
        size_t n_listeners;
        const char *listeners_error; /* NULL when the sock_diag dump worked */

        const ControlTls *tls;       /* NULL: not probed, see tls_error */
        const char *tls_error;

        const Event *violations;     /* violations of the window, oldest first */
        size_t n_violations;
        const char *violations_error; /* the event log could not be verified/read */
        const char *window;          /* "24h", for evidence */

        /* Journaled writes (EVENT_WRITE) of the window, oldest first; read from the same event
         * log as the violations (violations_error covers both). */
        const Event *writes;
        size_t n_writes;
} ControlInputs;

/* Evaluate every control. *ret is an array of *ret_n results (controls_free_results()). */
int controls_evaluate(const ControlInputs *in, ControlResult **ret, size_t *ret_n);
void controls_free_results(ControlResult *r, size_t n);

/* Is `addr` (family AF_INET/AF_INET6) the wildcard or an address reachable from outside
 * (neither loopback nor link-local)? Pure. */
bool controls_address_public(int family, const uint8_t addr[16]);

const char *control_status_to_string(ControlStatus s);
/* Overall verdict: true when some control failed. */
bool controls_any_failed(const ControlResult *r, size_t n);
