/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The sd-event <-> curl multi glue (see curl-event.h). curl tells us which sockets to watch
 * (CURLMOPT_SOCKETFUNCTION) and when to wake it up (CURLMOPT_TIMERFUNCTION); each socket gets
 * an I/O source, kept in curl's per-socket pointer, and the timeout one timer source. After
 * every action the owner's handler runs: curl has returned, so transfers may change there.
 */
#include "ceredis.h"

#include "curl-event.h"

struct CurlEvent {
        sd_event *event;
        CURLM *multi;
        sd_event_source *timer;
        curl_event_handler_t on_ready;
        void *userdata;
};

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        CurlEvent *ce = userdata;
        int running, mask = 0;

        if (revents & EPOLLIN)
                mask |= CURL_CSELECT_IN;
        if (revents & EPOLLOUT)
                mask |= CURL_CSELECT_OUT;
        if (revents & (EPOLLERR | EPOLLHUP))
                mask |= CURL_CSELECT_ERR;
        (void) curl_multi_socket_action(ce->multi, fd, mask, &running);
        ce->on_ready(ce, ce->userdata);
        return 0;
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
        CurlEvent *ce = userp;
        sd_event_source *s = socketp;
        uint32_t events = 0;

        if (what == CURL_POLL_REMOVE) {
                sd_event_source_disable_unref(s);
                (void) curl_multi_assign(ce->multi, fd, NULL);
                return 0;
        }
        if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
                events |= EPOLLIN;
        if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
                events |= EPOLLOUT;
        if (s)
                return sd_event_source_set_io_events(s, events) < 0 ? -1 : 0;
        if (sd_event_add_io(ce->event, &s, fd, events, on_io, ce) < 0)
                return -1;
        (void) curl_multi_assign(ce->multi, fd, s);
        return 0;
}

static int on_timer_fire(sd_event_source *s, uint64_t usec, void *userdata) {
        CurlEvent *ce = userdata;
        int running;

        (void) curl_multi_socket_action(ce->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        ce->on_ready(ce, ce->userdata);
        return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp) {
        CurlEvent *ce = userp;
        uint64_t now;

        if (timeout_ms < 0)
                return sd_event_source_set_enabled(ce->timer, SD_EVENT_OFF) < 0 ? -1 : 0;
        if (sd_event_now(ce->event, CLOCK_MONOTONIC, &now) < 0)
                return -1;
        if (sd_event_source_set_time(ce->timer, now + (uint64_t) timeout_ms * 1000u) < 0 ||
            sd_event_source_set_enabled(ce->timer, SD_EVENT_ONESHOT) < 0)
                return -1;
        return 0;
}

/* Every fd O_CLOEXEC, curl's too. */
static curl_socket_t on_open_socket(void *userdata, curlsocktype purpose, struct curl_sockaddr *a) {
        return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

int curl_event_new(sd_event *e, curl_event_handler_t on_ready, void *userdata, CurlEvent **ret) {
        _cleanup_(curl_event_freep) CurlEvent *ce = NULL;
        int k;

        /* Reference-counted by curl; undone in curl_event_free(). */
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return -EIO;
        ce = calloc(1, sizeof(*ce));
        if (!ce) {
                curl_global_cleanup();
                return -ENOMEM;
        }
        ce->event = sd_event_ref(e);
        ce->on_ready = on_ready;
        ce->userdata = userdata;
        ce->multi = curl_multi_init();
        if (!ce->multi)
                return -ENOMEM;
        if (curl_multi_setopt(ce->multi, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
            curl_multi_setopt(ce->multi, CURLMOPT_SOCKETDATA, ce) != CURLM_OK ||
            curl_multi_setopt(ce->multi, CURLMOPT_TIMERFUNCTION, on_timer) != CURLM_OK ||
            curl_multi_setopt(ce->multi, CURLMOPT_TIMERDATA, ce) != CURLM_OK)
                return -EIO;
        k = sd_event_add_time(e, &ce->timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_timer_fire, ce);
        if (k < 0)
                return k;
        k = sd_event_source_set_enabled(ce->timer, SD_EVENT_OFF);
        if (k < 0)
                return k;
        *ret = TAKE_PTR(ce);
        return 0;
}

void curl_event_free(CurlEvent *ce) {
        if (!ce)
                return;
        if (ce->multi)
                curl_multi_cleanup(ce->multi);
        sd_event_source_disable_unref(ce->timer);
        sd_event_unref(ce->event);
        free(ce);
        curl_global_cleanup();
}

int curl_event_add(CurlEvent *ce, CURL *easy) {
        if (curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, on_open_socket) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
            curl_multi_add_handle(ce->multi, easy) != CURLM_OK)
                return -EIO;
        return 0;
}

void curl_event_remove(CurlEvent *ce, CURL *easy) {
        if (ce && easy)
                (void) curl_multi_remove_handle(ce->multi, easy);
}

bool curl_event_next_done(CurlEvent *ce, CURL **ret_easy, CURLcode *ret_result) {
        CURLMsg *msg;
        int left;

        while ((msg = curl_multi_info_read(ce->multi, &left)))
                if (msg->msg == CURLMSG_DONE) {
                        *ret_easy = msg->easy_handle;
                        *ret_result = msg->data.result;
                        return true;
                }
        return false;
}
