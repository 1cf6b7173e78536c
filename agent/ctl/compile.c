/* SPDX-License-Identifier: GPL-2.0-or-later */
/* PLACEHOLDER owned by the ruleset helper: replaced by the real `policy compile`. */
#include "ceredis.h"
#include "ctl/ctl.h"
int verb_policy_compile(int argc, char *argv[]) {
        fprintf(stderr, "ceredisctl policy compile: not built yet\n");
        return CTL_EXIT_ERROR;
}
