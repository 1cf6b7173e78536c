/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The event model: what the agent reports. A violation (SPEC section 5: a forbidden or
 * default-denied flow, with its endpoints, action and optional L7 detail), a journaled write
 * (an allowed write to an evaluation store, control DATA-3: the same fields) and the agent's own
 * events (ruleset drift and repair, policy reload, event log recovery or tampering). Every sink
 * (journal, event log, metrics, alerts, audit JSON) reads this one struct.
 *
 * Strings live inline with fixed caps, so an Event is copyable, needs no allocation on the hot
 * path, and its JSON encoding has a known worst-case size (EVENT_MAX_JSON). Strings that come
 * from packets or containers are hostile: event_set_string() truncates them on a UTF-8 boundary
 * and replaces invalid UTF-8 with '?', because jansson (rightly) refuses to encode it.
 */
#pragma once

#include "ceredis.h"

#include <jansson.h>

#include "policy.h"

/* Field capacities, NUL included. */
#define EVENT_MAX_HOST 256u
#define EVENT_MAX_RULE 128u
#define EVENT_MAX_SERVICE 256u
#define EVENT_MAX_IP 64u
#define EVENT_MAX_PROTO 16u
#define EVENT_MAX_L7_PROTOCOL 32u
#define EVENT_MAX_METHOD 32u
#define EVENT_MAX_PATH 1024u
#define EVENT_MAX_CLASS 16u
#define EVENT_MAX_DETAIL 1024u

/* Worst case of event_format(): every field full of control characters, each escaped as
 * \u00XX (6 bytes), plus keys and punctuation. test-event checks that it holds. */
#define EVENT_MAX_JSON (14u * 1024u)

/* The rule of a flow that no `flows` entry allows. */
#define EVENT_RULE_DEFAULT_DENY "DEFAULT-DENY"
/* The rule of a journaled write (EVENT_WRITE): the control it is evidence for. */
#define EVENT_RULE_WRITE "DATA-3"

typedef enum EventKind {
        EVENT_VIOLATION,
        EVENT_RULESET_DRIFT,      /* the agent's tables were edited or flushed by someone else */
        EVENT_RULESET_REPAIRED,   /* ... and put back */
        EVENT_POLICY_RELOADED,
        EVENT_EVENTLOG_RECOVERED, /* a crash left a torn tail; count = bytes dropped */
        EVENT_EVENTLOG_TAMPERED,  /* the log failed verification at start and was set aside */
        EVENT_AGENT_STARTED,
        EVENT_AGENT_STOPPED,
        EVENT_WRITE,              /* an allowed L7 write to an evaluation store (journal, not a violation) */
        _EVENT_KIND_MAX,
} EventKind;

typedef PolicySeverity EventSeverity;

typedef enum EventAction {
        EVENT_ACTION_BLOCKED,
        EVENT_ACTION_OBSERVED,
        EVENT_ACTION_CONTAINED,
        _EVENT_ACTION_MAX,
} EventAction;

typedef struct EventEndpoint {
        char service[EVENT_MAX_SERVICE]; /* a policy service, "internet" or "unknown" */
        char ip[EVENT_MAX_IP];           /* textual address, "" if none */
        uint16_t port;                   /* 0 if none (ICMP, ...) */
} EventEndpoint;

typedef struct EventL7 {
        char protocol[EVENT_MAX_L7_PROTOCOL];   /* "http", "postgresql", ... */
        char method[EVENT_MAX_METHOD];          /* HTTP method or SQL verb, "" if none */
        char path[EVENT_MAX_PATH];              /* HTTP path, "" if none */
        char statement_class[EVENT_MAX_CLASS];  /* read | write | ddl | other, "" if none */
} EventL7;

typedef struct Event {
        EventKind kind;
        uint64_t ts_usec; /* CLOCK_REALTIME, microseconds; encoded as RFC 3339 UTC */
        char host[EVENT_MAX_HOST];
        EventSeverity severity;
        uint64_t count; /* repeats aggregated into this event (violations), else kind-specific */

        /* EVENT_VIOLATION and EVENT_WRITE (event_kind_is_flow()). */
        char rule[EVENT_MAX_RULE]; /* forbid id or EVENT_RULE_DEFAULT_DENY */
        EventAction action;
        EventEndpoint src;
        EventEndpoint dst;
        char proto[EVENT_MAX_PROTO]; /* "tcp", "udp", "icmp", ... */
        bool has_l7;
        EventL7 l7;

        /* Every other kind: one human sentence. */
        char detail[EVENT_MAX_DETAIL];
} Event;

/* Zero an event, set its kind, ts = now, count = 1. */
void event_init(Event *e, EventKind kind);

/* Copy `src` (NULL = "") into a field of `size` bytes: truncated on a UTF-8 boundary, invalid
 * UTF-8 bytes replaced by '?'. Returns true if the value had to be changed. */
bool event_set_string(char *dst, size_t size, const char *src);
#define EVENT_SET(field, src) event_set_string((field), sizeof(field), (src))

/* JSON object of an event (fields in a fixed order). -ENOMEM, -EINVAL on an out-of-range enum. */
int event_to_json(const Event *e, json_t **ret);
/* Compact one-line JSON text (no newline), NUL-terminated; *ret_len excludes the NUL. */
int event_format(const Event *e, char **ret, size_t *ret_len);

/* Strict decoder: exactly the keys of its kind, right types, strings within their caps, valid
 * timestamps and enums; anything else is -EBADMSG. Pure. */
int event_from_json(const json_t *j, Event *ret);
/* The same from text of at most EVENT_MAX_JSON bytes (-E2BIG beyond). */
int event_parse(const char *text, size_t len, Event *ret);

/* Does an event of kind `k` describe a flow (rule, action, endpoints, proto, l7) rather than
 * carry a detail sentence? */
bool event_kind_is_flow(EventKind k);

const char *event_kind_to_string(EventKind k);
int event_kind_from_string(const char *s, EventKind *ret);
const char *event_severity_to_string(EventSeverity s);
int event_severity_from_string(const char *s, EventSeverity *ret);
const char *event_action_to_string(EventAction a);
int event_action_from_string(const char *s, EventAction *ret);

/* RFC 3339 UTC with microseconds: "2026-09-01T12:00:00.000000Z" (27 chars + NUL). */
#define EVENT_TS_MAX 32u
int event_ts_format(uint64_t usec, char buf[static EVENT_TS_MAX]);
/* Accepts YYYY-MM-DDTHH:MM:SS[.1-9 digits]Z only (UTC); fractions below 1 us are dropped. */
int event_ts_parse(const char *s, uint64_t *ret_usec);
