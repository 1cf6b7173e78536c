/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The daemon's output edge: one JSON line per event on a file descriptor (stdout for now;
 * reporting sinks come later), and human log lines on stderr. Emitting never blocks the
 * enforcement loop: lines go out when the fd is writable, through a capped queue that drops
 * (and later says how many it dropped) rather than grows.
 */
#pragma once

#include "ceredis.h"

#include <jansson.h>
#include <systemd/sd-event.h>

#define REPORT_QUEUE_MAX (1024u * 1024u) /* bytes of pending lines before we drop */

typedef struct Reporter Reporter;

/* `host` is copied into every event. */
int reporter_new(sd_event *e, int fd, const char *host, Reporter **ret);
void reporter_free(Reporter *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(Reporter *, reporter_free);
int reporter_set_host(Reporter *r, const char *host);

/* Emit {"ts","host","event",...fields}. Steals `fields` (a JSON object, or NULL). */
int reporter_emit(Reporter *r, const char *event, json_t *fields);
/* Write out what is queued, once, without waiting (at exit). */
void reporter_flush(Reporter *r);

/* Log a line on stderr, with a journald priority prefix when stderr is the journal. */
void log_full(int priority, const char *fmt, ...) _printf_(2, 3);
#define log_info(...) log_full(6, __VA_ARGS__)
#define log_warning(...) log_full(4, __VA_ARGS__)
#define log_error(...) log_full(3, __VA_ARGS__)
