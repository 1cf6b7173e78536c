/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz the PostgreSQL frontend decoder and the SQL classifier. The input is read as a client
 * byte stream, message after message, as the watcher does; the same bytes are also classified
 * as SQL text, whole and as a cut prefix. Whatever the input: no crash, no read outside the
 * buffer, no message claiming more bytes than given, every string NUL-terminated within its
 * cap, and a class within range.
 */
#include "ceredis.h"

#include "decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_summary(const DecodeSqlSummary *sum) {
        if ((unsigned) sum->class >= _DECODE_CLASS_MAX || !decode_class_to_string(sum->class))
                abort();
        if (strnlen(sum->keyword, sizeof(sum->keyword)) == sizeof(sum->keyword))
                abort();
        if (sum->n_statements > DECODE_SQL_MAX_STATEMENTS)
                abort();
        if (sum->class != DECODE_CLASS_NONE && !(sum->seen & (1u << sum->class)))
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        size_t off = 0;

        while (off < size) {
                DecodePgsqlMessage m;
                int r = decode_pgsql_message(data + off, size - off, &m);
                if (r < 0)
                        break;
                if (r == 0 || (size_t) r > size - off || (size_t) r > m.length)
                        abort();
                if (m.truncated != ((size_t) r < m.length))
                        abort();
                if (strnlen(m.user, sizeof(m.user)) == sizeof(m.user) ||
                    strnlen(m.database, sizeof(m.database)) == sizeof(m.database) ||
                    strnlen(m.application_name, sizeof(m.application_name)) ==
                            sizeof(m.application_name) ||
                    !decode_pgsql_kind_to_string(m.kind))
                        abort();
                check_summary(&m.sql);
                off += (size_t) r;
        }

        DecodeSqlSummary whole, cut;
        decode_sql_classify((const char *) data, size, false, &whole);
        check_summary(&whole);
        decode_sql_classify((const char *) data, size, true, &cut);
        check_summary(&cut);
        return 0;
}
