/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ceredisctl verbs. Each verb parses its own options and returns the process exit code:
 * 0 ok / all controls pass, 1 a control fails, a policy is invalid or a violation is found,
 * 2 usage or runtime error (SPEC section 6).
 */
#pragma once

#include "ceredis.h"

enum {
        CTL_EXIT_OK = 0,
        CTL_EXIT_FAIL = 1,
        CTL_EXIT_ERROR = 2,
};

typedef struct CtlVerb {
        const char *name;
        int (*run)(int argc, char *argv[]);
        const char *summary;
} CtlVerb;

int verb_policy(int argc, char *argv[]);
/* `policy compile FILE`, dispatched from verb_policy(). */
int verb_policy_compile(int argc, char *argv[]);
int verb_apply(int argc, char *argv[]);
int verb_confirm(int argc, char *argv[]);
int verb_verify(int argc, char *argv[]);
int verb_disable(int argc, char *argv[]);
int verb_journal(int argc, char *argv[]);
int verb_violations(int argc, char *argv[]);
int verb_audit(int argc, char *argv[]);
int verb_report(int argc, char *argv[]);
/* Over D-Bus (status.c). */
int verb_status(int argc, char *argv[]);
int verb_reload(int argc, char *argv[]);

/* Shared helpers (ctl-util.c); they print their own errors. */
typedef struct json_t json_t;
typedef struct Nft Nft;
/* Print `o` compactly with a newline and drop the reference; NULL prints an error. */
void ctl_json_print(json_t *o);
/* Enter network namespace `netns` (NULL: stay) before any socket is opened. */
int ctl_enter_netns(const char *verb, const char *netns);
/* ctl_enter_netns(), then nft_open(). */
int ctl_open_kernel(const char *verb, const char *netns, Nft **ret);
/* "90s", "10m", "1h", "2d", "1w" -> microseconds. */
int ctl_parse_duration(const char *s, uint64_t *ret_usec);
