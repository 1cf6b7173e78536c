/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The daemon's one Context: its configuration, its event loop and everything the enforcement
 * loop keeps between events. No global mutable state lives anywhere else.
 */
#pragma once

#include "ceredis.h"
#include "enforce.h"
#include "nft.h"
#include "report.h"
#include "state.h"
#include "watch.h"

#include <systemd/sd-event.h>

#define DAEMON_VERIFY_COALESCE_USEC (50u * 1000u)      /* a burst of notifications -> one verify */
#define DAEMON_VERIFY_PERIOD_USEC (10u * 1000u * 1000u) /* the backstop verify */
#define DAEMON_REPAIR_WINDOW_USEC (10u * 1000u * 1000u)
#define DAEMON_REPAIR_WINDOW_MAX 20u                    /* repairs per window before we pause */
#define DAEMON_RETRY_MIN_USEC (1000u * 1000u)
#define DAEMON_RETRY_MAX_USEC (60u * 1000u * 1000u)

typedef struct Context {
        /* Configuration (argv or --config), owned. */
        char *policy_path;
        char *endpoints_path;
        char *host;
        char *netns;
        char *state_dir;
        char *eventlog_key; /* the event log's HMAC key (--eventlog-key) */
        char *docker_host;
        uint16_t nflog_group;
        bool foreground;
        /* The reporting sinks (sinks.c): NULL listen means SINKS_METRICS_LISTEN_DEFAULT, ""
         * (`none`) no listener; NULL textfile/Alertmanager: off. */
        char *metrics_listen;
        char *metrics_textfile;
        char *alertmanager_url;
        bool journal_off; /* --journal no */

        sd_event *event;
        Reporter *reporter;
        Watch *watch; /* the traffic watcher (watch.c); owned by run() */
        struct Sinks *sinks; /* the reporting sinks (sinks.c); owned by run(), may be NULL */
        struct Docker *docker; /* the Docker client (docker.c); NULL without Docker mode */
        Nft *nft;     /* requests: apply, verify */
        Nft *monitor; /* NFNLGRP_NFTABLES notifications */
        sd_event_source *monitor_source;
        sd_event_source *verify_source; /* one-shot, coalesces bursts */
        sd_event_source *periodic_source;

        EnforceTarget target; /* what must be in the kernel */
        StateRecord *record;  /* the last applied.json we acted on */
        bool disabled;        /* the operator ran `ceredisctl disable`: do not repair */
        bool state_error_reported;

        /* Repair guard: a rate limit per window and a backoff after failures. */
        uint64_t window_start;
        unsigned window_repairs;
        bool deferred_reported;
        unsigned repair_failures;
        uint64_t next_repair; /* CLOCK_MONOTONIC usec; 0: now */
        unsigned repairs_total;

        /* The D-Bus API (bus.c); NULL when the system bus is not reachable. */
        struct Bus *bus;
} Context;

void context_done(Context *c);

/* Load, compile, apply and record the configured policy; open the monitor. Errors are
 * logged; returns the exit code for a failed start (1 policy invalid, 2 other) or 0. */
int enforcer_start(Context *c);
/* Hook the monitor and the timers into c->event; schedule a first verify. */
int enforcer_attach(Context *c);
/* SIGHUP or D-Bus Reload: reload the configured policy, keeping the old one on any error
 * (then *ret_stage and err, both optional, say why). */
int enforcer_reload(Context *c, EnforceStage *ret_stage, char *err, size_t err_size);
/* D-Bus Apply: install another policy file like a reload; with a token, keep the record it
 * replaces as pending-TOKEN.json (the caller arms the rollback). -EBUSY while another apply
 * waits for confirmation. */
int enforcer_apply(Context *c, const char *policy_path, const char *token, EnforceStage *ret_stage,
                   char *err, size_t err_size);
/* Follow the state directory (and verify the kernel) on the next loop iteration. */
void enforcer_verify_soon(Context *c);
