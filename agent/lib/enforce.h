/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * From inputs to a ruleset, the way `ceredisctl apply`, `verify`, a rollback and the daemon
 * all need it: policy bytes (from the operator's file or from a state blob) + an optional
 * endpoints file + a host name -> a compiled Ruleset and the StateRecord that describes it.
 * Keeping this in one place means what verify recompiles is exactly what apply installed.
 */
#pragma once

#include "ceredis.h"
#include "ruleset.h"
#include "state.h"

/* Which stage refused the inputs: the CLI maps a policy error to exit 1, the rest to 2. */
typedef enum EnforceStage {
        ENFORCE_STAGE_IO,        /* reading a file or a blob */
        ENFORCE_STAGE_POLICY,    /* policy invalid: err is "FILE:LINE:COL: ..." */
        ENFORCE_STAGE_ENDPOINTS, /* endpoints file invalid */
        ENFORCE_STAGE_COMPILE,   /* the policy cannot be compiled for this host */
} EnforceStage;

typedef struct EnforceTarget {
        Ruleset *ruleset;
        char *host;    /* the host name compiled for (resolved when the policy has one) */
        char sha256[65]; /* of the policy bytes */
} EnforceTarget;

void enforce_target_done(EnforceTarget *t);

/* Read the operator's files, compile them, and (when state_dir is not NULL) store copies as
 * blobs and fill *ret_record (status APPLIED, not saved). On failure *ret_stage and err say
 * what went wrong. */
int enforce_compile_files(const char *policy_path, const char *endpoints_path, const char *host,
                          uint16_t nflog_group, const char *state_dir, EnforceTarget *ret,
                          StateRecord **ret_record, EnforceStage *ret_stage, char *err,
                          size_t err_size);

/* Recompile what an APPLIED record names, from its blobs in state_dir, with the daemon's
 * Docker inventory when one was saved for this record (inventory.h). */
int enforce_compile_record(const char *state_dir, const StateRecord *r, EnforceTarget *ret, EnforceStage *ret_stage, char *err,
                           size_t err_size);

typedef struct NftError NftError;
/* "POLICY:LINE:COL: the kernel refused WHAT: REASON" (without a position when it has none). */
void enforce_format_nft_error(const char *policy_path, int error, const NftError *e, char *buf,
                              size_t size);
