/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Docker Engine API decoders and the container -> service matcher: real answers captured from
 * the testbed's dockerd (tests/data/docker/), hand-made edge cases, and hostile inputs that
 * must be refused (never crash, never half-parse).
 */
#include "ceredis.h"

#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include "docker-api.h"
#include "docker-match.h"
#include "policy.h"
#include "state.h"

static char *read_data(const char *name, size_t *ret_size) {
        char path[512];
        char *buf = NULL;

        snprintf(path, sizeof(path), "%s/tests/data/docker/%s", SRCDIR, name);
        assert_int_equal(state_read_file(path, DOCKER_MAX_ANSWER, &buf, ret_size), 0);
        return buf;
}

static const DockerContainer *by_service(const DockerInventory *inv, const char *svc) {
        for (size_t i = 0; i < inv->n_containers; i++) {
                const char *v = docker_container_label(&inv->containers[i],
                                                       DOCKER_COMPOSE_SERVICE_LABEL);
                if (v && streq(v, svc))
                        return &inv->containers[i];
        }
        return NULL;
}

static void test_real_containers(void **state) {
        _cleanup_free_ char *data = NULL;
        DockerInventory inv = {};
        const DockerContainer *c;
        size_t size;
        char buf[INET_ADDRSTRLEN];

        data = read_data("containers.json", &size);
        assert_int_equal(docker_parse_containers(data, size, &inv), 0);
        assert_int_equal(inv.n_containers, 11);
        assert_int_equal(inv.n_refused, 0);

        c = by_service(&inv, "postgres");
        assert_non_null(c);
        assert_true(docker_id_valid(c->id));
        assert_true(docker_container_running(c));
        assert_string_equal(c->name, "ceredis_postgres_1");
        assert_int_equal(c->n_attachments, 1);
        assert_true(c->attachments[0].has_ipv4);
        assert_false(c->attachments[0].has_ipv6);
        assert_non_null(inet_ntop(AF_INET, &c->attachments[0].ipv4, buf, sizeof(buf)));
        assert_int_equal(strncmp(buf, "172.19.", 7), 0);
        /* "5432:5432" is listed for 0.0.0.0 and for :: */
        assert_int_equal(c->n_ports, 2);
        for (size_t i = 0; i < 2; i++) {
                assert_int_equal(c->ports[i].host_port, 5432);
                assert_int_equal(c->ports[i].container_port, 5432);
                assert_int_equal(c->ports[i].proto, IPPROTO_TCP);
        }
        assert_int_not_equal(c->ports[0].host_family, c->ports[1].host_family);

        c = by_service(&inv, "api");
        assert_non_null(c);
        assert_int_equal(c->n_attachments, 2); /* dmz and private */

        c = by_service(&inv, "ollama");
        assert_non_null(c);
        assert_string_equal(c->image, "ollama/ollama:latest");
        docker_inventory_done(&inv);
}

static void test_real_networks_and_one(void **state) {
        _cleanup_free_ char *nets_data = NULL, *one = NULL;
        DockerNetworks nets = {};
        DockerInventory inv = {};
        size_t size, n_bridges = 0;

        nets_data = read_data("networks.json", &size);
        assert_int_equal(docker_parse_networks(nets_data, size, &nets), 0);
        assert_int_equal(nets.n_refused, 0);
        for (size_t i = 0; i < nets.n_networks; i++)
                if (streq(nets.networks[i].driver, "bridge")) {
                        n_bridges++;
                        assert_int_equal(nets.networks[i].n_subnets, 1);
                        assert_int_equal(nets.networks[i].subnets[0].family, AF_INET);
                        assert_int_equal(nets.networks[i].subnets[0].prefix, 16);
                }
        assert_int_equal(n_bridges, 3);
        docker_networks_done(&nets);

        one = read_data("container-one.json", &size);
        assert_int_equal(docker_parse_containers(one, size, &inv), 0);
        assert_int_equal(inv.n_containers, 1);
        assert_string_equal(inv.containers[0].name, "ceredis_ralph_1");
        docker_inventory_done(&inv);
}

static void test_real_events(void **state) {
        _cleanup_free_ char *data = NULL;
        size_t size, n_container = 0, n_network = 0, n_lines = 0;

        data = read_data("events.jsonl", &size);
        for (char *line = data, *nl; line < data + size; line = nl + 1) {
                DockerEvent ev;

                nl = strchr(line, '\n');
                if (!nl)
                        nl = data + size;
                if (nl == line)
                        continue;
                n_lines++;
                assert_int_equal(docker_parse_event(line, (size_t) (nl - line), &ev), 0);
                if (ev.kind == DOCKER_EVENT_CONTAINER)
                        n_container++;
                if (ev.kind == DOCKER_EVENT_NETWORK) {
                        n_network++;
                        assert_true(docker_id_valid(ev.container_id));
                }
                assert_true(ev.time_nsec > 0);
        }
        /* restart (kill, die, stop, start, restart) + disconnect/connect of two containers */
        assert_true(n_lines >= 8);
        assert_true(n_container >= 4);
        assert_true(n_network >= 3);
}

#define ID_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define ID_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static int parse_str(const char *s, DockerInventory *inv) {
        return docker_parse_containers(s, strlen(s), inv);
}

static void test_hostile(void **state) {
        DockerInventory inv = {};
        DockerEvent ev;
        char *big;

        assert_int_equal(parse_str("", &inv), -EBADMSG);
        assert_int_equal(parse_str("{}", &inv), -EBADMSG);
        assert_int_equal(parse_str("[1]", &inv), -EBADMSG);
        assert_int_equal(parse_str("[{\"Id\":\"a\",\"Id\":\"b\"}]", &inv), -EBADMSG);
        /* A bad container is refused alone: the good one survives. */
        assert_int_equal(parse_str("[{\"Id\":\"" ID_A "\",\"Names\":[\"/ok\"],\"State\":\"running\"},"
                                   "{\"Id\":\"" ID_B "\",\"Names\":[\"/bad\"],"
                                   "\"Ports\":[{\"PrivatePort\":70000,\"Type\":\"tcp\"}]},"
                                   "{\"Id\":\"not-hex\",\"Names\":[\"/x\"]},"
                                   "{\"Id\":\"" ID_B "\",\"Names\":[\"/y\"],"
                                   "\"NetworkSettings\":{\"Networks\":{\"n\":{\"IPAddress\":\"1.2.3\"}}}},"
                                   "{\"Id\":\"" ID_B "\",\"Names\":[\"/z\"],\"Labels\":{\"k\":1}}]",
                                   &inv),
                         0);
        assert_int_equal(inv.n_containers, 1);
        assert_string_equal(inv.containers[0].name, "ok");
        assert_int_equal(inv.n_refused, 4);
        assert_string_equal(inv.refused_id, ID_B);
        docker_inventory_done(&inv);

        /* Over the caps. */
        big = malloc(DOCKER_MAX_ANSWER + 2);
        assert_non_null(big);
        memset(big, ' ', DOCKER_MAX_ANSWER + 1);
        big[0] = '[';
        big[DOCKER_MAX_ANSWER] = ']';
        assert_int_equal(docker_parse_containers(big, DOCKER_MAX_ANSWER + 1, &inv), -E2BIG);
        free(big);
        {
                char label[DOCKER_MAX_LABEL_VALUE + 200];
                int n = snprintf(label, sizeof(label),
                                 "[{\"Id\":\"" ID_A "\",\"Names\":[\"/l\"],\"Labels\":{\"k\":\"");
                memset(label + n, 'x', DOCKER_MAX_LABEL_VALUE + 1);
                strcpy(label + n + DOCKER_MAX_LABEL_VALUE + 1, "\"}}]");
                assert_int_equal(parse_str(label, &inv), 0);
                assert_int_equal(inv.n_containers, 0);
                assert_int_equal(inv.n_refused, 1);
                docker_inventory_done(&inv);
        }
        /* A NUL inside a string would make two names compare equal: jansson refuses it. */
        assert_int_equal(parse_str("[{\"Id\":\"" ID_A "\",\"Names\":[\"/a\\u0000b\"]}]", &inv),
                         -EBADMSG);

        assert_int_equal(docker_parse_event("{}", 2, &ev), -EBADMSG);
        assert_int_equal(docker_parse_event("[]", 2, &ev), -EBADMSG);
        {
                const char *e = "{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"../x\"}}";
                assert_int_equal(docker_parse_event(e, strlen(e), &ev), -EBADMSG);
                e = "{\"Type\":\"container\",\"Action\":\"exec_start: sh\",\"Actor\":{\"ID\":\"x\"}}";
                assert_int_equal(docker_parse_event(e, strlen(e), &ev), 0);
                assert_int_equal(ev.kind, DOCKER_EVENT_IGNORE);
                e = "{\"Type\":\"network\",\"Action\":\"connect\",\"Actor\":{\"ID\":\"n\","
                    "\"Attributes\":{\"container\":\"" ID_A "\"}}}";
                assert_int_equal(docker_parse_event(e, strlen(e), &ev), 0);
                assert_int_equal(ev.kind, DOCKER_EVENT_NETWORK);
                assert_string_equal(ev.container_id, ID_A);
        }
}

static void test_ipv6_and_ports(void **state) {
        DockerInventory inv = {};
        const DockerContainer *c;

        assert_int_equal(parse_str("[{\"Id\":\"" ID_A "\",\"Names\":[\"/v6\"],\"State\":\"running\","
                                   "\"Ports\":[{\"PrivatePort\":53,\"Type\":\"udp\"},"
                                   "{\"IP\":\"::\",\"PrivatePort\":80,\"PublicPort\":8080,\"Type\":\"tcp\"}],"
                                   "\"NetworkSettings\":{\"Networks\":{\"n6\":{\"IPAddress\":\"\","
                                   "\"GlobalIPv6Address\":\"fd00:1::5\",\"NetworkID\":\"" ID_B "\"}}}}]",
                                   &inv),
                         0);
        assert_int_equal(inv.n_containers, 1);
        c = &inv.containers[0];
        assert_false(c->attachments[0].has_ipv4);
        assert_true(c->attachments[0].has_ipv6);
        assert_string_equal(c->attachments[0].network_id, ID_B);
        assert_int_equal(c->ports[0].host_port, 0);
        assert_int_equal(c->ports[0].proto, IPPROTO_UDP);
        assert_int_equal(c->ports[1].host_family, AF_INET6);
        assert_int_equal(c->ports[1].host_port, 8080);
        docker_inventory_done(&inv);
}

static void test_image_matches(void **state) {
        assert_true(docker_image_matches("ollama/ollama", "ollama/ollama:latest"));
        assert_true(docker_image_matches("ollama/ollama", "ollama/ollama"));
        assert_true(docker_image_matches("ollama/ollama", "docker.io/ollama/ollama:0.1.2"));
        assert_true(docker_image_matches("ollama/ollama:latest", "ollama/ollama"));
        assert_false(docker_image_matches("ollama/ollama:0.1", "ollama/ollama:latest"));
        assert_true(docker_image_matches("postgres", "docker.io/library/postgres:16"));
        assert_true(docker_image_matches("postgres:16", "library/postgres:16"));
        assert_false(docker_image_matches("postgres", "bitnami/postgres"));
        assert_false(docker_image_matches("ollama/ollama", "ollama/ollama-evil"));
        assert_false(docker_image_matches("ollama", "ollama/ollama"));
        assert_true(docker_image_matches("registry.local:5000/ai/tutor", "registry.local:5000/ai/tutor:3"));
        assert_false(docker_image_matches("registry.local:5000/ai/tutor", "registry.local/ai/tutor"));
        assert_true(docker_image_matches("x/y@sha256:abc", "x/y:1@sha256:abc"));
        assert_false(docker_image_matches("x/y@sha256:abc", "x/y:1@sha256:abd"));
        assert_false(docker_image_matches("x/y", "sha256:0123"));
        assert_false(docker_image_matches("x/y", ""));
}

static const char policy_text[] =
        "version: 1\n"
        "mode: enforce\n"
        "hosts:\n"
        "  h1: { public_interfaces: [eth0] }\n"
        "  h2: { public_interfaces: [eth0] }\n"
        "zones:\n"
        "  dmz: { public: true }\n"
        "  private: { public: false }\n"
        "services:\n"
        "  web: { zone: dmz, host: h1, match: { compose_service: web }, ports: [80] }\n"
        "  byname: { zone: private, host: h1, match: { container_name: db-main }, ports: [5432] }\n"
        "  ai: { zone: private, host: h1, match: { image: \"ollama/ollama\" }, ports: [11434] }\n"
        "  labelled: { zone: private, host: h1, match: { label: \"org.x.role=db\" }, ports: [5432] }\n"
        "  net: { zone: private, host: h1, match: { cidr: 10.9.0.0/16 }, ports: [22] }\n"
        "  elsewhere: { zone: private, host: h2, match: { compose_service: other }, ports: [1] }\n"
        "flows:\n"
        "  - { from: web, to: byname }\n";

static void container(DockerContainer *c, const char *name, const char *image, const char *k1,
                      const char *v1, const char *ip) {
        static DockerLabel labels[2];
        static DockerAttachment at;

        *c = (DockerContainer) { .name = (char *) name, .image = (char *) image,
                                 .state = (char *) "running" };
        if (k1) {
                labels[0] = (DockerLabel) { .key = (char *) k1, .value = (char *) v1 };
                c->labels = labels;
                c->n_labels = 1;
        }
        if (ip) {
                at = (DockerAttachment) { .network = (char *) "n", .has_ipv4 = true };
                assert_int_equal(inet_pton(AF_INET, ip, &at.ipv4), 1);
                c->attachments = &at;
                c->n_attachments = 1;
        }
}

static ssize_t svc(const Policy *p, const char *name) {
        return policy_find_service(p, name);
}

static void test_match(void **state) {
        _cleanup_(policy_freep) Policy *p = NULL;
        PolicyError err = {};
        DockerContainer c;
        DockerMatch m;

        assert_int_equal(policy_parse("t.yaml", policy_text, strlen(policy_text), &p, &err), 0);

        container(&c, "proj_web_1", "nginx", DOCKER_COMPOSE_SERVICE_LABEL, "web", NULL);
        docker_match_container(p, 0, &c, &m);
        assert_int_equal(m.service, svc(p, "web"));
        assert_int_equal(m.n_matched, 1);

        container(&c, "db-main", "postgres:16", NULL, NULL, NULL);
        docker_match_container(p, 0, &c, &m);
        assert_int_equal(m.service, svc(p, "byname"));

        container(&c, "x", "ollama/ollama:0.3", NULL, NULL, NULL);
        docker_match_container(p, 0, &c, &m);
        assert_int_equal(m.service, svc(p, "ai"));

        container(&c, "y", "busybox", "org.x.role", "db", "10.9.1.2");
        docker_match_container(p, 0, &c, &m);
        /* label and cidr both match: the first in file order wins, the other is reported */
        assert_int_equal(m.service, svc(p, "labelled"));
        assert_int_equal(m.n_matched, 2);
        assert_int_equal(m.also[0], (size_t) svc(p, "net"));

        container(&c, "y", "busybox", "org.x.role", "dbx", "10.8.1.2");
        docker_match_container(p, 0, &c, &m);
        assert_int_equal(m.service, -1); /* untrusted */
        assert_int_equal(m.n_matched, 0);

        /* A service of another host never claims a container here. */
        container(&c, "z", "busybox", DOCKER_COMPOSE_SERVICE_LABEL, "other", NULL);
        docker_match_container(p, 0, &c, &m);
        assert_int_equal(m.service, -1);
        docker_match_container(p, 1, &c, &m);
        assert_int_equal(m.service, svc(p, "elsewhere"));
}

static void test_copy(void **state) {
        _cleanup_free_ char *data = NULL;
        DockerInventory inv = {};
        DockerContainer copy;
        size_t size;

        data = read_data("containers.json", &size);
        assert_int_equal(docker_parse_containers(data, size, &inv), 0);
        for (size_t i = 0; i < inv.n_containers; i++) {
                assert_int_equal(docker_container_copy(&inv.containers[i], &copy), 0);
                assert_string_equal(copy.name, inv.containers[i].name);
                assert_int_equal(copy.n_labels, inv.containers[i].n_labels);
                assert_int_equal(copy.n_ports, inv.containers[i].n_ports);
                for (size_t j = 0; j < copy.n_attachments; j++) {
                        assert_string_equal(copy.attachments[j].network,
                                            inv.containers[i].attachments[j].network);
                        assert_memory_equal(&copy.attachments[j].ipv4,
                                            &inv.containers[i].attachments[j].ipv4, 4);
                }
                docker_container_done(&copy);
        }
        docker_inventory_done(&inv);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_real_containers),
                cmocka_unit_test(test_real_networks_and_one),
                cmocka_unit_test(test_real_events),
                cmocka_unit_test(test_hostile),
                cmocka_unit_test(test_ipv6_and_ports),
                cmocka_unit_test(test_image_matches),
                cmocka_unit_test(test_match),
                cmocka_unit_test(test_copy),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
