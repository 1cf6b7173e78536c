/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The ruleset model: what the agent installs in nf_tables for one host, compiled from the
 * policy model by a pure function. Classification is done with sets and verdict maps so that
 * the per-packet cost does not grow with the number of services or flows; a container coming
 * or going changes set elements, not rules.
 *
 * The same model is printed as an nft script (`ceredisctl policy compile`) and turned into
 * one libnftnl batch (nft-batch.c); both must describe the same ruleset.
 */
#pragma once

#include "ceredis.h"
#include "policy.h"

#define RULESET_TABLE "ceredis"           /* table inet ceredis */
#define RULESET_NFLOG_GROUP_DEFAULT 4242u /* the group the watcher reads */

/* Runtime identity of services: which addresses a service has right now. Filled from Docker
 * (containers), from the policy (cidr matches, peer hosts) or from a static file. */
typedef struct Endpoints Endpoints;

int endpoints_new(Endpoints **ret);
void endpoints_free(Endpoints *e);
DEFINE_TRIVIAL_CLEANUP_FUNC(Endpoints *, endpoints_free);
/* Add one address of service `name` (an address or CIDR). */
int endpoints_add(Endpoints *e, const char *service, const PolicyCidr *addr);
/* Load a static endpoints file: JSON object { "service": ["ADDR[/PREFIX]", ...], ... }. */
int endpoints_load_json(Endpoints *e, const char *path, char *err, size_t err_size);

typedef struct RulesetOptions {
        const char *host;     /* host name in the policy; NULL: the policy's only host */
        uint16_t nflog_group; /* 0: RULESET_NFLOG_GROUP_DEFAULT */
} RulesetOptions;

typedef struct Ruleset Ruleset;

/* Compile the policy for one host. Pure: no I/O. On failure fills `err` (what and where). */
int ruleset_compile(const Policy *p, const Endpoints *e, const RulesetOptions *o, Ruleset **ret,
                    char *err, size_t err_size);
void ruleset_free(Ruleset *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(Ruleset *, ruleset_free);

/* Print the ruleset as an nft script accepted by `nft -f` (it replaces the agent's table). */
int ruleset_format_nft(const Ruleset *r, FILE *f);
