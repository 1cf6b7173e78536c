/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The state directory (default /var/lib/ceredis): what the agent is meant to have in the
 * kernel, so that `ceredisctl verify`, a rollback and a running daemon can all recompile it.
 *
 *   blobs/SHA256       content-addressed copies of the policy and endpoints files applied
 *   applied.json       the current target: a StateRecord naming its blobs, host and netns
 *   pending-TOKEN.json what to go back to if `apply --confirm` is not confirmed in time
 *   rollback.pid       the rollback timer process, while it waits
 *   history.jsonl      one line per apply, confirm, rollback and disable
 *   lock               flock()ed by writers that read-modify-write the directory
 *
 * Every file is replaced by rename(), so readers never see half a record. The confirm/rollback
 * race is decided by rename() too: both sides try to move the same pending file away, and only
 * one can succeed.
 */
#pragma once

#include "ceredis.h"

#include <sys/types.h>

#define STATE_DIR_DEFAULT "/var/lib/ceredis"
#define STATE_APPLIED "applied.json"
#define STATE_ROLLBACK_PID "rollback.pid"
#define STATE_MAX_RECORD (64u * 1024u) /* a record is small; anything bigger is not ours */
#define STATE_MAX_STRING 4096u
#define STATE_TOKEN_LEN 32u /* hex characters of a pending token */

typedef enum StateStatus {
        STATE_STATUS_NONE,     /* nothing applied (a rollback target: remove the tables) */
        STATE_STATUS_APPLIED,  /* the policy below is meant to be in the kernel */
        STATE_STATUS_DISABLED, /* the operator ran `ceredisctl disable`: leave the host open */
} StateStatus;

typedef struct StateRecord {
        StateStatus status;
        char *policy_path;         /* as the operator named it, for messages; NULL with NONE */
        char policy_sha256[65];    /* blob of the policy bytes; "" with NONE */
        char *endpoints_path;      /* NULL: no endpoints file */
        char endpoints_sha256[65]; /* "" without endpoints */
        char *host;                /* NULL: the policy's only host */
        char *netns;               /* NULL: the namespace of whoever applied it */
        uint16_t nflog_group;      /* 0: the default group */
        char *by;                  /* "ceredisctl apply", "ceredis-agent", "rollback", ... */
        char *ts;                  /* RFC 3339 UTC, when it was recorded */
} StateRecord;

int state_record_new(StateStatus status, StateRecord **ret);
void state_record_free(StateRecord *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(StateRecord *, state_record_free);
int state_record_dup(const StateRecord *r, StateRecord **ret);
/* Set a string field (copy, or NULL); -E2BIG past STATE_MAX_STRING. */
int state_record_set(char **field, const char *value);
/* Do two records ask for the same thing in the kernel (status, blobs, host, netns)? */
bool state_record_same_target(const StateRecord *a, const StateRecord *b);

/* Pure: a record to JSON text and back. Parsing refuses unknown status, bad hashes, strings
 * past STATE_MAX_STRING and anything over STATE_MAX_RECORD bytes (-EBADMSG). */
int state_record_format(const StateRecord *r, char **ret);
int state_record_parse(const char *text, size_t size, StateRecord **ret);

const char *state_status_to_string(StateStatus s);

/* Create DIR (0700) and DIR/blobs if missing. */
int state_dir_ensure(const char *dir);
/* Take the directory's writer lock (blocking); *ret_fd holds it until closed. */
int state_lock(const char *dir, int *ret_fd);

/* Read a whole regular file, at most `max` bytes (-EFBIG past it). The buffer is
 * NUL-terminated (not counted in *ret_size). */
int state_read_file(const char *path, size_t max, char **ret, size_t *ret_size);
/* Write `data` to DIR/NAME atomically (temporary file, fsync, rename). */
int state_write_file(const char *dir, const char *name, const void *data, size_t size);

/* sha256 of a buffer as 64 lowercase hex characters. */
int state_sha256_hex(const void *data, size_t size, char ret[65]);
/* Store a copy of `data` as DIR/blobs/SHA256 (once; blobs are immutable). */
int state_blob_store(const char *dir, const void *data, size_t size, char ret_sha256[65]);
int state_blob_path(const char *dir, const char *sha256, char *buf, size_t size);
/* Read a blob back and check that its bytes still hash to its name (-EBADMSG if not). */
int state_blob_read(const char *dir, const char *sha256, size_t max, char **ret, size_t *ret_size);
/* Remove blobs that neither applied.json nor a pending file names. */
int state_blob_gc(const char *dir);

/* DIR/NAME as a record; -ENOENT when there is none. */
int state_record_load(const char *dir, const char *name, StateRecord **ret);
int state_record_save(const char *dir, const char *name, const StateRecord *r);

/* A pending confirmation: DIR/pending-TOKEN.json holds the record to roll back to. At most
 * one exists; state_pending_find() returns its token, or -ENOENT. */
int state_pending_token_new(char ret[STATE_TOKEN_LEN + 1]);
int state_pending_save(const char *dir, const char *token, const StateRecord *previous);
int state_pending_find(const char *dir, char ret_token[STATE_TOKEN_LEN + 1]);
bool state_pending_exists(const char *dir, const char *token);
/* Claim the pending file atomically: exactly one of several concurrent callers gets 0 and
 * the record (when ret_previous is not NULL); the others get -ENOENT. The file is gone
 * afterwards. */
int state_pending_claim(const char *dir, const char *token, StateRecord **ret_previous);

/* Append one JSON line {"ts","event",...record fields,"detail"} to DIR/history.jsonl. */
int state_history_append(const char *dir, const char *event, const StateRecord *r,
                         const char *detail);

/* Write/remove DIR/NAME holding a pid. */
int state_pidfile_write(const char *dir, const char *name, pid_t pid);
int state_pidfile_remove(const char *dir, const char *name);

/* Format a CLOCK_REALTIME time (now when usec is 0) as RFC 3339 UTC, "2026-11-24T23:59:59Z". */
int state_format_ts(uint64_t usec, char *buf, size_t size);
