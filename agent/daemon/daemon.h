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

        sd_event *event;
        Reporter *reporter;
        Watch *watch; /* the traffic watcher (watch.c); owned by run() */
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
} Context;

void context_done(Context *c);

/* Load, compile, apply and record the configured policy; open the monitor. Errors are
 * logged; returns the exit code for a failed start (1 policy invalid, 2 other) or 0. */
int enforcer_start(Context *c);
/* Hook the monitor and the timers into c->event; schedule a first verify. */
int enforcer_attach(Context *c);
/* SIGHUP: reload the configured policy, keeping the old one on any error. */
void enforcer_reload(Context *c);
