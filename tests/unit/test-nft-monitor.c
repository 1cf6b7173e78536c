/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nft_monitor_parse(): netlink notifications built with libnftnl, as the kernel would send
 * them, must be recognised when they touch the agent's table and ignored otherwise; malformed
 * or truncated messages must never be trusted (nor crash us).
 */
#include "ceredis.h"

#include "nft-monitor.h"
#include "ruleset.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

typedef struct Buf {
        char data[16384] __attribute__((aligned(8)));
        size_t len;
} Buf;

static struct nlmsghdr *next_hdr(Buf *b, uint16_t type, uint16_t family) {
        return nftnl_nlmsg_build_hdr(b->data + b->len, type, family, 0, 1);
}

static void commit(Buf *b, struct nlmsghdr *nlh) {
        b->len += MNL_ALIGN(nlh->nlmsg_len);
}

static void add_table(Buf *b, uint16_t type, uint16_t family, const char *name) {
        struct nftnl_table *t = nftnl_table_alloc();
        struct nlmsghdr *nlh = next_hdr(b, type, family);

        nftnl_table_set_str(t, NFTNL_TABLE_NAME, name);
        nftnl_table_nlmsg_build_payload(nlh, t);
        nftnl_table_free(t);
        commit(b, nlh);
}

static void add_chain(Buf *b, uint16_t type, uint16_t family, const char *table) {
        struct nftnl_chain *c = nftnl_chain_alloc();
        struct nlmsghdr *nlh = next_hdr(b, type, family);

        nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, table);
        nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, "input");
        nftnl_chain_nlmsg_build_payload(nlh, c);
        nftnl_chain_free(c);
        commit(b, nlh);
}

static void add_rule(Buf *b, uint16_t type, uint16_t family, const char *table) {
        struct nftnl_rule *r = nftnl_rule_alloc();
        struct nlmsghdr *nlh = next_hdr(b, type, family);

        nftnl_rule_set_str(r, NFTNL_RULE_TABLE, table);
        nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, "input");
        nftnl_rule_set_u64(r, NFTNL_RULE_HANDLE, 4);
        nftnl_rule_nlmsg_build_payload(nlh, r);
        nftnl_rule_free(r);
        commit(b, nlh);
}

static void add_setelem(Buf *b, uint16_t type, uint16_t family, const char *table) {
        struct nftnl_set *s = nftnl_set_alloc();
        struct nftnl_set_elem *e = nftnl_set_elem_alloc();
        struct nlmsghdr *nlh = next_hdr(b, type, family);
        uint32_t key = htonl(0xac120005); /* 172.18.0.5 */

        nftnl_set_set_str(s, NFTNL_SET_TABLE, table);
        nftnl_set_set_str(s, NFTNL_SET_NAME, "allow4");
        nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, &key, sizeof(key));
        nftnl_set_elem_add(s, e);
        nftnl_set_elems_nlmsg_build_payload(nlh, s);
        nftnl_set_free(s);
        commit(b, nlh);
}

static void add_newgen(Buf *b) {
        struct nlmsghdr *nlh = next_hdr(b, NFT_MSG_NEWGEN, NFPROTO_UNSPEC);

        mnl_attr_put_u32(nlh, NFTA_GEN_ID, htonl(42));
        mnl_attr_put_strz(nlh, NFTA_GEN_PROC_NAME, "nft");
        commit(b, nlh);
}

static void test_touches_ours(void **state) {
        static const struct {
                void (*add)(Buf *, uint16_t, uint16_t, const char *);
                uint16_t type;
        } cases[] = {
                { add_table, NFT_MSG_DELTABLE },   { add_table, NFT_MSG_NEWTABLE },
                { add_chain, NFT_MSG_DELCHAIN },   { add_rule, NFT_MSG_DELRULE },
                { add_rule, NFT_MSG_NEWRULE },     { add_setelem, NFT_MSG_DELSETELEM },
                { add_setelem, NFT_MSG_NEWSETELEM },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Buf b = {}, other = {};

                cases[i].add(&b, cases[i].type, NFPROTO_INET, RULESET_TABLE);
                assert_int_equal(nft_monitor_parse(b.data, b.len), 1);
                /* The same change to somebody else's table is none of our business. */
                cases[i].add(&other, cases[i].type, NFPROTO_IPV4, "nat");
                assert_int_equal(nft_monitor_parse(other.data, other.len), 0);
        }
}

static void test_bridge_table_is_ours(void **state) {
        Buf b = {};

        add_chain(&b, NFT_MSG_NEWCHAIN, NFPROTO_BRIDGE, RULESET_TABLE);
        assert_int_equal(nft_monitor_parse(b.data, b.len), 1);
}

static void test_names_match_exactly(void **state) {
        Buf b = {};

        add_table(&b, NFT_MSG_DELTABLE, NFPROTO_INET, "ceredis2");
        add_table(&b, NFT_MSG_DELTABLE, NFPROTO_INET, "cered");
        add_table(&b, NFT_MSG_DELTABLE, NFPROTO_INET, "");
        assert_int_equal(nft_monitor_parse(b.data, b.len), 0);
}

static void test_burst_mixed(void **state) {
        Buf b = {};

        add_table(&b, NFT_MSG_NEWTABLE, NFPROTO_IPV4, "nat");
        add_chain(&b, NFT_MSG_NEWCHAIN, NFPROTO_IPV4, "nat");
        add_newgen(&b);
        assert_int_equal(nft_monitor_parse(b.data, b.len), 0);
        add_rule(&b, NFT_MSG_DELRULE, NFPROTO_INET, RULESET_TABLE);
        add_newgen(&b);
        assert_int_equal(nft_monitor_parse(b.data, b.len), 1);
}

static void test_other_subsystem_ignored(void **state) {
        Buf b = {};
        struct nlmsghdr *nlh = mnl_nlmsg_put_header(b.data);
        struct nfgenmsg *g;

        /* A conntrack message whose attribute 1 happens to read "ceredis". */
        nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | 0;
        g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
        g->nfgen_family = NFPROTO_INET;
        mnl_attr_put_strz(nlh, 1, RULESET_TABLE);
        commit(&b, nlh);
        assert_int_equal(nft_monitor_parse(b.data, b.len), 0);
}

static void test_malformed_not_trusted(void **state) {
        Buf b = {};
        struct nlmsghdr *nlh;
        struct nfgenmsg *g;

        /* A table name without its NUL terminator. */
        nlh = mnl_nlmsg_put_header(b.data);
        nlh->nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_DELTABLE;
        g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
        g->nfgen_family = NFPROTO_INET;
        mnl_attr_put(nlh, NFTA_TABLE_NAME, strlen(RULESET_TABLE), RULESET_TABLE);
        commit(&b, nlh);
        assert_int_equal(nft_monitor_parse(b.data, b.len), 0);

        /* A message too short for its nfgenmsg. */
        memset(&b, 0, sizeof(b));
        nlh = mnl_nlmsg_put_header(b.data);
        nlh->nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_DELTABLE;
        commit(&b, nlh);
        assert_int_equal(nft_monitor_parse(b.data, b.len), 0);
}

static void test_truncated(void **state) {
        Buf b = {};
        struct nlmsghdr *nlh;

        add_table(&b, NFT_MSG_DELTABLE, NFPROTO_INET, RULESET_TABLE);
        for (size_t cut = 0; cut < b.len; cut++)
                assert_int_equal(nft_monitor_parse(b.data, cut), 0);
        assert_int_equal(nft_monitor_parse(b.data, b.len), 1);

        /* A header announcing more than the buffer holds ends the walk. */
        nlh = (struct nlmsghdr *) b.data;
        nlh->nlmsg_len = (uint32_t) b.len + 64;
        assert_int_equal(nft_monitor_parse(b.data, b.len), 0);
        /* ... and so does one announcing less than a header. */
        nlh->nlmsg_len = 4;
        assert_int_equal(nft_monitor_parse(b.data, b.len), 0);
        assert_int_equal(nft_monitor_parse(NULL, 0), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_touches_ours),
                cmocka_unit_test(test_bridge_table_is_ours),
                cmocka_unit_test(test_names_match_exactly),
                cmocka_unit_test(test_burst_mixed),
                cmocka_unit_test(test_other_subsystem_ignored),
                cmocka_unit_test(test_malformed_not_trusted),
                cmocka_unit_test(test_truncated),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
