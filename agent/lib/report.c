/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Compliance reports in JSON, Markdown and HTML, and their Ed25519 signature (format in
 * report.h). The HTML page is self-contained: inline CSS (with print rules), no script, no
 * external resource, so it renders the same offline, printed or archived. Every string that
 * comes from outside (evidence, container names, event fields) is escaped for its format.
 */
#include "ceredis.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "report.h"

int report_format_from_string(const char *s, ReportFormat *ret) {
        if (streq(s, "json"))
                *ret = REPORT_JSON;
        else if (streq(s, "md") || streq(s, "markdown"))
                *ret = REPORT_MARKDOWN;
        else if (streq(s, "html"))
                *ret = REPORT_HTML;
        else
                return -EINVAL;
        return 0;
}

int report_to_json(const Report *r, json_t **ret) {
        json_t *o = NULL, *controls = json_array(), *violations = json_array();
        char ts[EVENT_TS_MAX] = "";
        int k = -ENOMEM;

        if (!controls || !violations)
                goto fail;
        for (size_t i = 0; i < r->n_controls; i++) {
                const ControlResult *c = &r->controls[i];
                json_t *ev = json_array(), *jc;
                if (!ev)
                        goto fail;
                for (size_t j = 0; j < c->n_evidence; j++)
                        if (json_array_append_new(ev, json_string(c->evidence[j])) < 0) {
                                json_decref(ev);
                                goto fail;
                        }
                jc = json_pack("{s:s, s:s, s:s, s:o}", "id", c->id, "title", c->title, "status",
                               control_status_to_string(c->status), "evidence", ev);
                if (!jc || json_array_append_new(controls, jc) < 0)
                        goto fail;
        }
        for (size_t i = 0; i < r->n_violations; i++) {
                json_t *e;
                k = event_to_json(&r->violations[i], &e);
                if (k < 0)
                        goto fail;
                k = -ENOMEM;
                if (json_array_append_new(violations, e) < 0)
                        goto fail;
        }
        (void) event_ts_format(r->ts_usec, ts);
        o = json_pack("{s:s?, s:s?, s:s?, s:s, s:s?, s:O, s:O}", "host", r->host, "policy", r->policy_path,
                      "policy_sha256", r->policy_sha256, "generated", ts, "window", r->window, "controls",
                      controls, "violations", violations);
        if (!o)
                goto fail;
        json_decref(controls);
        json_decref(violations);
        *ret = o;
        return 0;
fail:
        json_decref(controls);
        json_decref(violations);
        return k;
}

static void md_escape(FILE *f, const char *s) {
        for (; *s; s++) {
                if (strchr("\\`*_{}[]<>()#+-!|", *s))
                        fputc('\\', f);
                fputc(*s == '\n' ? ' ' : *s, f);
        }
}

static void html_escape(FILE *f, const char *s) {
        for (; *s; s++)
                switch (*s) {
                case '<': fputs("&lt;", f); break;
                case '>': fputs("&gt;", f); break;
                case '&': fputs("&amp;", f); break;
                case '"': fputs("&quot;", f); break;
                case '\'': fputs("&#39;", f); break;
                default: fputc(*s, f);
                }
}

static void counts(const Report *r, size_t n[_CONTROL_STATUS_MAX]) {
        memset(n, 0, sizeof(size_t) * _CONTROL_STATUS_MAX);
        for (size_t i = 0; i < r->n_controls; i++)
                n[r->controls[i].status]++;
}

static void event_line(const Event *e, char *buf, size_t size) {
        char ts[EVENT_TS_MAX];

        (void) event_ts_format(e->ts_usec, ts);
        snprintf(buf, size, "%s %s %s %s %s %s:%u -> %s %s:%u %s x%llu", ts, e->rule,
                 event_severity_to_string(e->severity), event_action_to_string(e->action), e->src.service,
                 e->src.ip, e->src.port, e->dst.service, e->dst.ip, e->dst.port, e->proto,
                 (unsigned long long) (e->count ? e->count : 1));
}

static void render_md(const Report *r, FILE *f, const char *ts) {
        size_t n[_CONTROL_STATUS_MAX];
        char line[2048];

        counts(r, n);
        fputs("# CEREDIS compliance report\n\n", f);
        fputs("- Host: ", f), md_escape(f, r->host ? r->host : "?"), fputc('\n', f);
        fputs("- Policy: ", f), md_escape(f, r->policy_path ? r->policy_path : "?");
        fprintf(f, " (sha256 `%s`)\n- Generated: %s\n", r->policy_sha256 ? r->policy_sha256 : "?", ts);
        fprintf(f, "- Result: %zu pass, %zu fail, %zu manual, %zu error\n\n", n[CONTROL_PASS], n[CONTROL_FAIL],
                n[CONTROL_MANUAL], n[CONTROL_ERROR]);
        fputs("| Control | Status | Title |\n|---|---|---|\n", f);
        for (size_t i = 0; i < r->n_controls; i++) {
                fprintf(f, "| %s | **%s** | ", r->controls[i].id, control_status_to_string(r->controls[i].status));
                md_escape(f, r->controls[i].title);
                fputs(" |\n", f);
        }
        fputs("\n## Evidence\n", f);
        for (size_t i = 0; i < r->n_controls; i++) {
                fprintf(f, "\n### %s: %s\n\n", r->controls[i].id, control_status_to_string(r->controls[i].status));
                for (size_t j = 0; j < r->controls[i].n_evidence; j++) {
                        fputs("- ", f);
                        md_escape(f, r->controls[i].evidence[j]);
                        fputc('\n', f);
                }
        }
        fprintf(f, "\n## Violations (last %s): %zu\n\n", r->window ? r->window : "window", r->n_violations);
        for (size_t i = 0; i < r->n_violations; i++) {
                event_line(&r->violations[i], line, sizeof(line));
                fputs("- ", f), md_escape(f, line), fputc('\n', f);
        }
}

static const char html_css[] =
        "body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#111;background:#fff}"
        "h1{font-size:1.6em;margin:0 0 .3em}table{border-collapse:collapse;width:100%;margin:1em 0}"
        "th,td{border:1px solid #999;padding:.35em .6em;text-align:left;vertical-align:top}"
        "td:first-child,td.st{white-space:nowrap}th{background:#e8e8e8}.pass{background:#c8f0c8}.fail{background:#f6c0c0}"
        ".manual{background:#d8e4fa}.error{background:#fbe6b0}.st{font-weight:bold;text-transform:uppercase}"
        "ul{margin:.2em 0;padding-left:1.2em}code{font-size:.9em}"
        "@media print{body{margin:1cm;font-size:11pt}tr{page-break-inside:avoid}"
        "*{-webkit-print-color-adjust:exact;print-color-adjust:exact}}";

static void render_html(const Report *r, FILE *f, const char *ts) {
        size_t n[_CONTROL_STATUS_MAX];
        char line[2048];

        counts(r, n);
        fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                   "<title>CEREDIS compliance report</title><style>%s</style></head><body>\n", html_css);
        fputs("<h1>CEREDIS compliance report</h1>\n<p>Host <b>", f);
        html_escape(f, r->host ? r->host : "?");
        fputs("</b>, policy <code>", f);
        html_escape(f, r->policy_path ? r->policy_path : "?");
        fprintf(f, "</code> (sha256 <code>%s</code>), generated %s.</p>\n", r->policy_sha256 ? r->policy_sha256 : "?", ts);
        fprintf(f, "<p>%zu pass, %zu fail, %zu manual, %zu error.</p>\n", n[CONTROL_PASS], n[CONTROL_FAIL],
                n[CONTROL_MANUAL], n[CONTROL_ERROR]);
        fputs("<table><tr><th>Control</th><th>Status</th><th>Title</th><th>Evidence</th></tr>\n", f);
        for (size_t i = 0; i < r->n_controls; i++) {
                const ControlResult *c = &r->controls[i];
                const char *st = control_status_to_string(c->status);
                fprintf(f, "<tr class=\"%s\"><td>%s</td><td class=\"st\">%s</td><td>", st, c->id, st);
                html_escape(f, c->title);
                fputs("</td><td><ul>", f);
                for (size_t j = 0; j < c->n_evidence; j++) {
                        fputs("<li>", f);
                        html_escape(f, c->evidence[j]);
                        fputs("</li>", f);
                }
                fputs("</ul></td></tr>\n", f);
        }
        fprintf(f, "</table>\n<h2>Violations (last %s): %zu</h2>\n<ul>\n", r->window ? r->window : "window",
                r->n_violations);
        for (size_t i = 0; i < r->n_violations; i++) {
                event_line(&r->violations[i], line, sizeof(line));
                fputs("<li><code>", f);
                html_escape(f, line);
                fputs("</code></li>\n", f);
        }
        fputs("</ul>\n</body></html>\n", f);
}

int report_render(const Report *r, ReportFormat fmt, char **ret, size_t *ret_len) {
        char *buf = NULL, ts[EVENT_TS_MAX] = "";
        size_t len = 0;
        FILE *f;
        int k = 0;

        (void) event_ts_format(r->ts_usec, ts);
        if (fmt == REPORT_JSON) {
                json_t *o;
                k = report_to_json(r, &o);
                if (k < 0)
                        return k;
                buf = json_dumps(o, JSON_INDENT(2));
                json_decref(o);
                if (!buf)
                        return -ENOMEM;
                len = strlen(buf);
                char *p = realloc(buf, len + 2);
                if (!p) {
                        free(buf);
                        return -ENOMEM;
                }
                p[len++] = '\n';
                p[len] = 0;
                *ret = p;
                *ret_len = len;
                return 0;
        }
        f = open_memstream(&buf, &len);
        if (!f)
                return -ENOMEM;
        if (fmt == REPORT_MARKDOWN)
                render_md(r, f, ts);
        else
                render_html(r, f, ts);
        if (ferror(f))
                k = -ENOMEM;
        if (fclose(f) != 0 && k == 0)
                k = -ENOMEM;
        if (k < 0) {
                free(buf);
                return k;
        }
        *ret = buf;
        *ret_len = len;
        return 0;
}

static int load_key(const char *path, bool private, EVP_PKEY **ret) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        EVP_PKEY *k;

        if (!f)
                return negative_errno();
        k = private ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : PEM_read_PUBKEY(f, NULL, NULL, NULL);
        if (!k)
                return -EINVAL;
        if (EVP_PKEY_get_base_id(k) != EVP_PKEY_ED25519) {
                EVP_PKEY_free(k);
                return -EINVAL;
        }
        *ret = k;
        return 0;
}

int report_sign(const void *body, size_t len, const char *key_pem_path, char **ret, size_t *ret_len) {
        EVP_PKEY *key = NULL;
        EVP_MD_CTX *md = NULL;
        uint8_t sig[64], pub[32];
        size_t sig_len = sizeof(sig), pub_len = sizeof(pub);
        char sig_b64[89], pub_b64[45], *out = NULL;
        int k;

        if (len == 0 || ((const char *) body)[len - 1] != '\n' || len > REPORT_MAX_FILE)
                return -EINVAL;
        k = load_key(key_pem_path, true, &key);
        if (k < 0)
                return k;
        k = -EIO;
        md = EVP_MD_CTX_new();
        if (!md || EVP_DigestSignInit(md, NULL, NULL, NULL, key) != 1 ||
            EVP_DigestSign(md, sig, &sig_len, body, len) != 1 || sig_len != 64 ||
            EVP_PKEY_get_raw_public_key(key, pub, &pub_len) != 1 || pub_len != 32)
                goto finish;
        EVP_EncodeBlock((unsigned char *) sig_b64, sig, 64);
        EVP_EncodeBlock((unsigned char *) pub_b64, pub, 32);
        k = -ENOMEM;
        out = malloc(len + REPORT_TRAILER_LEN + 1);
        if (!out)
                goto finish;
        memcpy(out, body, len);
        snprintf(out + len, REPORT_TRAILER_LEN + 1, REPORT_TRAILER_PREFIX "%s sig=%s -->\n", pub_b64, sig_b64);
        *ret = out;
        *ret_len = len + REPORT_TRAILER_LEN;
        k = 0;
finish:
        EVP_MD_CTX_free(md);
        EVP_PKEY_free(key);
        return k;
}

/* Strict standard base64 of exactly `n` bytes in `b64_len` characters. */
static bool b64_decode(const char *s, size_t b64_len, uint8_t *ret, size_t n) {
        uint8_t tmp[96];

        if (b64_len > 4 * sizeof(tmp) / 3 || b64_len % 4 != 0)
                return false;
        for (size_t i = 0; i < b64_len; i++)
                if (!(s[i] >= 'A' && s[i] <= 'Z') && !(s[i] >= 'a' && s[i] <= 'z') && !(s[i] >= '0' && s[i] <= '9') &&
                    s[i] != '+' && s[i] != '/' && s[i] != '=')
                        return false;
        if (EVP_DecodeBlock(tmp, (const unsigned char *) s, (int) b64_len) < 0)
                return false;
        memcpy(ret, tmp, n);
        /* Re-encoding must give the same text: one spelling per value, so no byte is free. */
        char again[129];
        EVP_EncodeBlock((unsigned char *) again, ret, (int) n);
        return strlen(again) == b64_len && memcmp(again, s, b64_len) == 0;
}

int report_verify(const void *data, size_t len, const char *pubkey_pem_path, ReportVerdict *ret_verdict) {
        const char *d = data, *t;
        EVP_PKEY *embedded = NULL, *expected = NULL;
        EVP_MD_CTX *md = NULL;
        uint8_t pub[32], sig[64], exp_pub[32];
        size_t exp_len = sizeof(exp_pub), body_len;
        ReportVerdict v = REPORT_UNSIGNED;
        int k = 0;

        if (pubkey_pem_path) {
                k = load_key(pubkey_pem_path, false, &expected);
                if (k < 0)
                        return k;
                if (EVP_PKEY_get_raw_public_key(expected, exp_pub, &exp_len) != 1 || exp_len != 32) {
                        EVP_PKEY_free(expected);
                        return -EINVAL;
                }
                EVP_PKEY_free(expected);
        }
        if (len < REPORT_TRAILER_LEN + 1 || len > REPORT_MAX_FILE)
                goto done;
        body_len = len - REPORT_TRAILER_LEN;
        t = d + body_len;
        if (d[body_len - 1] != '\n' || memcmp(t, REPORT_TRAILER_PREFIX, sizeof(REPORT_TRAILER_PREFIX) - 1) != 0)
                goto done;
        t += sizeof(REPORT_TRAILER_PREFIX) - 1;
        if (memcmp(t + 44, " sig=", 5) != 0 || memcmp(t + 44 + 5 + 88, " -->\n", 5) != 0 ||
            !b64_decode(t, 44, pub, 32) || !b64_decode(t + 49, 88, sig, 64))
                goto done;
        v = REPORT_ALTERED;
        embedded = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
        md = EVP_MD_CTX_new();
        if (!embedded || !md) {
                k = -ENOMEM;
                goto done;
        }
        if (EVP_DigestVerifyInit(md, NULL, NULL, NULL, embedded) == 1 &&
            EVP_DigestVerify(md, sig, 64, data, body_len) == 1)
                v = pubkey_pem_path && CRYPTO_memcmp(pub, exp_pub, 32) != 0 ? REPORT_OTHER_KEY : REPORT_INTACT;
done:
        EVP_MD_CTX_free(md);
        EVP_PKEY_free(embedded);
        if (k < 0)
                return k;
        *ret_verdict = v;
        return 0;
}

const char *report_verdict_to_string(ReportVerdict v) {
        switch (v) {
        case REPORT_INTACT: return "intact";
        case REPORT_ALTERED: return "altered";
        case REPORT_UNSIGNED: return "unsigned or trailer damaged";
        case REPORT_OTHER_KEY: return "signed by another key";
        }
        return NULL;
}
