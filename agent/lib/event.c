/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Events to JSON and back. The encoder sanitises every string again (a producer may have
 * written a field directly), so encoding never fails on content; the decoder is strict and
 * pure, because it reads the event log, which is a file an attacker may have edited.
 */
#include "ceredis.h"

#include <time.h>

#include "event.h"

static const char *const kind_names[_EVENT_KIND_MAX] = {
        [EVENT_VIOLATION] = "violation",
        [EVENT_RULESET_DRIFT] = "ruleset-drift",
        [EVENT_RULESET_REPAIRED] = "ruleset-repaired",
        [EVENT_POLICY_RELOADED] = "policy-reloaded",
        [EVENT_EVENTLOG_RECOVERED] = "eventlog-recovered",
        [EVENT_EVENTLOG_TAMPERED] = "eventlog-tampered",
        [EVENT_AGENT_STARTED] = "agent-started",
        [EVENT_AGENT_STOPPED] = "agent-stopped",
        [EVENT_WRITE] = "write",
};

static const char *const severity_names[] = {
        [POLICY_SEVERITY_CRITICAL] = "critical",
        [POLICY_SEVERITY_HIGH] = "high",
        [POLICY_SEVERITY_MEDIUM] = "medium",
        [POLICY_SEVERITY_LOW] = "low",
};

static const char *const action_names[_EVENT_ACTION_MAX] = {
        [EVENT_ACTION_BLOCKED] = "blocked",
        [EVENT_ACTION_OBSERVED] = "observed",
        [EVENT_ACTION_CONTAINED] = "contained",
};

static int lookup(const char *const *names, size_t n, const char *s, int *ret) {
        for (size_t i = 0; i < n; i++)
                if (names[i] && s && streq(names[i], s)) {
                        *ret = (int) i;
                        return 0;
                }
        return -EINVAL;
}

bool event_kind_is_flow(EventKind k) {
        return k == EVENT_VIOLATION || k == EVENT_WRITE;
}

const char *event_kind_to_string(EventKind k) {
        return (unsigned) k < ELEMENTSOF(kind_names) ? kind_names[k] : NULL;
}

int event_kind_from_string(const char *s, EventKind *ret) {
        int i, r = lookup(kind_names, ELEMENTSOF(kind_names), s, &i);
        if (r < 0)
                return r;
        *ret = (EventKind) i;
        return 0;
}

const char *event_severity_to_string(EventSeverity s) {
        return (unsigned) s < ELEMENTSOF(severity_names) ? severity_names[s] : NULL;
}

int event_severity_from_string(const char *s, EventSeverity *ret) {
        int i, r = lookup(severity_names, ELEMENTSOF(severity_names), s, &i);
        if (r < 0)
                return r;
        *ret = (EventSeverity) i;
        return 0;
}

const char *event_action_to_string(EventAction a) {
        return (unsigned) a < ELEMENTSOF(action_names) ? action_names[a] : NULL;
}

int event_action_from_string(const char *s, EventAction *ret) {
        int i, r = lookup(action_names, ELEMENTSOF(action_names), s, &i);
        if (r < 0)
                return r;
        *ret = (EventAction) i;
        return 0;
}

void event_init(Event *e, EventKind kind) {
        struct timespec ts;

        memset(e, 0, sizeof(*e));
        e->kind = kind;
        e->count = 1;
        e->severity = POLICY_SEVERITY_LOW;
        if (clock_gettime(CLOCK_REALTIME, &ts) == 0)
                e->ts_usec = (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no surrogates, at most
 * U+10FFFF), or 0 if the bytes there are not one. */
static size_t utf8_sequence(const unsigned char *s) {
        unsigned char c = s[0];

        if (c < 0x80)
                return 1;
        if (c >= 0xc2 && c <= 0xdf)
                return (s[1] & 0xc0) == 0x80 ? 2 : 0;
        if (c >= 0xe0 && c <= 0xef) {
                unsigned char lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
                if (s[1] < lo || s[1] > hi || (s[2] & 0xc0) != 0x80)
                        return 0;
                return 3;
        }
        if (c >= 0xf0 && c <= 0xf4) {
                unsigned char lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
                if (s[1] < lo || s[1] > hi || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
                        return 0;
                return 4;
        }
        return 0;
}

bool event_set_string(char *dst, size_t size, const char *src) {
        const unsigned char *s = (const unsigned char *) (src ? src : "");
        bool changed = false;
        size_t o = 0;

        if (size == 0)
                return true;
        /* A NUL in s[1..3] fails the continuation tests above, so reads stop at the string. */
        while (*s) {
                size_t n = utf8_sequence(s);
                if (n == 0) {
                        if (o + 1 >= size) {
                                changed = true;
                                break;
                        }
                        dst[o++] = '?';
                        s++;
                        changed = true;
                        continue;
                }
                if (o + n >= size) {
                        changed = true;
                        break;
                }
                memmove(dst + o, s, n); /* dst may be src: o never passes s */
                o += n;
                s += n;
        }
        dst[o] = '\0';
        return changed;
}

int event_ts_format(uint64_t usec, char buf[static EVENT_TS_MAX]) {
        time_t t = (time_t) (usec / 1000000u);
        struct tm tm;

        if (usec / 1000000u > (uint64_t) 253402300799) /* 9999-12-31T23:59:59Z */
                return -ERANGE;
        if (!gmtime_r(&t, &tm))
                return -ERANGE;
        if (snprintf(buf, EVENT_TS_MAX, "%04d-%02d-%02dT%02d:%02d:%02d.%06uZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (unsigned) (usec % 1000000u)) >= (int) EVENT_TS_MAX)
                return -ERANGE;
        return 0;
}

static int digits(const char *s, size_t n, int *ret) {
        int v = 0;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                v = v * 10 + (s[i] - '0');
        }
        *ret = v;
        return 0;
}

int event_ts_parse(const char *s, uint64_t *ret_usec) {
        int year, mon, day, hour, min, sec;
        uint64_t frac = 0;
        struct tm tm = {}, check;
        const char *p;
        time_t t;

        if (strlen(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
            s[16] != ':')
                return -EINVAL;
        if (digits(s, 4, &year) < 0 || digits(s + 5, 2, &mon) < 0 || digits(s + 8, 2, &day) < 0 ||
            digits(s + 11, 2, &hour) < 0 || digits(s + 14, 2, &min) < 0 ||
            digits(s + 17, 2, &sec) < 0)
                return -EINVAL;
        p = s + 19;
        if (*p == '.') {
                size_t n = 0;
                for (p++; *p >= '0' && *p <= '9'; p++, n++) {
                        if (n >= 9)
                                return -EINVAL;
                        if (n < 6)
                                frac = frac * 10 + (uint64_t) (*p - '0');
                }
                if (n == 0)
                        return -EINVAL;
                for (; n < 6; n++)
                        frac *= 10;
        }
        if (!streq(p, "Z"))
                return -EINVAL;
        if (year < 1970 || mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 ||
            sec > 59)
                return -EINVAL;

        tm.tm_year = year - 1900;
        tm.tm_mon = mon - 1;
        tm.tm_mday = day;
        tm.tm_hour = hour;
        tm.tm_min = min;
        tm.tm_sec = sec;
        t = timegm(&tm);
        /* timegm() normalises Feb 30 into March: a date that does not round-trip is invalid. */
        if (t == (time_t) -1 || !gmtime_r(&t, &check) || check.tm_mday != day ||
            check.tm_mon != mon - 1)
                return -EINVAL;
        *ret_usec = (uint64_t) t * 1000000u + frac;
        return 0;
}

static int set_str(json_t *o, const char *key, const char *value, size_t cap) {
        char buf[EVENT_MAX_PATH > EVENT_MAX_DETAIL ? EVENT_MAX_PATH : EVENT_MAX_DETAIL];

        if (cap > sizeof(buf))
                return -EINVAL;
        /* Bounded by the field's own capacity even if a producer forgot the NUL. */
        memcpy(buf, value, strnlen(value, cap - 1));
        buf[strnlen(value, cap - 1)] = '\0';
        event_set_string(buf, cap, buf);
        if (json_object_set_new(o, key, json_string(buf)) < 0)
                return -ENOMEM;
        return 0;
}

#define SET_STR(o, key, field) set_str((o), (key), (field), sizeof(field))

static int set_int(json_t *o, const char *key, uint64_t v) {
        if (v > (uint64_t) INT64_MAX)
                return -ERANGE;
        if (json_object_set_new(o, key, json_integer((json_int_t) v)) < 0)
                return -ENOMEM;
        return 0;
}

static int endpoint_to_json(const EventEndpoint *ep, json_t **ret) {
        json_t *o = json_object();
        int r;

        if (!o)
                return -ENOMEM;
        if ((r = SET_STR(o, "service", ep->service)) < 0 || (r = SET_STR(o, "ip", ep->ip)) < 0 ||
            (r = set_int(o, "port", ep->port)) < 0) {
                json_decref(o);
                return r;
        }
        *ret = o;
        return 0;
}

static int set_object(json_t *o, const char *key, json_t *child) {
        return json_object_set_new(o, key, child) < 0 ? -ENOMEM : 0;
}

int event_to_json(const Event *e, json_t **ret) {
        const char *kind = event_kind_to_string(e->kind), *sev = event_severity_to_string(e->severity);
        char ts[EVENT_TS_MAX];
        json_t *o, *child;
        int r;

        if (!kind || !sev)
                return -EINVAL;
        r = event_ts_format(e->ts_usec, ts);
        if (r < 0)
                return r;
        o = json_object();
        if (!o)
                return -ENOMEM;

        if ((r = set_str(o, "ts", ts, sizeof(ts))) < 0 || (r = set_str(o, "kind", kind, 64)) < 0 ||
            (r = SET_STR(o, "host", e->host)) < 0)
                goto fail;
        if (event_kind_is_flow(e->kind)) {
                const char *action = event_action_to_string(e->action);
                if (!action) {
                        r = -EINVAL;
                        goto fail;
                }
                if ((r = SET_STR(o, "rule", e->rule)) < 0 || (r = set_str(o, "severity", sev, 64)) < 0 ||
                    (r = set_str(o, "action", action, 64)) < 0)
                        goto fail;
                if ((r = endpoint_to_json(&e->src, &child)) < 0 || (r = set_object(o, "src", child)) < 0)
                        goto fail;
                if ((r = endpoint_to_json(&e->dst, &child)) < 0 || (r = set_object(o, "dst", child)) < 0)
                        goto fail;
                if ((r = SET_STR(o, "proto", e->proto)) < 0)
                        goto fail;
                if (e->has_l7) {
                        child = json_object();
                        if (!child || (r = set_object(o, "l7", child)) < 0) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        if ((r = SET_STR(child, "protocol", e->l7.protocol)) < 0 ||
                            (r = SET_STR(child, "method", e->l7.method)) < 0 ||
                            (r = SET_STR(child, "path", e->l7.path)) < 0 ||
                            (r = SET_STR(child, "statement_class", e->l7.statement_class)) < 0)
                                goto fail;
                }
        } else {
                if ((r = set_str(o, "severity", sev, 64)) < 0 || (r = SET_STR(o, "detail", e->detail)) < 0)
                        goto fail;
        }
        if ((r = set_int(o, "count", e->count)) < 0)
                goto fail;
        *ret = o;
        return 0;
fail:
        json_decref(o);
        return r;
}

int event_format(const Event *e, char **ret, size_t *ret_len) {
        json_t *o;
        char *s;
        int r;

        r = event_to_json(e, &o);
        if (r < 0)
                return r;
        /* Compact output never contains a raw newline: strings escape it. */
        s = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (!s)
                return -ENOMEM;
        *ret_len = strlen(s);
        *ret = s;
        return 0;
}

/* Decoding: `keys` lists what the object must hold exactly; nothing else is accepted. */
static bool has_exactly(const json_t *o, const char *const *keys, size_t n) {
        if (!json_is_object(o) || json_object_size(o) != n)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!json_object_get(o, keys[i]))
                        return false;
        return true;
}

static int get_str(const json_t *o, const char *key, char *dst, size_t size) {
        const json_t *v = json_object_get(o, key);
        size_t len;

        if (!json_is_string(v))
                return -EBADMSG;
        len = json_string_length(v);
        /* jansson has already checked UTF-8; an embedded NUL needs JSON_ALLOW_NUL, not given. */
        if (len >= size || strlen(json_string_value(v)) != len)
                return -EBADMSG;
        memcpy(dst, json_string_value(v), len + 1);
        return 0;
}

#define GET_STR(o, key, field) get_str((o), (key), (field), sizeof(field))

static int get_uint(const json_t *o, const char *key, uint64_t max, uint64_t *ret) {
        const json_t *v = json_object_get(o, key);

        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            (uint64_t) json_integer_value(v) > max)
                return -EBADMSG;
        *ret = (uint64_t) json_integer_value(v);
        return 0;
}

static int endpoint_from_json(const json_t *o, EventEndpoint *ret) {
        static const char *const keys[] = { "service", "ip", "port" };
        uint64_t port;

        if (!has_exactly(o, keys, ELEMENTSOF(keys)) || GET_STR(o, "service", ret->service) < 0 ||
            GET_STR(o, "ip", ret->ip) < 0 || get_uint(o, "port", UINT16_MAX, &port) < 0)
                return -EBADMSG;
        ret->port = (uint16_t) port;
        return 0;
}

int event_from_json(const json_t *j, Event *ret) {
        static const char *const violation_keys[] = { "ts", "kind", "host", "rule", "severity", "action",
                                                       "src", "dst", "proto", "count", "l7" };
        static const char *const other_keys[] = { "ts", "kind", "host", "severity", "detail", "count" };
        static const char *const l7_keys[] = { "protocol", "method", "path", "statement_class" };
        char buf[64];
        Event e;

        memset(&e, 0, sizeof(e));
        if (!json_is_object(j) || get_str(j, "kind", buf, sizeof(buf)) < 0 ||
            event_kind_from_string(buf, &e.kind) < 0)
                return -EBADMSG;
        if (event_kind_is_flow(e.kind)) {
                e.has_l7 = json_object_get(j, "l7") != NULL;
                if (!has_exactly(j, violation_keys, ELEMENTSOF(violation_keys) - !e.has_l7))
                        return -EBADMSG;
        } else if (!has_exactly(j, other_keys, ELEMENTSOF(other_keys)))
                return -EBADMSG;

        if (get_str(j, "ts", buf, sizeof(buf)) < 0 || event_ts_parse(buf, &e.ts_usec) < 0 ||
            GET_STR(j, "host", e.host) < 0 || get_str(j, "severity", buf, sizeof(buf)) < 0 ||
            event_severity_from_string(buf, &e.severity) < 0 ||
            get_uint(j, "count", (uint64_t) INT64_MAX, &e.count) < 0)
                return -EBADMSG;

        if (!event_kind_is_flow(e.kind)) {
                if (GET_STR(j, "detail", e.detail) < 0)
                        return -EBADMSG;
                *ret = e;
                return 0;
        }

        if (GET_STR(j, "rule", e.rule) < 0 || get_str(j, "action", buf, sizeof(buf)) < 0 ||
            event_action_from_string(buf, &e.action) < 0 ||
            endpoint_from_json(json_object_get(j, "src"), &e.src) < 0 ||
            endpoint_from_json(json_object_get(j, "dst"), &e.dst) < 0 || GET_STR(j, "proto", e.proto) < 0)
                return -EBADMSG;
        if (e.has_l7) {
                const json_t *l7 = json_object_get(j, "l7");
                if (!has_exactly(l7, l7_keys, ELEMENTSOF(l7_keys)) ||
                    GET_STR(l7, "protocol", e.l7.protocol) < 0 || GET_STR(l7, "method", e.l7.method) < 0 ||
                    GET_STR(l7, "path", e.l7.path) < 0 ||
                    GET_STR(l7, "statement_class", e.l7.statement_class) < 0)
                        return -EBADMSG;
        }
        *ret = e;
        return 0;
}

int event_parse(const char *text, size_t len, Event *ret) {
        json_t *j;
        int r;

        if (len > EVENT_MAX_JSON)
                return -E2BIG;
        j = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
        if (!j)
                return -EBADMSG;
        r = event_from_json(j, ret);
        json_decref(j);
        return r;
}
