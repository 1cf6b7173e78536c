/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ceredisctl journal verify: walk the tamper-evident event log offline, oldest file to newest,
 * and name the first altered, removed, reordered or truncated record. Needs only the log and
 * its key, not the daemon, so it also checks copies and quarantined logs.
 */
#include "ceredis.h"

#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>

#include "ctl/ctl.h"
#include "eventlog.h"

static const char usage_text[] = "verify [--state-dir DIR] [--log FILE-or-DIR] [--key FILE] [--json]";

enum {
        ARG_STATE_DIR = 0x100,
        ARG_LOG,
        ARG_KEY,
        ARG_JSON,
        ARG_HELP,
};

static json_t *ts_json(uint64_t usec, bool have) {
        char ts[EVENT_TS_MAX];
        return have && event_ts_format(usec, ts) >= 0 ? json_string(ts) : json_null();
}

static int print_json(const char *path, const EventlogResult *res) {
        json_t *o, *p = json_null();
        bool have = res->n_records > 0;

        if (res->problem != EVENTLOG_INTACT)
                p = json_pack("{s:s, s:s, s:I, s:I, s:s}", "kind", eventlog_problem_to_string(res->problem),
                              "file", res->file, "line", (json_int_t) res->line, "seq", (json_int_t) res->seq,
                              "detail", res->detail);
        o = json_pack("{s:s, s:b, s:I, s:I, s:o, s:o, s:o, s:o, s:b, s:I, s:o}", "log", path, "intact",
                      res->problem == EVENTLOG_INTACT, "records", (json_int_t) res->n_records, "files",
                      (json_int_t) res->n_files, "first_seq", have ? json_integer((json_int_t) res->first_seq) : json_null(),
                      "last_seq", have ? json_integer((json_int_t) res->last_seq) : json_null(), "first_ts",
                      ts_json(res->first_ts_usec, have), "last_ts", ts_json(res->last_ts_usec, have),
                      "head_checked", res->head_checked, "quarantined", (json_int_t) res->n_quarantined,
                      "problem", p);
        if (!o || json_dumpf(o, stdout, JSON_INDENT(2)) < 0) {
                json_decref(o);
                return -ENOMEM;
        }
        putchar('\n');
        json_decref(o);
        return 0;
}

static void print_text(const char *path, const EventlogResult *res) {
        char first[EVENT_TS_MAX] = "?", last[EVENT_TS_MAX] = "?";

        if (res->problem != EVENTLOG_INTACT) {
                if (res->line > 0)
                        printf("%s:%" PRIu64 ": %s\n", res->file, res->line, res->detail);
                else
                        printf("%s: %s\n", res->file, res->detail);
                printf("%s: %s: verified %" PRIu64 " records before the problem\n", path,
                       eventlog_problem_to_string(res->problem), res->n_records);
                return;
        }
        if (res->n_records == 0)
                printf("%s: intact, no records\n", path);
        else {
                (void) event_ts_format(res->first_ts_usec, first);
                (void) event_ts_format(res->last_ts_usec, last);
                printf("%s: intact, %" PRIu64 " records in %u file%s, seq %" PRIu64 "..%" PRIu64 ", %s .. %s\n", path,
                       res->n_records, res->n_files, res->n_files == 1 ? "" : "s", res->first_seq, res->last_seq,
                       first, last);
        }
        if (!res->head_checked)
                printf("note: no head file was checked: records cut off the end cannot be ruled out\n");
        if (res->n_quarantined > 0)
                printf("note: %u quarantined log%s (events.tampered-*) next to it; verify them with --log\n",
                       res->n_quarantined, res->n_quarantined == 1 ? "" : "s");
}

static int journal_verify(int argc, char *argv[]) {
        static const struct option options[] = {
                { "state-dir", required_argument, NULL, ARG_STATE_DIR },
                { "log", required_argument, NULL, ARG_LOG },
                { "key", required_argument, NULL, ARG_KEY },
                { "json", no_argument, NULL, ARG_JSON },
                { "help", no_argument, NULL, ARG_HELP },
                {},
        };
        _cleanup_(eventlog_key_freep) EventlogKey *key = NULL;
        const char *state_dir = EVENTLOG_DIR_DEFAULT, *log = NULL, *key_path = EVENTLOG_KEY_PATH_DEFAULT;
        EventlogResult res = {};
        bool json = false;
        int opt, r;

        optind = 1;
        opterr = 0;
        while ((opt = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (opt) {
                case ARG_STATE_DIR:
                        state_dir = optarg;
                        break;
                case ARG_LOG:
                        log = optarg;
                        break;
                case ARG_KEY:
                        key_path = optarg;
                        break;
                case ARG_JSON:
                        json = true;
                        break;
                case ARG_HELP:
                        printf("Usage: ceredisctl journal %s\n", usage_text);
                        return CTL_EXIT_OK;
                default:
                        fprintf(stderr, "ceredisctl journal verify: unknown option '%s'\nUsage: ceredisctl journal %s\n",
                                argv[optind - 1], usage_text);
                        return CTL_EXIT_ERROR;
                }
        if (optind < argc) {
                fprintf(stderr, "ceredisctl journal verify: unexpected argument '%s'\nUsage: ceredisctl journal %s\n",
                        argv[optind], usage_text);
                return CTL_EXIT_ERROR;
        }
        if (!log)
                log = state_dir;

        r = eventlog_key_load(key_path, false, &key);
        if (r == -EPERM) {
                fprintf(stderr,
                        "ceredisctl journal verify: refusing key %s: it must be owned by root (or you) and "
                        "have no group/other permissions (chmod 0600)\n",
                        key_path);
                return CTL_EXIT_ERROR;
        }
        if (r == -EINVAL) {
                fprintf(stderr, "ceredisctl journal verify: key %s is not a regular file of %u bytes\n", key_path,
                        EVENTLOG_KEY_SIZE);
                return CTL_EXIT_ERROR;
        }
        if (r < 0) {
                fprintf(stderr, "ceredisctl journal verify: cannot read key %s: %s\n", key_path, strerror(-r));
                return CTL_EXIT_ERROR;
        }

        r = eventlog_verify(log, key, &res, NULL, NULL);
        if (r < 0) {
                fprintf(stderr, "ceredisctl journal verify: cannot read %s: %s\n", log, strerror(-r));
                return CTL_EXIT_ERROR;
        }
        if (json) {
                if (print_json(log, &res) < 0) {
                        fprintf(stderr, "ceredisctl journal verify: out of memory\n");
                        return CTL_EXIT_ERROR;
                }
        } else
                print_text(log, &res);
        return res.problem == EVENTLOG_INTACT ? CTL_EXIT_OK : CTL_EXIT_FAIL;
}

int verb_journal(int argc, char *argv[]) {
        if (argc < 2 || streq(argv[1], "--help") || streq(argv[1], "-h")) {
                FILE *f = argc < 2 ? stderr : stdout;
                fprintf(f, "Usage: ceredisctl journal %s\n", usage_text);
                return argc < 2 ? CTL_EXIT_ERROR : CTL_EXIT_OK;
        }
        if (streq(argv[1], "verify"))
                return journal_verify(argc - 1, argv + 1);
        fprintf(stderr, "ceredisctl journal: unknown sub-verb '%s' (expected verify)\n", argv[1]);
        return CTL_EXIT_ERROR;
}
