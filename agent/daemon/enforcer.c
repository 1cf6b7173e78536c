/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The enforcement loop: keep the agent's table equal to the target ruleset. A notification
 * touching our table (or the periodic backstop) schedules a verify; a difference is repaired
 * in one batch and reported. The state directory is the source of truth for the target, so
 * that `ceredisctl apply`, a rollback and `ceredisctl disable` are followed, not fought.
 *
 * Repairs are rate-limited per window and backed off after failures: a tamperer (or a kernel
 * refusing our batch) can make us busy, never make us spin, crash or remove the table.
 */
#include "ceredis.h"

#include "daemon.h"
#include "docker.h"
#include "inventory.h"
#include "netns.h"
#include "sinks.h"

#include <inttypes.h>
#include <systemd/sd-daemon.h>
#include <time.h>

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

void context_done(Context *c) {
        docker_client_free(c->docker);
        sd_event_source_disable_unref(c->monitor_source);
        sd_event_source_disable_unref(c->verify_source);
        sd_event_source_disable_unref(c->periodic_source);
        reporter_free(c->reporter);
        nft_close(c->monitor);
        nft_close(c->nft);
        enforce_target_done(&c->target);
        state_record_free(c->record);
        sd_event_unref(c->event);
        free(c->policy_path);
        free(c->endpoints_path);
        free(c->host);
        free(c->netns);
        free(c->state_dir);
        free(c->eventlog_key);
        free(c->docker_host);
        free(c->metrics_listen);
        free(c->metrics_textfile);
        free(c->alertmanager_url);
        *c = (Context) {};
}

static void report(Context *c, const char *event, json_t *fields) {
        if (c->reporter)
                (void) reporter_emit(c->reporter, event, fields);
        else if (fields)
                json_decref(fields);
}

/* The sinks' view of the enforcer: the policy gauge and the ruleset events. */
static void sinks_policy(Context *c) {
        if (c->sinks && c->target.ruleset)
                (void) sinks_set_policy(c->sinks, c->target.sha256,
                                        policy_mode_to_string(c->target.ruleset->mode),
                                        c->target.host ? c->target.host : "");
}

static void sinks_ruleset(Context *c, EventKind kind, const char *detail) {
        Event e;

        if (!c->sinks)
                return;
        event_init(&e, kind);
        EVENT_SET(e.host, c->target.host ? c->target.host : "");
        e.severity = kind == EVENT_RULESET_DRIFT ? POLICY_SEVERITY_HIGH : POLICY_SEVERITY_MEDIUM;
        EVENT_SET(e.detail, detail);
        /* Counts the event and moves ceredis_ruleset_in_sync with it. */
        sinks_emit(c->sinks, &e);
}

static void notify_status(Context *c) {
        if (c->disabled)
                (void) sd_notify(false, "STATUS=disabled by the operator; not enforcing");
        else
                (void) sd_notifyf(false, "STATUS=enforcing %s (sha256 %.12s)%s, %u drift repairs",
                                  c->record && c->record->policy_path ? c->record->policy_path : "?",
                                  c->target.sha256, c->repair_failures ? ", repair failing" : "",
                                  c->repairs_total);
}

/* Load, compile and record the policy (with the configured endpoints); apply it in one batch.
 * With a token, the record it replaces is kept as pending-TOKEN.json first, for a rollback
 * unless confirmed; `exclusive` refuses while another apply waits for confirmation, as
 * `ceredisctl apply` does. On failure the kernel and the state directory keep what they had,
 * and `err` says why. */
static int apply_configured(Context *c, const char *policy_path, const char *by, bool exclusive,
                            const char *token, EnforceStage *ret_stage, char *err,
                            size_t err_size) {
        _cleanup_(state_record_freep) StateRecord *rec = NULL, *old = NULL;
        _cleanup_close_ int lock = -1;
        EnforceTarget t = {};
        NftError nerr = {};
        char ts[32], pending[STATE_TOKEN_LEN + 1];
        int k;

        k = state_lock(c->state_dir, &lock);
        if (k < 0) {
                *ret_stage = ENFORCE_STAGE_IO;
                snprintf(err, err_size, "%s: cannot lock the state directory: %s", c->state_dir,
                         strerror(-k));
                return k;
        }
        if (exclusive && state_pending_find(c->state_dir, pending) >= 0) {
                *ret_stage = ENFORCE_STAGE_IO;
                snprintf(err, err_size, "an earlier apply is waiting for confirmation");
                return -EBUSY;
        }
        k = enforce_compile_files(policy_path, c->endpoints_path, c->host, c->nflog_group,
                                  c->state_dir, &t, &rec, ret_stage, err, err_size);
        if (k < 0)
                return k;
        (void) state_format_ts(0, ts, sizeof(ts));
        if ((k = state_record_set(&rec->netns, c->netns)) < 0 ||
            (k = state_record_set(&rec->by, by)) < 0 || (k = state_record_set(&rec->ts, ts)) < 0)
                goto fail_io;

        /* Record first: a running ceredisctl or a verify must never see our new ruleset as
         * drift. If the kernel then refuses the batch, put the old record back. */
        k = state_record_load(c->state_dir, STATE_APPLIED, &old);
        if (k < 0 && k != -ENOENT && k != -EBADMSG)
                goto fail_io;
        if (token) {
                _cleanup_(state_record_freep) StateRecord *none = NULL;

                if (!old && (k = state_record_new(STATE_STATUS_NONE, &none)) < 0)
                        goto fail_io;
                k = state_pending_save(c->state_dir, token, old ? old : none);
                if (k < 0)
                        goto fail_io;
        }
        k = state_record_save(c->state_dir, STATE_APPLIED, rec);
        if (k < 0) {
                if (token)
                        (void) state_pending_claim(c->state_dir, token, NULL);
                goto fail_io;
        }
        /* Docker mode: the containers known now are part of the target. */
        if (c->docker && docker_client_amend(c->docker, &t, err, err_size) < 0)
                log_error("the reloaded policy is applied without Docker's containers: %s", err);
        k = nft_apply(c->nft, t.ruleset, &nerr);
        if (k < 0) {
                if (old)
                        (void) state_record_save(c->state_dir, STATE_APPLIED, old);
                if (token)
                        (void) state_pending_claim(c->state_dir, token, NULL);
                *ret_stage = ENFORCE_STAGE_COMPILE;
                enforce_format_nft_error(policy_path, k, &nerr, err, err_size);
                enforce_target_done(&t);
                return k;
        }
        (void) state_history_append(c->state_dir, "apply", rec,
                                    token ? "waiting for confirmation" : by);
        (void) state_blob_gc(c->state_dir);

        enforce_target_done(&c->target);
        c->target = t;
        state_record_free(c->record);
        c->record = TAKE_PTR(rec);
        c->disabled = false;
        c->repair_failures = 0;
        c->next_repair = 0;
        if (c->docker)
                docker_client_save_inventory(c->docker);
        if (c->reporter)
                (void) reporter_set_host(c->reporter, c->target.host);
        sinks_policy(c);
        return 0;

fail_io:
        enforce_target_done(&t);
        *ret_stage = ENFORCE_STAGE_IO;
        snprintf(err, err_size, "%s: cannot record the policy: %s", c->state_dir, strerror(-k));
        return k;
}

int enforcer_start(Context *c) {
        EnforceStage stage = ENFORCE_STAGE_IO;
        char err[1024];
        int k;

        k = state_dir_ensure(c->state_dir);
        if (k < 0) {
                log_error("%s: cannot create the state directory: %s", c->state_dir, strerror(-k));
                return 2;
        }
        /* What a previous run learned from Docker describes its containers, not ours yet:
         * until the first sync, verify compares with the policy alone. */
        k = inventory_remove(c->state_dir);
        if (k < 0)
                log_warning("%s/%s: %s", c->state_dir, STATE_INVENTORY, strerror(-k));
        /* The namespace first: every socket opened below belongs to it. */
        if (c->netns) {
                k = netns_enter(c->netns);
                if (k < 0) {
                        log_error("cannot enter network namespace %s: %s", c->netns, strerror(-k));
                        return 2;
                }
        }
        k = netns_bridge_nf_enable();
        if (k < 0)
                log_warning("cannot make bridged traffic traverse netfilter (%s): traffic "
                            "between containers of one bridge is not filtered",
                            strerror(-k));
        k = nft_open(&c->nft);
        if (k < 0) {
                log_error("cannot open a netlink socket to nf_tables: %s", strerror(-k));
                return 2;
        }
        /* Subscribe before applying, so that no change after our batch goes unseen. */
        k = nft_monitor_open(&c->monitor);
        if (k < 0) {
                log_error("cannot subscribe to nf_tables notifications: %s", strerror(-k));
                return 2;
        }
        k = apply_configured(c, c->policy_path, "ceredis-agent", false, NULL, &stage, err, sizeof(err));
        if (k < 0) {
                log_error("%s", err);
                return stage == ENFORCE_STAGE_POLICY ? 1 : 2;
        }
        log_info("enforcing %s on host %s (sha256 %s)", c->policy_path,
                 c->target.host ? c->target.host : "?", c->target.sha256);
        return 0;
}

/* Follow the state directory: `ceredisctl apply` or a rollback changed the target,
 * `ceredisctl disable` asked us to stand down. */
static void adopt_state(Context *c) {
        _cleanup_(state_record_freep) StateRecord *rec = NULL;
        EnforceTarget t = {};
        EnforceStage stage;
        char err[1024];
        int k;

        k = state_record_load(c->state_dir, STATE_APPLIED, &rec);
        if (k == -ENOENT)
                return; /* nobody says otherwise: keep enforcing what we have */
        if (k < 0) {
                if (!c->state_error_reported) {
                        log_error("%s/%s: cannot read: %s; keeping the current ruleset",
                                  c->state_dir, STATE_APPLIED, strerror(-k));
                        report(c, "state-error",
                               json_pack("{s:s}", "error", strerror(-k)));
                        c->state_error_reported = true;
                }
                return;
        }
        c->state_error_reported = false;
        if (state_record_same_target(rec, c->record))
                return;
        if (!streq_ptr(rec->netns, c->netns))
                return; /* applied to another namespace: not our business */

        if (rec->status != STATE_STATUS_APPLIED) {
                log_warning("%s: the agent's rules were removed (%s by %s); not repairing",
                            c->state_dir, state_status_to_string(rec->status),
                            rec->by ? rec->by : "?");
                report(c, "disabled", json_pack("{s:s*}", "by", rec->by));
                c->disabled = true;
        } else {
                k = enforce_compile_record(c->state_dir, rec, &t, &stage, err, sizeof(err));
                if (k >= 0 && c->docker && docker_client_amend(c->docker, &t, err, sizeof(err)) < 0)
                        log_error("following %s without Docker's containers: %s",
                                  rec->policy_path, err);
                if (k < 0) {
                        log_error("cannot follow the state directory: %s; keeping the current "
                                  "ruleset", err);
                        report(c, "policy-changed",
                               json_pack("{s:s*, s:s, s:s}", "by", rec->by, "action", "kept",
                                         "error", err));
                } else {
                        log_info("following %s applied by %s (sha256 %s)", rec->policy_path,
                                 rec->by ? rec->by : "?", t.sha256);
                        report(c, "policy-changed",
                               json_pack("{s:s*, s:s, s:s, s:s}", "by", rec->by, "action", "adopted",
                                         "policy", rec->policy_path, "policy_sha256", t.sha256));
                        enforce_target_done(&c->target);
                        c->target = t;
                        c->disabled = false;
                        if (c->docker)
                                docker_client_save_inventory(c->docker);
                        if (c->reporter)
                                (void) reporter_set_host(c->reporter, c->target.host);
                        sinks_policy(c);
                }
        }
        /* Remember it even when it failed to compile: retrying a broken record on every
         * notification would only repeat the same error. */
        state_record_free(c->record);
        c->record = TAKE_PTR(rec);
        notify_status(c);
}

static void schedule_verify(Context *c, uint64_t delay_usec);

static void repair(Context *c, const char *diff) {
        uint64_t now = now_usec(), backoff;
        NftError nerr = {};
        char err[1024];
        int k;

        if (c->next_repair && now < c->next_repair) {
                schedule_verify(c, c->next_repair - now);
                return;
        }
        if (now - c->window_start >= DAEMON_REPAIR_WINDOW_USEC) {
                c->window_start = now;
                c->window_repairs = 0;
                c->deferred_reported = false;
        }
        if (c->window_repairs >= DAEMON_REPAIR_WINDOW_MAX) {
                /* Someone keeps tampering: keep repairing, but at the window's pace. */
                if (!c->deferred_reported) {
                        log_warning("drift again after %u repairs in %us: pausing repairs "
                                    "until the window ends",
                                    c->window_repairs, DAEMON_REPAIR_WINDOW_USEC / 1000000u);
                        report(c, "drift",
                               json_pack("{s:s, s:s}", "diff", diff, "action", "deferred"));
                        c->deferred_reported = true;
                }
                schedule_verify(c, c->window_start + DAEMON_REPAIR_WINDOW_USEC - now);
                return;
        }
        c->window_repairs++;

        k = nft_apply(c->nft, c->target.ruleset, &nerr);
        if (k >= 0) {
                _cleanup_free_ char *still = NULL;

                /* "Repaired" only when the kernel says so: a batch that is accepted but does
                 * not converge must back off, not loop. */
                k = nft_verify(c->nft, c->target.ruleset, &still);
                if (k == 0) {
                        log_warning("drift repaired: %s", diff);
                        sinks_ruleset(c, EVENT_RULESET_REPAIRED, diff);
                        report(c, "drift",
                               json_pack("{s:s, s:s}", "diff", diff, "action", "repaired"));
                        c->repair_failures = 0;
                        c->next_repair = 0;
                        c->repairs_total++;
                        notify_status(c);
                        return;
                }
                if (k > 0)
                        snprintf(err, sizeof(err), "still differs after the repair: %s",
                                 still ? still : "?");
                else
                        snprintf(err, sizeof(err), "cannot verify the repair: %s", strerror(-k));
        } else
                enforce_format_nft_error(c->record && c->record->policy_path
                                                 ? c->record->policy_path
                                                 : c->policy_path,
                                         k, &nerr, err, sizeof(err));
        c->repair_failures++;
        notify_status(c);
        backoff = DAEMON_RETRY_MIN_USEC;
        for (unsigned i = 1; i < c->repair_failures && backoff < DAEMON_RETRY_MAX_USEC; i++)
                backoff *= 2;
        if (backoff > DAEMON_RETRY_MAX_USEC)
                backoff = DAEMON_RETRY_MAX_USEC;
        c->next_repair = now + backoff;
        log_error("drift repair failed (%s); retrying in %" PRIu64 " ms", err, backoff / 1000u);
        report(c, "drift",
               json_pack("{s:s, s:s, s:s, s:I}", "diff", diff, "action", "repair-failed", "error", err,
                         "retry_ms", (json_int_t) (backoff / 1000u)));
        schedule_verify(c, backoff);
}

static void verify_now(Context *c) {
        _cleanup_free_ char *diff = NULL;
        int k;

        adopt_state(c);
        if (c->disabled || !c->target.ruleset)
                return;
        k = nft_verify(c->nft, c->target.ruleset, &diff);
        if (k < 0) {
                log_error("cannot read the live ruleset: %s", strerror(-k));
                report(c, "verify-error", json_pack("{s:s}", "error", strerror(-k)));
                schedule_verify(c, DAEMON_RETRY_MIN_USEC);
                return;
        }
        if (k == 0) {
                if (c->sinks)
                        sinks_set_ruleset_in_sync(c->sinks, true);
                return;
        }
        sinks_ruleset(c, EVENT_RULESET_DRIFT, diff ? diff : "the live table differs");
        repair(c, diff ? diff : "the live table differs");
}

static int on_verify_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        verify_now(userdata);
        return 0;
}

/* Arm the one-shot verify; an already armed earlier one absorbs this request. */
static void schedule_verify(Context *c, uint64_t delay_usec) {
        uint64_t now, when, armed;
        int enabled = SD_EVENT_OFF, k;

        if (sd_event_now(c->event, CLOCK_MONOTONIC, &now) < 0)
                now = now_usec();
        when = now + delay_usec;
        if (!c->verify_source) {
                k = sd_event_add_time(c->event, &c->verify_source, CLOCK_MONOTONIC, when,
                                      1000u, on_verify_timer, c);
                if (k < 0)
                        log_error("cannot schedule a verify: %s", strerror(-k));
                else
                        (void) sd_event_source_set_enabled(c->verify_source, SD_EVENT_ONESHOT);
                return;
        }
        (void) sd_event_source_get_enabled(c->verify_source, &enabled);
        if (enabled != SD_EVENT_OFF && sd_event_source_get_time(c->verify_source, &armed) >= 0 &&
            armed <= when)
                return;
        (void) sd_event_source_set_time(c->verify_source, when);
        (void) sd_event_source_set_enabled(c->verify_source, SD_EVENT_ONESHOT);
}

static int on_monitor(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Context *c = userdata;
        int k;

        k = nft_monitor_drain(c->monitor);
        if (k < 0) {
                /* Cannot tell what happened: verify, the periodic check keeps us honest. */
                log_error("reading nf_tables notifications: %s", strerror(-k));
                k = 1;
        }
        if (k > 0)
                schedule_verify(c, DAEMON_VERIFY_COALESCE_USEC);
        return 0;
}

static int on_periodic(sd_event_source *s, uint64_t usec, void *userdata) {
        Context *c = userdata;

        verify_now(c);
        (void) sd_event_source_set_time_relative(s, DAEMON_VERIFY_PERIOD_USEC);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ON);
        return 0;
}

int enforcer_attach(Context *c) {
        int k;

        k = sd_event_add_io(c->event, &c->monitor_source, nft_fd(c->monitor), EPOLLIN,
                            on_monitor, c);
        if (k < 0)
                return k;
        k = sd_event_add_time_relative(c->event, &c->periodic_source, CLOCK_MONOTONIC,
                                       DAEMON_VERIFY_PERIOD_USEC, 100u * 1000u, on_periodic, c);
        if (k < 0)
                return k;
        k = sd_event_source_set_enabled(c->periodic_source, SD_EVENT_ON);
        if (k < 0)
                return k;
        sinks_policy(c);
        /* Whatever happened between our batch and the loop's start gets checked now. */
        schedule_verify(c, 0);
        notify_status(c);
        return 0;
}

/* Reload (policy_path NULL: the configured file) or apply another policy file, reporting it.
 * Only an apply waits for a pending confirmation: a reload is the operator's SIGHUP. */
static int reload_or_apply(Context *c, const char *event, const char *policy_path, const char *by,
                           const char *token, EnforceStage *ret_stage, char *err, size_t err_size) {
        const char *path = policy_path ? policy_path : c->policy_path;
        int k;

        log_info("%s %s", policy_path ? "applying" : "reloading", path);
        k = apply_configured(c, path, by, policy_path != NULL, token, ret_stage, err, err_size);
        if (k < 0) {
                log_error("%s failed, keeping the current ruleset: %s", event, err);
                report(c, event,
                       json_pack("{s:s, s:s, s:s}", "policy", path, "action", "kept", "error", err));
                return k;
        }
        log_info("%s %s (sha256 %s)", policy_path ? "applied" : "reloaded", path, c->target.sha256);
        report(c, event,
               json_pack("{s:s, s:s, s:s, s:b}", "policy", path, "action", "applied",
                         "policy_sha256", c->target.sha256, "confirm", token != NULL));
        /* The watcher judges traffic by the policy now enforced. */
        if (c->watch) {
                (void) watch_set_host(c->watch, c->target.host);
                (void) watch_load(c->watch, path, c->endpoints_path);
        }
        notify_status(c);
        /* Our own batch echoes back through the monitor; verify once it settled. */
        schedule_verify(c, DAEMON_VERIFY_COALESCE_USEC);
        return 0;
}

int enforcer_reload(Context *c, EnforceStage *ret_stage, char *err, size_t err_size) {
        EnforceStage stage = ENFORCE_STAGE_IO;
        char buf[1024];

        if (!err) {
                err = buf;
                err_size = sizeof(buf);
        }
        return reload_or_apply(c, "reload", NULL, "ceredis-agent (reload)", NULL,
                               ret_stage ? ret_stage : &stage, err, err_size);
}

int enforcer_apply(Context *c, const char *policy_path, const char *token, EnforceStage *ret_stage,
                   char *err, size_t err_size) {
        return reload_or_apply(c, "apply", policy_path, "ceredis-agent (D-Bus Apply)", token,
                               ret_stage, err, err_size);
}

void enforcer_verify_soon(Context *c) {
        schedule_verify(c, 0);
}
