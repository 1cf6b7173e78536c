/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The applier: the ruleset model becomes ONE nf_tables netlink batch (libnftnl objects for the
 * table, chains, sets and rules; set elements written straight into the messages with libmnl,
 * many per message and no allocation per element). The batch replaces `inet ceredis`
 * atomically: NEWTABLE (create if absent), DELTABLE, NEWTABLE, chains, sets, elements, rules.
 * The kernel applies all of it or nothing, so a refused batch leaves the old table in place.
 * Every message asks for an ACK and remembers the policy entry it came from: the first error
 * is reported against that entry's position in the policy file.
 */
#include "ceredis.h"

#include <netinet/in.h>
#include <limits.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_conntrack_tuple_common.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <arpa/inet.h>
#include <endian.h>
#include <libnftnl/batch.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/table.h>
#include <sys/socket.h>
#include <time.h>

#include "nft-internal.h"

#define NFT_PAGE_SIZE (2u * 1024u * 1024u)
#define NFT_PAGE_SMALL (64u * 1024u) /* updates and disable: a few messages */
#define NFT_PAGE_OVERRUN (256u * 1024u)
/* Element attributes per NEWSETELEM: the ELEMENTS nest length is 16 bits. */
#define NFT_ELEMS_PER_MSG_BYTES 60000u
#define NFT_MAX_ELEM_BYTES 256u

int nft_open(Nft **ret) {
        _cleanup_free_ Nft *n = calloc(1, sizeof(*n));
        int one = 1;

        if (!n)
                return -ENOMEM;
        n->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
        if (!n->nl)
                return negative_errno();
        if (mnl_socket_bind(n->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
                int k = negative_errno();
                mnl_socket_close(n->nl);
                return k;
        }
        /* Errors carry only the header of the failing message, not its 60 KiB of elements. */
        (void) mnl_socket_setsockopt(n->nl, NETLINK_CAP_ACK, &one, sizeof(one));
        (void) mnl_socket_setsockopt(n->nl, NETLINK_EXT_ACK, &one, sizeof(one));
        n->portid = mnl_socket_get_portid(n->nl);
        n->seq = (uint32_t) time(NULL);
        *ret = TAKE_PTR(n);
        return 0;
}

void nft_close(Nft *n) {
        if (!n)
                return;
        if (n->nl)
                mnl_socket_close(n->nl);
        free(n);
}

int nft_fd(const Nft *n) {
        return mnl_socket_get_fd(n->nl);
}

/* ---- kernel elements ------------------------------------------------------------------------ */

int nft_kelem_cmp(const void *a, const void *b) {
        const NftKElem *x = a, *y = b;
        int d = memcmp(x->key, y->key, RULESET_KEY_MAX);

        if (d == 0)
                d = (int) x->end - (int) y->end;
        if (d == 0)
                d = memcmp(x->key_end, y->key_end, RULESET_KEY_MAX);
        return d;
}

static bool all_ff(const uint8_t *b, size_t len) {
        for (size_t i = 0; i < len; i++)
                if (b[i] != 0xff)
                        return false;
        return true;
}

size_t nft_kernel_elems_of(const RulesetSet *s, const RulesetElem *e, NftKElem out[2]) {
        size_t len = s->key_len;
        NftKElem *k = &out[0];

        memset(k, 0, sizeof(*k));
        memcpy(k->key, e->key, len);
        k->origin = e->origin;
        k->test_bad = e->test_bad;
        if (!(s->flags & RULESET_SET_INTERVAL))
                return 1;
        if (s->n_key > 1) {
                memcpy(k->key_end, e->key_end, len);
                k->has_end = true;
                return 1;
        }
        /* Every range is closed by an "interval end" element one past its end: the kernel
         * (rbtree) refuses two start elements in a row (normalisation merged the neighbours
         * that would need it). A range reaching the top needs none. */
        if (all_ff(e->key_end, len))
                return 1;
        k = &out[1];
        memset(k, 0, sizeof(*k));
        memcpy(k->key, e->key_end, len);
        for (size_t i = len; i-- > 0;)
                if (++k->key[i] != 0)
                        break;
        k->end = true;
        k->origin = e->origin;
        return 2;
}

/* ---- objects ---------------------------------------------------------------------------------- */

struct nftnl_chain *nft_build_chain(const Ruleset *r, size_t c) {
        const RulesetChain *ch = &r->chains[c];
        struct nftnl_chain *o = nftnl_chain_alloc();

        if (!o)
                return NULL;
        nftnl_chain_set_str(o, NFTNL_CHAIN_TABLE, RULESET_TABLE);
        nftnl_chain_set_str(o, NFTNL_CHAIN_NAME, ch->name);
        nftnl_chain_set_u32(o, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
        if (ch->hook >= 0) {
                nftnl_chain_set_u32(o, NFTNL_CHAIN_HOOKNUM, (uint32_t) ch->hook);
                /* priority filter - 10: before Docker's filter chains; a drop here is final. */
                nftnl_chain_set_s32(o, NFTNL_CHAIN_PRIO, -10);
                nftnl_chain_set_str(o, NFTNL_CHAIN_TYPE, "filter");
                nftnl_chain_set_u32(o, NFTNL_CHAIN_POLICY, NF_ACCEPT);
        }
        return o;
}

struct nftnl_set *nft_build_set(const Ruleset *r, size_t i) {
        const RulesetSet *s = &r->sets[i];
        struct nftnl_set *o = nftnl_set_alloc();
        uint32_t flags = 0, type = 0;

        if (!o)
                return NULL;
        nftnl_set_set_str(o, NFTNL_SET_TABLE, RULESET_TABLE);
        nftnl_set_set_str(o, NFTNL_SET_NAME, s->name);
        nftnl_set_set_u32(o, NFTNL_SET_FAMILY, NFPROTO_INET);
        nftnl_set_set_u32(o, NFTNL_SET_ID, (uint32_t) i + 1);
        nftnl_set_set_u32(o, NFTNL_SET_KEY_LEN, (uint32_t) s->key_len);
        /* nft's concatenated type id: 6 bits per field, so `nft list` prints the keys. */
        for (size_t f = 0; f < s->n_key; f++)
                type = type << 6 | ruleset_field_type(s->key[f]);
        nftnl_set_set_u32(o, NFTNL_SET_KEY_TYPE, type);
        if (s->flags & RULESET_SET_INTERVAL)
                flags |= NFT_SET_INTERVAL;
        if (s->flags & RULESET_SET_TIMEOUT)
                flags |= NFT_SET_TIMEOUT;
        if ((s->flags & RULESET_SET_INTERVAL) && s->n_key > 1) {
                uint8_t field_len[RULESET_MAX_FIELDS + 1] = {};

                flags |= NFT_SET_CONCAT;
                for (size_t f = 0; f < s->n_key; f++)
                        field_len[f] = (uint8_t) ruleset_field_len(s->key[f]);
                nftnl_set_set_data(o, NFTNL_SET_DESC_CONCAT, field_len, (uint32_t) s->n_key);
        }
        nftnl_set_set_u32(o, NFTNL_SET_FLAGS, flags);
        return o;
}

static int add_expr(struct nftnl_rule *o, struct nftnl_expr *e) {
        if (!e)
                return -ENOMEM;
        nftnl_rule_add_expr(o, e);
        return 0;
}

static struct nftnl_expr *expr_meta(uint32_t key, uint32_t reg) {
        struct nftnl_expr *e = nftnl_expr_alloc("meta");
        if (e) {
                nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
                nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, reg);
        }
        return e;
}

static struct nftnl_expr *expr_payload(uint32_t base, uint32_t off, uint32_t len, uint32_t reg) {
        struct nftnl_expr *e = nftnl_expr_alloc("payload");
        if (e) {
                nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
                nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, off);
                nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
                nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, reg);
        }
        return e;
}

static struct nftnl_expr *expr_ct(uint32_t key, int dir, uint32_t reg) {
        struct nftnl_expr *e = nftnl_expr_alloc("ct");
        if (e) {
                nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, key);
                if (dir >= 0)
                        nftnl_expr_set_u8(e, NFTNL_EXPR_CT_DIR, (uint8_t) dir);
                nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, reg);
        }
        return e;
}

static struct nftnl_expr *expr_cmp(uint32_t op, const void *data, uint32_t len) {
        struct nftnl_expr *e = nftnl_expr_alloc("cmp");
        if (e) {
                nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
                nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
                nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
        }
        return e;
}

static struct nftnl_expr *expr_mask(uint32_t mask) {
        struct nftnl_expr *e = nftnl_expr_alloc("bitwise");
        uint32_t zero = 0;
        if (e) {
                nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
                nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
                nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, 4);
                nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, &mask, 4);
                nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, &zero, 4);
        }
        return e;
}

/* Load `f` into the register that holds byte `off` of a concatenated key. */
static struct nftnl_expr *expr_field(RulesetField f, size_t off) {
        /* The kernel dumps a 32-bit register on a 16-byte boundary as the 128-bit one: name
         * it that way too, so that verify compares like with like. */
        uint32_t reg = off % 16 == 0 ? NFT_REG_1 + (uint32_t) (off / 16)
                                     : NFT_REG32_00 + (uint32_t) (off / 4);

        switch (f) {
        case RULESET_FIELD_IIFNAME:
                return expr_meta(NFT_META_IIFNAME, reg);
        case RULESET_FIELD_SADDR4:
                return expr_payload(NFT_PAYLOAD_NETWORK_HEADER, 12, 4, reg);
        case RULESET_FIELD_DADDR4:
                return expr_payload(NFT_PAYLOAD_NETWORK_HEADER, 16, 4, reg);
        case RULESET_FIELD_SADDR6:
                return expr_payload(NFT_PAYLOAD_NETWORK_HEADER, 8, 16, reg);
        case RULESET_FIELD_DADDR6:
                return expr_payload(NFT_PAYLOAD_NETWORK_HEADER, 24, 16, reg);
        case RULESET_FIELD_L4PROTO:
                return expr_meta(NFT_META_L4PROTO, reg);
        case RULESET_FIELD_TH_DPORT:
                return expr_payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, reg);
        case RULESET_FIELD_TH_SPORT:
                return expr_payload(NFT_PAYLOAD_TRANSPORT_HEADER, 0, 2, reg);
        case RULESET_FIELD_CT_ORIG_PROTO_DST:
                return expr_ct(NFT_CT_PROTO_DST, IP_CT_DIR_ORIGINAL, reg);
        default:
                return NULL;
        }
}

static int add_nfproto(struct nftnl_rule *o, uint8_t nfproto) {
        int k = add_expr(o, expr_meta(NFT_META_NFPROTO, NFT_REG_1));
        return k < 0 ? k : add_expr(o, expr_cmp(NFT_CMP_EQ, &nfproto, 1));
}

static int add_stmt(const Ruleset *r, const RulesetRule *rule, const RulesetStmt *st,
                    struct nftnl_rule *o) {
        const RulesetSet *s = &r->sets[st->set];
        const RulesetField *fields = st->n_fields ? st->fields : s->key;
        size_t n_fields = st->n_fields ? st->n_fields : s->n_key, off = 0;
        uint8_t zero4[4] = {}, v = st->value;
        struct nftnl_expr *e;
        int k;

        switch (st->kind) {
        case RULESET_STMT_CT_ESTABLISHED:
                if ((k = add_expr(o, expr_ct(NFT_CT_STATE, -1, NFT_REG_1))) < 0 ||
                    (k = add_expr(o, expr_mask(NF_CT_STATE_BIT(IP_CT_ESTABLISHED) |
                                               NF_CT_STATE_BIT(IP_CT_RELATED)))) < 0)
                        return k;
                return add_expr(o, expr_cmp(NFT_CMP_NEQ, zero4, 4));
        case RULESET_STMT_L4PROTO:
                k = add_expr(o, expr_meta(NFT_META_L4PROTO, NFT_REG_1));
                return k < 0 ? k : add_expr(o, expr_cmp(NFT_CMP_EQ, &v, 1));
        case RULESET_STMT_ICMPV6_TYPE: {
                uint8_t icmpv6 = IPPROTO_ICMPV6;

                if ((k = add_nfproto(o, NFPROTO_IPV6)) < 0 ||
                    (k = add_expr(o, expr_meta(NFT_META_L4PROTO, NFT_REG_1))) < 0 ||
                    (k = add_expr(o, expr_cmp(NFT_CMP_EQ, &icmpv6, 1))) < 0 ||
                    (k = add_expr(o, expr_payload(NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1,
                                                  NFT_REG_1))) < 0)
                        return k;
                return add_expr(o, expr_cmp(NFT_CMP_EQ, &v, 1));
        }
        case RULESET_STMT_CT_DNAT:
                if ((k = add_expr(o, expr_ct(NFT_CT_STATUS, -1, NFT_REG_1))) < 0 ||
                    (k = add_expr(o, expr_mask(IPS_DST_NAT))) < 0)
                        return k;
                return add_expr(o, expr_cmp(NFT_CMP_NEQ, zero4, 4));
        case RULESET_STMT_LOOKUP:
                /* The address family is a dependency nft adds implicitly; so do we. */
                for (size_t i = 0; i < n_fields; i++) {
                        if (fields[i] == RULESET_FIELD_SADDR4 || fields[i] == RULESET_FIELD_DADDR4) {
                                k = add_nfproto(o, NFPROTO_IPV4);
                                break;
                        }
                        if (fields[i] == RULESET_FIELD_SADDR6 || fields[i] == RULESET_FIELD_DADDR6) {
                                k = add_nfproto(o, NFPROTO_IPV6);
                                break;
                        }
                }
                for (size_t i = 0; i < n_fields; i++) {
                        k = add_expr(o, expr_field(fields[i], off));
                        if (k < 0)
                                return k;
                        off += (ruleset_field_len(fields[i]) + 3) & ~(size_t) 3;
                }
                e = nftnl_expr_alloc("lookup");
                if (!e)
                        return -ENOMEM;
                nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
                nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, s->name);
                nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, (uint32_t) st->set + 1);
                /* Always sent: the kernel dumps it, and verify compares like with like. */
                nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, st->negate ? NFT_LOOKUP_F_INV : 0);
                return add_expr(o, e);
        case RULESET_STMT_LOG:
                e = nftnl_expr_alloc("log");
                if (!e)
                        return -ENOMEM;
                nftnl_expr_set_str(e, NFTNL_EXPR_LOG_PREFIX, rule->log_prefix);
                nftnl_expr_set_u16(e, NFTNL_EXPR_LOG_GROUP, r->nflog_group);
                /* Deliver each record at once: the watcher's latency, not nfnetlink_log's
                 * default batching of 100 records or one second, sets when a violation is seen. */
                nftnl_expr_set_u16(e, NFTNL_EXPR_LOG_QTHRESHOLD, 1);
                return add_expr(o, e);
        }
        return -EINVAL;
}

struct nftnl_rule *nft_build_rule(const Ruleset *r, size_t i) {
        const RulesetRule *rule = &r->rules[i];
        struct nftnl_rule *o = nftnl_rule_alloc();
        struct nftnl_expr *e;

        if (!o)
                return NULL;
        nftnl_rule_set_str(o, NFTNL_RULE_TABLE, RULESET_TABLE);
        nftnl_rule_set_str(o, NFTNL_RULE_CHAIN, r->chains[rule->chain].name);
        nftnl_rule_set_u32(o, NFTNL_RULE_FAMILY, NFPROTO_INET);
        for (size_t s = 0; s < rule->n_stmts; s++)
                if (add_stmt(r, rule, &rule->stmts[s], o) < 0)
                        goto fail;
        if (rule->verdict == RULESET_VERDICT_NONE)
                return o;
        e = nftnl_expr_alloc("immediate");
        if (!e)
                goto fail;
        nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
        switch (rule->verdict) {
        case RULESET_VERDICT_ACCEPT:
                nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, NF_ACCEPT);
                break;
        case RULESET_VERDICT_DROP:
                nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, NF_DROP);
                break;
        default:
                nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t) NFT_JUMP);
                nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, r->chains[rule->target].name);
                break;
        }
        nftnl_rule_add_expr(o, e);
        return o;
fail:
        nftnl_rule_free(o);
        return NULL;
}

/* ---- the batch ------------------------------------------------------------------------------ */

/* What each message of a batch was, to name it when the kernel refuses it. */
typedef struct MsgInfo {
        uint32_t origin;
        const char *kind; /* "table", "chain", "set", "rule", "elements of set" */
        const char *name;
} MsgInfo;

typedef struct Batch {
        Nft *nft;
        struct nftnl_batch *b;
        uint32_t seq_first;
        uint32_t n_msgs;
        MsgInfo *info;
        size_t allocated;
} Batch;

static void batch_done(Batch *b) {
        if (b->b)
                nftnl_batch_free(b->b);
        free(b->info);
}

/* `page`: the size of the batch's buffers; a full apply writes a few MB, an update a few KB. */
static int batch_init(Batch *b, Nft *n, uint32_t page) {
        *b = (Batch) { .nft = n };
        b->b = nftnl_batch_alloc(page, NFT_PAGE_OVERRUN);
        if (!b->b)
                return -ENOMEM;
        b->seq_first = ++n->seq;
        nftnl_batch_begin(nftnl_batch_buffer(b->b), n->seq);
        return nftnl_batch_update(b->b) < 0 ? -ENOMEM : 0;
}

static struct nlmsghdr *batch_msg(Batch *b, uint16_t type, uint16_t flags, uint32_t origin,
                                  const char *kind, const char *name) {
        if (ARRAY_GROW(b->info, b->allocated, b->n_msgs + 1, UINT32_MAX / 2) < 0)
                return NULL;
        b->info[b->n_msgs++] = (MsgInfo) { .origin = origin, .kind = kind, .name = name };
        return nftnl_nlmsg_build_hdr(nftnl_batch_buffer(b->b), type, NFPROTO_INET,
                                     flags | NLM_F_ACK, ++b->nft->seq);
}

static int batch_next(Batch *b) {
        return nftnl_batch_update(b->b) < 0 ? -ENOMEM : 0;
}

static int batch_table(Batch *b, uint16_t type, uint16_t flags) {
        struct nftnl_table *t = nftnl_table_alloc();
        struct nlmsghdr *nlh;

        if (!t)
                return -ENOMEM;
        nftnl_table_set_str(t, NFTNL_TABLE_NAME, RULESET_TABLE);
        nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
        nlh = batch_msg(b, type, flags, 0, "table", RULESET_TABLE);
        if (!nlh) {
                nftnl_table_free(t);
                return -ENOMEM;
        }
        nftnl_table_nlmsg_build_payload(nlh, t);
        nftnl_table_free(t);
        return batch_next(b);
}

static void put_data(struct nlmsghdr *nlh, uint16_t type, const void *data, size_t len) {
        struct nlattr *nest = mnl_attr_nest_start(nlh, type);
        mnl_attr_put(nlh, NFTA_DATA_VALUE, len, data);
        mnl_attr_nest_end(nlh, nest);
}

static void put_kelem(struct nlmsghdr *nlh, const RulesetSet *s, const NftKElem *e) {
        struct nlattr *el = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);

        put_data(nlh, NFTA_SET_ELEM_KEY, e->key, s->key_len + (e->test_bad ? 4 : 0));
        if (e->has_end)
                put_data(nlh, NFTA_SET_ELEM_KEY_END, e->key_end, s->key_len);
        if (e->end)
                mnl_attr_put_u32(nlh, NFTA_SET_ELEM_FLAGS, htonl(NFT_SET_ELEM_INTERVAL_END));
        mnl_attr_nest_end(nlh, el);
}

/* Elements of one set, written straight from the model into the batch: a message per origin
 * (and per 60 KB), so that an error names one policy entry. `elems` is grouped by origin. */
static int batch_elems(Batch *b, const Ruleset *r, size_t si, const RulesetElem *elems, size_t n,
                       uint16_t type) {
        const RulesetSet *s = &r->sets[si];

        for (size_t i = 0; i < n;) {
                struct nlmsghdr *nlh;
                struct nlattr *list;
                uint32_t origin = elems[i].origin;
                int k;

                nlh = batch_msg(b, type, type == NFT_MSG_NEWSETELEM ? NLM_F_CREATE : 0, origin,
                                "elements of set", s->name);
                if (!nlh)
                        return -ENOMEM;
                mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, RULESET_TABLE);
                mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, s->name);
                list = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_LIST_ELEMENTS);
                for (; i < n && elems[i].origin == origin; i++) {
                        NftKElem ke[2];
                        size_t n_ke;

                        /* Room for a start and its interval end, so that they stay together. */
                        if ((size_t) ((char *) mnl_nlmsg_get_payload_tail(nlh) - (char *) list) +
                                    2 * NFT_MAX_ELEM_BYTES >
                            NFT_ELEMS_PER_MSG_BYTES)
                                break;
                        n_ke = nft_kernel_elems_of(s, &elems[i], ke);
                        for (size_t j = 0; j < n_ke; j++)
                                put_kelem(nlh, s, &ke[j]);
                }
                mnl_attr_nest_end(nlh, list);
                k = batch_next(b);
                if (k < 0)
                        return k;
        }
        return 0;
}

/* Describe message `m` of the batch for an error. */
static void batch_describe(const Batch *b, const Ruleset *r, uint32_t m, int error,
                           NftError *ret_error) {
        const MsgInfo *mi = &b->info[m];
        const RulesetOrigin *o = r && mi->origin < r->n_origins ? &r->origins[mi->origin] : NULL;

        if (!ret_error)
                return;
        ret_error->error = error;
        ret_error->pos = o ? o->pos : (PolicyPos) {};
        snprintf(ret_error->what, sizeof(ret_error->what), "%s %s%s%s", mi->kind,
                 mi->name ? mi->name : "", o && mi->origin ? " from " : "",
                 o && mi->origin ? o->what : "");
}

/* Grow a socket buffer only when a batch needs more than it was given last time: small
 * updates then cost no setsockopt at all. */
static void sock_buffer(int fd, int opt, size_t want, size_t *have) {
        int size = want > INT_MAX / 2 ? INT_MAX / 2 : (int) want;

        if (want <= *have)
                return;
        if (setsockopt(fd, SOL_SOCKET, opt, &size, sizeof(size)) >= 0)
                *have = want;
}

static int batch_send(Batch *b, const Ruleset *r, NftError *ret_error) {
        Nft *n = b->nft;
        struct sockaddr_nl nladdr = { .nl_family = AF_NETLINK };
        struct iovec iov_small[8], *iov = iov_small;
        struct msghdr msg = {};
        size_t total = 0;
        int n_iov, k = 0, fd = nft_fd(n);
        uint32_t seq_last;
        _cleanup_free_ struct iovec *iov_big = NULL;

        nftnl_batch_end(nftnl_batch_buffer(b->b), ++n->seq);
        seq_last = n->seq;
        if (nftnl_batch_update(b->b) < 0)
                return -ENOMEM;
        n_iov = nftnl_batch_iovec_len(b->b);
        if ((size_t) n_iov > ELEMENTSOF(iov_small)) {
                iov = iov_big = calloc((size_t) n_iov, sizeof(*iov));
                if (!iov)
                        return -ENOMEM;
        }
        nftnl_batch_iovec(b->b, iov, (uint32_t) n_iov);
        for (int i = 0; i < n_iov; i++)
                total += iov[i].iov_len;
        /* The whole batch goes in one sendmsg: the socket buffer must hold it, and the ACKs
         * (NETLINK_CAP_ACK: a header each). */
        sock_buffer(fd, SO_SNDBUFFORCE, total + 65536, &n->sndbuf);
        sock_buffer(fd, SO_RCVBUFFORCE, (b->n_msgs + 16u) * 512u, &n->rcvbuf);

        msg.msg_name = &nladdr;
        msg.msg_namelen = sizeof(nladdr);
        msg.msg_iov = iov;
        msg.msg_iovlen = (size_t) n_iov;
        if (sendmsg(fd, &msg, 0) < 0)
                return negative_errno();

        /* The kernel processed the batch inside sendmsg: every ACK is queued already. */
        for (;;) {
                ssize_t len = recv(fd, n->buf, sizeof(n->buf), MSG_DONTWAIT);
                const struct nlmsghdr *nlh;
                int rest;

                if (len < 0) {
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                break;
                        if (errno == EINTR)
                                continue;
                        return k < 0 ? k : negative_errno();
                }
                rest = (int) len;
                for (nlh = (const struct nlmsghdr *) n->buf; mnl_nlmsg_ok(nlh, rest);
                     nlh = mnl_nlmsg_next(nlh, &rest)) {
                        const struct nlmsgerr *err;

                        if (nlh->nlmsg_type != NLMSG_ERROR)
                                continue;
                        err = mnl_nlmsg_get_payload(nlh);
                        if (err->error == 0 || k < 0)
                                continue;
                        k = err->error;
                        if (nlh->nlmsg_seq > b->seq_first && nlh->nlmsg_seq < seq_last)
                                batch_describe(b, r, nlh->nlmsg_seq - b->seq_first - 1, k,
                                               ret_error);
                        else if (ret_error)
                                *ret_error = (NftError) { .error = k, .what = "the batch" };
                }
        }
        return k;
}

int nft_apply(Nft *n, const Ruleset *r, NftError *ret_error) {
        Batch b;
        int k;

        k = batch_init(&b, n, NFT_PAGE_SIZE);
        if (k < 0)
                goto out;
        /* Create-if-absent, then delete: the DELTABLE cannot fail on a missing table. */
        if ((k = batch_table(&b, NFT_MSG_NEWTABLE, NLM_F_CREATE)) < 0 ||
            (k = batch_table(&b, NFT_MSG_DELTABLE, 0)) < 0 ||
            (k = batch_table(&b, NFT_MSG_NEWTABLE, NLM_F_CREATE)) < 0)
                goto out;
        for (size_t c = 0; c < r->n_chains; c++) {
                struct nftnl_chain *o = nft_build_chain(r, c);
                struct nlmsghdr *nlh;

                nlh = o ? batch_msg(&b, NFT_MSG_NEWCHAIN, NLM_F_CREATE, r->chains[c].origin,
                                    "chain", r->chains[c].name)
                        : NULL;
                if (!nlh) {
                        nftnl_chain_free(o);
                        k = -ENOMEM;
                        goto out;
                }
                nftnl_chain_nlmsg_build_payload(nlh, o);
                nftnl_chain_free(o);
                if ((k = batch_next(&b)) < 0)
                        goto out;
        }
        for (size_t s = 0; s < r->n_sets; s++) {
                struct nftnl_set *o = nft_build_set(r, s);
                struct nlmsghdr *nlh;

                nlh = o ? batch_msg(&b, NFT_MSG_NEWSET, NLM_F_CREATE, 0, "set", r->sets[s].name)
                        : NULL;
                if (!nlh) {
                        nftnl_set_free(o);
                        k = -ENOMEM;
                        goto out;
                }
                nftnl_set_nlmsg_build_payload(nlh, o);
                nftnl_set_free(o);
                if ((k = batch_next(&b)) < 0)
                        goto out;
                k = batch_elems(&b, r, s, r->sets[s].elems, r->sets[s].n_elems,
                                NFT_MSG_NEWSETELEM);
                if (k < 0)
                        goto out;
        }
        for (size_t i = 0; i < r->n_rules; i++) {
                struct nftnl_rule *o = nft_build_rule(r, i);
                struct nlmsghdr *nlh;

                nlh = o ? batch_msg(&b, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND,
                                    r->rules[i].origin, "rule in chain",
                                    r->chains[r->rules[i].chain].name)
                        : NULL;
                if (!nlh) {
                        nftnl_rule_free(o);
                        k = -ENOMEM;
                        goto out;
                }
                nftnl_rule_nlmsg_build_payload(nlh, o);
                nftnl_rule_free(o);
                if ((k = batch_next(&b)) < 0)
                        goto out;
        }
        k = batch_send(&b, r, ret_error);
out:
        batch_done(&b);
        return k;
}

static bool same_shape(const Ruleset *a, const Ruleset *b) {
        if (a->n_sets != b->n_sets || a->n_chains != b->n_chains ||
            a->nflog_group != b->nflog_group || a->mode != b->mode)
                return false;
        for (size_t i = 0; i < a->n_sets; i++)
                if (!streq(a->sets[i].name, b->sets[i].name) || a->sets[i].flags != b->sets[i].flags)
                        return false;
        for (size_t i = 0; i < a->n_chains; i++)
                if (!streq(a->chains[i].name, b->chains[i].name))
                        return false;
        return true;
}

/* The order of normalised elements: (origin, key, key_end), then the verdict. */
static int elem_cmp(const RulesetSet *s, const RulesetElem *x, const RulesetElem *y) {
        int d;

        if (x->origin != y->origin)
                return x->origin < y->origin ? -1 : 1;
        d = memcmp(x->key, y->key, s->key_len);
        if (d == 0 && (s->flags & RULESET_SET_INTERVAL))
                d = memcmp(x->key_end, y->key_end, s->key_len);
        return d;
}

int nft_update(Nft *n, const Ruleset *old, const Ruleset *new, NftError *ret_error) {
        _cleanup_free_ RulesetElem *diff = NULL;
        size_t allocated = 0;
        Batch b;
        int k;

        if (!same_shape(old, new) || old->n_rules != new->n_rules)
                return -ESTALE;
        k = batch_init(&b, n, NFT_PAGE_SMALL);
        if (k < 0)
                goto out;
        /* Deletions first, then additions: a key whose verdict changed is replaced. Both sides
         * are normalised, sorted the same way: one merge pass per set, no copy, no sort. */
        for (int pass = 0; pass < 2; pass++)
                for (size_t si = 0; si < new->n_sets; si++) {
                        const RulesetSet *so = &old->sets[si], *sn = &new->sets[si];
                        size_t n_d = 0, i = 0, j = 0;

                        while (i < so->n_elems || j < sn->n_elems) {
                                int d = i >= so->n_elems ? 1
                                        : j >= sn->n_elems
                                                ? -1
                                                : elem_cmp(sn, &so->elems[i], &sn->elems[j]);
                                const RulesetElem *e = NULL;

                                if (d == 0) {
                                        i++, j++;
                                        continue;
                                }
                                if (d < 0) {
                                        if (!pass)
                                                e = &so->elems[i];
                                        i++;
                                } else {
                                        if (pass)
                                                e = &sn->elems[j];
                                        j++;
                                }
                                if (!e)
                                        continue;
                                k = ARRAY_GROW(diff, allocated, n_d + 1, RULESET_MAX_ELEMENTS);
                                if (k < 0)
                                        goto out;
                                diff[n_d++] = *e;
                        }
                        if (n_d == 0)
                                continue;
                        k = batch_elems(&b, pass ? new : old, si, diff, n_d,
                                        pass ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM);
                        if (k < 0)
                                goto out;
                }
        k = b.n_msgs == 0 ? 0 : batch_send(&b, new, ret_error);
out:
        batch_done(&b);
        return k;
}

int nft_update_elements(Nft *n, const Ruleset *delta, bool add, NftError *ret_error) {
        Batch b;
        int k;

        k = batch_init(&b, n, NFT_PAGE_SMALL);
        if (k < 0)
                goto out;
        for (size_t s = 0; s < delta->n_sets; s++) {
                if (delta->sets[s].n_elems == 0)
                        continue;
                /* Single-field ranges are split and merged with their neighbours by
                 * normalisation (the kernel's rbtree refuses two starts in a row): they cannot
                 * be added one by one. Concatenated ranges (a container address paired with a
                 * network) can. */
                if ((delta->sets[s].flags & RULESET_SET_INTERVAL) && delta->sets[s].n_key == 1) {
                        k = -EINVAL;
                        goto out;
                }
                k = batch_elems(&b, delta, s, delta->sets[s].elems, delta->sets[s].n_elems,
                                add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM);
                if (k < 0)
                        goto out;
        }
        k = b.n_msgs == 0 ? 0 : batch_send(&b, delta, ret_error);
out:
        batch_done(&b);
        return k;
}

int nft_contain(Nft *n, int family, const void *saddr, const void *daddr, uint8_t proto,
                uint16_t dport, unsigned timeout_sec) {
        size_t alen = family == AF_INET ? 4 : 16;
        uint8_t key[RULESET_KEY_MAX] = {};
        struct nlmsghdr *nlh;
        struct nlattr *list, *el;
        Batch b;
        int k;

        if ((family != AF_INET && family != AF_INET6) || timeout_sec == 0 ||
            timeout_sec > UINT32_MAX / 1000u)
                return -EINVAL;
        /* The key as the contain sets lay it out: saddr . daddr . proto . dport, each field
         * padded to 4 bytes. */
        memcpy(key, saddr, alen);
        memcpy(key + alen, daddr, alen);
        key[2 * alen] = proto;
        key[2 * alen + 4] = (uint8_t) (dport >> 8);
        key[2 * alen + 5] = (uint8_t) dport;
        k = batch_init(&b, n, NFT_PAGE_SMALL);
        if (k < 0)
                goto out;
        nlh = batch_msg(&b, NFT_MSG_NEWSETELEM, NLM_F_CREATE, 0, "containment element of set",
                        family == AF_INET ? "contain4" : "contain6");
        if (!nlh) {
                k = -ENOMEM;
                goto out;
        }
        mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, RULESET_TABLE);
        mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, family == AF_INET ? "contain4" : "contain6");
        list = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_LIST_ELEMENTS);
        el = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
        put_data(nlh, NFTA_SET_ELEM_KEY, key, 2 * alen + 8);
        mnl_attr_put_u64(nlh, NFTA_SET_ELEM_TIMEOUT, htobe64((uint64_t) timeout_sec * 1000u));
        mnl_attr_nest_end(nlh, el);
        mnl_attr_nest_end(nlh, list);
        if ((k = batch_next(&b)) < 0)
                goto out;
        k = batch_send(&b, NULL, NULL);
out:
        batch_done(&b);
        return k;
}

int nft_disable(Nft *n) {
        Batch b;
        int k;

        k = batch_init(&b, n, NFT_PAGE_SMALL);
        if (k < 0)
                goto out;
        /* Same trick as apply: create-if-absent so that deleting never fails on absence. */
        if ((k = batch_table(&b, NFT_MSG_NEWTABLE, NLM_F_CREATE)) < 0 ||
            (k = batch_table(&b, NFT_MSG_DELTABLE, 0)) < 0)
                goto out;
        k = batch_send(&b, NULL, NULL);
out:
        batch_done(&b);
        return k;
}

int nft_talk(Nft *n, struct nlmsghdr *nlh, mnl_cb_t cb, void *data) {
        uint32_t seq = nlh->nlmsg_seq;
        int k;

        if (mnl_socket_sendto(n->nl, nlh, nlh->nlmsg_len) < 0)
                return negative_errno();
        for (;;) {
                ssize_t len = mnl_socket_recvfrom(n->nl, n->buf, sizeof(n->buf));
                if (len < 0)
                        return negative_errno();
                k = mnl_cb_run(n->buf, (size_t) len, seq, n->portid, cb, data);
                if (k < 0)
                        return negative_errno();
                if (k == MNL_CB_STOP)
                        return 0;
        }
}
