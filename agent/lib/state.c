/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The state directory: records of what was applied, content-addressed copies of the inputs,
 * pending confirmations and a history. See state.h for the layout; this file keeps every
 * write atomic (temporary file + rename) and every read capped, since a reader of the
 * directory may be a daemon that must not trust a half-written or hostile file.
 */
#include "ceredis.h"

#include "state.h"

#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

static const char *const status_names[] = {
        [STATE_STATUS_NONE] = "none",
        [STATE_STATUS_APPLIED] = "applied",
        [STATE_STATUS_DISABLED] = "disabled",
};

const char *state_status_to_string(StateStatus s) {
        if ((size_t) s >= ELEMENTSOF(status_names))
                return "unknown";
        return status_names[s];
}

static int status_from_string(const char *s, StateStatus *ret) {
        for (size_t i = 0; i < ELEMENTSOF(status_names); i++)
                if (streq(s, status_names[i])) {
                        *ret = (StateStatus) i;
                        return 0;
                }
        return -EBADMSG;
}

int state_record_new(StateStatus status, StateRecord **ret) {
        StateRecord *r = calloc(1, sizeof(*r));

        if (!r)
                return -ENOMEM;
        r->status = status;
        *ret = r;
        return 0;
}

void state_record_free(StateRecord *r) {
        if (!r)
                return;
        free(r->policy_path);
        free(r->endpoints_path);
        free(r->host);
        free(r->netns);
        free(r->by);
        free(r->ts);
        free(r);
}

int state_record_set(char **field, const char *value) {
        char *copy = NULL;

        if (value) {
                if (strlen(value) > STATE_MAX_STRING)
                        return -E2BIG;
                copy = strdup(value);
                if (!copy)
                        return -ENOMEM;
        }
        free(*field);
        *field = copy;
        return 0;
}

int state_record_dup(const StateRecord *r, StateRecord **ret) {
        _cleanup_(state_record_freep) StateRecord *c = NULL;
        int k;

        k = state_record_new(r->status, &c);
        if (k < 0)
                return k;
        memcpy(c->policy_sha256, r->policy_sha256, sizeof(c->policy_sha256));
        memcpy(c->endpoints_sha256, r->endpoints_sha256, sizeof(c->endpoints_sha256));
        c->nflog_group = r->nflog_group;
        if ((k = state_record_set(&c->policy_path, r->policy_path)) < 0 ||
            (k = state_record_set(&c->endpoints_path, r->endpoints_path)) < 0 ||
            (k = state_record_set(&c->host, r->host)) < 0 ||
            (k = state_record_set(&c->netns, r->netns)) < 0 ||
            (k = state_record_set(&c->by, r->by)) < 0 ||
            (k = state_record_set(&c->ts, r->ts)) < 0)
                return k;
        *ret = TAKE_PTR(c);
        return 0;
}

bool state_record_same_target(const StateRecord *a, const StateRecord *b) {
        if (!a || !b)
                return a == b;
        if (a->status != b->status)
                return false;
        if (a->status != STATE_STATUS_APPLIED)
                return true;
        return streq(a->policy_sha256, b->policy_sha256) &&
               streq(a->endpoints_sha256, b->endpoints_sha256) && streq_ptr(a->host, b->host) &&
               streq_ptr(a->netns, b->netns) && a->nflog_group == b->nflog_group;
}

static bool is_sha256_hex(const char *s) {
        size_t i;

        for (i = 0; s[i]; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return i == 64;
}

static int json_set_string(json_t *o, const char *key, const char *value) {
        if (!value)
                return 0;
        return json_object_set_new(o, key, json_string(value)) < 0 ? -ENOMEM : 0;
}

static int record_to_json(const StateRecord *r, json_t **ret) {
        _cleanup_(json_decrefp) json_t *o = json_object();
        int k;

        if (!o)
                return -ENOMEM;
        if ((k = json_set_string(o, "status", state_status_to_string(r->status))) < 0 ||
            (k = json_set_string(o, "policy_path", r->policy_path)) < 0 ||
            (k = json_set_string(o, "policy_sha256", r->policy_sha256[0] ? r->policy_sha256 : NULL)) < 0 ||
            (k = json_set_string(o, "endpoints_path", r->endpoints_path)) < 0 ||
            (k = json_set_string(o, "endpoints_sha256",
                                 r->endpoints_sha256[0] ? r->endpoints_sha256 : NULL)) < 0 ||
            (k = json_set_string(o, "host", r->host)) < 0 ||
            (k = json_set_string(o, "netns", r->netns)) < 0 ||
            (k = json_set_string(o, "by", r->by)) < 0 ||
            (k = json_set_string(o, "ts", r->ts)) < 0)
                return k;
        if (r->nflog_group && json_object_set_new(o, "nflog_group", json_integer(r->nflog_group)) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 0;
}

int state_record_format(const StateRecord *r, char **ret) {
        _cleanup_(json_decrefp) json_t *o = NULL;
        char *s;
        int k;

        k = record_to_json(r, &o);
        if (k < 0)
                return k;
        s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* Copy an optional string member; a member of another type or too long is an error. */
static int json_get_string(json_t *o, const char *key, char **field) {
        json_t *v = json_object_get(o, key);

        if (!v || json_is_null(v))
                return 0;
        if (!json_is_string(v) || json_string_length(v) > STATE_MAX_STRING ||
            strlen(json_string_value(v)) != json_string_length(v))
                return -EBADMSG;
        return state_record_set(field, json_string_value(v));
}

static int json_get_sha(json_t *o, const char *key, char field[65]) {
        json_t *v = json_object_get(o, key);

        if (!v || json_is_null(v)) {
                field[0] = 0;
                return 0;
        }
        if (!json_is_string(v) || !is_sha256_hex(json_string_value(v)))
                return -EBADMSG;
        memcpy(field, json_string_value(v), 65);
        return 0;
}

static int record_from_json(json_t *o, StateRecord **ret) {
        _cleanup_(state_record_freep) StateRecord *r = NULL;
        static const char *const known[] = { "status", "policy_path", "policy_sha256",
                                             "endpoints_path", "endpoints_sha256", "host",
                                             "netns", "by", "ts", "nflog_group" };
        const char *key;
        json_t *v;
        StateStatus status;
        int k;

        if (!json_is_object(o))
                return -EBADMSG;
        json_object_foreach(o, key, v) {
                bool found = false;
                for (size_t i = 0; i < ELEMENTSOF(known); i++)
                        found = found || streq(key, known[i]);
                if (!found)
                        return -EBADMSG;
        }
        v = json_object_get(o, "status");
        if (!json_is_string(v) || status_from_string(json_string_value(v), &status) < 0)
                return -EBADMSG;
        k = state_record_new(status, &r);
        if (k < 0)
                return k;
        v = json_object_get(o, "nflog_group");
        if (v) {
                if (!json_is_integer(v) || json_integer_value(v) < 0 ||
                    json_integer_value(v) > UINT16_MAX)
                        return -EBADMSG;
                r->nflog_group = (uint16_t) json_integer_value(v);
        }
        if ((k = json_get_sha(o, "policy_sha256", r->policy_sha256)) < 0 ||
            (k = json_get_sha(o, "endpoints_sha256", r->endpoints_sha256)) < 0 ||
            (k = json_get_string(o, "policy_path", &r->policy_path)) < 0 ||
            (k = json_get_string(o, "endpoints_path", &r->endpoints_path)) < 0 ||
            (k = json_get_string(o, "host", &r->host)) < 0 ||
            (k = json_get_string(o, "netns", &r->netns)) < 0 ||
            (k = json_get_string(o, "by", &r->by)) < 0 ||
            (k = json_get_string(o, "ts", &r->ts)) < 0)
                return k == -E2BIG ? -EBADMSG : k;
        /* An applied record must name its policy; an endpoints path goes with its blob. */
        if (r->status == STATE_STATUS_APPLIED && (!r->policy_sha256[0] || !r->policy_path))
                return -EBADMSG;
        if (!r->endpoints_sha256[0] != !r->endpoints_path)
                return -EBADMSG;
        *ret = TAKE_PTR(r);
        return 0;
}

int state_record_parse(const char *text, size_t size, StateRecord **ret) {
        _cleanup_(json_decrefp) json_t *o = NULL;
        json_error_t error;

        if (size > STATE_MAX_RECORD)
                return -EBADMSG;
        o = json_loadb(text, size, JSON_REJECT_DUPLICATES, &error);
        if (!o)
                return -EBADMSG;
        return record_from_json(o, ret);
}

int state_dir_ensure(const char *dir) {
        char path[PATH_MAX];

        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return negative_errno();
        if ((size_t) snprintf(path, sizeof(path), "%s/blobs", dir) >= sizeof(path))
                return -ENAMETOOLONG;
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
                return negative_errno();
        return 0;
}

int state_lock(const char *dir, int *ret_fd) {
        char path[PATH_MAX];
        _cleanup_close_ int fd = -1;

        if ((size_t) snprintf(path, sizeof(path), "%s/lock", dir) >= sizeof(path))
                return -ENAMETOOLONG;
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return negative_errno();
        while (flock(fd, LOCK_EX) < 0)
                if (errno != EINTR)
                        return negative_errno();
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int state_read_file(const char *path, size_t max, char **ret, size_t *ret_size) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t n = 0, allocated;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -EBADF;
        if ((uint64_t) st.st_size > max)
                return -EFBIG;
        /* The size may change under us: read until EOF, never past the cap. One spare byte
         * tells a file of exactly `max` bytes from a longer one; one more holds the NUL. */
        allocated = (size_t) st.st_size + 2;
        buf = malloc(allocated);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t l;

                if (n + 1 >= allocated) {
                        char *p;
                        if (allocated >= max + 2)
                                return -EFBIG;
                        allocated = allocated > (max + 2) / 2 ? max + 2 : allocated * 2;
                        p = realloc(buf, allocated);
                        if (!p)
                                return -ENOMEM;
                        buf = p;
                }
                l = read(fd, buf + n, allocated - 1 - n);
                if (l < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (l == 0)
                        break;
                n += (size_t) l;
                if (n > max)
                        return -EFBIG;
        }
        buf[n] = 0;
        *ret = TAKE_PTR(buf);
        *ret_size = n;
        return 0;
}

static int write_all(int fd, const void *data, size_t size) {
        const char *p = data;

        while (size > 0) {
                ssize_t l = write(fd, p, size);
                if (l < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                p += l;
                size -= (size_t) l;
        }
        return 0;
}

int state_write_file(const char *dir, const char *name, const void *data, size_t size) {
        char tmp[PATH_MAX], path[PATH_MAX];
        const char *slash = strrchr(name, '/');
        int prefix = slash ? (int) (slash - name + 1) : 0;
        _cleanup_close_ int fd = -1;
        int k;

        /* The temporary file sits next to the target: rename() cannot cross directories. */
        if ((size_t) snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path) ||
            (size_t) snprintf(tmp, sizeof(tmp), "%s/%.*s.%s.XXXXXX", dir, prefix, name,
                              name + prefix) >= sizeof(tmp))
                return -ENAMETOOLONG;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        k = write_all(fd, data, size);
        if (k >= 0 && fsync(fd) < 0)
                k = negative_errno();
        if (k >= 0 && rename(tmp, path) < 0)
                k = negative_errno();
        if (k < 0)
                (void) unlink(tmp);
        return k;
}

int state_sha256_hex(const void *data, size_t size, char ret[65]) {
        uint8_t md[32];
        unsigned len = 0;

        if (EVP_Digest(data, size, md, &len, EVP_sha256(), NULL) != 1 || len != sizeof(md))
                return -EIO;
        for (size_t i = 0; i < sizeof(md); i++)
                snprintf(ret + 2 * i, 3, "%02x", md[i]);
        return 0;
}

int state_blob_path(const char *dir, const char *sha256, char *buf, size_t size) {
        if (!is_sha256_hex(sha256))
                return -EINVAL;
        if ((size_t) snprintf(buf, size, "%s/blobs/%s", dir, sha256) >= size)
                return -ENAMETOOLONG;
        return 0;
}

int state_blob_store(const char *dir, const void *data, size_t size, char ret_sha256[65]) {
        char sha[65], name[80], path[PATH_MAX];
        int k;

        k = state_sha256_hex(data, size, sha);
        if (k < 0)
                return k;
        k = state_blob_path(dir, sha, path, sizeof(path));
        if (k < 0)
                return k;
        if (access(path, F_OK) < 0) {
                snprintf(name, sizeof(name), "blobs/%s", sha);
                k = state_write_file(dir, name, data, size);
                if (k < 0)
                        return k;
        }
        memcpy(ret_sha256, sha, sizeof(sha));
        return 0;
}

int state_blob_read(const char *dir, const char *sha256, size_t max, char **ret, size_t *ret_size) {
        char path[PATH_MAX], sha[65];
        _cleanup_free_ char *data = NULL;
        size_t size;
        int k;

        k = state_blob_path(dir, sha256, path, sizeof(path));
        if (k < 0)
                return k;
        k = state_read_file(path, max, &data, &size);
        if (k < 0)
                return k;
        k = state_sha256_hex(data, size, sha);
        if (k < 0)
                return k;
        if (!streq(sha, sha256))
                return -EBADMSG;
        *ret = TAKE_PTR(data);
        *ret_size = size;
        return 0;
}

int state_record_load(const char *dir, const char *name, StateRecord **ret) {
        char path[PATH_MAX];
        _cleanup_free_ char *text = NULL;
        size_t size;
        int k;

        if ((size_t) snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
                return -ENAMETOOLONG;
        k = state_read_file(path, STATE_MAX_RECORD, &text, &size);
        if (k == -EFBIG)
                return -EBADMSG;
        if (k < 0)
                return k;
        return state_record_parse(text, size, ret);
}

int state_record_save(const char *dir, const char *name, const StateRecord *r) {
        _cleanup_free_ char *text = NULL;
        int k;

        k = state_record_format(r, &text);
        if (k < 0)
                return k;
        return state_write_file(dir, name, text, strlen(text));
}

int state_pending_token_new(char ret[STATE_TOKEN_LEN + 1]) {
        uint8_t b[STATE_TOKEN_LEN / 2];

        if (getrandom(b, sizeof(b), 0) != (ssize_t) sizeof(b))
                return negative_errno();
        for (size_t i = 0; i < sizeof(b); i++)
                snprintf(ret + 2 * i, 3, "%02x", b[i]);
        return 0;
}

static bool is_token(const char *s, size_t len) {
        if (len != STATE_TOKEN_LEN)
                return false;
        for (size_t i = 0; i < len; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return true;
}

static int pending_name(const char *token, char *buf, size_t size) {
        if (!is_token(token, strlen(token)))
                return -EINVAL;
        snprintf(buf, size, "pending-%s.json", token);
        return 0;
}

int state_pending_save(const char *dir, const char *token, const StateRecord *previous) {
        char name[64];
        int k;

        k = pending_name(token, name, sizeof(name));
        if (k < 0)
                return k;
        return state_record_save(dir, name, previous);
}

int state_pending_find(const char *dir, char ret_token[STATE_TOKEN_LEN + 1]) {
        DIR *d;
        struct dirent *de;
        int k = -ENOENT;

        d = opendir(dir);
        if (!d)
                return negative_errno();
        while ((de = readdir(d))) {
                size_t l = strlen(de->d_name);
                if (l == strlen("pending-.json") + STATE_TOKEN_LEN &&
                    strncmp(de->d_name, "pending-", 8) == 0 && streq(de->d_name + l - 5, ".json") &&
                    is_token(de->d_name + 8, STATE_TOKEN_LEN)) {
                        memcpy(ret_token, de->d_name + 8, STATE_TOKEN_LEN);
                        ret_token[STATE_TOKEN_LEN] = 0;
                        k = 0;
                        break;
                }
        }
        closedir(d);
        return k;
}

bool state_pending_exists(const char *dir, const char *token) {
        char name[64], path[PATH_MAX];

        if (pending_name(token, name, sizeof(name)) < 0)
                return false;
        if ((size_t) snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
                return false;
        return access(path, F_OK) == 0;
}

int state_pending_claim(const char *dir, const char *token, StateRecord **ret_previous) {
        char name[64], from[PATH_MAX], to[PATH_MAX], claimed[96];
        _cleanup_free_ char *text = NULL;
        size_t size;
        int k;

        k = pending_name(token, name, sizeof(name));
        if (k < 0)
                return k;
        /* Each claimant moves the file to a name of its own: rename() of the same source
         * succeeds for exactly one of them, the others see ENOENT. */
        snprintf(claimed, sizeof(claimed), ".claimed-%s.%ld", token, (long) getpid());
        if ((size_t) snprintf(from, sizeof(from), "%s/%s", dir, name) >= sizeof(from) ||
            (size_t) snprintf(to, sizeof(to), "%s/%s", dir, claimed) >= sizeof(to))
                return -ENAMETOOLONG;
        if (rename(from, to) < 0)
                return negative_errno();
        if (!ret_previous) {
                (void) unlink(to);
                return 0;
        }
        k = state_read_file(to, STATE_MAX_RECORD, &text, &size);
        (void) unlink(to);
        if (k == -EFBIG)
                return -EBADMSG;
        if (k < 0)
                return k;
        return state_record_parse(text, size, ret_previous);
}

static void gc_keep(const StateRecord *r, char (*keep)[65], size_t *n) {
        if (!r)
                return;
        if (r->policy_sha256[0])
                memcpy(keep[(*n)++], r->policy_sha256, 65);
        if (r->endpoints_sha256[0])
                memcpy(keep[(*n)++], r->endpoints_sha256, 65);
}

int state_blob_gc(const char *dir) {
        _cleanup_(state_record_freep) StateRecord *applied = NULL, *pending = NULL;
        char keep[4][65], token[STATE_TOKEN_LEN + 1], name[64], path[PATH_MAX];
        size_t n_keep = 0;
        struct dirent *de;
        DIR *d;
        int k;

        /* Keep whatever we cannot read: deleting a blob that something still names would
         * make a rollback impossible. */
        k = state_record_load(dir, STATE_APPLIED, &applied);
        if (k < 0 && k != -ENOENT)
                return k;
        k = state_pending_find(dir, token);
        if (k >= 0) {
                pending_name(token, name, sizeof(name));
                k = state_record_load(dir, name, &pending);
                if (k < 0)
                        return k;
        } else if (k != -ENOENT)
                return k;
        gc_keep(applied, keep, &n_keep);
        gc_keep(pending, keep, &n_keep);

        if ((size_t) snprintf(path, sizeof(path), "%s/blobs", dir) >= sizeof(path))
                return -ENAMETOOLONG;
        d = opendir(path);
        if (!d)
                return negative_errno();
        while ((de = readdir(d))) {
                bool kept = false;
                if (!is_sha256_hex(de->d_name))
                        continue;
                for (size_t i = 0; i < n_keep; i++)
                        kept = kept || streq(keep[i], de->d_name);
                if (!kept)
                        (void) unlinkat(dirfd(d), de->d_name, 0);
        }
        closedir(d);
        return 0;
}

int state_format_ts(uint64_t usec, char *buf, size_t size) {
        struct timespec now;
        struct tm tm;
        time_t t;

        if (usec == 0) {
                if (clock_gettime(CLOCK_REALTIME, &now) < 0)
                        return negative_errno();
                t = now.tv_sec;
        } else
                t = (time_t) (usec / 1000000u);
        if (!gmtime_r(&t, &tm))
                return -EOVERFLOW;
        if (strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                return -ENOBUFS;
        return 0;
}

int state_history_append(const char *dir, const char *event, const StateRecord *r,
                         const char *detail) {
        _cleanup_(json_decrefp) json_t *o = NULL;
        _cleanup_free_ char *line = NULL;
        _cleanup_close_ int fd = -1;
        char path[PATH_MAX], ts[32];
        int k;

        if (r) {
                k = record_to_json(r, &o);
                if (k < 0)
                        return k;
                json_object_del(o, "ts");
                json_object_del(o, "by");
        } else {
                o = json_object();
                if (!o)
                        return -ENOMEM;
        }
        k = state_format_ts(0, ts, sizeof(ts));
        if (k < 0)
                return k;
        if ((k = json_set_string(o, "ts", ts)) < 0 || (k = json_set_string(o, "event", event)) < 0 ||
            (k = json_set_string(o, "detail", detail)) < 0)
                return k;
        line = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
        if (!line)
                return -ENOMEM;
        if ((size_t) snprintf(path, sizeof(path), "%s/history.jsonl", dir) >= sizeof(path))
                return -ENAMETOOLONG;
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return negative_errno();
        /* One write() per line: O_APPEND keeps concurrent writers' lines whole. */
        size_t len = strlen(line);
        char *p = realloc(line, len + 2);
        if (!p)
                return -ENOMEM;
        line = p;
        line[len] = '\n';
        line[len + 1] = 0;
        return write_all(fd, line, len + 1);
}

int state_pidfile_write(const char *dir, const char *name, pid_t pid) {
        char buf[32];

        snprintf(buf, sizeof(buf), "%ld\n", (long) pid);
        return state_write_file(dir, name, buf, strlen(buf));
}

int state_pidfile_remove(const char *dir, const char *name) {
        char path[PATH_MAX];

        if ((size_t) snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
                return -ENAMETOOLONG;
        if (unlink(path) < 0 && errno != ENOENT)
                return negative_errno();
        return 0;
}
