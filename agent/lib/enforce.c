/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Inputs to ruleset: read the policy once into memory, parse and compile those bytes, and
 * keep a copy of exactly those bytes in the state directory, so that what is recorded is what
 * was compiled even if the operator's file changes underneath.
 */
#include "ceredis.h"

#include "enforce.h"
#include "inventory.h"
#include "nft.h"
#include "policy.h"

#include <limits.h>

/* An endpoints file is a small JSON map; 16 MiB is far past any real deployment. */
#define ENFORCE_MAX_ENDPOINTS_FILE (16u * 1024u * 1024u)

void enforce_target_done(EnforceTarget *t) {
        if (!t)
                return;
        ruleset_free(t->ruleset);
        free(t->host);
        *t = (EnforceTarget) {};
}

/* `inventory` (taken, may be NULL) are endpoints already known, e.g. the daemon's Docker
 * inventory; otherwise they come from the endpoints file, if any. */
static int compile_bytes(const char *policy_name, const char *data, size_t size,
                         Endpoints *inventory, const char *endpoints_load_path,
                         const char *endpoints_name, const char *host, uint16_t nflog_group,
                         EnforceTarget *ret, EnforceStage *ret_stage, char *err,
                         size_t err_size) {
        _cleanup_(policy_freep) Policy *p = NULL;
        _cleanup_(endpoints_freep) Endpoints *e = inventory;
        _cleanup_(ruleset_freep) Ruleset *r = NULL;
        _cleanup_free_ char *resolved = NULL;
        PolicyError perr = {};
        RulesetOptions o = { .host = host, .nflog_group = nflog_group };
        char eerr[512] = "";
        int k;

        k = policy_parse(policy_name, data, size, &p, &perr);
        if (k < 0) {
                *ret_stage = ENFORCE_STAGE_POLICY;
                policy_error_format(policy_name, &perr, err, err_size);
                return k;
        }
        k = e ? 0 : endpoints_new(&e);
        if (k < 0) {
                *ret_stage = ENFORCE_STAGE_IO;
                snprintf(err, err_size, "%s", strerror(-k));
                return k;
        }
        if (endpoints_load_path) {
                k = endpoints_load_json(e, endpoints_load_path, eerr, sizeof(eerr));
                if (k < 0) {
                        *ret_stage = ENFORCE_STAGE_ENDPOINTS;
                        size_t l = strlen(endpoints_load_path);
                        /* Name the operator's file, not our stored copy of it. */
                        if (strncmp(eerr, endpoints_load_path, l) == 0)
                                snprintf(err, err_size, "%s%s", endpoints_name, eerr + l);
                        else
                                snprintf(err, err_size, "%s: %s", endpoints_name,
                                         eerr[0] ? eerr : strerror(-k));
                        return k;
                }
        }
        k = ruleset_compile(p, e, &o, &r, err, err_size);
        if (k < 0) {
                *ret_stage = ENFORCE_STAGE_COMPILE;
                return k;
        }
        if (host)
                resolved = strdup(host);
        else if (p->n_hosts == 1)
                resolved = strdup(p->hosts[0].name);
        if ((host || p->n_hosts == 1) && !resolved) {
                *ret_stage = ENFORCE_STAGE_IO;
                snprintf(err, err_size, "%s", strerror(ENOMEM));
                return -ENOMEM;
        }
        ret->ruleset = TAKE_PTR(r);
        ret->host = TAKE_PTR(resolved);
        policy_sha256_hex(p, ret->sha256);
        return 0;
}

int enforce_compile_files(const char *policy_path, const char *endpoints_path, const char *host,
                          uint16_t nflog_group, const char *state_dir, EnforceTarget *ret,
                          StateRecord **ret_record, EnforceStage *ret_stage, char *err,
                          size_t err_size) {
        _cleanup_free_ char *data = NULL, *edata = NULL;
        _cleanup_(state_record_freep) StateRecord *rec = NULL;
        EnforceTarget t = {};
        char epath[PATH_MAX], esha[65] = "", psha[65] = "";
        const char *load_path = endpoints_path;
        size_t size, esize;
        int k;

        k = state_read_file(policy_path, POLICY_MAX_FILE_SIZE, &data, &size);
        if (k < 0) {
                *ret_stage = ENFORCE_STAGE_IO;
                snprintf(err, err_size, "%s: %s", policy_path, strerror(-k));
                return k;
        }
        if (endpoints_path && state_dir) {
                /* Compile from the stored copy, so the record matches what was compiled. */
                k = state_read_file(endpoints_path, ENFORCE_MAX_ENDPOINTS_FILE, &edata, &esize);
                if (k >= 0)
                        k = state_blob_store(state_dir, edata, esize, esha);
                if (k >= 0)
                        k = state_blob_path(state_dir, esha, epath, sizeof(epath));
                if (k < 0) {
                        *ret_stage = ENFORCE_STAGE_IO;
                        snprintf(err, err_size, "%s: %s", endpoints_path, strerror(-k));
                        return k;
                }
                load_path = epath;
        }
        k = compile_bytes(policy_path, data, size, NULL, load_path, endpoints_path, host,
                          nflog_group, &t, ret_stage, err, err_size);
        if (k < 0)
                return k;
        if (state_dir) {
                k = state_blob_store(state_dir, data, size, psha);
                if (k >= 0)
                        k = state_record_new(STATE_STATUS_APPLIED, &rec);
                if (k >= 0) {
                        memcpy(rec->policy_sha256, psha, sizeof(psha));
                        memcpy(rec->endpoints_sha256, esha, sizeof(esha));
                        k = state_record_set(&rec->policy_path, policy_path);
                }
                if (k >= 0)
                        k = state_record_set(&rec->endpoints_path, endpoints_path);
                if (k >= 0)
                        k = state_record_set(&rec->host, host);
                if (k >= 0)
                        rec->nflog_group = nflog_group;
                if (k < 0) {
                        enforce_target_done(&t);
                        *ret_stage = ENFORCE_STAGE_IO;
                        snprintf(err, err_size, "%s: cannot record the policy: %s", state_dir,
                                 strerror(-k));
                        return k;
                }
        }
        *ret = t;
        if (ret_record)
                *ret_record = TAKE_PTR(rec);
        return 0;
}

int enforce_compile_record(const char *state_dir, const StateRecord *r, EnforceTarget *ret, EnforceStage *ret_stage, char *err,
                           size_t err_size) {
        _cleanup_free_ char *data = NULL;
        _cleanup_(endpoints_freep) Endpoints *inventory = NULL;
        char epath[PATH_MAX];
        size_t size;
        int k;

        if (r->status != STATE_STATUS_APPLIED) {
                *ret_stage = ENFORCE_STAGE_IO;
                snprintf(err, err_size, "%s/%s: nothing is applied (status %s)", state_dir,
                         STATE_APPLIED, state_status_to_string(r->status));
                return -ENOENT;
        }
        k = state_blob_read(state_dir, r->policy_sha256, POLICY_MAX_FILE_SIZE, &data, &size);
        if (k >= 0 && r->endpoints_sha256[0])
                k = state_blob_path(state_dir, r->endpoints_sha256, epath, sizeof(epath));
        if (k < 0) {
                *ret_stage = ENFORCE_STAGE_IO;
                snprintf(err, err_size, "%s: the recorded copy of %s is missing or damaged: %s",
                         state_dir, r->policy_path, strerror(-k));
                return k;
        }
        /* Docker mode: the daemon's containers are part of what it installed. */
        k = inventory_load(state_dir, r, &inventory);
        if (k < 0 && k != -ENOENT) {
                *ret_stage = ENFORCE_STAGE_IO;
                snprintf(err, err_size, "%s/%s: %s", state_dir, STATE_INVENTORY,
                         k == -EBADMSG ? "not an inventory written by the agent" : strerror(-k));
                return k;
        }
        return compile_bytes(r->policy_path, data, size, TAKE_PTR(inventory),
                             r->endpoints_sha256[0] ? epath : NULL, r->endpoints_path, r->host,
                             r->nflog_group, ret, ret_stage, err, err_size);
}

void enforce_format_nft_error(const char *policy_path, int error, const NftError *e, char *buf,
                              size_t size) {
        int k = e && e->error ? e->error : error;

        if (e && e->pos.line)
                snprintf(buf, size, "%s:%u:%u: the kernel refused %s: %s", policy_path,
                         e->pos.line, e->pos.column, e->what[0] ? e->what : "the ruleset",
                         strerror(-k));
        else
                snprintf(buf, size, "%s: the kernel refused %s: %s", policy_path,
                         e && e->what[0] ? e->what : "the ruleset", strerror(-k));
}
