/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The bounded flow table: one array of slots allocated at creation, a chained hash index
 * (bucket heads and chain links are slot indices + 1) and an intrusive LRU list. Insertion
 * takes a free slot or recycles the coldest flow; lookups refresh the flow's place. Nothing in
 * here allocates after flow_table_new().
 */
#include "ceredis.h"

#include "flow.h"

struct FlowTable {
        Flow *slots;
        size_t capacity;
        uint32_t *buckets; /* slot index + 1, 0 = empty */
        size_t n_buckets;  /* a power of two, at least twice the capacity */
        uint32_t free_head; /* flows removed, singly linked through hash_next */
        size_t n_fresh;     /* slots [n_fresh, capacity) were never used: their pages are
                             * not touched until a flow needs them, so an idle agent's RSS
                             * does not carry the whole table */
        uint32_t lru_head;  /* most recently used */
        uint32_t lru_tail;  /* least recently used */
        uint64_t timeout_usec;
        size_t n_flows;
        uint64_t created, evicted, expired;
};

int flow_table_new(size_t capacity, uint64_t timeout_usec, FlowTable **ret) {
        _cleanup_(flow_table_freep) FlowTable *t = NULL;

        if (capacity == 0)
                capacity = FLOW_CAPACITY_DEFAULT;
        if (capacity > FLOW_CAPACITY_MAX)
                return -E2BIG;
        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->capacity = capacity;
        t->timeout_usec = timeout_usec ? timeout_usec : FLOW_TIMEOUT_DEFAULT_USEC;
        t->n_buckets = 16;
        while (t->n_buckets < capacity * 2)
                t->n_buckets *= 2;
        t->slots = calloc(capacity, sizeof(Flow));
        t->buckets = calloc(t->n_buckets, sizeof(uint32_t));
        if (!t->slots || !t->buckets)
                return -ENOMEM;
        *ret = TAKE_PTR(t);
        return 0;
}

void flow_table_free(FlowTable *t) {
        if (!t)
                return;
        free(t->slots);
        free(t->buckets);
        free(t);
}

void flow_key_from_packet(const DecodePacket *p, FlowKey *ret) {
        FlowKey k = {};

        memcpy(k.src, p->src, sizeof(k.src));
        memcpy(k.dst, p->dst, sizeof(k.dst));
        k.sport = p->sport;
        k.dport = p->dport;
        k.family = (uint8_t) p->family;
        k.proto = p->l4proto;
        *ret = k;
}

/* Five 64-bit words, multiply-xorshift mixed: a tenth of the cost of byte-wise FNV, and a
 * SYN flood of random sources still spreads over the buckets (the multiplier carries every
 * word's bits into the high half, which the final fold brings down). */
static size_t key_hash(const FlowKey *k) {
        uint64_t w[sizeof(FlowKey) / 8], h = 0x9e3779b97f4a7c15u;

        _Static_assert(sizeof(FlowKey) % 8 == 0, "FlowKey is hashed as 64-bit words");
        memcpy(w, k, sizeof(w));
        for (size_t i = 0; i < ELEMENTSOF(w); i++)
                h = (h ^ w[i]) * 0xff51afd7ed558ccdu;
        return (size_t) (h ^ (h >> 32));
}

static inline Flow *slot(FlowTable *t, uint32_t idx1) {
        return idx1 ? &t->slots[idx1 - 1] : NULL;
}

static inline uint32_t index_of(const FlowTable *t, const Flow *f) {
        return (uint32_t) (f - t->slots) + 1;
}

static void lru_unlink(FlowTable *t, Flow *f) {
        if (f->lru_prev)
                slot(t, f->lru_prev)->lru_next = f->lru_next;
        else
                t->lru_head = f->lru_next;
        if (f->lru_next)
                slot(t, f->lru_next)->lru_prev = f->lru_prev;
        else
                t->lru_tail = f->lru_prev;
        f->lru_prev = f->lru_next = 0;
}

static void lru_push_front(FlowTable *t, Flow *f) {
        uint32_t i = index_of(t, f);

        f->lru_prev = 0;
        f->lru_next = t->lru_head;
        if (t->lru_head)
                slot(t, t->lru_head)->lru_prev = i;
        t->lru_head = i;
        if (!t->lru_tail)
                t->lru_tail = i;
}

static void hash_unlink(FlowTable *t, Flow *f) {
        uint32_t i = index_of(t, f);
        uint32_t *p = &t->buckets[key_hash(&f->key) & (t->n_buckets - 1)];

        while (*p && *p != i)
                p = &slot(t, *p)->hash_next;
        if (*p)
                *p = f->hash_next;
        f->hash_next = 0;
}

void flow_remove(FlowTable *t, Flow *f) {
        if (!f || !f->used)
                return;
        hash_unlink(t, f);
        lru_unlink(t, f);
        f->used = false;
        f->hash_next = t->free_head;
        t->free_head = index_of(t, f);
        t->n_flows--;
}

static Flow *lookup_hashed(FlowTable *t, const FlowKey *key, size_t hash, uint64_t now_usec) {
        for (uint32_t i = t->buckets[hash & (t->n_buckets - 1)]; i; i = slot(t, i)->hash_next) {
                Flow *f = slot(t, i);

                if (memcmp(&f->key, key, sizeof(*key)) != 0)
                        continue;
                if (now_usec > f->last_usec && now_usec - f->last_usec > t->timeout_usec) {
                        flow_remove(t, f);
                        t->expired++;
                        return NULL;
                }
                if (t->lru_head != i) {
                        lru_unlink(t, f);
                        lru_push_front(t, f);
                }
                if (now_usec > f->last_usec)
                        f->last_usec = now_usec;
                f->packets++;
                return f;
        }
        return NULL;
}

Flow *flow_lookup(FlowTable *t, const FlowKey *key, uint64_t now_usec) {
        return lookup_hashed(t, key, key_hash(key), now_usec);
}

static Flow *insert_hashed(FlowTable *t, const FlowKey *key, size_t hash, uint64_t now_usec) {
        uint32_t *bucket;
        uint32_t i;
        Flow *f;

        if (!t->free_head && t->n_fresh < t->capacity)
                i = (uint32_t) ++t->n_fresh;
        else {
                if (!t->free_head) {
                        /* Full: the coldest flow makes room. */
                        flow_remove(t, slot(t, t->lru_tail));
                        t->evicted++;
                }
                i = t->free_head;
                t->free_head = slot(t, i)->hash_next;
        }
        f = slot(t, i);
        *f = (Flow) {
                .key = *key,
                .first_usec = now_usec,
                .last_usec = now_usec,
                .packets = 1,
                .src_service = FLOW_SERVICE_UNKNOWN,
                .dst_service = FLOW_SERVICE_UNKNOWN,
                .forbid = -1,
                .write_forbid = -1,
                .used = true,
        };
        bucket = &t->buckets[hash & (t->n_buckets - 1)];
        f->hash_next = *bucket;
        *bucket = i;
        lru_push_front(t, f);
        t->n_flows++;
        t->created++;
        return f;
}

Flow *flow_insert(FlowTable *t, const FlowKey *key, uint64_t now_usec) {
        return insert_hashed(t, key, key_hash(key), now_usec);
}

Flow *flow_get(FlowTable *t, const FlowKey *key, uint64_t now_usec, bool *ret_new) {
        size_t hash = key_hash(key);
        Flow *f = lookup_hashed(t, key, hash, now_usec);

        *ret_new = !f;
        return f ?: insert_hashed(t, key, hash, now_usec);
}

size_t flow_table_expire(FlowTable *t, uint64_t now_usec) {
        size_t n = 0;

        while (t->lru_tail) {
                Flow *f = slot(t, t->lru_tail);

                if (now_usec <= f->last_usec || now_usec - f->last_usec <= t->timeout_usec)
                        break;
                flow_remove(t, f);
                n++;
        }
        t->expired += n;
        return n;
}

void flow_table_clear(FlowTable *t) {
        while (t->lru_tail)
                flow_remove(t, slot(t, t->lru_tail));
}

void flow_table_stats(const FlowTable *t, FlowStats *ret) {
        *ret = (FlowStats) {
                .capacity = t->capacity,
                .n_flows = t->n_flows,
                .created = t->created,
                .evicted = t->evicted,
                .expired = t->expired,
        };
}
