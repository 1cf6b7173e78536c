/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The Prometheus side of the metrics: a scrape endpoint and the node_exporter textfile.
 *
 * The endpoint is libmicrohttpd with no thread of its own: MHD_USE_EPOLL gives one epoll fd,
 * which sits on the daemon's sd-event loop next to everything else; when it is readable (or
 * MHD's own timeout expires) MHD_run() does the non-blocking work. It binds loopback by
 * default and refuses a wildcard address, because a wildcard includes the public interfaces
 * the policy protects; binding a routable address is the operator's explicit choice. A scrape
 * renders the registry at once (it is small and capped), so there is no shared state to lock.
 */
#include "ceredis.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/stat.h>

#include "sinks.h"

#define METRICS_CONNECTIONS_MAX 16u
#define METRICS_CONNECTION_TIMEOUT_S 10u
#define METRICS_LISTEN_MAX 128u

struct MetricsServer {
        struct MHD_Daemon *mhd;
        sd_event_source *io;
        sd_event_source *timer;
        const Metrics *metrics;
        uint16_t port;
};

int metrics_listen_parse(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len) {
        char host[METRICS_LISTEN_MAX];
        const char *colon, *port_s;
        struct sockaddr_storage ss = {};
        socklen_t len;
        char *end;
        unsigned long port;
        size_t n;

        if (!s || strlen(s) >= sizeof(host))
                return -EINVAL;
        if (s[0] == '[') {
                const char *close = strchr(s, ']');
                if (!close || close[1] != ':')
                        return -EINVAL;
                n = (size_t) (close - s - 1);
                memcpy(host, s + 1, n);
                host[n] = 0;
                port_s = close + 2;
        } else {
                colon = strrchr(s, ':');
                if (!colon)
                        return -EINVAL;
                n = (size_t) (colon - s);
                memcpy(host, s, n);
                host[n] = 0;
                port_s = colon + 1;
        }
        if (!*port_s)
                return -EINVAL;
        errno = 0;
        port = strtoul(port_s, &end, 10);
        if (errno || *end || port > 65535)
                return -EINVAL;

        if (s[0] != '[') {
                struct sockaddr_in *in = (struct sockaddr_in *) &ss;
                if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
                        return -EINVAL;
                if (in->sin_addr.s_addr == htonl(INADDR_ANY))
                        return -EADDRNOTAVAIL;
                in->sin_family = AF_INET;
                in->sin_port = htons((uint16_t) port);
                len = sizeof(*in);
        } else {
                struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &ss;
                if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
                        return -EINVAL;
                if (IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr))
                        return -EADDRNOTAVAIL;
                in6->sin6_family = AF_INET6;
                in6->sin6_port = htons((uint16_t) port);
                len = sizeof(*in6);
        }
        *ret = ss;
        *ret_len = len;
        return 0;
}

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *text,
                              const char *type) {
        struct MHD_Response *resp;
        enum MHD_Result r;

        resp = MHD_create_response_from_buffer(strlen(text), (void *) text,
                                               MHD_RESPMEM_PERSISTENT);
        if (!resp)
                return MHD_NO;
        (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
        r = MHD_queue_response(c, status, resp);
        MHD_destroy_response(resp);
        return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
        MetricsServer *srv = cls;
        struct MHD_Response *resp;
        char *text = NULL;
        size_t len = 0;
        enum MHD_Result r;

        if (!streq(method, MHD_HTTP_METHOD_GET) && !streq(method, MHD_HTTP_METHOD_HEAD))
                return answer(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n",
                              "text/plain");
        /* A GET has no body; anything uploaded is ignored. */
        if (*upload_data_size) {
                *upload_data_size = 0;
                return MHD_YES;
        }
        if (!streq(url, "/metrics"))
                return answer(c, MHD_HTTP_NOT_FOUND, "not found; try /metrics\n",
                              "text/plain");
        if (metrics_render(srv->metrics, &text, &len) < 0)
                return answer(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n",
                              "text/plain");
        resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
        if (!resp) {
                free(text);
                return MHD_NO;
        }
        (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                       METRICS_CONTENT_TYPE);
        r = MHD_queue_response(c, MHD_HTTP_OK, resp);
        MHD_destroy_response(resp);
        return r;
}

/* Arm the timer to MHD's next deadline (connection timeouts), or off. */
static void server_rearm(MetricsServer *srv) {
        MHD_UNSIGNED_LONG_LONG ms;
        uint64_t now;

        if (MHD_get_timeout(srv->mhd, &ms) != MHD_YES) {
                (void) sd_event_source_set_enabled(srv->timer, SD_EVENT_OFF);
                return;
        }
        if (sd_event_now(sd_event_source_get_event(srv->timer), CLOCK_MONOTONIC, &now) < 0)
                return;
        (void) sd_event_source_set_time(srv->timer, now + (uint64_t) ms * 1000u);
        (void) sd_event_source_set_enabled(srv->timer, SD_EVENT_ONESHOT);
}

static int on_mhd_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        MetricsServer *srv = userdata;

        (void) MHD_run(srv->mhd);
        server_rearm(srv);
        return 0;
}

static int on_mhd_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        return on_mhd_io(NULL, -1, 0, userdata);
}

int metrics_server_new(sd_event *e, const char *listen, const Metrics *m,
                       MetricsServer **ret) {
        MetricsServer *srv;
        struct sockaddr_storage ss;
        socklen_t sl;
        const union MHD_DaemonInfo *info;
        int k;

        k = metrics_listen_parse(listen, &ss, &sl);
        if (k < 0)
                return k;
        srv = calloc(1, sizeof(*srv));
        if (!srv)
                return -ENOMEM;
        srv->metrics = m;
        /* No MHD_USE_INTERNAL_POLLING_THREAD: MHD only runs when the loop calls MHD_run(). */
        srv->mhd = MHD_start_daemon(
                MHD_USE_EPOLL | (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
                0, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &ss,
                MHD_OPTION_CONNECTION_LIMIT, (unsigned) METRICS_CONNECTIONS_MAX,
                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) METRICS_CONNECTION_TIMEOUT_S,
                MHD_OPTION_END);
        if (!srv->mhd) {
                k = errno > 0 ? -errno : -EADDRINUSE;
                free(srv);
                return k;
        }
        info = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_BIND_PORT);
        srv->port = info ? info->port : 0;
        info = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_EPOLL_FD);
        if (!info) {
                metrics_server_free(srv);
                return -EIO;
        }
        k = sd_event_add_io(e, &srv->io, info->epoll_fd, EPOLLIN, on_mhd_io, srv);
        if (k >= 0)
                k = sd_event_add_time(e, &srv->timer, CLOCK_MONOTONIC, UINT64_MAX, 0,
                                      on_mhd_timer, srv);
        if (k < 0) {
                metrics_server_free(srv);
                return k;
        }
        (void) sd_event_source_set_enabled(srv->timer, SD_EVENT_OFF);
        *ret = srv;
        return 0;
}

void metrics_server_free(MetricsServer *srv) {
        if (!srv)
                return;
        sd_event_source_disable_unref(srv->io);
        sd_event_source_disable_unref(srv->timer);
        if (srv->mhd)
                MHD_stop_daemon(srv->mhd);
        free(srv);
}

uint16_t metrics_server_port(const MetricsServer *srv) {
        return srv->port;
}

int metrics_textfile_write(const Metrics *m, const char *dir) {
        _cleanup_free_ char *text = NULL, *tmp = NULL, *path = NULL;
        _cleanup_close_ int fd = -1;
        size_t len, done = 0;
        int k;

        k = metrics_render(m, &text, &len);
        if (k < 0)
                return k;
        /* node_exporter reads *.prom only: the temp name must not end in .prom, and it lives in
         * the same directory so that rename() is atomic. */
        if (asprintf(&tmp, "%s/.ceredis.prom.XXXXXX", dir) < 0 ||
            asprintf(&path, "%s/ceredis.prom", dir) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        while (done < len) {
                ssize_t l = write(fd, text + done, len - done);
                if (l < 0) {
                        if (errno == EINTR)
                                continue;
                        k = negative_errno();
                        goto fail;
                }
                done += (size_t) l;
        }
        if (fchmod(fd, 0644) < 0 || fsync(fd) < 0 || rename(tmp, path) < 0) {
                k = negative_errno();
                goto fail;
        }
        return 0;
fail:
        (void) unlink(tmp);
        return k;
}
