/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The journal sink: one structured entry per event, so that `journalctl
 * CEREDIS_RULE=NET-1` or `journalctl MESSAGE_ID=...` finds violations without parsing text.
 * Every event kind has a fixed 128-bit MESSAGE_ID (a catalog can document them), and the
 * PRIORITY follows the severity. Field values come from packets and may hold newlines:
 * sd_journal_sendv() carries them in the binary form of the native protocol.
 */
#include "ceredis.h"

#include <inttypes.h>
#include <stdarg.h>
#include <sys/uio.h>
#include <syslog.h>
#include <systemd/sd-journal.h>

#include "sinks.h"

#define JOURNAL_FIELDS_MAX 24u

static const char *const message_ids[_EVENT_KIND_MAX] = {
        [EVENT_VIOLATION] = "f3bfb63673c841d48804139bae565d01",
        [EVENT_RULESET_DRIFT] = "1884d858d9184c618a45e27c7df6401f",
        [EVENT_RULESET_REPAIRED] = "9929265781294e30b452a8fe5383b6ca",
        [EVENT_POLICY_RELOADED] = "c7b3f9e0b1be4fde8a3564da5f37e21f",
        [EVENT_EVENTLOG_RECOVERED] = "99d59c19a63a46d1ae4de129179c5ef3",
        [EVENT_EVENTLOG_TAMPERED] = "865c331dd6924dff932f528b6874d511",
        [EVENT_AGENT_STARTED] = "94cdea56933c474db096bfad7edf050d",
        [EVENT_AGENT_STOPPED] = "f0131944543a4664878ef2107903d054",
        [EVENT_WRITE] = "5d2e8c1a7b4f4e6f9a03c6b1d8e27f40",
};

const char *journal_sink_message_id(EventKind k) {
        return (unsigned) k < ELEMENTSOF(message_ids) ? message_ids[k] : NULL;
}

static int event_priority(const Event *e) {
        switch (e->kind) {
        case EVENT_VIOLATION:
                switch (e->severity) {
                case POLICY_SEVERITY_CRITICAL:
                        return LOG_CRIT;
                case POLICY_SEVERITY_HIGH:
                        return LOG_ERR;
                case POLICY_SEVERITY_MEDIUM:
                        return LOG_WARNING;
                default:
                        return LOG_NOTICE;
                }
        case EVENT_EVENTLOG_TAMPERED:
                return LOG_CRIT;
        case EVENT_RULESET_DRIFT:
                return LOG_ERR;
        case EVENT_EVENTLOG_RECOVERED:
                return LOG_WARNING;
        case EVENT_RULESET_REPAIRED:
                return LOG_NOTICE;
        default:
                return LOG_INFO;
        }
}

static void fields_free(char **f, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(f[i]);
}

_printf_(4, 5) static int field_add(char **f, size_t *n, size_t max, const char *fmt, ...) {
        va_list ap;
        int k;

        if (*n >= max)
                return -E2BIG;
        va_start(ap, fmt);
        k = vasprintf(&f[*n], fmt, ap);
        va_end(ap);
        if (k < 0) {
                f[*n] = NULL;
                return -ENOMEM;
        }
        (*n)++;
        return 0;
}

int journal_sink_fields(const Event *e, char **fields, size_t max, size_t *ret_n) {
        const char *kind = event_kind_to_string(e->kind);
        const char *sev = event_severity_to_string(e->severity);
        char ts[EVENT_TS_MAX];
        size_t n = 0;
        int k = 0;

        if (!kind || !sev || event_ts_format(e->ts_usec, ts) < 0)
                return -EINVAL;

#define ADD(...)                                                                               \
        do {                                                                                   \
                if (k >= 0)                                                                    \
                        k = field_add(fields, &n, max, __VA_ARGS__);                           \
        } while (0)

        if (e->kind == EVENT_WRITE)
                ADD("MESSAGE=%s write journaled: %s %s port %u -> %s %s port %u %s%s%s%s%s, count %" PRIu64,
                    e->rule, e->src.service, e->src.ip[0] ? e->src.ip : "-", (unsigned) e->src.port,
                    e->dst.service, e->dst.ip[0] ? e->dst.ip : "-", (unsigned) e->dst.port, e->proto,
                    e->has_l7 && e->l7.method[0] ? " " : "", e->has_l7 ? e->l7.method : "",
                    e->has_l7 && e->l7.path[0] ? " " : "", e->has_l7 ? e->l7.path : "", e->count);
        if (event_kind_is_flow(e->kind)) {
                const char *action = event_action_to_string(e->action);
                if (!action)
                        return -EINVAL;
                if (e->kind == EVENT_VIOLATION)
                        ADD("MESSAGE=%s (%s) violation: %s %s port %u -> %s %s port %u %s, %s, count %" PRIu64,
                            e->rule, sev, e->src.service, e->src.ip[0] ? e->src.ip : "-",
                            (unsigned) e->src.port, e->dst.service, e->dst.ip[0] ? e->dst.ip : "-",
                            (unsigned) e->dst.port, e->proto, action, e->count);
                ADD("CEREDIS_RULE=%s", e->rule);
                ADD("CEREDIS_ACTION=%s", action);
                ADD("CEREDIS_SRC_SERVICE=%s", e->src.service);
                ADD("CEREDIS_SRC_IP=%s", e->src.ip);
                ADD("CEREDIS_SRC_PORT=%u", (unsigned) e->src.port);
                ADD("CEREDIS_DST_SERVICE=%s", e->dst.service);
                ADD("CEREDIS_DST_IP=%s", e->dst.ip);
                ADD("CEREDIS_DST_PORT=%u", (unsigned) e->dst.port);
                ADD("CEREDIS_PROTO=%s", e->proto);
                if (e->has_l7) {
                        ADD("CEREDIS_L7_PROTOCOL=%s", e->l7.protocol);
                        if (e->l7.method[0])
                                ADD("CEREDIS_L7_METHOD=%s", e->l7.method);
                        if (e->l7.path[0])
                                ADD("CEREDIS_L7_PATH=%s", e->l7.path);
                        if (e->l7.statement_class[0])
                                ADD("CEREDIS_L7_CLASS=%s", e->l7.statement_class);
                }
        } else
                ADD("MESSAGE=%s: %s", kind, e->detail[0] ? e->detail : kind);
        ADD("MESSAGE_ID=%s", message_ids[e->kind]);
        ADD("PRIORITY=%d", event_priority(e));
        ADD("CEREDIS_EVENT=%s", kind);
        ADD("CEREDIS_SEVERITY=%s", sev);
        ADD("CEREDIS_HOST=%s", e->host);
        ADD("CEREDIS_COUNT=%" PRIu64, e->count);
        ADD("CEREDIS_TS=%s", ts);
        ADD("SYSLOG_IDENTIFIER=ceredis-agent");
#undef ADD
        if (k < 0) {
                fields_free(fields, n);
                return k;
        }
        *ret_n = n;
        return 0;
}

int journal_sink_send(const Event *e) {
        char *fields[JOURNAL_FIELDS_MAX];
        struct iovec iov[JOURNAL_FIELDS_MAX];
        size_t n;
        int k;

        k = journal_sink_fields(e, fields, ELEMENTSOF(fields), &n);
        if (k < 0)
                return k;
        for (size_t i = 0; i < n; i++)
                iov[i] = (struct iovec){ .iov_base = fields[i], .iov_len = strlen(fields[i]) };
        k = sd_journal_sendv(iov, (int) n);
        fields_free(fields, n);
        return k;
}
