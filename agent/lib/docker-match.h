/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Which policy service a container is (SPEC section 3, `match`): by Compose service label,
 * container name, image (with or without a tag or digest), label key=value, or an address in a
 * CIDR. Pure. A container may match several services: the first in file order wins and the
 * others are reported; a container that matches none is untrusted: it gets no address in any
 * allow set, so it reaches no private service and no private service reaches it.
 */
#pragma once

#include "ceredis.h"
#include "docker-api.h"
#include "policy.h"

#define DOCKER_COMPOSE_SERVICE_LABEL "com.docker.compose.service"
#define DOCKER_COMPOSE_PROJECT_LABEL "com.docker.compose.project"
#define DOCKER_MATCH_MAX_ALSO 8u

typedef struct DockerMatch {
        ssize_t service;                      /* index into Policy.services; -1: untrusted */
        size_t n_matched;                     /* services that matched (> 1: ambiguous) */
        size_t also[DOCKER_MATCH_MAX_ALSO];   /* the next ones, in file order (first few) */
} DockerMatch;

/* Match `c` against the services of host `host` (index into Policy.hosts). */
void docker_match_container(const Policy *p, size_t host, const DockerContainer *c,
                            DockerMatch *ret);

/* Does image reference `image` (as Docker reports it) match `pattern` (from a policy)?
 * A pattern without a tag or digest matches every tag and digest of that repository; one
 * with a tag or digest only that one. "docker.io/" and "docker.io/library/" are implied. */
bool docker_image_matches(const char *pattern, const char *image);
