/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ceredisctl: the operator's tool. A table of verbs; each lives in agent/ctl/ and works offline
 * where it can, over D-Bus where it needs the running agent.
 */
#include "ceredis.h"

#include "ctl/ctl.h"

static const CtlVerb verbs[] = {
        { "policy", verb_policy, "check, show or compile a policy file" },
        { "apply", verb_apply, "install a policy's ruleset (--confirm SECONDS rolls back unless confirmed)" },
        { "confirm", verb_confirm, "keep the ruleset installed by apply --confirm" },
        { "status", verb_status, "ask the running agent what it enforces (D-Bus)" },
        { "reload", verb_reload, "make the running agent reload its policy (D-Bus)" },
        { "verify", verb_verify, "compare the live ruleset with the compiled policy" },
        { "disable", verb_disable, "remove the agent's tables, and nothing else" },
        { "journal", verb_journal, "verify the tamper-evident event log" },
        { "violations", verb_violations, "list the violations in the event log (--since 10m)" },
        { "audit", verb_audit, "check the nine controls and the CIS Docker items (exit 1 if one fails)" },
        { "report", verb_report, "write a signed compliance report (json, md, html); report verify FILE" },
};

static void usage(FILE *f) {
        fprintf(f,
                "Usage: ceredisctl [--help] [--version] VERB [ARGS...]\n"
                "\n"
                "Verbs:\n");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                fprintf(f, "  %-12s %s\n", verbs[i].name, verbs[i].summary);
        fprintf(f, "\nEvery verb takes --help and --json. Exit codes: 0 ok, 1 fail, 2 error.\n");
}

int main(int argc, char *argv[]) {
        if (argc < 2) {
                usage(stderr);
                return CTL_EXIT_ERROR;
        }
        if (streq(argv[1], "--help") || streq(argv[1], "-h")) {
                usage(stdout);
                return CTL_EXIT_OK;
        }
        if (streq(argv[1], "--version")) {
                printf("ceredisctl %s\n", PACKAGE_VERSION);
                return CTL_EXIT_OK;
        }
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(argv[1], verbs[i].name))
                        return verbs[i].run(argc - 1, argv + 1);

        fprintf(stderr, "ceredisctl: unknown verb '%s' (see ceredisctl --help)\n", argv[1]);
        return CTL_EXIT_ERROR;
}
