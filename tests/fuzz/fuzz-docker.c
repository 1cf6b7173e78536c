/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz the Docker Engine API decoders with hostile answers. The first byte picks the decoder:
 *   0: GET /containers/json (then every decoded container is copied and matched against a
 *      small policy, so the matcher sees whatever the decoder lets through);
 *   1: GET /networks;
 *   2: the rest split at newlines, each line one /events message.
 * The corpus starts from real answers of the testbed's dockerd. Whatever the input: no crash,
 * no leak, every decoded id valid.
 */
#include "ceredis.h"

#include "docker-api.h"
#include "docker-match.h"
#include "policy.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static Policy *policy;

static const char policy_text[] =
        "version: 1\n"
        "mode: enforce\n"
        "hosts:\n"
        "  h: { public_interfaces: [eth0] }\n"
        "zones:\n"
        "  dmz: { public: true }\n"
        "  private: { public: false }\n"
        "services:\n"
        "  a: { zone: dmz, host: h, match: { compose_service: proxy }, ports: [443] }\n"
        "  b: { zone: private, host: h, match: { container_name: ceredis_postgres_1 }, ports: [5432] }\n"
        "  c: { zone: private, host: h, match: { image: \"ollama/ollama\" }, ports: [11434] }\n"
        "  d: { zone: private, host: h, match: { label: \"org.ceredis.testbed.wait-tcp=8100\" }, ports: [8100] }\n"
        "  e: { zone: private, host: h, match: { cidr: 172.19.0.0/16 }, ports: [1] }\n";

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        PolicyError err;

        if (policy_parse("fuzz.yaml", policy_text, sizeof(policy_text) - 1, &policy, &err) < 0)
                abort();
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;
        switch (data[0] % 3) {
        case 0: {
                DockerInventory inv = {};

                if (docker_parse_containers(data + 1, size - 1, &inv) < 0)
                        break;
                for (size_t i = 0; i < inv.n_containers; i++) {
                        DockerContainer copy;
                        DockerMatch m;

                        if (!docker_id_valid(inv.containers[i].id))
                                abort();
                        docker_match_container(policy, 0, &inv.containers[i], &m);
                        if (m.service >= (ssize_t) policy->n_services)
                                abort();
                        if (docker_container_copy(&inv.containers[i], &copy) == 0)
                                docker_container_done(&copy);
                }
                docker_inventory_done(&inv);
                break;
        }
        case 1: {
                DockerNetworks nets = {};

                if (docker_parse_networks(data + 1, size - 1, &nets) == 0)
                        docker_networks_done(&nets);
                break;
        }
        default:
                for (size_t i = 1; i < size;) {
                        const uint8_t *nl = memchr(data + i, '\n', size - i);
                        size_t len = nl ? (size_t) (nl - (data + i)) : size - i;
                        DockerEvent ev;

                        if (docker_parse_event(data + i, len, &ev) == 0 && ev.container_id[0] &&
                            !docker_id_valid(ev.container_id))
                                abort();
                        i += len + 1;
                }
        }
        return 0;
}
