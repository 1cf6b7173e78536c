/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The Docker Engine API, read side: pure decoders (jansson) for the three answers the agent
 * uses, GET /containers/json (the inventory, also used with an id filter to refresh one
 * container), GET /networks (bridge subnets) and one line of the GET /events stream. Docker's
 * answers carry user-controlled strings (names, labels, images), so every string, array and
 * answer has a hard cap and every field is type-checked; a container that breaks a cap is
 * refused (counted, never half-parsed), an answer that is not the expected shape is refused
 * whole. No I/O here: agent/daemon/docker.c does the HTTP.
 */
#pragma once

#include "ceredis.h"

#include <netinet/in.h>

#define DOCKER_MAX_ANSWER (16u * 1024u * 1024u) /* one list answer */
#define DOCKER_MAX_EVENT (64u * 1024u)          /* one /events line */
#define DOCKER_MAX_CONTAINERS 4096u
#define DOCKER_MAX_NETWORKS 1024u               /* in GET /networks */
#define DOCKER_MAX_ATTACHMENTS 64u              /* networks of one container */
#define DOCKER_MAX_PORTS 1024u                  /* port entries of one container */
#define DOCKER_MAX_LABELS 256u                  /* labels of one container */
#define DOCKER_MAX_SUBNETS 16u                  /* IPAM configs of one network */
#define DOCKER_MAX_NAME 256u                    /* container and network names */
#define DOCKER_MAX_STRING 1024u                 /* images, label keys, states */
#define DOCKER_MAX_LABEL_VALUE 4096u
#define DOCKER_ID_LEN 64u                       /* hex digits of a full Docker id */

typedef struct DockerLabel {
        char *key;
        char *value;
} DockerLabel;

/* One network a container is attached to. */
typedef struct DockerAttachment {
        char *network;                     /* network name */
        char network_id[DOCKER_ID_LEN + 1]; /* "" when Docker did not say */
        bool has_ipv4, has_ipv6;
        struct in_addr ipv4;
        struct in6_addr ipv6;
} DockerAttachment;

/* One entry of "Ports": a container port, published on the host or not. */
typedef struct DockerPort {
        uint8_t proto;           /* IPPROTO_TCP, IPPROTO_UDP or IPPROTO_SCTP */
        uint16_t container_port;
        uint16_t host_port;      /* 0: not published */
        int host_family;         /* AF_INET (0.0.0.0, an IPv4), AF_INET6 (::), AF_UNSPEC */
        char host_ip[46];        /* as Docker wrote it, "" when not published */
} DockerPort;

typedef struct DockerContainer {
        char id[DOCKER_ID_LEN + 1];
        char *name;  /* without Docker's leading '/' */
        char *image; /* as the container was created with it: "ollama/ollama:latest" */
        char *state; /* "running", "exited", ... */
        DockerLabel *labels;
        size_t n_labels;
        DockerAttachment *attachments;
        size_t n_attachments;
        DockerPort *ports;
        size_t n_ports;
} DockerContainer;

typedef struct DockerSubnet {
        int family;
        uint8_t addr[16]; /* network address, host bits zero */
        uint8_t prefix;
        bool has_gateway;
        uint8_t gateway[16];
} DockerSubnet;

typedef struct DockerNetwork {
        char id[DOCKER_ID_LEN + 1];
        char *name;
        char *driver; /* "bridge", "host", "null", "overlay", ... */
        bool internal;
        DockerSubnet subnets[DOCKER_MAX_SUBNETS];
        size_t n_subnets;
} DockerNetwork;

/* A decoded GET /containers/json answer. Containers that broke a cap or a type are left out
 * and counted in n_refused (the first one's id, when it had a valid one, in refused_id). */
typedef struct DockerInventory {
        DockerContainer *containers;
        size_t n_containers, allocated;
        size_t n_refused;
        char refused_id[DOCKER_ID_LEN + 1];
} DockerInventory;

typedef struct DockerNetworks {
        DockerNetwork *networks;
        size_t n_networks, allocated;
        size_t n_refused;
} DockerNetworks;

/* What an /events line asks the agent to do. */
typedef enum DockerEventKind {
        DOCKER_EVENT_IGNORE,    /* nothing the ruleset depends on */
        DOCKER_EVENT_CONTAINER, /* re-read container `container_id` (start, die, rename...) */
        DOCKER_EVENT_NETWORK,   /* re-read the networks; if container_id[0], that container too */
} DockerEventKind;

typedef struct DockerEvent {
        DockerEventKind kind;
        char action[32];                       /* Docker's Action, truncated: for messages */
        char container_id[DOCKER_ID_LEN + 1];  /* "" when none */
        uint64_t time_nsec;                    /* timeNano, 0 when absent */
} DockerEvent;

/* Decode GET /containers/json. -EBADMSG when the answer is not a JSON array of objects,
 * -E2BIG past DOCKER_MAX_ANSWER or DOCKER_MAX_CONTAINERS, -ENOMEM. */
int docker_parse_containers(const void *data, size_t size, DockerInventory *ret);
void docker_inventory_done(DockerInventory *inv);

/* Decode GET /networks. Same errors. */
int docker_parse_networks(const void *data, size_t size, DockerNetworks *ret);
void docker_networks_done(DockerNetworks *nets);

/* Decode one line of GET /events (without its newline). -EBADMSG when it is not an event
 * object, -E2BIG past DOCKER_MAX_EVENT. */
int docker_parse_event(const void *data, size_t size, DockerEvent *ret);

/* Deep copy / free of one container (the daemon keeps them across answers). */
int docker_container_copy(const DockerContainer *c, DockerContainer *ret);
void docker_container_done(DockerContainer *c);

/* The value of label `key`, NULL when the container has none. */
const char *docker_container_label(const DockerContainer *c, const char *key);
bool docker_container_running(const DockerContainer *c);

/* A full Docker id: exactly DOCKER_ID_LEN lowercase hex digits. */
bool docker_id_valid(const char *s);
