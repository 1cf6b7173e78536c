/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz the HTTP/1.x request decoder with hostile request heads. Whatever the input: no crash,
 * no read outside the buffer, every copied field NUL-terminated within its cap, and the access
 * class follows the method (GET/HEAD/OPTIONS read, everything else write).
 */
#include "ceredis.h"

#include "decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        DecodeHttpRequest req;
        int r = decode_http_request(data, size, &req);
        if (r > 0 || (r < 0 && r != -EAGAIN && r != -EBADMSG && r != -EPROTONOSUPPORT))
                abort();
        if (r < 0)
                return 0;

        if (strnlen(req.path, sizeof(req.path)) == sizeof(req.path) ||
            strnlen(req.host, sizeof(req.host)) == sizeof(req.host) ||
            strnlen(req.method_text, sizeof(req.method_text)) == sizeof(req.method_text))
                abort();
        if (!decode_http_method_to_string(req.method) || req.version_major != 1)
                abort();
        bool read = req.method == DECODE_HTTP_GET || req.method == DECODE_HTTP_HEAD ||
                    req.method == DECODE_HTTP_OPTIONS;
        if (req.access != (read ? DECODE_CLASS_READ : DECODE_CLASS_WRITE))
                abort();
        /* The same head one byte shorter is still a request, or a request still arriving. */
        if (size > 0) {
                DecodeHttpRequest shorter;
                r = decode_http_request(data, size - 1, &shorter);
                if (r == -EBADMSG && size <= DECODE_HTTP_MAX_HEAD && !memchr(data, 0, size))
                        abort();
        }
        return 0;
}
