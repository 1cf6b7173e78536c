/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Packet and L7 decoders: the first stage of "packets -> decoders -> flows -> violations". They
 * turn bytes that libpcap hands over (a frame on a Docker bridge, an NFLOG record of the
 * agent's own ruleset) into the facts the flow table and the classifier need: addresses and
 * ports, TCP flags, the L4 payload, the HTTP method/path/host of a request, the PostgreSQL
 * user/database of a session and the class (read | write | ddl | other) of its statements.
 *
 * Everything here is pure: (const uint8_t *data, size_t len) in, a caller-owned struct out; no
 * allocation, no I/O, no global state. Every length is checked before every read, length
 * fields are never trusted beyond the bytes present, and every copy has a hard cap. Failures
 * return a negative errno and leave the output untouched: -EBADMSG for malformed input,
 * -EAGAIN when more bytes are needed, -EPROTONOSUPPORT for well-formed input this module does
 * not decode (ARP, HTTP/2, ...). Decoded payload pointers point into the caller's buffer.
 */
#pragma once

#include "ceredis.h"

/* What a request or a statement does to the data behind it (SPEC section 5). The order is a
 * severity: summarising several statements keeps the highest. */
typedef enum DecodeClass {
        DECODE_CLASS_NONE,  /* nothing classified (no statement, not a request) */
        DECODE_CLASS_OTHER, /* session/transaction control, maintenance: BEGIN, SET, VACUUM */
        DECODE_CLASS_READ,
        DECODE_CLASS_WRITE,
        DECODE_CLASS_DDL, /* changes schema or privileges; also a modification */
        _DECODE_CLASS_MAX,
} DecodeClass;

/* "none", "other", "read", "write", "ddl"; NULL when out of range. */
const char *decode_class_to_string(DecodeClass c);

/* True for the classes that change stored data or schema (write, ddl): what a forbid entry
 * with `access: write` or a read-only flow must catch. */
bool decode_class_modifies(DecodeClass c);

/* ---- L2-L4: Ethernet, 802.1Q, Linux cooked (SLL, SLL2), raw IP, NFLOG; IPv4, IPv6, TCP, UDP */

#define DECODE_MAX_IPV6_EXT 8u      /* extension headers walked before giving up */
#define DECODE_MAX_NFLOG_PREFIX 64u /* the kernel caps log prefixes at 127; ours are short */

#define DECODE_TCP_FIN 0x01u
#define DECODE_TCP_SYN 0x02u
#define DECODE_TCP_RST 0x04u
#define DECODE_TCP_PSH 0x08u
#define DECODE_TCP_ACK 0x10u
#define DECODE_TCP_URG 0x20u

/* The NFLOG metadata of a packet the ruleset logged (libpcap's DLT_NFLOG, `nflog:GROUP`). */
typedef struct DecodeNflog {
        bool present;
        uint16_t group;    /* the NFLOG group (resource id) */
        uint8_t hook;      /* netfilter hook (NF_INET_LOCAL_IN = 1, ...), 0xff if absent */
        uint32_t indev;    /* ifindex the packet came in on, 0 if none */
        uint32_t outdev;   /* ifindex it was going out on, 0 if none */
        char prefix[DECODE_MAX_NFLOG_PREFIX]; /* the rule's log prefix, NUL-terminated */
        bool prefix_truncated;
} DecodeNflog;

typedef struct DecodePacket {
        int family;       /* AF_INET or AF_INET6 */
        uint8_t src[16];  /* network byte order; IPv4 in the first 4 bytes, rest zero */
        uint8_t dst[16];
        uint8_t l4proto;  /* IPPROTO_TCP, IPPROTO_UDP, or the last next-header seen */
        uint8_t ttl;      /* TTL or hop limit */
        uint16_t sport;   /* host byte order; 0 unless TCP or UDP with its header present */
        uint16_t dport;
        uint8_t tcp_flags; /* DECODE_TCP_* */
        uint32_t tcp_seq;  /* host byte order */
        uint32_t tcp_ack;
        bool fragment;     /* part of a fragmented datagram: ports only if first fragment */
        bool has_l4;       /* sport/dport/flags are valid */
        bool truncated;    /* the capture holds less than the IP header says (snaplen) */
        bool has_vlan;
        uint16_t vlan;     /* 802.1Q VLAN id (12 bits) */
        uint32_t ifindex;  /* from SLL2 or NFLOG (indev, else outdev); 0 if unknown */
        uint8_t pkttype;   /* SLL/SLL2 packet type (PACKET_HOST, PACKET_OUTGOING...), 0xff if none */
        const uint8_t *payload; /* the L4 payload (TCP/UDP data), inside the caller's buffer */
        size_t payload_len;
        DecodeNflog nflog;
} DecodePacket;

/* Decode one captured frame of libpcap link type `dlt` (DLT_EN10MB, DLT_LINUX_SLL,
 * DLT_LINUX_SLL2, DLT_RAW, DLT_IPV4, DLT_IPV6, DLT_NFLOG). Returns 0, -EBADMSG for a header that
 * is cut or inconsistent, -EPROTONOSUPPORT for a non-IP frame or an unknown link type. NFLOG
 * TLV length and type are read in host byte order, as libpcap delivers them. */
int decode_packet(int dlt, const uint8_t *data, size_t len, DecodePacket *ret);

/* ---- HTTP/1.x: the request line and Host header at the start of a client->server stream */

#define DECODE_HTTP_MAX_METHOD 16u
#define DECODE_HTTP_MAX_PATH 1024u
#define DECODE_HTTP_MAX_HOST 256u
#define DECODE_HTTP_MAX_HEAD 8192u /* bytes of request line + headers ever looked at */

typedef enum DecodeHttpMethod {
        DECODE_HTTP_GET,
        DECODE_HTTP_HEAD,
        DECODE_HTTP_OPTIONS,
        DECODE_HTTP_POST,
        DECODE_HTTP_PUT,
        DECODE_HTTP_PATCH,
        DECODE_HTTP_DELETE,
        DECODE_HTTP_CONNECT,
        DECODE_HTTP_TRACE,
        DECODE_HTTP_OTHER, /* an extension method (PROPFIND, ...): text in method_text */
        _DECODE_HTTP_METHOD_MAX,
} DecodeHttpMethod;

const char *decode_http_method_to_string(DecodeHttpMethod m);

typedef struct DecodeHttpRequest {
        DecodeHttpMethod method;
        char method_text[DECODE_HTTP_MAX_METHOD + 1];
        char path[DECODE_HTTP_MAX_PATH + 1]; /* the request target as sent, cut at the cap */
        bool path_truncated;
        char host[DECODE_HTTP_MAX_HOST + 1]; /* Host header value, "" if not (yet) seen */
        bool host_truncated;
        uint8_t version_major; /* HTTP/1.0 or HTTP/1.1 */
        uint8_t version_minor;
        bool headers_complete; /* the blank line ending the headers was within the bytes */
        DecodeClass access;    /* GET/HEAD/OPTIONS read, every other method write */
} DecodeHttpRequest;

/* Decode the request line and the Host header from the first bytes of a request. Returns 0 once
 * the request line is complete (the Host header is filled if it is within the bytes given),
 * -EAGAIN if the bytes are a valid but unfinished start of a request, -EBADMSG if they are not
 * HTTP/1.x, -EPROTONOSUPPORT for HTTP/2's connection preface. */
int decode_http_request(const uint8_t *data, size_t len, DecodeHttpRequest *ret);

/* ---- SQL statement classification (PostgreSQL dialect) */

#define DECODE_SQL_MAX_STATEMENTS 1024u /* statements examined in one query string */
#define DECODE_SQL_MAX_KEYWORD 31u

typedef struct DecodeSqlSummary {
        DecodeClass class;    /* the highest class over all statements */
        unsigned seen;        /* bit (1u << class) for every class met */
        unsigned n_statements;
        char keyword[DECODE_SQL_MAX_KEYWORD + 1]; /* first keyword of the first statement, upper case */
        bool truncated; /* the text was cut or the statement cap hit: `class` is a lower bound */
} DecodeSqlSummary;

/* Classify every statement of a query string (as a Query or Parse message carries it):
 * comments, string literals, quoted identifiers and dollar-quoted bodies are skipped, so a
 * keyword inside them does not count. `text_truncated` says the text is a prefix of the real
 * query (a capture shorter than the message); its last, possibly cut, word is ignored. Never
 * fails: text that is not SQL is class "other". */
void decode_sql_classify(const char *text, size_t len, bool text_truncated, DecodeSqlSummary *ret);

/* ---- PostgreSQL frontend (client -> server) messages */

#define DECODE_PGSQL_MAX_STARTUP 10000u         /* the server's own cap on startup packets */
#define DECODE_PGSQL_MAX_MESSAGE 0x3fffffffu    /* the server's cap on any message (1 GiB) */
#define DECODE_PGSQL_MAX_NAME 63u               /* NAMEDATALEN - 1: longer names are cut */

typedef enum DecodePgsqlKind {
        DECODE_PGSQL_SSL_REQUEST,
        DECODE_PGSQL_GSSENC_REQUEST,
        DECODE_PGSQL_CANCEL_REQUEST,
        DECODE_PGSQL_STARTUP,
        DECODE_PGSQL_QUERY, /* 'Q', simple query protocol */
        DECODE_PGSQL_PARSE, /* 'P', extended query protocol */
        DECODE_PGSQL_OTHER, /* any other frontend message: see `type` */
        _DECODE_PGSQL_KIND_MAX,
} DecodePgsqlKind;

const char *decode_pgsql_kind_to_string(DecodePgsqlKind k);

typedef struct DecodePgsqlMessage {
        DecodePgsqlKind kind;
        char type;          /* type byte of a typed message ('Q', 'P', 'B', 'X'...), 0 if untyped */
        size_t length;      /* bytes the whole message occupies on the wire, type byte included */
        bool truncated;     /* fewer bytes given than `length`: only the prefix was decoded */
        uint16_t proto_major; /* StartupMessage protocol version */
        uint16_t proto_minor;
        char user[DECODE_PGSQL_MAX_NAME + 1];     /* StartupMessage */
        char database[DECODE_PGSQL_MAX_NAME + 1]; /* defaults to the user, as the server does */
        char application_name[DECODE_PGSQL_MAX_NAME + 1];
        DecodeSqlSummary sql; /* Query and Parse; class NONE otherwise */
} DecodePgsqlMessage;

/* Decode the frontend message at the start of `data`. Untyped messages (SSLRequest,
 * StartupMessage, ...) are told apart from typed ones by their first byte, which is 0 for any
 * length the server accepts and never a type byte. Returns the number of bytes of `data` the
 * message covers (> 0; less than `length` when truncated), -EAGAIN if a header or a startup
 * message is incomplete, -EBADMSG for an unknown type or a length out of bounds. Query and
 * Parse are classified on the bytes present; other typed messages may be truncated too, the
 * caller skips `length` bytes of the stream. */
int decode_pgsql_message(const uint8_t *data, size_t len, DecodePgsqlMessage *ret);
