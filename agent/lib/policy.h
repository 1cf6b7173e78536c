/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The policy model: what a CEREDIS policy file (SPEC section 3, version 1) says once it is
 * parsed, validated and every selector resolved. It is the one data model that the compiler,
 * the watcher, the controls engine and the CLI read; nothing downstream looks at YAML.
 *
 * Every entry keeps the position of the YAML node it came from, so that later stages (the
 * kernel rejecting a rule, a violation naming its forbid entry) can point back at the file.
 */
#pragma once

#include "ceredis.h"

#include <netinet/in.h>

/* Hard limits on what a policy may hold: a hostile file is refused, never a crash. */
#define POLICY_MAX_FILE_SIZE (32u * 1024u * 1024u)
#define POLICY_MAX_DEPTH 32u
#define POLICY_MAX_NODES (4u * 1024u * 1024u)
#define POLICY_MAX_SCALAR 4096u
#define POLICY_MAX_HOSTS 256u
#define POLICY_MAX_ZONES 256u
#define POLICY_MAX_SERVICES 131072u
#define POLICY_MAX_FLOWS 262144u
#define POLICY_MAX_FORBIDS 4096u
#define POLICY_MAX_CONTROLS 256u
#define POLICY_MAX_LIST 65536u /* items of any inner list: ports, tags, CIDRs, interfaces */
#define POLICY_MAX_RESOLVED (4u * 1024u * 1024u) /* services named by all selectors together */

/* SPEC vocabulary: the tag of a service whose writes are journaled (control DATA-3). */
#define POLICY_TAG_EVALUATION_STORE "evaluation-store"

/* 1-based position of a YAML node in the policy file. */
typedef struct PolicyPos {
        unsigned line;
        unsigned column;
} PolicyPos;

/* An address or a network; a plain address is a /32 or /128. */
typedef struct PolicyCidr {
        int family; /* AF_INET or AF_INET6 */
        union {
                struct in_addr in;
                struct in6_addr in6;
                uint8_t bytes[16];
        } addr;     /* host bits are zero */
        uint8_t prefix;
} PolicyCidr;

typedef enum PolicyMode {
        POLICY_MODE_ENFORCE,
        POLICY_MODE_AUDIT,
} PolicyMode;

typedef struct PolicyManagement {
        uint16_t port;
        uint8_t proto; /* IPPROTO_TCP or IPPROTO_UDP */
        PolicyCidr *from;
        size_t n_from;
        PolicyPos pos;
} PolicyManagement;

typedef struct PolicyHost {
        char *name;
        char **public_interfaces;
        size_t n_public_interfaces;
        char **private_interfaces;
        size_t n_private_interfaces;
        PolicyCidr *addresses; /* the host's own addresses (peers reach it there) */
        size_t n_addresses;
        PolicyManagement *management;
        size_t n_management;
        PolicyPos pos;
} PolicyHost;

typedef struct PolicyZone {
        char *name;
        bool public;
        PolicyPos pos;
} PolicyZone;

typedef enum PolicyMatchKind {
        POLICY_MATCH_COMPOSE_SERVICE,
        POLICY_MATCH_CONTAINER_NAME,
        POLICY_MATCH_IMAGE,
        POLICY_MATCH_LABEL,
        POLICY_MATCH_CIDR,
} PolicyMatchKind;

typedef struct PolicyMatch {
        PolicyMatchKind kind;
        char *value;       /* compose service, container name, image, or label key */
        char *label_value; /* POLICY_MATCH_LABEL only */
        PolicyCidr *cidrs; /* POLICY_MATCH_CIDR only: one or a list */
        size_t n_cidrs;
        PolicyPos pos;
} PolicyMatch;

typedef struct PolicyPort {
        uint16_t port;
        uint8_t proto; /* IPPROTO_TCP or IPPROTO_UDP */
        bool public;   /* reachable from the Internet (only in a public zone) */
        PolicyPos pos;
} PolicyPort;

typedef enum PolicyL7 {
        POLICY_L7_TCP, /* no decoder: the default */
        POLICY_L7_HTTP,
        POLICY_L7_POSTGRESQL,
        POLICY_L7_TLS,
} PolicyL7;

typedef struct PolicyService {
        char *name;
        size_t zone; /* index into Policy.zones */
        size_t host; /* index into Policy.hosts */
        PolicyMatch match;
        PolicyPort *ports;
        size_t n_ports;
        PolicyL7 protocol;
        char **tags;
        size_t n_tags;
        PolicyPos pos;
} PolicyService;

typedef enum PolicySelectorKind {
        POLICY_SELECT_SERVICE,
        POLICY_SELECT_INTERNET,
        POLICY_SELECT_HOST, /* the host itself (its own processes, e.g. an SSH tunnel) */
        POLICY_SELECT_TAG,
        POLICY_SELECT_ZONE,
} PolicySelectorKind;

/* A `from`/`to` as written, and what it resolved to. */
typedef struct PolicyEndpoint {
        PolicySelectorKind kind;
        char *name;       /* service, tag or zone name; NULL for internet/host */
        size_t *services; /* resolved: indices into Policy.services, ascending, no duplicates */
        size_t n_services;
        bool internet;    /* resolved: the endpoint includes the Internet */
        bool host;        /* resolved: the endpoint includes the host itself */
        PolicyPos pos;
} PolicyEndpoint;

typedef enum PolicyAccess {
        POLICY_ACCESS_ANY,
        POLICY_ACCESS_READ_ONLY, /* flows only */
        POLICY_ACCESS_WRITE,     /* forbids only */
} PolicyAccess;

typedef struct PolicyFlow {
        PolicyEndpoint from;
        PolicyEndpoint to;
        int port; /* -1 when the flow covers every port of `to` */
        PolicyAccess access;
        PolicyPos pos;
} PolicyFlow;

typedef enum PolicySeverity {
        POLICY_SEVERITY_CRITICAL,
        POLICY_SEVERITY_HIGH,
        POLICY_SEVERITY_MEDIUM,
        POLICY_SEVERITY_LOW,
} PolicySeverity;

typedef struct PolicyForbid {
        char *id;
        PolicyEndpoint from;
        PolicyEndpoint to;
        PolicyAccess access; /* ANY or WRITE */
        PolicySeverity severity;
        char *why;
        PolicyPos pos;
} PolicyForbid;

typedef enum PolicyControlStatus {
        POLICY_CONTROL_ATTESTED,
        POLICY_CONTROL_NOT_APPLICABLE,
} PolicyControlStatus;

typedef struct PolicyControl {
        char *id;
        PolicyControlStatus status;
        char *by;
        char *date; /* YYYY-MM-DD, validated */
        char *evidence;
        PolicyPos pos;
} PolicyControl;

typedef struct Policy {
        char *path; /* as given to policy_load(), used in messages */
        int version;
        PolicyMode mode;
        uint8_t sha256[32]; /* of the file's bytes */

        PolicyHost *hosts;
        size_t n_hosts;
        PolicyZone *zones;
        size_t n_zones;
        PolicyService *services;
        size_t n_services;
        PolicyFlow *flows;
        size_t n_flows;
        PolicyForbid *forbids;
        size_t n_forbids;
        PolicyControl *controls;
        size_t n_controls;
} Policy;

/* Why a policy was refused: the first error, with its place in the file. */
typedef struct PolicyError {
        PolicyPos pos;        /* 0:0 when the error is about the whole file (I/O, size) */
        char message[512];    /* what was expected, e.g. "expected a port number (1-65535)" */
} PolicyError;

/* Parse and validate a policy held in memory. `path` only names it in messages. On failure
 * returns a negative errno (-EINVAL for an invalid policy) and fills `ret_error`. */
int policy_parse(const char *path, const void *data, size_t size, Policy **ret, PolicyError *ret_error);

/* Read `path` (at most POLICY_MAX_FILE_SIZE bytes) and policy_parse() it. */
int policy_load(const char *path, Policy **ret, PolicyError *ret_error);

/* Format an error as "FILE:LINE:COL: message" (or "FILE: message" without a position). */
int policy_error_format(const char *path, const PolicyError *error, char *buf, size_t size);

void policy_free(Policy *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Policy *, policy_free);

/* Lookups by name; return -ENOENT when absent, else the index. */
ssize_t policy_find_host(const Policy *p, const char *name);
ssize_t policy_find_zone(const Policy *p, const char *name);
ssize_t policy_find_service(const Policy *p, const char *name);

/* The policy's sha256 as 64 lowercase hex characters and a NUL. */
void policy_sha256_hex(const Policy *p, char ret[65]);

const char *policy_mode_to_string(PolicyMode m);
const char *policy_match_kind_to_string(PolicyMatchKind k);
const char *policy_l7_to_string(PolicyL7 l);
const char *policy_access_to_string(PolicyAccess a);
const char *policy_severity_to_string(PolicySeverity s);
const char *policy_control_status_to_string(PolicyControlStatus s);
const char *policy_proto_to_string(uint8_t proto);

/* Format a CIDR as text ("10.0.0.0/8", "2001:db8::1/128"). */
int policy_cidr_format(const PolicyCidr *c, char *buf, size_t size);
/* Parse "ADDR" or "ADDR/PREFIX", IPv4 or IPv6; host bits must be zero. Pure. */
int policy_cidr_parse(const char *s, PolicyCidr *ret);
