/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Helpers shared by several ceredisctl verbs: printing a JSON answer, entering the audited
 * network namespace before opening nf_tables, and reading a --since DURATION. They print
 * their own error messages because they only run at the CLI edge.
 */
#include "ceredis.h"

#include <jansson.h>

#include "ctl/ctl.h"
#include "netns.h"
#include "nft.h"

void ctl_json_print(json_t *o) {
        if (!o) {
                fprintf(stderr, "ceredisctl: cannot format the JSON answer\n");
                return;
        }
        json_dumpf(o, stdout, JSON_COMPACT);
        fputc('\n', stdout);
        json_decref(o);
}

int ctl_enter_netns(const char *verb, const char *netns) {
        int k;

        if (!netns)
                return 0;
        k = netns_enter(netns);
        if (k < 0)
                fprintf(stderr, "ceredisctl %s: cannot enter network namespace %s: %s\n", verb, netns,
                        strerror(-k));
        return k;
}

int ctl_open_kernel(const char *verb, const char *netns, Nft **ret) {
        int k;

        k = ctl_enter_netns(verb, netns);
        if (k < 0)
                return k;
        k = nft_open(ret);
        if (k < 0)
                fprintf(stderr, "ceredisctl %s: cannot open a netlink socket to nf_tables: %s\n", verb,
                        strerror(-k));
        return k;
}

int ctl_parse_duration(const char *s, uint64_t *ret_usec) {
        static const struct {
                char unit;
                uint64_t usec;
        } units[] = {
                { 's', 1000000ull }, { 'm', 60000000ull }, { 'h', 3600000000ull },
                { 'd', 86400000000ull }, { 'w', 604800000000ull },
        };
        char *end;
        unsigned long long v;

        if (!s || *s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno || end == s || end[0] == 0 || end[1] != 0)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (units[i].unit == *end) {
                        if (v > UINT64_MAX / units[i].usec)
                                return -ERANGE;
                        *ret_usec = v * units[i].usec;
                        return 0;
                }
        return -EINVAL;
}
