/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The ruleset model: what the agent installs in nf_tables for one host, compiled from the
 * policy model by a pure function. Classification is done with sets (hash sets for addresses,
 * interval sets for networks) so that the per-packet cost does not grow with the number of
 * services, addresses or flows, only with the number of forbid entries (one lookup rule per
 * forbid set); a container coming or going changes set elements, not rules.
 *
 * The same model is printed as an nft script (`ceredisctl policy compile`) and turned into
 * one libnftnl batch (nft-batch.c); both must describe the same ruleset.
 */
#pragma once

#include "ceredis.h"
#include "policy.h"

#define RULESET_TABLE "ceredis"           /* table inet ceredis */
#define RULESET_NFLOG_GROUP_DEFAULT 4242u /* the group the watcher reads */

/* Runtime identity of services: which addresses a service has right now. Filled from Docker
 * (containers), from the policy (cidr matches, peer hosts) or from a static file. */
typedef struct Endpoints Endpoints;

int endpoints_new(Endpoints **ret);
void endpoints_free(Endpoints *e);
DEFINE_TRIVIAL_CLEANUP_FUNC(Endpoints *, endpoints_free);
/* Add one address of service `name` (an address or CIDR). */
int endpoints_add(Endpoints *e, const char *service, const PolicyCidr *addr);
/* A port Docker publishes on the host for a container of `service` (`ports: "H:C"`):
 * (proto, host port H, container port C). The compiler opens H on the host's public side
 * (host_public) only when `service` runs on this host, is in a public zone, and C is one of
 * its ports marked `public: true` with that protocol: a private service's published port, or
 * a non-public port of a public one, never opens anything. Duplicates are ignored; -EINVAL for
 * a protocol other than TCP/UDP or a zero port. A service the policy does not know is kept and
 * ignored by the compiler. Published ports change rarely: recompile and nft_update(). */
int endpoints_add_published(Endpoints *e, const char *service, uint8_t proto, uint16_t host_port,
                            uint16_t container_port);
typedef struct EndpointsPublished {
        uint8_t proto;
        uint16_t host_port, container_port;
} EndpointsPublished;
/* The published ports known for `service` (none: *ret_n = 0). The array belongs to `e`. */
void endpoints_get_published(const Endpoints *e, const char *service,
                             const EndpointsPublished **ret, size_t *ret_n);
/* Docker mode: a bridge network of this host (`subnet`) and the host's own address on it
 * (`gateway`, NULL if none). Any address in such a subnet that is not a public-zone service's
 * container (nor a gateway) is default-denied like a private one, even before the agent has
 * learned which container it belongs to: a new container is closed until identified. */
int endpoints_add_network(Endpoints *e, const PolicyCidr *subnet, const PolicyCidr *gateway);
typedef struct EndpointsNetwork {
        PolicyCidr subnet;
        PolicyCidr gateway;
        bool has_gateway;
} EndpointsNetwork;
void endpoints_get_networks(const Endpoints *e, const EndpointsNetwork **ret, size_t *ret_n);
/* Load a static endpoints file: JSON object { "service": ["ADDR[/PREFIX]", ...], ... }. */
int endpoints_load_json(Endpoints *e, const char *path, char *err, size_t err_size);
/* The addresses known for `service` (none: *ret_n = 0). The array belongs to `e`. */
void endpoints_get(const Endpoints *e, const char *service, const PolicyCidr **ret,
                   size_t *ret_n);
/* The services known, in the order they were first added: names i < endpoints_n_services(). */
size_t endpoints_n_services(const Endpoints *e);
const char *endpoints_service(const Endpoints *e, size_t i);

/* Which flows name which service, for one policy and one host: built once per policy
 * (ruleset_index_new()) and reused by every ruleset_compile_address() of that policy, so that a
 * container event costs the number of flows naming its service, not the number of flows. */
typedef struct RulesetIndex RulesetIndex;

typedef struct RulesetOptions {
        const char *host;     /* host name in the policy; NULL: the policy's only host */
        uint16_t nflog_group; /* 0: RULESET_NFLOG_GROUP_DEFAULT */
        /* ruleset_compile_address() only, optional: an index built from the same policy with
         * the same host (-EINVAL otherwise). Without one, every flow is looked at. */
        const RulesetIndex *index;
} RulesetOptions;

typedef struct Ruleset Ruleset;

/* Build the index of policy `p` for the host `o` names (see RulesetOptions.host). It points
 * into `p`: free it before the policy. -ENOENT (with `err`) for an unknown host. */
int ruleset_index_new(const Policy *p, const RulesetOptions *o, RulesetIndex **ret, char *err,
                      size_t err_size);
void ruleset_index_free(RulesetIndex *ix);
DEFINE_TRIVIAL_CLEANUP_FUNC(RulesetIndex *, ruleset_index_free);

/* Compile the policy for one host. Pure: no I/O. On failure fills `err` (what and where):
 * -ENOENT when the host is unknown or not named in a multi-host policy, -EINVAL when the
 * policy cannot be compiled, -ENOMEM/-E2BIG past the limits. */
int ruleset_compile(const Policy *p, const Endpoints *e, const RulesetOptions *o, Ruleset **ret,
                    char *err, size_t err_size);
/* Container events: compile only the set elements that address `addr` of service `service`
 * contributes, as ruleset_compile() would with that address added to `e` (`e` itself may or
 * may not hold it: give the old endpoints for a removal). Same chains and sets as
 * ruleset_compile() of the same policy, no rules; its interval elements are concatenated
 * ranges only (the address paired with a network), never single-field ranges: a container
 * address is never a network. Each element's origin names the same policy entry as in
 * ruleset_compile(), but the delta holds only the origins of the entries it looked at, so
 * origin indices differ. With o->index the cost is the number of flows naming the service
 * (and those naming networks or peer hosts' services) plus the forbids' sizes, not the size of
 * the ruleset. Send the result with nft_update_elements(). Assumes no other service of this
 * host has the same address (Docker gives each container its own).
 * -ENOENT for an unknown service, -EINVAL for a network. */
int ruleset_compile_address(const Policy *p, const Endpoints *e, const RulesetOptions *o,
                            const char *service, const PolicyCidr *addr, Ruleset **ret,
                            char *err, size_t err_size);
/* Coalesced container events: append the elements (and their origins) of `delta`, another
 * ruleset_compile_address() result of the same policy and host for a different address, to
 * `into`, so that one nft_update_elements() sends a burst of events in ONE batch. -ESTALE when
 * the two deltas do not have the same sets; `into` is unchanged on failure. */
int ruleset_delta_merge(Ruleset *into, const Ruleset *delta);
/* Keep the full ruleset (what nft_verify() and nft_update() compare with) in step after
 * nft_update_elements() sent `delta`: add (`add`) or remove its elements in `r`, a normalised
 * ruleset_compile() result of the same policy and host. `r` then holds the elements
 * ruleset_compile() would give with the address added or removed, each set still sorted by
 * (origin, key) with origins naming the same entries (an entry `r` had no record for gets one
 * at the end, so the indices can differ from a fresh compilation: nft_update() then resends
 * those few elements, nothing worse). The cost is a binary search and a memmove per delta
 * element and a scan of r's origins per delta origin, not a compilation. -ESTALE when the sets
 * differ, -ENOENT when removing an element `r` does not hold; `r` is unchanged on failure. */
int ruleset_apply_delta(Ruleset *r, const Ruleset *delta, bool add);
void ruleset_free(Ruleset *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(Ruleset *, ruleset_free);

/* Print the ruleset as an nft script accepted by `nft -f` (it replaces the agent's table). */
int ruleset_format_nft(const Ruleset *r, FILE *f);

/* ---- Test-only hooks ---------------------------------------------------------------------- */

/* TEST ONLY: make the first element of set `set` carry a key of the wrong length, so that the
 * kernel must refuse the batch (tests check that a refused batch changes nothing and that the
 * error names the policy entry). -ENOENT when the set has no element. */
int ruleset_test_corrupt_element(Ruleset *r, const char *set);

/* ---- The model (internals shared by ruleset-*.c and nft-*.c) ------------------------------ */

#define RULESET_NAME_MAX 32u
#define RULESET_KEY_MAX 40u      /* saddr6 . daddr6 . proto . port */
#define RULESET_MAX_FIELDS 4u
#define RULESET_MAX_STMTS 4u
#define RULESET_MAX_ELEMENTS (16u * 1024u * 1024u)
#define RULESET_MAX_SETS 16384u /* 12 per forbid entry at most, and the fixed ones */

/* What a rule or a set key looks at in a packet. Each field takes a multiple of 4 bytes in a
 * set key (nf_tables registers are 32 bits wide). */
typedef enum RulesetField {
        RULESET_FIELD_IIFNAME,
        RULESET_FIELD_SADDR4,
        RULESET_FIELD_DADDR4,
        RULESET_FIELD_SADDR6,
        RULESET_FIELD_DADDR6,
        RULESET_FIELD_L4PROTO,
        RULESET_FIELD_TH_DPORT,
        RULESET_FIELD_TH_SPORT,
        RULESET_FIELD_CT_ORIG_PROTO_DST,
        _RULESET_FIELD_MAX,
} RulesetField;

/* Where an object came from, for error messages: origin 0 is "the ruleset itself". */
typedef struct RulesetOrigin {
        char what[112]; /* e.g. "forbid[2] (DATA-1)" */
        PolicyPos pos;
} RulesetOrigin;

enum {
        RULESET_SET_INTERVAL = 1u << 0, /* elements are ranges [key, key_end] */
        RULESET_SET_TIMEOUT = 1u << 1,  /* run-time elements with a timeout (containment):
                                         * never compiled, never compared by nft_verify() */
};

/* One element. For interval sets `key`..`key_end` is the inclusive range, field by field. */
typedef struct RulesetElem {
        uint8_t key[RULESET_KEY_MAX];
        uint8_t key_end[RULESET_KEY_MAX];
        uint32_t origin;
        uint32_t order; /* insertion order: the first of two equal keys wins */
        bool test_bad;  /* ruleset_test_corrupt_element() */
} RulesetElem;

typedef struct RulesetSet {
        char name[RULESET_NAME_MAX];
        RulesetField key[RULESET_MAX_FIELDS];
        size_t n_key;
        unsigned flags;
        size_t key_len; /* bytes, each field rounded up to 4 */
        RulesetElem *elems;
        size_t n_elems;
        size_t allocated;
} RulesetSet;

typedef struct RulesetChain {
        char name[RULESET_NAME_MAX];
        int hook; /* NF_INET_* for base chains, -1 for regular chains */
        uint32_t origin;
} RulesetChain;

typedef enum RulesetStmtKind {
        RULESET_STMT_CT_ESTABLISHED, /* ct state established,related */
        RULESET_STMT_L4PROTO,        /* meta l4proto VALUE */
        RULESET_STMT_ICMPV6_TYPE,    /* icmpv6 type VALUE */
        RULESET_STMT_CT_DNAT,        /* ct status dnat */
        RULESET_STMT_LOOKUP,         /* FIELDS [!=] @set */
        RULESET_STMT_LOG,            /* log group G prefix "ceredis:ID " */
} RulesetStmtKind;

typedef struct RulesetStmt {
        RulesetStmtKind kind;
        uint8_t value;
        bool negate;
        size_t set;                               /* index into Ruleset.sets */
        RulesetField fields[RULESET_MAX_FIELDS]; /* what is looked up; n_fields 0: the set's key */
        size_t n_fields;
} RulesetStmt;

typedef enum RulesetVerdict {
        RULESET_VERDICT_NONE,
        RULESET_VERDICT_ACCEPT,
        RULESET_VERDICT_DROP,
        RULESET_VERDICT_JUMP,
} RulesetVerdict;

typedef struct RulesetRule {
        size_t chain;
        RulesetStmt stmts[RULESET_MAX_STMTS];
        size_t n_stmts;
        RulesetVerdict verdict;
        size_t target; /* RULESET_VERDICT_JUMP: chain index */
        char log_prefix[RULESET_NAME_MAX + 96];
        uint32_t origin;
} RulesetRule;

struct Ruleset {
        char host[RULESET_NAME_MAX * 4];
        PolicyMode mode;
        uint16_t nflog_group;
        RulesetOrigin *origins;
        size_t n_origins, allocated_origins;
        RulesetChain *chains;
        size_t n_chains, allocated_chains;
        RulesetSet *sets;
        size_t n_sets, allocated_sets;
        RulesetRule *rules;
        size_t n_rules, allocated_rules;
};

/* Field geometry: bytes the field really has, and the nft datatype id (for set declarations). */
size_t ruleset_field_len(RulesetField f);
unsigned ruleset_field_type(RulesetField f);
const char *ruleset_field_to_string(RulesetField f);
/* Padded offset of field `i` in the set's key. */
size_t ruleset_set_field_offset(const RulesetSet *s, size_t i);

/* Lookups by name; NULL / -ENOENT when absent. */
RulesetSet *ruleset_find_set(const Ruleset *r, const char *name);

/* Format one element the way nft writes it ("10.0.0.1 . tcp . 5432"). */
int ruleset_format_elem(const Ruleset *r, const RulesetSet *s, const RulesetElem *e, char *buf,
                        size_t size);

/* Put a set's elements in canonical form: duplicates dropped (first inserted wins), overlapping
 * ranges resolved (first inserted wins), sorted by (origin, key) so that elements are grouped
 * by origin and two compilations can be diffed in one pass. */
int ruleset_set_normalize(RulesetSet *s);
/* A hash of `len` key bytes, for the hash tables of normalisation and verify. */
size_t ruleset_key_hash(const uint8_t *key, size_t len);
