/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The state directory: records round-trip and hostile records are refused, blobs are
 * content-addressed and checked, a pending confirmation is claimed by exactly one of several
 * concurrent claimants (the confirm/rollback race), garbage collection keeps what is named.
 */
#include "ceredis.h"

#include "state.h"

#include <ftw.h>
#include <jansson.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static int setup_dir(void **state) {
        char *dir = strdup("/tmp/ceredis-test-state.XXXXXX");

        assert_non_null(dir);
        assert_non_null(mkdtemp(dir));
        assert_int_equal(state_dir_ensure(dir), 0);
        *state = dir;
        return 0;
}

static int teardown_dir(void **state) {
        nftw(*state, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        free(*state);
        return 0;
}

static StateRecord *make_record(const char *policy, const char *sha) {
        StateRecord *r = NULL;

        assert_int_equal(state_record_new(STATE_STATUS_APPLIED, &r), 0);
        assert_int_equal(state_record_set(&r->policy_path, policy), 0);
        memcpy(r->policy_sha256, sha, 65);
        assert_int_equal(state_record_set(&r->host, "vps1"), 0);
        assert_int_equal(state_record_set(&r->netns, "ns1"), 0);
        assert_int_equal(state_record_set(&r->by, "test"), 0);
        return r;
}

static const char sha_a[65] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
static const char sha_b[65] = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

static void test_record_roundtrip(void **state) {
        _cleanup_(state_record_freep) StateRecord *r = make_record("/etc/p.yaml", sha_a), *back = NULL;
        _cleanup_free_ char *text = NULL;

        assert_int_equal(state_record_set(&r->endpoints_path, "/etc/e.json"), 0);
        memcpy(r->endpoints_sha256, sha_b, 65);
        r->nflog_group = 77;
        assert_int_equal(state_record_format(r, &text), 0);
        assert_int_equal(state_record_parse(text, strlen(text), &back), 0);
        assert_int_equal(back->status, STATE_STATUS_APPLIED);
        assert_string_equal(back->policy_path, "/etc/p.yaml");
        assert_string_equal(back->policy_sha256, sha_a);
        assert_string_equal(back->endpoints_path, "/etc/e.json");
        assert_string_equal(back->endpoints_sha256, sha_b);
        assert_string_equal(back->host, "vps1");
        assert_string_equal(back->netns, "ns1");
        assert_int_equal(back->nflog_group, 77);
        assert_true(state_record_same_target(r, back));

        back->nflog_group = 78;
        assert_false(state_record_same_target(r, back));
        back->nflog_group = 77;
        assert_int_equal(state_record_set(&back->netns, NULL), 0);
        assert_false(state_record_same_target(r, back));
}

static void test_record_refuses_hostile(void **state) {
        static const char *const bad[] = {
                "",
                "[]",
                "{\"status\":\"applied\"}",                                   /* no policy */
                "{\"status\":\"maybe\"}",                                     /* unknown status */
                "{\"status\":\"none\",\"extra\":1}",                          /* unknown key */
                "{\"status\":\"none\",\"host\":5}",                           /* wrong type */
                "{\"status\":\"none\",\"policy_sha256\":\"../../etc/passwd\"}", /* not a hash */
                "{\"status\":\"none\",\"endpoints_path\":\"/e.json\"}",       /* path w/o blob */
                "{\"status\":\"none\",\"nflog_group\":70000}",
                "{\"status\":\"none\",\"status\":\"applied\"}",               /* duplicate */
                "{\"status\":\"none\",\"host\":\"a\\u0000b\"}",               /* embedded NUL */
        };
        StateRecord *r = NULL;
        _cleanup_free_ char *big = NULL;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                assert_int_equal(state_record_parse(bad[i], strlen(bad[i]), &r), -EBADMSG);
                assert_null(r);
        }
        big = malloc(STATE_MAX_RECORD + 64);
        assert_non_null(big);
        memset(big, ' ', STATE_MAX_RECORD + 63);
        memcpy(big, "{\"status\":\"none\"}", 17);
        assert_int_equal(state_record_parse(big, STATE_MAX_RECORD + 63, &r), -EBADMSG);
        assert_int_equal(state_record_parse("{\"status\":\"disabled\"}", 21, &r), 0);
        assert_int_equal(r->status, STATE_STATUS_DISABLED);
        state_record_free(r);
}

static void test_blobs(void **state) {
        const char *dir = *state;
        char sha[65], path[4096];
        _cleanup_free_ char *back = NULL;
        size_t size;
        FILE *f;

        assert_int_equal(state_blob_store(dir, "abc", 3, sha), 0);
        /* sha256("abc"), FIPS 180-2 test vector */
        assert_string_equal(sha, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_int_equal(state_blob_read(dir, sha, 1024, &back, &size), 0);
        assert_int_equal(size, 3);
        assert_memory_equal(back, "abc", 3);
        free(TAKE_PTR(back));

        /* A changed blob no longer matches its name: refused, not trusted. */
        assert_int_equal(state_blob_path(dir, sha, path, sizeof(path)), 0);
        f = fopen(path, "w");
        assert_non_null(f);
        fputs("abd", f);
        fclose(f);
        assert_int_equal(state_blob_read(dir, sha, 1024, &back, &size), -EBADMSG);
        assert_int_equal(state_blob_path(dir, "../x", path, sizeof(path)), -EINVAL);
        assert_int_equal(state_blob_read(dir, sha_a, 1024, &back, &size), -ENOENT);
}

static void test_read_file_cap(void **state) {
        const char *dir = *state;
        char path[4096];
        _cleanup_free_ char *data = NULL;
        size_t size;

        assert_int_equal(state_write_file(dir, "f", "0123456789", 10), 0);
        snprintf(path, sizeof(path), "%s/f", dir);
        assert_int_equal(state_read_file(path, 9, &data, &size), -EFBIG);
        assert_null(data);
        assert_int_equal(state_read_file(path, 10, &data, &size), 0);
        assert_int_equal(size, 10);
        assert_string_equal(data, "0123456789");
        assert_int_equal(state_read_file(dir, 10, &data, &size), -EBADF); /* a directory */
}

static void test_record_save_load(void **state) {
        const char *dir = *state;
        _cleanup_(state_record_freep) StateRecord *r = make_record("p.yaml", sha_a), *back = NULL;

        assert_int_equal(state_record_load(dir, STATE_APPLIED, &back), -ENOENT);
        assert_int_equal(state_record_save(dir, STATE_APPLIED, r), 0);
        assert_int_equal(state_record_load(dir, STATE_APPLIED, &back), 0);
        assert_true(state_record_same_target(r, back));
        assert_string_equal(back->by, "test");
        state_record_free(TAKE_PTR(back));

        assert_int_equal(state_write_file(dir, STATE_APPLIED, "{not json", 9), 0);
        assert_int_equal(state_record_load(dir, STATE_APPLIED, &back), -EBADMSG);
}

static void test_pending_claim_once(void **state) {
        const char *dir = *state;
        _cleanup_(state_record_freep) StateRecord *prev = make_record("old.yaml", sha_b), *back = NULL;
        char token[STATE_TOKEN_LEN + 1], found[STATE_TOKEN_LEN + 1];

        assert_int_equal(state_pending_find(dir, found), -ENOENT);
        assert_int_equal(state_pending_token_new(token), 0);
        assert_int_equal(strlen(token), STATE_TOKEN_LEN);
        assert_int_equal(state_pending_save(dir, token, prev), 0);
        assert_true(state_pending_exists(dir, token));
        assert_int_equal(state_pending_find(dir, found), 0);
        assert_string_equal(found, token);

        assert_int_equal(state_pending_claim(dir, token, &back), 0);
        assert_string_equal(back->policy_path, "old.yaml");
        assert_false(state_pending_exists(dir, token));
        state_record_free(TAKE_PTR(back));
        assert_int_equal(state_pending_claim(dir, token, &back), -ENOENT);
        assert_null(back);
        assert_int_equal(state_pending_find(dir, found), -ENOENT);
        assert_int_equal(state_pending_claim(dir, "../../etc/passwd", &back), -EINVAL);
}

/* The confirm/rollback race: many processes claim the same pending file at once; exactly one
 * wins, whatever the interleaving. */
static void test_pending_race(void **state) {
        const char *dir = *state;
        _cleanup_(state_record_freep) StateRecord *prev = NULL;
        enum { N = 16, ROUNDS = 20 };

        assert_int_equal(state_record_new(STATE_STATUS_NONE, &prev), 0);
        for (int round = 0; round < ROUNDS; round++) {
                char token[STATE_TOKEN_LEN + 1];
                int pipefd[2], winners = 0;
                pid_t pids[N];

                assert_int_equal(state_pending_token_new(token), 0);
                assert_int_equal(state_pending_save(dir, token, prev), 0);
                assert_int_equal(pipe(pipefd), 0);
                for (int i = 0; i < N; i++) {
                        pids[i] = fork();
                        assert_true(pids[i] >= 0);
                        if (pids[i] == 0) {
                                StateRecord *r = NULL;
                                char c;
                                close(pipefd[1]);
                                (void) read(pipefd[0], &c, 1); /* start together */
                                _exit(state_pending_claim(dir, token, &r) == 0 ? 10 : 20);
                        }
                }
                close(pipefd[0]);
                close(pipefd[1]); /* releases every child at once */
                for (int i = 0; i < N; i++) {
                        int status;
                        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
                        assert_true(WIFEXITED(status));
                        assert_true(WEXITSTATUS(status) == 10 || WEXITSTATUS(status) == 20);
                        winners += WEXITSTATUS(status) == 10;
                }
                assert_int_equal(winners, 1);
                assert_false(state_pending_exists(dir, token));
        }
}

static void test_blob_gc(void **state) {
        const char *dir = *state;
        _cleanup_(state_record_freep) StateRecord *applied = NULL, *pending = NULL;
        char s1[65], s2[65], s3[65], token[STATE_TOKEN_LEN + 1], path[4096];

        assert_int_equal(state_blob_store(dir, "one", 3, s1), 0);
        assert_int_equal(state_blob_store(dir, "two", 3, s2), 0);
        assert_int_equal(state_blob_store(dir, "three", 5, s3), 0);
        applied = make_record("one.yaml", s1);
        pending = make_record("two.yaml", s2);
        assert_int_equal(state_record_save(dir, STATE_APPLIED, applied), 0);
        assert_int_equal(state_pending_token_new(token), 0);
        assert_int_equal(state_pending_save(dir, token, pending), 0);

        assert_int_equal(state_blob_gc(dir), 0);
        assert_int_equal(state_blob_path(dir, s1, path, sizeof(path)), 0);
        assert_int_equal(access(path, F_OK), 0);
        assert_int_equal(state_blob_path(dir, s2, path, sizeof(path)), 0);
        assert_int_equal(access(path, F_OK), 0);
        assert_int_equal(state_blob_path(dir, s3, path, sizeof(path)), 0);
        assert_int_equal(access(path, F_OK), -1);

        /* A damaged applied.json: keep everything rather than guess. */
        assert_int_equal(state_write_file(dir, STATE_APPLIED, "garbage", 7), 0);
        assert_int_equal(state_blob_store(dir, "three", 5, s3), 0);
        assert_true(state_blob_gc(dir) < 0);
        assert_int_equal(state_blob_path(dir, s3, path, sizeof(path)), 0);
        assert_int_equal(access(path, F_OK), 0);
}

static void test_history(void **state) {
        const char *dir = *state;
        _cleanup_(state_record_freep) StateRecord *r = make_record("p.yaml", sha_a);
        _cleanup_free_ char *text = NULL;
        char path[4096], *line, *save = NULL;
        size_t size;
        int n = 0;

        assert_int_equal(state_history_append(dir, "apply", r, NULL), 0);
        assert_int_equal(state_history_append(dir, "rollback", NULL, "not confirmed"), 0);
        snprintf(path, sizeof(path), "%s/history.jsonl", dir);
        assert_int_equal(state_read_file(path, 65536, &text, &size), 0);
        for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save), n++) {
                json_error_t e;
                json_t *o = json_loads(line, 0, &e);
                assert_non_null(o);
                assert_string_equal(json_string_value(json_object_get(o, "event")),
                                    n == 0 ? "apply" : "rollback");
                assert_non_null(json_string_value(json_object_get(o, "ts")));
                if (n == 0)
                        assert_string_equal(json_string_value(json_object_get(o, "policy_path")), "p.yaml");
                else
                        assert_string_equal(json_string_value(json_object_get(o, "detail")), "not confirmed");
                json_decref(o);
        }
        assert_int_equal(n, 2);
}

static void test_format_ts(void **state) {
        char buf[32];

        assert_int_equal(state_format_ts(1795564799u * 1000000ull, buf, sizeof(buf)), 0);
        assert_string_equal(buf, "2026-11-24T23:59:59Z");
        assert_int_equal(state_format_ts(0, buf, sizeof(buf)), 0);
        assert_int_equal(strlen(buf), 20);
        assert_int_equal(buf[19], 'Z');
        assert_int_equal(state_format_ts(0, buf, 8), -ENOBUFS);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_record_roundtrip),
                cmocka_unit_test(test_record_refuses_hostile),
                cmocka_unit_test(test_format_ts),
                cmocka_unit_test_setup_teardown(test_blobs, setup_dir, teardown_dir),
                cmocka_unit_test_setup_teardown(test_read_file_cap, setup_dir, teardown_dir),
                cmocka_unit_test_setup_teardown(test_record_save_load, setup_dir, teardown_dir),
                cmocka_unit_test_setup_teardown(test_pending_claim_once, setup_dir, teardown_dir),
                cmocka_unit_test_setup_teardown(test_pending_race, setup_dir, teardown_dir),
                cmocka_unit_test_setup_teardown(test_blob_gc, setup_dir, teardown_dir),
                cmocka_unit_test_setup_teardown(test_history, setup_dir, teardown_dir),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
