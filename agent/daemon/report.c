/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Event lines and log lines of the daemon. The event fd is made non-blocking when it is a
 * pipe or a socket (a file or a terminal does not stall us), and an sd-event I/O source
 * writes the queue out whenever the reader is ready.
 */
#include "ceredis.h"

#include "report.h"
#include "state.h"

#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>

struct Reporter {
        sd_event_source *source;
        int fd;
        char *host;
        char *queue; /* pending bytes, whole lines */
        size_t queued;
        size_t allocated;
        uint64_t dropped; /* lines dropped since the last report of it */
};

static void log_prefix(int priority) {
        static int journal = -1;

        if (journal < 0)
                journal = getenv("JOURNAL_STREAM") ? 1 : 0;
        if (journal)
                fprintf(stderr, "<%d>", priority);
        else
                fputs("ceredis-agent: ", stderr);
}

void log_full(int priority, const char *fmt, ...) {
        va_list ap;
        int saved = errno;

        log_prefix(priority);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        errno = saved;
}

/* Write as much of the queue as the fd takes now; arm or disarm the writable event. */
static int reporter_write(Reporter *r) {
        size_t done = 0;

        while (done < r->queued) {
                ssize_t l = write(r->fd, r->queue + done, r->queued - done);
                if (l < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                break;
                        /* The reader is gone (EPIPE) or the fd is broken: drop the lines,
                         * keep enforcing. */
                        r->dropped++;
                        done = r->queued;
                        break;
                }
                done += (size_t) l;
        }
        memmove(r->queue, r->queue + done, r->queued - done);
        r->queued -= done;
        if (r->source)
                (void) sd_event_source_set_enabled(r->source, r->queued ? SD_EVENT_ON : SD_EVENT_OFF);
        return 0;
}

static int on_writable(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        return reporter_write(userdata);
}

int reporter_new(sd_event *e, int fd, const char *host, Reporter **ret) {
        _cleanup_(reporter_freep) Reporter *r = NULL;
        struct stat st;
        int k;

        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->fd = fd;
        if (host && !(r->host = strdup(host)))
                return -ENOMEM;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) {
                int flags = fcntl(fd, F_GETFL);
                if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                        return negative_errno();
                k = sd_event_add_io(e, &r->source, fd, EPOLLOUT, on_writable, r);
                if (k < 0)
                        return k;
                k = sd_event_source_set_enabled(r->source, SD_EVENT_OFF);
                if (k < 0)
                        return k;
        }
        *ret = TAKE_PTR(r);
        return 0;
}

void reporter_free(Reporter *r) {
        if (!r)
                return;
        sd_event_source_disable_unref(r->source);
        free(r->host);
        free(r->queue);
        free(r);
}

int reporter_set_host(Reporter *r, const char *host) {
        char *h = NULL;

        if (host && !(h = strdup(host)))
                return -ENOMEM;
        free(r->host);
        r->host = h;
        return 0;
}

static int queue_line(Reporter *r, const char *line, size_t len) {
        if (r->queued + len > REPORT_QUEUE_MAX) {
                r->dropped++;
                return -ENOBUFS;
        }
        if (r->queued + len > r->allocated) {
                size_t n = r->allocated ? r->allocated : 4096;
                char *p;
                while (n < r->queued + len)
                        n *= 2;
                p = realloc(r->queue, n);
                if (!p) {
                        r->dropped++;
                        return -ENOMEM;
                }
                r->queue = p;
                r->allocated = n;
        }
        memcpy(r->queue + r->queued, line, len);
        r->queued += len;
        return 0;
}

static int emit_one(Reporter *r, const char *event, json_t *fields) {
        _cleanup_(json_decrefp) json_t *f = fields, *o = json_object();
        _cleanup_free_ char *line = NULL;
        char ts[32];
        size_t len;
        int k;

        if (!o)
                return -ENOMEM;
        k = state_format_ts(0, ts, sizeof(ts));
        if (k < 0)
                return k;
        /* ts, host, event first: a human tailing the stream reads them at a glance. */
        if (json_object_set_new(o, "ts", json_string(ts)) < 0 ||
            json_object_set_new(o, "host", r->host ? json_string(r->host) : json_null()) < 0 ||
            json_object_set_new(o, "event", json_string(event)) < 0 ||
            (f && json_object_update(o, f) < 0))
                return -ENOMEM;
        line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!line)
                return -ENOMEM;
        len = strlen(line);
        line[len] = '\n'; /* replaces the NUL: queue_line() takes a length, not a string */
        k = queue_line(r, line, len + 1);
        if (k < 0)
                return k;
        return reporter_write(r);
}

int reporter_emit(Reporter *r, const char *event, json_t *fields) {
        if (r->dropped && r->queued == 0) {
                json_t *d = json_pack("{s:I}", "count", (json_int_t) r->dropped);
                r->dropped = 0;
                (void) emit_one(r, "report-dropped", d);
        }
        return emit_one(r, event, fields);
}

void reporter_flush(Reporter *r) {
        if (r)
                (void) reporter_write(r);
}
