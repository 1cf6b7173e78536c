/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ceredisctl apply, confirm, verify, disable: the enforcement verbs, working offline against
 * the kernel and the state directory (state.h). `apply --confirm SECONDS` leaves a detached
 * timer process behind that restores the previous state unless `confirm` claims the pending
 * file first; the two race on one rename(), so exactly one of them wins.
 */
#include "ceredis.h"

#include "ctl/ctl.h"
#include "enforce.h"
#include "netns.h"
#include "nft.h"
#include "state.h"

#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <jansson.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-journal.h>
#include <time.h>

#define CONFIRM_MAX_SECONDS 86400u
#define ROLLBACK_POLL_USEC (200u * 1000u) /* how soon the timer notices a confirm */

typedef struct CtlArgs {
        const char *file;
        const char *host;
        const char *netns;
        const char *endpoints;
        const char *state_dir;
        unsigned confirm; /* seconds; 0: no confirmation */
        bool json;
} CtlArgs;

enum {
        ARG_HOST = 0x100,
        ARG_NETNS,
        ARG_ENDPOINTS,
        ARG_CONFIRM,
        ARG_STATE_DIR,
        ARG_JSON,
        ARG_HELP,
};

/* `allowed` lists the options a verb takes, as "host netns ..." words. */
static int parse_args(const char *verb, const char *usage, const char *allowed, bool want_file,
                      int argc, char *argv[], CtlArgs *ret) {
        static const struct option all[] = {
                { "host", required_argument, NULL, ARG_HOST },
                { "netns", required_argument, NULL, ARG_NETNS },
                { "endpoints", required_argument, NULL, ARG_ENDPOINTS },
                { "confirm", required_argument, NULL, ARG_CONFIRM },
                { "state-dir", required_argument, NULL, ARG_STATE_DIR },
                { "json", no_argument, NULL, ARG_JSON },
                { "help", no_argument, NULL, ARG_HELP },
                {},
        };
        CtlArgs a = { .state_dir = STATE_DIR_DEFAULT };
        int opt;

        optind = 1;
        opterr = 0;
        while ((opt = getopt_long(argc, argv, "", all, NULL)) >= 0) {
                const char *name = opt >= ARG_HOST && opt <= ARG_HELP ? all[opt - ARG_HOST].name : NULL;
                char *end;

                if (opt == ARG_HELP) {
                        printf("Usage: ceredisctl %s %s\n", verb, usage);
                        return 1;
                }
                if (!name || !strstr(allowed, name)) {
                        fprintf(stderr, "ceredisctl %s: unknown option '%s'\nUsage: ceredisctl %s %s\n",
                                verb, argv[optind - 1], verb, usage);
                        return -EINVAL;
                }
                switch (opt) {
                case ARG_HOST:
                        a.host = optarg;
                        break;
                case ARG_NETNS:
                        a.netns = optarg;
                        break;
                case ARG_ENDPOINTS:
                        a.endpoints = optarg;
                        break;
                case ARG_STATE_DIR:
                        a.state_dir = optarg;
                        break;
                case ARG_JSON:
                        a.json = true;
                        break;
                case ARG_CONFIRM: {
                        unsigned long v;
                        errno = 0;
                        v = strtoul(optarg, &end, 10);
                        if (errno || end == optarg || *end || v == 0 || v > CONFIRM_MAX_SECONDS) {
                                fprintf(stderr, "ceredisctl %s: --confirm expects seconds (1-%u), "
                                        "not '%s'\n", verb, CONFIRM_MAX_SECONDS, optarg);
                                return -EINVAL;
                        }
                        a.confirm = (unsigned) v;
                        break;
                }
                }
        }
        if (want_file) {
                if (optind >= argc) {
                        fprintf(stderr, "ceredisctl %s: missing FILE\nUsage: ceredisctl %s %s\n",
                                verb, verb, usage);
                        return -EINVAL;
                }
                a.file = argv[optind++];
        }
        if (optind < argc) {
                fprintf(stderr, "ceredisctl %s: unexpected argument '%s'\n", verb, argv[optind]);
                return -EINVAL;
        }
        *ret = a;
        return 0;
}

static int lock_state(const char *verb, const char *dir, int *ret_fd) {
        int k;

        k = state_dir_ensure(dir);
        if (k >= 0)
                k = state_lock(dir, ret_fd);
        if (k < 0)
                fprintf(stderr, "ceredisctl %s: state directory %s: %s\n", verb, dir, strerror(-k));
        return k;
}

/* Make `r` (an earlier record) the live state again: its ruleset in one batch, or no tables
 * when nothing was applied or the rules were disabled. Records it as applied.json. */
static int restore_record(const char *dir, const StateRecord *r, char *err, size_t err_size) {
        _cleanup_(nft_closep) Nft *n = NULL;
        _cleanup_(state_record_freep) StateRecord *now = NULL;
        EnforceTarget t = {};
        EnforceStage stage;
        NftError nerr = {};
        char ts[32];
        int k;

        k = nft_open(&n);
        if (k < 0) {
                snprintf(err, err_size, "cannot open nf_tables: %s", strerror(-k));
                return k;
        }
        k = state_record_dup(r, &now);
        if (k >= 0)
                k = state_record_set(&now->by, "rollback");
        if (k >= 0 && state_format_ts(0, ts, sizeof(ts)) >= 0)
                k = state_record_set(&now->ts, ts);
        if (k < 0) {
                snprintf(err, err_size, "%s", strerror(-k));
                return k;
        }
        if (r->status == STATE_STATUS_APPLIED) {
                k = enforce_compile_record(dir, r, &t, &stage, err, err_size);
                if (k < 0)
                        return k;
                k = state_record_save(dir, STATE_APPLIED, now);
                if (k >= 0) {
                        k = nft_apply(n, t.ruleset, &nerr);
                        if (k < 0)
                                enforce_format_nft_error(r->policy_path, k, &nerr, err, err_size);
                }
                enforce_target_done(&t);
                return k;
        }
        k = state_record_save(dir, STATE_APPLIED, now);
        if (k >= 0) {
                k = nft_disable(n);
                if (k < 0)
                        snprintf(err, err_size, "cannot remove the agent's tables: %s", strerror(-k));
        }
        return k;
}

/* The rollback timer: runs in a detached grandchild of `apply --confirm`. */
static _Noreturn void rollback_timer(const char *dir, const char *token, unsigned seconds) {
        _cleanup_(state_record_freep) StateRecord *previous = NULL;
        _cleanup_close_ int lock = -1;
        struct timespec start, now;
        char err[1024] = "";
        int fd, k;

        fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (fd >= 0) {
                (void) dup2(fd, STDIN_FILENO);
                (void) dup2(fd, STDOUT_FILENO);
                (void) dup2(fd, STDERR_FILENO);
                close(fd);
        }
        (void) state_pidfile_write(dir, STATE_ROLLBACK_PID, getpid());
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
                uint64_t elapsed;
                struct timespec nap = { 0, ROLLBACK_POLL_USEC * 1000 };

                /* Confirmed, disabled or replaced: nothing left for us to do. */
                if (!state_pending_exists(dir, token))
                        goto done;
                clock_gettime(CLOCK_MONOTONIC, &now);
                elapsed = (uint64_t) (now.tv_sec - start.tv_sec) * 1000000u +
                          (uint64_t) (now.tv_nsec - start.tv_nsec) / 1000;
                if (elapsed >= (uint64_t) seconds * 1000000u)
                        break;
                if ((uint64_t) seconds * 1000000u - elapsed < ROLLBACK_POLL_USEC)
                        nap.tv_nsec = (long) ((uint64_t) seconds * 1000000u - elapsed) * 1000;
                (void) nanosleep(&nap, NULL);
        }
        if (state_lock(dir, &lock) < 0)
                goto done;
        k = state_pending_claim(dir, token, &previous);
        if (k < 0)
                goto done; /* confirm won the race */
        k = restore_record(dir, previous, err, sizeof(err));
        if (k < 0) {
                (void) state_history_append(dir, "rollback-failed", previous, err);
                sd_journal_print(3, "ceredisctl: rollback after an unconfirmed apply FAILED: %s", err);
        } else {
                (void) state_history_append(dir, "rollback", previous, "not confirmed in time");
                sd_journal_print(4, "ceredisctl: apply not confirmed within %us: rolled back to %s",
                                 seconds, previous->status == STATE_STATUS_APPLIED && previous->policy_path
                                                  ? previous->policy_path
                                                  : "no ruleset");
                (void) state_blob_gc(dir);
        }
done:
        (void) state_pidfile_remove(dir, STATE_ROLLBACK_PID);
        _exit(0);
}

/* Double fork + setsid: the timer outlives us and our terminal, and is nobody's child. */
static int spawn_rollback_timer(const char *dir, const char *token, unsigned seconds, int lock_fd) {
        pid_t pid;
        int status;

        fflush(NULL);
        pid = fork();
        if (pid < 0)
                return negative_errno();
        if (pid == 0) {
                /* The lock belongs to the open file description we share: let go of it. */
                close(lock_fd);
                if (setsid() < 0)
                        _exit(1);
                pid = fork();
                if (pid < 0)
                        _exit(1);
                if (pid == 0)
                        rollback_timer(dir, token, seconds);
                _exit(0);
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return negative_errno();
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -ECHILD;
}

int verb_apply(int argc, char *argv[]) {
        _cleanup_(nft_closep) Nft *n = NULL;
        _cleanup_(state_record_freep) StateRecord *rec = NULL, *previous = NULL;
        _cleanup_close_ int lock = -1;
        EnforceTarget t = {};
        EnforceStage stage = ENFORCE_STAGE_IO;
        NftError nerr = {};
        CtlArgs a;
        char err[1024], ts[32], token[STATE_TOKEN_LEN + 1] = "";
        bool had_applied;
        int k, ret = CTL_EXIT_ERROR;

        k = parse_args("apply", "FILE [--host NAME] [--netns NAME] [--endpoints FILE] "
                       "[--confirm SECONDS] [--state-dir DIR] [--json]",
                       "host netns endpoints confirm state-dir json", true, argc, argv, &a);
        if (k != 0)
                return k > 0 ? CTL_EXIT_OK : CTL_EXIT_ERROR;
        if (lock_state("apply", a.state_dir, &lock) < 0)
                return CTL_EXIT_ERROR;
        if (state_pending_find(a.state_dir, token) >= 0) {
                fprintf(stderr, "ceredisctl apply: an earlier apply is waiting for confirmation; "
                        "run `ceredisctl confirm` (or let it roll back) first\n");
                return CTL_EXIT_ERROR;
        }
        token[0] = 0;

        k = enforce_compile_files(a.file, a.endpoints, a.host, 0, a.state_dir, &t, &rec, &stage,
                                  err, sizeof(err));
        if (k < 0) {
                fprintf(stderr, "%s\n", err);
                return stage == ENFORCE_STAGE_POLICY ? CTL_EXIT_FAIL : CTL_EXIT_ERROR;
        }
        (void) state_format_ts(0, ts, sizeof(ts));
        if (state_record_set(&rec->netns, a.netns) < 0 ||
            state_record_set(&rec->by, "ceredisctl apply") < 0 ||
            state_record_set(&rec->ts, ts) < 0) {
                fprintf(stderr, "ceredisctl apply: %s\n", strerror(ENOMEM));
                goto finish;
        }

        k = ctl_open_kernel("apply", a.netns, &n);
        if (k < 0)
                goto finish;
        k = netns_bridge_nf_enable();
        if (k < 0)
                fprintf(stderr, "ceredisctl apply: warning: cannot make bridged traffic traverse "
                        "netfilter (%s): traffic within one bridge is not filtered\n", strerror(-k));

        k = state_record_load(a.state_dir, STATE_APPLIED, &previous);
        had_applied = k >= 0;
        if (k == -ENOENT)
                k = state_record_new(STATE_STATUS_NONE, &previous);
        if (k < 0 && a.confirm) {
                fprintf(stderr, "ceredisctl apply: cannot read %s/%s (%s): without it there is "
                        "nothing to roll back to\n", a.state_dir, STATE_APPLIED, strerror(-k));
                goto finish;
        }
        if (a.confirm) {
                k = state_pending_token_new(token);
                if (k >= 0)
                        k = state_pending_save(a.state_dir, token, previous);
                if (k < 0) {
                        fprintf(stderr, "ceredisctl apply: cannot record the rollback state: %s\n",
                                strerror(-k));
                        goto finish;
                }
        }
        /* The record goes first so that a running agent follows this apply, not fights it. */
        k = state_record_save(a.state_dir, STATE_APPLIED, rec);
        if (k >= 0) {
                k = nft_apply(n, t.ruleset, &nerr);
                if (k < 0) {
                        enforce_format_nft_error(a.file, k, &nerr, err, sizeof(err));
                        fprintf(stderr, "%s\nceredisctl apply: nothing changed, the previous ruleset "
                                "is still in place\n", err);
                }
        } else
                fprintf(stderr, "ceredisctl apply: cannot record %s/%s: %s\n", a.state_dir,
                        STATE_APPLIED, strerror(-k));
        if (k < 0) {
                char path[PATH_MAX];
                if (had_applied)
                        (void) state_record_save(a.state_dir, STATE_APPLIED, previous);
                else if ((size_t) snprintf(path, sizeof(path), "%s/%s", a.state_dir,
                                           STATE_APPLIED) < sizeof(path))
                        (void) unlink(path);
                if (token[0])
                        (void) state_pending_claim(a.state_dir, token, NULL);
                goto finish;
        }
        (void) state_history_append(a.state_dir, "apply", rec,
                                    a.confirm ? "waiting for confirmation" : NULL);

        if (a.confirm) {
                k = spawn_rollback_timer(a.state_dir, token, a.confirm, lock);
                if (k < 0) {
                        /* Without a timer nobody would roll back: do it now, loudly. */
                        fprintf(stderr, "ceredisctl apply: cannot start the rollback timer (%s); "
                                "rolling back now\n", strerror(-k));
                        _cleanup_(state_record_freep) StateRecord *back = NULL;
                        if (state_pending_claim(a.state_dir, token, &back) >= 0 &&
                            restore_record(a.state_dir, back, err, sizeof(err)) < 0)
                                fprintf(stderr, "ceredisctl apply: rollback failed: %s\n", err);
                        goto finish;
                }
        }
        (void) state_blob_gc(a.state_dir);

        if (a.json)
                ctl_json_print(json_pack("{s:s, s:s, s:s, s:s*, s:b, s:i}", "status", "applied", "policy", a.file,
                                     "policy_sha256", t.sha256, "host", t.host, "confirm",
                                     a.confirm > 0, "rollback_in", (int) a.confirm));
        else if (a.confirm)
                printf("applied %s (sha256 %.12s); it rolls back in %us unless you run "
                       "`ceredisctl confirm`\n", a.file, t.sha256, a.confirm);
        else
                printf("applied %s (sha256 %.12s)\n", a.file, t.sha256);
        ret = CTL_EXIT_OK;
finish:
        enforce_target_done(&t);
        return ret;
}

int verb_confirm(int argc, char *argv[]) {
        _cleanup_(state_record_freep) StateRecord *previous = NULL, *applied = NULL;
        _cleanup_close_ int lock = -1;
        char token[STATE_TOKEN_LEN + 1];
        CtlArgs a;
        int k;

        k = parse_args("confirm", "[--state-dir DIR] [--json]", "state-dir json", false, argc,
                       argv, &a);
        if (k != 0)
                return k > 0 ? CTL_EXIT_OK : CTL_EXIT_ERROR;
        if (lock_state("confirm", a.state_dir, &lock) < 0)
                return CTL_EXIT_ERROR;
        k = state_pending_find(a.state_dir, token);
        if (k >= 0)
                k = state_pending_claim(a.state_dir, token, &previous);
        if (k == -ENOENT) {
                fprintf(stderr, "ceredisctl confirm: nothing to confirm: no apply is waiting for "
                        "confirmation (it may have been rolled back already)\n");
                if (a.json)
                        ctl_json_print(json_pack("{s:s}", "status", "nothing-pending"));
                return CTL_EXIT_FAIL;
        }
        if (k < 0 && k != -EBADMSG) {
                fprintf(stderr, "ceredisctl confirm: %s: %s\n", a.state_dir, strerror(-k));
                return CTL_EXIT_ERROR;
        }
        /* Claimed (even a damaged pending file): the rollback can no longer happen. */
        (void) state_record_load(a.state_dir, STATE_APPLIED, &applied);
        (void) state_history_append(a.state_dir, "confirm", applied, NULL);
        (void) state_blob_gc(a.state_dir);
        if (a.json)
                ctl_json_print(json_pack("{s:s, s:s*}", "status", "confirmed", "policy",
                                     applied ? applied->policy_path : NULL));
        else
                printf("confirmed: %s stays applied\n",
                       applied && applied->policy_path ? applied->policy_path : "the ruleset");
        return CTL_EXIT_OK;
}

int verb_verify(int argc, char *argv[]) {
        _cleanup_(nft_closep) Nft *n = NULL;
        _cleanup_(state_record_freep) StateRecord *rec = NULL;
        _cleanup_free_ char *diff = NULL;
        EnforceTarget t = {};
        EnforceStage stage;
        CtlArgs a;
        char err[1024];
        int k, ret = CTL_EXIT_ERROR;

        k = parse_args("verify", "[--netns NAME] [--state-dir DIR] [--json]",
                       "netns state-dir json", false, argc, argv, &a);
        if (k != 0)
                return k > 0 ? CTL_EXIT_OK : CTL_EXIT_ERROR;
        k = state_record_load(a.state_dir, STATE_APPLIED, &rec);
        if (k == -ENOENT || (k >= 0 && rec->status != STATE_STATUS_APPLIED)) {
                fprintf(stderr, "ceredisctl verify: nothing applied (%s/%s %s): nothing to "
                        "verify against\n", a.state_dir, STATE_APPLIED,
                        k < 0 ? "does not exist" : k >= 0 && rec->status == STATE_STATUS_DISABLED
                                                           ? "says the rules were disabled"
                                                           : "says nothing is applied");
                if (a.json)
                        ctl_json_print(json_pack("{s:s}", "status", "nothing-applied"));
                return CTL_EXIT_ERROR;
        }
        if (k < 0) {
                fprintf(stderr, "ceredisctl verify: %s/%s: %s\n", a.state_dir, STATE_APPLIED,
                        k == -EBADMSG ? "not a valid state record" : strerror(-k));
                return CTL_EXIT_ERROR;
        }
        k = enforce_compile_record(a.state_dir, rec, &t, &stage, err, sizeof(err));
        if (k < 0) {
                fprintf(stderr, "ceredisctl verify: %s\n", err);
                return CTL_EXIT_ERROR;
        }
        k = ctl_open_kernel("verify", a.netns ? a.netns : rec->netns, &n);
        if (k < 0)
                goto finish;
        k = nft_verify(n, t.ruleset, &diff);
        if (k < 0) {
                fprintf(stderr, "ceredisctl verify: cannot read the live ruleset: %s\n", strerror(-k));
                goto finish;
        }
        if (a.json)
                ctl_json_print(json_pack("{s:s, s:s, s:s, s:s*, s:s*}", "status", k == 0 ? "same" : "drift", "policy",
                                     rec->policy_path, "policy_sha256", t.sha256, "host", t.host,
                                     "diff", k == 0 ? NULL : diff ? diff : "differs"));
        else if (k == 0)
                printf("ok: the live ruleset matches %s (sha256 %.12s)\n", rec->policy_path, t.sha256);
        else
                printf("drift: the live ruleset differs from %s (sha256 %.12s): %s\n",
                       rec->policy_path, t.sha256, diff ? diff : "differs");
        ret = k == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
finish:
        enforce_target_done(&t);
        return ret;
}

int verb_disable(int argc, char *argv[]) {
        _cleanup_(nft_closep) Nft *n = NULL;
        _cleanup_(state_record_freep) StateRecord *rec = NULL, *dropped = NULL;
        _cleanup_close_ int lock = -1;
        char token[STATE_TOKEN_LEN + 1], ts[32];
        bool cancelled = false;
        CtlArgs a;
        int k;

        k = parse_args("disable", "[--netns NAME] [--state-dir DIR] [--json]",
                       "netns state-dir json", false, argc, argv, &a);
        if (k != 0)
                return k > 0 ? CTL_EXIT_OK : CTL_EXIT_ERROR;
        if (lock_state("disable", a.state_dir, &lock) < 0)
                return CTL_EXIT_ERROR;
        k = state_record_load(a.state_dir, STATE_APPLIED, &rec);
        if (k < 0)
                k = state_record_new(STATE_STATUS_DISABLED, &rec);
        if (k < 0)
                return CTL_EXIT_ERROR;
        if (!a.netns)
                a.netns = rec->netns;
        if (ctl_open_kernel("disable", a.netns, &n) < 0)
                return CTL_EXIT_ERROR;

        /* Record first, so that a running agent stands down instead of repairing. */
        rec->status = STATE_STATUS_DISABLED;
        (void) state_format_ts(0, ts, sizeof(ts));
        if (state_record_set(&rec->netns, a.netns) < 0 ||
            state_record_set(&rec->by, "ceredisctl disable") < 0 ||
            state_record_set(&rec->ts, ts) < 0 ||
            (k = state_record_save(a.state_dir, STATE_APPLIED, rec)) < 0) {
                fprintf(stderr, "ceredisctl disable: cannot record %s/%s: %s\n", a.state_dir,
                        STATE_APPLIED, strerror(k < 0 ? -k : ENOMEM));
                return CTL_EXIT_ERROR;
        }
        /* A pending rollback would put rules back behind the operator's back. */
        if (state_pending_find(a.state_dir, token) >= 0 &&
            state_pending_claim(a.state_dir, token, &dropped) != -ENOENT)
                cancelled = true;
        k = nft_disable(n);
        if (k < 0) {
                fprintf(stderr, "ceredisctl disable: cannot remove the agent's tables: %s\n",
                        strerror(-k));
                return CTL_EXIT_ERROR;
        }
        (void) state_history_append(a.state_dir, "disable", rec,
                                    cancelled ? "cancelled a pending rollback" : NULL);
        if (a.json)
                ctl_json_print(json_pack("{s:s, s:b}", "status", "disabled", "cancelled_rollback", cancelled));
        else
                printf("disabled: the agent's tables are removed%s; the host is not filtered by "
                       "CEREDIS until the next apply\n",
                       cancelled ? " and the pending rollback is cancelled" : "");
        return CTL_EXIT_OK;
}
