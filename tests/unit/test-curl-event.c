/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The curl multi <-> sd-event glue against a loopback HTTP server run on the same loop: a
 * transfer completes through the I/O sources, a server that never answers ends in curl's
 * timeout through the timer source, and curl's sockets are O_CLOEXEC.
 */
#include "ceredis.h"

#include "curl-event.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

typedef struct Server {
        int fd;
        uint16_t port;
        bool answer; /* false: accept and say nothing */
        int conn;
} Server;

typedef struct Done {
        CURL *easy;
        CURLcode result;
        int n;
} Done;

static int on_conn(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        static const char reply[] = "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok";
        char buf[1024];
        ssize_t n = read(fd, buf, sizeof(buf));

        /* One small request: it arrives in one read. */
        if (n <= 0 || !memmem(buf, (size_t) n, "\r\n\r\n", 4))
                return 0;
        assert_int_equal(write(fd, reply, sizeof(reply) - 1), (ssize_t) sizeof(reply) - 1);
        (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        close(fd);
        return 0;
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Server *srv = userdata;
        int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

        if (c < 0)
                return 0;
        if (!srv->answer) {
                srv->conn = c; /* held open, silent */
                return 0;
        }
        assert_int_equal(sd_event_add_io(sd_event_source_get_event(s), NULL, c, EPOLLIN, on_conn, NULL), 0);
        return 0;
}

static void server_start(sd_event *e, Server *srv, bool answer) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(a);

        *srv = (Server) { .answer = answer, .conn = -1 };
        srv->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        assert_true(srv->fd >= 0);
        assert_int_equal(bind(srv->fd, (struct sockaddr *) &a, sizeof(a)), 0);
        assert_int_equal(listen(srv->fd, 4), 0);
        assert_int_equal(getsockname(srv->fd, (struct sockaddr *) &a, &len), 0);
        srv->port = ntohs(a.sin_port);
        assert_int_equal(sd_event_add_io(e, NULL, srv->fd, EPOLLIN, on_accept, srv), 0);
}

static void on_ready(CurlEvent *ce, void *userdata) {
        Done *d = userdata;
        CURLcode result;
        CURL *easy;

        while (curl_event_next_done(ce, &easy, &result)) {
                d->easy = easy;
                d->result = result;
                d->n++;
                curl_event_remove(ce, easy); /* allowed here: curl has returned */
        }
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *userdata) {
        char *body = userdata;
        size_t n = size * nmemb, have = strlen(body);

        if (have + n < 64) {
                memcpy(body + have, p, n);
                body[have + n] = 0;
        }
        return n;
}

static int on_sockopt(void *userdata, curl_socket_t fd, curlsocktype purpose) {
        bool *cloexec = userdata;

        *cloexec = fcntl(fd, F_GETFD) & FD_CLOEXEC;
        return CURL_SOCKOPT_OK;
}

static uint64_t mono_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

/* Run the loop until the transfer is done or 5 s passed. */
static void run_until_done(sd_event *e, Done *d) {
        uint64_t deadline = mono_ms() + 5000;

        while (d->n == 0 && mono_ms() < deadline)
                assert_true(sd_event_run(e, 100 * 1000) >= 0);
}

static CURL *easy_for(uint16_t port, char *body, bool *cloexec) {
        CURL *easy = curl_easy_init();
        char url[64];

        assert_non_null(easy);
        snprintf(url, sizeof(url), "http://127.0.0.1:%u/x", port);
        assert_int_equal(curl_easy_setopt(easy, CURLOPT_URL, url), CURLE_OK);
        assert_int_equal(curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body), CURLE_OK);
        assert_int_equal(curl_easy_setopt(easy, CURLOPT_WRITEDATA, body), CURLE_OK);
        assert_int_equal(curl_easy_setopt(easy, CURLOPT_SOCKOPTFUNCTION, on_sockopt), CURLE_OK);
        assert_int_equal(curl_easy_setopt(easy, CURLOPT_SOCKOPTDATA, cloexec), CURLE_OK);
        return easy;
}

static void test_transfer(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(curl_event_freep) CurlEvent *ce = NULL;
        char body[64] = "";
        bool cloexec = false;
        Done d = {};
        Server srv;
        CURL *easy;
        long code = 0;

        assert_int_equal(sd_event_new(&e), 0);
        server_start(e, &srv, true);
        assert_int_equal(curl_event_new(e, on_ready, &d, &ce), 0);
        easy = easy_for(srv.port, body, &cloexec);
        assert_int_equal(curl_event_add(ce, easy), 0);
        run_until_done(e, &d);

        assert_int_equal(d.n, 1);
        assert_ptr_equal(d.easy, easy);
        assert_int_equal(d.result, CURLE_OK);
        assert_int_equal(curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code), CURLE_OK);
        assert_int_equal(code, 200);
        assert_string_equal(body, "ok");
        assert_true(cloexec);
        curl_easy_cleanup(easy);
        close(srv.fd);
}

static void test_timeout(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(curl_event_freep) CurlEvent *ce = NULL;
        char body[64] = "";
        bool cloexec = false;
        Done d = {};
        Server srv;
        CURL *easy;
        uint64_t t0;

        assert_int_equal(sd_event_new(&e), 0);
        server_start(e, &srv, false);
        assert_int_equal(curl_event_new(e, on_ready, &d, &ce), 0);
        easy = easy_for(srv.port, body, &cloexec);
        assert_int_equal(curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 300L), CURLE_OK);
        t0 = mono_ms();
        assert_int_equal(curl_event_add(ce, easy), 0);
        run_until_done(e, &d);

        /* Nothing arrives on the socket: only the timer source can have ended it. */
        assert_int_equal(d.n, 1);
        assert_int_equal(d.result, CURLE_OPERATION_TIMEDOUT);
        assert_true(mono_ms() - t0 >= 250);
        assert_true(mono_ms() - t0 < 3000);
        curl_easy_cleanup(easy);
        if (srv.conn >= 0)
                close(srv.conn);
        close(srv.fd);
}

static void test_free_with_transfer(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        CurlEvent *ce = NULL;
        char body[64] = "";
        bool cloexec = false;
        Done d = {};
        Server srv;
        CURL *easy;

        /* Freed while a transfer is still added: no crash, the handle stays usable to clean. */
        assert_int_equal(sd_event_new(&e), 0);
        server_start(e, &srv, false);
        assert_int_equal(curl_event_new(e, on_ready, &d, &ce), 0);
        easy = easy_for(srv.port, body, &cloexec);
        assert_int_equal(curl_event_add(ce, easy), 0);
        for (int i = 0; i < 5; i++)
                assert_true(sd_event_run(e, 10 * 1000) >= 0);
        curl_event_remove(ce, easy);
        curl_event_free(ce);
        curl_event_remove(NULL, easy);
        curl_event_free(NULL);
        curl_easy_cleanup(easy);
        assert_int_equal(d.n, 0);
        if (srv.conn >= 0)
                close(srv.conn);
        close(srv.fd);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_transfer),
                cmocka_unit_test(test_timeout),
                cmocka_unit_test(test_free_with_transfer),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
