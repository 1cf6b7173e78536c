/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Container → policy service (see docker-match.h). Pure string and address comparisons over a
 * decoded container; the policy is read, never changed.
 */
#include "ceredis.h"

#include <sys/socket.h>

#include "docker-match.h"

#define IMAGE_REF_MAX 1024u

typedef struct ImageRef {
        char repo[IMAGE_REF_MAX + 32]; /* canonical: docker.io/library/postgres */
        const char *tag;               /* NULL: none written */
        const char *digest;            /* NULL: none written */
} ImageRef;

/* Split "registry/path/name:tag@digest" and canonicalise the repository the way Docker does:
 * a first component without '.' or ':' (and not "localhost") is a Docker Hub path, and a Hub
 * path of one component is under library/. */
static int image_ref_parse(const char *s, char *buf, size_t size, ImageRef *ret) {
        char *at, *slash, *colon, *first_end;
        const char *prefix = "";

        if (strlen(s) >= size || s[0] == 0)
                return -EINVAL;
        strcpy(buf, s);
        *ret = (ImageRef) {};
        at = strchr(buf, '@');
        if (at) {
                *at = 0;
                ret->digest = at + 1;
        }
        slash = strrchr(buf, '/');
        colon = strrchr(slash ? slash : buf, ':');
        if (colon) {
                *colon = 0;
                ret->tag = colon + 1;
        }
        if (buf[0] == 0)
                return -EINVAL;
        first_end = strchr(buf, '/');
        if (!first_end)
                prefix = "docker.io/library/";
        else if (!memchr(buf, '.', (size_t) (first_end - buf)) &&
                 !memchr(buf, ':', (size_t) (first_end - buf)) &&
                 strncmp(buf, "localhost/", 10) != 0)
                prefix = "docker.io/";
        snprintf(ret->repo, sizeof(ret->repo), "%s%s", prefix, buf);
        /* "docker.io/foo" written by hand is the Hub too, and "index.docker.io" its old name. */
        if (strncmp(ret->repo, "index.docker.io/", 16) == 0)
                memmove(ret->repo, ret->repo + 6, strlen(ret->repo + 6) + 1);
        if (strncmp(ret->repo, "docker.io/", 10) == 0 && !strchr(ret->repo + 10, '/')) {
                char tmp[sizeof(ret->repo)];
                snprintf(tmp, sizeof(tmp), "docker.io/library/%s", ret->repo + 10);
                snprintf(ret->repo, sizeof(ret->repo), "%s", tmp);
        }
        return 0;
}

bool docker_image_matches(const char *pattern, const char *image) {
        char pbuf[IMAGE_REF_MAX + 1], ibuf[IMAGE_REF_MAX + 1];
        ImageRef p, i;

        if (!pattern || !image)
                return false;
        if (image_ref_parse(pattern, pbuf, sizeof(pbuf), &p) < 0 ||
            image_ref_parse(image, ibuf, sizeof(ibuf), &i) < 0)
                return false;
        if (!streq(p.repo, i.repo))
                return false;
        if (p.digest && !streq_ptr(p.digest, i.digest))
                return false;
        /* An image written without tag or digest is ":latest". */
        if (p.tag && !streq(p.tag, i.tag ? i.tag : (i.digest ? "" : "latest")))
                return false;
        return true;
}

static bool cidr_contains(const PolicyCidr *c, int family, const uint8_t *addr) {
        unsigned bits = c->prefix;

        if (c->family != family)
                return false;
        if (memcmp(c->addr.bytes, addr, bits / 8) != 0)
                return false;
        if (bits % 8) {
                uint8_t mask = (uint8_t) (0xffu << (8 - bits % 8));
                if ((c->addr.bytes[bits / 8] & mask) != (addr[bits / 8] & mask))
                        return false;
        }
        return true;
}

static bool service_matches(const PolicyService *s, const DockerContainer *c) {
        const PolicyMatch *m = &s->match;
        const char *v;

        switch (m->kind) {
        case POLICY_MATCH_COMPOSE_SERVICE:
                v = docker_container_label(c, DOCKER_COMPOSE_SERVICE_LABEL);
                return v && streq(v, m->value);
        case POLICY_MATCH_CONTAINER_NAME:
                return c->name && streq(c->name, m->value);
        case POLICY_MATCH_IMAGE:
                return docker_image_matches(m->value, c->image);
        case POLICY_MATCH_LABEL:
                v = docker_container_label(c, m->value);
                return v && streq(v, m->label_value ? m->label_value : "");
        case POLICY_MATCH_CIDR:
                for (size_t a = 0; a < c->n_attachments; a++)
                        for (size_t i = 0; i < m->n_cidrs; i++) {
                                const DockerAttachment *at = &c->attachments[a];
                                if ((at->has_ipv4 &&
                                     cidr_contains(&m->cidrs[i], AF_INET,
                                                   (const uint8_t *) &at->ipv4)) ||
                                    (at->has_ipv6 &&
                                     cidr_contains(&m->cidrs[i], AF_INET6, at->ipv6.s6_addr)))
                                        return true;
                        }
                return false;
        }
        return false;
}

void docker_match_container(const Policy *p, size_t host, const DockerContainer *c,
                            DockerMatch *ret) {
        DockerMatch m = { .service = -1 };

        for (size_t s = 0; s < p->n_services; s++) {
                if (p->services[s].host != host || !service_matches(&p->services[s], c))
                        continue;
                if (m.service < 0)
                        m.service = (ssize_t) s;
                else if (m.n_matched - 1 < DOCKER_MATCH_MAX_ALSO)
                        m.also[m.n_matched - 1] = s;
                m.n_matched++;
        }
        *ret = m;
}
