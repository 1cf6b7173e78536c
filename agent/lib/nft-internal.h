/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Internals shared by nft-batch.c (apply, update, disable) and nft-verify.c: the socket, and the
 * builders that turn the ruleset model into libnftnl objects and kernel set elements. Verify
 * uses the very builders apply uses, so "what we would send" and "what is there" are compared
 * in the same terms.
 */
#pragma once

#include "ceredis.h"

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>

#include "nft.h"

struct Nft {
        struct mnl_socket *nl;
        uint32_t portid;
        uint32_t seq;
};

/* One set element as the kernel holds it: single-field interval sets (rbtree) keep a start
 * element and an "interval end" element one past the range; other sets keep [key, key_end]. */
typedef struct NftKElem {
        uint8_t key[RULESET_KEY_MAX];
        uint8_t key_end[RULESET_KEY_MAX];
        bool end;     /* NFT_SET_ELEM_INTERVAL_END */
        bool has_end; /* key_end is sent (concatenated ranges) */
        int32_t chain;
        uint32_t origin;
        bool test_bad;
} NftKElem;

/* The kernel elements of set `s`, in the set's element order (grouped by origin). */
int nft_set_kernel_elems(const RulesetSet *s, NftKElem **ret, size_t *ret_n);
int nft_kelem_cmp(const void *a, const void *b); /* total order, for sorting and diffs */

struct nftnl_chain *nft_build_chain(const Ruleset *r, size_t c);
struct nftnl_set *nft_build_set(const Ruleset *r, size_t s);
struct nftnl_rule *nft_build_rule(const Ruleset *r, size_t i);

/* Send one request and feed every answer to `cb` (a dump, or a single ACK). */
int nft_talk(Nft *n, struct nlmsghdr *nlh, mnl_cb_t cb, void *data);
