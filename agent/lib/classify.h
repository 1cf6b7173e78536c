/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The classifier: the fourth stage of "packets -> decoders -> flows -> violations". Given a
 * decoded packet, the flow table, the policy and the map from addresses to services, it says
 * what the packet means for the policy: nothing, DEFAULT-DENY, a forbid id (at L4, or at L7 for
 * `access: write` entries: an HTTP write method, an SQL write/ddl statement), a read-only
 * flow used to write, or an allowed write to a service tagged evaluation-store (journaled for
 * DATA-3, not a violation); and it gives the SPEC section 5 event fields of that verdict.
 *
 * No I/O, no clock, no logging: the time is an argument, the flow table is the only state it
 * touches (to remember decisions and where each L7 stream stands). The aggregator turns a
 * burst of equal verdicts (a scan of 10k packets) into one event at once and one event with a
 * count per window, with a fixed number of slots.
 */
#pragma once

#include "ceredis.h"

#include "decode.h"
#include "event.h"
#include "flow.h"
#include "policy.h"
#include "ruleset.h"

/* The rule of an L7 write on a flow that only `access: read-only` entries allow. */
#define CLASSIFY_RULE_READ_ONLY "READ-ONLY"
/* The prefix of the contain chain's log records (containment already reported). */
#define CLASSIFY_RULE_CONTAINED "CONTAINED"
#define CLASSIFY_SEVERITY_DEFAULT_DENY POLICY_SEVERITY_HIGH
#define CLASSIFY_SEVERITY_READ_ONLY POLICY_SEVERITY_HIGH
#define CLASSIFY_SEVERITY_WRITE POLICY_SEVERITY_LOW

/* Addresses -> services: the services' current addresses (Endpoints), the policy's cidr
 * matches and the hosts' own addresses. Built once per policy or Endpoints change. */
typedef struct ClassifyMap ClassifyMap;

int classify_map_new(const Policy *p, const Endpoints *e, ClassifyMap **ret);
void classify_map_free(ClassifyMap *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(ClassifyMap *, classify_map_free);
/* A service index, FLOW_SERVICE_HOST, or for an address nobody has FLOW_SERVICE_UNKNOWN
 * (private, loopback, link-local, ULA) or FLOW_SERVICE_INTERNET. */
int32_t classify_map_lookup(const ClassifyMap *m, int family, const uint8_t addr[16]);

/* Name of a flow endpoint: the service's name, "internet", "host" or "unknown". */
const char *classify_service_name(const Policy *p, int32_t service);

/* Decide a new flow from its services and port (sets decision, forbid, write_forbid,
 * read_only, journal, l7 and l7_protocol). */
void classify_flow_start(const Policy *p, Flow *f);

/* The same decision as classify_flow_start(), read from the matrix `m` precomputed for `p`
 * (falls back to classify_flow_start() when `m` has none, was built for another policy, or
 * the flow is neither TCP nor UDP). */
void classify_map_flow_start(const ClassifyMap *m, const Policy *p, Flow *f);
/* Whether `m` holds a decision matrix (it is not built past a size cap). */
bool classify_map_has_matrix(const ClassifyMap *m);

typedef enum ClassifyVerdict {
        CLASSIFY_NOTHING,
        CLASSIFY_DEFAULT_DENY,
        CLASSIFY_FORBID,       /* a forbid (access any) at L4 */
        CLASSIFY_WRITE_FORBID, /* a forbid with access: write, decided at L7 */
        CLASSIFY_READ_ONLY,    /* a write on a read-only flow, decided at L7 */
        CLASSIFY_LOGGED,       /* an NFLOG record of a rule we do not know (its prefix is the rule) */
        CLASSIFY_WRITE,        /* an allowed write to an evaluation store: journaled, not a violation */
} ClassifyVerdict;

/* Is `service` (an index or FLOW_SERVICE_*) tagged POLICY_TAG_EVALUATION_STORE? */
bool classify_service_is_evaluation_store(const Policy *p, int32_t service);

/* A verdict and what its event needs. Only `verdict` is set when it is CLASSIFY_NOTHING. */
typedef struct ClassifyResult {
        ClassifyVerdict verdict;
        int32_t forbid;          /* FORBID, WRITE_FORBID: index into Policy.forbids */
        char rule[EVENT_MAX_RULE];
        PolicySeverity severity;
        EventAction action;      /* blocked in enforce mode, observed in audit mode */
        bool l7;                 /* decided at L7: an allowed flow to contain in enforce mode */
        int32_t src_service, dst_service;
        int family;
        uint8_t src[16], dst[16];
        uint16_t sport, dport;
        uint8_t proto;
        uint8_t l7_protocol;     /* PolicyL7 */
        DecodeClass statement_class;
        char method[EVENT_MAX_METHOD]; /* HTTP method or first SQL keyword */
        char path[EVENT_MAX_PATH];
} ClassifyResult;

/* A packet seen on a Docker bridge: find or start its flow, then judge it (L4 decision on
 * every packet of a denied flow, L7 inspection of client payload where the policy needs it).
 * `now_usec` is any monotonic clock. */
void classify_packet(const Policy *p, const ClassifyMap *m, FlowTable *t, const DecodePacket *pkt,
                     uint64_t now_usec, ClassifyResult *ret);

/* An NFLOG record of the agent's ruleset: the kernel already decided; its prefix
 * ("ceredis:RULE ") names the rule. Services come from the map. NOTHING for a record without
 * our prefix or of the contain chain (`*ret_contained` set: the flow was already reported). */
void classify_nflog(const Policy *p, const ClassifyMap *m, const DecodePacket *pkt,
                    ClassifyResult *ret, bool *ret_contained);

/* The event of a verdict (kind write for CLASSIFY_WRITE, else violation; ts now, count 1). */
void classify_result_to_event(const Policy *p, const ClassifyResult *r, const char *host, Event *ret);

/* ---- Aggregation of repeats */

#define CLASSIFY_AGG_SLOTS_DEFAULT 256u
#define CLASSIFY_AGG_WINDOW_DEFAULT_USEC (1000u * 1000u)

typedef struct ClassifyAggregator ClassifyAggregator;

int classify_agg_new(size_t slots, uint64_t window_usec, ClassifyAggregator **ret);
void classify_agg_free(ClassifyAggregator *a);
DEFINE_TRIVIAL_CLEANUP_FUNC(ClassifyAggregator *, classify_agg_free);

/* Called with each event the aggregator lets out. */
typedef void (*ClassifyEmitFn)(const Event *e, void *userdata);

/* Count one verdict. The first of its kind (same rule, action, source address, destination
 * service and address, L7 method and class) is emitted at once through `fn` with count 1;
 * repeats are counted until classify_agg_tick(). Slots are recycled least recently used
 * first, their pending count emitted before. */
void classify_agg_hit(ClassifyAggregator *a, const Policy *p, const ClassifyResult *r, const char *host,
                      uint64_t now_usec, ClassifyEmitFn fn, void *userdata);
/* Emit one event (count = repeats since the last one) for every slot whose window ended, or
 * for every slot with repeats when `all`. */
void classify_agg_tick(ClassifyAggregator *a, uint64_t now_usec, bool all, ClassifyEmitFn fn,
                       void *userdata);
/* Verdicts counted so far, emitted or pending. */
uint64_t classify_agg_total(const ClassifyAggregator *a);
