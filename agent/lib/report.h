/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Compliance reports: the controls engine's verdicts, the host, the policy hash, the time and
 * the violations of the window, as JSON (the `ceredisctl audit --json` object), Markdown or a
 * self-contained printable HTML page; and their Ed25519 signature.
 *
 * Signed file format (version 1): the report's exact bytes BODY (which end with "\n"),
 * followed by one trailer line of fixed length:
 *
 *   <!-- ceredis-signature v1 ed25519 key=K sig=S -->\n
 *
 * K is the signer's raw 32-byte Ed25519 public key and S the 64-byte signature, both standard
 * base64 with padding (44 and 88 characters), and S = Ed25519(BODY) (pure Ed25519, no
 * prehash). Verification requires the file to end with exactly one such trailer, strips it,
 * and checks S over the remaining bytes; so any changed, added or removed byte fails. The
 * trailer is an HTML comment, invisible in HTML and Markdown; a signed JSON report is the JSON
 * document plus that last line (`head -n -1` gives the JSON back). The embedded key only
 * proves consistency: authenticity needs the expected public key (`--pubkey`).
 */
#pragma once

#include "ceredis.h"

#include <jansson.h>

#include "controls.h"
#include "event.h"

#define REPORT_MAX_FILE (64u * 1024u * 1024u)
#define REPORT_TRAILER_PREFIX "<!-- ceredis-signature v1 ed25519 key="
#define REPORT_TRAILER_LEN (sizeof(REPORT_TRAILER_PREFIX) - 1 + 44 + sizeof(" sig=") - 1 + 88 + sizeof(" -->\n") - 1)

typedef enum ReportFormat {
        REPORT_JSON,
        REPORT_MARKDOWN,
        REPORT_HTML,
} ReportFormat;

typedef struct Report {
        const char *host;
        const char *policy_path;
        const char *policy_sha256;
        uint64_t ts_usec;      /* when the audit ran */
        const char *window;    /* "24h": the violations' window */
        const ControlResult *controls;
        size_t n_controls;
        const Event *violations;
        size_t n_violations;
} Report;

int report_format_from_string(const char *s, ReportFormat *ret);

/* The audit object: {host, policy_sha256, generated, window, controls: [{id, title, status,
 * evidence}], violations: [events]}. */
int report_to_json(const Report *r, json_t **ret);
/* The whole document in `f`, ending with a newline. */
int report_render(const Report *r, ReportFormat f, char **ret, size_t *ret_len);

/* Append the trailer: *ret is body + trailer. `key_pem` is an Ed25519 private key (PEM).
 * -EINVAL if the key is not Ed25519 or the body does not end with "\n". */
int report_sign(const void *body, size_t len, const char *key_pem_path, char **ret, size_t *ret_len);

typedef enum ReportVerdict {
        REPORT_INTACT,
        REPORT_ALTERED,     /* signature does not match the bytes */
        REPORT_UNSIGNED,    /* no well-formed trailer at the end */
        REPORT_OTHER_KEY,   /* intact, but signed by a key other than the expected one */
} ReportVerdict;

/* Pure apart from reading `pubkey_pem_path` (may be NULL: only the embedded key is used).
 * Returns 0 with *ret_verdict set, or a negative errno (unreadable or non-Ed25519 key). */
int report_verify(const void *data, size_t len, const char *pubkey_pem_path, ReportVerdict *ret_verdict);
const char *report_verdict_to_string(ReportVerdict v);
