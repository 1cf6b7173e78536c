/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Print the ruleset model as an nft script. The script is what `ceredisctl policy compile`
 * shows and what `nft -c -f -` checks; the agent itself never runs nft, it sends the same model
 * as one netlink batch (nft-batch.c). Like the batch, the script replaces the table atomically:
 * create it if absent, delete it, declare it again, all in one transaction.
 */
#include "ceredis.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>

#include "ruleset.h"

static const char *hook_name(int hook) {
        switch (hook) {
        case 1: /* NF_INET_LOCAL_IN */
                return "input";
        case 2: /* NF_INET_FORWARD */
                return "forward";
        case 3: /* NF_INET_LOCAL_OUT */
                return "output";
        default:
                return "?";
        }
}

static const char *type_name(RulesetField f) {
        switch (ruleset_field_type(f)) {
        case 41:
                return "ifname";
        case 7:
                return "ipv4_addr";
        case 8:
                return "ipv6_addr";
        case 12:
                return "inet_proto";
        default:
                return "inet_service";
        }
}

static const char *proto_name(uint8_t p, char buf[8]) {
        if (p == IPPROTO_TCP)
                return "tcp";
        if (p == IPPROTO_UDP)
                return "udp";
        snprintf(buf, 8, "%u", p);
        return buf;
}

/* The prefix length when [start, end] is exactly one network, else -1. */
static int range_prefix(const uint8_t *start, const uint8_t *end, size_t len) {
        size_t bits = 0;
        bool host_part = false;

        for (size_t i = 0; i < len; i++)
                for (int b = 7; b >= 0; b--) {
                        bool s = start[i] >> b & 1, e = end[i] >> b & 1;
                        if (!host_part && s == e) {
                                bits++;
                                continue;
                        }
                        host_part = true;
                        if (s || !e)
                                return -1;
                }
        return (int) bits;
}

int ruleset_format_elem(const Ruleset *r, const RulesetSet *s, const RulesetElem *e, char *buf,
                        size_t size) {
        size_t used = 0;

#define OUT(...)                                                                               \
        do {                                                                                   \
                int _n = snprintf(buf + used, size - used, __VA_ARGS__);                       \
                if (_n < 0 || (size_t) _n >= size - used)                                      \
                        return -ENOBUFS;                                                       \
                used += (size_t) _n;                                                           \
        } while (0)

        if (size == 0)
                return -ENOBUFS;
        buf[0] = 0;
        for (size_t i = 0; i < s->n_key; i++) {
                size_t off = ruleset_set_field_offset(s, i), len = ruleset_field_len(s->key[i]);
                const uint8_t *k = e->key + off, *end = e->key_end + off;
                char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN], pb[8];
                int af = len == 4 ? AF_INET : AF_INET6;

                if (i > 0)
                        OUT(" . ");
                switch (s->key[i]) {
                case RULESET_FIELD_IIFNAME:
                        OUT("\"%.*s\"", IFNAMSIZ, (const char *) k);
                        break;
                case RULESET_FIELD_SADDR4:
                case RULESET_FIELD_DADDR4:
                case RULESET_FIELD_SADDR6:
                case RULESET_FIELD_DADDR6: {
                        int prefix;

                        inet_ntop(af, k, a, sizeof(a));
                        if (!(s->flags & RULESET_SET_INTERVAL) || memcmp(k, end, len) == 0) {
                                OUT("%s", a);
                                break;
                        }
                        prefix = range_prefix(k, end, len);
                        if (prefix >= 0)
                                OUT("%s/%d", a, prefix);
                        else {
                                inet_ntop(af, end, b, sizeof(b));
                                OUT("%s-%s", a, b);
                        }
                        break;
                }
                case RULESET_FIELD_L4PROTO:
                        OUT("%s", proto_name(k[0], pb));
                        break;
                default:
                        OUT("%u", (unsigned) k[0] << 8 | k[1]);
                        break;
                }
        }
#undef OUT
        return 0;
}

static void print_fields(const RulesetField *f, size_t n, FILE *out) {
        for (size_t i = 0; i < n; i++)
                fprintf(out, "%s%s", i ? " . " : "", ruleset_field_to_string(f[i]));
}

static int print_set(const Ruleset *r, const RulesetSet *s, FILE *f) {
        char buf[256];
        int k;

        fprintf(f, "\tset %s {\n\t\ttype ", s->name);
        for (size_t i = 0; i < s->n_key; i++)
                fprintf(f, "%s%s", i ? " . " : "", type_name(s->key[i]));
        fputs("\n", f);
        if (s->flags & RULESET_SET_INTERVAL)
                fputs("\t\tflags interval\n", f);
        if (s->flags & RULESET_SET_TIMEOUT)
                fputs("\t\tflags timeout\n", f);
        if (s->n_elems > 0) {
                fputs("\t\telements = {", f);
                for (size_t i = 0; i < s->n_elems; i++) {
                        k = ruleset_format_elem(r, s, &s->elems[i], buf, sizeof(buf));
                        if (k < 0)
                                return k;
                        fprintf(f, "%s\n\t\t\t%s", i ? "," : "", buf);
                }
                fputs("\n\t\t}\n", f);
        }
        fputs("\t}\n\n", f);
        return 0;
}

static void print_rule(const Ruleset *r, const RulesetRule *rule, FILE *f) {
        char pb[8];
        bool first = true;

        fputs("\t\t", f);
        for (size_t i = 0; i < rule->n_stmts; i++) {
                const RulesetStmt *st = &rule->stmts[i];
                const RulesetSet *s = &r->sets[st->set];

                if (!first)
                        fputc(' ', f);
                first = false;
                switch (st->kind) {
                case RULESET_STMT_CT_ESTABLISHED:
                        fputs("ct state established,related", f);
                        break;
                case RULESET_STMT_L4PROTO:
                        fprintf(f, "meta l4proto %s", proto_name(st->value, pb));
                        break;
                case RULESET_STMT_ICMPV6_TYPE:
                        fprintf(f, "icmpv6 type %s",
                                st->value == 135   ? "nd-neighbor-solicit"
                                : st->value == 136 ? "nd-neighbor-advert"
                                : st->value == 134 ? "nd-router-advert"
                                                   : "?");
                        break;
                case RULESET_STMT_CT_DNAT:
                        fputs("ct status dnat", f);
                        break;
                case RULESET_STMT_LOOKUP:
                        if (st->n_fields)
                                print_fields(st->fields, st->n_fields, f);
                        else
                                print_fields(s->key, s->n_key, f);
                        fprintf(f, "%s @%s", st->negate ? " !=" : "", s->name);
                        break;
                case RULESET_STMT_LOG:
                        fprintf(f, "log prefix \"%s\" group %u queue-threshold 1", rule->log_prefix,
                                r->nflog_group);
                        break;
                }
        }
        switch (rule->verdict) {
        case RULESET_VERDICT_ACCEPT:
                fputs(first ? "accept" : " accept", f);
                break;
        case RULESET_VERDICT_DROP:
                fputs(first ? "drop" : " drop", f);
                break;
        case RULESET_VERDICT_JUMP:
                fprintf(f, "%sjump %s", first ? "" : " ", r->chains[rule->target].name);
                break;
        default:
                break;
        }
        fputc('\n', f);
}

int ruleset_format_nft(const Ruleset *r, FILE *f) {
        int k;

        fprintf(f,
                "#!/usr/sbin/nft -f\n"
                "# CEREDIS ruleset for host %s (%s mode), NFLOG group %u.\n"
                "# Replaces table inet " RULESET_TABLE " atomically; no other table is touched.\n"
                "table inet " RULESET_TABLE "\n"
                "delete table inet " RULESET_TABLE "\n\n"
                "table inet " RULESET_TABLE " {\n",
                r->host, policy_mode_to_string(r->mode), r->nflog_group);
        for (size_t i = 0; i < r->n_sets; i++) {
                k = print_set(r, &r->sets[i], f);
                if (k < 0)
                        return k;
        }
        for (size_t c = 0; c < r->n_chains; c++) {
                const RulesetChain *ch = &r->chains[c];

                if (ch->origin != 0)
                        fprintf(f, "\t# %s, policy line %u\n", r->origins[ch->origin].what,
                                r->origins[ch->origin].pos.line);
                fprintf(f, "\tchain %s {\n", ch->name);
                if (ch->hook >= 0)
                        fprintf(f, "\t\ttype filter hook %s priority filter - 10; policy accept;\n",
                                hook_name(ch->hook));
                for (size_t i = 0; i < r->n_rules; i++)
                        if (r->rules[i].chain == c)
                                print_rule(r, &r->rules[i], f);
                fprintf(f, "\t}\n%s", c + 1 < r->n_chains ? "\n" : "");
        }
        fputs("}\n", f);
        return ferror(f) ? -EIO : 0;
}
