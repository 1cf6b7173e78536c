/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * HTTP/1.x request decoding for the watcher: from the first bytes a client sends on a
 * connection, the method, the request target, the version and the Host header, and whether the
 * request reads or writes (GET/HEAD/OPTIONS read, every other method writes, SPEC section 5).
 * Only the head of the request is looked at, at most DECODE_HTTP_MAX_HEAD bytes; copies are cut
 * at their caps. Anything that is not an HTTP/1.x request line is refused, so TLS or another
 * protocol on an "http" port is never mistaken for a request.
 */
#include "ceredis.h"

#include "decode.h"

static const char *const http_method_table[_DECODE_HTTP_METHOD_MAX] = {
        [DECODE_HTTP_GET] = "GET",         [DECODE_HTTP_HEAD] = "HEAD",
        [DECODE_HTTP_OPTIONS] = "OPTIONS", [DECODE_HTTP_POST] = "POST",
        [DECODE_HTTP_PUT] = "PUT",         [DECODE_HTTP_PATCH] = "PATCH",
        [DECODE_HTTP_DELETE] = "DELETE",   [DECODE_HTTP_CONNECT] = "CONNECT",
        [DECODE_HTTP_TRACE] = "TRACE",     [DECODE_HTTP_OTHER] = "OTHER",
};

const char *decode_http_method_to_string(DecodeHttpMethod m) {
        if ((unsigned) m >= _DECODE_HTTP_METHOD_MAX)
                return NULL;
        return http_method_table[m];
}

/* RFC 9110 tchar: what a method token or a header field name may hold. */
static bool is_tchar(uint8_t c) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
                return true;
        return c != 0 && strchr("!#$%&'*+-.^_`|~", c);
}

static uint8_t ascii_lower(uint8_t c) {
        return c >= 'A' && c <= 'Z' ? (uint8_t) (c - 'A' + 'a') : c;
}

/* The end of the line starting at `p` (the index of its '\n'), or `end` if none within. A bare
 * LF ends a line too, as servers accept it. */
static size_t line_end(const uint8_t *p, size_t start, size_t end) {
        const uint8_t *nl = memchr(p + start, '\n', end - start);
        return nl ? (size_t) (nl - p) : end;
}

/* Parse "METHOD SP target SP HTTP/x.y" in p[0..n) (line ending excluded). */
static int parse_request_line(const uint8_t *p, size_t n, DecodeHttpRequest *req) {
        size_t i = 0;

        while (i < n && is_tchar(p[i]))
                i++;
        if (i == 0 || i > DECODE_HTTP_MAX_METHOD || i >= n || p[i] != ' ')
                return -EBADMSG;
        memcpy(req->method_text, p, i);
        req->method_text[i] = 0;
        req->method = DECODE_HTTP_OTHER;
        for (DecodeHttpMethod m = 0; m < DECODE_HTTP_OTHER; m++)
                if (streq(req->method_text, http_method_table[m])) {
                        req->method = m;
                        break;
                }
        i++;

        size_t t = i;
        while (i < n && p[i] > ' ' && p[i] != 0x7f)
                i++;
        if (i == t || i >= n || p[i] != ' ')
                return -EBADMSG;
        size_t tlen = i - t;
        if (tlen > DECODE_HTTP_MAX_PATH) {
                tlen = DECODE_HTTP_MAX_PATH;
                req->path_truncated = true;
        }
        memcpy(req->path, p + t, tlen);
        req->path[tlen] = 0;
        i++;

        if (n - i != 8 || memcmp(p + i, "HTTP/", 5) != 0 || p[i + 5] < '0' || p[i + 5] > '9' ||
            p[i + 6] != '.' || p[i + 7] < '0' || p[i + 7] > '9')
                return -EBADMSG;
        req->version_major = (uint8_t) (p[i + 5] - '0');
        req->version_minor = (uint8_t) (p[i + 7] - '0');
        if (req->version_major == 2)
                return -EPROTONOSUPPORT; /* "PRI * HTTP/2.0": h2c prior knowledge */
        if (req->version_major != 1)
                return -EBADMSG;
        return 0;
}

/* Could p[0..n) still become a request line once more bytes arrive? */
static bool is_request_line_prefix(const uint8_t *p, size_t n) {
        size_t i = 0;

        while (i < n && is_tchar(p[i]))
                i++;
        if (i == n)
                return i <= DECODE_HTTP_MAX_METHOD;
        if (i == 0 || i > DECODE_HTTP_MAX_METHOD || p[i] != ' ')
                return false;
        for (i++; i < n; i++)
                if (p[i] <= ' ' || p[i] == 0x7f)
                        break;
        if (i == n)
                return true;
        if (p[i] != ' ')
                return false;
        static const char version[] = "HTTP/d.d\r";
        for (size_t k = 0; ++i < n; k++) {
                if (k >= sizeof(version) - 1)
                        return false;
                bool ok = version[k] == 'd' ? p[i] >= '0' && p[i] <= '9' : p[i] == version[k];
                if (!ok)
                        return false;
        }
        return true;
}

int decode_http_request(const uint8_t *data, size_t len, DecodeHttpRequest *ret) {
        DecodeHttpRequest req = {};
        int r;

        if (!data && len > 0)
                return -EINVAL;
        size_t end = len < DECODE_HTTP_MAX_HEAD ? len : DECODE_HTTP_MAX_HEAD;

        size_t eol = line_end(data, 0, end);
        if (eol == end) {
                if (end == DECODE_HTTP_MAX_HEAD || !is_request_line_prefix(data, end))
                        return -EBADMSG;
                return -EAGAIN;
        }
        size_t n = eol > 0 && data[eol - 1] == '\r' ? eol - 1 : eol;
        r = parse_request_line(data, n, &req);
        if (r < 0)
                return r;

        for (size_t start = eol + 1; start < end;) {
                eol = line_end(data, start, end);
                if (eol == end)
                        break; /* a header line still arriving */
                const uint8_t *h = data + start;
                size_t hn = eol - start;
                if (hn > 0 && h[hn - 1] == '\r')
                        hn--;
                if (hn == 0) {
                        req.headers_complete = true;
                        break;
                }
                if (hn > 5 && ascii_lower(h[0]) == 'h' && ascii_lower(h[1]) == 'o' &&
                    ascii_lower(h[2]) == 's' && ascii_lower(h[3]) == 't' && h[4] == ':' &&
                    !req.host[0] && !req.host_truncated) {
                        size_t a = 5, b = hn;
                        while (a < b && (h[a] == ' ' || h[a] == '\t'))
                                a++;
                        while (b > a && (h[b - 1] == ' ' || h[b - 1] == '\t'))
                                b--;
                        for (size_t k = a; k < b; k++)
                                if (h[k] < ' ' || h[k] == 0x7f)
                                        return -EBADMSG;
                        size_t vlen = b - a;
                        if (vlen > DECODE_HTTP_MAX_HOST) {
                                vlen = DECODE_HTTP_MAX_HOST;
                                req.host_truncated = true;
                        }
                        memcpy(req.host, h + a, vlen);
                        req.host[vlen] = 0;
                }
                start = eol + 1;
        }

        req.access = req.method == DECODE_HTTP_GET || req.method == DECODE_HTTP_HEAD ||
                                     req.method == DECODE_HTTP_OPTIONS
                             ? DECODE_CLASS_READ
                             : DECODE_CLASS_WRITE;
        *ret = req;
        return 0;
}
