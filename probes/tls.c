/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The TLS probe of NET-3: one OpenSSL client handshake with the public entry, then every
 * check the control needs, each failing with its own reason: chain verified against the
 * configured trust store, certificate name, expiry (and a warning threshold), protocol
 * version (TLS 1.2 or newer) and cipher strength. Verification is not enforced during the
 * handshake on purpose: a self-signed or expired certificate must still be looked at, so that
 * the report says what is wrong with it instead of "handshake failed".
 */
#include "ceredis.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <stdarg.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <time.h>

#include "probes.h"

#define TLS_TIMEOUT_SEC 10

static _printf_(2, 3) void reason(ControlTls *t, const char *fmt, ...) {
        va_list ap;

        if (t->n_reasons >= ELEMENTSOF(t->reasons))
                return;
        va_start(ap, fmt);
        vsnprintf(t->reasons[t->n_reasons++], sizeof(t->reasons[0]), fmt, ap);
        va_end(ap);
}

/* "1.2.3.4:443" or "[2001:db8::1]:443". */
static int parse_target(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len, char *host,
                        size_t host_size) {
        const char *colon;
        char *end;
        unsigned long port;
        size_t hl;

        if (s[0] == '[') {
                const char *close = strchr(s, ']');
                if (!close || close[1] != ':')
                        return -EINVAL;
                hl = (size_t) (close - s - 1);
                if (hl >= host_size)
                        return -EINVAL;
                memcpy(host, s + 1, hl);
                colon = close + 1;
        } else {
                colon = strrchr(s, ':');
                if (!colon)
                        return -EINVAL;
                hl = (size_t) (colon - s);
                if (hl >= host_size)
                        return -EINVAL;
                memcpy(host, s, hl);
        }
        host[hl] = 0;
        errno = 0;
        port = strtoul(colon + 1, &end, 10);
        if (errno || *end || port == 0 || port > 65535)
                return -EINVAL;
        memset(ret, 0, sizeof(*ret));
        if (inet_pton(AF_INET, host, &((struct sockaddr_in *) ret)->sin_addr) == 1) {
                ((struct sockaddr_in *) ret)->sin_family = AF_INET;
                ((struct sockaddr_in *) ret)->sin_port = htons((uint16_t) port);
                *ret_len = sizeof(struct sockaddr_in);
        } else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *) ret)->sin6_addr) == 1) {
                ((struct sockaddr_in6 *) ret)->sin6_family = AF_INET6;
                ((struct sockaddr_in6 *) ret)->sin6_port = htons((uint16_t) port);
                *ret_len = sizeof(struct sockaddr_in6);
        } else
                return -EINVAL;
        return 0;
}

static bool cipher_weak(const SSL_CIPHER *c) {
        static const char *const weak[] = { "NULL", "RC4", "DES", "3DES", "EXP", "MD5", "anon", "ADH", "AECDH" };
        const char *name = SSL_CIPHER_get_name(c);
        int bits = 0;

        SSL_CIPHER_get_bits(c, &bits);
        if (bits < 128)
                return true;
        for (size_t i = 0; i < ELEMENTSOF(weak); i++)
                if (strstr(name, weak[i]))
                        return true;
        return false;
}

static void check_certificate(SSL *ssl, const char *name, const char *ip, unsigned warn_days, ControlTls *t) {
        X509 *cert = SSL_get1_peer_certificate(ssl);
        const ASN1_TIME *na;
        struct tm tm;
        long v;
        int days = 0, secs = 0;

        if (!cert) {
                reason(t, "the server sent no certificate");
                return;
        }
        v = SSL_get_verify_result(ssl);
        if (v != X509_V_OK)
                reason(t, "certificate chain not trusted: %s", X509_verify_cert_error_string(v));
        if (name ? X509_check_host(cert, name, 0, 0, NULL) != 1 : X509_check_ip_asc(cert, ip, 0) != 1)
                reason(t, "certificate does not match the name %s", name ? name : ip);
        na = X509_get0_notAfter(cert);
        if (na && ASN1_TIME_to_tm(na, &tm) == 1)
                strftime(t->not_after, sizeof(t->not_after), "%Y-%m-%dT%H:%M:%SZ", &tm);
        if (na && ASN1_TIME_diff(&days, &secs, NULL, na) == 1) {
                t->days_left = days;
                if (days < 0 || (days == 0 && secs <= 0))
                        reason(t, "certificate expired on %s", t->not_after);
                else if ((unsigned) days < warn_days)
                        reason(t, "certificate expires in %d days, before the %u-day threshold (on %s)", days,
                               warn_days, t->not_after);
        } else
                reason(t, "cannot read the certificate's expiry date");
        X509_free(cert);
}

int probe_tls(const char *target, const char *name, const char *ca_file, unsigned warn_days, ControlTls *ret,
              char *err, size_t err_size) {
        struct sockaddr_storage sa;
        socklen_t sl;
        struct timeval tv = { .tv_sec = TLS_TIMEOUT_SEC };
        char host[INET6_ADDRSTRLEN + 1];
        _cleanup_close_ int fd = -1;
        SSL_CTX *ctx = NULL;
        SSL *ssl = NULL;
        ControlTls t = {};
        int k = 0, version;

        if (parse_target(target, &sa, &sl, host, sizeof(host)) < 0) {
                snprintf(err, err_size, "bad TLS target %s (expected ADDR:PORT or [ADDR]:PORT)", target);
                return -EINVAL;
        }
        snprintf(t.target, sizeof(t.target), "%s%s%s%s", target, name ? " (name " : "", name ? name : "",
                 name ? ")" : "");
        fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
            connect(fd, (struct sockaddr *) &sa, sl) < 0) {
                k = negative_errno();
                snprintf(err, err_size, "cannot connect to %s: %s", target, strerror(-k));
                return k;
        }
        ctx = SSL_CTX_new(TLS_client_method());
        if (!ctx)
                return -ENOMEM;
        if (ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1
                    : SSL_CTX_set_default_verify_paths(ctx) != 1) {
                snprintf(err, err_size, "cannot load the trust store %s", ca_file ? ca_file : "(system)");
                k = -EINVAL;
                goto finish;
        }
        /* Verify after the handshake, to report every problem with its reason. */
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        ssl = SSL_new(ctx);
        if (!ssl || SSL_set_fd(ssl, fd) != 1 || (name && SSL_set_tlsext_host_name(ssl, name) != 1)) {
                k = -ENOMEM;
                goto finish;
        }
        if (SSL_connect(ssl) != 1) {
                unsigned long e = ERR_get_error();
                reason(&t, "TLS handshake failed: %s", e ? ERR_reason_error_string(e) : "connection closed");
                goto done;
        }
        version = SSL_version(ssl);
        snprintf(t.protocol, sizeof(t.protocol), "%s", SSL_get_version(ssl));
        snprintf(t.cipher, sizeof(t.cipher), "%s", SSL_CIPHER_get_name(SSL_get_current_cipher(ssl)));
        if (version < TLS1_2_VERSION)
                reason(&t, "protocol %s is older than TLS 1.2", t.protocol);
        if (cipher_weak(SSL_get_current_cipher(ssl)))
                reason(&t, "weak cipher %s", t.cipher);
        check_certificate(ssl, name, host, warn_days, &t);
        (void) SSL_shutdown(ssl);
done:
        t.ok = t.n_reasons == 0;
        *ret = t;
finish:
        SSL_free(ssl);
        SSL_CTX_free(ctx);
        ERR_clear_error();
        return k;
}
