/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Verify: dump the live `inet ceredis` table over netlink (chains, sets, their elements, rules)
 * and compare it with the compiled ruleset. Both sides are put in the same canonical terms:
 * rules are printed with nftnl_rule_snprintf() after dropping what the kernel adds (handles,
 * positions), the expected ones built by the very builder nft_apply() uses; set elements are
 * compared as sorted kernel elements. The first difference is reported in words.
 */
#include "ceredis.h"

#include <netinet/in.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <libnftnl/common.h>
#include <libnftnl/table.h>
#include <linux/netfilter/nfnetlink.h>
#include <arpa/inet.h>
#include <stdarg.h>

#include "nft-internal.h"

#define VERIFY_MAX_OBJECTS 65536u
#define RULE_TEXT_MAX 4096u
#define NFT_REQ_SIZE 8192u

typedef struct Dump {
        /* chains and sets of the table, as parsed objects */
        struct nftnl_chain **chains;
        size_t n_chains, allocated_chains;
        struct nftnl_set **sets;
        size_t n_sets, allocated_sets;
        struct nftnl_rule **rules;
        size_t n_rules, allocated_rules;
        int error;
} Dump;

static void dump_done(Dump *d) {
        for (size_t i = 0; i < d->n_chains; i++)
                nftnl_chain_free(d->chains[i]);
        for (size_t i = 0; i < d->n_sets; i++)
                nftnl_set_free(d->sets[i]);
        for (size_t i = 0; i < d->n_rules; i++)
                nftnl_rule_free(d->rules[i]);
        free(d->chains);
        free(d->sets);
        free(d->rules);
}

static bool ours(const char *table) {
        return table && streq(table, RULESET_TABLE);
}

static int chain_cb(const struct nlmsghdr *nlh, void *data) {
        Dump *d = data;
        struct nftnl_chain *c = nftnl_chain_alloc();

        if (!c || nftnl_chain_nlmsg_parse(nlh, c) < 0) {
                nftnl_chain_free(c);
                d->error = -EBADMSG;
                return MNL_CB_ERROR;
        }
        if (!ours(nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE)) ||
            nftnl_chain_get_u32(c, NFTNL_CHAIN_FAMILY) != NFPROTO_INET ||
            ARRAY_GROW(d->chains, d->allocated_chains, d->n_chains + 1, VERIFY_MAX_OBJECTS) < 0) {
                nftnl_chain_free(c);
                return MNL_CB_OK;
        }
        d->chains[d->n_chains++] = c;
        return MNL_CB_OK;
}

static int set_cb(const struct nlmsghdr *nlh, void *data) {
        Dump *d = data;
        struct nftnl_set *s = nftnl_set_alloc();

        if (!s || nftnl_set_nlmsg_parse(nlh, s) < 0) {
                nftnl_set_free(s);
                d->error = -EBADMSG;
                return MNL_CB_ERROR;
        }
        if (!ours(nftnl_set_get_str(s, NFTNL_SET_TABLE)) ||
            nftnl_set_get_u32(s, NFTNL_SET_FAMILY) != NFPROTO_INET ||
            ARRAY_GROW(d->sets, d->allocated_sets, d->n_sets + 1, VERIFY_MAX_OBJECTS) < 0) {
                nftnl_set_free(s);
                return MNL_CB_OK;
        }
        d->sets[d->n_sets++] = s;
        return MNL_CB_OK;
}

static int rule_cb(const struct nlmsghdr *nlh, void *data) {
        Dump *d = data;
        struct nftnl_rule *r = nftnl_rule_alloc();

        if (!r || nftnl_rule_nlmsg_parse(nlh, r) < 0) {
                nftnl_rule_free(r);
                d->error = -EBADMSG;
                return MNL_CB_ERROR;
        }
        if (!ours(nftnl_rule_get_str(r, NFTNL_RULE_TABLE)) ||
            nftnl_rule_get_u32(r, NFTNL_RULE_FAMILY) != NFPROTO_INET ||
            ARRAY_GROW(d->rules, d->allocated_rules, d->n_rules + 1, VERIFY_MAX_OBJECTS) < 0) {
                nftnl_rule_free(r);
                return MNL_CB_OK;
        }
        d->rules[d->n_rules++] = r;
        return MNL_CB_OK;
}

static int null_cb(const struct nlmsghdr *nlh, void *data) {
        (void) nlh;
        (void) data;
        return MNL_CB_OK;
}

static int dump(Nft *n, uint16_t type, mnl_cb_t cb, void *data) {
        char buf[NFT_REQ_SIZE];
        struct nlmsghdr *nlh;

        nlh = nftnl_nlmsg_build_hdr(buf, type, NFPROTO_INET, NLM_F_DUMP, ++n->seq);
        return nft_talk(n, nlh, cb, data);
}

static int table_exists(Nft *n) {
        char buf[NFT_REQ_SIZE];
        struct nftnl_table *t = nftnl_table_alloc();
        struct nlmsghdr *nlh;
        int k;

        if (!t)
                return -ENOMEM;
        nftnl_table_set_str(t, NFTNL_TABLE_NAME, RULESET_TABLE);
        nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETTABLE, NFPROTO_INET, NLM_F_ACK, ++n->seq);
        nftnl_table_nlmsg_build_payload(nlh, t);
        nftnl_table_free(t);
        k = nft_talk(n, nlh, null_cb, NULL);
        if (k == -ENOENT)
                return 0;
        return k < 0 ? k : 1;
}

static int set_diff(char **ret_diff, const char *fmt, ...) _printf_(2, 3);

static int set_diff(char **ret_diff, const char *fmt, ...) {
        va_list ap;
        char *s = NULL;

        if (!ret_diff)
                return 1;
        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        if (!s)
                return -ENOMEM;
        free(*ret_diff);
        *ret_diff = s;
        return 1;
}

static void rule_text(struct nftnl_rule *o, char *buf, size_t size) {
        const char *chain = nftnl_rule_get_str(o, NFTNL_RULE_CHAIN);
        char *nl;

        nftnl_rule_unset(o, NFTNL_RULE_HANDLE);
        nftnl_rule_unset(o, NFTNL_RULE_POSITION);
        nftnl_rule_unset(o, NFTNL_RULE_ID);
        nftnl_rule_unset(o, NFTNL_RULE_USERDATA);
        (void) chain;
        nftnl_rule_snprintf(buf, size, o, NFTNL_OUTPUT_DEFAULT, 0);
        /* Keep the expressions on one line; the header names table and chain, said elsewhere. */
        nl = strchr(buf, '\n');
        if (nl)
                memmove(buf, nl + 1, strlen(nl + 1) + 1);
        while ((nl = strchr(buf, '\n')))
                *nl = ' ';
}

static void kelem_format(const Ruleset *r, const RulesetSet *s, const NftKElem *k, char *buf,
                         size_t size) {
        RulesetElem e = {};
        char tmp[200];

        memcpy(e.key, k->key, sizeof(e.key));
        memcpy(e.key_end, k->has_end ? k->key_end : k->key, sizeof(e.key_end));
        ruleset_format_elem(r, s, &e, tmp, sizeof(tmp));
        snprintf(buf, size, "%s%s", tmp, k->end ? " (interval end)" : "");
}

/* Set elements are compared without an object per element: the expected kernel elements are
 * indexed in a hash table (element index * 2 + which of its kernel elements), and the dump is
 * walked attribute by attribute with libmnl, each element parsed onto the stack and looked up.
 * Cost: one pass over the dump, a few MB at most for 100k elements. */
typedef struct ElemCheck {
        const Ruleset *r;
        const RulesetSet *s;
        uint32_t *slots; /* 0 free, else kernel element id + 1 */
        size_t size;
        uint8_t *seen; /* by kernel element id */
        size_t n_want, n_seen;
        bool differs;
        NftKElem first_unexpected;
        int error;
} ElemCheck;

static size_t kelem_hash(const RulesetSet *s, const NftKElem *k) {
        return ruleset_key_hash(k->key, s->key_len) ^ (k->end ? 0x5bd1e995u : 0);
}

static bool kelem_equal(const RulesetSet *s, const NftKElem *a, const NftKElem *b) {
        return a->end == b->end && a->has_end == b->has_end &&
               memcmp(a->key, b->key, s->key_len) == 0 &&
               (!a->has_end || memcmp(a->key_end, b->key_end, s->key_len) == 0);
}

/* Kernel element `id` of the model: element id / 2, its start (0) or its interval end (1). */
static bool kelem_by_id(const RulesetSet *s, uint32_t id, NftKElem *ret) {
        NftKElem ke[2];
        size_t n = nft_kernel_elems_of(s, &s->elems[id / 2], ke);

        if (id % 2 >= n)
                return false;
        *ret = ke[id % 2];
        return true;
}

static int elem_check_init(ElemCheck *c, const Ruleset *r, const RulesetSet *s) {
        size_t size = 64;

        *c = (ElemCheck) { .r = r, .s = s };
        while (size < 4 * s->n_elems)
                size *= 2;
        c->slots = calloc(size, sizeof(*c->slots));
        c->seen = calloc(2 * s->n_elems + 1, 1);
        if (!c->slots || !c->seen)
                return -ENOMEM;
        c->size = size;
        for (uint32_t id = 0; id < 2 * s->n_elems; id++) {
                NftKElem k;
                size_t h;

                if (!kelem_by_id(s, id, &k))
                        continue;
                for (h = kelem_hash(s, &k) & (size - 1); c->slots[h]; h = (h + 1) & (size - 1))
                        ;
                c->slots[h] = id + 1;
                c->n_want++;
        }
        return 0;
}

static void elem_check_done(ElemCheck *c) {
        free(c->slots);
        free(c->seen);
}

static int data_value_cb(const struct nlattr *a, void *data) {
        const struct nlattr **tb = data;

        if (mnl_attr_get_type(a) == NFTA_DATA_VALUE)
                tb[0] = a;
        return MNL_CB_OK;
}

/* The bytes of a nested NFTA_DATA_VALUE, copied into `out` (at most RULESET_KEY_MAX). */
static bool get_value(const struct nlattr *nest, uint8_t *out, size_t want) {
        const struct nlattr *v = NULL;

        if (mnl_attr_parse_nested(nest, data_value_cb, &v) < 0 || !v ||
            mnl_attr_get_payload_len(v) != want || want > RULESET_KEY_MAX)
                return false;
        memcpy(out, mnl_attr_get_payload(v), want);
        return true;
}

static int elem_attr_cb(const struct nlattr *a, void *data) {
        const struct nlattr **tb = data;
        uint16_t type = mnl_attr_get_type(a);

        if (type <= NFTA_SET_ELEM_KEY_END)
                tb[type] = a;
        return MNL_CB_OK;
}

static void check_one(ElemCheck *c, const struct nlattr *el) {
        const struct nlattr *tb[NFTA_SET_ELEM_KEY_END + 1] = {};
        const RulesetSet *s = c->s;
        NftKElem x = {};
        bool ok;

        ok = mnl_attr_parse_nested(el, elem_attr_cb, tb) >= 0 && tb[NFTA_SET_ELEM_KEY] &&
             get_value(tb[NFTA_SET_ELEM_KEY], x.key, s->key_len);
        if (ok && tb[NFTA_SET_ELEM_KEY_END]) {
                x.has_end = true;
                ok = get_value(tb[NFTA_SET_ELEM_KEY_END], x.key_end, s->key_len);
        }
        if (ok && tb[NFTA_SET_ELEM_FLAGS]) {
                ok = mnl_attr_validate(tb[NFTA_SET_ELEM_FLAGS], MNL_TYPE_U32) >= 0;
                x.end = ok && ntohl(mnl_attr_get_u32(tb[NFTA_SET_ELEM_FLAGS])) &
                                      NFT_SET_ELEM_INTERVAL_END;
        }
        if (tb[NFTA_SET_ELEM_DATA])
                ok = false; /* none of the agent's sets maps to data */
        if (ok)
                for (size_t h = kelem_hash(s, &x) & (c->size - 1); c->slots[h];
                     h = (h + 1) & (c->size - 1)) {
                        uint32_t id = c->slots[h] - 1;
                        NftKElem want;

                        if (c->seen[id] || !kelem_by_id(s, id, &want) || !kelem_equal(s, &want, &x))
                                continue;
                        c->seen[id] = 1;
                        c->n_seen++;
                        return;
                }
        /* Unknown, malformed or a duplicate: the first one is reported. */
        c->differs = true;
        c->first_unexpected = x;
}

static int elems_cb(const struct nlmsghdr *nlh, void *data) {
        ElemCheck *c = data;
        const struct nlattr *a, *list = NULL;

        if (c->differs)
                return MNL_CB_OK; /* the rest of the dump is read, not looked at */
        mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg))
                if (mnl_attr_get_type(a) == NFTA_SET_ELEM_LIST_ELEMENTS)
                        list = a;
        if (!list)
                return MNL_CB_OK;
        mnl_attr_for_each_nested(a, list) {
                if (mnl_attr_get_type(a) != NFTA_LIST_ELEM)
                        continue;
                check_one(c, a);
                if (c->differs)
                        break;
        }
        return MNL_CB_OK;
}

static int verify_elems(Nft *n, const Ruleset *r, size_t si, char **ret_diff) {
        const RulesetSet *s = &r->sets[si];
        char buf[NFT_REQ_SIZE], a[300];
        struct nlmsghdr *nlh;
        ElemCheck c;
        int k;

        k = elem_check_init(&c, r, s);
        if (k < 0)
                goto out;
        nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSETELEM, NFPROTO_INET, NLM_F_DUMP, ++n->seq);
        mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, RULESET_TABLE);
        mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, s->name);
        k = nft_talk(n, nlh, elems_cb, &c);
        if (k < 0)
                goto out;
        if (c.differs) {
                kelem_format(r, s, &c.first_unexpected, a, sizeof(a));
                k = set_diff(ret_diff, "set %s: unexpected element %s", s->name, a);
        } else if (c.n_seen != c.n_want) {
                NftKElem want;
                uint32_t id = 0;

                while (c.seen[id] || !kelem_by_id(s, id, &want))
                        id++;
                kelem_format(r, s, &want, a, sizeof(a));
                k = set_diff(ret_diff, "set %s: element %s is missing", s->name, a);
        }
out:
        elem_check_done(&c);
        return k;
}

static int verify_chains(const Ruleset *r, const Dump *d, char **ret_diff) {
        for (size_t c = 0; c < r->n_chains; c++) {
                const RulesetChain *want = &r->chains[c];
                struct nftnl_chain *have = NULL;

                for (size_t i = 0; i < d->n_chains && !have; i++)
                        if (streq(nftnl_chain_get_str(d->chains[i], NFTNL_CHAIN_NAME), want->name))
                                have = d->chains[i];
                if (!have)
                        return set_diff(ret_diff, "chain %s is missing", want->name);
                if (want->hook >= 0 &&
                    (!nftnl_chain_is_set(have, NFTNL_CHAIN_HOOKNUM) ||
                     nftnl_chain_get_u32(have, NFTNL_CHAIN_HOOKNUM) != (uint32_t) want->hook ||
                     nftnl_chain_get_s32(have, NFTNL_CHAIN_PRIO) != -10 ||
                     nftnl_chain_get_u32(have, NFTNL_CHAIN_POLICY) != NF_ACCEPT ||
                     !streq_ptr(nftnl_chain_get_str(have, NFTNL_CHAIN_TYPE), "filter")))
                        return set_diff(ret_diff,
                                        "chain %s: hook, priority, type or policy changed",
                                        want->name);
                if (want->hook < 0 && nftnl_chain_is_set(have, NFTNL_CHAIN_HOOKNUM))
                        return set_diff(ret_diff, "chain %s became a base chain", want->name);
        }
        if (d->n_chains != r->n_chains)
                for (size_t i = 0; i < d->n_chains; i++) {
                        const char *name = nftnl_chain_get_str(d->chains[i], NFTNL_CHAIN_NAME);
                        bool known = false;
                        for (size_t c = 0; c < r->n_chains && !known; c++)
                                known = streq(r->chains[c].name, name);
                        if (!known)
                                return set_diff(ret_diff, "unexpected chain %s", name);
                }
        return 0;
}

static int verify_sets(const Ruleset *r, const Dump *d, char **ret_diff) {
        for (size_t s = 0; s < r->n_sets; s++) {
                struct nftnl_set *want = nft_build_set(r, s), *have = NULL;
                bool same;

                if (!want)
                        return -ENOMEM;
                for (size_t i = 0; i < d->n_sets && !have; i++)
                        if (streq(nftnl_set_get_str(d->sets[i], NFTNL_SET_NAME), r->sets[s].name))
                                have = d->sets[i];
                if (!have) {
                        nftnl_set_free(want);
                        return set_diff(ret_diff, "set %s is missing", r->sets[s].name);
                }
                same = nftnl_set_get_u32(want, NFTNL_SET_FLAGS) ==
                               nftnl_set_get_u32(have, NFTNL_SET_FLAGS) &&
                       nftnl_set_get_u32(want, NFTNL_SET_KEY_LEN) ==
                               nftnl_set_get_u32(have, NFTNL_SET_KEY_LEN) &&
                       nftnl_set_get_u32(want, NFTNL_SET_KEY_TYPE) ==
                               nftnl_set_get_u32(have, NFTNL_SET_KEY_TYPE) &&
                       nftnl_set_get_u32(want, NFTNL_SET_DATA_TYPE) ==
                               nftnl_set_get_u32(have, NFTNL_SET_DATA_TYPE);
                nftnl_set_free(want);
                if (!same)
                        return set_diff(ret_diff, "set %s: its type or flags changed",
                                        r->sets[s].name);
        }
        if (d->n_sets != r->n_sets)
                for (size_t i = 0; i < d->n_sets; i++) {
                        const char *name = nftnl_set_get_str(d->sets[i], NFTNL_SET_NAME);
                        if (!ruleset_find_set(r, name))
                                return set_diff(ret_diff, "unexpected set %s", name);
                }
        return 0;
}

static int verify_rules(const Ruleset *r, Dump *d, char **ret_diff) {
        _cleanup_free_ char *want = malloc(RULE_TEXT_MAX), *have = malloc(RULE_TEXT_MAX);

        if (!want || !have)
                return -ENOMEM;
        for (size_t c = 0; c < r->n_chains; c++) {
                const char *chain = r->chains[c].name;
                size_t j = 0, nth = 0;

                for (size_t i = 0; i <= r->n_rules; i++) {
                        struct nftnl_rule *live = NULL;

                        if (i < r->n_rules && r->rules[i].chain != c)
                                continue;
                        for (; j < d->n_rules && !live; j++)
                                if (streq(nftnl_rule_get_str(d->rules[j], NFTNL_RULE_CHAIN), chain))
                                        live = d->rules[j];
                        if (i == r->n_rules) {
                                if (live) {
                                        rule_text(live, have, RULE_TEXT_MAX);
                                        return set_diff(ret_diff,
                                                        "chain %s: unexpected rule %zu: %s",
                                                        chain, nth + 1, have);
                                }
                                break;
                        }
                        nth++;
                        struct nftnl_rule *o = nft_build_rule(r, i);
                        if (!o)
                                return -ENOMEM;
                        rule_text(o, want, RULE_TEXT_MAX);
                        nftnl_rule_free(o);
                        if (!live)
                                return set_diff(ret_diff, "chain %s: rule %zu is missing: %s",
                                                chain, nth, want);
                        rule_text(live, have, RULE_TEXT_MAX);
                        if (!streq(want, have))
                                return set_diff(ret_diff,
                                                "chain %s: rule %zu differs: expected %s, found %s",
                                                chain, nth, want, have);
                }
        }
        return 0;
}

int nft_verify(Nft *n, const Ruleset *r, char **ret_diff) {
        Dump d = {};
        int k;

        k = table_exists(n);
        if (k <= 0) {
                if (k == 0)
                        k = set_diff(ret_diff, "table inet " RULESET_TABLE " is missing");
                return k;
        }
        if ((k = dump(n, NFT_MSG_GETCHAIN, chain_cb, &d)) < 0 ||
            (k = dump(n, NFT_MSG_GETSET, set_cb, &d)) < 0 ||
            (k = dump(n, NFT_MSG_GETRULE, rule_cb, &d)) < 0)
                goto out;
        if (d.error < 0) {
                k = d.error;
                goto out;
        }
        if ((k = verify_chains(r, &d, ret_diff)) != 0 || (k = verify_sets(r, &d, ret_diff)) != 0)
                goto out;
        for (size_t s = 0; s < r->n_sets; s++) {
                if (r->sets[s].flags & RULESET_SET_TIMEOUT)
                        continue; /* containment: run-time state, not drift */
                if ((k = verify_elems(n, r, s, ret_diff)) != 0)
                        goto out;
        }
        k = verify_rules(r, &d, ret_diff);
out:
        dump_done(&d);
        return k;
}
