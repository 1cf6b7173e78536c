/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The probes' pure parsers: sock_diag dumps built message by message (listeners kept, other
 * sockets skipped, malformed buffers and kernel errors refused), a real dump of this process's
 * own listening sockets, and dockerd's settings from its command line and daemon.json.
 */
#include "ceredis.h"

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include "probes.h"

typedef struct Buf {
        _Alignas(8) uint8_t data[4096];
        size_t len;
} Buf;

static void add_sock(Buf *b, int family, uint8_t state, const char *src, uint16_t sport, uint16_t dport) {
        struct nlmsghdr *h = (struct nlmsghdr *) (b->data + b->len);
        struct inet_diag_msg *m = NLMSG_DATA(h);

        memset(h, 0, NLMSG_SPACE(sizeof(*m)));
        h->nlmsg_len = NLMSG_LENGTH(sizeof(*m));
        h->nlmsg_type = SOCK_DIAG_BY_FAMILY;
        m->idiag_family = (uint8_t) family;
        m->idiag_state = state;
        m->id.idiag_sport = htons(sport);
        m->id.idiag_dport = htons(dport);
        assert_int_equal(inet_pton(family, src, m->id.idiag_src), 1);
        b->len += NLMSG_SPACE(sizeof(*m));
}

static void add_done(Buf *b, uint16_t type, int error) {
        struct nlmsghdr *h = (struct nlmsghdr *) (b->data + b->len);
        size_t payload = type == NLMSG_ERROR ? sizeof(struct nlmsgerr) : sizeof(int);

        memset(h, 0, NLMSG_SPACE(payload));
        h->nlmsg_len = NLMSG_LENGTH(payload);
        h->nlmsg_type = type;
        if (type == NLMSG_ERROR)
                ((struct nlmsgerr *) NLMSG_DATA(h))->error = error;
        b->len += NLMSG_SPACE(payload);
}

static void test_sockdiag_tcp(void **state) {
        ProbeListeners l = {};
        Buf b = {};
        (void) state;

        add_sock(&b, AF_INET, TCP_LISTEN, "0.0.0.0", 5432, 0);
        add_sock(&b, AF_INET6, TCP_LISTEN, "::", 5432, 0);
        add_sock(&b, AF_INET, TCP_ESTABLISHED, "203.0.113.10", 22, 40000);
        assert_int_equal(probe_listeners_parse(b.data, b.len, IPPROTO_TCP, &l), 0);
        add_done(&b, NLMSG_DONE, 0);
        probe_listeners_done(&l);
        assert_int_equal(probe_listeners_parse(b.data, b.len, IPPROTO_TCP, &l), 1);
        assert_int_equal(l.n, 2);
        assert_int_equal(l.items[0].family, AF_INET);
        assert_int_equal(l.items[0].port, 5432);
        assert_int_equal(l.items[1].family, AF_INET6);
        assert_int_equal(l.items[1].proto, IPPROTO_TCP);
        probe_listeners_done(&l);
}

static void test_sockdiag_udp(void **state) {
        ProbeListeners l = {};
        Buf b = {};
        (void) state;

        add_sock(&b, AF_INET, TCP_CLOSE, "0.0.0.0", 53, 0);
        add_sock(&b, AF_INET, TCP_ESTABLISHED, "10.0.0.1", 5353, 53); /* connected: not a listener */
        add_done(&b, NLMSG_DONE, 0);
        assert_int_equal(probe_listeners_parse(b.data, b.len, IPPROTO_UDP, &l), 1);
        assert_int_equal(l.n, 1);
        assert_int_equal(l.items[0].port, 53);
        probe_listeners_done(&l);
}

static void test_sockdiag_malformed(void **state) {
        ProbeListeners l = {};
        Buf b = {};
        (void) state;

        add_sock(&b, AF_INET, TCP_LISTEN, "0.0.0.0", 80, 0);
        assert_int_equal(probe_listeners_parse(b.data, b.len - 1, IPPROTO_TCP, &l), -EBADMSG);
        probe_listeners_done(&l);
        /* A message too short for inet_diag_msg. */
        ((struct nlmsghdr *) b.data)->nlmsg_len = NLMSG_LENGTH(8);
        assert_int_equal(probe_listeners_parse(b.data, NLMSG_SPACE(8), IPPROTO_TCP, &l), -EBADMSG);
        /* A bad family. */
        b.len = 0;
        add_sock(&b, AF_INET, TCP_LISTEN, "0.0.0.0", 80, 0);
        ((struct inet_diag_msg *) NLMSG_DATA((struct nlmsghdr *) b.data))->idiag_family = AF_UNIX;
        assert_int_equal(probe_listeners_parse(b.data, b.len, IPPROTO_TCP, &l), -EBADMSG);
        /* The kernel's error is passed on. */
        b.len = 0;
        add_done(&b, NLMSG_ERROR, -EPERM);
        assert_int_equal(probe_listeners_parse(b.data, b.len, IPPROTO_TCP, &l), -EPERM);
        probe_listeners_done(&l);
}

static void test_sockdiag_live(void **state) {
        struct sockaddr_in sa = { .sin_family = AF_INET };
        socklen_t sl = sizeof(sa);
        ProbeListeners l = {};
        bool found = false;
        int fd;
        (void) state;

        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(listen(fd, 1), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &sa, &sl), 0);
        assert_int_equal(probe_listeners(&l), 0);
        for (size_t i = 0; i < l.n; i++)
                if (l.items[i].family == AF_INET && l.items[i].proto == IPPROTO_TCP &&
                    l.items[i].port == ntohs(sa.sin_port) && memcmp(l.items[i].addr, "\0\0\0\0", 4) == 0)
                        found = true;
        assert_true(found);
        probe_listeners_done(&l);
        close(fd);
}

static void test_docker_settings(void **state) {
        static const char defaults[] = "/usr/sbin/dockerd\0-H\0unix:///run/docker.sock";
        static const char flags[] = "dockerd\0--icc=false\0--userland-proxy=false\0--config-file\0/x/daemon.json";
        ControlDockerInfo i;
        char path[256];
        (void) state;

        assert_int_equal(probe_docker_settings_parse(defaults, sizeof(defaults), NULL, 0, &i), 0);
        assert_true(i.icc_known && i.icc && i.iptables && i.userland_proxy);
        assert_int_equal(probe_docker_settings_parse(flags, sizeof(flags), NULL, 0, &i), 0);
        assert_false(i.icc);
        assert_false(i.userland_proxy);
        assert_true(i.iptables);
        /* daemon.json, and the command line winning over it. */
        assert_int_equal(probe_docker_settings_parse(defaults, sizeof(defaults), "{\"iptables\": false, \"icc\": false}",
                                                     33, &i), 0);
        assert_false(i.iptables);
        assert_false(i.icc);
        assert_int_equal(probe_docker_settings_parse(flags, sizeof(flags), "{\"icc\": true}", 13, &i), 0);
        assert_false(i.icc);
        assert_int_equal(probe_docker_settings_parse(defaults, sizeof(defaults), "{\"icc\": \"no\"}", 13, &i), -EBADMSG);
        assert_int_equal(probe_docker_settings_parse(defaults, sizeof(defaults), "[]", 2, &i), -EBADMSG);
        assert_int_equal(probe_docker_settings_parse("dockerd\0--icc=maybe", 20, NULL, 0, &i), -EBADMSG);
        /* --iptables is not --iptables-something. */
        assert_int_equal(probe_docker_settings_parse("dockerd\0--ip6tables=false", 26, NULL, 0, &i), 0);
        assert_true(i.iptables);

        assert_int_equal(probe_docker_config_path(flags, sizeof(flags), path, sizeof(path)), 0);
        assert_string_equal(path, "/x/daemon.json");
        assert_int_equal(probe_docker_config_path(defaults, sizeof(defaults), path, sizeof(path)), 0);
        assert_string_equal(path, "/etc/docker/daemon.json");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sockdiag_tcp),
                cmocka_unit_test(test_sockdiag_udp),
                cmocka_unit_test(test_sockdiag_malformed),
                cmocka_unit_test(test_sockdiag_live),
                cmocka_unit_test(test_docker_settings),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
