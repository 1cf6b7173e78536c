/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The flow table: the third stage of "packets -> decoders -> flows -> violations". It remembers
 * each client->server conversation the watcher has seen (one key per 5-tuple, as the client
 * sent it), what the policy said about it when it started (which services, which entry allowed
 * or forbade it) and what its L7 stream has shown so far (first request, statements seen).
 *
 * The table is bounded: its capacity is fixed at creation, every slot is allocated up front,
 * and a full table evicts the least recently used flow; idle flows expire. Nothing allocates
 * per packet, so a SYN flood costs slots, never memory. No I/O, no clock: callers pass the time.
 */
#pragma once

#include "ceredis.h"

#include "decode.h"

#define FLOW_CAPACITY_DEFAULT 65536u
#define FLOW_CAPACITY_MAX (16u * 1024u * 1024u)
#define FLOW_TIMEOUT_DEFAULT_USEC (300ull * 1000000ull)

/* The addresses and ports of a flow, client first. Compared and hashed as bytes: always build
 * it with flow_key_from_packet() (or zero it first). */
typedef struct FlowKey {
        uint8_t src[16];
        uint8_t dst[16];
        uint16_t sport;
        uint16_t dport;
        uint8_t family; /* AF_INET or AF_INET6 */
        uint8_t proto;  /* IPPROTO_TCP, IPPROTO_UDP, ... */
        uint8_t pad[2];
} FlowKey;

/* Special endpoint "services" (Flow.src_service / dst_service); >= 0 is a policy service. */
#define FLOW_SERVICE_UNKNOWN (-1)  /* a private address no service has */
#define FLOW_SERVICE_INTERNET (-2) /* a public address no service has */
#define FLOW_SERVICE_HOST (-3)     /* one of the host's own addresses */

/* What the policy says about a flow, decided once when it starts (classify_flow_start()). */
typedef enum FlowDecision {
        FLOW_DECISION_NONE,         /* not into a service: not the policy's business */
        FLOW_DECISION_ALLOWED,      /* a `flows` entry allows it */
        FLOW_DECISION_FORBIDDEN,    /* a `forbid` entry (access any) matches it */
        FLOW_DECISION_DEFAULT_DENY, /* into the private zone and no entry allows it */
} FlowDecision;

/* Where a flow's L7 stream stands. */
typedef enum FlowL7State {
        FLOW_L7_OFF,     /* nothing to inspect (no decoder, or nothing to catch) */
        FLOW_L7_ACTIVE,  /* inspecting client->server payload */
        FLOW_L7_DONE,    /* a violation was found (and reported), or the stream was lost */
} FlowL7State;

typedef struct Flow {
        FlowKey key;
        uint64_t first_usec;
        uint64_t last_usec;
        uint64_t packets;

        int32_t src_service; /* policy service index or FLOW_SERVICE_* */
        int32_t dst_service;
        FlowDecision decision;
        int32_t forbid;       /* FORBIDDEN: index into Policy.forbids, else -1 */
        int32_t write_forbid; /* a forbid with `access: write` matching the pair, else -1 */
        bool read_only;       /* ALLOWED only by `access: read-only` entries */
        bool journal;         /* into an evaluation store, not a write violation: writes are journaled */
        bool l4_reported;     /* the L4 verdict was turned into an event already */

        FlowL7State l7;
        uint8_t l7_protocol;     /* PolicyL7 of the destination service */
        bool stream_synced;      /* next_seq is meaningful */
        uint32_t next_seq;       /* TCP seq where the next PostgreSQL message starts */
        uint32_t n_requests;     /* HTTP requests / SQL messages looked at */
        DecodeClass worst;       /* highest class seen on the flow */

        /* Table links (indices + 1; 0 = none): hash chain and LRU list. */
        uint32_t hash_next;
        uint32_t lru_prev;
        uint32_t lru_next;
        bool used;
} Flow;

typedef struct FlowTable FlowTable;

typedef struct FlowStats {
        size_t capacity;
        size_t n_flows;
        uint64_t created;
        uint64_t evicted; /* pushed out by a full table (LRU) */
        uint64_t expired; /* idle past the timeout */
} FlowStats;

/* A table of `capacity` flows (0: FLOW_CAPACITY_DEFAULT; -E2BIG above FLOW_CAPACITY_MAX),
 * expiring after `timeout_usec` idle (0: FLOW_TIMEOUT_DEFAULT_USEC). All memory is taken here. */
int flow_table_new(size_t capacity, uint64_t timeout_usec, FlowTable **ret);
void flow_table_free(FlowTable *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(FlowTable *, flow_table_free);

/* The key of a decoded packet as its sender sent it. */
void flow_key_from_packet(const DecodePacket *p, FlowKey *ret);

/* The flow with `key`, or NULL. A hit is moved to the front of the LRU list and its
 * last_usec/packets updated; an expired hit is dropped and NULL returned. */
Flow *flow_lookup(FlowTable *t, const FlowKey *key, uint64_t now_usec);

/* A new flow for `key` (which must not be in the table), zeroed but for key, times and the
 * "none" markers. When the table is full the least recently used flow is dropped first.
 * Never fails. */
Flow *flow_insert(FlowTable *t, const FlowKey *key, uint64_t now_usec);

/* flow_lookup(), else flow_insert(), hashing the key once; `*ret_new` says which. Never
 * fails. */
Flow *flow_get(FlowTable *t, const FlowKey *key, uint64_t now_usec, bool *ret_new);

/* Drop one flow. */
void flow_remove(FlowTable *t, Flow *f);

/* Drop every flow idle for longer than the timeout; returns how many. Cheap: walks the LRU
 * list from its cold end and stops at the first live flow. */
size_t flow_table_expire(FlowTable *t, uint64_t now_usec);

/* Drop every flow (the policy or the service map changed: decisions must be taken again). */
void flow_table_clear(FlowTable *t);

void flow_table_stats(const FlowTable *t, FlowStats *ret);
