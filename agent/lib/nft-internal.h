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

/* Receive buffer: a dump message holds up to a page of elements; MNL_SOCKET_BUFFER_SIZE is 8 KB. */
#define NFT_RECV_SIZE 65536u

struct Nft {
        struct mnl_socket *nl;
        uint32_t portid;
        uint32_t seq;
        size_t sndbuf, rcvbuf; /* what SO_*BUFFORCE was last set to, 0: the default */
        char buf[NFT_RECV_SIZE]; /* ACKs and dumps, reused */
};

/* One set element as the kernel holds it: single-field interval sets (rbtree) keep a start
 * element and an "interval end" element one past the range; other sets keep [key, key_end]. */
typedef struct NftKElem {
        uint8_t key[RULESET_KEY_MAX];
        uint8_t key_end[RULESET_KEY_MAX];
        bool end;     /* NFT_SET_ELEM_INTERVAL_END */
        bool has_end; /* key_end is sent (concatenated ranges) */
        uint32_t origin;
        bool test_bad;
} NftKElem;

/* The kernel elements of model element `e` of set `s` (1, or 2 for a range of a single-field
 * interval set: its start and its interval end). Returns how many it wrote to `out`. */
size_t nft_kernel_elems_of(const RulesetSet *s, const RulesetElem *e, NftKElem out[2]);
int nft_kelem_cmp(const void *a, const void *b); /* total order, for sorting and diffs */

struct nftnl_chain *nft_build_chain(const Ruleset *r, size_t c);
struct nftnl_set *nft_build_set(const Ruleset *r, size_t s);
struct nftnl_rule *nft_build_rule(const Ruleset *r, size_t i);

/* Send one request and feed every answer to `cb` (a dump, or a single ACK). */
int nft_talk(Nft *n, struct nlmsghdr *nlh, mnl_cb_t cb, void *data);
