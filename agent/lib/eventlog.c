/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The tamper-evident event log (format and guarantees in eventlog.h). Three layers:
 * a pure record codec and chain checker (eventlog_record_parse(), the Walk below), a streaming
 * line reader with a hard line cap shared by the verifier and by open's crash recovery, and
 * the writer, which batches lines, fsyncs, moves the head and rotates.
 */
#include "ceredis.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "eventlog.h"

#define MAC_KEY_PREFIX ",\"mac\":\""
#define SUFFIX_LEN (sizeof(MAC_KEY_PREFIX) - 1 + EVENTLOG_MAC_HEX + 2) /* ,"mac":"<hex>"} */
#define HEAD_TMP EVENTLOG_HEAD ".tmp"
#define QUARANTINE_PREFIX "events.tampered-"
#define MAX_INDEX 1000000u   /* events.jsonl.N: N above this is not ours */
#define MAX_FILES 100000u
#define LINE_BUF (2u * EVENTLOG_MAX_LINE)
#define HEAD_MAX 1024u

/* The envelope around an event is under 200 bytes: every Event fits a line. */
_Static_assert(EVENT_MAX_JSON + 200u <= EVENTLOG_MAX_LINE, "an event must always fit a line");

struct EventlogKey {
        uint8_t bytes[EVENTLOG_KEY_SIZE];
        EVP_MAC *mac;
        EVP_MAC_CTX *ctx;
};

/* ---- key ---------------------------------------------------------------------------------- */

void eventlog_key_free(EventlogKey *k) {
        if (!k)
                return;
        OPENSSL_cleanse(k->bytes, sizeof(k->bytes));
        EVP_MAC_CTX_free(k->ctx); /* HMAC wipes its own copy of the key */
        EVP_MAC_free(k->mac);
        free(k);
}

int eventlog_key_from_bytes(const void *bytes, size_t size, EventlogKey **ret) {
        EventlogKey *k;

        if (size != EVENTLOG_KEY_SIZE)
                return -EINVAL;
        k = calloc(1, sizeof(*k));
        if (!k)
                return -ENOMEM;
        memcpy(k->bytes, bytes, EVENTLOG_KEY_SIZE);
        k->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        k->ctx = k->mac ? EVP_MAC_CTX_new(k->mac) : NULL;
        if (!k->ctx) {
                eventlog_key_free(k);
                return -ENOMEM;
        }
        *ret = k;
        return 0;
}

int eventlog_mac(const EventlogKey *k, const void *data, size_t size, uint8_t ret[EVENTLOG_MAC_SIZE]) {
        OSSL_PARAM params[] = {
                OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *) "SHA256", 0),
                OSSL_PARAM_construct_end(),
        };
        size_t n = 0;

        if (!EVP_MAC_init(k->ctx, k->bytes, sizeof(k->bytes), params) ||
            !EVP_MAC_update(k->ctx, data, size) || !EVP_MAC_final(k->ctx, ret, &n, EVENTLOG_MAC_SIZE) ||
            n != EVENTLOG_MAC_SIZE)
                return -EIO;
        return 0;
}

static int write_all(int fd, const void *data, size_t size) {
        const char *p = data;

        while (size > 0) {
                ssize_t n = write(fd, p, size);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                size -= (size_t) n;
        }
        return 0;
}

static int key_create(const char *path) {
        uint8_t bytes[EVENTLOG_KEY_SIZE];
        _cleanup_close_ int fd = -1;
        int r;

        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (fd < 0)
                return -errno;
        if (RAND_bytes(bytes, sizeof(bytes)) != 1)
                r = -EIO;
        else if ((r = write_all(fd, bytes, sizeof(bytes))) >= 0 && fsync(fd) < 0)
                r = -errno;
        OPENSSL_cleanse(bytes, sizeof(bytes));
        if (r < 0) {
                /* A half-written key would be refused (or worse, used) at the next start. */
                (void) unlink(path);
                return r;
        }
        return 0;
}

int eventlog_key_load(const char *path, bool create, EventlogKey **ret) {
        uint8_t bytes[EVENTLOG_KEY_SIZE];
        _cleanup_close_ int fd = -1;
        struct stat st;
        size_t got = 0;
        int r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
        if (fd < 0 && errno == ENOENT && create) {
                r = key_create(path);
                if (r < 0 && r != -EEXIST)
                        return r;
                fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
        }
        if (fd < 0)
                return errno == ELOOP ? -EINVAL : -errno; /* a symlink is not a key file */
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        if ((st.st_mode & 077) != 0 || (st.st_uid != 0 && st.st_uid != geteuid()))
                return -EPERM;
        if (st.st_size != EVENTLOG_KEY_SIZE)
                return -EINVAL;
        while (got < sizeof(bytes)) {
                ssize_t n = read(fd, bytes + got, sizeof(bytes) - got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        OPENSSL_cleanse(bytes, sizeof(bytes));
                        return n < 0 ? -errno : -EINVAL;
                }
                got += (size_t) n;
        }
        r = eventlog_key_from_bytes(bytes, sizeof(bytes), ret);
        OPENSSL_cleanse(bytes, sizeof(bytes));
        return r;
}

/* ---- records ------------------------------------------------------------------------------ */

static void hex_encode(const uint8_t *data, size_t size, char *out) {
        static const char digits[] = "0123456789abcdef";
        for (size_t i = 0; i < size; i++) {
                out[2 * i] = digits[data[i] >> 4];
                out[2 * i + 1] = digits[data[i] & 15];
        }
        out[2 * size] = '\0';
}

/* Lowercase only: one spelling per MAC. */
static int hex_decode(const char *s, size_t len, uint8_t *out) {
        for (size_t i = 0; i < len; i++) {
                int v;
                if (s[i] >= '0' && s[i] <= '9')
                        v = s[i] - '0';
                else if (s[i] >= 'a' && s[i] <= 'f')
                        v = s[i] - 'a' + 10;
                else
                        return -EINVAL;
                if (i % 2 == 0)
                        out[i / 2] = (uint8_t) (v << 4);
                else
                        out[i / 2] |= (uint8_t) v;
        }
        return 0;
}

static bool is_zero(const uint8_t *p, size_t size) {
        uint8_t acc = 0;
        for (size_t i = 0; i < size; i++)
                acc |= p[i];
        return acc == 0;
}

/* Append `,"mac":"<hex>"}\n` to the `len` bytes in buf (which has room) and return the MAC. */
static int seal(const EventlogKey *k, char *buf, size_t len, uint8_t ret_mac[EVENTLOG_MAC_SIZE], size_t *ret_len) {
        char hex[EVENTLOG_MAC_HEX + 1];
        int r;

        r = eventlog_mac(k, buf, len, ret_mac);
        if (r < 0)
                return r;
        hex_encode(ret_mac, EVENTLOG_MAC_SIZE, hex);
        memcpy(buf + len, MAC_KEY_PREFIX, sizeof(MAC_KEY_PREFIX) - 1);
        len += sizeof(MAC_KEY_PREFIX) - 1;
        memcpy(buf + len, hex, EVENTLOG_MAC_HEX);
        len += EVENTLOG_MAC_HEX;
        memcpy(buf + len, "\"}\n", 3);
        *ret_len = len + 3;
        return 0;
}

/* Check the fixed suffix and the MAC of a line (no newline). Returns the MAC'ed length. */
static int unseal(const EventlogKey *k, const char *line, size_t len, uint8_t ret_mac[EVENTLOG_MAC_SIZE],
                  size_t *ret_prefix) {
        uint8_t want[EVENTLOG_MAC_SIZE], got[EVENTLOG_MAC_SIZE];
        const char *tail;
        int r;

        if (len < SUFFIX_LEN + 2)
                return -EBADMSG;
        tail = line + len - SUFFIX_LEN;
        if (memcmp(tail, MAC_KEY_PREFIX, sizeof(MAC_KEY_PREFIX) - 1) != 0 ||
            memcmp(tail + SUFFIX_LEN - 2, "\"}", 2) != 0 ||
            hex_decode(tail + sizeof(MAC_KEY_PREFIX) - 1, EVENTLOG_MAC_HEX, got) < 0)
                return -EBADMSG;
        r = eventlog_mac(k, line, len - SUFFIX_LEN, want);
        if (r < 0)
                return r;
        if (CRYPTO_memcmp(want, got, sizeof(want)) != 0)
                return -EBADMSG;
        memcpy(ret_mac, got, sizeof(got));
        *ret_prefix = len - SUFFIX_LEN;
        return 0;
}

static int record_format(const EventlogKey *k, uint64_t seq, const uint8_t prev[EVENTLOG_MAC_SIZE],
                         const Event *e, char **ret, size_t *ret_len, uint8_t ret_mac[EVENTLOG_MAC_SIZE]) {
        _cleanup_free_ char *ev = NULL, *buf = NULL;
        char hex[EVENTLOG_MAC_HEX + 1];
        size_t ev_len, head_len, len;
        char head[128];
        int r;

        r = event_format(e, &ev, &ev_len);
        if (r < 0)
                return r;
        hex_encode(prev, EVENTLOG_MAC_SIZE, hex);
        head_len = (size_t) snprintf(head, sizeof(head), "{\"seq\":%" PRIu64 ",\"prev\":\"%s\",\"event\":", seq, hex);
        if (head_len + ev_len + SUFFIX_LEN + 1 > EVENTLOG_MAX_LINE)
                return -E2BIG;
        buf = malloc(head_len + ev_len + SUFFIX_LEN + 1);
        if (!buf)
                return -ENOMEM;
        memcpy(buf, head, head_len);
        memcpy(buf + head_len, ev, ev_len);
        r = seal(k, buf, head_len + ev_len, ret_mac, &len);
        if (r < 0)
                return r;
        *ret_len = len;
        *ret = TAKE_PTR(buf);
        return 0;
}

int eventlog_record_parse(const EventlogKey *k, const char *line, size_t len, EventlogRecord *ret) {
        uint8_t mac[EVENTLOG_MAC_SIZE], prev[EVENTLOG_MAC_SIZE];
        const json_t *seq, *pv, *ev;
        size_t prefix;
        json_t *j;
        int r;

        if (len >= EVENTLOG_MAX_LINE)
                return -E2BIG;
        /* Authenticate first: nothing unauthenticated reaches the JSON parser's callers. */
        r = unseal(k, line, len, mac, &prefix);
        if (r < 0)
                return r;
        j = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
        if (!j)
                return -EBADMSG;
        seq = json_object_get(j, "seq");
        pv = json_object_get(j, "prev");
        ev = json_object_get(j, "event");
        r = -EBADMSG;
        if (json_is_object(j) && json_object_size(j) == 4 && json_object_get(j, "mac") &&
            json_is_integer(seq) && json_integer_value(seq) >= 1 && json_is_string(pv) &&
            json_string_length(pv) == EVENTLOG_MAC_HEX &&
            hex_decode(json_string_value(pv), EVENTLOG_MAC_HEX, prev) >= 0 &&
            event_from_json(ev, &ret->event) >= 0) {
                ret->seq = (uint64_t) json_integer_value(seq);
                memcpy(ret->prev, prev, sizeof(prev));
                memcpy(ret->mac, mac, sizeof(mac));
                r = 0;
        }
        json_decref(j);
        return r;
}

/* The seq a line claims, for naming an altered record when the chain cannot; 0 if none. */
static uint64_t peek_seq(const char *line, size_t len) {
        static const char key[] = "{\"seq\":";
        uint64_t v = 0;
        size_t i;

        if (len < sizeof(key) - 1 || memcmp(line, key, sizeof(key) - 1) != 0)
                return 0;
        for (i = sizeof(key) - 1; i < len && i < sizeof(key) - 1 + 19 && line[i] >= '0' && line[i] <= '9'; i++)
                v = v * 10 + (uint64_t) (line[i] - '0');
        return v;
}

/* ---- head --------------------------------------------------------------------------------- */

typedef struct Head {
        uint64_t first_seq; /* oldest record kept */
        uint64_t last_seq;  /* newest durable record, 0 if none */
        uint8_t last_mac[EVENTLOG_MAC_SIZE];
} Head;

static int head_format(const EventlogKey *k, const Head *h, char buf[static HEAD_MAX], size_t *ret_len) {
        char hex[EVENTLOG_MAC_HEX + 1];
        uint8_t mac[EVENTLOG_MAC_SIZE];
        int n;

        hex_encode(h->last_mac, EVENTLOG_MAC_SIZE, hex);
        n = snprintf(buf, HEAD_MAX, "{\"first_seq\":%" PRIu64 ",\"last_seq\":%" PRIu64 ",\"last_mac\":\"%s\"",
                     h->first_seq, h->last_seq, hex);
        if (n < 0 || (size_t) n + SUFFIX_LEN + 1 > HEAD_MAX)
                return -E2BIG;
        return seal(k, buf, (size_t) n, mac, ret_len);
}

static int head_parse(const EventlogKey *k, const char *text, size_t len, Head *ret) {
        const json_t *first, *last, *mac;
        uint8_t m[EVENTLOG_MAC_SIZE];
        size_t prefix;
        Head h = {};
        json_t *j;
        int r;

        if (len < 1 || text[len - 1] != '\n' || memchr(text, '\n', len - 1))
                return -EBADMSG;
        r = unseal(k, text, len - 1, m, &prefix);
        if (r < 0)
                return r;
        j = json_loadb(text, len - 1, JSON_REJECT_DUPLICATES, NULL);
        if (!j)
                return -EBADMSG;
        first = json_object_get(j, "first_seq");
        last = json_object_get(j, "last_seq");
        mac = json_object_get(j, "last_mac");
        r = -EBADMSG;
        if (json_object_size(j) == 4 && json_is_integer(first) && json_is_integer(last) &&
            json_integer_value(first) >= 1 && json_integer_value(last) >= json_integer_value(first) - 1 &&
            json_is_string(mac) && json_string_length(mac) == EVENTLOG_MAC_HEX &&
            hex_decode(json_string_value(mac), EVENTLOG_MAC_HEX, h.last_mac) >= 0) {
                h.first_seq = (uint64_t) json_integer_value(first);
                h.last_seq = (uint64_t) json_integer_value(last);
                *ret = h;
                r = 0;
        }
        json_decref(j);
        return r;
}

/* -ENOENT if there is none, -EBADMSG if it does not verify. */
static int head_read(int dir_fd, const EventlogKey *k, Head *ret) {
        _cleanup_close_ int fd = -1;
        char buf[HEAD_MAX + 1];
        size_t got = 0;

        fd = openat(dir_fd, EVENTLOG_HEAD, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return errno == ELOOP ? -EBADMSG : -errno;
        for (;;) {
                ssize_t n = read(fd, buf + got, sizeof(buf) - got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                got += (size_t) n;
                if (got == sizeof(buf))
                        return -EBADMSG;
        }
        return head_parse(k, buf, got, ret);
}

/* Replace the head atomically; a crash leaves the old one or the new one. */
static int head_write(int dir_fd, const EventlogKey *k, const Head *h) {
        _cleanup_close_ int fd = -1;
        char buf[HEAD_MAX];
        size_t len;
        int r;

        r = head_format(k, h, buf, &len);
        if (r < 0)
                return r;
        fd = openat(dir_fd, HEAD_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (fd < 0)
                return -errno;
        r = write_all(fd, buf, len);
        if (r < 0)
                return r;
        if (fsync(fd) < 0)
                return -errno;
        if (renameat(dir_fd, HEAD_TMP, dir_fd, EVENTLOG_HEAD) < 0)
                return -errno;
        return 0;
}

/* ---- line reader -------------------------------------------------------------------------- */

enum {
        LINE_EOF,
        LINE_OK,
        LINE_TORN, /* bytes after the last newline */
        LINE_LONG, /* a line past EVENTLOG_MAX_LINE, skipped */
};

/* Lines of a file (fd >= 0, through a LINE_BUF buffer) or of a memory buffer. */
typedef struct LineIter {
        int fd;
        const char *mem;
        char *buf;
        size_t start, end;
        bool eof;
        uint64_t offset; /* just past the line last returned */
        uint64_t lineno; /* of the line last returned */
} LineIter;

static void line_iter_memory(LineIter *it, const void *data, size_t size) {
        *it = (LineIter) { .fd = -1, .mem = data, .end = size, .eof = true };
}

static int line_iter_fd(LineIter *it, int fd) {
        *it = (LineIter) { .fd = fd };
        it->buf = malloc(LINE_BUF);
        return it->buf ? 0 : -ENOMEM;
}

static void line_iter_done(LineIter *it) {
        free(it->buf);
        it->buf = NULL;
}

static int line_next(LineIter *it, const char **ret_line, size_t *ret_len) {
        uint64_t skipped = 0;
        bool skipping = false;

        for (;;) {
                const char *base = it->fd >= 0 ? it->buf : it->mem;
                size_t avail = it->end - it->start;
                const char *nl = memchr(base + it->start, '\n', avail);
                ssize_t n;

                if (nl) {
                        size_t len = (size_t) (nl - (base + it->start));
                        *ret_line = base + it->start;
                        *ret_len = len;
                        it->start += len + 1;
                        it->offset += skipped + len + 1;
                        it->lineno++;
                        return skipping || len >= EVENTLOG_MAX_LINE ? LINE_LONG : LINE_OK;
                }
                if (avail >= EVENTLOG_MAX_LINE) {
                        /* No newline within the cap: drop what we hold, keep looking for one. */
                        skipping = true;
                        skipped += avail;
                        it->start = it->end;
                        avail = 0;
                }
                if (it->eof) {
                        if (avail == 0 && !skipping)
                                return LINE_EOF;
                        *ret_line = base + it->start;
                        *ret_len = avail;
                        it->offset += skipped + avail;
                        it->start = it->end;
                        it->lineno++;
                        return skipping ? LINE_LONG : LINE_TORN;
                }
                if (it->start > 0) {
                        memmove(it->buf, it->buf + it->start, avail);
                        it->start = 0;
                        it->end = avail;
                }
                n = read(it->fd, it->buf + it->end, LINE_BUF - it->end);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        it->eof = true;
                it->end += (size_t) n;
        }
}

/* ---- chain walk --------------------------------------------------------------------------- */

typedef struct Walk {
        const EventlogKey *key;
        EventlogChain *chain;
        EventlogResult *res;
        EventlogRecordFn fn;
        void *userdata;
        bool have_head; /* check record head_seq against head_mac */
        uint64_t head_seq;
        uint8_t head_mac[EVENTLOG_MAC_SIZE];
        uint64_t good_end; /* offset just past the last record accepted in this file */
        uint64_t lines;    /* lines read from the last file */
        EventlogRecord rec, next;
} Walk;

const char *eventlog_problem_to_string(EventlogProblem p) {
        static const char *const names[] = {
                [EVENTLOG_INTACT] = "intact",       [EVENTLOG_ALTERED] = "altered",
                [EVENTLOG_REMOVED] = "removed",     [EVENTLOG_REORDERED] = "reordered",
                [EVENTLOG_TRUNCATED] = "truncated",
        };
        return (unsigned) p < ELEMENTSOF(names) ? names[p] : NULL;
}

_printf_(6, 7) static void set_problem(EventlogResult *res, EventlogProblem p, const char *file, uint64_t line,
                                       uint64_t seq, const char *fmt, ...) {
        va_list ap;

        res->problem = p;
        snprintf(res->file, sizeof(res->file), "%s", file);
        res->line = line;
        res->seq = seq;
        va_start(ap, fmt);
        vsnprintf(res->detail, sizeof(res->detail), fmt, ap);
        va_end(ap);
}

static int accept_record(Walk *w, const EventlogRecord *rec, uint64_t offset) {
        EventlogResult *res = w->res;

        w->chain->started = true;
        w->chain->seq = rec->seq;
        memcpy(w->chain->mac, rec->mac, EVENTLOG_MAC_SIZE);
        if (res->n_records++ == 0) {
                res->first_seq = rec->seq;
                res->first_ts_usec = rec->event.ts_usec;
        }
        res->last_seq = rec->seq;
        res->last_ts_usec = rec->event.ts_usec;
        w->good_end = offset;
        return w->fn ? w->fn(rec, w->userdata) : 0;
}

/* Walk the lines of one file or buffer until its end or the first problem. */
static int walk_lines(Walk *w, LineIter *it, const char *name) {
        EventlogChain *c = w->chain;
        EventlogResult *res = w->res;

        while (res->problem == EVENTLOG_INTACT) {
                const char *line;
                size_t len;
                uint64_t expected = c->started ? c->seq + 1 : 0;
                int kind, r;

                kind = line_next(it, &line, &len);
                if (kind < 0)
                        return kind;
                if (kind == LINE_EOF)
                        return 0;
                if (kind == LINE_TORN) {
                        uint64_t seq = expected ? expected : peek_seq(line, len);
                        set_problem(res, EVENTLOG_TRUNCATED, name, it->lineno, seq,
                                    "record seq %" PRIu64 " truncated: the last line is cut after %zu bytes", seq, len);
                        return 0;
                }
                if (kind == LINE_LONG) {
                        set_problem(res, EVENTLOG_ALTERED, name, it->lineno, expected,
                                    "record seq %" PRIu64 " altered: line longer than %u bytes", expected,
                                    EVENTLOG_MAX_LINE);
                        return 0;
                }

                r = eventlog_record_parse(w->key, line, len, &w->rec);
                if (r == -ENOMEM || r == -EIO)
                        return r;
                if (r < 0) {
                        uint64_t seq = expected ? expected : peek_seq(line, len);
                        set_problem(res, EVENTLOG_ALTERED, name, it->lineno, seq,
                                    "record seq %" PRIu64 " altered (MAC mismatch or not a record%s)", seq,
                                    res->n_records == 0 ? "; or the wrong key" : "");
                        return 0;
                }

                if (!c->started) {
                        if (w->rec.seq == 1 && !is_zero(w->rec.prev, EVENTLOG_MAC_SIZE)) {
                                set_problem(res, EVENTLOG_REMOVED, name, it->lineno, 1,
                                            "record seq 1 does not start a chain: records before it removed");
                                return 0;
                        }
                        if (c->first_seq > 0 && w->rec.seq > c->first_seq) {
                                set_problem(res, EVENTLOG_REMOVED, name, it->lineno, c->first_seq,
                                            "records seq %" PRIu64 "..%" PRIu64 " removed (an old file deleted?)",
                                            c->first_seq, w->rec.seq - 1);
                                return 0;
                        }
                } else if (w->rec.seq <= c->seq) {
                        set_problem(res, EVENTLOG_REORDERED, name, it->lineno, w->rec.seq,
                                    "record seq %" PRIu64 " reordered: it comes after seq %" PRIu64, w->rec.seq, c->seq);
                        return 0;
                } else if (w->rec.seq > expected) {
                        uint64_t line_no = it->lineno;
                        if (expected + 1 == w->rec.seq)
                                set_problem(res, EVENTLOG_REMOVED, name, line_no, expected,
                                            "record seq %" PRIu64 " removed", expected);
                        else
                                set_problem(res, EVENTLOG_REMOVED, name, line_no, expected,
                                            "records seq %" PRIu64 "..%" PRIu64 " removed", expected,
                                            w->rec.seq - 1);
                        /* A missing record that turns up on the next line was moved, not removed. */
                        if (line_next(it, &line, &len) == LINE_OK &&
                            eventlog_record_parse(w->key, line, len, &w->next) >= 0 && w->next.seq >= expected &&
                            w->next.seq < w->rec.seq)
                                set_problem(res, EVENTLOG_REORDERED, name, line_no, w->rec.seq,
                                            "record seq %" PRIu64 " reordered: it comes before seq %" PRIu64,
                                            w->rec.seq, w->next.seq);
                        return 0;
                } else if (memcmp(w->rec.prev, c->mac, EVENTLOG_MAC_SIZE) != 0) {
                        set_problem(res, EVENTLOG_REMOVED, name, it->lineno, w->rec.seq,
                                    "record seq %" PRIu64 " does not link to record seq %" PRIu64
                                    ": records replaced or removed",
                                    w->rec.seq, c->seq);
                        return 0;
                }
                if (w->have_head && w->rec.seq == w->head_seq &&
                    CRYPTO_memcmp(w->rec.mac, w->head_mac, EVENTLOG_MAC_SIZE) != 0) {
                        set_problem(res, EVENTLOG_ALTERED, name, it->lineno, w->rec.seq,
                                    "record seq %" PRIu64 " altered: it is not the one the head file names",
                                    w->rec.seq);
                        return 0;
                }
                r = accept_record(w, &w->rec, it->offset);
                if (r < 0)
                        return r;
        }
        return 0;
}

int eventlog_verify_buffer(const EventlogKey *k, const void *data, size_t size, const char *name,
                           EventlogChain *chain, EventlogResult *res, EventlogRecordFn fn, void *userdata) {
        _cleanup_free_ Walk *w = NULL;
        LineIter it;

        if (res->problem != EVENTLOG_INTACT)
                return 0;
        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        *w = (Walk) { .key = k, .chain = chain, .res = res, .fn = fn, .userdata = userdata };
        line_iter_memory(&it, data, size);
        return walk_lines(w, &it, name);
}

/* ---- files -------------------------------------------------------------------------------- */

typedef struct LogFiles {
        unsigned *index; /* rotated files, oldest (highest N) first */
        size_t n_index;
        bool active;     /* events.jsonl exists */
        unsigned n_quarantined;
} LogFiles;

static void log_files_done(LogFiles *f) {
        free(f->index);
        f->index = NULL;
}

static int cmp_desc(const void *a, const void *b) {
        unsigned x = *(const unsigned *) a, y = *(const unsigned *) b;
        return x < y ? 1 : x > y ? -1 : 0;
}

static bool parse_index(const char *s, unsigned *ret) {
        unsigned v = 0;

        if (*s < '1' || *s > '9')
                return false;
        for (; *s; s++) {
                if (*s < '0' || *s > '9' || v > MAX_INDEX)
                        return false;
                v = v * 10 + (unsigned) (*s - '0');
        }
        if (v > MAX_INDEX)
                return false;
        *ret = v;
        return true;
}

static int log_files_list(int dir_fd, LogFiles *ret) {
        static const char rotated[] = EVENTLOG_FILE ".";
        LogFiles f = {};
        size_t allocated = 0;
        struct dirent *de;
        DIR *d;
        int fd, r = 0;

        fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        d = fdopendir(fd);
        if (!d) {
                r = -errno;
                close(fd);
                return r;
        }
        while ((errno = 0, de = readdir(d))) {
                unsigned idx;
                if (streq(de->d_name, EVENTLOG_FILE))
                        f.active = true;
                else if (strncmp(de->d_name, QUARANTINE_PREFIX, strlen(QUARANTINE_PREFIX)) == 0)
                        f.n_quarantined++;
                else if (strncmp(de->d_name, rotated, strlen(rotated)) == 0 &&
                         parse_index(de->d_name + strlen(rotated), &idx)) {
                        r = ARRAY_GROW(f.index, allocated, f.n_index + 1, MAX_FILES);
                        if (r < 0)
                                break;
                        f.index[f.n_index++] = idx;
                }
        }
        if (r == 0 && errno != 0)
                r = -errno;
        closedir(d);
        if (r < 0) {
                log_files_done(&f);
                return r;
        }
        if (f.n_index > 0)
                qsort(f.index, f.n_index, sizeof(*f.index), cmp_desc);
        *ret = f;
        return 0;
}

static void rotated_name(unsigned idx, char buf[static 64]) {
        snprintf(buf, 64, EVENTLOG_FILE ".%u", idx);
}

static int walk_file(Walk *w, int fd, const char *name) {
        LineIter it;
        int r;

        r = line_iter_fd(&it, fd);
        if (r < 0)
                return r;
        w->good_end = 0;
        r = walk_lines(w, &it, name);
        w->lines = it.lineno;
        line_iter_done(&it);
        return r;
}

static int verify_single_file(const char *path, const EventlogKey *k, EventlogResult *res, EventlogRecordFn fn,
                              void *userdata) {
        _cleanup_free_ Walk *w = NULL;
        _cleanup_close_ int fd = -1;
        EventlogChain chain = {};
        const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        *w = (Walk) { .key = k, .chain = &chain, .res = res, .fn = fn, .userdata = userdata };
        res->n_files = 1;
        return walk_file(w, fd, name);
}

int eventlog_verify(const char *path, const EventlogKey *k, EventlogResult *res, EventlogRecordFn fn,
                    void *userdata) {
        _cleanup_(log_files_done) LogFiles files = {};
        _cleanup_free_ Walk *w = NULL;
        _cleanup_close_ int dir_fd = -1;
        EventlogResult out = {};
        EventlogChain chain = {};
        char newest[64] = EVENTLOG_FILE;
        bool have_head;
        struct stat st;
        Head head = {};
        int r, hr;

        if (stat(path, &st) < 0)
                return -errno;
        if (S_ISREG(st.st_mode)) {
                r = verify_single_file(path, k, &out, fn, userdata);
                if (r < 0)
                        return r;
                *res = out;
                return 0;
        }
        dir_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0)
                return -errno;

        /* The head first: the files only grow past it while we read them. */
        hr = head_read(dir_fd, k, &head);
        if (hr < 0 && hr != -ENOENT && hr != -EBADMSG)
                return hr;
        have_head = hr >= 0;
        r = log_files_list(dir_fd, &files);
        if (r < 0)
                return r;
        out.n_quarantined = files.n_quarantined;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        *w = (Walk) { .key = k, .chain = &chain, .res = &out, .fn = fn, .userdata = userdata };
        if (have_head) {
                if (head.first_seq == 1)
                        chain.started = true; /* seq 0, MAC zeros: the genesis */
                else
                        chain.first_seq = head.first_seq;
                w->have_head = head.last_seq > 0;
                w->head_seq = head.last_seq;
                memcpy(w->head_mac, head.last_mac, EVENTLOG_MAC_SIZE);
        }

        for (size_t i = 0; i <= files.n_index && out.problem == EVENTLOG_INTACT; i++) {
                _cleanup_close_ int fd = -1;
                char name[64];

                if (i < files.n_index)
                        rotated_name(files.index[i], name);
                else if (files.active)
                        snprintf(name, sizeof(name), "%s", EVENTLOG_FILE);
                else
                        break;
                fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
                if (fd < 0) {
                        if (errno == ENOENT) /* rotated away while we walked: its records moved on */
                                continue;
                        return -errno;
                }
                out.n_files++;
                r = walk_file(w, fd, name);
                if (r < 0)
                        return r;
                snprintf(newest, sizeof(newest), "%s", name);
        }

        if (out.problem == EVENTLOG_INTACT) {
                if (hr == -EBADMSG)
                        set_problem(&out, EVENTLOG_ALTERED, EVENTLOG_HEAD, 1, 0,
                                    "the head file is altered (or the key is wrong)");
                else if (!have_head && (out.n_records > 0 || files.n_index > 0))
                        set_problem(&out, EVENTLOG_REMOVED, EVENTLOG_HEAD, 1, out.last_seq,
                                    "the head file was removed: records cut off the end cannot be ruled out");
                else if (have_head && (chain.started ? chain.seq : 0) < head.last_seq) {
                        uint64_t from = chain.started ? chain.seq + 1 : head.first_seq;
                        if (from == head.last_seq)
                                set_problem(&out, EVENTLOG_TRUNCATED, newest, w->lines + 1, from,
                                            "record seq %" PRIu64 " cut off the end (the head names it)", from);
                        else
                                set_problem(&out, EVENTLOG_TRUNCATED, newest, w->lines + 1, from,
                                            "records seq %" PRIu64 "..%" PRIu64 " cut off the end (the head names seq %" PRIu64 ")",
                                            from, head.last_seq, head.last_seq);
                }
                out.head_checked = have_head;
        }
        *res = out;
        return 0;
}

/* The last record of a file (for the chain into the next one): seq and MAC, authenticated. */
static int read_last_record(int dir_fd, const char *name, const EventlogKey *k, EventlogRecord *ret) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        const char *start;
        struct stat st;
        size_t n;
        ssize_t got;

        fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) || st.st_size == 0)
                return -EBADMSG;
        n = (size_t) st.st_size < EVENTLOG_MAX_LINE ? (size_t) st.st_size : EVENTLOG_MAX_LINE;
        buf = malloc(n);
        if (!buf)
                return -ENOMEM;
        got = pread(fd, buf, n, st.st_size - (off_t) n);
        if (got < 0)
                return -errno;
        if ((size_t) got != n || buf[n - 1] != '\n')
                return -EBADMSG;
        start = memrchr(buf, '\n', n - 1);
        if (start)
                start++;
        else if ((size_t) st.st_size == n)
                start = buf;
        else
                return -EBADMSG;
        return eventlog_record_parse(k, start, (size_t) (buf + n - 1 - start), ret);
}

static int read_first_seq(int dir_fd, const char *name, const EventlogKey *k, uint64_t *ret) {
        _cleanup_free_ EventlogRecord *rec = NULL;
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        const char *nl;
        ssize_t got;
        int r;

        fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0)
                return -errno;
        buf = malloc(EVENTLOG_MAX_LINE);
        rec = malloc(sizeof(*rec));
        if (!buf || !rec)
                return -ENOMEM;
        got = pread(fd, buf, EVENTLOG_MAX_LINE, 0);
        if (got < 0)
                return -errno;
        nl = memchr(buf, '\n', (size_t) got);
        if (!nl)
                return -EBADMSG;
        r = eventlog_record_parse(k, buf, (size_t) (nl - buf), rec);
        if (r < 0)
                return r;
        *ret = rec->seq;
        return 0;
}

/* ---- writer ------------------------------------------------------------------------------- */

struct EventLog {
        int dir_fd; /* flock()ed: one writer per log */
        int fd;     /* events.jsonl, O_APPEND */
        EventlogKey *key;
        EventlogOptions opts;
        Head head;                        /* as last written */
        uint64_t seq;                     /* last appended, buffered included */
        uint8_t mac[EVENTLOG_MAC_SIZE];
        uint64_t file_size;               /* durable bytes of the active file */
        bool cut_pending;                 /* a failed write left bytes past file_size */
        char *buf;                        /* the batch */
        size_t len, allocated;
        uint64_t recovered;
};

uint64_t eventlog_recovered_bytes(const EventLog *log) {
        return log ? log->recovered : 0;
}

uint64_t eventlog_last_seq(const EventLog *log) {
        return log ? log->seq : 0;
}

void eventlog_close(EventLog *log) {
        if (!log)
                return;
        if (log->fd >= 0)
                (void) eventlog_flush(log);
        if (log->fd >= 0)
                close(log->fd);
        if (log->dir_fd >= 0)
                close(log->dir_fd); /* releases the flock */
        eventlog_key_free(log->key);
        free(log->buf);
        free(log);
}

static int fsync_dir(int dir_fd) {
        return fsync(dir_fd) < 0 ? -errno : 0;
}

static void copy_problem(EventlogResult *dst, const EventlogResult *src) {
        if (dst)
                *dst = *src;
}

int eventlog_open(const char *dir, const EventlogKey *k, const EventlogOptions *opts, EventlogResult *problem,
                  EventLog **ret) {
        _cleanup_(eventlog_closep) EventLog *log = NULL;
        _cleanup_(log_files_done) LogFiles files = {};
        _cleanup_free_ Walk *w = NULL;
        EventlogResult res = {};
        EventlogChain chain = {};
        struct stat st;
        int r;

        log = calloc(1, sizeof(*log));
        if (!log)
                return -ENOMEM;
        log->dir_fd = log->fd = -1;
        log->opts.max_file_size = opts && opts->max_file_size ? opts->max_file_size : EVENTLOG_MAX_FILE_DEFAULT;
        log->opts.keep = opts && opts->keep ? opts->keep : EVENTLOG_KEEP_DEFAULT;
        if (log->opts.keep > EVENTLOG_MAX_KEEP)
                return -EINVAL;
        r = eventlog_key_from_bytes(k->bytes, sizeof(k->bytes), &log->key);
        if (r < 0)
                return r;

        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        log->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (log->dir_fd < 0)
                return -errno;
        if (flock(log->dir_fd, LOCK_EX | LOCK_NB) < 0)
                return errno == EWOULDBLOCK ? -EBUSY : -errno;

        r = log_files_list(log->dir_fd, &files);
        if (r < 0)
                return r;
        r = head_read(log->dir_fd, log->key, &log->head);
        if (r == -EBADMSG) {
                set_problem(&res, EVENTLOG_ALTERED, EVENTLOG_HEAD, 1, 0, "the head file is altered (or the key is wrong)");
                copy_problem(problem, &res);
                return -EBADMSG;
        }
        if (r == -ENOENT) {
                if (files.n_index > 0 ||
                    (files.active && fstatat(log->dir_fd, EVENTLOG_FILE, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                     st.st_size > 0)) {
                        set_problem(&res, EVENTLOG_REMOVED, EVENTLOG_HEAD, 1, 0,
                                    "the head file was removed while records exist");
                        copy_problem(problem, &res);
                        return -EBADMSG;
                }
                /* A new log: the head exists before any record, so a log without one is not ours. */
                log->head = (Head) { .first_seq = 1 };
                r = head_write(log->dir_fd, log->key, &log->head);
                if (r < 0)
                        return r;
                r = fsync_dir(log->dir_fd);
                if (r < 0)
                        return r;
        } else if (r < 0)
                return r;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        *w = (Walk) { .key = log->key, .chain = &chain, .res = &res };
        w->have_head = log->head.last_seq > 0;
        w->head_seq = log->head.last_seq;
        memcpy(w->head_mac, log->head.last_mac, EVENTLOG_MAC_SIZE);

        /* Only the newest rotated file's last record is read: it is where the active file
         * continues. Older files are left to eventlog_verify(). */
        if (files.n_index > 0) {
                char name[64];
                rotated_name(files.index[files.n_index - 1], name);
                r = read_last_record(log->dir_fd, name, log->key, &w->rec);
                if (r == -ENOMEM || r == -EIO)
                        return r;
                if (r < 0) {
                        set_problem(&res, EVENTLOG_ALTERED, name, 0, 0, "the last record of %s does not verify", name);
                        copy_problem(problem, &res);
                        return -EBADMSG;
                }
                if (w->have_head && w->rec.seq == log->head.last_seq &&
                    CRYPTO_memcmp(w->rec.mac, log->head.last_mac, EVENTLOG_MAC_SIZE) != 0) {
                        set_problem(&res, EVENTLOG_ALTERED, name, 0, w->rec.seq,
                                    "record seq %" PRIu64 " altered: it is not the one the head file names", w->rec.seq);
                        copy_problem(problem, &res);
                        return -EBADMSG;
                }
                chain.started = true;
                chain.seq = w->rec.seq;
                memcpy(chain.mac, w->rec.mac, EVENTLOG_MAC_SIZE);
        } else if (log->head.first_seq == 1)
                chain.started = true;
        else
                chain.first_seq = log->head.first_seq;

        log->fd = openat(log->dir_fd, EVENTLOG_FILE, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY,
                         0600);
        if (log->fd < 0)
                return -errno;
        if (fstat(log->fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        r = walk_file(w, log->fd, EVENTLOG_FILE);
        if (r < 0)
                return r;

        if (res.problem != EVENTLOG_INTACT) {
                /* Past the last durable record, a bad line is a write the crash tore. */
                if (!chain.started || chain.seq < log->head.last_seq) {
                        copy_problem(problem, &res);
                        return -EBADMSG;
                }
                if (ftruncate(log->fd, (off_t) w->good_end) < 0 || fsync(log->fd) < 0)
                        return -errno;
                log->recovered = (uint64_t) st.st_size - w->good_end;
                st.st_size = (off_t) w->good_end;
        } else if ((chain.started ? chain.seq : 0) < log->head.last_seq) {
                set_problem(&res, EVENTLOG_TRUNCATED, EVENTLOG_FILE, 0, chain.started ? chain.seq + 1 : 0,
                            "records up to seq %" PRIu64 " cut off the end (the head names it)", log->head.last_seq);
                copy_problem(problem, &res);
                return -EBADMSG;
        }
        if (!chain.started) {
                /* No record at all, yet the head says the chain starts past 1: everything is gone. */
                set_problem(&res, EVENTLOG_REMOVED, EVENTLOG_FILE, 0, log->head.first_seq,
                            "every record from seq %" PRIu64 " on is gone", log->head.first_seq);
                copy_problem(problem, &res);
                return -EBADMSG;
        }

        log->seq = chain.seq;
        memcpy(log->mac, chain.mac, EVENTLOG_MAC_SIZE);
        log->file_size = (uint64_t) st.st_size;
        if (log->seq > log->head.last_seq) {
                /* Records that made it to disk before a crash but not into the head. */
                Head h = log->head;
                h.last_seq = log->seq;
                memcpy(h.last_mac, log->mac, EVENTLOG_MAC_SIZE);
                r = head_write(log->dir_fd, log->key, &h);
                if (r < 0)
                        return r;
                log->head = h;
        }
        *ret = TAKE_PTR(log);
        return 0;
}

int eventlog_append(EventLog *log, const Event *e) {
        _cleanup_free_ char *line = NULL;
        uint8_t mac[EVENTLOG_MAC_SIZE];
        size_t len;
        int r;

        r = record_format(log->key, log->seq + 1, log->mac, e, &line, &len, mac);
        if (r < 0)
                return r;
        if (log->len + len > EVENTLOG_MAX_BATCH) {
                r = eventlog_flush(log);
                if (r < 0)
                        return r;
        }
        r = array_grow((void **) &log->buf, &log->allocated, log->len + len, 1, EVENTLOG_MAX_BATCH + EVENTLOG_MAX_LINE);
        if (r < 0)
                return r;
        memcpy(log->buf + log->len, line, len);
        log->len += len;
        log->seq++;
        memcpy(log->mac, mac, EVENTLOG_MAC_SIZE);
        return 0;
}

static int rotate(EventLog *log) {
        _cleanup_(log_files_done) LogFiles files = {};
        _cleanup_close_ int fd = -1;
        char from[64], to[64];
        unsigned keep = log->opts.keep;
        int r;

        r = log_files_list(log->dir_fd, &files);
        if (r < 0)
                return r;
        if (files.n_index > 0 && files.index[0] >= keep) {
                /* Move the head's first_seq before deleting, so the head never names a
                 * record that is gone; the reverse order would look like a deleted file. */
                size_t survivor = 0;
                uint64_t first = 0;
                while (survivor < files.n_index && files.index[survivor] >= keep)
                        survivor++;
                if (survivor < files.n_index)
                        rotated_name(files.index[survivor], from);
                else
                        snprintf(from, sizeof(from), "%s", EVENTLOG_FILE);
                r = read_first_seq(log->dir_fd, from, log->key, &first);
                if (r < 0)
                        return r;
                Head h = log->head;
                h.first_seq = first;
                r = head_write(log->dir_fd, log->key, &h);
                if (r < 0)
                        return r;
                log->head = h;
                for (size_t i = 0; i < survivor; i++) {
                        rotated_name(files.index[i], from);
                        if (unlinkat(log->dir_fd, from, 0) < 0 && errno != ENOENT)
                                return -errno;
                }
        }
        for (size_t i = 0; i < files.n_index; i++) {
                if (files.index[i] >= keep)
                        continue;
                rotated_name(files.index[i], from);
                rotated_name(files.index[i] + 1, to);
                if (renameat(log->dir_fd, from, log->dir_fd, to) < 0)
                        return -errno;
        }
        rotated_name(1, to);
        /* ENOENT: an earlier rotation got this far and failed to open the new file. */
        if (renameat(log->dir_fd, EVENTLOG_FILE, log->dir_fd, to) < 0 && errno != ENOENT)
                return -errno;
        fd = openat(log->dir_fd, EVENTLOG_FILE, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (fd < 0)
                return -errno;
        r = fsync_dir(log->dir_fd);
        if (r < 0)
                return r;
        close(log->fd);
        log->fd = TAKE_FD(fd);
        log->file_size = 0;
        return 0;
}

int eventlog_flush(EventLog *log) {
        int r;

        if (log->cut_pending) {
                if (ftruncate(log->fd, (off_t) log->file_size) < 0 || fsync(log->fd) < 0)
                        return -errno;
                log->cut_pending = false;
        }
        if (log->len > 0) {
                Head h = log->head;

                r = write_all(log->fd, log->buf, log->len);
                if (r >= 0 && fsync(log->fd) < 0)
                        r = -errno;
                if (r < 0) {
                        /* Keep the batch; cut what reached the file so the retry appends whole
                         * lines after whole lines. */
                        if (ftruncate(log->fd, (off_t) log->file_size) < 0 || fsync(log->fd) < 0)
                                log->cut_pending = true;
                        return r;
                }
                log->file_size += log->len;
                log->len = 0;
                h.last_seq = log->seq;
                memcpy(h.last_mac, log->mac, EVENTLOG_MAC_SIZE);
                r = head_write(log->dir_fd, log->key, &h);
                if (r < 0)
                        return r;
                log->head = h;
        }
        if (log->file_size >= log->opts.max_file_size)
                return rotate(log);
        return 0;
}

int eventlog_quarantine(const char *dir, char **ret_name) {
        _cleanup_(log_files_done) LogFiles files = {};
        _cleanup_close_ int dir_fd = -1, q_fd = -1;
        char name[96], file[64];
        struct tm tm;
        time_t now = time(NULL);
        int r;

        dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0)
                return -errno;
        if (!gmtime_r(&now, &tm))
                return -EINVAL;
        for (unsigned i = 0;; i++) {
                size_t n = strftime(name, sizeof(name), QUARANTINE_PREFIX "%Y%m%dT%H%M%SZ", &tm);
                if (n == 0)
                        return -EINVAL;
                if (i > 0)
                        snprintf(name + n, sizeof(name) - n, "-%u", i);
                if (mkdirat(dir_fd, name, 0700) == 0)
                        break;
                if (errno != EEXIST || i >= 100)
                        return -errno;
        }
        q_fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (q_fd < 0)
                return -errno;
        r = log_files_list(dir_fd, &files);
        if (r < 0)
                return r;
        for (size_t i = 0; i <= files.n_index + 1; i++) {
                if (i < files.n_index)
                        rotated_name(files.index[i], file);
                else if (i == files.n_index)
                        snprintf(file, sizeof(file), "%s", EVENTLOG_FILE);
                else
                        snprintf(file, sizeof(file), "%s", EVENTLOG_HEAD);
                if (renameat(dir_fd, file, q_fd, file) < 0 && errno != ENOENT)
                        return -errno;
        }
        if (fsync(q_fd) < 0 || fsync(dir_fd) < 0)
                return -errno;
        if (ret_name) {
                char *s = strdup(name);
                if (!s)
                        return -ENOMEM;
                *ret_name = s;
        }
        return 0;
}
