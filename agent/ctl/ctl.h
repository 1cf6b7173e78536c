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
