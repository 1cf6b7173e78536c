/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The tamper-evident event log, on real files in a temporary directory: every kind of
 * tampering is named at the right file, line and seq (a byte altered in the event, the seq or
 * the MAC; a line deleted, two swapped, whole lines cut off the end, a rotated file deleted, the
 * wrong key); a torn write is recovered at open without losing an earlier record; rotation
 * keeps the chain; the key file is refused when others can read it; hostile lines are capped.
 */
#include "ceredis.h"

#include "eventlog.h"

#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <sys/stat.h>

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

typedef struct Fixture {
        char *dir;
        char path[512];
        EventlogKey *key;
} Fixture;

static const uint8_t key_bytes[EVENTLOG_KEY_SIZE] = "0123456789abcdef0123456789abcde";

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        f->dir = strdup("/tmp/ceredis-test-eventlog.XXXXXX");
        assert_non_null(f->dir);
        assert_non_null(mkdtemp(f->dir));
        assert_int_equal(eventlog_key_from_bytes(key_bytes, sizeof(key_bytes), &f->key), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;

        nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        free(f->dir);
        eventlog_key_free(f->key);
        free(f);
        return 0;
}

static const char *path_of(Fixture *f, const char *name) {
        snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, name);
        return f->path;
}

static void make_event(Event *e, unsigned i) {
        char detail[64];

        event_init(e, i % 3 == 0 ? EVENT_VIOLATION : EVENT_POLICY_RELOADED);
        EVENT_SET(e->host, "vps1");
        snprintf(detail, sizeof(detail), "event number %u", i);
        if (e->kind == EVENT_VIOLATION) {
                EVENT_SET(e->rule, "NET-1");
                EVENT_SET(e->src.service, "internet");
                EVENT_SET(e->src.ip, "198.51.100.9");
                EVENT_SET(e->dst.service, detail);
                e->dst.port = 5432;
                EVENT_SET(e->proto, "tcp");
        } else
                EVENT_SET(e->detail, detail);
}

/* Append events first..last, flushing after every `batch` of them. */
static void append_range(Fixture *f, const EventlogOptions *opts, unsigned first, unsigned last, unsigned batch) {
        EventLog *log = NULL;
        EventlogResult problem = {};
        Event e;

        assert_int_equal(eventlog_open(f->dir, f->key, opts, &problem, &log), 0);
        assert_int_equal(eventlog_last_seq(log), first - 1);
        for (unsigned i = first; i <= last; i++) {
                make_event(&e, i);
                assert_int_equal(eventlog_append(log, &e), 0);
                if ((i - first + 1) % batch == 0)
                        assert_int_equal(eventlog_flush(log), 0);
        }
        assert_int_equal(eventlog_flush(log), 0);
        eventlog_close(log);
}

static void verify(Fixture *f, const char *what, EventlogResult *res) {
        memset(res, 0xaa, sizeof(*res));
        assert_int_equal(eventlog_verify(what ? what : f->dir, f->key, res, NULL, NULL), 0);
}

static void expect(const EventlogResult *res, EventlogProblem p, const char *file, uint64_t line, uint64_t seq) {
        if (res->problem != p || !streq(res->file, file) || res->line != line || res->seq != seq)
                fail_msg("expected %s at %s:%" PRIu64 " seq %" PRIu64 ", got %s at %s:%" PRIu64 " seq %" PRIu64 ": %s",
                         eventlog_problem_to_string(p), file, line, seq, eventlog_problem_to_string(res->problem),
                         res->file, res->line, res->seq, res->detail);
}

static char *read_all(const char *path, size_t *ret_size) {
        FILE *fp = fopen(path, "re");
        char *buf;
        long n;

        assert_non_null(fp);
        assert_int_equal(fseek(fp, 0, SEEK_END), 0);
        n = ftell(fp);
        rewind(fp);
        buf = malloc((size_t) n + 1);
        assert_non_null(buf);
        assert_int_equal(fread(buf, 1, (size_t) n, fp), (size_t) n);
        buf[n] = '\0';
        fclose(fp);
        *ret_size = (size_t) n;
        return buf;
}

static void write_all_to(const char *path, const char *data, size_t size) {
        FILE *fp = fopen(path, "we");
        assert_non_null(fp);
        assert_int_equal(fwrite(data, 1, size, fp), size);
        assert_int_equal(fclose(fp), 0);
}

/* Byte offset of the start of 1-based line `n`. */
static size_t line_start(const char *s, unsigned n) {
        const char *p = s;
        while (--n > 0) {
                p = strchr(p, '\n');
                assert_non_null(p);
                p++;
        }
        return (size_t) (p - s);
}

static size_t line_len(const char *s, unsigned n) {
        size_t start = line_start(s, n);
        return (size_t) (strchr(s + start, '\n') - (s + start)) + 1;
}

/* Rewrite events.jsonl with line `n` edited by `edit`. */
static void edit_active(Fixture *f, unsigned n, void (*edit)(char *line, size_t len)) {
        size_t size;
        char *s = read_all(path_of(f, EVENTLOG_FILE), &size);
        edit(s + line_start(s, n), line_len(s, n));
        write_all_to(path_of(f, EVENTLOG_FILE), s, size);
        free(s);
}

static void flip_in_event(char *line, size_t len) {
        char *p = strstr(line, "event number");
        assert_non_null(p);
        p[0] = 'E';
}

static void flip_in_seq(char *line, size_t len) {
        assert_true(strncmp(line, "{\"seq\":", 7) == 0);
        line[7] = line[7] == '9' ? '8' : (char) (line[7] + 1);
}

static void flip_in_mac(char *line, size_t len) {
        char *p = line + len - 5; /* the mac's hex, before "}\n */
        *p = *p == '0' ? '1' : '0';
}

static void test_round_trip(void **state) {
        Fixture *f = *state;
        EventlogResult res;
        struct stat st;

        append_range(f, NULL, 1, 10, 3);
        verify(f, NULL, &res);
        expect(&res, EVENTLOG_INTACT, "", 0, 0);
        assert_int_equal(res.n_records, 10);
        assert_int_equal(res.first_seq, 1);
        assert_int_equal(res.last_seq, 10);
        assert_int_equal(res.n_files, 1);
        assert_true(res.head_checked);
        assert_true(res.first_ts_usec > 0 && res.first_ts_usec <= res.last_ts_usec);

        /* The log is private, and a second writer is kept out. */
        assert_int_equal(stat(path_of(f, EVENTLOG_FILE), &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        EventLog *a = NULL, *b = NULL;
        assert_int_equal(eventlog_open(f->dir, f->key, NULL, NULL, &a), 0);
        assert_int_equal(eventlog_open(f->dir, f->key, NULL, NULL, &b), -EBUSY);
        eventlog_close(a);

        /* Reopening continues the chain. */
        append_range(f, NULL, 11, 12, 1);
        verify(f, NULL, &res);
        expect(&res, EVENTLOG_INTACT, "", 0, 0);
        assert_int_equal(res.last_seq, 12);
}

typedef struct Collected {
        uint64_t seqs[64];
        char details[64][EVENT_MAX_DETAIL];
        size_t n;
} Collected;

static int collect(const EventlogRecord *rec, void *userdata) {
        Collected *c = userdata;
        if (c->n >= ELEMENTSOF(c->seqs))
                return -E2BIG;
        c->seqs[c->n] = rec->seq;
        snprintf(c->details[c->n], sizeof(c->details[0]), "%s",
                 rec->event.kind == EVENT_VIOLATION ? rec->event.dst.service : rec->event.detail);
        c->n++;
        return 0;
}

static void test_reader_callback(void **state) {
        Fixture *f = *state;
        Collected c = {};
        EventlogResult res = {};
        char want[64];

        append_range(f, NULL, 1, 7, 7);
        assert_int_equal(eventlog_verify(f->dir, f->key, &res, collect, &c), 0);
        assert_int_equal(res.problem, EVENTLOG_INTACT);
        assert_int_equal(c.n, 7);
        for (unsigned i = 0; i < 7; i++) {
                assert_int_equal(c.seqs[i], i + 1);
                snprintf(want, sizeof(want), "event number %u", i + 1);
                assert_string_equal(c.details[i], want);
        }
}

static void test_altered(void **state) {
        Fixture *f = *state;
        EventlogResult res;

        append_range(f, NULL, 1, 10, 10);
        edit_active(f, 5, flip_in_event);
        verify(f, NULL, &res);
        expect(&res, EVENTLOG_ALTERED, EVENTLOG_FILE, 5, 5);
        assert_int_equal(res.n_records, 4);
        assert_non_null(strstr(res.detail, "record seq 5 altered"));
}

static void test_altered_seq_and_mac(void **state) {
        Fixture *f = *state;
        EventlogResult res;
        EventLog *log = NULL;

        append_range(f, NULL, 1, 10, 10);
        edit_active(f, 7, flip_in_seq);
        verify(f, NULL, &res);
        expect(&res, EVENTLOG_ALTERED, EVENTLOG_FILE, 7, 7);
        nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        assert_int_equal(mkdir(f->dir, 0700), 0);
        append_range(f, NULL, 1, 10, 10);
        edit_active(f, 3, flip_in_mac);
        verify(f, NULL, &res);
        expect(&res, EVENTLOG_ALTERED, EVENTLOG_FILE, 3, 3);

        /* Tampering before the head's record is not a crash: open refuses the log. */
        memset(&res, 0, sizeof(res));
        assert_int_equal(eventlog_open(f->dir, f->key, NULL, &res, &log), -EBADMSG);
        assert_null(log);
        expect(&res, EVENTLOG_ALTERED, EVENTLOG_FILE, 3, 3);
}

static void delete_line(Fixture *f, unsigned n) {
        size_t size, start, len;
        char *s = read_all(path_of(f, EVENTLOG_FILE), &size);
        start = line_start(s, n);
        len = line_len(s, n);
        memmove(s + start, s + start + len, size - start - len);
        write_all_to(path_of(f, EVENTLOG_FILE), s, size - len);
        free(s);
}

static void test_removed(void **state) {
        Fixture *f = *state;
        EventlogResult res;

        append_range(f, NULL, 1, 10, 10);
        delete_line(f, 4);
        verify(f, NULL, &res);
        expect(&res, EVENTLOG_REMOVED, EVENTLOG_FILE, 4, 4);
        assert_string_equal(res.detail, "record seq 4 removed");

        delete_line(f, 4); /* now seq 4 and 5 are gone */
        verify(f, NULL, &res);
        expect(&res, EVENTLOG_REMOVED, EVENTLOG_FILE, 4, 4);
        assert_string_equal(res.detail, "records seq 4..5 removed");

        delete_line(f, 1); /* the first record: the genesis is missing */
        verify(f, NULL, &res);
        expect(&res, EVENTLOG_REMOVED, EVENTLOG_FILE, 1, 1);
}

static void test_reordered(void **state) {
        Fixture *f = *state;
        EventlogResult res;
        size_t size, s4, l4, l5;
        char *s, *copy;

        append_range(f, NULL, 1, 10, 10);
        s = read_all(path_of(f, EVENTLOG_FILE), &size);
        copy = malloc(size);
        assert_non_null(copy);
        s4 = line_start(s, 4);
        l4 = line_len(s, 4);
        l5 = line_len(s, 5);
        memcpy(copy, s, size);
        memcpy(copy + s4, s + s4 + l4, l5);
        memcpy(copy + s4 + l5, s + s4, l4);
        write_all_to(path_of(f, EVENTLOG_FILE), copy, size);
        verify(f, NULL, &res);
        expect(&res, EVENTLOG_REORDERED, EVENTLOG_FILE, 4, 5);

        free(copy);
        {
                /* A replayed line: a copy of line 4 after line 10, seq going backwards. */
                char *dup = malloc(size + l4);
                assert_non_null(dup);
                memcpy(dup, s, size);
                memcpy(dup + size, s + s4, l4);
                write_all_to(path_of(f, EVENTLOG_FILE), dup, size + l4);
                free(dup);
        }
        verify(f, NULL, &res);
        expect(&res, EVENTLOG_REORDERED, EVENTLOG_FILE, 11, 4);
        free(s);
}

static void test_crash_torn_tail_recovered(void **state) {
        Fixture *f = *state;
        static const char torn[] = "{\"seq\":10,\"prev\":\"0a1b";
        EventlogResult res;
        EventLog *log = NULL;
        size_t size;
        char *s;
        int fd;

        append_range(f, NULL, 1, 9, 4);
        /* A crash in the middle of write(): part of a line after the last durable record. */
        fd = open(path_of(f, EVENTLOG_FILE), O_WRONLY | O_APPEND | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, torn, strlen(torn)), (ssize_t) strlen(torn));
        close(fd);

        verify(f, NULL, &res);
        expect(&res, EVENTLOG_TRUNCATED, EVENTLOG_FILE, 10, 10);

        assert_int_equal(eventlog_open(f->dir, f->key, NULL, &res, &log), 0);
        assert_int_equal(eventlog_recovered_bytes(log), strlen(torn));
        assert_int_equal(eventlog_last_seq(log), 9);
        Event e;
        make_event(&e, 10);
        assert_int_equal(eventlog_append(log, &e), 0);
        eventlog_close(log); /* close flushes */

        verify(f, NULL, &res);
        expect(&res, EVENTLOG_INTACT, "", 0, 0);
        assert_int_equal(res.n_records, 10);
        s = read_all(path_of(f, EVENTLOG_FILE), &size);
        assert_null(strstr(s, torn));
        free(s);
}

static void test_crash_after_log_before_head(void **state) {
        Fixture *f = *state;
        EventlogResult res;
        EventLog *log = NULL;
        size_t size, head_size;
        char *head, *s;

        append_range(f, NULL, 1, 5, 5);
        head = read_all(path_of(f, EVENTLOG_HEAD), &head_size);
        append_range(f, NULL, 6, 8, 3);
        /* The crash hit after the log's fsync and before the head moved; then a torn line. */
        write_all_to(path_of(f, EVENTLOG_HEAD), head, head_size);
        s = read_all(path_of(f, EVENTLOG_FILE), &size);
        write_all_to(path_of(f, EVENTLOG_FILE), s, size - 10);
        free(s);

        verify(f, NULL, &res);
        expect(&res, EVENTLOG_TRUNCATED, EVENTLOG_FILE, 8, 8);

        assert_int_equal(eventlog_open(f->dir, f->key, NULL, &res, &log), 0);
        assert_int_equal(eventlog_last_seq(log), 7); /* 6 and 7 kept: they verify */
        assert_true(eventlog_recovered_bytes(log) > 0);
        eventlog_close(log);
        verify(f, NULL, &res);
        expect(&res, EVENTLOG_INTACT, "", 0, 0);
        assert_int_equal(res.last_seq, 7);
        free(head);
}

static void test_truncated_whole_lines(void **state) {
        Fixture *f = *state;
        EventlogResult res;
        EventLog *log = NULL;
        size_t size;
        char *s;

        append_range(f, NULL, 1, 10, 10);
        s = read_all(path_of(f, EVENTLOG_FILE), &size);
        write_all_to(path_of(f, EVENTLOG_FILE), s, line_start(s, 9));

        verify(f, NULL, &res);
        expect(&res, EVENTLOG_TRUNCATED, EVENTLOG_FILE, 9, 9);
        assert_string_equal(res.detail, "records seq 9..10 cut off the end (the head names seq 10)");
        assert_int_equal(eventlog_open(f->dir, f->key, NULL, &res, &log), -EBADMSG);
        assert_int_equal(res.problem, EVENTLOG_TRUNCATED);

        /* The head's own record cut mid-way is not a crash either: it was durable. */
        write_all_to(path_of(f, EVENTLOG_FILE), s, size - 7);
        verify(f, NULL, &res);
        expect(&res, EVENTLOG_TRUNCATED, EVENTLOG_FILE, 10, 10);
        assert_int_equal(eventlog_open(f->dir, f->key, NULL, &res, &log), -EBADMSG);
        free(s);
}

static void test_head_removed(void **state) {
        Fixture *f = *state;
        EventlogResult res;
        EventLog *log = NULL;

        append_range(f, NULL, 1, 4, 4);
        assert_int_equal(unlink(path_of(f, EVENTLOG_HEAD)), 0);
        verify(f, NULL, &res);
        expect(&res, EVENTLOG_REMOVED, EVENTLOG_HEAD, 1, 4);
        assert_int_equal(eventlog_open(f->dir, f->key, NULL, &res, &log), -EBADMSG);
        assert_int_equal(res.problem, EVENTLOG_REMOVED);

        /* Verifying the file alone still works, with the caveat recorded. */
        verify(f, path_of(f, EVENTLOG_FILE), &res);
        expect(&res, EVENTLOG_INTACT, "", 0, 0);
        assert_false(res.head_checked);
        assert_int_equal(res.n_records, 4);
}

static void test_rotation(void **state) {
        Fixture *f = *state;
        EventlogOptions opts = { .max_file_size = 3000, .keep = 3 };
        EventlogResult res;
        struct stat st;
        size_t size;
        char *s;

        append_range(f, &opts, 1, 60, 2);
        assert_int_equal(stat(path_of(f, EVENTLOG_FILE ".3"), &st), 0);
        assert_int_equal(stat(path_of(f, EVENTLOG_FILE ".4"), &st), -1);
        verify(f, NULL, &res);
        expect(&res, EVENTLOG_INTACT, "", 0, 0);
        assert_int_equal(res.n_files, 4);
        assert_true(res.first_seq > 1);
        assert_int_equal(res.last_seq, 60);
        assert_int_equal(res.n_records, 60 - res.first_seq + 1);

        /* The first record of a rotated-to file continues the previous file's chain. */
        s = read_all(path_of(f, EVENTLOG_FILE ".1"), &size);
        assert_true(strncmp(s, "{\"seq\":", 7) == 0);
        assert_null(strstr(s, "\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\""));
        free(s);

        /* Reopen and keep going: still one chain. */
        append_range(f, &opts, 61, 80, 5);
        verify(f, NULL, &res);
        expect(&res, EVENTLOG_INTACT, "", 0, 0);
        assert_int_equal(res.last_seq, 80);
}

static void test_rotated_file_deleted(void **state) {
        Fixture *f = *state;
        EventlogOptions opts = { .max_file_size = 3000, .keep = 3 };
        EventlogResult res;
        uint64_t first;

        append_range(f, &opts, 1, 60, 2);
        verify(f, NULL, &res);
        first = res.first_seq;

        /* The middle rotated file: a seq gap where .1 should continue. */
        char from[512];
        snprintf(from, sizeof(from), "%s", path_of(f, EVENTLOG_FILE ".2"));
        assert_int_equal(rename(from, path_of(f, "saved")), 0);
        verify(f, NULL, &res);
        assert_int_equal(res.problem, EVENTLOG_REMOVED);
        assert_string_equal(res.file, EVENTLOG_FILE ".1");
        assert_int_equal(res.line, 1);
        snprintf(from, sizeof(from), "%s", path_of(f, "saved"));
        assert_int_equal(rename(from, path_of(f, EVENTLOG_FILE ".2")), 0);
        verify(f, NULL, &res);
        assert_int_equal(res.problem, EVENTLOG_INTACT);

        /* The oldest file: the head remembers where the log starts. */
        assert_int_equal(unlink(path_of(f, EVENTLOG_FILE ".3")), 0);
        verify(f, NULL, &res);
        expect(&res, EVENTLOG_REMOVED, EVENTLOG_FILE ".2", 1, first);
}

static void test_wrong_key(void **state) {
        Fixture *f = *state;
        static const uint8_t other[EVENTLOG_KEY_SIZE] = "another key, thirty-two bytes!!";
        _cleanup_(eventlog_key_freep) EventlogKey *k = NULL;
        EventlogResult res = {};
        EventLog *log = NULL;

        append_range(f, NULL, 1, 3, 3);
        assert_int_equal(eventlog_key_from_bytes(other, sizeof(other), &k), 0);
        assert_int_equal(eventlog_verify(f->dir, k, &res, NULL, NULL), 0);
        expect(&res, EVENTLOG_ALTERED, EVENTLOG_FILE, 1, 1);
        assert_non_null(strstr(res.detail, "wrong key"));
        assert_int_equal(eventlog_open(f->dir, k, NULL, &res, &log), -EBADMSG);
        assert_string_equal(res.file, EVENTLOG_HEAD);
}

static void test_quarantine(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *name = NULL;
        EventlogResult res = {};
        EventLog *log = NULL;
        char qdir[512];

        append_range(f, NULL, 1, 6, 6);
        delete_line(f, 2);
        assert_int_equal(eventlog_open(f->dir, f->key, NULL, &res, &log), -EBADMSG);
        expect(&res, EVENTLOG_REMOVED, EVENTLOG_FILE, 2, 2);

        assert_int_equal(eventlog_quarantine(f->dir, &name), 0);
        assert_true(strncmp(name, "events.tampered-", 16) == 0);
        /* A fresh chain starts; the evidence stays verifiable where it was moved. */
        append_range(f, NULL, 1, 2, 1);
        verify(f, NULL, &res);
        expect(&res, EVENTLOG_INTACT, "", 0, 0);
        assert_int_equal(res.n_records, 2);
        assert_int_equal(res.n_quarantined, 1);
        snprintf(qdir, sizeof(qdir), "%s/%s", f->dir, name);
        verify(f, qdir, &res);
        expect(&res, EVENTLOG_REMOVED, EVENTLOG_FILE, 2, 2);
}

static void test_key_file(void **state) {
        Fixture *f = *state;
        _cleanup_(eventlog_key_freep) EventlogKey *a = NULL, *b = NULL, *c = NULL;
        uint8_t ma[EVENTLOG_MAC_SIZE], mb[EVENTLOG_MAC_SIZE];
        char key[512];
        struct stat st;

        snprintf(key, sizeof(key), "%s", path_of(f, "eventlog.key"));
        assert_int_equal(eventlog_key_load(key, false, &a), -ENOENT);
        assert_int_equal(eventlog_key_load(key, true, &a), 0);
        assert_int_equal(stat(key, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(st.st_size, EVENTLOG_KEY_SIZE);
        assert_int_equal(eventlog_key_load(key, true, &b), 0); /* exists now: loaded, not replaced */
        assert_int_equal(eventlog_mac(a, "x", 1, ma), 0);
        assert_int_equal(eventlog_mac(b, "x", 1, mb), 0);
        assert_memory_equal(ma, mb, sizeof(ma));
        assert_int_equal(eventlog_mac(f->key, "x", 1, mb), 0);
        assert_memory_not_equal(ma, mb, sizeof(ma)); /* random, not our fixed test key */

        assert_int_equal(chmod(key, 0640), 0);
        assert_int_equal(eventlog_key_load(key, false, &c), -EPERM);
        assert_int_equal(chmod(key, 0604), 0);
        assert_int_equal(eventlog_key_load(key, true, &c), -EPERM);
        assert_int_equal(chmod(key, 0600), 0);

        char link[512];
        snprintf(link, sizeof(link), "%s", path_of(f, "key-link"));
        assert_int_equal(symlink(key, link), 0);
        assert_int_equal(eventlog_key_load(link, false, &c), -EINVAL);
        assert_int_equal(eventlog_key_load(f->dir, false, &c), -EINVAL);
        write_all_to(path_of(f, "short.key"), "0123", 4);
        assert_int_equal(chmod(path_of(f, "short.key"), 0600), 0);
        assert_int_equal(eventlog_key_load(path_of(f, "short.key"), false, &c), -EINVAL);
        assert_null(c);
}

static void test_line_caps(void **state) {
        Fixture *f = *state;
        EventlogChain chain = {};
        EventlogResult res = {};
        EventLog *log = NULL;
        size_t size, n = EVENTLOG_MAX_LINE + 100;
        char *big, *s;
        Event e;

        /* The worst event the model allows still fits a line, so it is always logged. */
        assert_int_equal(eventlog_open(f->dir, f->key, NULL, NULL, &log), 0);
        make_event(&e, 3);
        e.has_l7 = true;
        memset(e.l7.path, '\x01', sizeof(e.l7.path) - 1);
        memset(e.src.service, '\x02', sizeof(e.src.service) - 1);
        memset(e.dst.service, '"', sizeof(e.dst.service) - 1);
        memset(e.host, '\x1f', sizeof(e.host) - 1);
        assert_int_equal(eventlog_append(log, &e), 0);
        eventlog_close(log);
        s = read_all(path_of(f, EVENTLOG_FILE), &size);
        assert_true(size > 4 * sizeof(e.l7.path) && size <= EVENTLOG_MAX_LINE);
        assert_int_equal(eventlog_verify_buffer(f->key, s, size, "buf", &chain, &res, NULL, NULL), 0);
        expect(&res, EVENTLOG_INTACT, "", 0, 0);
        free(s);

        /* A hostile line past the cap is refused without buffering it whole. */
        big = malloc(n + 1);
        assert_non_null(big);
        memset(big, 'x', n);
        big[n] = '\n';
        memset(&res, 0, sizeof(res));
        chain = (EventlogChain) { .started = true };
        assert_int_equal(eventlog_verify_buffer(f->key, big, n + 1, "buf", &chain, &res, NULL, NULL), 0);
        expect(&res, EVENTLOG_ALTERED, "buf", 1, 1);
        assert_non_null(strstr(res.detail, "longer than"));
        write_all_to(path_of(f, "big.jsonl"), big, n + 1);
        verify(f, path_of(f, "big.jsonl"), &res);
        expect(&res, EVENTLOG_ALTERED, "big.jsonl", 1, 0);
        assert_int_equal(eventlog_record_parse(f->key, big, n, &(EventlogRecord) {}), -E2BIG);
        free(big);
}

static void test_verify_buffer_chain(void **state) {
        Fixture *f = *state;
        EventlogChain chain = { .started = true }; /* the genesis: seq 0, MAC zeros */
        EventlogResult res = {};
        size_t size, cut;
        char *s;

        append_range(f, NULL, 1, 6, 6);
        s = read_all(path_of(f, EVENTLOG_FILE), &size);
        cut = line_start(s, 4);
        /* Two buffers, one chain: the second continues where the first stopped. */
        assert_int_equal(eventlog_verify_buffer(f->key, s, cut, "a", &chain, &res, NULL, NULL), 0);
        assert_int_equal(res.problem, EVENTLOG_INTACT);
        assert_int_equal(chain.seq, 3);
        assert_int_equal(eventlog_verify_buffer(f->key, s + cut, size - cut, "b", &chain, &res, NULL, NULL), 0);
        assert_int_equal(res.problem, EVENTLOG_INTACT);
        assert_int_equal(chain.seq, 6);
        assert_int_equal(res.n_records, 6);

        /* Starting the second buffer from a chain that does not end where it begins. */
        chain = (EventlogChain) { .started = true, .seq = 2 };
        memset(&res, 0, sizeof(res));
        assert_int_equal(eventlog_verify_buffer(f->key, s + cut, size - cut, "b", &chain, &res, NULL, NULL), 0);
        expect(&res, EVENTLOG_REMOVED, "b", 1, 3);
        assert_string_equal(res.detail, "record seq 3 removed");
        free(s);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reader_callback, setup, teardown),
                cmocka_unit_test_setup_teardown(test_altered, setup, teardown),
                cmocka_unit_test_setup_teardown(test_altered_seq_and_mac, setup, teardown),
                cmocka_unit_test_setup_teardown(test_removed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reordered, setup, teardown),
                cmocka_unit_test_setup_teardown(test_crash_torn_tail_recovered, setup, teardown),
                cmocka_unit_test_setup_teardown(test_crash_after_log_before_head, setup, teardown),
                cmocka_unit_test_setup_teardown(test_truncated_whole_lines, setup, teardown),
                cmocka_unit_test_setup_teardown(test_head_removed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rotated_file_deleted, setup, teardown),
                cmocka_unit_test_setup_teardown(test_wrong_key, setup, teardown),
                cmocka_unit_test_setup_teardown(test_quarantine, setup, teardown),
                cmocka_unit_test_setup_teardown(test_key_file, setup, teardown),
                cmocka_unit_test_setup_teardown(test_line_caps, setup, teardown),
                cmocka_unit_test_setup_teardown(test_verify_buffer_chain, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
