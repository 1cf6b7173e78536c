/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * PostgreSQL frontend (client -> server) message decoding and SQL statement classification, for
 * the DATA-3 and AI-2 controls: who connects as which user to which database, and whether what
 * they send reads, writes, changes the schema, or only steers the session. Startup-phase
 * messages (SSLRequest, GSSENCRequest, CancelRequest, StartupMessage) and typed messages are
 * framed with the server's own length caps; Query and Parse texts are classified by a small
 * lexer that knows PostgreSQL's comments (nested), string literals (standard, E'' and
 * dollar-quoted) and quoted identifiers, so a keyword hidden in them does not count, and a
 * statement-level state machine that needs no memory beyond a few flags per statement.
 *
 * Decisions: a CTE that modifies data, SELECT ... INTO, SELECT ... FOR UPDATE/SHARE (row locks
 * are written into the rows, refused on a hot standby, and block writers: not what a read-only
 * consumer does), EXPLAIN ANALYZE of a write, COPY ... FROM, DO and CALL (arbitrary code) and
 * fastpath function calls (large-object writes use them) are writes. Plain EXPLAIN executes
 * nothing: read. CREATE/ALTER/DROP/GRANT/REVOKE/COMMENT/SECURITY LABEL/IMPORT FOREIGN SCHEMA/
 * REASSIGN are ddl; TRUNCATE and REFRESH MATERIALIZED VIEW are writes. A statement this module
 * does not know is "other".
 */
#include "ceredis.h"

#include "decode.h"

#define PGSQL_SSL_REQUEST_CODE 80877103u
#define PGSQL_GSSENC_REQUEST_CODE 80877104u
#define PGSQL_CANCEL_REQUEST_CODE 80877102u

static const char *const class_table[_DECODE_CLASS_MAX] = {
        [DECODE_CLASS_NONE] = "none",   [DECODE_CLASS_OTHER] = "other",
        [DECODE_CLASS_READ] = "read",   [DECODE_CLASS_WRITE] = "write",
        [DECODE_CLASS_DDL] = "ddl",
};

const char *decode_class_to_string(DecodeClass c) {
        if ((unsigned) c >= _DECODE_CLASS_MAX)
                return NULL;
        return class_table[c];
}

bool decode_class_modifies(DecodeClass c) {
        return c == DECODE_CLASS_WRITE || c == DECODE_CLASS_DDL;
}

static const char *const pgsql_kind_table[_DECODE_PGSQL_KIND_MAX] = {
        [DECODE_PGSQL_SSL_REQUEST] = "ssl-request",
        [DECODE_PGSQL_GSSENC_REQUEST] = "gssenc-request",
        [DECODE_PGSQL_CANCEL_REQUEST] = "cancel-request",
        [DECODE_PGSQL_STARTUP] = "startup",
        [DECODE_PGSQL_QUERY] = "query",
        [DECODE_PGSQL_PARSE] = "parse",
        [DECODE_PGSQL_OTHER] = "other",
};

const char *decode_pgsql_kind_to_string(DecodePgsqlKind k) {
        if ((unsigned) k >= _DECODE_PGSQL_KIND_MAX)
                return NULL;
        return pgsql_kind_table[k];
}

/* ---- lexer */

typedef enum TokKind {
        TOK_END,
        TOK_WORD,   /* keyword or unquoted identifier */
        TOK_NUMBER,
        TOK_QUOTED, /* string literal, quoted identifier, dollar-quoted body: never a keyword */
        TOK_LPAREN,
        TOK_RPAREN,
        TOK_SEMI,
        TOK_OTHER, /* operators, punctuation, $n parameters */
} TokKind;

typedef struct Token {
        TokKind kind;
        size_t start;
        size_t len;
} Token;

typedef struct Lexer {
        const char *s;
        size_t len;
        size_t pos;
} Lexer;

/* Character classes by table: the lexer asks on every byte of every query. */
#define CC_IDENT_START 1u
#define CC_IDENT 2u
static const uint8_t char_class[256] = {
        ['a' ... 'z'] = CC_IDENT_START | CC_IDENT,
        ['A' ... 'Z'] = CC_IDENT_START | CC_IDENT,
        ['_'] = CC_IDENT_START | CC_IDENT,
        [0x80 ... 0xff] = CC_IDENT_START | CC_IDENT,
        ['0' ... '9'] = CC_IDENT,
        ['$'] = CC_IDENT,
};

static bool is_ident_start(unsigned char c) {
        return char_class[c] & CC_IDENT_START;
}

static bool is_ident_char(unsigned char c) {
        return char_class[c] & CC_IDENT;
}

static bool is_digit(unsigned char c) {
        return c >= '0' && c <= '9';
}

/* Skip whitespace and comments; block comments nest in PostgreSQL. */
static void lex_skip_blank(Lexer *l) {
        while (l->pos < l->len) {
                unsigned char c = l->s[l->pos];
                if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
                        l->pos++;
                } else if (c == '-' && l->pos + 1 < l->len && l->s[l->pos + 1] == '-') {
                        const char *nl = memchr(l->s + l->pos, '\n', l->len - l->pos);
                        l->pos = nl ? (size_t) (nl - l->s) + 1 : l->len;
                } else if (c == '/' && l->pos + 1 < l->len && l->s[l->pos + 1] == '*') {
                        size_t depth = 1;
                        l->pos += 2;
                        while (l->pos < l->len && depth > 0) {
                                if (l->pos + 1 < l->len && l->s[l->pos] == '/' &&
                                    l->s[l->pos + 1] == '*') {
                                        depth++;
                                        l->pos += 2;
                                } else if (l->pos + 1 < l->len && l->s[l->pos] == '*' &&
                                           l->s[l->pos + 1] == '/') {
                                        depth--;
                                        l->pos += 2;
                                } else
                                        l->pos++;
                        }
                } else
                        return;
        }
}

/* Skip a quoted run opened at l->pos by `quote`; a doubled quote is an escaped one, and in an
 * E'' string a backslash escapes the next byte. An unterminated run ends the text. */
static void lex_skip_quoted(Lexer *l, char quote, bool backslash) {
        l->pos++;
        while (l->pos < l->len) {
                char c = l->s[l->pos];
                if (backslash && c == '\\') {
                        l->pos += l->pos + 1 < l->len ? 2 : 1;
                } else if (c == quote) {
                        if (l->pos + 1 < l->len && l->s[l->pos + 1] == quote)
                                l->pos += 2;
                        else {
                                l->pos++;
                                return;
                        }
                } else
                        l->pos++;
        }
}

/* At a '$': a dollar-quote opener "$tag$" or "$$"? Returns its length, or 0. */
static size_t lex_dollar_tag(const Lexer *l) {
        size_t i = l->pos + 1;
        if (i < l->len && l->s[i] == '$')
                return 2;
        if (i >= l->len || !is_ident_start((unsigned char) l->s[i]))
                return 0;
        while (i < l->len && is_ident_char((unsigned char) l->s[i]) && l->s[i] != '$')
                i++;
        if (i >= l->len || l->s[i] != '$')
                return 0;
        return i + 1 - l->pos;
}

static Token lex_next(Lexer *l) {
        lex_skip_blank(l);
        Token t = { .kind = TOK_END, .start = l->pos };
        if (l->pos >= l->len)
                return t;

        unsigned char c = l->s[l->pos];
        if (is_ident_start(c)) {
                /* E'...' is a string with backslash escapes, not the word E. */
                if ((c == 'e' || c == 'E') && l->pos + 1 < l->len && l->s[l->pos + 1] == '\'') {
                        l->pos++;
                        lex_skip_quoted(l, '\'', true);
                        t.kind = TOK_QUOTED;
                } else {
                        while (l->pos < l->len && is_ident_char((unsigned char) l->s[l->pos]))
                                l->pos++;
                        t.kind = TOK_WORD;
                }
        } else if (is_digit(c) || (c == '.' && l->pos + 1 < l->len &&
                                   is_digit((unsigned char) l->s[l->pos + 1]))) {
                while (l->pos < l->len && (is_ident_char((unsigned char) l->s[l->pos]) ||
                                           l->s[l->pos] == '.'))
                        l->pos++;
                t.kind = TOK_NUMBER;
        } else if (c == '\'' || c == '"') {
                lex_skip_quoted(l, (char) c, false);
                t.kind = TOK_QUOTED;
        } else if (c == '$') {
                size_t tag = lex_dollar_tag(l);
                if (tag > 0) {
                        const char *body = l->s + l->pos + tag;
                        const char *close = memmem(body, l->len - l->pos - tag, l->s + l->pos, tag);
                        l->pos = close ? (size_t) (close - l->s) + tag : l->len;
                        t.kind = TOK_QUOTED;
                } else {
                        l->pos++;
                        while (l->pos < l->len && is_digit((unsigned char) l->s[l->pos]))
                                l->pos++;
                        t.kind = TOK_OTHER;
                }
        } else {
                l->pos++;
                t.kind = c == '(' ? TOK_LPAREN : c == ')' ? TOK_RPAREN : c == ';' ? TOK_SEMI
                                                                                  : TOK_OTHER;
        }
        t.len = l->pos - t.start;
        return t;
}

/* ---- keywords */

typedef enum Kw {
        KW_NONE,
        KW_ABORT, KW_ALTER, KW_ANALYSE, KW_ANALYZE, KW_AS, KW_BEGIN, KW_CALL, KW_CHECKPOINT,
        KW_CLOSE, KW_CLUSTER, KW_COMMENT, KW_COMMIT, KW_COPY, KW_CREATE, KW_DEALLOCATE,
        KW_DECLARE, KW_DELETE, KW_DISCARD, KW_DO, KW_DROP, KW_END, KW_EXECUTE, KW_EXPLAIN,
        KW_FALSE, KW_FETCH, KW_FOR, KW_FROM, KW_GRANT, KW_IMPORT, KW_INSERT, KW_INTO, KW_KEY,
        KW_LISTEN, KW_LOAD, KW_LOCK, KW_MERGE, KW_MOVE, KW_NO, KW_NOTIFY, KW_OFF, KW_PREPARE,
        KW_REASSIGN, KW_REFRESH, KW_REINDEX, KW_RELEASE, KW_RESET, KW_REVOKE, KW_ROLLBACK,
        KW_SAVEPOINT, KW_SECURITY, KW_SELECT, KW_SET, KW_SHARE, KW_SHOW, KW_START, KW_TABLE,
        KW_TO, KW_TRUNCATE, KW_UNLISTEN, KW_UPDATE, KW_VACUUM, KW_VALUES, KW_VERBOSE, KW_WITH,
} Kw;

/* Sorted by name (strcmp order): looked up by binary search. */
static const struct {
        const char *name;
        Kw kw;
} keyword_table[] = {
        { "ABORT", KW_ABORT },       { "ALTER", KW_ALTER },       { "ANALYSE", KW_ANALYSE },
        { "ANALYZE", KW_ANALYZE },   { "AS", KW_AS },             { "BEGIN", KW_BEGIN },
        { "CALL", KW_CALL },         { "CHECKPOINT", KW_CHECKPOINT },
        { "CLOSE", KW_CLOSE },       { "CLUSTER", KW_CLUSTER },   { "COMMENT", KW_COMMENT },
        { "COMMIT", KW_COMMIT },     { "COPY", KW_COPY },         { "CREATE", KW_CREATE },
        { "DEALLOCATE", KW_DEALLOCATE },                          { "DECLARE", KW_DECLARE },
        { "DELETE", KW_DELETE },     { "DISCARD", KW_DISCARD },   { "DO", KW_DO },
        { "DROP", KW_DROP },         { "END", KW_END },           { "EXECUTE", KW_EXECUTE },
        { "EXPLAIN", KW_EXPLAIN },   { "FALSE", KW_FALSE },       { "FETCH", KW_FETCH },
        { "FOR", KW_FOR },           { "FROM", KW_FROM },         { "GRANT", KW_GRANT },
        { "IMPORT", KW_IMPORT },     { "INSERT", KW_INSERT },     { "INTO", KW_INTO },
        { "KEY", KW_KEY },           { "LISTEN", KW_LISTEN },     { "LOAD", KW_LOAD },
        { "LOCK", KW_LOCK },         { "MERGE", KW_MERGE },       { "MOVE", KW_MOVE },
        { "NO", KW_NO },             { "NOTIFY", KW_NOTIFY },     { "OFF", KW_OFF },
        { "PREPARE", KW_PREPARE },   { "REASSIGN", KW_REASSIGN }, { "REFRESH", KW_REFRESH },
        { "REINDEX", KW_REINDEX },   { "RELEASE", KW_RELEASE },   { "RESET", KW_RESET },
        { "REVOKE", KW_REVOKE },     { "ROLLBACK", KW_ROLLBACK }, { "SAVEPOINT", KW_SAVEPOINT },
        { "SECURITY", KW_SECURITY }, { "SELECT", KW_SELECT },     { "SET", KW_SET },
        { "SHARE", KW_SHARE },       { "SHOW", KW_SHOW },         { "START", KW_START },
        { "TABLE", KW_TABLE },       { "TO", KW_TO },             { "TRUNCATE", KW_TRUNCATE },
        { "UNLISTEN", KW_UNLISTEN }, { "UPDATE", KW_UPDATE },     { "VACUUM", KW_VACUUM },
        { "VALUES", KW_VALUES },     { "VERBOSE", KW_VERBOSE },   { "WITH", KW_WITH },
};

/* Upper-case a word into buf (cut to its size); returns false if the word was longer. */
static bool word_upper(const char *s, size_t n, char *buf, size_t size) {
        size_t k = n < size - 1 ? n : size - 1;
        for (size_t i = 0; i < k; i++) {
                char c = s[i];
                buf[i] = c >= 'a' && c <= 'z' ? (char) (c - 'a' + 'A') : c;
        }
        buf[k] = 0;
        return k == n;
}

/* The longest name in keyword_table: longer words are identifiers without a look. */
#define KEYWORD_MAX_LEN 10u

/* strcmp() of the word s[0..n) upper-cased against an upper-case name, without copying the
 * word: most comparisons end at the first or second byte. */
static int keyword_cmp(const char *s, size_t n, const char *name) {
        for (size_t i = 0;; i++) {
                unsigned char a = i < n ? (unsigned char) s[i] : 0, b = (unsigned char) name[i];

                if (a >= 'a' && a <= 'z')
                        a = (unsigned char) (a - 'a' + 'A');
                if (a != b || b == 0)
                        return (int) a - (int) b;
        }
}

static Kw keyword_lookup(const char *s, size_t n) {
        if (n > KEYWORD_MAX_LEN)
                return KW_NONE;
        size_t lo = 0, hi = ELEMENTSOF(keyword_table);
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = keyword_cmp(s, n, keyword_table[mid].name);
                if (c == 0)
                        return keyword_table[mid].kw;
                if (c < 0)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        return KW_NONE;
}

/* ---- statements */

typedef enum StmtPhase {
        PHASE_LEAD,    /* waiting for the word that says what the statement is */
        PHASE_EXPLAIN, /* inside EXPLAIN's options */
        PHASE_PREPARE, /* PREPARE name (types): waiting for AS */
        PHASE_BODY,
} StmtPhase;

typedef struct Stmt {
        bool started;
        StmtPhase phase;
        Kw lead;
        Kw prev;           /* keyword of the previous token, KW_NONE if it was none */
        unsigned depth;    /* parentheses open */
        bool explain;
        bool analyze;
        bool dml;          /* INSERT/UPDATE/DELETE/MERGE anywhere: a data-modifying CTE, ... */
        bool into;         /* SELECT ... INTO creates a table */
        bool lock;         /* FOR SHARE / FOR KEY SHARE / FOR NO KEY UPDATE */
        bool copy_from;
        bool copy_to;
} Stmt;

static void stmt_word(Stmt *st, Kw kw) {
        switch (st->phase) {
        case PHASE_LEAD:
                if (kw == KW_EXPLAIN) {
                        st->explain = true;
                        st->phase = PHASE_EXPLAIN;
                } else if (kw == KW_PREPARE)
                        st->phase = PHASE_PREPARE;
                else {
                        st->lead = kw;
                        st->phase = PHASE_BODY;
                }
                return;
        case PHASE_EXPLAIN:
                if (kw == KW_ANALYZE || kw == KW_ANALYSE)
                        st->analyze = true;
                else if ((kw == KW_FALSE || kw == KW_OFF) &&
                         (st->prev == KW_ANALYZE || st->prev == KW_ANALYSE))
                        st->analyze = false;
                else if (st->depth == 0 && kw != KW_VERBOSE) {
                        st->lead = kw;
                        st->phase = PHASE_BODY;
                }
                return;
        case PHASE_PREPARE:
                if (kw == KW_AS && st->depth == 0)
                        st->phase = PHASE_LEAD;
                return;
        case PHASE_BODY:
                break;
        }

        if (kw == KW_INSERT || kw == KW_UPDATE || kw == KW_DELETE || kw == KW_MERGE)
                st->dml = true;
        else if (kw == KW_INTO)
                st->into = true;
        else if (st->prev == KW_FOR && (kw == KW_SHARE || kw == KW_KEY || kw == KW_NO))
                st->lock = true;
        else if (st->lead == KW_COPY && st->depth == 0 && !st->copy_from && !st->copy_to) {
                if (kw == KW_FROM)
                        st->copy_from = true;
                else if (kw == KW_TO)
                        st->copy_to = true;
        }
}

static DecodeClass stmt_class(const Stmt *st) {
        DecodeClass c;

        switch (st->lead) {
        case KW_SELECT:
        case KW_WITH:
        case KW_VALUES:
        case KW_TABLE:
        case KW_DECLARE:
                c = st->dml || st->into || st->lock ? DECODE_CLASS_WRITE : DECODE_CLASS_READ;
                break;
        case KW_FETCH:
                c = DECODE_CLASS_READ;
                break;
        case KW_INSERT:
        case KW_UPDATE:
        case KW_DELETE:
        case KW_MERGE:
        case KW_TRUNCATE:
        case KW_REFRESH:
        case KW_DO:
        case KW_CALL:
                c = DECODE_CLASS_WRITE;
                break;
        case KW_COPY:
                c = st->dml || st->copy_from ? DECODE_CLASS_WRITE
                    : st->copy_to            ? DECODE_CLASS_READ
                                             : DECODE_CLASS_OTHER;
                break;
        case KW_CREATE:
        case KW_ALTER:
        case KW_DROP:
        case KW_GRANT:
        case KW_REVOKE:
        case KW_COMMENT:
        case KW_SECURITY:
        case KW_IMPORT:
        case KW_REASSIGN:
                c = DECODE_CLASS_DDL;
                break;
        default:
                c = DECODE_CLASS_OTHER;
                break;
        }
        /* EXPLAIN without ANALYZE plans the statement and executes nothing. */
        if (st->explain && !st->analyze)
                c = DECODE_CLASS_READ;
        return c;
}

static void summary_add(DecodeSqlSummary *sum, const Stmt *st) {
        DecodeClass c = stmt_class(st);
        sum->n_statements++;
        sum->seen |= 1u << c;
        if (c > sum->class)
                sum->class = c;
}

void decode_sql_classify(const char *text, size_t len, bool text_truncated, DecodeSqlSummary *ret) {
        DecodeSqlSummary sum = { .class = DECODE_CLASS_NONE, .truncated = text_truncated };
        Lexer l = { .s = text, .len = text ? len : 0 };
        Stmt st = {};

        for (;;) {
                Token t = lex_next(&l);
                if (t.kind == TOK_END)
                        break;
                if (t.kind == TOK_SEMI) {
                        if (st.started)
                                summary_add(&sum, &st);
                        st = (Stmt) {};
                        continue;
                }
                /* The last word of a cut text may be cut too ("SELE"): it tells nothing. */
                if (t.kind == TOK_WORD && text_truncated && t.start + t.len == l.len)
                        break;

                if (!st.started && sum.n_statements >= DECODE_SQL_MAX_STATEMENTS) {
                        sum.truncated = true;
                        break;
                }
                st.started = true;
                Kw kw = KW_NONE;
                switch (t.kind) {
                case TOK_WORD:
                        if (sum.n_statements == 0 && !sum.keyword[0])
                                word_upper(text + t.start, t.len, sum.keyword, sizeof(sum.keyword));
                        kw = keyword_lookup(text + t.start, t.len);
                        stmt_word(&st, kw);
                        break;
                case TOK_NUMBER:
                        /* EXPLAIN (ANALYZE 0) */
                        if (st.phase == PHASE_EXPLAIN && t.len == 1 && text[t.start] == '0' &&
                            (st.prev == KW_ANALYZE || st.prev == KW_ANALYSE))
                                st.analyze = false;
                        break;
                case TOK_LPAREN:
                        st.depth++;
                        break;
                case TOK_RPAREN:
                        if (st.depth > 0)
                                st.depth--;
                        break;
                default:
                        break;
                }
                st.prev = kw;
        }
        if (st.started)
                summary_add(&sum, &st);
        *ret = sum;
}

/* ---- messages */

static uint32_t rd32(const uint8_t *p) {
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

static void copy_name(char dst[static DECODE_PGSQL_MAX_NAME + 1], const uint8_t *s, size_t n) {
        if (n > DECODE_PGSQL_MAX_NAME)
                n = DECODE_PGSQL_MAX_NAME; /* the server truncates identifiers the same way */
        memcpy(dst, s, n);
        dst[n] = 0;
}

/* StartupMessage parameters: NUL-terminated key/value pairs ending with an empty key. */
static int parse_startup_params(const uint8_t *p, size_t n, DecodePgsqlMessage *m) {
        size_t i = 0;
        bool have_db = false;

        for (;;) {
                if (i >= n)
                        return -EBADMSG;
                size_t klen = strnlen((const char *) p + i, n - i);
                if (klen == n - i)
                        return -EBADMSG;
                if (klen == 0)
                        break;
                const char *key = (const char *) p + i;
                i += klen + 1;
                if (i >= n)
                        return -EBADMSG;
                size_t vlen = strnlen((const char *) p + i, n - i);
                if (vlen == n - i)
                        return -EBADMSG;
                if (streq(key, "user"))
                        copy_name(m->user, p + i, vlen);
                else if (streq(key, "database")) {
                        copy_name(m->database, p + i, vlen);
                        have_db = vlen > 0;
                } else if (streq(key, "application_name"))
                        copy_name(m->application_name, p + i, vlen);
                i += vlen + 1;
        }
        if (!have_db)
                memcpy(m->database, m->user, sizeof(m->database));
        return 0;
}

static int decode_untyped(const uint8_t *data, size_t len, DecodePgsqlMessage *m) {
        if (len < 8)
                return -EAGAIN;
        uint32_t mlen = rd32(data);
        uint32_t code = rd32(data + 4);
        if (mlen < 8 || mlen > DECODE_PGSQL_MAX_STARTUP)
                return -EBADMSG;
        if (mlen > len)
                return -EAGAIN;
        m->length = mlen;

        switch (code) {
        case PGSQL_SSL_REQUEST_CODE:
                m->kind = DECODE_PGSQL_SSL_REQUEST;
                return mlen == 8 ? 0 : -EBADMSG;
        case PGSQL_GSSENC_REQUEST_CODE:
                m->kind = DECODE_PGSQL_GSSENC_REQUEST;
                return mlen == 8 ? 0 : -EBADMSG;
        case PGSQL_CANCEL_REQUEST_CODE:
                m->kind = DECODE_PGSQL_CANCEL_REQUEST;
                return mlen >= 16 ? 0 : -EBADMSG; /* 16, longer keys from protocol 3.2 */
        default:
                break;
        }
        m->kind = DECODE_PGSQL_STARTUP;
        m->proto_major = (uint16_t) (code >> 16);
        m->proto_minor = (uint16_t) code;
        if (m->proto_major != 3)
                return m->proto_major == 2 ? -EPROTONOSUPPORT : -EBADMSG;
        return parse_startup_params(data + 8, mlen - 8, m);
}

static bool is_frontend_type(uint8_t t) {
        return t != 0 && strchr("BCcdDEfFHPpQSX", t);
}

/* The SQL text at p[0..n): NUL-terminated within a whole message; a cut message ends early. */
static int classify_text(const uint8_t *p, size_t n, bool cut, DecodeSqlSummary *sum) {
        size_t tlen = strnlen((const char *) p, n);
        if (tlen == n && !cut)
                return -EBADMSG;
        decode_sql_classify((const char *) p, tlen, tlen == n, sum);
        return 0;
}

int decode_pgsql_message(const uint8_t *data, size_t len, DecodePgsqlMessage *ret) {
        DecodePgsqlMessage m = {};
        int r;

        if (!data && len > 0)
                return -EINVAL;
        if (len < 1)
                return -EAGAIN;
        if (data[0] == 0) {
                r = decode_untyped(data, len, &m);
                if (r < 0)
                        return r;
                *ret = m;
                return (int) m.length;
        }

        if (!is_frontend_type(data[0]))
                return -EBADMSG;
        if (len < 5)
                return -EAGAIN;
        uint32_t mlen = rd32(data + 1);
        if (mlen < 4 || mlen > DECODE_PGSQL_MAX_MESSAGE)
                return -EBADMSG;
        m.type = (char) data[0];
        m.length = (size_t) mlen + 1;
        m.truncated = len < m.length;
        size_t avail = m.truncated ? len : m.length;
        const uint8_t *body = data + 5;
        size_t blen = avail - 5;

        switch (m.type) {
        case 'Q':
                m.kind = DECODE_PGSQL_QUERY;
                r = classify_text(body, blen, m.truncated, &m.sql);
                if (r < 0)
                        return r;
                break;
        case 'P': {
                m.kind = DECODE_PGSQL_PARSE;
                size_t nlen = strnlen((const char *) body, blen);
                if (nlen == blen) {
                        if (!m.truncated)
                                return -EBADMSG;
                        m.sql.truncated = true; /* the statement name alone is there */
                        break;
                }
                r = classify_text(body + nlen + 1, blen - nlen - 1, m.truncated, &m.sql);
                if (r < 0)
                        return r;
                break;
        }
        case 'F':
                /* Fastpath call of a function by OID: its effect is unknown (large-object
                 * writes go this way), so it counts as a write. */
                m.kind = DECODE_PGSQL_OTHER;
                m.sql.class = DECODE_CLASS_WRITE;
                m.sql.seen = 1u << DECODE_CLASS_WRITE;
                break;
        default:
                m.kind = DECODE_PGSQL_OTHER;
                break;
        }
        *ret = m;
        return (int) avail;
}
