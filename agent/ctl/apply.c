/* SPDX-License-Identifier: GPL-2.0-or-later */
/* PLACEHOLDER owned by the agent helper: replaced by the real apply/confirm/verify/disable. */
#include "ceredis.h"
#include "ctl/ctl.h"
static int todo(const char *v) {
        fprintf(stderr, "ceredisctl %s: not built yet\n", v);
        return CTL_EXIT_ERROR;
}
int verb_apply(int argc, char *argv[]) { return todo("apply"); }
int verb_confirm(int argc, char *argv[]) { return todo("confirm"); }
int verb_verify(int argc, char *argv[]) { return todo("verify"); }
int verb_disable(int argc, char *argv[]) { return todo("disable"); }
