/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Reports: the three formats carry every control, its status and escaped evidence; the HTML
 * page loads nothing from outside; an Ed25519-signed report verifies, and changing any single
 * byte of it (body or trailer), truncating it or verifying with another key does not.
 */
#include "ceredis.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include "report.h"

static char *evidence_a[] = { "published on 0.0.0.0:5432 <script>alert(1)</script> | x" };
static char *evidence_b[] = { "attested by DPO" };
static const ControlResult results[] = {
        { .id = "NET-1", .title = "No direct store access", .status = CONTROL_FAIL, .evidence = evidence_a, .n_evidence = 1 },
        { .id = "AI-3", .title = "AI takes no CEFR decision", .status = CONTROL_MANUAL, .evidence = evidence_b, .n_evidence = 1 },
};

static void make_report(Report *r, Event *e) {
        event_init(e, EVENT_VIOLATION);
        EVENT_SET(e->rule, "NET-1");
        EVENT_SET(e->src.service, "internet");
        EVENT_SET(e->dst.service, "postgres");
        EVENT_SET(e->proto, "tcp");
        e->dst.port = 5432;
        *r = (Report) {
                .host = "vps1", .policy_path = "policies/ceredis.yaml",
                .policy_sha256 = "4bab0100084c9889445dc2ea0693d712888afab42adee4a4ecf27145f7945b63",
                .ts_usec = 1795566040000000ull, .window = "24h",
                .controls = results, .n_controls = ELEMENTSOF(results),
                .violations = e, .n_violations = 1,
        };
}

static void test_formats(void **state) {
        Report r;
        Event e;
        char *out;
        size_t len;
        json_t *j;
        (void) state;

        make_report(&r, &e);
        assert_int_equal(report_render(&r, REPORT_JSON, &out, &len), 0);
        assert_int_equal(out[len - 1], '\n');
        j = json_loadb(out, len, 0, NULL);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "host")), "vps1");
        assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(j, "controls"), 0), "status")), "fail");
        assert_int_equal(json_array_size(json_object_get(j, "violations")), 1);
        json_decref(j);
        free(out);

        assert_int_equal(report_render(&r, REPORT_HTML, &out, &len), 0);
        assert_non_null(strstr(out, "<tr class=\"fail\"><td>NET-1</td>"));
        assert_non_null(strstr(out, "&lt;script&gt;"));
        assert_null(strstr(out, "<script"));
        /* Self-contained: no external resource of any kind. */
        assert_null(strstr(out, "src="));
        assert_null(strstr(out, "href="));
        assert_null(strstr(out, "url("));
        assert_null(strstr(out, "@import"));
        assert_non_null(strstr(out, "@media print"));
        free(out);

        assert_int_equal(report_render(&r, REPORT_MARKDOWN, &out, &len), 0);
        assert_non_null(strstr(out, "| NET-1 | **fail** |"));
        assert_non_null(strstr(out, "\\| x"));
        assert_non_null(strstr(out, "## Violations (last 24h): 1"));
        free(out);
}

static void write_key(EVP_PKEY *k, bool private, char *path) {
        int fd = mkstemp(path);
        FILE *f;
        assert_true(fd >= 0);
        f = fdopen(fd, "w");
        assert_non_null(f);
        assert_int_equal(private ? PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) : PEM_write_PUBKEY(f, k), 1);
        fclose(f);
}

static void test_sign_verify(void **state) {
        EVP_PKEY *k1 = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"), *k2 = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        char priv[] = "/tmp/test-report-priv.XXXXXX", pub1[] = "/tmp/test-report-pub1.XXXXXX",
             pub2[] = "/tmp/test-report-pub2.XXXXXX";
        char *body, *s;
        size_t len, slen, altered = 0;
        ReportVerdict v;
        Report r;
        Event e;
        (void) state;

        assert_non_null(k1);
        assert_non_null(k2);
        write_key(k1, true, priv);
        write_key(k1, false, pub1);
        write_key(k2, false, pub2);
        make_report(&r, &e);
        assert_int_equal(report_render(&r, REPORT_HTML, &body, &len), 0);
        assert_int_equal(report_sign(body, len, priv, &s, &slen), 0);
        assert_int_equal(slen, len + REPORT_TRAILER_LEN);
        assert_memory_equal(s, body, len);

        assert_int_equal(report_verify(s, slen, pub1, &v), 0);
        assert_int_equal(v, REPORT_INTACT);
        assert_int_equal(report_verify(s, slen, NULL, &v), 0);
        assert_int_equal(v, REPORT_INTACT);
        assert_int_equal(report_verify(s, slen, pub2, &v), 0);
        assert_int_equal(v, REPORT_OTHER_KEY);
        assert_int_equal(report_verify(body, len, pub1, &v), 0);
        assert_int_equal(v, REPORT_UNSIGNED);
        assert_int_equal(report_verify(s, slen - 1, pub1, &v), 0);
        assert_int_not_equal(v, REPORT_INTACT);
        /* A private key is not a public key, and vice versa. */
        assert_int_equal(report_verify(s, slen, priv, &v), -EINVAL);

        /* Every single byte matters, body and trailer alike. */
        for (size_t i = 0; i < slen; i++) {
                s[i] ^= 0x01;
                assert_int_equal(report_verify(s, slen, pub1, &v), 0);
                if (v != REPORT_INTACT)
                        altered++;
                s[i] ^= 0x01;
        }
        assert_int_equal(altered, slen);

        unlink(priv);
        unlink(pub1);
        unlink(pub2);
        free(s);
        free(body);
        EVP_PKEY_free(k1);
        EVP_PKEY_free(k2);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_formats),
                cmocka_unit_test(test_sign_verify),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
