/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The tamper-evident event log: append-only JSON lines chained with HMAC-SHA256.
 *
 * Files, in one directory (default the state dir /var/lib/ceredis):
 *   events.jsonl        the active file; events.jsonl.1 ... .N the rotated ones (N oldest)
 *   events.head         the chain head: first retained seq, last durable seq and its MAC,
 *                       MAC'ed too; replaced by rename() after every flush
 *
 * A record is one line:
 *   {"seq":N,"prev":"<hex MAC of record N-1>","event":{...},"mac":"<hex>"}\n
 * and its MAC is HMAC-SHA256(key, the exact bytes of the line before `,"mac":"`). The line
 * ends with a fixed 74-byte suffix (`,"mac":"` 64 hex `"}`), so the MAC'ed bytes are found by
 * position, never by re-serialising JSON. The first record ever has prev = 64 zeros; seq grows
 * by exactly one across rotations, and a rotated file's successor starts with its last MAC.
 *
 * The head file is what catches what a chain alone cannot: whole records cut off the end
 * (last seq below the head's) and the oldest file deleted (first seq above the head's). It is
 * written after the log is fsync'd, so the log may run ahead of it after a crash, never behind.
 * At open, a bad line after the head's record is a torn write and is cut off; a bad line at or
 * before it is tampering, and open fails with -EBADMSG (see eventlog_quarantine()).
 *
 * Limits: whoever holds the key can rewrite everything; deleting every file including the head
 * looks like a fresh log, and restoring an older consistent copy of the whole directory is not
 * detectable locally. Export the head (journal, signed reports) to anchor it elsewhere.
 */
#pragma once

#include "ceredis.h"

#include "event.h"

#define EVENTLOG_DIR_DEFAULT "/var/lib/ceredis" /* the state dir */
#define EVENTLOG_KEY_PATH_DEFAULT "/etc/ceredis/eventlog.key"
#define EVENTLOG_FILE "events.jsonl"
#define EVENTLOG_HEAD "events.head"
#define EVENTLOG_KEY_SIZE 32u
#define EVENTLOG_MAC_SIZE 32u
#define EVENTLOG_MAC_HEX (2u * EVENTLOG_MAC_SIZE)

/* A line, newline included. Every Event fits (EVENT_MAX_JSON plus the envelope), so a hostile
 * packet can never make its own violation unloggable. */
#define EVENTLOG_MAX_LINE (16u * 1024u)
#define EVENTLOG_MAX_BATCH (1024u * 1024u) /* buffered bytes before append flushes by itself */
#define EVENTLOG_MAX_FILE_DEFAULT (16u * 1024u * 1024u)
#define EVENTLOG_KEEP_DEFAULT 8u
#define EVENTLOG_MAX_KEEP 1000u

typedef struct EventlogKey EventlogKey;

/* Load the 32-byte key at `path`. It must be a regular file owned by root or the caller with
 * no group/other permission bits (-EPERM otherwise; -EINVAL if not a regular file or not 32
 * bytes). With `create`, a missing key is made with RAND_bytes, 0600, O_EXCL. */
int eventlog_key_load(const char *path, bool create, EventlogKey **ret);
int eventlog_key_from_bytes(const void *bytes, size_t size, EventlogKey **ret);
/* Wipes the key. Accepts NULL. */
void eventlog_key_free(EventlogKey *k);
DEFINE_TRIVIAL_CLEANUP_FUNC(EventlogKey *, eventlog_key_free);

/* HMAC-SHA256 of a buffer. */
int eventlog_mac(const EventlogKey *k, const void *data, size_t size, uint8_t ret[EVENTLOG_MAC_SIZE]);

typedef enum EventlogProblem {
        EVENTLOG_INTACT,
        EVENTLOG_ALTERED,   /* a MAC does not match, or a line is not a record */
        EVENTLOG_REMOVED,   /* a seq gap or a broken prev link: records are missing */
        EVENTLOG_REORDERED, /* seq goes backwards or repeats */
        EVENTLOG_TRUNCATED, /* a cut last line, or fewer records than the head says */
} EventlogProblem;

const char *eventlog_problem_to_string(EventlogProblem p);

/* What a verification found. The first problem only; counters cover what was read before. */
typedef struct EventlogResult {
        EventlogProblem problem;
        char file[256];     /* file name of the problem (as opened, relative to the dir) */
        uint64_t line;      /* 1-based line of the problem in that file */
        uint64_t seq;       /* seq of the record concerned (the expected one if unreadable) */
        char detail[256];   /* one sentence, e.g. "records seq 5..7 removed" */

        uint64_t n_records; /* records verified */
        uint64_t first_seq, last_seq;
        uint64_t first_ts_usec, last_ts_usec;
        unsigned n_files;
        bool head_checked;  /* false when there was no head file to compare with */
        unsigned n_quarantined; /* events.tampered-* directories next to the log */
} EventlogResult;

/* Where a chain stands: the last accepted record. */
typedef struct EventlogChain {
        bool started;       /* false: the next record starts the chain (its prev is taken) */
        uint64_t seq;
        uint8_t mac[EVENTLOG_MAC_SIZE];
        uint64_t first_seq; /* with !started: the first record may not start later than this
                             * (0 = no limit); seq 1 must always link to 64 zeros */
} EventlogChain;

/* A record as read back. */
typedef struct EventlogRecord {
        uint64_t seq;
        uint8_t prev[EVENTLOG_MAC_SIZE];
        uint8_t mac[EVENTLOG_MAC_SIZE];
        Event event;
} EventlogRecord;

/* Pure: authenticate and decode one line (without its newline). -EBADMSG if the MAC does not
 * match or the line is not a well-formed record; -E2BIG past EVENTLOG_MAX_LINE. */
int eventlog_record_parse(const EventlogKey *k, const char *line, size_t len, EventlogRecord *ret);

/* Called for every record accepted by a walk; a negative return stops it with that error. */
typedef int (*EventlogRecordFn)(const EventlogRecord *rec, void *userdata);

/* Pure: verify a buffer of lines continuing `chain` (updated as records are accepted). The
 * first problem lands in *res (file named `name`); returns 0 whether intact or not, negative
 * only if the callback failed or memory ran out. */
int eventlog_verify_buffer(const EventlogKey *k, const void *data, size_t size, const char *name,
                           EventlogChain *chain, EventlogResult *res, EventlogRecordFn fn, void *userdata);

/* Verify a log directory oldest to newest, then against its head file; or, if `path` is a
 * regular file, that file alone (no head: whole trailing records cannot be checked). Streams
 * with a capped line buffer. Returns 0 with res->problem set (EVENTLOG_INTACT or the first
 * problem), or a negative errno if the log could not be read at all. `fn` may be NULL. */
int eventlog_verify(const char *path, const EventlogKey *k, EventlogResult *res, EventlogRecordFn fn,
                    void *userdata);

typedef struct EventlogOptions {
        uint64_t max_file_size; /* rotate past this; 0 = EVENTLOG_MAX_FILE_DEFAULT */
        unsigned keep;          /* rotated files kept; 0 = EVENTLOG_KEEP_DEFAULT */
} EventlogOptions;

typedef struct EventLog EventLog;

/* Open (creating dir 0700 and the files if missing) the log in `dir` for appending. Takes an
 * exclusive flock on the directory (-EBUSY if another writer holds it). Checks the active file
 * against the head: a torn tail after the last durable record is cut off (see
 * eventlog_recovered_bytes()); anything else wrong is -EBADMSG with `problem` (may be NULL)
 * filled in. The key is copied. */
int eventlog_open(const char *dir, const EventlogKey *k, const EventlogOptions *opts,
                  EventlogResult *problem, EventLog **ret);
/* Flushes what it can, then closes. Accepts NULL. */
void eventlog_close(EventLog *log);
DEFINE_TRIVIAL_CLEANUP_FUNC(EventLog *, eventlog_close);

/* Bytes of torn tail cut off at open (0 if none): log an EVENT_EVENTLOG_RECOVERED about it. */
uint64_t eventlog_recovered_bytes(const EventLog *log);
/* Seq of the last record appended (buffered or not); 0 before the first. */
uint64_t eventlog_last_seq(const EventLog *log);

/* Chain and buffer one event. -E2BIG if its line would exceed EVENTLOG_MAX_LINE (cannot
 * happen for an Event made by event_init() + EVENT_SET()). Flushes by itself when the batch
 * buffer is full. */
int eventlog_append(EventLog *log, const Event *e);
/* Write the buffered batch (one write() when possible), fsync, update the head, rotate if
 * the file grew past its size. On failure the batch stays buffered for the next call and the
 * file is cut back to its last complete record. */
int eventlog_flush(EventLog *log);

/* Move every log file and the head of `dir` into a new directory dir/events.tampered-<UTC>,
 * fsync'd, so that eventlog_open() can start a fresh chain while the evidence stays verifiable
 * (`ceredisctl journal verify --log DIR/events.tampered-...`). *ret_name (may be NULL) gets
 * the new directory's name. Nothing is deleted. */
int eventlog_quarantine(const char *dir, char **ret_name);
