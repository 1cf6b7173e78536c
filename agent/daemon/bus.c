/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * org.ceredis.Agent1 (bus.h): an sd-bus connection attached to the daemon's sd-event loop, one
 * vtable, and handlers that check the caller's credentials before anything else and answer
 * with sd_bus_error_set*(). Reload and Apply are the enforcer's own operations (enforcer.c);
 * Apply with a confirmation arms a timer here that restores the previous record unless
 * Confirm claims the pending file first (the same rename() race as `ceredisctl confirm`).
 * Audit and Violations run `ceredisctl audit|violations --json` as a child whose output is
 * read from the loop, bounded in size and time: verifying a large event log or probing
 * Docker must never stall enforcement, and the answer is exactly what the offline verb says.
 */
#include "ceredis.h"

#include "bus-args.h"
#include "bus.h"
#include "daemon.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <limits.h>
#include <signal.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>

#ifndef CEREDIS_BINDIR
#define CEREDIS_BINDIR "/usr/bin"
#endif

#define BUS_PASSWD_BUF 16384u
#define BUS_USER_GROUPS_MAX 1024

typedef struct BusJob BusJob;

struct Bus {
        Context *c;
        sd_bus *bus;
        sd_bus_slot *slot;
        char token[STATE_TOKEN_LEN + 1]; /* our Apply waiting for Confirm; "" when none */
        sd_event_source *rollback;
        BusJob *jobs;
        unsigned n_jobs;
};

/* An Audit or Violations call being answered by a ceredisctl child. */
struct BusJob {
        Bus *bus;
        BusJob *next;
        sd_bus_message *call;
        pid_t pid;
        int fd;
        sd_event_source *io, *timeout;
        char *out;
        size_t n, allocated;
        bool too_big;
};

/* ---- Who is calling */

static bool in_group(gid_t gid, gid_t egid, const gid_t *gids, int n) {
        if (egid == gid)
                return true;
        for (int i = 0; i < n; i++)
                if (gids[i] == gid)
                        return true;
        return false;
}

/* Is `uid` a member of `gid` in the user database? The bus tells the uid it read from the
 * socket; the groups of the process would have to come from /proc, racily. */
static bool user_in_group(uid_t uid, gid_t gid) {
        _cleanup_free_ char *buf = NULL;
        _cleanup_free_ gid_t *groups = NULL;
        struct passwd pw, *p = NULL;
        int n = BUS_USER_GROUPS_MAX;

        buf = malloc(BUS_PASSWD_BUF);
        groups = calloc(BUS_USER_GROUPS_MAX, sizeof(gid_t));
        if (!buf || !groups || getpwuid_r(uid, &pw, buf, BUS_PASSWD_BUF, &p) != 0 || !p)
                return false;
        if (p->pw_gid == gid)
                return true;
        /* More groups than the cap: refuse rather than guess. */
        if (getgrouplist(p->pw_name, p->pw_gid, groups, &n) < 0)
                return false;
        return in_group(gid, (gid_t) -1, groups, n);
}

/* 0 when the caller may go on; otherwise the error is set (AccessDenied) and returned. */
static int check_caller(sd_bus_message *m, bool change, sd_bus_error *error) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        const gid_t *gids = NULL;
        struct group *g;
        uid_t uid;
        gid_t egid = (gid_t) -1;
        int n = 0, k;

        /* What the bus read from the socket, never /proc (SD_BUS_CREDS_AUGMENT): a pid can be
         * reused by another process between the call and the check. */
        k = sd_bus_query_sender_creds(m,
                                      SD_BUS_CREDS_EUID | SD_BUS_CREDS_UID | SD_BUS_CREDS_EGID |
                                              SD_BUS_CREDS_SUPPLEMENTARY_GIDS,
                                      &creds);
        if (k < 0)
                return sd_bus_error_set_errnof(error, k, "cannot read the caller's credentials: %s",
                                               strerror(-k));
        /* dbus-daemon reports the uid it read with SO_PEERCRED, i.e. the effective one. */
        if (sd_bus_creds_get_euid(creds, &uid) < 0 && sd_bus_creds_get_uid(creds, &uid) < 0)
                return sd_bus_error_set(error, SD_BUS_ERROR_ACCESS_DENIED,
                                        "the caller's user id is unknown");
        if (uid == 0)
                return 0;
        if (change)
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "only root may change the agent's state (caller uid %u)",
                                         (unsigned) uid);
        g = getgrnam(BUS_GROUP);
        (void) sd_bus_creds_get_egid(creds, &egid);
        n = sd_bus_creds_get_supplementary_gids(creds, &gids);
        if (g && (in_group(g->gr_gid, egid, gids, n < 0 ? 0 : n) || user_in_group(uid, g->gr_gid)))
                return 0;
        return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                 "reading the agent's state needs root or the group '%s' (caller "
                                 "uid %u)", BUS_GROUP, (unsigned) uid);
}

/* ---- Read-only methods */

static const char *mode_of(const Context *c) {
        return c->target.ruleset ? policy_mode_to_string(c->target.ruleset->mode) : "";
}

static json_t *string_or_null(const char *s) {
        return s ? json_string(s) : json_null();
}

static int method_status(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Bus *b = userdata;
        Context *c = b->c;
        _cleanup_free_ char *text = NULL;
        json_t *o, *stats = NULL;
        char pending[STATE_TOKEN_LEN + 1];
        int k;

        k = check_caller(m, false, error);
        if (k < 0)
                return k;
        /* Ours or `ceredisctl apply --confirm`'s: the state directory knows both. */
        if (state_pending_find(c->state_dir, pending) < 0)
                pending[0] = 0;
        if (c->watch) {
                WatchStats s;

                watch_stats(c->watch, &s);
                stats = json_pack("{s:I, s:I, s:I, s:I, s:I}", "packets", (json_int_t) s.packets,
                                  "violations", (json_int_t) s.violations, "events",
                                  (json_int_t) s.events, "dropped", (json_int_t) s.dropped,
                                  "contained", (json_int_t) s.contained);
        }
        /* Every key is always there (null when unknown): a stable shape for scripts. */
        o = json_pack("{s:s, s:o, s:o, s:s, s:s, s:o, s:s, s:o, s:b, s:o, s:I, s:I}",
                      "version", PACKAGE_VERSION, "host", string_or_null(c->target.host), "policy",
                      string_or_null(c->record ? c->record->policy_path : c->policy_path),
                      "policy_sha256", c->target.sha256, "mode", mode_of(c), "netns",
                      string_or_null(c->netns), "state",
                      c->disabled ? "disabled" : c->repair_failures ? "repair-failing" : "enforcing",
                      "pending_confirmation", string_or_null(pending[0] ? pending : NULL),
                      "docker", c->docker != NULL, "watching", stats ? stats : json_null(), "repairs",
                      (json_int_t) c->repairs_total, "repair_failures",
                      (json_int_t) c->repair_failures);
        if (!o)
                return -ENOMEM;
        text = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (!text)
                return -ENOMEM;
        return sd_bus_reply_method_return(m, "s", text);
}

static void job_free(BusJob *j) {
        if (!j)
                return;
        sd_event_source_disable_unref(j->io);
        sd_event_source_disable_unref(j->timeout);
        if (j->fd >= 0)
                close(j->fd);
        if (j->pid > 0) {
                (void) kill(j->pid, SIGKILL);
                while (waitpid(j->pid, NULL, 0) < 0 && errno == EINTR)
                        ;
        }
        sd_bus_message_unref(j->call);
        free(j->out);
        free(j);
}

static void job_unlink(BusJob *j) {
        Bus *b = j->bus;

        for (BusJob **p = &b->jobs; *p; p = &(*p)->next)
                if (*p == j) {
                        *p = j->next;
                        b->n_jobs--;
                        return;
                }
}

/* The child is done (EOF) or overdue (timeout): answer the call and forget the job. */
static void job_finish(BusJob *j, bool timed_out) {
        int status = 0, k;

        close(j->fd);
        j->fd = -1;
        if (timed_out)
                (void) kill(j->pid, SIGKILL);
        while ((k = waitpid(j->pid, &status, 0)) < 0 && errno == EINTR)
                ;
        j->pid = 0;
        if (timed_out)
                k = sd_bus_reply_method_errorf(j->call, SD_BUS_ERROR_TIMEOUT,
                                               "the check did not finish within %us",
                                               BUS_JOB_TIMEOUT_USEC / 1000000u);
        else if (j->too_big)
                k = sd_bus_reply_method_errorf(j->call, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                               "the answer exceeds %u bytes", BUS_JOB_OUTPUT_MAX);
        /* ceredisctl: 0 nothing found, 1 something found; both are answers. */
        else if (k < 0 || !WIFEXITED(status) || WEXITSTATUS(status) > 1 || j->n == 0)
                k = sd_bus_reply_method_errorf(j->call, BUS_ERROR_FAILED,
                                               "ceredisctl failed (exit %d); see the agent's log",
                                               k >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        else {
                j->out[j->n] = 0;
                while (j->n > 0 && j->out[j->n - 1] == '\n')
                        j->out[--j->n] = 0;
                k = sd_bus_reply_method_return(j->call, "s", j->out);
        }
        if (k < 0)
                log_error("D-Bus: cannot answer a call: %s", strerror(-k));
        job_unlink(j);
        job_free(j);
}

static int on_job_output(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        BusJob *j = userdata;
        char buf[65536];
        ssize_t n;

        n = read(fd, buf, sizeof(buf));
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                return 0;
        if (n <= 0) {
                job_finish(j, false);
                return 0;
        }
        if (j->too_big)
                return 0; /* drain, so that the child can finish */
        if (j->n + (size_t) n + 1 > BUS_JOB_OUTPUT_MAX ||
            ARRAY_GROW(j->out, j->allocated, j->n + (size_t) n + 1, BUS_JOB_OUTPUT_MAX) < 0) {
                j->too_big = true;
                return 0;
        }
        memcpy(j->out + j->n, buf, (size_t) n);
        j->n += (size_t) n;
        return 0;
}

static int on_job_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        job_finish(userdata, true);
        return 0;
}

/* Run `ceredisctl ARGV...` (argv[0] is the verb) and answer `m` with its stdout. */
static int job_start(Bus *b, sd_bus_message *m, const char *const *args, sd_bus_error *error) {
        _cleanup_free_ BusJob *j = NULL;
        char ctl[PATH_MAX];
        const char *argv[24];
        size_t n = 0;
        int pipefd[2], k;
        pid_t pid;

        if (b->n_jobs >= BUS_JOBS_MAX)
                return sd_bus_error_setf(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                         "%u checks are running already; try again later",
                                         BUS_JOBS_MAX);
        (void) snprintf(ctl, sizeof(ctl), "%s/ceredisctl", getenv("CEREDIS_CTL_DIR") ?: CEREDIS_BINDIR);
        argv[n++] = ctl;
        for (; *args && n < ELEMENTSOF(argv) - 1; args++)
                argv[n++] = *args;
        argv[n] = NULL;

        j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        j->fd = -1;
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return negative_errno();
        pid = fork();
        if (pid < 0) {
                k = negative_errno();
                close(pipefd[0]);
                close(pipefd[1]);
                return k;
        }
        if (pid == 0) {
                sigset_t none;
                int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

                /* The loop blocks its signals; the child must be killable normally. */
                sigemptyset(&none);
                (void) sigprocmask(SIG_SETMASK, &none, NULL);
                if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(pipefd[1], STDOUT_FILENO) < 0)
                        _exit(2);
                execv(ctl, (char *const *) argv);
                log_error("D-Bus: cannot run %s: %s", ctl, strerror(errno));
                _exit(2);
        }
        close(pipefd[1]);
        j->fd = pipefd[0];
        j->pid = pid;
        j->bus = b;
        (void) fcntl(j->fd, F_SETFL, O_NONBLOCK);
        k = sd_event_add_io(b->c->event, &j->io, j->fd, EPOLLIN, on_job_output, j);
        if (k >= 0)
                k = sd_event_add_time_relative(b->c->event, &j->timeout, CLOCK_MONOTONIC,
                                               BUS_JOB_TIMEOUT_USEC, 0, on_job_timeout, j);
        if (k < 0) {
                job_free(TAKE_PTR(j));
                return k;
        }
        j->call = sd_bus_message_ref(m);
        j->next = b->jobs;
        b->jobs = TAKE_PTR(j);
        b->n_jobs++;
        return 1; /* answered later */
}

static int method_audit(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Bus *b = userdata;
        Context *c = b->c;
        const char *args[16] = { "audit", "--json", "--state-dir", c->state_dir, "--key",
                                 c->eventlog_key };
        size_t n = 6;
        int k;

        k = check_caller(m, false, error);
        if (k < 0)
                return k;
        args[n++] = "--docker-host";
        args[n++] = c->docker_host ? c->docker_host : "none";
        if (c->host) {
                args[n++] = "--host";
                args[n++] = c->host;
        }
        return job_start(b, m, args, error);
}

static int method_violations(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Bus *b = userdata;
        Context *c = b->c;
        const char *since, *args[10] = { "violations", "--json", "--state-dir", c->state_dir, "--key",
                                         c->eventlog_key };
        int k;

        k = check_caller(m, false, error);
        if (k < 0)
                return k;
        k = sd_bus_message_read(m, "s", &since);
        if (k < 0)
                return k;
        if (bus_check_since(since) < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "since: expected \"\" or a number and a unit (s, m, h, d, "
                                         "w), e.g. \"10m\"");
        if (since[0]) {
                args[6] = "--since";
                args[7] = since;
        }
        return job_start(b, m, args, error);
}

/* ---- State changes */

static void emit_changed(Bus *b) {
        (void) sd_bus_emit_properties_changed(b->bus, BUS_PATH, BUS_INTERFACE, "Mode",
                                              "PolicySha256", NULL);
}

static int answer_enforce_error(int k, EnforceStage stage, const char *err, sd_bus_error *error) {
        if (k == -EBUSY)
                return sd_bus_error_setf(error, SD_BUS_ERROR_FAILED,
                                         "an earlier apply is waiting for confirmation");
        return sd_bus_error_setf(error,
                                 stage == ENFORCE_STAGE_POLICY ? BUS_ERROR_POLICY_INVALID
                                                               : BUS_ERROR_FAILED,
                                 "%s; the current ruleset stays", err);
}

static int method_reload(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Bus *b = userdata;
        EnforceStage stage = ENFORCE_STAGE_IO;
        char err[1024];
        int k;

        k = check_caller(m, true, error);
        if (k < 0)
                return k;
        log_info("D-Bus: Reload requested");
        k = enforcer_reload(b->c, &stage, err, sizeof(err));
        if (k < 0)
                return answer_enforce_error(k, stage, err, error);
        emit_changed(b);
        return sd_bus_reply_method_return(m, NULL);
}

/* Apply was not confirmed in time: the previous record becomes the target again, and the
 * enforcer's own follow-the-state-directory path installs it. */
static int on_rollback(sd_event_source *s, uint64_t usec, void *userdata) {
        _cleanup_(state_record_freep) StateRecord *previous = NULL;
        _cleanup_close_ int lock = -1;
        Bus *b = userdata;
        Context *c = b->c;
        char ts[32];
        int k;

        b->rollback = sd_event_source_disable_unref(b->rollback);
        k = state_lock(c->state_dir, &lock);
        if (k >= 0)
                k = state_pending_claim(c->state_dir, b->token, &previous);
        b->token[0] = 0;
        if (k == -ENOENT)
                return 0; /* confirmed, or claimed by ceredisctl meanwhile */
        if (k < 0) {
                log_error("rollback of an unconfirmed apply failed: %s", strerror(-k));
                return 0;
        }
        (void) state_format_ts(0, ts, sizeof(ts));
        if (state_record_set(&previous->by, "rollback") < 0 ||
            state_record_set(&previous->ts, ts) < 0 ||
            (k = state_record_save(c->state_dir, STATE_APPLIED, previous)) < 0) {
                log_error("rollback of an unconfirmed apply failed: cannot record it");
                return 0;
        }
        (void) state_history_append(c->state_dir, "rollback", previous, "not confirmed in time");
        log_warning("apply not confirmed in time: rolling back to %s",
                    previous->status == STATE_STATUS_APPLIED && previous->policy_path
                            ? previous->policy_path
                            : "no ruleset");
        if (previous->status != STATE_STATUS_APPLIED) {
                /* Nothing was enforced before: leave the host as it was. */
                k = nft_disable(c->nft);
                if (k < 0)
                        log_error("rollback: cannot remove the agent's tables: %s", strerror(-k));
        }
        enforcer_verify_soon(c);
        return 0;
}

static int method_apply(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Bus *b = userdata;
        Context *c = b->c;
        EnforceStage stage = ENFORCE_STAGE_IO;
        char err[1024], token[STATE_TOKEN_LEN + 1] = "";
        const char *path;
        uint32_t seconds;
        int k;

        k = check_caller(m, true, error);
        if (k < 0)
                return k;
        k = sd_bus_message_read(m, "su", &path, &seconds);
        if (k < 0)
                return k;
        if (bus_check_policy_path(path) < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "policy_path: expected an absolute path of at most %u "
                                         "bytes without . or .. segments", BUS_PATH_MAX);
        if (bus_check_confirm(seconds) < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "confirm_seconds: expected 0 to %u",
                                         BUS_CONFIRM_MAX_SECONDS);
        if (seconds && (k = state_pending_token_new(token)) < 0)
                return k;
        log_info("D-Bus: Apply %s (confirm %us)", path, (unsigned) seconds);
        k = enforcer_apply(c, path, seconds ? token : NULL, &stage, err, sizeof(err));
        if (k < 0)
                return answer_enforce_error(k, stage, err, error);
        if (seconds) {
                k = sd_event_add_time_relative(c->event, &b->rollback, CLOCK_MONOTONIC,
                                               (uint64_t) seconds * 1000000u, 1000u, on_rollback, b);
                if (k < 0) {
                        /* Without a timer nobody would roll back: do it now. */
                        memcpy(b->token, token, sizeof(token));
                        (void) on_rollback(NULL, 0, b);
                        return sd_bus_error_setf(error, SD_BUS_ERROR_FAILED,
                                                 "cannot arm the rollback timer (%s): rolled back",
                                                 strerror(-k));
                }
                memcpy(b->token, token, sizeof(token));
        }
        emit_changed(b);
        return sd_bus_reply_method_return(m, "s", token);
}

static int method_confirm(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(state_record_freep) StateRecord *applied = NULL;
        _cleanup_close_ int lock = -1;
        Bus *b = userdata;
        Context *c = b->c;
        const char *token;
        int k;

        k = check_caller(m, true, error);
        if (k < 0)
                return k;
        k = sd_bus_message_read(m, "s", &token);
        if (k < 0)
                return k;
        if (bus_check_token(token) < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "token: expected %u lowercase hex digits", BUS_TOKEN_LEN);
        k = state_lock(c->state_dir, &lock);
        if (k >= 0)
                k = state_pending_claim(c->state_dir, token, NULL);
        if (k == -ENOENT)
                return sd_bus_error_setf(error, SD_BUS_ERROR_FAILED,
                                         "nothing to confirm with this token (rolled back "
                                         "already?)");
        if (k < 0 && k != -EBADMSG)
                return sd_bus_error_set_errnof(error, k, "%s: %s", c->state_dir, strerror(-k));
        if (streq(token, b->token)) {
                b->rollback = sd_event_source_disable_unref(b->rollback);
                b->token[0] = 0;
        }
        (void) state_record_load(c->state_dir, STATE_APPLIED, &applied);
        (void) state_history_append(c->state_dir, "confirm", applied, "D-Bus Confirm");
        (void) state_blob_gc(c->state_dir);
        log_info("D-Bus: apply confirmed");
        return sd_bus_reply_method_return(m, NULL);
}

/* ---- Properties */

static int property_get(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Bus *b = userdata;
        int k;

        k = check_caller(sd_bus_get_current_message(bus), false, error);
        if (k < 0)
                return k;
        if (streq(property, "Mode"))
                return sd_bus_message_append(reply, "s", mode_of(b->c));
        return sd_bus_message_append(reply, "s", b->c->target.sha256);
}

static const sd_bus_vtable agent_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Mode", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("PolicySha256", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("Status", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", json), method_status,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Audit", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", json), method_audit,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Violations", SD_BUS_ARGS("s", since), SD_BUS_RESULT("s", json),
                                method_violations, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Reload", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_reload,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Apply", SD_BUS_ARGS("s", policy_path, "u", confirm_seconds),
                                SD_BUS_RESULT("s", token), method_apply, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Confirm", SD_BUS_ARGS("s", token), SD_BUS_NO_RESULT, method_confirm,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("ViolationDetected", SD_BUS_ARGS("s", json), 0),
        SD_BUS_VTABLE_END,
};

/* ---- Lifetime */

int bus_start(Context *c, Bus **ret) {
        _cleanup_(bus_freep) Bus *b = NULL;
        int k;

        b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->c = c;
        k = sd_bus_open_system(&b->bus);
        if (k < 0)
                return k;
        /* The handlers check credentials themselves; sd-bus must not refuse them first. */
        k = sd_bus_add_object_vtable(b->bus, &b->slot, BUS_PATH, BUS_INTERFACE, agent_vtable, b);
        if (k < 0)
                return k;
        k = sd_bus_request_name(b->bus, BUS_NAME, 0);
        if (k < 0)
                return k;
        k = sd_bus_attach_event(b->bus, c->event, SD_EVENT_PRIORITY_NORMAL);
        if (k < 0)
                return k;
        *ret = TAKE_PTR(b);
        return 0;
}

void bus_free(Bus *b) {
        if (!b)
                return;
        while (b->jobs) {
                BusJob *j = b->jobs;

                b->jobs = j->next;
                job_free(j);
        }
        /* A pending rollback stays on disk; `ceredisctl confirm` or the next start decides. */
        sd_event_source_disable_unref(b->rollback);
        sd_bus_slot_unref(b->slot);
        sd_bus_flush_close_unref(b->bus);
        free(b);
}

void bus_emit_violation(Bus *b, const json_t *event) {
        _cleanup_free_ char *text = NULL;

        if (!b || !event)
                return;
        text = json_dumps(event, JSON_COMPACT);
        if (text)
                (void) sd_bus_emit_signal(b->bus, BUS_PATH, BUS_INTERFACE, "ViolationDetected", "s",
                                          text);
}
