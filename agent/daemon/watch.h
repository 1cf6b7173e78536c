/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The traffic watcher of the daemon: libpcap handles (the Docker bridges, the ruleset's NFLOG
 * group) as I/O sources of the daemon's one sd-event loop, feeding decode -> flows -> classify;
 * violations go to the tamper-evident event log (flushed once per loop iteration that produced
 * any), out as JSON lines through the Reporter and to the reporting sinks (sinks.h, which
 * only copy them). In enforce mode an L7 violation on a flow the ruleset allows is contained
 * at once (nft_contain). Nothing here blocks enforcement: a capture that fails is reported and
 * retried, never fatal.
 */
#pragma once

#include "ceredis.h"

#include <systemd/sd-event.h>

#include "nft.h"
#include "policy.h"
#include "report.h"
#include "ruleset.h"

#define WATCH_TICK_USEC (250u * 1000u)                 /* aggregation windows, expiry, stats */
#define WATCH_RESCAN_USEC (5u * 1000u * 1000u)         /* look for new Docker bridges */
#define WATCH_CONTAIN_TIMEOUT_SEC 3600u                /* how long a contained flow stays cut */
#define WATCH_DISPATCH_BUDGET 8192                     /* packets per wakeup before yielding */

typedef struct Watch Watch;

typedef struct WatchConfig {
        sd_event *event;
        Reporter *reporter;    /* may be NULL */
        struct Sinks *sinks;   /* the reporting sinks; may be NULL */
        Nft *nft;              /* for containment; NULL: never contain */
        const char *state_dir; /* the event log lives here */
        const char *key_path;  /* its HMAC key, created 0600 if missing */
        const char *host;      /* copied into every event */
        uint16_t nflog_group;  /* 0: RULESET_NFLOG_GROUP_DEFAULT */
        /* Called with each violation event (JSON, not stolen), e.g. for the D-Bus signal. */
        void (*on_violation)(const json_t *event, void *userdata);
        void *userdata;
} WatchConfig;

/* Open the event log (creating its key if missing) and the captures. Logs what fails; a
 * capture that cannot open is not fatal, the event log is (-errno). */
int watch_new(const WatchConfig *cfg, Watch **ret);
void watch_free(Watch *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(Watch *, watch_free);

/* Load the policy (and the static endpoints file, may be NULL) the watcher judges with.
 * On failure the previous ones stay. */
int watch_load(Watch *w, const char *policy_path, const char *endpoints_path);
/* Take the policy (stolen) and rebuild the filters and the service map. */
int watch_set_policy(Watch *w, Policy *p);
/* The services' current addresses changed (Docker): rebuild the address -> service map from
 * the same Endpoints the enforcer compiles with. Flows are decided again. */
int watch_set_endpoints(Watch *w, const Endpoints *e);
int watch_set_host(Watch *w, const char *host);

typedef struct WatchStats {
        uint64_t packets;    /* decoded, all captures */
        uint64_t violations; /* verdicts, before aggregation */
        uint64_t writes;     /* journaled writes to evaluation stores, before aggregation */
        uint64_t events;     /* events written */
        uint64_t dropped;    /* kernel drops, all captures */
        uint64_t contained;
} WatchStats;

void watch_stats(const Watch *w, WatchStats *ret);
