/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The Docker probe of the audit: the running containers (GET /containers/json over the
 * Engine API socket with libcurl, decoded by docker-api.c) for their published ports, and the
 * daemon's networking settings for the CIS Docker Benchmark items (icc, iptables,
 * userland-proxy). Docker's API does not report those settings, so they are read the way the
 * benchmark's own audit procedure reads them: dockerd's command line and its daemon.json.
 * The daemon's pid is the peer of its socket (SO_PEERCRED), not a guess by process name.
 */
#include "ceredis.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "probes.h"

#define DOCKER_PROBE_TIMEOUT_MS 10000L

/* Go's flag package: "--name", "--name=true|false"; "-name" works too. */
static int flag_bool(const char *arg, const char *name, bool *ret) {
        size_t n = strlen(name);

        while (*arg == '-')
                arg++;
        if (strncmp(arg, name, n) != 0)
                return 0;
        if (arg[n] == 0) {
                *ret = true;
                return 1;
        }
        if (arg[n] != '=')
                return 0;
        if (streq(arg + n + 1, "true") || streq(arg + n + 1, "1"))
                *ret = true;
        else if (streq(arg + n + 1, "false") || streq(arg + n + 1, "0"))
                *ret = false;
        else
                return -EBADMSG;
        return 1;
}

int probe_docker_config_path(const char *cmdline, size_t len, char *buf, size_t size) {
        const char *path = "/etc/docker/daemon.json";

        for (size_t i = 0; i < len;) {
                const char *arg = cmdline + i, *next;
                size_t alen = strnlen(arg, len - i);

                next = i + alen + 1 < len ? arg + alen + 1 : NULL;
                if (streq(arg, "--config-file") && next)
                        path = next;
                else if (strncmp(arg, "--config-file=", 14) == 0)
                        path = arg + 14;
                i += alen + 1;
        }
        if ((size_t) snprintf(buf, size, "%s", path) >= size)
                return -ENAMETOOLONG;
        return 0;
}

int probe_docker_settings_parse(const char *cmdline, size_t len, const char *daemon_json,
                                size_t daemon_json_len, ControlDockerInfo *ret) {
        static const char *const names[] = { "icc", "iptables", "userland-proxy" };
        bool values[3] = { true, true, true };

        if (len > PROBE_MAX_CMDLINE || daemon_json_len > PROBE_MAX_DAEMON_JSON)
                return -E2BIG;
        if (daemon_json && daemon_json_len > 0) {
                json_t *o = json_loadb(daemon_json, daemon_json_len, JSON_REJECT_DUPLICATES, NULL);
                if (!json_is_object(o)) {
                        json_decref(o);
                        return -EBADMSG;
                }
                for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                        json_t *v = json_object_get(o, names[i]);
                        if (!v)
                                continue;
                        if (!json_is_boolean(v)) {
                                json_decref(o);
                                return -EBADMSG;
                        }
                        values[i] = json_is_true(v);
                }
                json_decref(o);
        }
        for (size_t i = 0; i < len;) {
                const char *arg = cmdline + i;
                size_t alen = strnlen(arg, len - i);

                for (size_t j = 0; j < ELEMENTSOF(names); j++) {
                        int k = flag_bool(arg, names[j], &values[j]);
                        if (k < 0)
                                return k;
                }
                i += alen + 1;
        }
        *ret = (ControlDockerInfo) {
                .icc_known = true, .icc = values[0],
                .iptables_known = true, .iptables = values[1],
                .userland_proxy_known = true, .userland_proxy = values[2],
        };
        return 0;
}

typedef struct Buf {
        char *data;
        size_t size;
        bool too_big;
} Buf;

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userdata) {
        Buf *b = userdata;
        size_t n = size * nmemb;
        char *p;

        if (b->size + n > DOCKER_MAX_ANSWER) {
                b->too_big = true;
                return 0;
        }
        p = realloc(b->data, b->size + n + 1);
        if (!p)
                return 0;
        memcpy(p + b->size, ptr, n);
        b->data = p;
        b->size += n;
        b->data[b->size] = 0;
        return n;
}

static int http_get(const char *socket_path, const char *base, const char *path, Buf *ret, char *err,
                    size_t err_size) {
        CURL *c = curl_easy_init();
        char url[512];
        long code = 0;
        CURLcode cc;

        if (!c)
                return -ENOMEM;
        snprintf(url, sizeof(url), "%s%s", base, path);
        curl_easy_setopt(c, CURLOPT_URL, url);
        if (socket_path)
                curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, socket_path);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, DOCKER_PROBE_TIMEOUT_MS);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, ret);
        cc = curl_easy_perform(c);
        if (cc == CURLE_OK)
                curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_cleanup(c);
        if (cc != CURLE_OK) {
                snprintf(err, err_size, "GET %s: %s", path, ret->too_big ? "answer too large" : curl_easy_strerror(cc));
                return ret->too_big ? -E2BIG : -ECONNREFUSED;
        }
        if (code != 200) {
                snprintf(err, err_size, "GET %s: HTTP %ld", path, code);
                return -EPROTO;
        }
        return 0;
}

/* The pid of whoever serves the socket. */
static int socket_peer_pid(const char *path, pid_t *ret) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -1;
        struct ucred cred;
        socklen_t l = sizeof(cred);

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ||
            getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &l) < 0)
                return negative_errno();
        *ret = cred.pid;
        return 0;
}

static int read_small(const char *path, size_t max, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        _cleanup_free_ char *b = NULL;
        size_t n = 0;

        if (fd < 0)
                return negative_errno();
        b = malloc(max + 1);
        if (!b)
                return -ENOMEM;
        for (;;) {
                ssize_t r = read(fd, b + n, max - n);
                if (r < 0)
                        return negative_errno();
                if (r == 0)
                        break;
                n += (size_t) r;
                if (n == max)
                        return -E2BIG;
        }
        b[n] = 0;
        *ret = TAKE_PTR(b);
        *ret_len = n;
        return 0;
}

static void probe_settings(const char *socket_path, ControlDockerInfo *info) {
        _cleanup_free_ char *cmdline = NULL, *json = NULL;
        size_t clen = 0, jlen = 0;
        char path[PATH_MAX];
        pid_t pid;

        *info = (ControlDockerInfo) {};
        if (!socket_path || socket_peer_pid(socket_path, &pid) < 0)
                return;
        snprintf(path, sizeof(path), "/proc/%d/cmdline", (int) pid);
        if (read_small(path, PROBE_MAX_CMDLINE, &cmdline, &clen) < 0)
                return;
        if (probe_docker_config_path(cmdline, clen, path, sizeof(path)) >= 0 &&
            read_small(path, PROBE_MAX_DAEMON_JSON, &json, &jlen) < 0)
                jlen = 0; /* no daemon.json: dockerd's defaults */
        (void) probe_docker_settings_parse(cmdline, clen, jlen ? json : NULL, jlen, info);
}

int probe_docker(const char *url, DockerInventory *ret_inv, ControlDockerInfo *ret_info, char *err,
                 size_t err_size) {
        const char *socket_path = NULL, *base;
        Buf b = {};
        int k;

        if (strncmp(url, "unix://", 7) == 0) {
                socket_path = url + 7;
                base = "http://localhost";
        } else if (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0)
                base = url;
        else {
                snprintf(err, err_size, "unsupported Docker host %s (expected unix:// or http(s)://)", url);
                return -EINVAL;
        }
        k = http_get(socket_path, base, "/containers/json", &b, err, err_size);
        if (k >= 0) {
                k = docker_parse_containers(b.data, b.size, ret_inv);
                if (k < 0)
                        snprintf(err, err_size, "GET /containers/json: %s", strerror(-k));
        }
        free(b.data);
        if (k < 0)
                return k;
        probe_settings(socket_path, ret_info);
        return 0;
}
