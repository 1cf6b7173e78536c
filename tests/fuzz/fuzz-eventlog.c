/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz the event log reader and verifier with hostile logs. The first byte picks a mode:
 *   0: the bytes as they are, through the pure buffer verifier (almost every line fails its MAC);
 *   1: each line is a record without its MAC; the harness seals it with the fuzzer's key
 *      (replacing "@PREV@" with the previous line's MAC) so the JSON, event decoding and chain
 *      logic behind the MAC check are reached;
 *   2: the bytes as one event, through the strict event decoder;
 *   3: mode 1's sealed lines written as events.jsonl of a fresh log directory, then opened
 *      (crash recovery) and verified on disk.
 * Whatever the input: no crash, no leak, no line longer than the cap buffered, and a log that
 * open() accepted verifies intact afterwards.
 */
#include "ceredis.h"

#include <ftw.h>
#include <sys/stat.h>

#include "eventlog.h"

#define MAX_INPUT (64u * 1024u)

static const uint8_t key_bytes[EVENTLOG_KEY_SIZE] = "fuzz-eventlog-key-32-bytes-long";
static EventlogKey *key;
static char dir[64];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int rm_any(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static void cleanup(void) {
        nftw(dir, rm_any, 16, FTW_DEPTH | FTW_PHYS);
        eventlog_key_free(key);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        if (eventlog_key_from_bytes(key_bytes, sizeof(key_bytes), &key) < 0)
                abort();
        /* tmpfs when there is one: mode 3 fsyncs, which costs nothing there. */
        snprintf(dir, sizeof(dir), "/dev/shm/fuzz-eventlog.XXXXXX");
        if (!mkdtemp(dir)) {
                snprintf(dir, sizeof(dir), "/tmp/fuzz-eventlog.XXXXXX");
                if (!mkdtemp(dir))
                        abort();
        }
        atexit(cleanup);
        return 0;
}

static void hex(const uint8_t *mac, char out[EVENTLOG_MAC_HEX + 1]) {
        for (size_t i = 0; i < EVENTLOG_MAC_SIZE; i++)
                snprintf(out + 2 * i, 3, "%02x", mac[i]);
}

/* Seal every line of data; returns a malloc'ed buffer. */
static char *seal_lines(const uint8_t *data, size_t size, size_t *ret_size) {
        static const char placeholder[] = "@PREV@";
        uint8_t mac[EVENTLOG_MAC_SIZE] = {};
        char prev_hex[EVENTLOG_MAC_HEX + 1];
        /* A line grows by at most 64 - 6 (placeholder) + 74 (seal) + 1 (newline) bytes. */
        char *out = malloc(size + 140 * (size + 1));
        size_t o = 0, i = 0;

        if (!out)
                return NULL;
        while (i < size) {
                const uint8_t *nl = memchr(data + i, '\n', size - i);
                size_t len = nl ? (size_t) (nl - (data + i)) : size - i;
                const char *line = (const char *) data + i;
                char *start = out + o;
                const char *ph = memmem(line, len, placeholder, sizeof(placeholder) - 1);

                hex(mac, prev_hex);
                if (ph) {
                        size_t before = (size_t) (ph - line);
                        memcpy(out + o, line, before);
                        o += before;
                        memcpy(out + o, prev_hex, EVENTLOG_MAC_HEX);
                        o += EVENTLOG_MAC_HEX;
                        memcpy(out + o, ph + sizeof(placeholder) - 1, len - before - (sizeof(placeholder) - 1));
                        o += len - before - (sizeof(placeholder) - 1);
                } else {
                        memcpy(out + o, line, len);
                        o += len;
                }
                if (eventlog_mac(key, start, (size_t) (out + o - start), mac) < 0)
                        abort();
                hex(mac, prev_hex);
                o += (size_t) sprintf(out + o, ",\"mac\":\"%s\"}", prev_hex);
                if (nl)
                        out[o++] = '\n';
                i += len + (nl ? 1 : 0);
        }
        *ret_size = o;
        return out;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return path[strlen(dir)] ? remove(path) : 0; /* keep the directory itself */
}

static void on_disk(const char *data, size_t size) {
        char path[sizeof(dir) + 32];
        EventlogResult res = {};
        EventLog *log = NULL;
        FILE *f;
        int r;

        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        /* A fresh log (its head names no record), then the fuzzer's bytes as its file. */
        if (eventlog_open(dir, key, NULL, NULL, &log) < 0)
                abort();
        eventlog_close(log);
        log = NULL;
        snprintf(path, sizeof(path), "%s/%s", dir, EVENTLOG_FILE);
        f = fopen(path, "we");
        if (!f)
                abort();
        fwrite(data, 1, size, f);
        fclose(f);

        r = eventlog_open(dir, key, NULL, &res, &log);
        if (r == 0) {
                Event e;
                event_init(&e, EVENT_EVENTLOG_RECOVERED);
                e.count = eventlog_recovered_bytes(log);
                if (eventlog_append(log, &e) < 0 || eventlog_flush(log) < 0)
                        abort();
                eventlog_close(log);
                /* What open accepted (and repaired) must verify. */
                memset(&res, 0, sizeof(res));
                if (eventlog_verify(dir, key, &res, NULL, NULL) < 0 || res.problem != EVENTLOG_INTACT)
                        abort();
        } else if (r != -EBADMSG)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        EventlogChain chain = {};
        EventlogResult res = {};
        char *sealed;
        size_t n;
        Event e;

        if (size < 1 || size > MAX_INPUT)
                return 0;
        switch (data[0] % 4) {
        case 0:
                (void) eventlog_verify_buffer(key, data + 1, size - 1, "fuzz", &chain, &res, NULL, NULL);
                chain = (EventlogChain) { .started = true };
                memset(&res, 0, sizeof(res));
                (void) eventlog_verify_buffer(key, data + 1, size - 1, "fuzz", &chain, &res, NULL, NULL);
                break;
        case 1:
        case 3:
                sealed = seal_lines(data + 1, size - 1, &n);
                if (!sealed)
                        return 0;
                if (data[0] % 4 == 1) {
                        chain = (EventlogChain) { .started = true };
                        (void) eventlog_verify_buffer(key, sealed, n, "fuzz", &chain, &res, NULL, NULL);
                        if (res.problem == EVENTLOG_INTACT && res.n_records > 0 && chain.seq != res.last_seq)
                                abort();
                } else
                        on_disk(sealed, n);
                free(sealed);
                break;
        case 2:
                (void) event_parse((const char *) data + 1, size - 1, &e);
                break;
        }
        return 0;
}
